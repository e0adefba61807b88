/* Secret redaction (redact.h): one scan over a buffer that decides, position by position,
 * whether a value starts there, and stops where the answer depends on bytes not seen yet.
 * A table of the values' first bytes keeps the common case (no value starts here) to one
 * lookup per byte. */
#include "agent/exec/redact.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct mu_redactor {
  size_t n;
  unsigned char **values;
  size_t *lens;
  bool first[256]; /* some value starts with this byte */
};

int mu_redactor_new(const void *const *values, const size_t *lens, size_t n, mu_redactor **ret, mu_err *err) {
  *ret = NULL;
  mu_redactor *r = calloc(1, sizeof *r);
  if (r != NULL) r->values = calloc(n + 1, sizeof *r->values);
  if (r != NULL && r->values != NULL) r->lens = calloc(n + 1, sizeof *r->lens);
  if (r == NULL || r->values == NULL || r->lens == NULL) {
    mu_redactor_free(r);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    if (lens[i] < MU_REDACT_MIN) continue;
    unsigned char *v = malloc(lens[i]);
    if (v == NULL) {
      mu_redactor_free(r);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    memcpy(v, values[i], lens[i]);
    r->values[r->n] = v;
    r->lens[r->n++] = lens[i];
    r->first[v[0]] = true;
  }
  if (r->n == 0) {
    mu_redactor_free(r);
    return 0;
  }
  *ret = r;
  return 0;
}

void mu_redactor_free(mu_redactor *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->n; i++) {
    explicit_bzero(r->values[i], r->lens[i]);
    free(r->values[i]);
  }
  free(r->values);
  free(r->lens);
  free(r);
}

/* Redacts in[0..n) into out (which has room for n bytes: "***" is never longer than a value).
 * Returns how many bytes of in are decided; the rest could still begin a value (unless final)
 * and must be scanned again with what follows. *ret_len: bytes written to out. */
static size_t scan(const mu_redactor *r, const unsigned char *in, size_t n, bool final, unsigned char *out,
                   size_t *ret_len) {
  size_t i = 0, o = 0;
  while (i < n) {
    if (!r->first[in[i]]) {
      out[o++] = in[i++];
      continue;
    }
    size_t best = 0, rest = n - i;
    bool prefix = false; /* a value longer than what is left starts with what is left */
    for (size_t k = 0; k < r->n; k++) {
      size_t l = r->lens[k];
      if (l <= rest) {
        if (l > best && memcmp(in + i, r->values[k], l) == 0) best = l;
      } else if (!prefix && memcmp(in + i, r->values[k], rest) == 0) {
        prefix = true;
      }
    }
    if (prefix && !final) break;           /* decided by bytes to come */
    if (prefix && rest >= MU_REDACT_MIN) { /* the stream ended inside a value */
      memcpy(out + o, MU_REDACT_MARK, sizeof MU_REDACT_MARK - 1);
      o += sizeof MU_REDACT_MARK - 1;
      i = n;
    } else if (best > 0) {
      memcpy(out + o, MU_REDACT_MARK, sizeof MU_REDACT_MARK - 1);
      o += sizeof MU_REDACT_MARK - 1;
      i += best;
    } else {
      out[o++] = in[i++];
    }
  }
  *ret_len = o;
  return i;
}

char *mu_redact_text(const mu_redactor *r, const char *text) {
  size_t n = strlen(text), len = n;
  char *out = malloc(n + 1);
  if (out == NULL) return NULL;
  if (r == NULL) memcpy(out, text, n);
  else scan(r, (const unsigned char *)text, n, true, (unsigned char *)out, &len);
  out[len] = '\0';
  return out;
}

void mu_redact_stream_init(mu_redact_stream *st, const mu_redactor *r) {
  memset(st, 0, sizeof *st);
  st->r = r;
}

static int grow(unsigned char **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  unsigned char *g = malloc(c); /* not realloc: the old bytes may be secret, wipe them */
  if (g == NULL) return MU_ENOMEM;
  if (*p != NULL) {
    memcpy(g, *p, *cap);
    explicit_bzero(*p, *cap);
    free(*p);
  }
  *p = g;
  *cap = c;
  return 0;
}

int mu_redact_stream_feed(mu_redact_stream *st, const void *data, size_t len, const void **ret_out, size_t *ret_len,
                          mu_err *err) {
  *ret_out = NULL;
  *ret_len = 0;
  if (st->r == NULL || len == 0) {
    *ret_out = data;
    *ret_len = st->r == NULL ? len : 0;
    return 0;
  }
  size_t n = st->n_held + len;
  if (grow(&st->buf, &st->cap, n) != 0 || grow(&st->out, &st->out_cap, n) != 0)
    return mu_err_set(err, MU_ENOMEM, "redaction: out of memory");
  memcpy(st->buf + st->n_held, data, len);
  size_t done = scan(st->r, st->buf, n, false, st->out, ret_len);
  st->n_held = n - done;
  memmove(st->buf, st->buf + done, st->n_held);
  explicit_bzero(st->buf + st->n_held, done);
  *ret_out = st->out;
  return 0;
}

void mu_redact_stream_flush(mu_redact_stream *st, const void **ret_out, size_t *ret_len) {
  *ret_out = NULL;
  *ret_len = 0;
  if (st->r == NULL || st->n_held == 0) return;
  scan(st->r, st->buf, st->n_held, true, st->out, ret_len); /* out_cap >= n_held: see feed */
  explicit_bzero(st->buf, st->n_held);
  st->n_held = 0;
  *ret_out = st->out;
}

void mu_redact_stream_free(mu_redact_stream *st) {
  if (st->buf != NULL) explicit_bzero(st->buf, st->cap);
  if (st->out != NULL) explicit_bzero(st->out, st->out_cap);
  free(st->buf);
  free(st->out);
  const mu_redactor *r = st->r;
  mu_redact_stream_init(st, r);
}
