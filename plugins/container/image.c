/* The image store and pulls (see image.h). */
#define _GNU_SOURCE
#include "plugins/container/image.h"

#include "plugins/container/layers.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path, mode_t mode) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

int mu_store_init(const char *root, mu_err *err) {
  const char *subs[] = {"blobs/sha256", "refs", "rootfs", "tmp", "layers"};
  for (size_t i = 0; i < 5; i++) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, subs[i]);
    if (mkdir_p(p, 0700) != 0) return mu_err_set(err, MU_EIO, "image store: cannot create %s: %s", p, strerror(errno));
  }
  return 0;
}

int mu_pull_policy_parse(const char *s, mu_pull_policy *ret) {
  if (s == NULL || *s == '\0' || strcmp(s, "if-not-present") == 0) *ret = MU_PULL_IF_NOT_PRESENT;
  else if (strcmp(s, "always") == 0) *ret = MU_PULL_ALWAYS;
  else if (strcmp(s, "never") == 0) *ret = MU_PULL_NEVER;
  else return -1;
  return 0;
}

static void blob_path(const char *root, const char *digest, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/blobs/sha256/%s", root, digest + 7);
}

/* Reads a small blob from the store and checks its digest (a store file could be damaged). */
static int read_blob(const char *root, const char *digest, char **ret, size_t *ret_len, mu_err *err) {
  char path[PATH_MAX];
  blob_path(root, digest, path, sizeof path);
  *ret = NULL;
  FILE *f = fopen(path, "rbe");
  if (f == NULL)
    return errno == ENOENT ? MU_ENOENT : mu_err_set(err, MU_EIO, "cannot read %s: %s", path, strerror(errno));
  char *buf = malloc(MU_MANIFEST_MAX_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MU_MANIFEST_MAX_BYTES + 1, f) : 0;
  fclose(f);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (n > MU_MANIFEST_MAX_BYTES) {
    free(buf);
    return mu_err_set(err, MU_ENOSPC, "%s is over the manifest bound", path);
  }
  buf[n] = '\0';
  unsigned char h[32];
  unsigned hl = 0;
  EVP_Digest(buf, n, h, &hl, EVP_sha256(), NULL);
  char got[72];
  mu_sha256_format(h, got);
  if (strcmp(got, digest) != 0) {
    free(buf);
    unlink(path);
    return MU_ENOENT; /* damaged: fetch again */
  }
  *ret = buf;
  *ret_len = n;
  return 0;
}

static int write_atomic(const char *root, const char *final, const void *data, size_t len, mu_err *err) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/tmp/w.XXXXXX", root);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return mu_err_set(err, MU_EIO, "cannot create %s: %s", tmp, strerror(errno));
  bool ok = write(fd, data, len) == (ssize_t)len && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, final) != 0) {
    unlink(tmp);
    return mu_err_set(err, MU_EIO, "cannot write %s: %s", final, strerror(errno));
  }
  return 0;
}

static void ref_path(const char *root, const mu_imgref *ref, char *buf, size_t cap) {
  char name[MU_IMGREF_MAX + 1];
  snprintf(name, sizeof name, "%s/%s:%s", ref->registry, ref->repository, ref->tag);
  for (char *p = name; *p; p++)
    if (*p == '/') *p = '%';
  snprintf(buf, cap, "%s/refs/%s", root, name);
}

int mu_store_ref_set(const char *root, const mu_imgref *ref, const char *digest, mu_err *err) {
  if (ref->tag[0] == '\0' || !mu_digest_valid(digest)) return 0;
  char rp[PATH_MAX], line[80];
  ref_path(root, ref, rp, sizeof rp);
  int n = snprintf(line, sizeof line, "%s\n", digest);
  return write_atomic(root, rp, line, (size_t)n, err);
}

static bool blob_present(const char *root, const mu_descriptor *d) {
  char path[PATH_MAX];
  struct stat st;
  blob_path(root, d->digest, path, sizeof path);
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == d->size;
}

typedef struct progress {
  const mu_pull_opts *opts;
  char phase[64];
  uint64_t done, total;
  mu_image *img;
} progress;

