/* `docker save` tars as image sources (image.h): every regular file of the tar goes into the
 * store as a blob under its sha256 (so the names manifest.json uses, in the legacy
 * "<id>/layer.tar" form or the newer "blobs/sha256/<hex>" one, map to digests, through the
 * archive's own symlinks), then manifest.json picks the config and layers, and an OCI
 * manifest is made for them. Files the image does not use are removed again. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/container/image_int.h"

#define DA_MAX_ENTRIES 4096

typedef struct da_file {
  char *name;
  char *link; /* symlink target, as an archive name; NULL for a file */
  char digest[72];
  int64_t size;
  bool created; /* this import put the blob in the store */
  bool used;
} da_file;

typedef struct da {
  const char *root;
  da_file files[DA_MAX_ENTRIES];
  size_t n;
  uint64_t bytes, max_bytes;
} da;

/* "./a//b/" -> "a/b"; NULL for an absolute name or one with "..". */
static char *clean_name(const char *raw) {
  if (raw == NULL || raw[0] == '/') return NULL;
  char *out = malloc(strlen(raw) + 1);
  if (out == NULL) return NULL;
  size_t n = 0;
  for (const char *p = raw; *p;) {
    while (*p == '/') p++;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      free(out);
      return NULL;
    }
    if (len > 0 && !(len == 1 && p[0] == '.')) {
      if (n > 0) out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
    }
    p += len;
  }
  out[n] = '\0';
  return out;
}

/* A symlink's target as an archive name (relative to the link's directory). */
static char *link_name(const char *name, const char *target) {
  if (target == NULL || target[0] == '/') return NULL;
  const char *slash = strrchr(name, '/');
  size_t dl = slash ? (size_t)(slash - name) : 0;
  char *joined = malloc(dl + strlen(target) + 2);
  if (joined == NULL) return NULL;
  snprintf(joined, dl + strlen(target) + 2, "%.*s%s%s", (int)dl, name, dl ? "/" : "", target);
  /* resolve ".." against the joined path, refusing to climb out of the archive */
  char *parts[256];
  size_t np = 0;
  char *save = NULL;
  for (char *t = strtok_r(joined, "/", &save); t != NULL; t = strtok_r(NULL, "/", &save)) {
    if (strcmp(t, ".") == 0) continue;
    if (strcmp(t, "..") == 0) {
      if (np == 0) {
        free(joined);
        return NULL;
      }
      np--;
      continue;
    }
    if (np == 256) {
      free(joined);
      return NULL;
    }
    parts[np++] = t;
  }
  size_t len = 1;
  for (size_t i = 0; i < np; i++) len += strlen(parts[i]) + 1;
  char *out = malloc(len);
  if (out != NULL) {
    out[0] = '\0';
    for (size_t i = 0; i < np; i++) {
      if (i) strcat(out, "/");
      strcat(out, parts[i]);
    }
  }
  free(joined);
  return out;
}

/* Streams the entry's data into the store under its digest. */
static int store_entry(da *d, struct archive *a, da_file *f, mu_err *err) {
  char tmp[PATH_MAX], dest[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/tmp/darchive.XXXXXX", d->root);
  int fd = mkostemp(tmp, O_CLOEXEC);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int rc = 0;
  if (fd < 0 || md == NULL) {
    rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  char buf[65536];
  la_ssize_t n;
  while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
    d->bytes += (uint64_t)n;
    f->size += n;
    if (d->bytes > d->max_bytes) {
      rc = mu_err_set(err, MU_ENOSPC, "docker archive: more than %llu bytes (the image size cap)",
                      (unsigned long long)d->max_bytes);
      goto done;
    }
    EVP_DigestUpdate(md, buf, (size_t)n);
    if (write(fd, buf, (size_t)n) != n) {
      rc = mu_err_set(err, MU_EIO, "cannot write %s: %s", tmp, strerror(errno));
      goto done;
    }
  }
  if (n < 0) {
    rc = mu_err_set(err, MU_EIO, "docker archive: %s: %s", f->name, archive_error_string(a));
    goto done;
  }
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  mu_sha256_format(h, f->digest);
  mu_store_blob_path(d->root, f->digest, dest, sizeof dest);
  struct stat st;
  f->created = stat(dest, &st) != 0;
  if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || rename(tmp, dest) != 0)
    rc = mu_err_set(err, MU_EIO, "cannot store %s: %s", dest, strerror(errno));
done:
  if (fd >= 0) {
    close(fd);
    if (rc != 0) unlink(tmp);
  }
  EVP_MD_CTX_free(md);
  return rc;
}

