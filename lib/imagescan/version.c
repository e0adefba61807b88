/* The scheme dispatch of version.h; each scheme lives in version_<scheme>.c. */
#include "lib/imagescan/version.h"

#include <ctype.h>
#include <string.h>

#include "lib/imagescan/version_int.h"

const char *mu_ver_scheme_name(mu_ver_scheme s) {
  switch (s) {
    case MU_VER_DEB: return "Debian";
    case MU_VER_APK: return "Alpine";
    case MU_VER_PEP440: return "PyPI";
  }
  return "?";
}

bool mu_ver_valid(mu_ver_scheme s, const char *v) {
  if (v == NULL || strlen(v) > MU_VER_MAX) return false;
  switch (s) {
    case MU_VER_DEB: return mu_ver_deb_valid(v);
    case MU_VER_APK: return mu_ver_apk_valid(v);
    case MU_VER_PEP440: return mu_ver_pep440_valid(v);
  }
  return false;
}

int mu_ver_compare(mu_ver_scheme s, const char *a, const char *b, int *ret, mu_err *err) {
  const char *bad = !mu_ver_valid(s, a) ? a : !mu_ver_valid(s, b) ? b : NULL;
  if (bad != NULL)
    return mu_err_set(err, MU_EINVAL, "\"%.80s\" is not a valid %s version", bad ? bad : "", mu_ver_scheme_name(s));
  int c = s == MU_VER_DEB ? mu_ver_deb_cmp(a, b) : s == MU_VER_APK ? mu_ver_apk_cmp(a, b) : mu_ver_pep440_cmp(a, b);
  *ret = c < 0 ? -1 : c > 0 ? 1 : 0;
  return 0;
}

bool mu_ver_digits(const char **p, uint64_t *ret) {
  if (!isdigit((unsigned char)**p)) return false;
  uint64_t v = 0;
  while (isdigit((unsigned char)**p)) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(**p - '0');
    (*p)++;
  }
  *ret = v;
  return true;
}