static void on_bytes(void *arg, uint64_t n) {
  progress *p = arg;
  p->done += n;
  p->img->downloaded_bytes += n;
  if (p->opts->on_progress) p->opts->on_progress(p->opts->arg, p->phase, p->done, p->total);
}

/* ---- blobs, fetched in parallel ---- */

typedef struct fetch {
  const char *root;
  const mu_descriptor *to_fetch[MU_MANIFEST_MAX_LAYERS + 1];
  size_t n_to_fetch, next;
  int slots; /* store-wide cap */
  pthread_mutex_t mu;
  progress *prog;
  uint64_t done_bytes;
  int layers;
  mu_registry *base;
  int rc;
  mu_err err;
} fetch;

static void fetch_bytes(void *arg, uint64_t n) {
  fetch *f = arg;
  pthread_mutex_lock(&f->mu);
  f->done_bytes += n;
  f->prog->img->downloaded_bytes += n;
  if (f->prog->opts->on_progress)
    f->prog->opts->on_progress(f->prog->opts->arg, f->prog->phase, f->done_bytes, f->prog->total);
  pthread_mutex_unlock(&f->mu);
}

/* A store-wide download slot: the first free of slots lock files, else wait on one. */
static int take_slot(const char *root, int slots, int hint) {
  char p[PATH_MAX];
  for (int k = 0; k < slots; k++) {
    snprintf(p, sizeof p, "%s/tmp/.download-slot-%d", root, k);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    close(fd);
  }
  snprintf(p, sizeof p, "%s/tmp/.download-slot-%d", root, hint % slots);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

static void *fetch_worker(void *arg) {
  fetch *f = arg;
  mu_registry *reg = NULL;
  for (;;) {
    pthread_mutex_lock(&f->mu);
    if (reg == NULL) reg = mu_registry_clone(f->base); /* after the lock: the base token is current */
    const mu_descriptor *d = f->rc == 0 && f->next < f->n_to_fetch ? f->to_fetch[f->next++] : NULL;
    int index = (int)f->next;
    pthread_mutex_unlock(&f->mu);
    if (d == NULL || reg == NULL) break;
    mu_registry_set_progress(reg, fetch_bytes, f);
    char bp[PATH_MAX];
    blob_path(f->root, d->digest, bp, sizeof bp);
    int slot = take_slot(f->root, f->slots, index);
    mu_err e = {0};
    int rc = mu_registry_get_blob(reg, d, bp, &e);
    if (slot >= 0) close(slot);
    pthread_mutex_lock(&f->mu);
    if (rc != 0 && f->rc == 0) {
      f->rc = rc;
      f->err = e;
    }
    if (rc == 0) f->layers++;
    pthread_mutex_unlock(&f->mu);
  }
  mu_registry_free(reg);
  return NULL;
}

/* opts->admit on the manifest and the config (in the store by now), once per pull. */
static int admit(const char *root, mu_registry *reg, const mu_pull_opts *opts, mu_image *img, mu_err *err) {
  if (opts->admit == NULL || img->admitted) return 0;
  char *body = NULL;
  size_t len = 0;
  mu_image_config cfg;
  memset(&cfg, 0, sizeof cfg);
  int rc = read_blob(root, img->manifest.config.digest, &body, &len, err);
  if (rc == 0) rc = mu_image_config_parse(body, len, &cfg, err);
  if (rc != 0) mu_err_prefix(err, "image config %s", img->manifest.config.digest);
  if (rc == 0) rc = opts->admit(opts->admit_arg, reg, img->manifest_digest, &img->manifest, &cfg, err);
  if (rc == 0) img->admitted = true;
  mu_image_config_free(&cfg);
  free(body);
  return rc;
}

static int fetch_blobs(const char *root, mu_registry *reg, const mu_manifest *m, const mu_pull_opts *opts,
                       mu_image *img, progress *prog, mu_err *err) {
  fetch *f = calloc(1, sizeof *f);
  if (f == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  f->root = root;
  f->prog = prog;
  f->base = reg;
  f->slots = opts->store_parallel > 0 ? opts->store_parallel : 6;
  pthread_mutex_init(&f->mu, NULL);
  int rc = 0;
  bool config_missing = !blob_present(root, &m->config);
  /* the config first, alone: it answers any auth challenge once, for every worker */
  if (config_missing) {
    if (opts->policy == MU_PULL_NEVER) {
      rc = mu_err_set(err, MU_ENOENT, "blob %s is not in the store and pull_policy is never", m->config.digest);
      goto done;
    }
    char bp[PATH_MAX];
    blob_path(root, m->config.digest, bp, sizeof bp);
    snprintf(prog->phase, sizeof prog->phase, "config");
    rc = mu_registry_get_blob(reg, &m->config, bp, err);
    if (rc != 0) goto done;
  }
  rc = admit(root, reg, opts, img, err); /* before any layer is asked for */
  if (rc != 0) goto done;
  for (size_t i = 0; i < m->n_layers; i++) {
    if (blob_present(root, &m->layers[i])) continue;
    if (opts->policy == MU_PULL_NEVER) {
      rc = mu_err_set(err, MU_ENOENT, "blob %s is not in the store and pull_policy is never", m->layers[i].digest);
      goto done;
    }
    f->to_fetch[f->n_to_fetch++] = &m->layers[i];
    prog->total += (uint64_t)m->layers[i].size;
  }
  if (f->n_to_fetch == 0) goto done;
  snprintf(prog->phase, sizeof prog->phase, "%zu layers", f->n_to_fetch);
  mu_registry_global_init(); /* before threads: libcurl's global init is not thread-safe */
  int n = opts->parallel > 0 ? opts->parallel : 3;
  if ((size_t)n > f->n_to_fetch) n = (int)f->n_to_fetch;
  pthread_t th[16];
  if (n > 16) n = 16;
  int started = 0;
  for (; started < n; started++)
    if (pthread_create(&th[started], NULL, fetch_worker, f) != 0) break;
  if (started == 0) fetch_worker(f);
  for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
  img->layers_downloaded += f->layers;
  if (f->rc != 0) {
    rc = f->rc;
    if (err) *err = f->err;
  }
done:
  pthread_mutex_destroy(&f->mu);
  free(f);
  return rc;
}

/* Fetches the manifest for ref: by digest, or by tag (then pinned to its digest). An index is
 * resolved to the platform's manifest. */
static int resolve(const char *root, mu_registry *reg, const mu_imgref *ref, const mu_pull_opts *opts, mu_image *img,
                   char **ret_body, size_t *ret_len, mu_err *err) {
  char ctype[128] = "", digest[72] = "";
  char *body = NULL;
  size_t len = 0;
  int rc;
  char rp[PATH_MAX];
  ref_path(root, ref, rp, sizeof rp);
  if (ref->digest[0]) {
    snprintf(digest, sizeof digest, "%s", ref->digest);
  } else if (opts->policy != MU_PULL_ALWAYS) {
    FILE *f = fopen(rp, "re");
    if (f != NULL) {
      if (fgets(digest, sizeof digest, f) == NULL || !mu_digest_valid(digest)) digest[0] = '\0';
      fclose(f);
    }
  }
  if (digest[0] && opts->policy != MU_PULL_ALWAYS && read_blob(root, digest, &body, &len, err) == 0) goto have;
  if (opts->policy == MU_PULL_NEVER)
    return mu_err_set(err, MU_ENOENT, "image %s/%s:%s is not in the store and pull_policy is never", ref->registry,
                      ref->repository, ref->tag[0] ? ref->tag : ref->digest);
  if (reg == NULL) return mu_err_set(err, MU_EINVAL, "no registry client");
  rc = mu_registry_get_manifest(reg, mu_imgref_reference(ref), &body, &len, ctype, digest, err);
  if (rc != 0) return rc;
  mu_doc_kind kind;
  rc = mu_doc_kind_of(ctype, body, len, &kind, err);
  if (rc != 0) goto fail;
  if (kind == MU_DOC_INDEX) {
    mu_descriptor d;
    rc = mu_index_select(body, len, &opts->platform, &d, err);
    if (rc != 0) goto fail;
    free(body);
    body = NULL;
    rc = mu_registry_get_manifest(reg, d.digest, &body, &len, ctype, digest, err);
    if (rc != 0) goto fail;
    if ((int64_t)len != d.size) {
      rc = mu_err_set(err, MU_EIO, "manifest %s: %zu bytes, the index says %lld", d.digest, len, (long long)d.size);
      goto fail;
    }
    rc = mu_doc_kind_of(ctype, body, len, &kind, err);
    if (rc != 0) goto fail;
    if (kind != MU_DOC_MANIFEST) {
      rc = mu_err_set(err, MU_ENOTSUP, "index entry %s is not an image manifest", d.digest);
      goto fail;
    }
  }
  char bp[PATH_MAX];
  blob_path(root, digest, bp, sizeof bp);
  rc = write_atomic(root, bp, body, len, err);
  if (rc != 0) goto fail;
  if (!ref->digest[0]) {
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", digest);
    rc = write_atomic(root, rp, line, (size_t)n, err);
    if (rc != 0) goto fail;
  }
have:
  snprintf(img->manifest_digest, sizeof img->manifest_digest, "%s", digest);
  *ret_body = body;
  *ret_len = len;
  return 0;
fail:
  free(body);
  return rc;
}

/* From the manifest on: config, rootfs (shared by registry pulls and OCI layouts). */
static int complete(const char *root, const mu_pull_opts *opts, mu_image *img, progress *prog, mu_err *err) {
  const mu_manifest *m = &img->manifest;
  char *cfg = NULL;
  size_t cfg_len = 0;
  int rc;
  rc = admit(root, NULL, opts, img, err);
  if (rc != 0) return rc;
  rc = read_blob(root, m->config.digest, &cfg, &cfg_len, err);
  if (rc != 0) {
    if (rc == MU_ENOENT) rc = mu_err_set(err, MU_EIO, "config %s: damaged in the store", m->config.digest);
    goto done;
  }
  rc = mu_image_config_parse(cfg, cfg_len, &img->config, err);
  if (rc != 0) {
    mu_err_prefix(err, "image config %s", m->config.digest);
    goto done;
  }
  if (img->config.n_diff_ids != 0 && img->config.n_diff_ids != m->n_layers) {
    rc = mu_err_set(err, MU_EINVAL, "image config lists %zu diff_ids for %zu layers", img->config.n_diff_ids,
                    m->n_layers);
    goto done;
  }
  if (opts->no_rootfs) goto done;
  snprintf(img->rootfs, sizeof img->rootfs, "%s/rootfs/%s", root, img->manifest_digest + 7);
  struct stat st;
  if (stat(img->rootfs, &st) != 0) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp/rootfs.XXXXXX", root);
    if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) != 0) {
      rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", tmp, strerror(errno));
      goto done;
    }
    const char *layers[MU_MANIFEST_MAX_LAYERS];
    char paths[MU_MANIFEST_MAX_LAYERS][PATH_MAX / 4];
    for (size_t i = 0; i < m->n_layers; i++) {
      blob_path(root, m->layers[i].digest, paths[i], sizeof paths[i]);
      layers[i] = paths[i];
    }
    /* the config's rootfs.diff_ids name the uncompressed layers: checked before unpacking */
    for (size_t i = 0; i < img->config.n_diff_ids && rc == 0; i++) {
      char got[72];
      rc = mu_layer_diff_id(paths[i], got, err);
      if (rc != 0) break;
      if (strcmp(got, img->config.diff_ids[i]) != 0)
        rc = mu_err_set(err, MU_EIO, "layer %zu (%s): uncompressed digest %s is not the config's diff_id %s (refused)",
                        i + 1, m->layers[i].digest, got, img->config.diff_ids[i]);
    }
    if (rc != 0) {
      mu_rm_rf(tmp);
      goto done;
    }
    snprintf(prog->phase, sizeof prog->phase, "unpack");
    if (opts->on_progress) opts->on_progress(opts->arg, prog->phase, 0, 0);
    /* each layer once in its own dir, stacked by the launcher (layers.h); else one merged copy */
    int fresh = 0;
    rc = mu_layers_unpack(root, m, layers, &opts->unpack, tmp, &fresh, err);
    if (rc == MU_ENOTSUP) rc = mu_unpack_layers(tmp, layers, m->n_layers, &opts->unpack, err);
    if (rc != 0) {
      mu_rm_rf(tmp);
      goto done;
    }
    if (rename(tmp, img->rootfs) != 0) {
      int e = errno;
      mu_rm_rf(tmp);
      if (e != EEXIST && e != ENOTEMPTY) {
        rc = mu_err_set(err, MU_EIO, "cannot rename into %s: %s", img->rootfs, strerror(e));
        goto done;
      }
    } else {
      img->unpacked = true;
    }
  }
