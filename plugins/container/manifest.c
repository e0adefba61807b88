/* Manifest, index and config parsing (see manifest.h). */
#include "plugins/container/manifest.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "plugins/container/imageref.h"

static json_t *load(const char *body, size_t len, mu_err *err) {
  if (len > MU_MANIFEST_MAX_BYTES) {
    mu_err_set(err, MU_ENOSPC, "document of %zu bytes is over the %u-byte bound", len, MU_MANIFEST_MAX_BYTES);
    return NULL;
  }
  json_error_t je;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL) {
    mu_err_set(err, MU_EINVAL, "not JSON: %s (line %d)", je.text, je.line);
    return NULL;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    mu_err_set(err, MU_EINVAL, "not a JSON object");
    return NULL;
  }
  return root;
}

static const char *str_of(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int copy_field(char *dst, size_t cap, const char *src, const char *what, mu_err *err) {
  if (src == NULL) src = "";
  if (strlen(src) >= cap) return mu_err_set(err, MU_EINVAL, "%s longer than %zu bytes", what, cap - 1);
  memcpy(dst, src, strlen(src) + 1);
  return 0;
}

static int descriptor_parse(json_t *d, const char *what, mu_descriptor *ret, mu_err *err) {
  if (!json_is_object(d)) return mu_err_set(err, MU_EINVAL, "%s: not an object", what);
  const char *digest = str_of(d, "digest");
  json_t *size = json_object_get(d, "size");
  if (!mu_digest_valid(digest))
    return mu_err_set(err, MU_EINVAL, "%s: digest missing or not sha256:<64 hex> (other algorithms are not supported)",
                      what);
  if (!json_is_integer(size) || json_integer_value(size) < 0)
    return mu_err_set(err, MU_EINVAL, "%s: size missing or negative", what);
  int rc;
  rc = copy_field(ret->media_type, sizeof ret->media_type, str_of(d, "mediaType"), "mediaType", err);
  if (rc != 0) return rc;
  snprintf(ret->digest, sizeof ret->digest, "%s", digest);
  ret->size = json_integer_value(size);
  return 0;
}

void mu_platform_host(mu_platform *ret) {
  memset(ret, 0, sizeof *ret);
  snprintf(ret->os, sizeof ret->os, "linux");
  struct utsname u;
  const char *m = uname(&u) == 0 ? u.machine : "x86_64";
  if (strcmp(m, "x86_64") == 0) snprintf(ret->arch, sizeof ret->arch, "amd64");
  else if (strcmp(m, "aarch64") == 0) {
    snprintf(ret->arch, sizeof ret->arch, "arm64");
    snprintf(ret->variant, sizeof ret->variant, "v8");
  } else if (strncmp(m, "armv7", 5) == 0) {
    snprintf(ret->arch, sizeof ret->arch, "arm");
    snprintf(ret->variant, sizeof ret->variant, "v7");
  } else if (strcmp(m, "i686") == 0 || strcmp(m, "i386") == 0) snprintf(ret->arch, sizeof ret->arch, "386");
  else snprintf(ret->arch, sizeof ret->arch, "%s", m);
}

int mu_platform_parse(const char *text, mu_platform *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  char buf[100];
  if (text == NULL || strlen(text) >= sizeof buf) return mu_err_set(err, MU_EINVAL, "platform: empty or too long");
  snprintf(buf, sizeof buf, "%s", text);
  char *parts[4] = {0};
  int n = 0;
  for (char *save = NULL, *p = strtok_r(buf, "/", &save); p != NULL && n < 4; p = strtok_r(NULL, "/", &save))
    parts[n++] = p;
  if (n < 2 || n > 3) return mu_err_set(err, MU_EINVAL, "platform \"%s\": want os/arch[/variant]", text);
  for (int i = 0; i < n; i++)
    for (const char *c = parts[i]; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-') ||
          strlen(parts[i]) >= 32)
        return mu_err_set(err, MU_EINVAL, "platform \"%s\": bad part \"%s\"", text, parts[i]);
  snprintf(ret->os, sizeof ret->os, "%s", parts[0]);
  snprintf(ret->arch, sizeof ret->arch, "%s", parts[1]);
  if (n == 3) snprintf(ret->variant, sizeof ret->variant, "%s", parts[2]);
  return 0;
}

static bool is_type(const char *t, const char *want) {
  if (t == NULL) return false;
  size_t n = strlen(want);
  return strncmp(t, want, n) == 0 && (t[n] == '\0' || t[n] == ';' || t[n] == ' ');
}

int mu_doc_kind_of(const char *content_type, const char *body, size_t len, mu_doc_kind *ret, mu_err *err) {
  if (is_type(content_type, MU_MT_OCI_INDEX) || is_type(content_type, MU_MT_DOCKER_LIST)) {
    *ret = MU_DOC_INDEX;
    return 0;
  }
  if (is_type(content_type, MU_MT_OCI_MANIFEST) || is_type(content_type, MU_MT_DOCKER_MANIFEST)) {
    *ret = MU_DOC_MANIFEST;
    return 0;
  }
  json_t *root = load(body, len, err);
  if (root == NULL) return err ? err->code : MU_EINVAL;
  const char *mt = str_of(root, "mediaType");
  int rc = 0;
  if (mt != NULL) {
    if (strcmp(mt, MU_MT_OCI_INDEX) == 0 || strcmp(mt, MU_MT_DOCKER_LIST) == 0) *ret = MU_DOC_INDEX;
    else if (strcmp(mt, MU_MT_OCI_MANIFEST) == 0 || strcmp(mt, MU_MT_DOCKER_MANIFEST) == 0) *ret = MU_DOC_MANIFEST;
    else rc = mu_err_set(err, MU_ENOTSUP, "unknown manifest media type \"%.100s\"", mt);
  } else if (json_is_array(json_object_get(root, "manifests"))) {
    *ret = MU_DOC_INDEX;
  } else if (json_is_array(json_object_get(root, "layers")) && json_object_get(root, "config") != NULL) {
    *ret = MU_DOC_MANIFEST;
  } else {
    rc = mu_err_set(err, MU_ENOTSUP, "neither an image manifest nor an index (Content-Type \"%.100s\")",
                    content_type ? content_type : "");
  }
  json_decref(root);
  return rc;
}

static int layer_compression(const char *mt, mu_layer_compression *ret) {
  static const struct {
    const char *type;
    mu_layer_compression c;
  } known[] = {
      {"application/vnd.oci.image.layer.v1.tar", MU_LAYER_TAR},
      {"application/vnd.oci.image.layer.v1.tar+gzip", MU_LAYER_GZIP},
      {"application/vnd.oci.image.layer.v1.tar+zstd", MU_LAYER_ZSTD},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", MU_LAYER_TAR},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", MU_LAYER_GZIP},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", MU_LAYER_ZSTD},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", MU_LAYER_GZIP},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", MU_LAYER_GZIP},
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", MU_LAYER_ZSTD},
  };
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (strcmp(mt, known[i].type) == 0) {
      *ret = known[i].c;
      return 0;
    }
  return -1;
}

