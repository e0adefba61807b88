/* Table-driven config fields: one validator per kind (id, path, address, list, duration,
 * size, count, bool, log level, labels) used both for YAML values and for flag text. Type
 * mismatches in YAML ("expected a duration, got a list") and bad values are reported with the
 * field's name; yaml_doc adds the file and line. */
#include "lib/config/config_field.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/config/addr.h"
#include "lib/config/labels.h"
#include "lib/config/strlist.h"
#include "lib/config/yaml_doc.h"

#define MEMBER(cfg, f, type) ((type *)((char *)(cfg) + (f)->offset))

static bool is_list(mu_cfg_kind k) { return k == MU_CF_ADDR_LIST || k == MU_CF_URL_LIST || k == MU_CF_PATH_LIST; }

static const char *expected(mu_cfg_kind k) {
  switch (k) {
    case MU_CF_ID:
    case MU_CF_MEMBER_ID: return "an id";
    case MU_CF_PATH: return "a path";
    case MU_CF_PREFIX: return "a key prefix such as \"/muster/\"";
    case MU_CF_ADDR:
    case MU_CF_OPT_ADDR: return "a HOST:PORT address";
    case MU_CF_DURATION: return "a duration such as \"5s\"";
    case MU_CF_SIZE: return "a size such as \"16M\"";
    case MU_CF_COUNT: return "a whole number";
    case MU_CF_BOOL: return "true or false";
    case MU_CF_LOG_LEVEL: return "one of debug, info, warn, error";
    case MU_CF_LOG_FORMAT: return "text or json";
    case MU_CF_LABELS: return "a mapping or a \"k=v,k2=v2\" string";
    case MU_CF_PLUGINS: return "a mapping {TYPE: {isolation: in-process|process}} or \"TYPE.isolation=process,...\"";
    case MU_CF_QUEUES: return "a mapping {NAME: {weight: N, max_running: N}} or \"NAME.weight=N,...\"";
    default: return "a list or a comma-separated string";
  }
}

/* "100ms", "5s", "10m", "2h": the shortest exact spelling, for range messages. */
static void format_ms(int64_t ms, char *buf, size_t size) {
  if (ms != 0 && ms % 3600000 == 0) snprintf(buf, size, "%" PRId64 "h", ms / 3600000);
  else if (ms != 0 && ms % 60000 == 0) snprintf(buf, size, "%" PRId64 "m", ms / 60000);
  else if (ms != 0 && ms % 1000 == 0) snprintf(buf, size, "%" PRId64 "s", ms / 1000);
  else snprintf(buf, size, "%" PRId64 "ms", ms);
}

static void format_bytes(uint64_t b, char *buf, size_t size) {
  static const char units[] = "BKMGT";
  int u = 0;
  while (u < 4 && b != 0 && b % 1024 == 0) {
    b /= 1024;
    u++;
  }
  snprintf(buf, size, "%" PRIu64 "%s", b, u ? (char[]){units[u], 0} : "");
}

int mu_cfg_copy_str(char *dst, size_t size, const char *src, mu_err *err) {
  size_t len = strlen(src);
  if (len >= size) return mu_err_set(err, MU_EINVAL, "value is %zu bytes long (max %zu)", len, size - 1);
  memcpy(dst, src, len + 1);
  return 0;
}

static int check_id(const char *text, bool allow_colon, mu_err *err) {
  size_t len = strlen(text);
  if (len == 0) return mu_err_set(err, MU_EINVAL, "empty id");
  if (len > MU_CFG_ID_MAX) return mu_err_set(err, MU_EINVAL, "id is %zu bytes long (max %d)", len, MU_CFG_ID_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (isalnum(c) || c == '.' || c == '_' || c == '-' || (allow_colon && c == ':')) continue;
    return mu_err_set(err, MU_EINVAL,
                      "bad id \"%s\": character %zu is not allowed (allowed: letters, digits, "
                      ". _ -%s)",
                      text, i + 1, allow_colon ? " :" : "");
  }
  return 0;
}

static int check_path(const char *text, mu_err *err) {
  if (text[0] == '\0') return mu_err_set(err, MU_EINVAL, "empty path");
  if (strlen(text) >= MU_CFG_PATH_MAX)
    return mu_err_set(err, MU_EINVAL, "path is longer than %d bytes", MU_CFG_PATH_MAX - 1);
  return 0;
}

