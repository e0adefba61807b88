/* Loads a YAML config file into a libyaml document and walks its top-level mapping, so that
 * config loaders see (name, line, value) triples and every error they raise can be prefixed
 * with "FILE:LINE: field 'NAME': ". Syntax errors, oversize and unreadable files are turned
 * into messages that name the file (and the line, when libyaml knows it). */
#include "lib/config/yaml_doc.h"
#include "lib/config/yaml_limits.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct mu_yaml_doc {
  char *file;
  yaml_document_t document;
  bool loaded; /* document must be deleted */
};

static yaml_node_t *node_get(mu_yaml_node n) {
  if (n.doc == NULL || n.id <= 0 || !n.doc->loaded) return NULL;
  return yaml_document_get_node((yaml_document_t *)&n.doc->document, n.id);
}

static bool scalar_is_null(const yaml_node_t *node) {
  if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *v = (const char *)node->data.scalar.value;
  return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
         strcmp(v, "NULL") == 0;
}

/* libyaml reports reader errors (bad UTF-8) as a byte offset; turn it into a line. */
static int offset_to_line(const char *text, size_t len, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < len; i++)
    if (text[i] == '\n') line++;
  return line;
}

static int syntax_error(const char *name, const char *text, size_t len, const yaml_parser_t *p, mu_err *err) {
  const char *problem = p->problem ? p->problem : "malformed document";
  if (p->error == YAML_READER_ERROR)
    return mu_err_set(err, MU_EINVAL, "%s:%d: YAML syntax error: %s", name,
                      offset_to_line(text, len, p->problem_offset), problem);
  if (p->error == YAML_MEMORY_ERROR) return mu_err_set(err, MU_ENOMEM, "%s: out of memory while parsing YAML", name);
  int line = (int)p->problem_mark.line + 1;
  int col = (int)p->problem_mark.column + 1;
  if (p->context != NULL)
    return mu_err_set(err, MU_EINVAL, "%s:%d: YAML syntax error: %s (column %d, %s at line %d)", name, line, problem,
                      col, p->context, (int)p->context_mark.line + 1);
  return mu_err_set(err, MU_EINVAL, "%s:%d: YAML syntax error: %s (column %d)", name, line, problem, col);
}

/* Our API hands out C strings, so a scalar with an embedded NUL would be silently cut. */
static int check_scalars(mu_yaml_doc *doc, mu_err *err) {
  yaml_document_t *d = &doc->document;
  for (yaml_node_t *node = d->nodes.start; node < d->nodes.top; node++) {
    if (node->type != YAML_SCALAR_NODE) continue;
    if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
      return mu_err_set(err, MU_EINVAL, "%s:%d: string contains a NUL byte", doc->file, (int)node->start_mark.line + 1);
  }
  return 0;
}

int mu_yaml_doc_parse(const char *name, const char *text, size_t len, mu_yaml_doc **ret_doc, mu_err *err) {
  yaml_parser_t parser;
  yaml_document_t extra;
  int rc;
  mu_yaml_doc *doc = calloc(1, sizeof *doc);
  if (doc == NULL) return mu_err_set(err, MU_ENOMEM, "%s: out of memory", name);
  doc->file = strdup(name);
  if (doc->file == NULL) {
    free(doc);
    return mu_err_set(err, MU_ENOMEM, "%s: out of memory", name);
  }
  rc = mu_yaml_check_limits(name, text, len, MU_YAML_MAX_DEPTH, MU_YAML_MAX_NODES, err);
  if (rc != 0) goto fail_doc;
  if (!yaml_parser_initialize(&parser)) {
    rc = mu_err_set(err, MU_ENOMEM, "%s: cannot initialise the YAML parser", name);
    goto fail_doc;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc->document)) {
    rc = syntax_error(name, text, len, &parser, err);
    goto fail;
  }
  doc->loaded = true;
  /* A second document in a config file is almost surely a mistake ("---" pasted twice). */
  if (!yaml_parser_load(&parser, &extra)) {
    rc = syntax_error(name, text, len, &parser, err);
    goto fail;
  }
  yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
  int extra_line = extra_root ? (int)extra_root->start_mark.line + 1 : 0;
  yaml_document_delete(&extra);
  if (extra_root != NULL) {
    rc = mu_err_set(err, MU_EINVAL, "%s:%d: more than one YAML document (expected one mapping)", name, extra_line);
    goto fail;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc->document);
  if (root != NULL && root->type != YAML_MAPPING_NODE && !(root->type == YAML_SCALAR_NODE && scalar_is_null(root))) {
    rc = mu_err_set(err, MU_EINVAL, "%s:%d: top level must be a mapping of fields, got %s", name,
                    (int)root->start_mark.line + 1, root->type == YAML_SEQUENCE_NODE ? "a list" : "a string");
    goto fail;
  }
  rc = check_scalars(doc, err);
  if (rc < 0) goto fail;
  yaml_parser_delete(&parser);
  *ret_doc = doc;
  return 0;
fail:
  yaml_parser_delete(&parser);
fail_doc:
  mu_yaml_doc_free(doc);
  return rc;
}

