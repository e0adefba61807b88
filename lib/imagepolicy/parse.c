/* The policy document (imagepolicy.h): strict parsing through lib/config's YAML walker (every
 * error "NAME:LINE: field 'KEY': ..."), the globs checked as they are read, and the canonical
 * JSON form that etcd keeps and agents are sent. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base/clock.h"
#include "lib/config/yaml_doc.h"
#include "lib/imagepolicy/imagepolicy_int.h"

static const char *const sev_names[MU_SEV_COUNT] = {"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"};
static const char *const sig_names[] = {"not_checked", "valid", "missing", "invalid", "untrusted", "expired"};

const char *mu_severity_name(mu_severity s) { return s >= 0 && s < MU_SEV_COUNT ? sev_names[s] : NULL; }

int mu_severity_parse(const char *s, mu_severity *ret) {
  for (int i = 0; i < MU_SEV_COUNT; i++)
    if (s != NULL && strcasecmp(s, sev_names[i]) == 0) {
      *ret = (mu_severity)i;
      return 0;
    }
  return MU_EINVAL;
}

const char *mu_imgsig_status_name(mu_imgsig_status s) {
  return s >= 0 && (size_t)s < sizeof sig_names / sizeof *sig_names ? sig_names[s] : NULL;
}

int mu_imgsig_status_parse(const char *s, mu_imgsig_status *ret) {
  for (size_t i = 0; i < sizeof sig_names / sizeof *sig_names; i++)
    if (s != NULL && strcasecmp(s, sig_names[i]) == 0) {
      *ret = (mu_imgsig_status)i;
      return 0;
    }
  return MU_EINVAL;
}

void mu_imgpolicy_free(mu_imgpolicy *p) {
  if (p == NULL) return;
  mu_imgpolicy_list_free(&p->registries);
  mu_imgpolicy_list_free(&p->trusted_keys);
  mu_imgpolicy_list_free(&p->volumes);
  free(p);
}

void mu_imgpolicy_list_free(mu_imgpolicy_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  memset(l, 0, sizeof *l);
}

static int expect_scalar(mu_yaml_field *f, const char **ret, mu_err *err) {
  mu_yaml_kind k = mu_yaml_node_kind(f->value);
  if (k != MU_YAML_SCALAR) return mu_err_set(err, MU_EINVAL, "expected a value, got %s", mu_yaml_kind_name(k));
  *ret = mu_yaml_node_text(f->value);
  return 0;
}

static int read_bool(mu_yaml_field *f, bool *ret, mu_err *err) {
  const char *s = NULL;
  int rc = expect_scalar(f, &s, err);
  if (rc != 0) return rc;
  if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0) *ret = true;
  else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0) *ret = false;
  else return mu_err_set(err, MU_EINVAL, "expected true or false, got \"%.64s\"", s);
  return 0;
}

/* kind: 'r' registry/repository globs, 'v' absolute path globs, 'k' plain strings (keys). */
static int read_list(mu_yaml_field *f, mu_imgpolicy_list *l, char kind, mu_err *err) {
  mu_yaml_kind k = mu_yaml_node_kind(f->value);
  if (k != MU_YAML_LIST) return mu_err_set(err, MU_EINVAL, "expected a list, got %s", mu_yaml_kind_name(k));
  size_t n = mu_yaml_node_len(f->value);
  if (n > MU_IMGPOLICY_MAX_LIST) return mu_err_set(err, MU_ENOSPC, "%zu entries, at most %d", n, MU_IMGPOLICY_MAX_LIST);
  mu_imgpolicy_list_free(l);
  l->set = true;
  l->items = calloc(n + 1, sizeof *l->items);
  if (l->items == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    mu_yaml_node it = mu_yaml_node_item(f->value, i);
    f->err_line = mu_yaml_node_line(it);
    if (mu_yaml_node_kind(it) != MU_YAML_SCALAR)
      return mu_err_set(err, MU_EINVAL, "[%zu]: expected a string, got %s", i,
                        mu_yaml_kind_name(mu_yaml_node_kind(it)));
    const char *s = mu_yaml_node_text(it);
    if (strlen(s) > MU_IMGPOLICY_MAX_PATTERN)
      return mu_err_set(err, MU_EINVAL, "[%zu]: longer than %d bytes", i, MU_IMGPOLICY_MAX_PATTERN);
    if (kind != 'k') {
      mu_err gerr = {0};
      if (mu_imgpolicy_glob_check(s, &gerr) != 0)
        return mu_err_set(err, MU_EINVAL, "[%zu]: bad glob \"%s\": %s", i, s, gerr.msg);
    }
    if (kind == 'r' && (strchr(s, '/') == NULL || s[0] == '/'))
      return mu_err_set(err, MU_EINVAL,
                        "[%zu]: \"%s\" must be REGISTRY/REPOSITORY (e.g. reg.internal:5000/team/*, or "
                        "reg.internal:5000/** for a whole registry)",
                        i, s);
    if (kind == 'v' && s[0] != '/')
      return mu_err_set(err, MU_EINVAL, "[%zu]: \"%s\" must be an absolute host path (e.g. /srv/data/**)", i, s);
    if (kind == 'k' && s[0] == '\0') return mu_err_set(err, MU_EINVAL, "[%zu]: empty", i);
    l->items[i] = strdup(s);
    if (l->items[i] == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    l->n++;
  }
  f->err_line = 0;
  return 0;
}

static int on_field(void *ctx, mu_yaml_field *f, mu_err *err) {
  mu_imgpolicy *p = ctx;
  const char *s = NULL;
  int rc;
  if (strcmp(f->name, "registries") == 0) return read_list(f, &p->registries, 'r', err);
  if (strcmp(f->name, "trusted_keys") == 0) return read_list(f, &p->trusted_keys, 'k', err);
  if (strcmp(f->name, "allowed_volumes") == 0) return read_list(f, &p->volumes, 'v', err);
  if (strcmp(f->name, "digests_only") == 0) return read_bool(f, &p->digests_only, err);
  if (strcmp(f->name, "require_signed") == 0) return read_bool(f, &p->require_signed, err);
  if (strcmp(f->name, "allow_root_user") == 0) {
    p->root_set = true;
    return read_bool(f, &p->allow_root_user, err);
  }
  if (strcmp(f->name, "allow_host_network") == 0) {
    p->host_network_set = true;
    return read_bool(f, &p->allow_host_network, err);
  }
  if (strcmp(f->name, "max_severity") == 0) {
    rc = expect_scalar(f, &s, err);
    if (rc != 0) return rc;
    if (mu_severity_parse(s, &p->max_severity) != 0 || p->max_severity == MU_SEV_UNKNOWN)
      return mu_err_set(err, MU_EINVAL, "\"%.64s\" is not LOW, MEDIUM, HIGH or CRITICAL", s);
    p->severity_set = true;
    return 0;
  }
  if (strcmp(f->name, "severity_grace_days") == 0) {
    rc = expect_scalar(f, &s, err);
    if (rc != 0) return rc;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 0 || v > 36500)
      return mu_err_set(err, MU_EINVAL, "expected a whole number of days 0..36500, got \"%.64s\"", s);
    p->grace_days = (uint32_t)v;
    p->grace_set = true;
    return 0;
  }
  if (strcmp(f->name, "max_image_size") == 0) {
    rc = expect_scalar(f, &s, err);
    if (rc != 0) return rc;
    mu_err serr = {0};
    if (mu_size_parse(s, &p->max_image_size, &serr) != 0 || p->max_image_size == 0)
      return mu_err_set(err, MU_EINVAL, "expected a size such as 512M or 2G, got \"%.64s\"", s);
    return 0;
  }
  return mu_err_set(err, MU_EINVAL,
                    "unknown key (known: registries, digests_only, require_signed, trusted_keys, max_severity, "
                    "severity_grace_days, allow_root_user, allow_host_network, allowed_volumes, max_image_size)");
}

