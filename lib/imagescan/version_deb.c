/* Debian versions as dpkg compares them (lib/dpkg/version.c, parseversion + verrevcmp):
 * [epoch:]upstream[-revision], the revision after the last '-'; each part compared as
 * alternating runs of non-digits (by a per-character order: '~' < end < letters < the rest)
 * and digits (numerically). A missing revision compares as "" (so 1.0 == 1.0-0). */
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "lib/imagescan/version.h"

typedef struct deb_ver {
  long epoch;
  const char *up, *up_end;   /* upstream: [up, up_end) */
  const char *rev, *rev_end; /* revision: [rev, rev_end), empty when none */
} deb_ver;

/* Splits v; false when dpkg would call it bad syntax. */
static bool deb_split(const char *v, deb_ver *ret) {
  if (v == NULL || *v == '\0') return false;
  const char *end = v + strlen(v);
  for (const char *p = v; p < end; p++)
    if (isspace((unsigned char)*p)) return false;
  const char *colon = strchr(v, ':');
  ret->epoch = 0;
  const char *up = v;
  if (colon != NULL) {
    if (colon == v) return false;
    long e = 0;
    for (const char *p = v; p < colon; p++) {
      if (!isdigit((unsigned char)*p)) return false;
      e = e * 10 + (*p - '0');
      if (e > INT_MAX) return false;
    }
    ret->epoch = e;
    up = colon + 1;
    if (*up == '\0') return false;
  }
  const char *hyphen = NULL;
  for (const char *p = end; p > up; p--)
    if (p[-1] == '-') {
      hyphen = p - 1;
      break;
    }
  ret->up = up;
  ret->up_end = hyphen ? hyphen : end;
  ret->rev = hyphen ? hyphen + 1 : end;
  ret->rev_end = end;
  if (ret->up == ret->up_end) return false;
  if (hyphen != NULL && ret->rev == ret->rev_end) return false;
  for (const char *p = ret->up; p < ret->up_end; p++)
    if (!isalnum((unsigned char)*p) && strchr(".-+~:", *p) == NULL) return false;
  for (const char *p = ret->rev; p < ret->rev_end; p++)
    if (!isalnum((unsigned char)*p) && strchr(".+~", *p) == NULL) return false;
  /* a ':' in upstream is only allowed with an epoch: strchr found the first one */
  return true;
}

bool mu_ver_deb_valid(const char *v) {
  deb_ver d;
  return deb_split(v, &d);
}

static int order(int c) {
  if (isdigit(c)) return 0;
  if (isalpha(c)) return c;
  if (c == '~') return -1;
  if (c) return c + 256;
  return 0;
}

/* dpkg's verrevcmp over [a, ae) and [b, be). */
static int verrevcmp(const char *a, const char *ae, const char *b, const char *be) {
#define AC (a < ae ? (unsigned char)*a : 0)
#define BC (b < be ? (unsigned char)*b : 0)
  while (a < ae || b < be) {
    int first_diff = 0;
    while ((AC && !isdigit(AC)) || (BC && !isdigit(BC))) {
      int ac = order(AC), bc = order(BC);
      if (ac != bc) return ac - bc;
      if (a < ae) a++;
      if (b < be) b++;
    }
    while (AC == '0') a++;
    while (BC == '0') b++;
    while (isdigit(AC) && isdigit(BC)) {
      if (!first_diff) first_diff = AC - BC;
      a++;
      b++;
    }
    if (isdigit(AC)) return 1;
    if (isdigit(BC)) return -1;
    if (first_diff) return first_diff;
  }
  return 0;
#undef AC
#undef BC
}

int mu_ver_deb_cmp(const char *a, const char *b) {
  deb_ver x, y;
  if (!deb_split(a, &x) || !deb_split(b, &y)) return strcmp(a ? a : "", b ? b : "");
  if (x.epoch != y.epoch) return x.epoch < y.epoch ? -1 : 1;
  int c = verrevcmp(x.up, x.up_end, y.up, y.up_end);
  if (c != 0) return c;
  return verrevcmp(x.rev, x.rev_end, y.rev, y.rev_end);
}