done:
  free(cfg);
  return rc;
}

int mu_image_pull(const char *root, const mu_imgref *ref, const mu_pull_opts *opts, mu_image *img, mu_err *err) {
  memset(img, 0, sizeof *img);
  mu_registry *reg = NULL;
  char *body = NULL;
  size_t len = 0;
  progress prog = {.opts = opts, .img = img};
  int rc;
  rc = mu_store_init(root, err);
  if (rc != 0) return rc;
  mu_registry_opts ro = opts->registry;
  ro.on_bytes = on_bytes;
  ro.arg = &prog;
  if (opts->policy != MU_PULL_NEVER) {
    rc = mu_registry_new(ref, &ro, &reg, err);
    if (rc != 0) return rc;
  }
  snprintf(prog.phase, sizeof prog.phase, "manifest");
  rc = resolve(root, reg, ref, opts, img, &body, &len, err);
  if (rc != 0) goto done;
  rc = mu_image_manifest_parse(body, len, &img->manifest, err);
  if (rc != 0) goto done;
  rc = fetch_blobs(root, reg, &img->manifest, opts, img, &prog, err);
  if (rc != 0) goto done;
  rc = complete(root, opts, img, &prog, err);
done:
  free(body);
  mu_registry_free(reg);
  if (rc != 0) mu_image_free(img);
  return rc;
}