int mu_imgpolicy_parse(const char *name, const char *text, size_t len, mu_imgpolicy **ret, mu_err *err) {
  if (len > MU_IMGPOLICY_MAX_BYTES)
    return mu_err_set(err, MU_ENOSPC, "%s: %zu bytes, a policy is at most %d", name, len, MU_IMGPOLICY_MAX_BYTES);
  mu_imgpolicy *p = calloc(1, sizeof *p);
  if (p == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  p->allow_root_user = true;
  p->allow_host_network = true;
  mu_yaml_doc *doc = NULL;
  int rc = mu_yaml_doc_parse(name, text, len, &doc, err);
  if (rc == 0) rc = mu_yaml_doc_walk(doc, on_field, p, err);
  if (rc == 0 && p->grace_set && !p->severity_set)
    rc = mu_err_set(err, MU_EINVAL, "%s: severity_grace_days needs max_severity", name);
  if (rc == 0 && p->trusted_keys.n > 0 && !p->require_signed)
    rc = mu_err_set(err, MU_EINVAL, "%s: trusted_keys needs require_signed: true", name);
  mu_yaml_doc_free(doc);
  if (rc != 0) {
    mu_imgpolicy_free(p);
    return rc;
  }
  *ret = p;
  return 0;
}

int mu_imgpolicy_read_file(const char *path, char **ret_text, size_t *ret_len, mu_err *err) {
  bool is_stdin = strcmp(path, "-") == 0;
  FILE *f = is_stdin ? stdin : fopen(path, "re");
  if (f == NULL) return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "%s: %s", path, strerror(errno));
  char *buf = malloc(MU_IMGPOLICY_MAX_BYTES + 2);
  size_t n = buf ? fread(buf, 1, MU_IMGPOLICY_MAX_BYTES + 1, f) : 0;
  int bad = ferror(f);
  if (!is_stdin) fclose(f);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (bad || n > MU_IMGPOLICY_MAX_BYTES) {
    free(buf);
    return bad ? mu_err_set(err, MU_EIO, "%s: read error", path)
               : mu_err_set(err, MU_ENOSPC, "%s: over %d bytes, a policy's bound", path, MU_IMGPOLICY_MAX_BYTES);
  }
  buf[n] = '\0';
  *ret_text = buf;
  *ret_len = n;
  return 0;
}