int mu_yaml_doc_load(const char *path, size_t max_bytes, mu_yaml_doc **ret_doc, mu_err *err) {
  int rc;
  char *buf = NULL;
  if (max_bytes == 0) max_bytes = MU_YAML_DOC_MAX_BYTES_DEFAULT;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    rc = -errno;
    return mu_err_set(err, rc, "%s: cannot open config file: %s", path, strerror(-rc));
  }
  buf = malloc(max_bytes + 1);
  if (buf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  size_t len = fread(buf, 1, max_bytes + 1, f);
  if (ferror(f)) {
    rc = errno != 0 ? -errno : MU_EIO;
    mu_err_set(err, rc, "%s: cannot read config file: %s", path, strerror(-rc));
    goto fail;
  }
  if (len > max_bytes) {
    rc = mu_err_set(err, MU_ENOSPC, "%s: config file is larger than %zu bytes", path, max_bytes);
    goto fail;
  }
  fclose(f);
  f = NULL;
  rc = mu_yaml_doc_parse(path, buf, len, ret_doc, err);
fail:
  if (f != NULL) fclose(f);
  free(buf);
  return rc;
}

void mu_yaml_doc_free(mu_yaml_doc *doc) {
  if (doc == NULL) return;
  if (doc->loaded) yaml_document_delete(&doc->document);
  free(doc->file);
  free(doc);
}

const char *mu_yaml_doc_file(const mu_yaml_doc *doc) { return doc->file; }

mu_yaml_node mu_yaml_doc_root(const mu_yaml_doc *doc) {
  mu_yaml_node n = {doc, 0};
  if (doc->loaded && yaml_document_get_root_node((yaml_document_t *)&doc->document) != NULL)
    n.id = 1; /* libyaml numbers the root node 1 */
  return n;
}

mu_yaml_kind mu_yaml_node_kind(mu_yaml_node n) {
  yaml_node_t *node = node_get(n);
  if (node == NULL) return MU_YAML_NULL;
  switch (node->type) {
    case YAML_SCALAR_NODE: return scalar_is_null(node) ? MU_YAML_NULL : MU_YAML_SCALAR;
    case YAML_SEQUENCE_NODE: return MU_YAML_LIST;
    case YAML_MAPPING_NODE: return MU_YAML_MAP;
    default: return MU_YAML_NULL;
  }
}

const char *mu_yaml_kind_name(mu_yaml_kind kind) {
  switch (kind) {
    case MU_YAML_SCALAR: return "a string";
    case MU_YAML_LIST: return "a list";
    case MU_YAML_MAP: return "a mapping";
    default: return "an empty value";
  }
}

int mu_yaml_node_line(mu_yaml_node n) {
  yaml_node_t *node = node_get(n);
  return node ? (int)node->start_mark.line + 1 : 0;
}

const char *mu_yaml_node_text(mu_yaml_node n) {
  yaml_node_t *node = node_get(n);
  if (node == NULL) return "";
  if (node->type != YAML_SCALAR_NODE) return NULL;
  return scalar_is_null(node) ? "" : (const char *)node->data.scalar.value;
}

size_t mu_yaml_node_len(mu_yaml_node n) {
  yaml_node_t *node = node_get(n);
  if (node == NULL) return 0;
  if (node->type == YAML_SEQUENCE_NODE)
    return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
  if (node->type == YAML_MAPPING_NODE) return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
  return 0;
}

mu_yaml_node mu_yaml_node_item(mu_yaml_node list, size_t i) {
  mu_yaml_node r = {list.doc, 0};
  yaml_node_t *node = node_get(list);
  if (node != NULL && node->type == YAML_SEQUENCE_NODE && i < mu_yaml_node_len(list))
    r.id = node->data.sequence.items.start[i];
  return r;
}

mu_yaml_node mu_yaml_node_key(mu_yaml_node map, size_t i) {
  mu_yaml_node r = {map.doc, 0};
  yaml_node_t *node = node_get(map);
  if (node != NULL && node->type == YAML_MAPPING_NODE && i < mu_yaml_node_len(map))
    r.id = node->data.mapping.pairs.start[i].key;
  return r;
}

mu_yaml_node mu_yaml_node_value(mu_yaml_node map, size_t i) {
  mu_yaml_node r = {map.doc, 0};
  yaml_node_t *node = node_get(map);
  if (node != NULL && node->type == YAML_MAPPING_NODE && i < mu_yaml_node_len(map))
    r.id = node->data.mapping.pairs.start[i].value;
  return r;
}

int mu_yaml_doc_walk(const mu_yaml_doc *doc, mu_yaml_field_fn fn, void *ctx, mu_err *err) {
  mu_yaml_node root = mu_yaml_doc_root(doc);
  if (mu_yaml_node_kind(root) != MU_YAML_MAP) return 0; /* empty file: no fields */
  size_t n = mu_yaml_node_len(root);
  for (size_t i = 0; i < n; i++) {
    mu_yaml_node key = mu_yaml_node_key(root, i);
    int line = mu_yaml_node_line(key);
    if (mu_yaml_node_kind(key) != MU_YAML_SCALAR)
      return mu_err_set(err, MU_EINVAL, "%s:%d: field names must be strings, got %s", doc->file, line,
                        mu_yaml_kind_name(mu_yaml_node_kind(key)));
    const char *name = mu_yaml_node_text(key);
    for (size_t j = 0; j < i; j++) {
      mu_yaml_node prev = mu_yaml_node_key(root, j);
      if (strcmp(mu_yaml_node_text(prev), name) == 0)
        return mu_err_set(err, MU_EINVAL, "%s:%d: field '%s': given twice (first at line %d)", doc->file, line, name,
                          mu_yaml_node_line(prev));
    }
    mu_yaml_field field = {
        .file = doc->file,
        .name = name,
        .line = line,
        .value = mu_yaml_node_value(root, i),
        .err_line = 0,
    };
    mu_err_clear(err);
    int rc = fn(ctx, &field, err);
    if (rc < 0) {
      mu_err_prefix(err, "%s:%d: field '%s'", doc->file, field.err_line > 0 ? field.err_line : line, name);
      return rc;
    }
  }
  return 0;
}
