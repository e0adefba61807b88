/* Loads a job file: YAML (libyaml's document API) or JSON (jansson), converted to JSON and
 * decoded into a JobSpec by lib/pbjson so field errors carry their full path. */
#include "cli/jobfile.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/config/yaml_limits.h"
#include "lib/pbjson/pbjson.h"

#define MU_JOBFILE_MAX (4u << 20)

/* What a YAML file of len bytes may expand to. Every alias (*name) is expanded again, so a
 * few hundred bytes of nested aliases could otherwise become gigabytes. A file without aliases
 * never reaches the bounds (each value takes at least 2 of its bytes, and its text is in it);
 * the extra allows real reuse of anchors. */
#define MU_JOBFILE_ALIAS_VALUES 100000u
#define MU_JOBFILE_ALIAS_TEXT (1u << 20)

typedef struct expansion {
  size_t values, max_values;
  size_t text, max_text;
} expansion;

static json_t *yaml_to_json(yaml_document_t *doc, yaml_node_t *node, int depth, expansion *x, char *why,
                            size_t why_size) {
  if (node == NULL || depth > 64) {
    snprintf(why, why_size, "nesting too deep");
    return NULL;
  }
  x->values++;
  if (node->type == YAML_SCALAR_NODE) x->text += node->data.scalar.length;
  if (x->values > x->max_values || x->text > x->max_text) {
    snprintf(why, why_size, "aliases expand to more than %zu values or %zu bytes of text", x->max_values, x->max_text);
    return NULL;
  }
  switch (node->type) {
    case YAML_SCALAR_NODE: {
      const char *v = (const char *)node->data.scalar.value;
      if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
          (strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || v[0] == '\0'))
        return json_null();
      return json_stringn(v, node->data.scalar.length);
    }
    case YAML_SEQUENCE_NODE: {
      json_t *arr = json_array();
      for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        json_t *v = yaml_to_json(doc, yaml_document_get_node(doc, *it), depth + 1, x, why, why_size);
        if (v == NULL) {
          json_decref(arr);
          return NULL;
        }
        json_array_append_new(arr, v);
      }
      return arr;
    }
    case YAML_MAPPING_NODE: {
      json_t *obj = json_object();
      for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE) {
          snprintf(why, why_size, "line %lu: mapping keys must be plain text",
                   k ? (unsigned long)k->start_mark.line + 1 : 0UL);
          json_decref(obj);
          return NULL;
        }
        const char *key = (const char *)k->data.scalar.value;
        if (json_object_get(obj, key) != NULL) {
          snprintf(why, why_size, "line %lu: key '%s' given twice", (unsigned long)k->start_mark.line + 1, key);
          json_decref(obj);
          return NULL;
        }
        json_t *v = yaml_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1, x, why, why_size);
        if (v == NULL) {
          json_decref(obj);
          return NULL;
        }
        json_object_set_new(obj, key, v);
      }
      return obj;
    }
    default: snprintf(why, why_size, "empty document"); return NULL;
  }
}

static char *read_all(const char *path, size_t *ret_len, mu_err *err) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) {
    mu_err_set(err, MU_ENOENT, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(MU_JOBFILE_MAX + 1);
  size_t n = buf ? fread(buf, 1, MU_JOBFILE_MAX + 1, f) : 0;
  if (f != stdin) fclose(f);
  if (buf == NULL) {
    mu_err_set(err, MU_ENOMEM, "out of memory");
    return NULL;
  }
  if (n > MU_JOBFILE_MAX) {
    free(buf);
    mu_err_set(err, MU_EINVAL, "%s: larger than %u bytes", path, MU_JOBFILE_MAX);
    return NULL;
  }
  buf[n] = '\0';
  *ret_len = n;
  return buf;
}

int mu_jobfile_parse(const char *name, const char *text, size_t len, Muster__V1__JobSpec **ret_spec, mu_err *err) {
  return mu_jobfile_parse_as(&muster__v1__job_spec__descriptor, name, text, len, (ProtobufCMessage **)ret_spec, err);
}

int mu_jobfile_parse_as(const ProtobufCMessageDescriptor *desc, const char *name, const char *text, size_t len,
                        ProtobufCMessage **ret_msg, mu_err *err) {
  json_t *json = NULL;
  int rc = 0;
  const char *p = text;
  const char *end = text + len;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
  if (p < end && *p == '{') {
    json_error_t je;
    json = json_loadb(text, len, 0, &je);
    if (json == NULL) rc = mu_err_set(err, MU_EINVAL, "%s:%d: %s", name, je.line, je.text);
  } else {
    rc = mu_yaml_check_limits(name, text, len, MU_YAML_MAX_DEPTH, MU_YAML_MAX_NODES, err);
    if (rc == 0) {
      yaml_parser_t parser;
      yaml_document_t doc;
      yaml_parser_initialize(&parser);
      yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
      if (!yaml_parser_load(&parser, &doc)) {
        rc = mu_err_set(err, MU_EINVAL, "%s:%lu: %s", name, (unsigned long)parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "YAML syntax error");
      } else {
        char why[256] = "empty document";
        expansion x = {.max_values = len / 2 + MU_JOBFILE_ALIAS_VALUES, .max_text = len + MU_JOBFILE_ALIAS_TEXT};
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        json = root ? yaml_to_json(&doc, root, 0, &x, why, sizeof why) : NULL;
        if (json == NULL) rc = mu_err_set(err, MU_EINVAL, "%s: %s", name, why);
        yaml_document_delete(&doc);
      }
      yaml_parser_delete(&parser);
    }
  }
  if (rc == 0 && !json_is_object(json))
    rc = mu_err_set(err, MU_EINVAL, "%s: the top level must be a mapping (a job spec)", name);
  ProtobufCMessage *msg = NULL;
  if (rc == 0 && mu_pbjson_from_json(desc, json, &msg, err) != 0) {
    unsigned line = 0, col = 0;
    size_t plen = mu_jobfile_path_prefix(err->msg);
    if (plen > 0 && mu_jobfile_locate(text, len, err->msg, plen, &line, &col) == 0)
      rc = mu_err_prefix(err, "%s:%u:%u", name, line, col);
    else rc = mu_err_prefix(err, "%s", name);
  }
  if (rc == 0) *ret_msg = msg;
  json_decref(json);
  return rc;
}

int mu_jobfile_explain_file(const char *path, const char *msg, FILE *out) {
  size_t len = 0;
  mu_err err = {0};
  char *text = strcmp(path, "-") == 0 ? NULL : read_all(path, &len, &err);
  int n = mu_jobfile_explain(strcmp(path, "-") == 0 ? "<stdin>" : path, text, len, msg, out);
  free(text);
  return n;
}

int mu_jobfile_load(const char *path, Muster__V1__JobSpec **ret_spec, mu_err *err) {
  return mu_jobfile_load_as(&muster__v1__job_spec__descriptor, path, (ProtobufCMessage **)ret_spec, err);
}

int mu_jobfile_load_as(const ProtobufCMessageDescriptor *desc, const char *path, ProtobufCMessage **ret_msg,
                       mu_err *err) {
  size_t len = 0;
  char *text = read_all(path, &len, err);
  if (text == NULL) return err->code;
  int rc = mu_jobfile_parse_as(desc, path, text, len, ret_msg, err);
  free(text);
  return rc;
}