static int read_archive(da *d, const char *path, mu_err *err) {
  struct archive *a = archive_read_new();
  if (a == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  archive_read_support_filter_none(a);
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  int rc = 0;
  if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "docker archive %s: %s", path, archive_error_string(a));
    goto done;
  }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    mode_t type = archive_entry_filetype(e);
    if (type != AE_IFREG && type != AE_IFLNK) continue; /* directories carry nothing */
    if (d->n == DA_MAX_ENTRIES) {
      rc = mu_err_set(err, MU_ENOSPC, "docker archive: more than %d files", DA_MAX_ENTRIES);
      goto done;
    }
    da_file *f = &d->files[d->n];
    memset(f, 0, sizeof *f);
    f->name = clean_name(archive_entry_pathname(e));
    if (f->name == NULL) {
      rc = mu_err_set(err, MU_EINVAL, "docker archive: entry \"%.200s\": absolute or with \"..\" (refused)",
                      archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
      goto done;
    }
    d->n++;
    if (type == AE_IFLNK) {
      f->link = link_name(f->name, archive_entry_symlink(e));
      if (f->link == NULL) {
        rc = mu_err_set(err, MU_EINVAL, "docker archive: symlink %s points out of the archive (refused)", f->name);
        goto done;
      }
      continue;
    }
    rc = store_entry(d, a, f, err);
    if (rc != 0) goto done;
  }
  if (r != ARCHIVE_EOF) rc = mu_err_set(err, MU_EIO, "docker archive %s: %s", path, archive_error_string(a));
done:
  archive_read_free(a);
  return rc;
}

/* The stored file an archive name means, through at most 8 symlinks; NULL when none. */
static da_file *lookup(da *d, const char *raw) {
  char *name = clean_name(raw);
  da_file *f = NULL;
  for (int hops = 0; name != NULL && hops < 8; hops++) {
    f = NULL;
    for (size_t i = d->n; i-- > 0;) /* the last of a repeated name wins, as on extraction */
      if (strcmp(d->files[i].name, name) == 0) {
        f = &d->files[i];
        break;
      }
    if (f == NULL || f->link == NULL) break;
    free(name);
    name = strdup(f->link);
    f = NULL;
  }
  free(name);
  return f;
}

static const char *layer_media_type(const char *root, const da_file *f) {
  char path[PATH_MAX];
  unsigned char m[4] = {0};
  mu_store_blob_path(root, f->digest, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, m, sizeof m) < 0) m[0] = 0;
    close(fd);
  }
  if (m[0] == 0x1f && m[1] == 0x8b) return "application/vnd.oci.image.layer.v1.tar+gzip";
  if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
    return "application/vnd.oci.image.layer.v1.tar+zstd";
  return "application/vnd.oci.image.layer.v1.tar";
}

/* manifest.json's entry for ref ("" = the only one). */
static json_t *pick(json_t *list, const char *ref, mu_err *err) {
  if (!json_is_array(list) || json_array_size(list) == 0) {
    mu_err_set(err, MU_EINVAL, "docker archive: manifest.json is not a list of images");
    return NULL;
  }
  if (ref == NULL || *ref == '\0') {
    if (json_array_size(list) == 1) return json_array_get(list, 0);
    mu_err_set(err, MU_EINVAL, "docker archive: it holds %zu images; name one (docker-archive:FILE:REPO:TAG)",
               json_array_size(list));
    return NULL;
  }
  char have[512] = "";
  size_t i, k;
  json_t *m, *t;
  json_array_foreach(list, i, m) {
    json_array_foreach(json_object_get(m, "RepoTags"), k, t) {
      const char *s = json_string_value(t);
      if (s == NULL) continue;
      if (strcmp(s, ref) == 0) return m;
      size_t hl = strlen(have);
      if (hl < sizeof have - 2) snprintf(have + hl, sizeof have - hl, "%s%s", hl ? ", " : "", s);
    }
  }
  mu_err_set(err, MU_ENOENT, "docker archive: no image tagged \"%s\" (it has: %s)", ref, have[0] ? have : "no tags");
  return NULL;
}

