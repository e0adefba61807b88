/* OCI layout tar export (see oci_archive.h). */
#define _GNU_SOURCE
#include "plugins/container/oci_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/container/image_int.h"

static int add_mem(struct archive *a, const char *name, const void *data, size_t len, int64_t epoch, mu_err *err) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)len);
  archive_entry_set_mtime(e, (time_t)epoch, 0);
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK || (len && archive_write_data(a, data, len) != (la_ssize_t)len))
    return mu_err_set(err, MU_EIO, "OCI archive: %s: %s", name, archive_error_string(a));
  return 0;
}

static int add_dir(struct archive *a, const char *name, int64_t epoch, mu_err *err) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFDIR);
  archive_entry_set_perm(e, 0755);
  archive_entry_set_mtime(e, (time_t)epoch, 0);
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  return r == ARCHIVE_OK ? 0 : mu_err_set(err, MU_EIO, "OCI archive: %s: %s", name, archive_error_string(a));
}

static int add_blob(struct archive *a, const char *root, const char *digest, int64_t epoch, mu_err *err) {
  char path[PATH_MAX], name[100];
  mu_store_blob_path(root, digest, path, sizeof path);
  snprintf(name, sizeof name, "blobs/sha256/%s", digest + 7);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0) close(fd);
    return mu_err_set(err, MU_ENOENT, "OCI archive: blob %s is not in the store", digest);
  }
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, st.st_size);
  archive_entry_set_mtime(e, (time_t)epoch, 0);
  int rc = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1;
  archive_entry_free(e);
  char buf[65536];
  for (ssize_t n; rc == 0 && (n = read(fd, buf, sizeof buf)) > 0;)
    if (archive_write_data(a, buf, (size_t)n) != n) rc = -1;
  close(fd);
  return rc == 0 ? 0 : mu_err_set(err, MU_EIO, "OCI archive: %s: %s", name, archive_error_string(a));
}

static int by_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int mu_oci_archive_write(const char *root, const char *manifest_digest, const char *ref_name, int64_t epoch,
                         const char *out_path, mu_err *err) {
  char *man = NULL;
  size_t len = 0;
  int rc = mu_store_read_blob(root, manifest_digest, &man, &len, err);
  if (rc != 0) return rc;
  mu_manifest m;
  rc = mu_image_manifest_parse(man, len, &m, err);
  if (rc != 0) {
    free(man);
    return rc;
  }
  const char *digests[MU_MANIFEST_MAX_LAYERS + 2];
  size_t nd = 0;
  digests[nd++] = manifest_digest;
  digests[nd++] = m.config.digest;
  for (size_t i = 0; i < m.n_layers; i++) {
    bool dup = false;
    for (size_t j = 0; j < nd; j++) dup |= strcmp(digests[j], m.layers[i].digest) == 0;
    if (!dup) digests[nd++] = m.layers[i].digest;
  }
  qsort(digests, nd, sizeof *digests, by_str);
  json_t *index =
      json_pack("{s:i, s:s, s:[{s:s, s:s, s:I}]}", "schemaVersion", 2, "mediaType", MU_MT_OCI_INDEX, "manifests",
                "mediaType", MU_MT_OCI_MANIFEST, "digest", manifest_digest, "size", (json_int_t)len);
  if (ref_name && *ref_name)
    json_object_set_new(json_array_get(json_object_get(index, "manifests"), 0), "annotations",
                        json_pack("{s:s}", "org.opencontainers.image.ref.name", ref_name));
  char *idx = json_dumps(index, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(index);
  free(man);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.partial", out_path);
  struct archive *a = archive_write_new();
  if (idx == NULL || a == NULL || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "OCI archive %s: %s", tmp, a ? archive_error_string(a) : "out of memory");
    goto done;
  }
  const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
  rc = add_dir(a, "blobs", epoch, err);
  if (rc == 0) rc = add_dir(a, "blobs/sha256", epoch, err);
  for (size_t i = 0; rc == 0 && i < nd; i++) rc = add_blob(a, root, digests[i], epoch, err);
  if (rc == 0) rc = add_mem(a, "index.json", idx, strlen(idx), epoch, err);
  if (rc == 0) rc = add_mem(a, "oci-layout", layout, strlen(layout), epoch, err);
  if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
    rc = mu_err_set(err, MU_EIO, "OCI archive %s: %s", tmp, archive_error_string(a));
  if (rc == 0 && rename(tmp, out_path) != 0)
    rc = mu_err_set(err, MU_EIO, "OCI archive: rename to %s: %s", out_path, strerror(errno));
done:
  if (a) archive_write_free(a);
  if (rc != 0) unlink(tmp);
  free(idx);
  return rc;
}
