/* A loaded YAML file whose top level is a mapping of fields, walked with line numbers so every
 * error can read "FILE:LINE: field 'NAME': what is wrong". Built on libyaml's document API;
 * nodes are small value handles that borrow from their mu_yaml_doc. */
#ifndef MU_YAML_DOC_H
#define MU_YAML_DOC_H

#include <stddef.h>

#include "lib/base/err.h"

/* Default cap on a config file's size; a bigger file is refused before parsing. */
#define MU_YAML_DOC_MAX_BYTES_DEFAULT (1024 * 1024)

typedef struct mu_yaml_doc mu_yaml_doc;

typedef enum {
  MU_YAML_NULL = 0, /* absent value, "~", "null" or an empty plain scalar */
  MU_YAML_SCALAR,
  MU_YAML_LIST,
  MU_YAML_MAP,
} mu_yaml_kind;

/* A borrowed handle to one node; valid while its doc lives. id 0 means "no node" (NULL). */
typedef struct mu_yaml_node {
  const mu_yaml_doc *doc;
  int id;
} mu_yaml_node;

/* One top-level field handed to a walk callback. name and value borrow from the doc. */
typedef struct mu_yaml_field {
  const char *file; /* the path the doc was loaded from */
  const char *name; /* the key */
  int line;         /* 1-based line of the key */
  mu_yaml_node value;
  int err_line; /* a callback may set this to the line of an inner node it blames */
} mu_yaml_field;

/* Loads and parses path (at most max_bytes; 0 means MU_YAML_DOC_MAX_BYTES_DEFAULT). An empty
 * file is an empty mapping. Errors (all name the file): MU_ENOENT/MU_EPERM/MU_EIO with the
 * errno text when unreadable, MU_ENOSPC when too big, MU_EINVAL for YAML syntax errors
 * ("FILE:LINE: YAML syntax error: ..."), a top level that is not a mapping, or more than one
 * document. On success *ret_doc is owned by the caller, who frees it with mu_yaml_doc_free. */
int mu_yaml_doc_load(const char *path, size_t max_bytes, mu_yaml_doc **ret_doc, mu_err *err);

/* Same, parsing text (len bytes) and naming it `name` in messages. Used by tests and stdin. */
int mu_yaml_doc_parse(const char *name, const char *text, size_t len, mu_yaml_doc **ret_doc, mu_err *err);

void mu_yaml_doc_free(mu_yaml_doc *doc);

const char *mu_yaml_doc_file(const mu_yaml_doc *doc);
mu_yaml_node mu_yaml_doc_root(const mu_yaml_doc *doc);

/* Calls fn once per top-level field, in file order. Rejects non-string keys and duplicate
 * keys itself. An error fn returns (with a bare message such as "bad duration ...") is
 * prefixed as "FILE:LINE: field 'NAME': " (LINE = field->err_line if set, else the key's);
 * the walk stops at the first error and returns its code. */
typedef int (*mu_yaml_field_fn)(void *ctx, mu_yaml_field *field, mu_err *err);
int mu_yaml_doc_walk(const mu_yaml_doc *doc, mu_yaml_field_fn fn, void *ctx, mu_err *err);

mu_yaml_kind mu_yaml_node_kind(mu_yaml_node node);
/* "a string", "a list", "a mapping", "an empty value": for "expected X, got Y" messages. */
const char *mu_yaml_kind_name(mu_yaml_kind kind);
int mu_yaml_node_line(mu_yaml_node node); /* 1-based; 0 for no node */
/* The text of a scalar; "" for a NULL node; NULL for a list or mapping. Borrowed. */
const char *mu_yaml_node_text(mu_yaml_node node);
/* Number of items (list) or pairs (mapping); 0 otherwise. */
size_t mu_yaml_node_len(mu_yaml_node node);
mu_yaml_node mu_yaml_node_item(mu_yaml_node list, size_t i);
mu_yaml_node mu_yaml_node_key(mu_yaml_node map, size_t i);
mu_yaml_node mu_yaml_node_value(mu_yaml_node map, size_t i);

#endif
