/* Fuzzes the SDK's spec reading (spec_fields.h) as a plugin meets it: the TaskSpec JSON and a
 * type's section from the agent, then every getter on every key of the section, by both
 * spellings. Input: "SPEC\n--\nCONFIG". Properties: a refusal always fills the error buffer
 * with "FIELD: ..." (the field first); an accepted value has the type asked for and lies in
 * the range asked for; an absent field leaves the caller's default alone. */
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "muster_plugin.h"
#include "spec_fields.h"

static void check_refusal(int rc, const char *errbuf, const char *field) {
  if (rc == 0) return;
  MU_FUZZ_CHECK(rc == -EINVAL);
  MU_FUZZ_CHECK(strncmp(errbuf, field, strlen(field)) == 0 && errbuf[strlen(field)] == ':');
}

static void every_getter(const json_t *obj, const char *key) {
  char errbuf[MUSTER_ERRBUF_SIZE];
  const char *field = "t.f";
  const char *s = "unset";
  int rc = muster_field_string(obj, key, NULL, field, &s, errbuf);
  check_refusal(rc, errbuf, field);
  if (rc == 0) MU_FUZZ_CHECK(s != NULL);
  int64_t n = -7;
  rc = muster_field_int(obj, "absent-key", key, field, -5, 5000, &n, errbuf);
  check_refusal(rc, errbuf, field);
  if (rc == 0) MU_FUZZ_CHECK(n == -7 || (n >= -5 && n <= 5000));
  bool b = false;
  check_refusal(muster_field_bool(obj, key, NULL, field, &b, errbuf), errbuf, field);
  int64_t ms = -1;
  rc = muster_field_duration(obj, key, NULL, field, 1, &ms, errbuf);
  check_refusal(rc, errbuf, field);
  if (rc == 0) MU_FUZZ_CHECK(ms == -1 || ms >= 1);
  json_t *l = NULL, *o = NULL;
  rc = muster_field_list(obj, key, NULL, field, "things", 3, &l, errbuf);
  check_refusal(rc, errbuf, field);
  if (rc == 0 && l != NULL) MU_FUZZ_CHECK(json_is_array(l) && json_array_size(l) <= 3);
  rc = muster_field_object(obj, key, NULL, field, NULL, &o, errbuf);
  check_refusal(rc, errbuf, field);
  if (rc == 0 && o != NULL) MU_FUZZ_CHECK(json_is_object(o));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[2];
  if (mu_fuzz_split(data, size, "\n--\n", parts, NULL, 2) != 0) return 0;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  muster_spec_view v;
  int rc = muster_spec_view_open(parts[0], parts[1], "sec", &v, errbuf);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc == -EINVAL && errbuf[0] != '\0');
  } else {
    MU_FUZZ_CHECK(json_is_object(v.spec) && json_is_object(v.config));
    MU_FUZZ_CHECK(v.secrets == NULL || json_is_array(v.secrets));
    static const char *const known[] = {"url", "maxRetries", "max_retries"};
    rc = muster_fields_check_known(v.config, "sec", known, 3, errbuf);
    if (rc != 0) MU_FUZZ_CHECK(strncmp(errbuf, "sec.", 4) == 0 && strstr(errbuf, ": unknown field") != NULL);
    const char *key;
    json_t *val;
    size_t seen = 0;
    json_object_foreach(v.config, key, val) {
      if (seen++ >= 64) break;
      every_getter(v.config, key);
    }
  }
  muster_spec_view_close(&v);
  mu_fuzz_split_free(parts, 2);
  return 0;
}