static json_t *descriptor(const char *media_type, const da_file *f) {
  return json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", f->digest, "size", (json_int_t)f->size);
}

int mu_image_from_docker_archive(const char *root, const char *tar, const char *ref, const mu_pull_opts *opts,
                                 mu_image *img, mu_err *err) {
  memset(img, 0, sizeof *img);
  da *d = calloc(1, sizeof *d);
  char *doc = NULL, *man_text = NULL;
  char path[PATH_MAX];
  size_t len = 0;
  json_t *list = NULL, *man = NULL;
  int rc;
  if (d == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  d->root = root;
  d->max_bytes = opts->unpack.max_bytes ? opts->unpack.max_bytes : 8ull << 30;
  rc = mu_store_init(root, err);
  if (rc == 0) rc = read_archive(d, tar, err);
  if (rc != 0) goto done;
  da_file *mf = lookup(d, "manifest.json");
  if (mf == NULL) {
    rc = mu_err_set(err, MU_EINVAL, "docker archive %s: no manifest.json (not a `docker save` tar)", tar);
    goto done;
  }
  rc = mu_store_read_blob(root, mf->digest, &doc, &len, err);
  if (rc != 0) goto done;
  json_error_t je;
  list = json_loadb(doc, len, 0, &je);
  if (list == NULL) {
    rc = mu_err_set(err, MU_EINVAL, "docker archive: manifest.json: %s", je.text);
    goto done;
  }
  json_t *entry = pick(list, ref, err);
  if (entry == NULL) {
    rc = err->code;
    goto done;
  }
  json_t *layers = json_object_get(entry, "Layers");
  da_file *cf = lookup(d, json_string_value(json_object_get(entry, "Config")));
  if (cf == NULL || !json_is_array(layers) || json_array_size(layers) > MU_MANIFEST_MAX_LAYERS) {
    rc = mu_err_set(err, MU_EINVAL,
                    "docker archive: the image's Config is missing or its Layers are not a list of up to %d",
                    MU_MANIFEST_MAX_LAYERS);
    goto done;
  }
  cf->used = true;
  man =
      json_pack("{s:i, s:s, s:o, s:[]}", "schemaVersion", 2, "mediaType", "application/vnd.oci.image.manifest.v1+json",
                "config", descriptor("application/vnd.oci.image.config.v1+json", cf), "layers");
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) {
    da_file *lf = lookup(d, json_string_value(l));
    if (lf == NULL) {
      rc = mu_err_set(err, MU_EINVAL, "docker archive: layer \"%.200s\" is not in the archive",
                      json_string_value(l) ? json_string_value(l) : "(not a string)");
      goto done;
    }
    lf->used = true;
    json_array_append_new(json_object_get(man, "layers"), descriptor(layer_media_type(root, lf), lf));
  }
  man_text = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
  if (man_text == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto done;
  }
  len = strlen(man_text);
  unsigned char h[32];
  unsigned hl = 0;
  EVP_Digest(man_text, len, h, &hl, EVP_sha256(), NULL);
  mu_sha256_format(h, img->manifest_digest);
  mu_store_blob_path(root, img->manifest_digest, path, sizeof path);
  rc = mu_store_write_atomic(root, path, man_text, len, err);
  if (rc != 0) goto done;
  rc = mu_image_manifest_parse(man_text, len, &img->manifest, err);
  if (rc != 0) goto done;
  rc = mu_image_complete(root, opts, img, err); /* checks the layers against the config's diff_ids */
done:
  for (size_t j = 0; j < d->n; j++) {
    da_file *f = &d->files[j];
    if (f->link == NULL && f->created && !f->used && f->digest[0] != '\0') {
      /* a blob this import added that the image does not use (VERSION, json, manifest.json) */
      bool shared = false;
      for (size_t q = 0; q < d->n; q++) shared |= d->files[q].used && strcmp(d->files[q].digest, f->digest) == 0;
      if (!shared) {
        mu_store_blob_path(root, f->digest, path, sizeof path);
        unlink(path);
      }
    }
    free(f->name);
    free(f->link);
  }
  free(d);
  free(doc);
  free(man_text);
  json_decref(list);
  json_decref(man);
  if (rc != 0) mu_image_free(img);
  return rc;
}