int mu_image_manifest_parse(const char *body, size_t len, mu_manifest *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_t *root = load(body, len, err);
  if (root == NULL) return err ? err->code : MU_EINVAL;
  int rc = 0;
  json_t *sv = json_object_get(root, "schemaVersion");
  json_t *layers = json_object_get(root, "layers");
  const char *mt = str_of(root, "mediaType");
  if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
    rc = mu_err_set(err, MU_ENOTSUP, "manifest: schemaVersion must be 2 (schema 1 manifests are not supported)");
    goto done;
  }
  if (mt != NULL && strcmp(mt, MU_MT_OCI_MANIFEST) != 0 && strcmp(mt, MU_MT_DOCKER_MANIFEST) != 0) {
    rc = mu_err_set(err, MU_ENOTSUP, "manifest: unknown media type \"%.100s\"", mt);
    goto done;
  }
  rc = descriptor_parse(json_object_get(root, "config"), "manifest config", &ret->config, err);
  if (rc != 0) goto done;
  if (ret->config.size > (int64_t)MU_MANIFEST_MAX_BYTES) {
    rc = mu_err_set(err, MU_ENOSPC, "manifest: config of %lld bytes is over the bound", (long long)ret->config.size);
    goto done;
  }
  if (!json_is_array(layers)) {
    rc = mu_err_set(err, MU_EINVAL, "manifest: no layers array");
    goto done;
  }
  if (json_array_size(layers) > MU_MANIFEST_MAX_LAYERS) {
    rc = mu_err_set(err, MU_ENOSPC, "manifest: %zu layers, more than %d", json_array_size(layers),
                    MU_MANIFEST_MAX_LAYERS);
    goto done;
  }
  for (size_t i = 0; i < json_array_size(layers); i++) {
    char what[32];
    snprintf(what, sizeof what, "manifest layer %zu", i);
    rc = descriptor_parse(json_array_get(layers, i), what, &ret->layers[i], err);
    if (rc != 0) goto done;
    if (layer_compression(ret->layers[i].media_type, &ret->compression[i]) != 0) {
      rc = mu_err_set(err, MU_ENOTSUP, "%s: unsupported media type \"%.100s\"", what, ret->layers[i].media_type);
      goto done;
    }
    ret->n_layers++;
  }
