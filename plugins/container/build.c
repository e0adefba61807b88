/* The image builder: steps, the layer cache, the config and the manifest (see build.h). */
#define _GNU_SOURCE
#include "plugins/container/build.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "plugins/container/build_copy.h"
#include "plugins/container/build_run.h"
#include "plugins/container/image.h"
#include "plugins/container/image_int.h"
#include "plugins/container/layer_writer.h"
#include "plugins/container/musterfile.h"

#define MU_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MU_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

typedef struct builder {
  const mu_build_opts *o;
  FILE *log;
  mu_musterfile mf;
  int ctx_fd;
  json_t *cfg;    /* the image config being built */
  json_t *layers; /* manifest layer descriptors */
  char key[72];   /* the cache chain: the last step's key */
  char created[32];
  json_t *args; /* ARG name -> value, for RUN's environment */
  bool cmd_set; /* CMD given in this build (ENTRYPOINT then keeps it) */
  char work[PATH_MAX];
  char rootfs[PATH_MAX]; /* "" until a step needs it */
  int step_no;
  mu_build_result *res;
} builder;

static void sha256_hex(const void *data, size_t len, char out[72]) {
  unsigned char h[32];
  unsigned hl = 0;
  EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL);
  mu_sha256_format(h, out);
}

static json_t *cfg_obj(builder *b) {
  json_t *c = json_object_get(b->cfg, "config");
  if (!json_is_object(c)) {
    c = json_object();
    json_object_set_new(b->cfg, "config", c);
  }
  return c;
}

static void history(builder *b, const mu_mf_step *st, bool empty) {
  json_t *h = json_object_get(b->cfg, "history");
  if (!json_is_array(h)) {
    h = json_array();
    json_object_set_new(b->cfg, "history", h);
  }
  json_t *e =
      json_pack("{s:s, s:s, s:s}", "created", b->created, "created_by", st->text, "comment", "muster image build");
  if (empty) json_object_set_new(e, "empty_layer", json_true());
  json_array_append_new(h, e);
}

/* The step's key: the previous key, the text as written and as substituted, and inputs. */
static void step_key(builder *b, const mu_mf_step *st, const char *inputs, char out[72]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  const char *v = "muster-build-cache v1";
  EVP_DigestUpdate(md, v, strlen(v) + 1);
  EVP_DigestUpdate(md, b->key, strlen(b->key) + 1);
  EVP_DigestUpdate(md, st->text, strlen(st->text) + 1);
  for (size_t i = 0; i < st->n_args; i++) {
    const char *a = st->args[i] ? st->args[i] : "\x01(unset)";
    EVP_DigestUpdate(md, a, strlen(a) + 1);
  }
  if (st->chown) EVP_DigestUpdate(md, st->chown, strlen(st->chown) + 1);
  if (inputs) EVP_DigestUpdate(md, inputs, strlen(inputs) + 1);
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  mu_sha256_format(h, out);
}

static void cache_path(builder *b, const char *key, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/build-cache/%s", b->o->store, key + 7);
}

/* A cached result: 1 with *ret_layer (NULL for "no layer") when there, 0 when not. */
static int cache_get(builder *b, const char *key, json_t **ret_layer) {
  if (b->o->no_cache) return 0;
  char p[PATH_MAX];
  cache_path(b, key, p, sizeof p);
  json_t *c = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(c)) {
    json_decref(c);
    return 0;
  }
  json_t *l = json_object_get(c, "layer");
  if (json_is_object(l)) {
    const char *d = json_string_value(json_object_get(l, "digest"));
    char bp[PATH_MAX];
    struct stat st;
    if (d == NULL || !mu_digest_valid(d) || !json_is_string(json_object_get(c, "diff_id"))) {
      json_decref(c);
      return 0;
    }
    mu_store_blob_path(b->o->store, d, bp, sizeof bp);
    if (stat(bp, &st) != 0 || st.st_size != json_integer_value(json_object_get(l, "size"))) {
      json_decref(c);
      return 0; /* the blob was collected: build again */
    }
  }
  utimensat(AT_FDCWD, p, NULL, 0); /* its last use, for the store's GC */
  *ret_layer = c;
  return 1;
}

