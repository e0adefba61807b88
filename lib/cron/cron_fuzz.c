/* Fuzzes cron parsing and the fire-time search: a refusal says why; an accepted expression
 * gives fire times that only move forward, in UTC and in a zone with DST. */
#include <stdlib.h>
#include <string.h>

#include "lib/cron/cron.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mu_tz *utc, *eastern;
  if (utc == NULL) {
    mu_err e = {0};
    MU_FUZZ_CHECK(mu_tz_from_rule("UTC0", &utc, &e) == 0);
    MU_FUZZ_CHECK(mu_tz_from_rule("EST5EDT,M3.2.0,M11.1.0", &eastern, &e) == 0);
  }
  char *text = malloc(size + 1);
  MU_FUZZ_CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = '\0';
  mu_cron *c = NULL;
  mu_err err = {0};
  int rc = mu_cron_parse(text, &c, &err);
  free(text);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc == MU_EINVAL || rc == MU_ENOMEM);
    MU_FUZZ_CHECK(err.msg[0] != '\0' && c == NULL);
    return 0;
  }
  const mu_tz *zones[] = {utc, eastern};
  for (int z = 0; z < 2; z++) {
    int64_t t = 1772952600LL; /* near a DST change */
    for (int i = 0; i < 4; i++) {
      int64_t next = mu_cron_next(c, zones[z], t);
      if (next < 0) break;
      MU_FUZZ_CHECK(next > t);
      t = next;
    }
  }
  mu_cron_free(c);
  return 0;
}