done:
  json_decref(root);
  return rc;
}

int mu_index_select(const char *body, size_t len, const mu_platform *want, mu_descriptor *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_t *root = load(body, len, err);
  if (root == NULL) return err ? err->code : MU_EINVAL;
  json_t *list = json_object_get(root, "manifests");
  int rc = 0;
  char seen[256] = "";
  size_t seen_len = 0;
  if (!json_is_array(list)) {
    rc = mu_err_set(err, MU_EINVAL, "index: no manifests array");
    goto done;
  }
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *m = json_array_get(list, i);
    json_t *p = json_object_get(m, "platform");
    const char *os = str_of(p, "os"), *arch = str_of(p, "architecture"), *variant = str_of(p, "variant");
    const char *mt = str_of(m, "mediaType");
    if (os == NULL || arch == NULL) continue;
    /* Unknown entries (attestations, other artifact types) are skipped, not errors. */
    if (mt != NULL && strcmp(mt, MU_MT_OCI_MANIFEST) != 0 && strcmp(mt, MU_MT_DOCKER_MANIFEST) != 0) continue;
    if (seen_len < sizeof seen - 1)
      seen_len += (size_t)snprintf(seen + seen_len, sizeof seen - seen_len, "%s%.30s/%.30s%s%.30s",
                                   seen_len ? ", " : "", os, arch, variant ? "/" : "", variant ? variant : "");
    if (seen_len >= sizeof seen) seen_len = sizeof seen - 1;
    if (strcmp(os, want->os) != 0 || strcmp(arch, want->arch) != 0) continue;
    if (want->variant[0] != '\0' && variant != NULL && strcmp(variant, want->variant) != 0) continue;
    rc = descriptor_parse(m, "index entry", ret, err);
    if (rc == 0 && ret->media_type[0] == '\0')
      snprintf(ret->media_type, sizeof ret->media_type, "%s", MU_MT_OCI_MANIFEST);
    goto done;
  }
  rc = mu_err_set(err, MU_ENOENT, "no image for platform %s/%s%s%s in the index (it has: %s)", want->os, want->arch,
                  want->variant[0] ? "/" : "", want->variant, seen_len ? seen : "none");
done:
  json_decref(root);
  return rc;
}

int mu_layout_select(const char *body, size_t len, const char *tag, mu_descriptor *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_t *root = load(body, len, err);
  if (root == NULL) return err ? err->code : MU_EINVAL;
  json_t *list = json_object_get(root, "manifests");
  int rc = 0;
  char names[256] = "";
  size_t nl = 0;
  if (!json_is_array(list) || json_array_size(list) == 0) {
    rc = mu_err_set(err, MU_EINVAL, "OCI layout: index.json has no manifests");
    goto done;
  }
  if ((tag == NULL || *tag == '\0') && json_array_size(list) == 1) {
    rc = descriptor_parse(json_array_get(list, 0), "index.json entry", ret, err);
    goto done;
  }
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *m = json_array_get(list, i);
    const char *name = str_of(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name");
    if (name == NULL) continue;
    if (nl < sizeof names - 1) nl += (size_t)snprintf(names + nl, sizeof names - nl, "%s%.60s", nl ? ", " : "", name);
    if (nl >= sizeof names) nl = sizeof names - 1;
    if (tag != NULL && strcmp(name, tag) == 0) {
      rc = descriptor_parse(m, "index.json entry", ret, err);
      goto done;
    }
  }
  rc = mu_err_set(err, MU_ENOENT, "OCI layout: no image named \"%s\" (it has: %s)", tag ? tag : "",
                  nl ? names : "none named");
done:
  json_decref(root);
  return rc;
}