static int cache_put(builder *b, const char *key, const mu_layer_out *l, mu_err *err) {
  char dir[PATH_MAX], p[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/build-cache", b->o->store);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "cannot create %s: %s", dir, strerror(errno));
  cache_path(b, key, p, sizeof p);
  json_t *c = l ? json_pack("{s:{s:s, s:s, s:I}, s:s}", "layer", "mediaType", MU_OCI_LAYER_GZIP, "digest", l->digest,
                            "size", (json_int_t)l->size, "diff_id", l->diff_id)
                : json_pack("{s:b}", "empty", 1);
  char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(c);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc = mu_store_write_atomic(b->o->store, p, s, strlen(s), err);
  free(s);
  return rc;
}

/* Adds a layer (from the cache entry c, or l) to the manifest and the config. */
static void add_layer(builder *b, json_t *cached, const mu_layer_out *l) {
  json_t *desc, *diff;
  if (cached) {
    desc = json_deep_copy(json_object_get(cached, "layer"));
    diff = json_deep_copy(json_object_get(cached, "diff_id"));
  } else {
    desc =
        json_pack("{s:s, s:s, s:I}", "mediaType", MU_OCI_LAYER_GZIP, "digest", l->digest, "size", (json_int_t)l->size);
    diff = json_string(l->diff_id);
  }
  json_array_append_new(b->layers, desc);
  json_t *rootfs = json_object_get(b->cfg, "rootfs");
  if (!json_is_object(rootfs)) {
    rootfs = json_pack("{s:s, s:[]}", "type", "layers", "diff_ids");
    json_object_set_new(b->cfg, "rootfs", rootfs);
  }
  json_array_append_new(json_object_get(rootfs, "diff_ids"), diff);
}

static int apply_layer(builder *b, const mu_layer_out *l, mu_err *err);

/* A cached step's layer: into the manifest, and onto the rootfs when one is kept. */
static int take_cached(builder *b, json_t *cached, mu_err *err) {
  add_layer(b, cached, NULL);
  if (!b->rootfs[0]) return 0;
  mu_layer_out l;
  snprintf(l.digest, sizeof l.digest, "%s",
           json_string_value(json_object_get(json_object_get(cached, "layer"), "digest")));
  return apply_layer(b, &l, err);
}

/* Unpacks every layer so far into a fresh rootfs (the first step that needs one). */
static int materialize(builder *b, mu_err *err) {
  if (b->rootfs[0]) return 0;
  snprintf(b->rootfs, sizeof b->rootfs, "%s/rootfs", b->work);
  if (mkdir(b->rootfs, 0755) != 0) {
    int rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", b->rootfs, strerror(errno));
    b->rootfs[0] = '\0';
    return rc;
  }
  size_t n = json_array_size(b->layers);
  char(*paths)[PATH_MAX] = calloc(n + 1, sizeof *paths);
  const char **ptrs = calloc(n + 1, sizeof *ptrs);
  int rc = 0;
  if (paths == NULL || ptrs == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    mu_store_blob_path(b->o->store, json_string_value(json_object_get(json_array_get(b->layers, i), "digest")),
                       paths[i], sizeof paths[i]);
    ptrs[i] = paths[i];
  }
  rc = mu_unpack_layers(b->rootfs, ptrs, n, NULL, err);
done:
  free(paths);
  free(ptrs);
  return rc;
}

static int apply_layer(builder *b, const mu_layer_out *l, mu_err *err) {
  char p[PATH_MAX];
  mu_store_blob_path(b->o->store, l->digest, p, sizeof p);
  const char *one[] = {p};
  return mu_unpack_layers(b->rootfs, one, 1, NULL, err);
}

/* A new layer: the writer finished into the store (w freed), applied to the rootfs when one
 * is kept, recorded in the cache under key, added to the image; key becomes the chain's. */
static int commit_layer(builder *b, mu_layer_writer *w, const char *key, mu_err *err) {
  mu_layer_out l;
  int rc = mu_layer_writer_finish(w, &l, err);
  if (rc == 0 && b->rootfs[0]) rc = apply_layer(b, &l, err);
  if (rc == 0) rc = cache_put(b, key, &l, err);
  if (rc != 0) return rc;
  add_layer(b, NULL, &l);
  b->res->new_layers++;
  snprintf(b->key, sizeof b->key, "%s", key);
  return 0;
}

/* The image's working dir joined with path (absolute stays). */
static void in_workdir(builder *b, const char *path, char *out, size_t cap) {
  const char *wd = json_string_value(json_object_get(cfg_obj(b), "WorkingDir"));
  if (path[0] == '/' || wd == NULL || *wd == '\0') snprintf(out, cap, "%s%s", path[0] == '/' ? "" : "/", path);
  else snprintf(out, cap, "%s%s%s", wd, wd[strlen(wd) - 1] == '/' ? "" : "/", path);
}

static void env_set(json_t *env, const char *k, const char *v) {
  size_t kl = strlen(k);
  char *kv = NULL;
  if (asprintf(&kv, "%s=%s", k, v) < 0) return;
  for (size_t i = 0; i < json_array_size(env); i++) {
    const char *e = json_string_value(json_array_get(env, i));
    if (e && strncmp(e, k, kl) == 0 && e[kl] == '=') {
      json_array_set_new(env, i, json_string(kv));
      free(kv);
      return;
    }
  }
  json_array_append_new(env, json_string(kv));
  free(kv);
}

static json_t *strv_json(char **v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
  return a;
}

/* ---- the layer-making steps ---- */

static int step_copy(builder *b, const mu_mf_step *st, bool *ret_cached, mu_err *err) {
  char dest[PATH_MAX];
  in_workdir(b, st->args[st->n_args - 1], dest, sizeof dest);
  mu_copy_spec c = {.ctx_fd = b->ctx_fd,
                    .srcs = (const char *const *)st->args,
                    .n_srcs = st->n_args - 1,
                    .dest = dest,
                    .max_bytes = b->o->max_context_bytes};
  if (st->chown) {
    c.chown = true;
    c.uid = (uid_t)strtoul(st->chown, NULL, 10);
    const char *colon = strchr(st->chown, ':');
    c.gid = colon ? (gid_t)strtoul(colon + 1, NULL, 10) : (gid_t)c.uid;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  EVP_DigestUpdate(md, dest, strlen(dest) + 1);
  int rc = mu_copy_walk(&c, md, NULL, err);
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  if (rc != 0) return rc;
  char inputs[72], key[72];
  mu_sha256_format(h, inputs);
  step_key(b, st, inputs, key);
  json_t *cached = NULL;
  if (cache_get(b, key, &cached)) {
    rc = take_cached(b, cached, err);
    json_decref(cached);
    memcpy(b->key, key, sizeof key);
    *ret_cached = true;
    return rc;
  }
  mu_layer_writer *w = NULL;
  rc = mu_layer_writer_new(b->o->store, b->o->epoch, b->o->max_layer_bytes, &w, err);
  if (rc != 0) return rc;
  rc = mu_copy_walk(&c, NULL, w, err);
  if (rc != 0) {
    mu_layer_writer_abort(w);
    return rc;
  }
  return commit_layer(b, w, key, err);
}

/* The RUN's environment: the image's Env, ARGs not shadowed by it, PATH when missing. */
static char **run_env(builder *b) {
  json_t *env = json_object_get(cfg_obj(b), "Env");
  size_t n = json_array_size(env) + json_object_size(b->args) + 2;
  char **v = calloc(n, sizeof *v);
  if (v == NULL) return NULL;
  size_t k = 0;
  bool path = false;
  for (size_t i = 0; i < json_array_size(env); i++) {
    const char *e = json_string_value(json_array_get(env, i));
    if (e == NULL) continue;
    v[k++] = strdup(e);
    path |= strncmp(e, "PATH=", 5) == 0;
  }
  const char *name;
  json_t *val;
  json_object_foreach(b->args, name, val) {
    size_t nl = strlen(name);
    bool shadowed = false;
    for (size_t i = 0; i < json_array_size(env) && !shadowed; i++) {
      const char *e = json_string_value(json_array_get(env, i));
      shadowed = e && strncmp(e, name, nl) == 0 && e[nl] == '=';
    }
    if (!shadowed && asprintf(&v[k], "%s=%s", name, json_string_value(val)) > 0) k++;
  }
  if (!path) v[k++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  return v;
}

static void free_strv(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

static int step_run(builder *b, const mu_mf_step *st, bool *ret_cached, mu_err *err) {
  char **env = run_env(b);
  if (env == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  const char *user = json_string_value(json_object_get(cfg_obj(b), "User"));
  const char *wd = json_string_value(json_object_get(cfg_obj(b), "WorkingDir"));
  /* inputs: everything the command sees besides the rootfs (which the chain covers) */
  json_t *in = json_pack("{s:o, s:s, s:s, s:b}", "env", strv_json(env, 0), "user", user ? user : "", "cwd",
                         wd ? wd : "", "host_network", b->o->host_network);
  json_t *ev = json_object_get(in, "env");
  for (char **p = env; *p; p++) json_array_append_new(ev, json_string(*p));
  char *ins = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(in);
  char key[72];
  step_key(b, st, ins ? ins : "", key);
  free(ins);
  json_t *cached = NULL;
  int rc = 0;
  if (cache_get(b, key, &cached)) {
    if (json_is_object(json_object_get(cached, "layer"))) rc = take_cached(b, cached, err);
    json_decref(cached);
    memcpy(b->key, key, sizeof key);
    *ret_cached = true;
    goto done;
  }
  rc = materialize(b, err);
  if (rc != 0) goto done;
  char state[PATH_MAX];
  snprintf(state, sizeof state, "%s/step-%d", b->work, b->step_no);
  mu_build_run r = {.rootfs = b->rootfs,
                    .state_dir = state,
                    .argv = (const char *const *)st->args,
                    .env = (const char *const *)env,
                    .cwd = wd && *wd ? wd : "/",
                    .user = user,
                    .host_network = b->o->host_network,
                    .timeout_ms = b->o->step_timeout_ms,
                    .out = b->log};
  rc = mu_build_run_step(&r, err);
  if (rc != 0) {
    size_t tl = strlen(r.tail);
    while (tl > 0 && r.tail[tl - 1] == '\n') r.tail[--tl] = '\0';
    const char *tail = r.tail;
    if (tl > 300) tail = r.tail + tl - 300;
    char why[MU_ERR_MSG_MAX];
    snprintf(why, sizeof why, "%s", err->msg);
    mu_err_set(err, rc, "Musterfile line %d: %.120s: %s%s%s", st->line, st->text, why, tl ? "; output ends: " : "",
               tail);
    mu_rm_rf(state);
    goto done;
  }
  char upper[PATH_MAX];
  snprintf(upper, sizeof upper, "%s/upper", state);
  mu_layer_writer *w = NULL;
  rc = mu_layer_writer_new(b->o->store, b->o->epoch, b->o->max_layer_bytes, &w, err);
  if (rc == 0) rc = mu_layer_add_upper(w, upper, err);
  if (rc != 0) {
    mu_layer_writer_abort(w);
    mu_err_prefix(err, "Musterfile line %d", st->line);
    mu_rm_rf(state);
    goto done;
  }
  rc = commit_layer(b, w, key, err);
  mu_rm_rf(state);
done:
  free_strv(env);
  return rc;
}

/* WORKDIR: the directory is created (a layer) when the rootfs lacks it. */
static int step_workdir(builder *b, const mu_mf_step *st, bool *ret_cached, bool *ret_layer, mu_err *err) {
  char wd[PATH_MAX];
  in_workdir(b, st->args[0], wd, sizeof wd);
  json_object_set_new(cfg_obj(b), "WorkingDir", json_string(wd));
  char key[72];
  step_key(b, st, wd, key);
  json_t *cached = NULL;
  *ret_layer = false;
  if (cache_get(b, key, &cached)) {
    *ret_layer = json_is_object(json_object_get(cached, "layer"));
    int rc = *ret_layer ? take_cached(b, cached, err) : 0;
    json_decref(cached);
    memcpy(b->key, key, sizeof key);
    *ret_cached = true;
    return rc;
  }
  int rc = materialize(b, err);
  if (rc != 0) return rc;
  int root = open(b->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
  int fd = root < 0 ? -1 : (int)syscall(SYS_openat2, root, wd, &how, sizeof how);
  if (root >= 0) close(root);
  if (fd >= 0) { /* there already: no layer */
    close(fd);
    memcpy(b->key, key, sizeof key);
    return cache_put(b, key, NULL, err);
  }
  mu_layer_writer *w = NULL;
  rc = mu_layer_writer_new(b->o->store, b->o->epoch, b->o->max_layer_bytes, &w, err);
  if (rc != 0) return rc;
  /* the leaf only: missing parents are made by the unpacker (0755) */
  rc = mu_layer_add_dir(w, wd + 1, 0755, 0, 0, err);
  if (rc != 0) {
    mu_layer_writer_abort(w);
    return rc;
  }
  rc = commit_layer(b, w, key, err);
  *ret_layer = rc == 0;
  return rc;
}

/* ---- the config-only steps ---- */

/* parent's key, made an empty array or object when it is not one. */
static json_t *member(json_t *parent, const char *key, bool array) {
  json_t *v = json_object_get(parent, key);
  if (array ? json_is_array(v) : json_is_object(v)) return v;
  v = array ? json_array() : json_object();
  json_object_set_new(parent, key, v);
  return v;
}

static void step_config(builder *b, const mu_mf_step *st) {
  json_t *c = cfg_obj(b);
  switch (st->kind) {
    case MU_MF_ENV: {
      json_t *env = member(c, "Env", true);
      for (size_t i = 0; i + 1 < st->n_args; i += 2) env_set(env, st->args[i], st->args[i + 1]);
      break;
    }
    case MU_MF_LABEL: {
      json_t *l = member(c, "Labels", false);
      for (size_t i = 0; i + 1 < st->n_args; i += 2) json_object_set_new(l, st->args[i], json_string(st->args[i + 1]));
      break;
    }
    case MU_MF_EXPOSE: {
      json_t *p = member(c, "ExposedPorts", false);
      for (size_t i = 0; i < st->n_args; i++) json_object_set_new(p, st->args[i], json_object());
      break;
    }
    case MU_MF_USER: json_object_set_new(c, "User", json_string(st->args[0])); break;
    case MU_MF_ENTRYPOINT:
      json_object_set_new(c, "Entrypoint", strv_json(st->args, st->n_args));
      if (!b->cmd_set) json_object_del(c, "Cmd"); /* as Docker: a new ENTRYPOINT drops the base's CMD */
      break;
    case MU_MF_CMD:
      json_object_set_new(c, "Cmd", strv_json(st->args, st->n_args));
      b->cmd_set = true;
      break;
    case MU_MF_ARG:
      if (st->args[1] != NULL) json_object_set_new(b->args, st->args[0], json_string(st->args[1]));
      break;
    default: break;
  }
  char key[72];
  step_key(b, st, NULL, key);
  memcpy(b->key, key, sizeof key);
}

/* ---- the base and the result ---- */

static int load_base(builder *b, const mu_mf_step *from, mu_err *err) {
  mu_image img;
  mu_pull_opts po = {.registry = b->o->registry};
  mu_platform_host(&po.platform);
  int rc;
  if (b->o->base_layout) {
    const char *colon = strrchr(from->args[0], ':');
    const char *tag = colon && !strchr(colon, '/') ? colon + 1 : "";
    rc = mu_image_from_layout(b->o->store, b->o->base_layout, tag, &po, &img, err);
  } else {
    mu_imgref ref;
    rc = mu_imgref_parse(from->args[0], NULL, &ref, err);
    if (rc != 0) return mu_err_prefix(err, "Musterfile line %d: FROM", from->line);
    if (po.registry.insecure && !mu_registry_is_loopback(ref.registry))
      return mu_err_set(err, MU_EPERM, "Musterfile line %d: plain http is allowed for loopback registries only, not %s",
                        from->line, ref.registry);
    rc = mu_image_pull(b->o->store, &ref, &po, &img, err);
    if (rc == 0) snprintf(b->res->base_ref, sizeof b->res->base_ref, "%s", from->args[0]);
  }
  if (rc != 0) return mu_err_prefix(err, "Musterfile line %d: FROM %s", from->line, from->args[0]);
  char *body = NULL;
  size_t len = 0;
  rc = mu_store_read_blob(b->o->store, img.manifest.config.digest, &body, &len, err);
  if (rc == 0) {
    b->cfg = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(b->cfg))
      rc = mu_err_set(err, MU_EINVAL, "FROM %s: the image config is not JSON", from->args[0]);
  }
  free(body);
  for (size_t i = 0; rc == 0 && i < img.manifest.n_layers; i++) {
    const mu_descriptor *d = &img.manifest.layers[i];
    json_array_append_new(b->layers, json_pack("{s:s, s:s, s:I}", "mediaType", d->media_type, "digest", d->digest,
                                               "size", (json_int_t)d->size));
  }
  snprintf(b->key, sizeof b->key, "%s", img.manifest_digest);
  size_t n_base = img.manifest.n_layers;
  mu_image_free(&img);
  if (rc == 0) {
    /* history must list one non-empty entry per layer (buildah and others check): a base
     * without them gets one per layer it lacks */
    json_t *h = json_object_get(b->cfg, "history");
    if (!json_is_array(h)) {
      h = json_array();
      json_object_set_new(b->cfg, "history", h);
    }
    size_t listed = 0;
    for (size_t i = 0; i < json_array_size(h); i++)
      listed += !json_is_true(json_object_get(json_array_get(h, i), "empty_layer"));
    for (; listed < n_base; listed++)
      json_array_append_new(h, json_pack("{s:s, s:s}", "created_by", "(a layer of the FROM image)", "comment",
                                         "added by muster image build: the base image has no history for it"));
    json_object_set_new(b->cfg, "created", json_string(b->created));
    json_object_del(b->cfg, "container_config");
    json_object_del(b->cfg, "container");
  }
  return rc;
}

static int write_image(builder *b, mu_err *err) {
  char *cfg = json_dumps(b->cfg, JSON_COMPACT | JSON_SORT_KEYS);
  if (cfg == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  char cd[72], bp[PATH_MAX];
  sha256_hex(cfg, strlen(cfg), cd);
  mu_store_blob_path(b->o->store, cd, bp, sizeof bp);
  int rc = mu_store_write_atomic(b->o->store, bp, cfg, strlen(cfg), err);
  json_t *man =
      json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType", MU_MT_OCI_MANIFEST, "config",
                "mediaType", MU_OCI_CONFIG, "digest", cd, "size", (json_int_t)strlen(cfg), "layers", b->layers);
  free(cfg);
  char *ms = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(man);
  if (ms == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  char md[72];
  sha256_hex(ms, strlen(ms), md);
  mu_store_blob_path(b->o->store, md, bp, sizeof bp);
  if (rc == 0) rc = mu_store_write_atomic(b->o->store, bp, ms, strlen(ms), err);
  free(ms);
  if (rc != 0) return rc;
  /* The image's unpacked rootfs: the one this build made when it made one, else unpacked now
   * (a fully cached build of an image the store still has unpacked costs nothing). The store
   * knows its images by their rootfs (gc.c): a run needs no unpack, GC and `muster images`
   * see the image and keep the blobs it shares with others. */
  char dest[PATH_MAX];
  snprintf(dest, sizeof dest, "%s/rootfs/%s", b->o->store, md + 7);
  struct stat st;
  if (stat(dest, &st) != 0) {
    rc = materialize(b, err);
    if (rc != 0) return rc;
    if (rename(b->rootfs, dest) == 0) b->rootfs[0] = '\0';
  } else {
    utimensat(AT_FDCWD, dest, NULL, 0); /* built now: its last use, for GC */
  }
  if (b->o->tag) {
    mu_imgref ref;
    rc = mu_imgref_parse(b->o->tag, NULL, &ref, err);
    if (rc != 0) return mu_err_prefix(err, "-t");
    char rp[PATH_MAX], line[80];
    mu_store_ref_path(b->o->store, &ref, rp, sizeof rp);
    int n = snprintf(line, sizeof line, "%s\n", md);
    rc = mu_store_write_atomic(b->o->store, rp, line, (size_t)n, err);
    if (rc != 0) return rc;
  }
  snprintf(b->res->manifest_digest, sizeof b->res->manifest_digest, "%s", md);
  snprintf(b->res->config_digest, sizeof b->res->config_digest, "%s", cd);
  return 0;
}

static int read_musterfile(builder *b, mu_err *err) {
  char path[PATH_MAX];
  const char *mfp = b->o->musterfile;
  if (mfp == NULL) {
    snprintf(path, sizeof path, "%s/Musterfile", b->o->context);
    if (access(path, F_OK) != 0) snprintf(path, sizeof path, "%s/Dockerfile", b->o->context);
    mfp = path;
  }
  FILE *f = fopen(mfp, "re");
  if (f == NULL) return mu_err_set(err, MU_ENOENT, "%s: %s", mfp, strerror(errno));
  size_t cap = 1u << 20;
  char *text = malloc(cap + 1);
  size_t n = text ? fread(text, 1, cap + 1, f) : 0;
  fclose(f);
  if (text == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  mu_mf_limits lim = {.max_bytes = cap};
  int rc = mu_musterfile_parse(text, n, b->o->build_args, &lim, &b->mf, err);
  free(text);
  if (rc != 0) return rc;
  for (size_t i = 0; i < b->mf.n_unused_args; i++)
    fprintf(b->log, "warning: --build-arg %s: no ARG in the Musterfile uses it\n", b->mf.unused_args[i]);
  return 0;
}

int mu_image_build(const mu_build_opts *o, mu_build_result *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  builder b = {.o = o, .log = o->log ? o->log : stdout, .ctx_fd = -1, .res = ret};
  time_t t = (time_t)o->epoch;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(b.created, sizeof b.created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  b.layers = json_array();
  b.args = json_object();
  int rc = mu_store_init(o->store, err);
  if (rc != 0) goto done;
  b.ctx_fd = open(o->context, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (b.ctx_fd < 0) {
    rc = mu_err_set(err, MU_ENOENT, "build context %s: %s", o->context, strerror(errno));
    goto done;
  }
  rc = read_musterfile(&b, err);
  if (rc != 0) goto done;
  snprintf(b.work, sizeof b.work, "%s/tmp/build.XXXXXX", o->store);
  if (mkdtemp(b.work) == NULL) {
    rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", b.work, strerror(errno));
    b.work[0] = '\0';
    goto done;
  }
  size_t first = 0;
  while (b.mf.steps[first].kind != MU_MF_FROM) first++; /* ARGs before FROM: FROM only */
  int total = (int)(b.mf.n_steps - first);
  for (size_t i = first; i < b.mf.n_steps; i++) {
    const mu_mf_step *st = &b.mf.steps[i];
    b.step_no = (int)(i - first) + 1;
    fprintf(b.log, "STEP %d/%d: %s\n", b.step_no, total, st->text);
    fflush(b.log);
    if (st->kind == MU_MF_FROM) {
      rc = load_base(&b, st, err);
      if (rc != 0) goto done;
      fprintf(b.log, "--> %s\n", b.key);
      continue;
    }
    ret->steps++;
    bool cached = false, layer = true;
    if (st->kind == MU_MF_COPY || st->kind == MU_MF_ADD) rc = step_copy(&b, st, &cached, err);
    else if (st->kind == MU_MF_RUN) rc = step_run(&b, st, &cached, err);
    else if (st->kind == MU_MF_WORKDIR) rc = step_workdir(&b, st, &cached, &layer, err);
    else {
      step_config(&b, st);
      history(&b, st, true);
      continue;
    }
    if (rc != 0) {
      if (strncmp(err->msg, "Musterfile line", 15) != 0) mu_err_prefix(err, "Musterfile line %d", st->line);
      goto done;
    }
    if (json_array_size(b.layers) > 127) {
      rc = mu_err_set(err, MU_ENOSPC, "Musterfile line %d: more than 127 layers", st->line);
      goto done;
    }
    ret->layer_steps++;
    if (cached) ret->cached++;
    if (st->kind == MU_MF_WORKDIR && !layer) history(&b, st, true);
    else history(&b, st, false);
    const char *ld =
        json_string_value(json_object_get(json_array_get(b.layers, json_array_size(b.layers) - 1), "digest"));
    fprintf(b.log, "--> %s%s\n", cached ? "cached " : "", layer && ld ? ld : "(no layer)");
  }
  rc = write_image(&b, err);
  if (rc == 0)
    fprintf(b.log, "image %s%s%s (%d of %d layer steps cached)\n", ret->manifest_digest, o->tag ? " tagged " : "",
            o->tag ? o->tag : "", ret->cached, ret->layer_steps);
done:
  if (b.work[0]) mu_rm_rf(b.work);
  if (b.ctx_fd >= 0) close(b.ctx_fd);
  json_decref(b.cfg);
  json_decref(b.layers);
  json_decref(b.args);
  mu_musterfile_free(&b.mf);
  return rc;
}
