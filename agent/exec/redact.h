/* Redaction of secret values in task output: every occurrence of a value is replaced by "***"
 * before output leaves the runner (to the output spool, the journal and the control plane).
 *
 * A stream of output arrives in chunks of any size, so a value may be split across chunks: a
 * mu_redact_stream holds back the tail of what it has seen while that tail could still be the
 * start of a value — at most (longest value - 1) bytes — and releases it once the next bytes
 * rule that out, or at the end (flush). The result is the same however the stream is split.
 *
 * Rules: matching is byte-for-byte (binary data is fine); at each position the longest value
 * that matches wins, and scanning goes on after it (so of overlapping occurrences the first is
 * replaced, and the full value of the other can no longer appear either). A stream that ends
 * inside a value (the task was killed mid-print) has that tail replaced too when it is
 * MU_REDACT_MIN bytes or more. Values shorter than MU_REDACT_MIN bytes are ignored: redacting
 * every "a" would destroy output and hint at the value anyway; the control plane refuses to
 * store such short secrets (lib/secrets/secret_box.h). */
#ifndef MU_REDACT_H
#define MU_REDACT_H

#include <stddef.h>

#include "lib/base/err.h"

#define MU_REDACT_MIN 4
#define MU_REDACT_MARK "***"

/* The set of values to redact. Immutable once made; shared by any number of streams. */
typedef struct mu_redactor mu_redactor;

/* Copies the n values (lens[i] bytes each, binary allowed). *ret is the caller's
 * (mu_redactor_free). With no value of MU_REDACT_MIN bytes or more *ret is NULL (nothing to
 * redact) and 0 is returned. MU_ENOMEM. */
int mu_redactor_new(const void *const *values, const size_t *lens, size_t n, mu_redactor **ret, mu_err *err);
/* Wipes the copies and frees r (NULL is fine). */
void mu_redactor_free(mu_redactor *r);

/* text with every value replaced; a new NUL-terminated string the caller frees, NULL when out
 * of memory. r NULL: a plain copy. */
char *mu_redact_text(const mu_redactor *r, const char *text);

/* One output stream's redaction state. Zero it with mu_redact_stream_init. */
typedef struct mu_redact_stream {
  const mu_redactor *r; /* borrowed; NULL: everything passes unchanged */
  unsigned char *buf;   /* held bytes, then the chunk being scanned */
  size_t n_held, cap;
  unsigned char *out; /* what feed/flush hand back */
  size_t out_cap;
} mu_redact_stream;

void mu_redact_stream_init(mu_redact_stream *st, const mu_redactor *r);
/* Scans len bytes of data. *ret_out / *ret_len: the redacted bytes ready to pass on (maybe
 * none), valid until the next call on st. MU_ENOMEM (nothing consumed). */
int mu_redact_stream_feed(mu_redact_stream *st, const void *data, size_t len, const void **ret_out, size_t *ret_len,
                          mu_err *err);
/* The stream ended: the held bytes, redacted where they end in a whole value. */
void mu_redact_stream_flush(mu_redact_stream *st, const void **ret_out, size_t *ret_len);
/* Wipes and frees the buffers (st can be initialised again). */
void mu_redact_stream_free(mu_redact_stream *st);

#endif
