/* Labels: a small bounded set of key=value pairs ("role=web,dc=eu-1"), as an agent advertises
 * them and as selectors name them. Parsing validates keys and values and says what is wrong. */
#ifndef MU_LABELS_H
#define MU_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"

#define MU_LABELS_MAX_DEFAULT 64 /* pairs per set unless mu_labels_init_max says otherwise */
#define MU_LABEL_KEY_MAX 63      /* bytes */
#define MU_LABEL_VALUE_MAX 255   /* bytes */

/* Parse flags. */
#define MU_LABELS_GLOB 0x1 /* values may hold glob characters * ? [ ] (selectors) */

typedef struct mu_label {
  char *key;   /* owned by the set */
  char *value; /* owned by the set; may be "" */
} mu_label;

/* Zero-initialised is NOT valid: call mu_labels_init. Owns its pairs; free with mu_labels_free. */
typedef struct mu_labels {
  mu_label *items;
  size_t n;
  size_t max; /* bound on n */
} mu_labels;

void mu_labels_init(mu_labels *labels); /* max = MU_LABELS_MAX_DEFAULT */
void mu_labels_init_max(mu_labels *labels, size_t max);
/* Frees every pair; the set is empty (and reusable) afterwards. */
void mu_labels_free(mu_labels *labels);

/* A key: 1..63 bytes of [A-Za-z0-9._/-], starting with a letter or digit.
 * A value: 0..255 bytes of [A-Za-z0-9._:/@+-] (plus * ? [ ] with MU_LABELS_GLOB).
 * Return 0 or MU_EINVAL with a message naming the key and the first bad character. */
int mu_label_key_check(const char *key, mu_err *err);
int mu_label_value_check(const char *key, const char *value, int flags, mu_err *err);

/* Adds or replaces key. Copies both strings. MU_EINVAL on a bad key/value, MU_ENOSPC when the
 * set is full, MU_ENOMEM. On error the set is unchanged. */
int mu_labels_set(mu_labels *labels, const char *key, const char *value, int flags, mu_err *err);

/* Parses "k=v,k2=v2" (spaces around items and '=' are ignored; "" is an empty set) and adds
 * the pairs to labels. A key given twice in text is an error. On error labels is unchanged. */
int mu_labels_parse(mu_labels *labels, const char *text, int flags, mu_err *err);

/* The value for key, borrowed from the set, or NULL. */
const char *mu_labels_get(const mu_labels *labels, const char *key);

/* Replaces dst's contents with a copy of src (dst must be initialised). On error dst is
 * unchanged. */
int mu_labels_copy(mu_labels *dst, const mu_labels *src, mu_err *err);

/* Writes "k=v,k2=v2" into buf (always NUL-terminated when size > 0). Returns the length the
 * full text needs, like snprintf. */
size_t mu_labels_format(const mu_labels *labels, char *buf, size_t size);

#endif
