/* The agent's deployed plugin versions on disk (plugin_state.h). */
#include "lib/plugpkg/plugin_state.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int copy_str(json_t *obj, const char *key, char *out, size_t size, const char *type, int required, mu_err *err) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL && !required) return 0;
  if (!json_is_string(v) || strlen(json_string_value(v)) >= size)
    return mu_err_set(err, MU_EINVAL, "plugin state: types.%s.%s: want a string under %zu bytes", type, key, size);
  snprintf(out, size, "%s", json_string_value(v));
  return 0;
}

int mu_plugin_state_parse(const char *text, size_t len, mu_plugin_state *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL) return mu_err_set(err, MU_EINVAL, "plugin state: not JSON: %s", je.text);
  json_t *types = json_object_get(root, "types");
  int rc = 0;
  if (!json_is_object(types)) rc = mu_err_set(err, MU_EINVAL, "plugin state: 'types' must be an object");
  const char *type;
  json_t *v;
  if (rc == 0) {
    json_object_foreach(types, type, v) {
      if (ret->n >= MU_PLUGIN_STATE_MAX) {
        rc = mu_err_set(err, MU_EINVAL, "plugin state: more than %d types", MU_PLUGIN_STATE_MAX);
        break;
      }
      mu_plugin_state_entry *e = &ret->e[ret->n];
      if (!json_is_object(v) || strlen(type) == 0 || strlen(type) >= sizeof e->type) {
        rc = mu_err_set(err, MU_EINVAL, "plugin state: types.%.64s: want an object under a type name", type);
        break;
      }
      snprintf(e->type, sizeof e->type, "%s", type);
      rc = copy_str(v, "version", e->version, sizeof e->version, type, 1, err);
      if (rc == 0) rc = copy_str(v, "path", e->path, sizeof e->path, type, 1, err);
      if (rc == 0) rc = copy_str(v, "prev_version", e->prev_version, sizeof e->prev_version, type, 0, err);
      if (rc == 0) rc = copy_str(v, "prev_path", e->prev_path, sizeof e->prev_path, type, 0, err);
      if (rc != 0) break;
      ret->n++;
    }
  }
  json_decref(root);
  if (rc != 0) memset(ret, 0, sizeof *ret);
  return rc;
}

int mu_plugin_state_load(const char *file, mu_plugin_state *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  FILE *f = fopen(file, "rb");
  if (f == NULL && errno == ENOENT) return 0;
  if (f == NULL) return mu_err_set(err, MU_EIO, "plugin state %s: %s", file, strerror(errno));
  char *buf = malloc(MU_PLUGIN_STATE_MAX_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MU_PLUGIN_STATE_MAX_BYTES + 1, f) : 0;
  int rc = 0;
  if (buf == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  else if (ferror(f)) rc = mu_err_set(err, MU_EIO, "plugin state %s: read error", file);
  else if (n > MU_PLUGIN_STATE_MAX_BYTES)
    rc = mu_err_set(err, MU_ENOSPC, "plugin state %s: over %d bytes", file, MU_PLUGIN_STATE_MAX_BYTES);
  else rc = mu_plugin_state_parse(buf, n, ret, err);
  fclose(f);
  free(buf);
  return rc;
}

int mu_plugin_state_save(const char *file, const mu_plugin_state *s, mu_err *err) {
  json_t *root = json_object(), *types = json_object();
  int rc = 0;
  if (root == NULL || types == NULL || json_object_set_new(root, "types", types) != 0) {
    json_decref(root);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < s->n; i++) {
    const mu_plugin_state_entry *e = &s->e[i];
    json_t *o = json_pack("{s:s, s:s}", "version", e->version, "path", e->path);
    if (o != NULL && e->prev_version[0] != '\0') {
      json_object_set_new(o, "prev_version", json_string(e->prev_version));
      json_object_set_new(o, "prev_path", json_string(e->prev_path));
    }
    if (o == NULL || json_object_set_new(types, e->type, o) != 0) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  char tmp[MU_PLUGIN_STATE_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", file);
  if (rc == 0 && json_dump_file(root, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0)
    rc = mu_err_set(err, MU_EIO, "plugin state %s: cannot write", tmp);
  if (rc == 0 && rename(tmp, file) != 0) rc = mu_err_set(err, MU_EIO, "plugin state %s: %s", file, strerror(errno));
  if (rc != 0) unlink(tmp);
  json_decref(root);
  return rc;
}

mu_plugin_state_entry *mu_plugin_state_find(mu_plugin_state *s, const char *type) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->e[i].type, type) == 0) return &s->e[i];
  return NULL;
}

int mu_plugin_state_set(mu_plugin_state *s, const char *type, const char *version, const char *path, mu_err *err) {
  if (strlen(type) >= sizeof s->e[0].type || strlen(version) >= sizeof s->e[0].version ||
      strlen(path) >= sizeof s->e[0].path)
    return mu_err_set(err, MU_EINVAL, "plugin state: %s %s: a name or path too long", type, version);
  mu_plugin_state_entry *e = mu_plugin_state_find(s, type);
  if (e == NULL) {
    if (s->n >= MU_PLUGIN_STATE_MAX)
      return mu_err_set(err, MU_ENOSPC, "plugin state: more than %d types deployed", MU_PLUGIN_STATE_MAX);
    e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->type, sizeof e->type, "%s", type);
  } else if (strcmp(e->path, path) != 0) {
    snprintf(e->prev_version, sizeof e->prev_version, "%s", e->version);
    snprintf(e->prev_path, sizeof e->prev_path, "%s", e->path);
  }
  snprintf(e->version, sizeof e->version, "%s", version);
  snprintf(e->path, sizeof e->path, "%s", path);
  return 0;
}