static int check_list_item(mu_cfg_kind kind, const char *text, mu_err *err) {
  switch (kind) {
    case MU_CF_ADDR_LIST: return mu_hostport_parse(text, NULL, 0, NULL, err);
    case MU_CF_URL_LIST: return mu_url_check(text, err);
    default: return check_path(text, err);
  }
}

/* Replaces the list member with tmp after checking every item and the minimum count. lines
 * (may be NULL) gives each item's YAML line so the error points at the bad item. */
static int finish_list(void *cfg, const mu_cfg_field *f, mu_strlist *tmp, const int *lines, mu_yaml_field *yf,
                       mu_err *err) {
  for (size_t i = 0; i < tmp->n; i++) {
    int rc = check_list_item(f->kind, tmp->items[i], err);
    if (rc < 0) {
      if (yf != NULL && lines != NULL) yf->err_line = lines[i];
      mu_strlist_free(tmp);
      return rc;
    }
  }
  if ((int64_t)tmp->n < f->min) {
    mu_strlist_free(tmp);
    return mu_err_set(err, MU_EINVAL, "needs at least %" PRId64 " item%s", f->min, f->min == 1 ? "" : "s");
  }
  mu_strlist *dst = MEMBER(cfg, f, mu_strlist);
  tmp->max = dst->max;
  mu_strlist_free(dst);
  *dst = *tmp;
  return 0;
}

static int parse_count(const char *text, int64_t min, int64_t max, uint32_t *ret, mu_err *err) {
  char *end;
  if (!isdigit((unsigned char)text[0]))
    return mu_err_set(err, MU_EINVAL, "bad number \"%s\" (expected a whole number)", text);
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (*end != '\0') return mu_err_set(err, MU_EINVAL, "bad number \"%s\" (expected a whole number)", text);
  if (errno == ERANGE || v < (unsigned long long)min || v > (unsigned long long)max)
    return mu_err_set(err, MU_EINVAL, "%s is out of range %" PRId64 "..%" PRId64, text, min, max);
  *ret = (uint32_t)v;
  return 0;
}

static int parse_bool(const char *text, bool *ret, mu_err *err) {
  static const char *yes[] = {"true", "yes", "on", "1"};
  static const char *no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) {
      *ret = true;
      return 0;
    }
    if (strcasecmp(text, no[i]) == 0) {
      *ret = false;
      return 0;
    }
  }
  return mu_err_set(err, MU_EINVAL, "bad boolean \"%s\" (expected true or false)", text);
}

