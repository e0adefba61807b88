/* Fuzzes the version comparators. Input: "A\nB\nC". For each scheme in which all three are
 * valid: compare(x, x) == 0, compare(a, b) == -compare(b, a), and order is transitive over
 * the three. An invalid version is refused with a message, never compared. */
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/imagescan/version.h"

static int cmp(mu_ver_scheme s, const char *a, const char *b) {
  int c = 99;
  mu_err err = {0};
  MU_FUZZ_CHECK(mu_ver_compare(s, a, b, &c, &err) == 0);
  MU_FUZZ_CHECK(c >= -1 && c <= 1);
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *v[3];
  if (mu_fuzz_split(data, size, "\n", v, NULL, 3) != 0) return 0;
  for (int s = MU_VER_DEB; s <= MU_VER_PEP440; s++) {
    bool ok = mu_ver_valid((mu_ver_scheme)s, v[0]) && mu_ver_valid((mu_ver_scheme)s, v[1]) &&
              mu_ver_valid((mu_ver_scheme)s, v[2]);
    if (!ok) {
      int c;
      mu_err err = {0};
      if (!mu_ver_valid((mu_ver_scheme)s, v[0])) {
        MU_FUZZ_CHECK(mu_ver_compare((mu_ver_scheme)s, v[0], "1", &c, &err) == MU_EINVAL && err.msg[0]);
      }
      continue;
    }
    for (int i = 0; i < 3; i++) MU_FUZZ_CHECK(cmp((mu_ver_scheme)s, v[i], v[i]) == 0);
    int ab = cmp((mu_ver_scheme)s, v[0], v[1]), ba = cmp((mu_ver_scheme)s, v[1], v[0]);
    int bc = cmp((mu_ver_scheme)s, v[1], v[2]), ac = cmp((mu_ver_scheme)s, v[0], v[2]);
    MU_FUZZ_CHECK(ab == -ba);
    if (ab <= 0 && bc <= 0) MU_FUZZ_CHECK(ac <= 0);
    if (ab >= 0 && bc >= 0) MU_FUZZ_CHECK(ac >= 0);
  }
  mu_fuzz_split_free(v, 3);
  return 0;
}
