/* MANIFEST.json: canonical serialization (jansson, sorted keys, compact) and a strict parser
 * that accepts only what the serializer would produce, plus the path, name and symlink rules
 * that packing and unpacking both enforce. */
#include "lib/bundle/manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bundle/bundle.h"
#include "lib/bundle/version.h"

static const char *const type_names[] = {"file", "dir", "symlink"};

void mu_manifest_free(mu_manifest *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n_files; i++) {
    free(m->files[i].path);
    free(m->files[i].target);
  }
  free(m->files);
  free(m->name);
  free(m->version);
  free(m->entry);
  free(m);
}

int mu_bundle_name_check(const char *name, mu_err *err) {
  size_t n = name != NULL ? strlen(name) : 0;
  if (n == 0 || n > MU_BUNDLE_NAME_MAX) {
    return mu_err_set(err, MU_EINVAL, "bundle name '%s': want 1..%d characters", name != NULL ? name : "",
                      MU_BUNDLE_NAME_MAX);
  }
  if (name[0] == '.' || name[0] == '-') {
    return mu_err_set(err, MU_EINVAL, "bundle name '%s': must not start with '%c'", name, name[0]);
  }
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-')) {
      return mu_err_set(err, MU_EINVAL, "bundle name '%s': only [A-Za-z0-9._-] allowed", name);
    }
  }
  return 0;
}

int mu_bundle_path_check(const char *path, mu_err *err) {
  if (path == NULL || path[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "entry '': empty path");
  }
  size_t n = strlen(path);
  if (n > MU_BUNDLE_PATH_MAX) {
    return mu_err_set(err, MU_EINVAL, "entry '%.80s...': path longer than %d bytes", path, MU_BUNDLE_PATH_MAX);
  }
  if (path[0] == '/') {
    return mu_err_set(err, MU_EINVAL, "entry '%s': absolute path escapes the task dir", path);
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
      return mu_err_set(err, MU_EINVAL, "entry '%s': control character in path", path);
    }
  }
  const char *p = path;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      return mu_err_set(err, MU_EINVAL, "entry '%s': '..' component: path escapes the task dir", path);
    }
    if (len == 0 || (len == 1 && p[0] == '.')) {
      return mu_err_set(err, MU_EINVAL, "entry '%s': empty or '.' path component", path);
    }
    if (slash == NULL) break;
    p = slash + 1;
  }
  if (strcmp(path, MU_BUNDLE_MANIFEST_NAME) == 0) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': name is reserved for the manifest", path);
  }
  return 0;
}

int mu_bundle_link_check(const char *path, const char *target, mu_err *err) {
  if (target == NULL || target[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "entry '%s': symlink with an empty target", path);
  }
  if (strlen(target) > MU_BUNDLE_PATH_MAX) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': symlink target longer than %d bytes", path, MU_BUNDLE_PATH_MAX);
  }
  if (target[0] == '/') {
    return mu_err_set(err, MU_EINVAL, "entry '%s': symlink to absolute '%s' escapes the task dir", path, target);
  }
  for (const char *q = target; *q != '\0'; q++) {
    if ((unsigned char)*q < 0x20 || *q == 0x7f) {
      return mu_err_set(err, MU_EINVAL, "entry '%s': control character in symlink target", path);
    }
  }
  size_t depth = 0;
  for (const char *q = path; *q != '\0'; q++) depth += *q == '/';
  size_t ups = 0;
  int seen_name = 0;
  const char *p = target;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      if (seen_name) {
        return mu_err_set(err, MU_EINVAL,
                          "entry '%s': symlink target '%s' has '..' after a name "
                          "(only leading '..' allowed)",
                          path, target);
      }
      ups++;
      if (ups > depth) {
        return mu_err_set(err, MU_EINVAL, "entry '%s': symlink to '%s' escapes the task dir", path, target);
      }
    } else if (len > 0 && !(len == 1 && p[0] == '.')) {
      seen_name = 1;
    }
    if (slash == NULL) break;
    p = slash + 1;
  }
  return 0;
}

