/* Fuzzes the scan summary (summary.c) over a findings list as the cache file or the scanner's
 * output carries it. Properties: a refusal says why and leaves the summary zeroed; counts are
 * never more than the findings; an age is never more than the days since 1970. */
#include <jansson.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/imagescan/summary.h"

#define NOW ((int64_t)20789 * 86400)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *f = json_loadb((const char *)data, size, 0, NULL);
  if (f == NULL) return 0;
  mu_imgscan_summary s;
  mu_err err = {0};
  int rc = mu_scan_summary(f, NOW, &s, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
    for (int i = 0; i < MU_SEV_COUNT; i++) MU_FUZZ_CHECK(s.unfixed[i] == 0);
  } else {
    size_t total = 0;
    for (int i = 0; i < MU_SEV_COUNT; i++) {
      total += s.unfixed[i];
      MU_FUZZ_CHECK(s.oldest_days[i] <= 20789);
      MU_FUZZ_CHECK(s.unfixed[i] > 0 || s.oldest_days[i] == 0);
    }
    MU_FUZZ_CHECK(total <= json_array_size(f));
  }
  json_decref(f);
  return 0;
}
