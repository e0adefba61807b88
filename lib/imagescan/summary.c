/* Scan findings into the admission policy's summary (summary.h). */
#include "lib/imagescan/summary.h"

#include <stdbool.h>
#include <string.h>

#include "lib/cron/civil.h"

static bool digits(const char *s, int n, int *ret) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *ret = v;
  return true;
}

bool mu_scan_date_days(const char *text, int64_t *ret) {
  int y, m, d;
  if (text == NULL || strlen(text) < 10 || text[4] != '-' || text[7] != '-') return false;
  if (!digits(text, 4, &y) || !digits(text + 5, 2, &m) || !digits(text + 8, 2, &d)) return false;
  if (m < 1 || m > 12 || d < 1 || d > 31 || y < 1970) return false;
  *ret = mu_days_from_civil(y, m, d);
  return true;
}

int mu_scan_summary(const json_t *findings, int64_t now_s, mu_imgscan_summary *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  if (!json_is_array(findings)) return mu_err_set(err, MU_EINVAL, "scan result: findings is not a list");
  int64_t today = now_s / 86400;
  size_t i;
  const json_t *f;
  json_array_foreach(findings, i, f) {
    const char *sev_text = json_string_value(json_object_get(f, "severity"));
    const char *fixed = json_string_value(json_object_get(f, "fixedIn"));
    mu_severity sev;
    if (sev_text == NULL || mu_severity_parse(sev_text, &sev) != 0) {
      const char *id = json_string_value(json_object_get(f, "id"));
      memset(ret, 0, sizeof *ret); /* nothing half-counted */
      return mu_err_set(err, MU_EINVAL, "scan result: finding %zu (%.128s) has no known severity", i, id ? id : "?");
    }
    if (fixed != NULL && *fixed) continue; /* a fix exists: not counted as unfixed */
    if (ret->unfixed[sev] < UINT32_MAX) ret->unfixed[sev]++;
    int64_t day = 0, age = 0;
    if (!mu_scan_date_days(json_string_value(json_object_get(f, "published")), &day)) day = 0; /* unknown: old */
    if (day < today) age = today - day;
    if (age > UINT32_MAX) age = UINT32_MAX;
    if ((uint32_t)age > ret->oldest_days[sev]) ret->oldest_days[sev] = (uint32_t)age;
  }
  return 0;
}