/* ---- OCI image layouts (an image inside a bundle, for hosts without a registry) ---- */

/* Copies dir/blobs/sha256/<hex> of d into the store, checking size and sha256. */
static int copy_layout_blob(const char *root, int dirfd, const mu_descriptor *d, mu_err *err) {
  char rel[100], dest[PATH_MAX], tmp[PATH_MAX];
  blob_path(root, d->digest, dest, sizeof dest);
  struct stat st;
  if (stat(dest, &st) == 0 && st.st_size == d->size) return 0;
  snprintf(rel, sizeof rel, "blobs/sha256/%s", d->digest + 7);
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  int in = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
  if (in < 0) return mu_err_set(err, MU_ENOENT, "OCI layout: blob %s: %s", d->digest, strerror(errno));
  snprintf(tmp, sizeof tmp, "%s/tmp/layout.XXXXXX", root);
  int out = mkostemp(tmp, O_CLOEXEC);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int rc = 0;
  int64_t total = 0;
  if (out < 0 || md == NULL) {
    rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = mu_err_set(err, MU_EIO, "OCI layout: blob %s: %s", d->digest, strerror(errno));
      goto done;
    }
    if (n == 0) break;
    total += n;
    if (total > d->size) {
      rc = mu_err_set(err, MU_EIO, "OCI layout: blob %s is longer than its descriptor's %lld bytes", d->digest,
                      (long long)d->size);
      goto done;
    }
    EVP_DigestUpdate(md, buf, (size_t)n);
    if (write(out, buf, (size_t)n) != n) {
      rc = mu_err_set(err, MU_EIO, "cannot write %s: %s", tmp, strerror(errno));
      goto done;
    }
  }
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  char got[72];
  mu_sha256_format(h, got);
  if (total != d->size || strcmp(got, d->digest) != 0) {
    rc = mu_err_set(err, MU_EIO, "OCI layout: blob %s has %lld bytes and digest %s (refused)", d->digest,
                    (long long)total, got);
    goto done;
  }
  if (fchmod(out, 0644) != 0 || fsync(out) != 0 || rename(tmp, dest) != 0)
    rc = mu_err_set(err, MU_EIO, "cannot store %s: %s", dest, strerror(errno));