static int set_str(json_t *obj, const char *key, const char *val, mu_err *err) {
  json_t *s = json_string(val);
  if (s == NULL) {
    return mu_err_set(err, MU_EINVAL, "manifest: %s '%s' is not valid UTF-8", key, val);
  }
  if (json_object_set_new(obj, key, s) != 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return 0;
}

int mu_manifest_to_json(const mu_manifest *m, char **ret_json, size_t *ret_len, mu_err *err) {
  int rc = MU_ENOMEM;
  json_t *root = json_object();
  json_t *files = json_array();
  if (root == NULL || files == NULL) goto nomem;
  for (size_t i = 0; i < m->n_files; i++) {
    const mu_bundle_file *f = &m->files[i];
    json_t *o = json_object();
    if (o == NULL || json_array_append_new(files, o) != 0) goto nomem;
    rc = set_str(o, "path", f->path, err);
    if (rc == 0) rc = set_str(o, "type", type_names[f->type], err);
    if (rc != 0) goto fail;
    if (f->type != MU_BUNDLE_SYMLINK) {
      char mode[8];
      snprintf(mode, sizeof mode, "%04o", (unsigned)(f->mode & 0777));
      rc = set_str(o, "mode", mode, err);
      if (rc != 0) goto fail;
    }
    if (f->type == MU_BUNDLE_FILE) {
      char hex[65];
      mu_bundle_hex32(f->sha256, hex);
      rc = set_str(o, "sha256", hex, err);
      if (rc != 0) goto fail;
      if (json_object_set_new(o, "size", json_integer((json_int_t)f->size)) != 0) goto nomem;
    }
    if (f->type == MU_BUNDLE_SYMLINK) {
      rc = set_str(o, "target", f->target, err);
      if (rc != 0) goto fail;
    }
  }
  if (json_object_set_new(root, "files", files) != 0) {
    files = NULL;
    goto nomem;
  }
  files = NULL;
  if (json_object_set_new(root, "format", json_integer(m->format)) != 0 ||
      json_object_set_new(root, "created_at", json_integer(m->created_at)) != 0) {
    goto nomem;
  }
  rc = set_str(root, "name", m->name, err);
  if (rc != 0) goto fail;
  rc = set_str(root, "version", m->version, err);
  if (rc != 0) goto fail;
  if (m->entry != NULL) {
    rc = set_str(root, "entry", m->entry, err);
    if (rc != 0) goto fail;
  }
  char *out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  if (out == NULL) goto nomem;
  json_decref(root);
  *ret_json = out;
  *ret_len = strlen(out);
  return 0;
nomem:
  rc = mu_err_set(err, MU_ENOMEM, "manifest: out of memory");
fail:
  json_decref(files);
  json_decref(root);
  return rc;
}

static int get_str(json_t *obj, const char *key, int required, char **ret, mu_err *err) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL && !required) {
    *ret = NULL;
    return 0;
  }
  if (!json_is_string(v)) {
    return mu_err_set(err, MU_EINVAL, "manifest: '%s' must be a string", key);
  }
  *ret = strdup(json_string_value(v));
  if (*ret == NULL) return mu_err_set(err, MU_ENOMEM, "manifest: out of memory");
  return 0;
}