/* Sets a non-list field from text. The member is only written once text is valid. */
/* One agent `plugins:` setting, "TYPE.SETTING" = value (docs/plugins.md, Isolation). */
static int check_plugin_setting(const char *key, const char *value, mu_err *err) {
  const char *dot = strrchr(key, '.');
  if (dot == NULL || dot == key)
    return mu_err_set(err, MU_EINVAL, "'%s': expected TYPE.SETTING, e.g. sleep-echo.isolation", key);
  for (const char *c = key; c < dot; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
      return mu_err_set(err, MU_EINVAL, "plugin type '%.*s': want [a-z0-9_-]+", (int)(dot - key), key);
  if (strcmp(dot + 1, "isolation") != 0)
    return mu_err_set(err, MU_EINVAL, "plugin '%.*s': unknown setting '%s' (known: isolation, config)",
                      (int)(dot - key), key, dot + 1);
  if (strcmp(value, "in-process") != 0 && strcmp(value, "process") != 0)
    return mu_err_set(err, MU_EINVAL, "plugin '%.*s': isolation \"%s\": expected in-process or process",
                      (int)(dot - key), key, value);
  return 0;
}

/* One musterd `queues:` setting, "NAME.SETTING" = value (docs/scheduling.md, Queues). */
static int check_queue_setting(const char *key, const char *value, mu_err *err) {
  const char *dot = strrchr(key, '.');
  if (dot == NULL || dot == key) return mu_err_set(err, MU_EINVAL, "'%s': expected NAME.SETTING, e.g. etl.weight", key);
  for (const char *c = key; c < dot; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
      return mu_err_set(err, MU_EINVAL, "queue name '%.*s': want [A-Za-z0-9_-]+", (int)(dot - key), key);
  long long lo = 0, hi = 1000000;
  if (strcmp(dot + 1, "weight") == 0) lo = 1, hi = 1000;
  else if (strcmp(dot + 1, "max_running") != 0)
    return mu_err_set(err, MU_EINVAL, "queue '%.*s': unknown setting '%s' (known: weight, max_running)",
                      (int)(dot - key), key, dot + 1);
  char *end = NULL;
  long long v = strtoll(value, &end, 10);
  if (value[0] == '\0' || *end != '\0' || v < lo || v > hi)
    return mu_err_set(err, MU_EINVAL, "queue '%.*s': %s \"%s\": expected %lld..%lld", (int)(dot - key), key, dot + 1,
                      value, lo, hi);
  return 0;
}

static int check_nested_setting(const mu_cfg_field *f, const char *key, const char *value, mu_err *err) {
  return f->kind == MU_CF_QUEUES ? check_queue_setting(key, value, err) : check_plugin_setting(key, value, err);
}

static int set_text(void *cfg, const mu_cfg_field *f, const char *text, mu_err *err) {
  int rc = 0;
  char a[32], b[32];
  switch (f->kind) {
    case MU_CF_ID:
    case MU_CF_MEMBER_ID: rc = check_id(text, f->kind == MU_CF_MEMBER_ID, err); break;
    case MU_CF_PATH: rc = check_path(text, err); break;
    case MU_CF_PREFIX: {
      size_t len = strlen(text);
      if (len == 0 || text[0] != '/' || text[len - 1] != '/')
        return mu_err_set(err, MU_EINVAL, "bad prefix \"%s\" (must start and end with '/')", text);
      for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)text[i]))
          return mu_err_set(err, MU_EINVAL, "bad prefix \"%s\" (no spaces or control characters)", text);
      break;
    }
    case MU_CF_OPT_ADDR:
      if (text[0] == '\0') break; /* "" turns it off */
      /* fall through */
    case MU_CF_ADDR: rc = mu_hostport_parse(text, NULL, 0, NULL, err); break;
    case MU_CF_DURATION: {
      int64_t ms;
      rc = mu_duration_parse(text, &ms, err);
      if (rc < 0) return rc;
      if (ms < f->min || ms > f->max) {
        format_ms(f->min, a, sizeof a);
        format_ms(f->max, b, sizeof b);
        return mu_err_set(err, MU_EINVAL, "duration \"%s\" is out of range %s..%s", text, a, b);
      }
      *MEMBER(cfg, f, int64_t) = ms;
      return 0;
    }
    case MU_CF_SIZE: {
      uint64_t bytes;
      rc = mu_size_parse(text, &bytes, err);
      if (rc < 0) return rc;
      if (bytes < (uint64_t)f->min || bytes > (uint64_t)f->max) {
        format_bytes((uint64_t)f->min, a, sizeof a);
        format_bytes((uint64_t)f->max, b, sizeof b);
        return mu_err_set(err, MU_EINVAL, "size \"%s\" is out of range %s..%s", text, a, b);
      }
      *MEMBER(cfg, f, uint64_t) = bytes;
      return 0;
    }
    case MU_CF_COUNT: return parse_count(text, f->min, f->max, MEMBER(cfg, f, uint32_t), err);
    case MU_CF_BOOL: return parse_bool(text, MEMBER(cfg, f, bool), err);
    case MU_CF_LOG_LEVEL:
      if (mu_log_parse_level(text, MEMBER(cfg, f, mu_log_level)) < 0)
        return mu_err_set(err, MU_EINVAL, "bad log level \"%s\" (expected debug, info, warn or error)", text);
      return 0;
    case MU_CF_LOG_FORMAT:
      if (mu_log_parse_format(text, MEMBER(cfg, f, mu_log_format)) < 0)
        return mu_err_set(err, MU_EINVAL, "bad log format \"%s\" (expected text or json)", text);
      return 0;
    case MU_CF_LABELS: {
      mu_labels tmp;
      mu_labels *dst = MEMBER(cfg, f, mu_labels);
      mu_labels_init_max(&tmp, dst->max);
      rc = mu_labels_parse(&tmp, text, 0, err);
      if (rc < 0) return rc;
      mu_labels_free(dst);
      *dst = tmp;
      return 0;
    }
    case MU_CF_PLUGINS:
    case MU_CF_QUEUES: {
      mu_labels tmp;
      mu_labels *dst = MEMBER(cfg, f, mu_labels);
      mu_labels_init_max(&tmp, dst->max);
      rc = mu_labels_parse(&tmp, text, 0, err);
      for (size_t i = 0; rc == 0 && i < tmp.n; i++)
        rc = check_nested_setting(f, tmp.items[i].key, tmp.items[i].value, err);
      if (rc < 0) {
        mu_labels_free(&tmp);
        return rc;
      }
      mu_labels_free(dst);
      *dst = tmp;
      return 0;
    }
    case MU_CF_PATH_APPEND:
      rc = check_path(text, err);
      if (rc < 0) return rc;
      return mu_strlist_append(MEMBER(cfg, f, mu_strlist), text, err);
    default: return mu_err_set(err, MU_EINVAL, "not a single-value field");
  }
  if (rc < 0) return rc;
  /* The char[] kinds: copy once valid. */
  return mu_cfg_copy_str(MEMBER(cfg, f, char), f->size, text, err);
}