static int str_array(json_t *a, const char *what, char ***ret, mu_err *err) {
  *ret = NULL;
  if (a == NULL || json_is_null(a)) return 0;
  if (!json_is_array(a) || json_array_size(a) > 4096)
    return mu_err_set(err, MU_EINVAL, "config %s: not an array of strings", what);
  char **v = calloc(json_array_size(a) + 1, sizeof *v);
  if (v == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  *ret = v;
  for (size_t i = 0; i < json_array_size(a); i++) {
    json_t *s = json_array_get(a, i);
    if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
      return mu_err_set(err, MU_EINVAL, "config %s[%zu]: not a string without NUL", what, i);
    v[i] = strdup(json_string_value(s));
    if (v[i] == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  return 0;
}

static int opt_str(json_t *obj, const char *key, char **ret, mu_err *err) {
  json_t *v = json_object_get(obj, key);
  *ret = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
    return mu_err_set(err, MU_EINVAL, "config %s: not a string", key);
  *ret = strdup(json_string_value(v));
  if (*ret == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return 0;
}

int mu_image_config_parse(const char *body, size_t len, mu_image_config *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_t *root = load(body, len, err);
  if (root == NULL) return err ? err->code : MU_EINVAL;
  json_t *cfg = json_object_get(root, "config");
  int rc = 0;
  if (cfg != NULL && !json_is_null(cfg) && !json_is_object(cfg)) {
    rc = mu_err_set(err, MU_EINVAL, "config: \"config\" is not an object");
    goto done;
  }
  rc = str_array(json_object_get(cfg, "Entrypoint"), "Entrypoint", &ret->entrypoint, err);
  if (rc == 0) rc = str_array(json_object_get(cfg, "Cmd"), "Cmd", &ret->cmd, err);
  if (rc == 0) rc = str_array(json_object_get(cfg, "Env"), "Env", &ret->env, err);
  if (rc == 0) rc = opt_str(cfg, "WorkingDir", &ret->working_dir, err);
  if (rc == 0) rc = opt_str(cfg, "User", &ret->user, err);
  if (rc == 0) rc = opt_str(cfg, "StopSignal", &ret->stop_signal, err);
  if (rc != 0) goto done;
  const char *os = str_of(root, "os"), *arch = str_of(root, "architecture");
  snprintf(ret->os, sizeof ret->os, "%.31s", os ? os : "");
  snprintf(ret->arch, sizeof ret->arch, "%.31s", arch ? arch : "");
  json_t *diff = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
  if (json_is_array(diff)) {
    size_t n = json_array_size(diff);
    if (n > MU_MANIFEST_MAX_LAYERS) {
      rc = mu_err_set(err, MU_ENOSPC, "config: %zu diff_ids, more than %d", n, MU_MANIFEST_MAX_LAYERS);
      goto done;
    }
    ret->diff_ids = calloc(n ? n : 1, sizeof *ret->diff_ids);
    if (ret->diff_ids == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto done;
    }
    for (size_t i = 0; i < n; i++) {
      const char *d = json_string_value(json_array_get(diff, i));
      if (!mu_digest_valid(d)) {
        rc = mu_err_set(err, MU_EINVAL, "config: diff_ids[%zu] is not sha256:<64 hex>", i);
        goto done;
      }
      snprintf(ret->diff_ids[i], sizeof ret->diff_ids[i], "%s", d);
    }
    ret->n_diff_ids = n;
  }
done:
  json_decref(root);
  if (rc != 0) mu_image_config_free(ret);
  return rc;
}

static void free_strv(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

void mu_image_config_free(mu_image_config *c) {
  free_strv(c->entrypoint);
  free_strv(c->cmd);
  free_strv(c->env);
  free(c->working_dir);
  free(c->user);
  free(c->stop_signal);
  free(c->diff_ids);
  memset(c, 0, sizeof *c);
}