static int parse_file(json_t *o, size_t idx, mu_bundle_file *f, mu_err *err) {
  if (!json_is_object(o)) {
    return mu_err_set(err, MU_EINVAL, "manifest: files[%zu] must be an object", idx);
  }
  char *type = NULL;
  char *mode = NULL;
  char *sha = NULL;
  int rc = get_str(o, "path", 1, &f->path, err);
  if (rc == 0) rc = get_str(o, "type", 1, &type, err);
  if (rc != 0) goto fail;
  rc = mu_bundle_path_check(f->path, err);
  if (rc != 0) goto fail;
  if (strcmp(type, "file") == 0) {
    f->type = MU_BUNDLE_FILE;
  } else if (strcmp(type, "dir") == 0) {
    f->type = MU_BUNDLE_DIR;
  } else if (strcmp(type, "symlink") == 0) {
    f->type = MU_BUNDLE_SYMLINK;
  } else {
    rc = mu_err_set(err, MU_EINVAL, "entry '%s': unknown type '%s'", f->path, type);
    goto fail;
  }
  if (f->type != MU_BUNDLE_SYMLINK) {
    rc = get_str(o, "mode", 1, &mode, err);
    if (rc != 0) goto fail;
    char *end = NULL;
    unsigned long v = strtoul(mode, &end, 8);
    if (strlen(mode) != 4 || *end != '\0' || v > 0777) {
      rc = mu_err_set(err, MU_EINVAL, "entry '%s': mode '%s' is not 4 octal digits <= 0777", f->path, mode);
      goto fail;
    }
    f->mode = (uint32_t)v;
  }
  if (f->type == MU_BUNDLE_FILE) {
    json_t *size = json_object_get(o, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
      rc = mu_err_set(err, MU_EINVAL, "entry '%s': size must be a non-negative integer", f->path);
      goto fail;
    }
    f->size = (uint64_t)json_integer_value(size);
    rc = get_str(o, "sha256", 1, &sha, err);
    if (rc != 0) goto fail;
    if (strlen(sha) != 64) {
      rc = mu_err_set(err, MU_EINVAL, "entry '%s': sha256 must be 64 hex digits", f->path);
      goto fail;
    }
    for (int i = 0; i < 32; i++) {
      unsigned int byte;
      if (sscanf(sha + 2 * i, "%2x", &byte) != 1) {
        rc = mu_err_set(err, MU_EINVAL, "entry '%s': sha256 must be hex", f->path);
        goto fail;
      }
      f->sha256[i] = (uint8_t)byte;
    }
  }
  if (f->type == MU_BUNDLE_SYMLINK) {
    rc = get_str(o, "target", 1, &f->target, err);
    if (rc != 0) goto fail;
    rc = mu_bundle_link_check(f->path, f->target, err);
    if (rc != 0) goto fail;
  }
fail:
  free(type);
  free(mode);
  free(sha);
  if (rc != 0 && strncmp(err != NULL ? err->msg : "", "manifest", 8) != 0) {
    mu_err_prefix(err, "manifest");
  }
  return rc;
}

long mu_manifest_find(const mu_manifest *m, const char *path) {
  size_t lo = 0;
  size_t hi = m->n_files;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(m->files[mid].path, path);
    if (c == 0) return (long)mid;
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return -1;
}

/* Every proper prefix of a path must be listed as a directory: no entry sits under a symlink
 * (which could point anywhere at write time) or under a file. */
static int check_parents(const mu_manifest *m, mu_err *err) {
  char prefix[MU_BUNDLE_PATH_MAX + 1];
  for (size_t i = 0; i < m->n_files; i++) {
    const char *path = m->files[i].path;
    for (const char *s = strchr(path, '/'); s != NULL; s = strchr(s + 1, '/')) {
      size_t n = (size_t)(s - path);
      memcpy(prefix, path, n);
      prefix[n] = '\0';
      long at = mu_manifest_find(m, prefix);
      if (at < 0) {
        return mu_err_set(err, MU_EINVAL, "manifest: entry '%s': parent '%s' is not listed", path, prefix);
      }
      if (m->files[at].type != MU_BUNDLE_DIR) {
        return mu_err_set(err, MU_EINVAL,
                          "manifest: entry '%s': parent '%s' is a %s: path goes through a "
                          "symlink or file",
                          path, prefix, type_names[m->files[at].type]);
      }
    }
  }
  return 0;
}