int mu_imgpolicy_load(const char *path, mu_imgpolicy **ret, mu_err *err) {
  char *text = NULL;
  size_t len = 0;
  int rc = mu_imgpolicy_read_file(path, &text, &len, err);
  if (rc == 0) rc = mu_imgpolicy_parse(path, text, len, ret, err);
  free(text);
  return rc;
}

bool mu_imgpolicy_is_empty(const mu_imgpolicy *p) {
  return !p->registries.set && !p->digests_only && !p->require_signed && !p->severity_set && p->allow_root_user &&
         p->allow_host_network && !p->volumes.set && p->max_image_size == 0;
}

static json_t *list_json(const mu_imgpolicy_list *l) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < l->n; i++) json_array_append_new(a, json_string(l->items[i]));
  return a;
}

char *mu_imgpolicy_to_json(const mu_imgpolicy *p) {
  json_t *o = json_object();
  if (o == NULL) return NULL;
  if (p->registries.set) json_object_set_new(o, "registries", list_json(&p->registries));
  json_object_set_new(o, "digests_only", json_boolean(p->digests_only));
  json_object_set_new(o, "require_signed", json_boolean(p->require_signed));
  if (p->trusted_keys.n > 0) json_object_set_new(o, "trusted_keys", list_json(&p->trusted_keys));
  if (p->severity_set) json_object_set_new(o, "max_severity", json_string(mu_severity_name(p->max_severity)));
  if (p->grace_set) json_object_set_new(o, "severity_grace_days", json_integer(p->grace_days));
  json_object_set_new(o, "allow_root_user", json_boolean(p->allow_root_user));
  json_object_set_new(o, "allow_host_network", json_boolean(p->allow_host_network));
  if (p->volumes.set) json_object_set_new(o, "allowed_volumes", list_json(&p->volumes));
  if (p->max_image_size > 0) {
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)p->max_image_size);
    json_object_set_new(o, "max_image_size", json_string(size));
  }
  char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(o);
  return s;
}
