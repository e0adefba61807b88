/* FILE:LINE:COL for the field paths in validation messages ("tasks[1].shell.script: ..."): the
 * job file is parsed again with libyaml (JSON is read as YAML's flow style) and each path is
 * followed through mappings and sequences to the deepest node it reaches. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/jobfile.h"
#include "lib/config/yaml_limits.h"

#define MU_LOCATE_SEGMENTS 32
#define MU_LOCATE_KEY_MAX 256

typedef struct segment {
  const char *key; /* NULL for an index */
  size_t len;
  unsigned long index;
} segment;

/* "tasks[1].http.headers.X-Id" -> tasks, [1], http, headers, X-Id. Returns the count, -1 when
 * text does not start like a path. */
static int split_path(const char *path, size_t n, segment *out) {
  int count = 0;
  size_t i = 0;
  while (i < n && count < MU_LOCATE_SEGMENTS) {
    if (path[i] == '[') {
      char *end;
      unsigned long v = strtoul(path + i + 1, &end, 10);
      if (end == path + i + 1 || (size_t)(end - path) >= n || *end != ']') return -1;
      out[count++] = (segment){.key = NULL, .index = v};
      i = (size_t)(end - path) + 1;
    } else {
      size_t j = i;
      while (j < n && path[j] != '.' && path[j] != '[') j++;
      if (j == i) return -1;
      out[count++] = (segment){.key = path + i, .len = j - i};
      i = j;
    }
    if (i < n && path[i] == '.') i++;
  }
  return count;
}

/* A file key matches a path key exactly, or as the other naming (snake_case / lowerCamel). */
static int key_matches(const char *file_key, size_t file_len, const char *key, size_t len) {
  if (file_len == len && memcmp(file_key, key, len) == 0) return 1;
  size_t a = 0, b = 0;
  while (a < file_len || b < len) {
    while (a < file_len && file_key[a] == '_') a++;
    while (b < len && key[b] == '_') b++;
    if (a == file_len || b == len) return a == file_len && b == len;
    if (tolower((unsigned char)file_key[a]) != tolower((unsigned char)key[b])) return 0;
    a++;
    b++;
  }
  return 1;
}

/* The value under key in a mapping node, trying the longest run of segments from *i joined
 * by "." first (header names and the like may hold dots). */
static yaml_node_t *mapping_get(yaml_document_t *doc, yaml_node_t *map, const segment *seg, int count, int *i) {
  for (int last = count - 1; last >= *i; last--) {
    int dotted = 1;
    for (int k = *i; k <= last; k++) dotted &= seg[k].key != NULL;
    if (!dotted) continue;
    const char *key = seg[*i].key;
    size_t len = (size_t)(seg[last].key + seg[last].len - key);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(doc, p->key);
      if (k == NULL || k->type != YAML_SCALAR_NODE) continue;
      if (key_matches((const char *)k->data.scalar.value, k->data.scalar.length, key, len)) {
        *i = last + 1;
        return yaml_document_get_node(doc, p->value);
      }
    }
  }
  return NULL;
}

int mu_jobfile_locate(const char *text, size_t len, const char *path, size_t path_len, unsigned *ret_line,
                      unsigned *ret_col) {
  segment seg[MU_LOCATE_SEGMENTS];
  int count = split_path(path, path_len, seg);
  if (count <= 0) return -1;
  mu_err err = {0};
  if (mu_yaml_check_limits("job", text, len, MU_YAML_MAX_DEPTH, MU_YAML_MAX_NODES, &err) != 0) return -1;
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = -1;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (yaml_parser_load(&parser, &doc)) {
    yaml_node_t *node = yaml_document_get_root_node(&doc), *found = NULL;
    int i = 0, depth = 0;
    while (node != NULL && i < count && depth++ < MU_LOCATE_SEGMENTS) {
      yaml_node_t *next = NULL;
      if (node->type == YAML_MAPPING_NODE && seg[i].key != NULL) {
        next = mapping_get(&doc, node, seg, count, &i);
      } else if (node->type == YAML_SEQUENCE_NODE && seg[i].key == NULL) {
        size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        if (seg[i].index < n) next = yaml_document_get_node(&doc, node->data.sequence.items.start[seg[i].index]);
        i++;
      }
      if (next == NULL) break;
      found = node = next;
    }
    if (found != NULL) {
      *ret_line = (unsigned)found->start_mark.line + 1;
      *ret_col = (unsigned)found->start_mark.column + 1;
      rc = 0;
    }
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  return rc;
}

size_t mu_jobfile_path_prefix(const char *msg) {
  size_t n = 0;
  while (msg[n] != '\0' && msg[n] != ':' && msg[n] != ' ' && msg[n] != ';') n++;
  if (n == 0 || msg[n] != ':' || msg[n + 1] != ' ' || !islower((unsigned char)msg[0])) return 0;
  return n;
}

int mu_jobfile_explain(const char *name, const char *text, size_t len, const char *msg, FILE *out) {
  int problems = 0;
  const char *p = msg;
  while (*p != '\0') {
    /* this problem runs to the next "; " that starts another path */
    const char *end = p;
    for (;;) {
      end = strstr(end, "; ");
      if (end == NULL || mu_jobfile_path_prefix(end + 2) > 0) break;
      end += 2;
    }
    size_t n = end ? (size_t)(end - p) : strlen(p);
    size_t plen = mu_jobfile_path_prefix(p);
    unsigned line = 0, col = 0;
    if (plen > 0 && text != NULL && mu_jobfile_locate(text, len, p, plen, &line, &col) == 0)
      fprintf(out, "%s:%u:%u: %.*s\n", name, line, col, (int)n, p);
    else fprintf(out, "%s: %.*s\n", name, (int)n, p);
    problems++;
    if (end == NULL) break;
    p = end + 2;
  }
  return problems;
}