static int set_list_text(void *cfg, const mu_cfg_field *f, const char *text, mu_err *err) {
  mu_strlist tmp;
  mu_strlist_init(&tmp);
  tmp.max = MEMBER(cfg, f, mu_strlist)->max;
  if (text[0] != '\0') {
    int rc = mu_strlist_split(&tmp, text, err);
    if (rc < 0) return rc;
  }
  return finish_list(cfg, f, &tmp, NULL, NULL, err);
}

static int set_list_node(void *cfg, const mu_cfg_field *f, mu_yaml_field *yf, mu_err *err) {
  mu_yaml_node node = yf->value;
  mu_yaml_kind kind = mu_yaml_node_kind(node);
  if (kind == MU_YAML_NULL) return set_list_text(cfg, f, "", err);
  if (kind == MU_YAML_SCALAR) return set_list_text(cfg, f, mu_yaml_node_text(node), err);
  if (kind != MU_YAML_LIST)
    return mu_err_set(err, MU_EINVAL, "expected %s, got %s", expected(f->kind), mu_yaml_kind_name(kind));
  mu_strlist tmp;
  mu_strlist_init(&tmp);
  tmp.max = MEMBER(cfg, f, mu_strlist)->max;
  size_t n = mu_yaml_node_len(node);
  if (n > tmp.max) return mu_err_set(err, MU_ENOSPC, "too many items (max %zu)", tmp.max);
  int lines[MU_STRLIST_MAX_DEFAULT * 4];
  if (n > sizeof lines / sizeof lines[0])
    return mu_err_set(err, MU_ENOSPC, "too many items (max %zu)", sizeof lines / sizeof lines[0]);
  for (size_t i = 0; i < n; i++) {
    mu_yaml_node item = mu_yaml_node_item(node, i);
    lines[i] = mu_yaml_node_line(item);
    if (mu_yaml_node_kind(item) != MU_YAML_SCALAR) {
      yf->err_line = lines[i];
      mu_strlist_free(&tmp);
      return mu_err_set(err, MU_EINVAL, "item %zu: expected a string, got %s", i + 1,
                        mu_yaml_kind_name(mu_yaml_node_kind(item)));
    }
    int rc = mu_strlist_append(&tmp, mu_yaml_node_text(item), err);
    if (rc < 0) {
      mu_strlist_free(&tmp);
      return rc;
    }
  }
  return finish_list(cfg, f, &tmp, lines, yf, err);
}

static int set_labels_node(void *cfg, const mu_cfg_field *f, mu_yaml_field *yf, mu_err *err) {
  mu_yaml_node node = yf->value;
  mu_yaml_kind kind = mu_yaml_node_kind(node);
  if (kind == MU_YAML_NULL || kind == MU_YAML_SCALAR) return set_text(cfg, f, mu_yaml_node_text(node), err);
  if (kind != MU_YAML_MAP)
    return mu_err_set(err, MU_EINVAL, "expected %s, got %s", expected(f->kind), mu_yaml_kind_name(kind));
  mu_labels *dst = MEMBER(cfg, f, mu_labels);
  mu_labels tmp;
  mu_labels_init_max(&tmp, dst->max);
  int rc = 0;
  for (size_t i = 0; i < mu_yaml_node_len(node); i++) {
    mu_yaml_node k = mu_yaml_node_key(node, i);
    mu_yaml_node v = mu_yaml_node_value(node, i);
    yf->err_line = mu_yaml_node_line(k);
    if (mu_yaml_node_kind(k) != MU_YAML_SCALAR) {
      rc = mu_err_set(err, MU_EINVAL, "label keys must be strings, got %s", mu_yaml_kind_name(mu_yaml_node_kind(k)));
      goto fail;
    }
    const char *key = mu_yaml_node_text(k);
    mu_yaml_kind vk = mu_yaml_node_kind(v);
    if (vk != MU_YAML_SCALAR && vk != MU_YAML_NULL) {
      rc = mu_err_set(err, MU_EINVAL, "label '%s': expected a string value, got %s", key, mu_yaml_kind_name(vk));
      goto fail;
    }
    if (mu_labels_get(&tmp, key) != NULL) {
      rc = mu_err_set(err, MU_EINVAL, "label '%s' given twice", key);
      goto fail;
    }
    rc = mu_labels_set(&tmp, key, mu_yaml_node_text(v), 0, err);
    if (rc < 0) goto fail;
  }
  yf->err_line = 0;
  mu_labels_free(dst);
  *dst = tmp;
  return 0;
fail:
  mu_labels_free(&tmp);
  return rc;
}

