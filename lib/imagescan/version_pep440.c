/* PEP 440 versions (the `packaging` library's grammar and order): [N!]N(.N)*[{a|b|rc}N]
 * [.postN][.devN][+local], with the alternative spellings PEP 440 normalises (alpha, beta, c,
 * pre, preview, rev, r, "-N" as a post release, '-', '_' or '.' separators, a leading 'v',
 * any case). Order: epoch, release (trailing zeros ignored), pre-release (a dev release of a
 * final sorts before its pre-releases), post, dev (none sorts after any), local (none first;
 * numeric segments above alphanumeric ones). */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "lib/imagescan/version.h"
#include "lib/imagescan/version_int.h"

#define PEP_MAX_PARTS 32

typedef struct pep_ver {
  uint64_t epoch;
  uint64_t rel[PEP_MAX_PARTS];
  size_t n_rel;
  int pre; /* -1 none, 0 a, 1 b, 2 rc */
  uint64_t pre_n;
  bool has_post, has_dev;
  uint64_t post_n, dev_n;
  const char *local; /* after '+', or NULL */
} pep_ver;

static bool sep(char c) { return c == '-' || c == '_' || c == '.'; }

/* Matches one of words (case-insensitive) at *p, the longest first; returns its index or -1. */
static int word(const char **p, const char *const *words, size_t n) {
  int best = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(words[i]);
    if (l > best_len && strncasecmp(*p, words[i], l) == 0) {
      best = (int)i;
      best_len = l;
    }
  }
  if (best >= 0) *p += best_len;
  return best;
}

/* An optional [sep]WORD[sep][N] group at *p; false (and *p unchanged) when absent. */
static bool group(const char **p, const char *const *words, size_t n, int *ret_word, bool *ret_has_n, uint64_t *ret_n) {
  const char *q = *p;
  if (sep(*q)) q++;
  int w = word(&q, words, n);
  if (w < 0) return false;
  const char *after = q;
  if (sep(*q) && isdigit((unsigned char)q[1])) q++;
  *ret_has_n = mu_ver_digits(&q, ret_n);
  if (!*ret_has_n) {
    q = after;
    *ret_n = 0;
  }
  *ret_word = w;
  *p = q;
  return true;
}

static bool pep_parse(const char *v, pep_ver *r) {
  memset(r, 0, sizeof *r);
  r->pre = -1;
  if (v == NULL) return false;
  const char *p = v;
  if (*p == 'v' || *p == 'V') p++;
  uint64_t first;
  if (!mu_ver_digits(&p, &first)) return false;
  if (*p == '!') {
    r->epoch = first;
    p++;
    if (!mu_ver_digits(&p, &first)) return false;
  }
  r->rel[r->n_rel++] = first;
  while (*p == '.' && isdigit((unsigned char)p[1])) {
    if (r->n_rel == PEP_MAX_PARTS) return false;
    p++;
    if (!mu_ver_digits(&p, &r->rel[r->n_rel++])) return false;
  }
  static const char *const pre_words[] = {"a", "b", "c", "rc", "alpha", "beta", "pre", "preview"};
  static const int pre_kind[] = {0, 1, 2, 2, 0, 1, 2, 2};
  static const char *const post_words[] = {"post", "rev", "r"};
  static const char *const dev_words[] = {"dev"};
  int w;
  bool has_n;
  uint64_t n;
  if (group(&p, pre_words, 8, &w, &has_n, &n)) {
    r->pre = pre_kind[w];
    r->pre_n = n;
  }
  if (*p == '-' && isdigit((unsigned char)p[1])) {
    p++;
    r->has_post = mu_ver_digits(&p, &r->post_n);
  } else if (group(&p, post_words, 3, &w, &has_n, &n)) {
    r->has_post = true;
    r->post_n = n;
  }
  if (group(&p, dev_words, 1, &w, &has_n, &n)) {
    r->has_dev = true;
    r->dev_n = n;
  }
  if (*p == '+') {
    p++;
    r->local = p;
    bool need = true; /* a segment must follow '+' and each separator */
    for (; *p; p++) {
      if (isalnum((unsigned char)*p)) need = false;
      else if (sep(*p) && !need) need = true;
      else return false;
    }
    if (need) return false;
  }
  return *p == '\0';
}

bool mu_ver_pep440_valid(const char *v) {
  pep_ver r;
  return pep_parse(v, &r);
}

static int u64cmp(uint64_t a, uint64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

/* One local segment [p, end of segment); returns its length. */
static size_t seg(const char *p) {
  size_t n = 0;
  while (p[n] && !sep(p[n])) n++;
  return n;
}

static bool all_digits(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)p[i])) return false;
  return true;
}

static int local_cmp(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b ? 0 : a == NULL ? -1 : 1;
  for (;;) {
    if (*a == '\0' || *b == '\0') return *a == *b ? 0 : *a == '\0' ? -1 : 1;
    size_t al = seg(a), bl = seg(b);
    bool an = all_digits(a, al), bn = all_digits(b, bl);
    int c;
    if (an && bn) {
      const char *x = a, *y = b;
      size_t xl = al, yl = bl;
      while (xl > 1 && *x == '0') x++, xl--;
      while (yl > 1 && *y == '0') y++, yl--;
      c = xl != yl ? (xl < yl ? -1 : 1) : strncmp(x, y, xl);
    } else if (an != bn) {
      c = an ? 1 : -1;
    } else {
      c = strncasecmp(a, b, al < bl ? al : bl);
      if (c == 0 && al != bl) c = al < bl ? -1 : 1;
    }
    if (c != 0) return c;
    a += al;
    b += bl;
    if (*a) a++;
    if (*b) b++;
  }
}

/* The pre-release rank: a dev release of a final (no pre, no post) sorts before its
 * pre-releases; no pre-release at all sorts after them. */
static int pre_rank(const pep_ver *v) {
  if (v->pre >= 0) return v->pre;
  if (!v->has_post && v->has_dev) return -1;
  return 3;
}

int mu_ver_pep440_cmp(const char *a, const char *b) {
  pep_ver x, y;
  if (!pep_parse(a, &x) || !pep_parse(b, &y)) return strcmp(a ? a : "", b ? b : "");
  int c = u64cmp(x.epoch, y.epoch);
  if (c != 0) return c;
  size_t n = x.n_rel > y.n_rel ? x.n_rel : y.n_rel;
  for (size_t i = 0; i < n; i++) {
    c = u64cmp(i < x.n_rel ? x.rel[i] : 0, i < y.n_rel ? y.rel[i] : 0);
    if (c != 0) return c;
  }
  int xr = pre_rank(&x), yr = pre_rank(&y);
  if (xr != yr) return xr < yr ? -1 : 1;
  c = x.pre >= 0 ? u64cmp(x.pre_n, y.pre_n) : 0;
  if (c != 0) return c;
  if (x.has_post != y.has_post) return x.has_post ? 1 : -1;
  c = u64cmp(x.post_n, y.post_n);
  if (c != 0) return c;
  if (x.has_dev != y.has_dev) return x.has_dev ? -1 : 1;
  c = u64cmp(x.dev_n, y.dev_n);
  if (c != 0) return c;
  return local_cmp(x.local, y.local);
}
