/* Alpine apk versions (apk-tools' version.c rules): digits{.digits}[letter]{_suffix[N]}
 * [~hash][-rN]. Release components compare numerically, except that after the first one a
 * component with a leading zero compares as a string (apk's "fractional" rule); more
 * components win; a letter beats none; suffixes _alpha < _beta < _pre < _rc < none < _cvs <
 * _svn < _git < _hg < _p, each then by its number; the ~hash is ignored; -rN last (none = r0). */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/imagescan/version.h"
#include "lib/imagescan/version_int.h"

#define APK_MAX_PARTS 32

static const char *const suffixes[] = {"alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"};
#define N_PRE 4 /* the first four sort below the release */

typedef struct apk_ver {
  const char *num[APK_MAX_PARTS];
  size_t num_len[APK_MAX_PARTS];
  size_t n_num;
  char letter; /* 0 when none */
  int suf[APK_MAX_PARTS];
  uint64_t suf_n[APK_MAX_PARTS];
  size_t n_suf;
  uint64_t rev;
} apk_ver;

static bool apk_parse(const char *v, apk_ver *r) {
  memset(r, 0, sizeof *r);
  if (v == NULL) return false;
  const char *p = v;
  for (;;) {
    if (!isdigit((unsigned char)*p) || r->n_num == APK_MAX_PARTS) return false;
    r->num[r->n_num] = p;
    while (isdigit((unsigned char)*p)) p++;
    r->num_len[r->n_num] = (size_t)(p - r->num[r->n_num]);
    if (r->num_len[r->n_num] > 19) return false;
    r->n_num++;
    if (*p != '.') break;
    p++;
  }
  if (islower((unsigned char)*p)) r->letter = *p++;
  while (*p == '_') {
    p++;
    size_t k = 0;
    for (; k < sizeof suffixes / sizeof *suffixes; k++) {
      size_t l = strlen(suffixes[k]);
      /* a name must end where the letters end: "pre" is never "p" + "re" */
      if (strncmp(p, suffixes[k], l) == 0 && !islower((unsigned char)p[l])) break;
    }
    if (k == sizeof suffixes / sizeof *suffixes || r->n_suf == APK_MAX_PARTS) return false;
    p += strlen(suffixes[k]);
    r->suf[r->n_suf] = k < N_PRE ? (int)k - N_PRE : (int)k - N_PRE + 1;
    r->suf_n[r->n_suf] = 0;
    if (isdigit((unsigned char)*p) && !mu_ver_digits(&p, &r->suf_n[r->n_suf])) return false;
    r->n_suf++;
  }
  if (*p == '~') {
    p++;
    if (!isxdigit((unsigned char)*p)) return false;
    while (isxdigit((unsigned char)*p)) p++;
  }
  if (*p == '-') {
    if (p[1] != 'r') return false;
    p += 2;
    if (!mu_ver_digits(&p, &r->rev)) return false;
  }
  return *p == '\0';
}

bool mu_ver_apk_valid(const char *v) {
  apk_ver r;
  return apk_parse(v, &r);
}

static int num_cmp(const char *a, size_t al, const char *b, size_t bl, bool fractional) {
  if (fractional && ((al > 1 && a[0] == '0') || (bl > 1 && b[0] == '0'))) {
    int c = strncmp(a, b, al < bl ? al : bl);
    if (c != 0) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
  }
  while (al > 1 && *a == '0') a++, al--;
  while (bl > 1 && *b == '0') b++, bl--;
  if (al != bl) return al < bl ? -1 : 1;
  return strncmp(a, b, al);
}

int mu_ver_apk_cmp(const char *a, const char *b) {
  apk_ver x, y;
  if (!apk_parse(a, &x) || !apk_parse(b, &y)) return strcmp(a ? a : "", b ? b : "");
  size_t n = x.n_num < y.n_num ? x.n_num : y.n_num;
  for (size_t i = 0; i < n; i++) {
    int c = num_cmp(x.num[i], x.num_len[i], y.num[i], y.num_len[i], i > 0);
    if (c != 0) return c;
  }
  if (x.n_num != y.n_num) return x.n_num > y.n_num ? 1 : -1;
  if (x.letter != y.letter) return x.letter < y.letter ? -1 : 1;
  n = x.n_suf < y.n_suf ? x.n_suf : y.n_suf;
  for (size_t i = 0; i < n; i++) {
    if (x.suf[i] != y.suf[i]) return x.suf[i] < y.suf[i] ? -1 : 1;
    if (x.suf_n[i] != y.suf_n[i]) return x.suf_n[i] < y.suf_n[i] ? -1 : 1;
  }
  if (x.n_suf != y.n_suf) { /* the extra suffix decides: a pre-release one sorts below none */
    int extra = x.n_suf > y.n_suf ? x.suf[n] : y.suf[n];
    int sign = x.n_suf > y.n_suf ? 1 : -1;
    return extra < 0 ? -sign : sign;
  }
  if (x.rev != y.rev) return x.rev < y.rev ? -1 : 1;
  return 0;
}
