/* Fuzzes TZif parsing: a refusal says why; an accepted zone answers offsets in RFC 8536's range and
 * resolves wall-clock times without crashing, also past its transitions (footer rules). */
#include <stdlib.h>

#include "lib/cron/tz.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mu_tz *tz = NULL;
  mu_err err = {0};
  int rc = mu_tz_parse("fuzz", data, size, &tz, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(err.msg[0] != '\0' && tz == NULL);
    return 0;
  }
  static const int64_t at[] = {-4000000000LL, 0, 1772952600LL, 2540246400LL, 1LL << 50};
  for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
    int32_t off = mu_tz_offset(tz, at[i]);
    MU_FUZZ_CHECK(off >= -89999 && off <= 93599); /* RFC 8536's range */
    (void)mu_tz_resolve(tz, at[i]);
  }
  mu_tz_free(tz);
  return 0;
}