/* plugins: {TYPE: {isolation: process}} flattened to "TYPE.isolation" = "process". */
static int set_plugins_node(void *cfg, const mu_cfg_field *f, mu_yaml_field *yf, mu_err *err) {
  mu_yaml_node node = yf->value;
  mu_yaml_kind kind = mu_yaml_node_kind(node);
  if (kind == MU_YAML_NULL || kind == MU_YAML_SCALAR) return set_text(cfg, f, mu_yaml_node_text(node), err);
  if (kind != MU_YAML_MAP)
    return mu_err_set(err, MU_EINVAL, "expected %s, got %s", expected(f->kind), mu_yaml_kind_name(kind));
  mu_labels *dst = MEMBER(cfg, f, mu_labels);
  mu_labels tmp;
  mu_labels_init_max(&tmp, dst->max);
  int rc = 0;
  for (size_t i = 0; i < mu_yaml_node_len(node); i++) {
    mu_yaml_node k = mu_yaml_node_key(node, i);
    mu_yaml_node v = mu_yaml_node_value(node, i);
    yf->err_line = mu_yaml_node_line(k);
    if (mu_yaml_node_kind(k) != MU_YAML_SCALAR || mu_yaml_node_kind(v) != MU_YAML_MAP) {
      rc = mu_err_set(err, MU_EINVAL, "expected %s, got %s: %s",
                      f->kind == MU_CF_QUEUES ? "NAME: {weight: N, max_running: N}" : "TYPE: {isolation: ...}",
                      mu_yaml_kind_name(mu_yaml_node_kind(k)), mu_yaml_kind_name(mu_yaml_node_kind(v)));
      goto fail;
    }
    for (size_t j = 0; j < mu_yaml_node_len(v); j++) {
      mu_yaml_node sk = mu_yaml_node_key(v, j), sv = mu_yaml_node_value(v, j);
      yf->err_line = mu_yaml_node_line(sk);
      /* a plugin's own configuration (any YAML): agent_config.c reads it as JSON */
      if (f->kind == MU_CF_PLUGINS && mu_yaml_node_kind(sk) == MU_YAML_SCALAR &&
          strcmp(mu_yaml_node_text(sk), "config") == 0)
        continue;
      if (mu_yaml_node_kind(sk) != MU_YAML_SCALAR || mu_yaml_node_kind(sv) != MU_YAML_SCALAR) {
        rc = mu_err_set(err, MU_EINVAL, "%s '%s': settings are SETTING: value",
                        f->kind == MU_CF_QUEUES ? "queue" : "plugin", mu_yaml_node_text(k));
        goto fail;
      }
      char key[MU_LABEL_KEY_MAX + 2];
      if (snprintf(key, sizeof key, "%s.%s", mu_yaml_node_text(k), mu_yaml_node_text(sk)) >= (int)sizeof key) {
        rc = mu_err_set(err, MU_EINVAL, "'%s': name too long", mu_yaml_node_text(k));
        goto fail;
      }
      rc = check_nested_setting(f, key, mu_yaml_node_text(sv), err);
      if (rc == 0) rc = mu_labels_set(&tmp, key, mu_yaml_node_text(sv), 0, err);
      if (rc != 0) goto fail;
    }
  }
  yf->err_line = 0;
  mu_labels_free(dst);
  *dst = tmp;
  return 0;
fail:
  mu_labels_free(&tmp);
  return rc;
}

static const mu_cfg_field *find_field(const mu_cfg_table *t, const char *name, bool dashes) {
  for (size_t i = 0; i < t->n; i++) {
    const char *a = t->fields[i].name;
    const char *b = name;
    while (*a != '\0' && (*a == *b || (dashes && *a == '_' && *b == '-'))) {
      a++;
      b++;
    }
    if (*a == '\0' && *b == '\0') return &t->fields[i];
  }
  return NULL;
}