int mu_manifest_parse(const char *json, size_t len, uint64_t max_files, uint64_t max_total_bytes, mu_manifest **ret,
                      mu_err *err) {
  int rc;
  json_error_t jerr;
  char *canon = NULL;
  mu_manifest *m = calloc(1, sizeof *m);
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (m == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "manifest: out of memory");
    goto fail;
  }
  if (root == NULL || !json_is_object(root)) {
    rc = mu_err_set(err, MU_EINVAL, "manifest: not a JSON object (line %d: %s)", jerr.line,
                    root == NULL ? jerr.text : "wrong type");
    goto fail;
  }
  json_t *format = json_object_get(root, "format");
  if (!json_is_integer(format) || json_integer_value(format) != MU_MANIFEST_FORMAT) {
    rc = mu_err_set(err, MU_EINVAL, "manifest: format must be %d", MU_MANIFEST_FORMAT);
    goto fail;
  }
  m->format = MU_MANIFEST_FORMAT;
  json_t *created = json_object_get(root, "created_at");
  if (!json_is_integer(created) || json_integer_value(created) < 0) {
    rc = mu_err_set(err, MU_EINVAL, "manifest: created_at must be a non-negative integer");
    goto fail;
  }
  m->created_at = json_integer_value(created);
  rc = get_str(root, "name", 1, &m->name, err);
  if (rc != 0) goto fail;
  rc = get_str(root, "version", 1, &m->version, err);
  if (rc != 0) goto fail;
  rc = get_str(root, "entry", 0, &m->entry, err);
  if (rc != 0) goto fail;
  rc = mu_bundle_name_check(m->name, err);
  if (rc != 0) goto prefixed;
  rc = mu_bundle_version_check(m->version, err);
  if (rc != 0) goto prefixed;
  json_t *files = json_object_get(root, "files");
  if (!json_is_array(files)) {
    rc = mu_err_set(err, MU_EINVAL, "manifest: 'files' must be an array");
    goto fail;
  }
  size_t n = json_array_size(files);
  if (n > max_files) {
    rc = mu_err_set(err, MU_ENOSPC, "manifest: %zu entries, over the cap of %llu entries", n,
                    (unsigned long long)max_files);
    goto fail;
  }
  m->files = calloc(n > 0 ? n : 1, sizeof *m->files);
  if (m->files == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "manifest: out of memory");
    goto fail;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    m->n_files = i + 1;
    rc = parse_file(json_array_get(files, i), i, &m->files[i], err);
    if (rc != 0) goto fail;
    if (i > 0 && strcmp(m->files[i - 1].path, m->files[i].path) >= 0) {
      rc = mu_err_set(err, MU_EINVAL, "manifest: entry '%s' is out of order or repeated", m->files[i].path);
      goto fail;
    }
    total += m->files[i].size;
    if (m->files[i].size > max_total_bytes || total > max_total_bytes) {
      rc = mu_err_set(err, MU_ENOSPC,
                      "manifest: total unpacked size exceeds the cap of %llu bytes at entry "
                      "'%s'",
                      (unsigned long long)max_total_bytes, m->files[i].path);
      goto fail;
    }
  }
  rc = check_parents(m, err);
  if (rc != 0) goto fail;
  if (m->entry != NULL) {
    long at = mu_manifest_find(m, m->entry);
    if (at < 0 || m->files[at].type != MU_BUNDLE_FILE) {
      rc = mu_err_set(err, MU_EINVAL, "manifest: entry point '%s' is not a listed file", m->entry);
      goto fail;
    }
  }
  size_t clen;
  rc = mu_manifest_to_json(m, &canon, &clen, err);
  if (rc != 0) goto fail;
  if (clen != len || memcmp(canon, json, len) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "manifest: bytes are not canonical (unknown fields or reformatted)");
    goto fail;
  }
  free(canon);
  json_decref(root);
  *ret = m;
  return 0;
prefixed:
  mu_err_prefix(err, "manifest");
fail:
  free(canon);
  json_decref(root);
  mu_manifest_free(m);
  return rc;
}