done:
  if (rc != 0 && out >= 0) unlink(tmp);
  if (out >= 0) close(out);
  close(in);
  EVP_MD_CTX_free(md);
  return rc;
}

static int read_layout_doc(int dirfd, const char *rel, char **ret, size_t *ret_len, mu_err *err) {
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
  if (fd < 0) return mu_err_set(err, MU_ENOENT, "OCI layout: %s: %s", rel, strerror(errno));
  char *buf = malloc(MU_MANIFEST_MAX_BYTES + 1);
  size_t n = 0;
  while (buf != NULL && n <= MU_MANIFEST_MAX_BYTES) {
    ssize_t r = read(fd, buf + n, MU_MANIFEST_MAX_BYTES + 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (n > MU_MANIFEST_MAX_BYTES) {
    free(buf);
    return mu_err_set(err, MU_ENOSPC, "OCI layout: %s is over the %u-byte bound", rel, MU_MANIFEST_MAX_BYTES);
  }
  buf[n] = '\0';
  *ret = buf;
  *ret_len = n;
  return 0;
}

int mu_image_from_layout(const char *root, const char *dir, const char *tag, const mu_pull_opts *opts, mu_image *img,
                         mu_err *err) {
  memset(img, 0, sizeof *img);
  progress prog = {.opts = opts, .img = img};
  char *index = NULL, *body = NULL;
  size_t len = 0;
  int rc;
  rc = mu_store_init(root, err);
  if (rc != 0) return rc;
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return mu_err_set(err, MU_ENOENT, "OCI layout %s: %s", dir, strerror(errno));
  rc = read_layout_doc(dirfd, "index.json", &index, &len, err);
  if (rc != 0) goto done;
  mu_descriptor d;
  rc = mu_layout_select(index, len, tag, &d, err);
  if (rc != 0) goto done;
  for (int depth = 0;; depth++) {
    rc = copy_layout_blob(root, dirfd, &d, err);
    if (rc != 0) goto done;
    free(body);
    body = NULL;
    rc = read_blob(root, d.digest, &body, &len, err);
    if (rc != 0) goto done;
    mu_doc_kind kind;
    rc = mu_doc_kind_of(d.media_type, body, len, &kind, err);
    if (rc != 0) goto done;
    if (kind == MU_DOC_MANIFEST) break;
    if (depth > 0) {
      rc = mu_err_set(err, MU_ENOTSUP, "OCI layout: nested indexes are not supported");
      goto done;
    }
    rc = mu_index_select(body, len, &opts->platform, &d, err);
    if (rc != 0) goto done;
  }
  snprintf(img->manifest_digest, sizeof img->manifest_digest, "%s", d.digest);
  rc = mu_image_manifest_parse(body, len, &img->manifest, err);
  if (rc != 0) goto done;
  for (size_t i = 0; i <= img->manifest.n_layers && rc == 0; i++) {
    const mu_descriptor *b = i == 0 ? &img->manifest.config : &img->manifest.layers[i - 1];
    rc = copy_layout_blob(root, dirfd, b, err);
    if (i == 0 && rc == 0) rc = admit(root, NULL, opts, img, err); /* the config in: before any layer */
  }
  if (rc == 0) rc = complete(root, opts, img, &prog, err);
done:
  close(dirfd);
  free(index);
  free(body);
  if (rc != 0) mu_image_free(img);
  return rc;
}

void mu_image_free(mu_image *img) { mu_image_config_free(&img->config); }

/* ---- for docker_archive.c (image_int.h) ---- */

void mu_store_blob_path(const char *root, const char *digest, char *buf, size_t cap) {
  blob_path(root, digest, buf, cap);
}

void mu_store_ref_path(const char *root, const mu_imgref *ref, char *buf, size_t cap) { ref_path(root, ref, buf, cap); }

int mu_store_read_blob(const char *root, const char *digest, char **ret, size_t *ret_len, mu_err *err) {
  int rc = read_blob(root, digest, ret, ret_len, err);
  if (rc == MU_ENOENT) return mu_err_set(err, MU_ENOENT, "blob %s: missing or damaged in the store", digest);
  return rc;
}

int mu_store_write_atomic(const char *root, const char *final, const void *data, size_t len, mu_err *err) {
  return write_atomic(root, final, data, len, err);
}

int mu_image_complete(const char *root, const mu_pull_opts *opts, mu_image *img, mu_err *err) {
  progress prog = {.opts = opts, .img = img};
  return complete(root, opts, img, &prog, err);
}