typedef struct load_ctx {
  void *cfg;
  const mu_cfg_table *table;
} load_ctx;

static int load_field(void *arg, mu_yaml_field *yf, mu_err *err) {
  load_ctx *ctx = arg;
  const mu_cfg_field *f = find_field(ctx->table, yf->name, false);
  if (f == NULL || f->kind == MU_CF_PATH_APPEND) {
    char known[400];
    size_t used = 0;
    known[0] = '\0';
    for (size_t i = 0; i < ctx->table->n && used < sizeof known; i++) {
      if (ctx->table->fields[i].kind == MU_CF_PATH_APPEND) continue;
      int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", ctx->table->fields[i].name);
      if (w > 0) used += (size_t)w;
    }
    return mu_err_set(err, MU_EINVAL, "unknown field in %s config (known fields: %s)", ctx->table->what, known);
  }
  int rc;
  mu_yaml_kind kind = mu_yaml_node_kind(yf->value);
  if (is_list(f->kind)) {
    rc = set_list_node(ctx->cfg, f, yf, err);
  } else if (f->kind == MU_CF_LABELS) {
    rc = set_labels_node(ctx->cfg, f, yf, err);
  } else if (f->kind == MU_CF_PLUGINS || f->kind == MU_CF_QUEUES) {
    rc = set_plugins_node(ctx->cfg, f, yf, err);
  } else if (kind == MU_YAML_LIST || kind == MU_YAML_MAP) {
    rc = mu_err_set(err, MU_EINVAL, "expected %s, got %s", expected(f->kind), mu_yaml_kind_name(kind));
  } else {
    rc = set_text(ctx->cfg, f, mu_yaml_node_text(yf->value), err);
  }
  if (rc == 0 && ctx->table->after_set != NULL) ctx->table->after_set(ctx->cfg, f);
  return rc;
}

int mu_cfg_load(void *cfg, const mu_cfg_table *table, const char *path, mu_err *err) {
  mu_yaml_doc *doc = NULL;
  int rc = mu_yaml_doc_load(path, MU_CFG_FILE_MAX_BYTES, &doc, err);
  if (rc < 0) return rc;
  load_ctx ctx = {cfg, table};
  rc = mu_yaml_doc_walk(doc, load_field, &ctx, err);
  mu_yaml_doc_free(doc);
  return rc;
}

static void flag_name(const char *key, char *buf, size_t size) {
  size_t i = 0;
  for (; key[i] != '\0' && i + 1 < size; i++) buf[i] = key[i] == '_' ? '-' : key[i];
  buf[i] = '\0';
}

int mu_cfg_set(void *cfg, const mu_cfg_table *table, const char *key, const char *value, mu_err *err) {
  char flag[64];
  flag_name(key, flag, sizeof flag);
  const mu_cfg_field *f = find_field(table, key, true);
  if (f == NULL) return mu_err_set(err, MU_EINVAL, "--%s: unknown option", flag);
  int rc = is_list(f->kind) ? set_list_text(cfg, f, value, err) : set_text(cfg, f, value, err);
  if (rc < 0) {
    flag_name(f->name, flag, sizeof flag);
    mu_err_prefix(err, "--%s", flag);
    return rc;
  }
  if (table->after_set != NULL) table->after_set(cfg, f);
  return 0;
}

void mu_cfg_free(void *cfg, const mu_cfg_table *table) {
  for (size_t i = 0; i < table->n; i++) {
    const mu_cfg_field *f = &table->fields[i];
    if (is_list(f->kind)) mu_strlist_free(MEMBER(cfg, f, mu_strlist));
    if (f->kind == MU_CF_LABELS || f->kind == MU_CF_PLUGINS || f->kind == MU_CF_QUEUES)
      mu_labels_free(MEMBER(cfg, f, mu_labels));
  }
}

void mu_cfg_default_id(char *buf, size_t size) {
  char host[256];
  if (gethostname(host, sizeof host) != 0 || host[0] == '\0') {
    snprintf(buf, size, "localhost");
    return;
  }
  host[sizeof host - 1] = '\0';
  size_t max = size - 1 < MU_CFG_ID_MAX ? size - 1 : MU_CFG_ID_MAX;
  size_t i = 0;
  for (; host[i] != '\0' && i < max; i++) {
    unsigned char c = (unsigned char)host[i];
    buf[i] = (isalnum(c) || c == '.' || c == '_' || c == '-') ? (char)c : '-';
  }
  buf[i] = '\0';
}
