/* Version parsing and ordering for bundles (see version.h): numeric dot components, then an
 * optional pre-release, then ignored build metadata. Numbers compare as digit strings, so a
 * 40-digit component neither overflows nor wraps. */
#include "lib/bundle/version.h"

#include <stdbool.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_ident(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'; }

int mu_bundle_version_check(const char *text, mu_err *err) {
  if (text == NULL || text[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "version is empty");
  }
  if (strlen(text) > MU_BUNDLE_VERSION_MAX) {
    return mu_err_set(err, MU_EINVAL, "version '%.64s...': longer than %d bytes", text, MU_BUNDLE_VERSION_MAX);
  }
  const char *p = text;
  for (;;) {
    if (!is_digit(*p)) {
      return mu_err_set(err, MU_EINVAL, "version '%s': want numbers separated by dots (e.g. 1.2.3)", text);
    }
    while (is_digit(*p)) p++;
    if (*p != '.') break;
    p++;
  }
  for (int part = 0; part < 2; part++) {
    char lead = part == 0 ? '-' : '+';
    if (*p != lead) continue;
    p++;
    for (;;) {
      if (!is_ident(*p)) {
        return mu_err_set(err, MU_EINVAL, "version '%s': %s identifiers must be non-empty [0-9A-Za-z-]", text,
                          part == 0 ? "pre-release" : "build");
      }
      while (is_ident(*p)) p++;
      if (*p != '.') break;
      p++;
    }
  }
  if (*p != '\0') {
    return mu_err_set(err, MU_EINVAL, "version '%s': unexpected '%c'", text, *p);
  }
  return 0;
}

/* Compares the digit runs [a, a+na) and [b, b+nb) as unbounded non-negative integers. */
static int num_cmp(const char *a, size_t na, const char *b, size_t nb) {
  while (na > 0 && *a == '0') a++, na--;
  while (nb > 0 && *b == '0') b++, nb--;
  if (na != nb) return na < nb ? -1 : 1;
  int c = memcmp(a, b, na);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

static size_t span(const char *s, bool (*pred)(char)) {
  size_t n = 0;
  while (pred(s[n])) n++;
  return n;
}

static int pre_cmp(const char *a, const char *b) {
  /* a and b point just past '-', or at NUL/'+' when absent. */
  bool ha = *a != '\0' && *a != '+';
  bool hb = *b != '\0' && *b != '+';
  if (!ha || !hb) return ha == hb ? 0 : (ha ? -1 : 1);
  for (;;) {
    size_t la = span(a, is_ident);
    size_t lb = span(b, is_ident);
    bool na = span(a, is_digit) == la;
    bool nb = span(b, is_digit) == lb;
    int c;
    if (na && nb) {
      c = num_cmp(a, la, b, lb);
    } else if (na != nb) {
      c = na ? -1 : 1;
    } else {
      size_t m = la < lb ? la : lb;
      c = memcmp(a, b, m);
      if (c == 0 && la != lb) c = la < lb ? -1 : 1;
    }
    if (c != 0) return c < 0 ? -1 : 1;
    a += la;
    b += lb;
    bool ma = *a == '.';
    bool mb = *b == '.';
    if (!ma || !mb) return ma == mb ? 0 : (ma ? 1 : -1);
    a++;
    b++;
  }
}

int mu_bundle_version_cmp(const char *a, const char *b) {
  bool va = mu_bundle_version_check(a, NULL) == 0;
  bool vb = mu_bundle_version_check(b, NULL) == 0;
  if (!va || !vb) {
    if (va != vb) return va ? 1 : -1;
    int c = strcmp(a != NULL ? a : "", b != NULL ? b : "");
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  for (;;) {
    size_t la = span(a, is_digit);
    size_t lb = span(b, is_digit);
    /* A missing component counts as 0. */
    int c = num_cmp(a, la, b, lb);
    if (c != 0) return c;
    a += la;
    b += lb;
    bool ma = *a == '.';
    bool mb = *b == '.';
    if (!ma && !mb) break;
    if (ma) a++;
    if (mb) b++;
  }
  if (*a == '-') a++;
  if (*b == '-') b++;
  return pre_cmp(a, b);
}

int mu_bundle_rollback_check(const char *name, const char *last_ran, const char *incoming, mu_err *err) {
  int rc = mu_bundle_version_check(incoming, err);
  if (rc != 0) return mu_err_prefix(err, "bundle '%s'", name);
  if (last_ran == NULL) return 0;
  if (mu_bundle_version_cmp(incoming, last_ran) < 0) {
    return mu_err_set(err, MU_EPERM,
                      "bundle '%s': version %s is lower than %s already run here "
                      "(rollback refused)",
                      name, incoming, last_ran);
  }
  return 0;
}
