/* The policy's globs (imagepolicy.h): '*' within a path segment, '**' across segments, '?',
 * and bracket classes. Matching is memoised over (pattern, text) offsets: at most
 * pattern x text steps (patterns are at most MU_IMGPOLICY_MAX_PATTERN bytes, texts 4 KiB). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/imagepolicy/imagepolicy.h"

#define MAX_STARS 8
#define MAX_TEXT 4096 /* longer texts match nothing */

int mu_imgpolicy_glob_check(const char *p, mu_err *err) {
  if (p == NULL || p[0] == '\0') return mu_err_set(err, MU_EINVAL, "empty pattern");
  if (strlen(p) > MU_IMGPOLICY_MAX_PATTERN)
    return mu_err_set(err, MU_EINVAL, "longer than %d bytes", MU_IMGPOLICY_MAX_PATTERN);
  int stars = 0;
  for (size_t i = 0; p[i] != '\0'; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x20 || c == 0x7f || c == ' ') return mu_err_set(err, MU_EINVAL, "a space or control character at %zu", i);
    if (c == '\\') return mu_err_set(err, MU_EINVAL, "'\\' is not supported (at %zu)", i);
    if (c == '*') {
      if (p[i + 1] == '*' && p[i + 2] == '*') return mu_err_set(err, MU_EINVAL, "'***' at %zu", i);
      if (++stars > MAX_STARS) return mu_err_set(err, MU_EINVAL, "more than %d '*'", MAX_STARS);
      if (p[i + 1] == '*') i++;
    } else if (c == '[') {
      size_t j = i + 1;
      if (p[j] == '!') j++;
      if (p[j] == ']') return mu_err_set(err, MU_EINVAL, "empty class at %zu", i);
      while (p[j] != '\0' && p[j] != ']') {
        if (p[j] == '/' || p[j] == '[') return mu_err_set(err, MU_EINVAL, "'%c' inside the class at %zu", p[j], i);
        if (p[j + 1] == '-' && p[j + 2] != ']' && p[j + 2] != '\0' && p[j + 2] < p[j])
          return mu_err_set(err, MU_EINVAL, "reversed range %c-%c at %zu", p[j], p[j + 2], j);
        j++;
      }
      if (p[j] != ']') return mu_err_set(err, MU_EINVAL, "unterminated '[' at %zu", i);
      i = j;
    } else if (c == ']') {
      return mu_err_set(err, MU_EINVAL, "']' without '[' at %zu", i);
    }
  }
  return 0;
}

/* p at '[': does c match the class? *ret_next: past the ']'. */
static bool class_match(const char *p, char c, const char **ret_next) {
  bool neg = false, hit = false;
  p++;
  if (*p == '!') {
    neg = true;
    p++;
  }
  while (*p != '\0' && *p != ']') {
    if (p[1] == '-' && p[2] != ']' && p[2] != '\0') {
      if (c >= p[0] && c <= p[2]) hit = true;
      p += 3;
    } else {
      if (c == *p) hit = true;
      p++;
    }
  }
  *ret_next = *p == ']' ? p + 1 : p;
  return c != '/' && hit != neg;
}

/* Memoised: (pattern offset, text offset) pairs already known not to match, so a pattern
 * full of stars costs at most pattern x text steps. */
typedef struct matcher {
  const char *p0, *t0;
  size_t tlen;
  unsigned char *failed; /* bit per (pi, ti) */
} matcher;

static bool match(matcher *m, const char *p, const char *t) {
  size_t bit = (size_t)(p - m->p0) * (m->tlen + 1) + (size_t)(t - m->t0);
  if (m->failed[bit / 8] & (1u << (bit % 8))) return false;
  bool ok = false;
  if (*p == '\0') {
    ok = *t == '\0';
  } else if (strcmp(p, "/**") == 0 && *t == '\0') {
    ok = true; /* "DIR" + slash-star-star also names DIR itself */
  } else if (p[0] == '*' && p[1] == '*') {
    for (const char *s = t; !ok; s++) {
      ok = match(m, p + 2, s);
      if (*s == '\0') break;
    }
  } else if (*p == '*') {
    for (const char *s = t; !ok; s++) {
      ok = match(m, p + 1, s);
      if (*s == '\0' || *s == '/') break;
    }
  } else if (*t == '\0') {
    ok = false;
  } else if (*p == '?') {
    ok = *t != '/' && match(m, p + 1, t + 1);
  } else if (*p == '[') {
    const char *next;
    ok = class_match(p, *t, &next) && match(m, next, t + 1);
  } else {
    ok = *p == *t && match(m, p + 1, t + 1);
  }
  if (!ok) m->failed[bit / 8] |= (unsigned char)(1u << (bit % 8));
  return ok;
}

bool mu_imgpolicy_glob_match(const char *pattern, const char *text) {
  if (pattern == NULL || text == NULL) return false;
  size_t plen = strlen(pattern), tlen = strlen(text);
  if (plen > MU_IMGPOLICY_MAX_PATTERN || tlen > MAX_TEXT) return false;
  matcher m = {.p0 = pattern, .t0 = text, .tlen = tlen};
  m.failed = calloc(((plen + 1) * (tlen + 1) + 7) / 8, 1);
  if (m.failed == NULL) return false;
  bool ok = match(&m, pattern, text);
  free(m.failed);
  return ok;
}
