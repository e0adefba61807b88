/* Image sources for a scan (see source.h): a reference, a layout or an archive, into the
 * store, and the layer blob paths out. */
#define _GNU_SOURCE
#include "lib/imagescan/source.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/imagescan/dirs.h"
#include "plugins/container/imageref.h"
#include "plugins/container/registry.h"
#include "plugins/container/unpack.h"

/* "user:password" from a file only its owner can read. */
static int read_auth(const char *path, char *user, size_t ucap, char *pass, size_t pcap, mu_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0) close(fd);
    return mu_err_set(err, MU_EINVAL, "credentials file %s: %s", path, strerror(errno));
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    close(fd);
    return mu_err_set(err, MU_EINVAL, "credentials file %s must be a regular file readable by its owner only (0600)",
                      path);
  }
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return mu_err_set(err, MU_EINVAL, "credentials file %s is empty", path);
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  char *colon = strchr(buf, ':');
  if (colon == NULL || colon == buf)
    return mu_err_set(err, MU_EINVAL, "credentials file %s: expected one line user:password", path);
  *colon = '\0';
  snprintf(user, ucap, "%s", buf);
  snprintf(pass, pcap, "%s", colon + 1);
  explicit_bzero(buf, sizeof buf);
  return 0;
}

/* path opened as a (plain or gzip) tar; NULL with err set when it is not one. */
static struct archive *open_tar(const char *path, mu_err *err) {
  struct archive *a = archive_read_new();
  if (a == NULL) {
    mu_err_set(err, MU_ENOMEM, "out of memory");
    return NULL;
  }
  archive_read_support_filter_none(a);
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
    mu_err_set(err, MU_EINVAL, "%s: not a tar archive: %s", path, archive_error_string(a));
    archive_read_free(a);
    return NULL;
  }
  return a;
}

/* An entry's name without a leading "./"; NULL when it has none. */
static const char *entry_name(struct archive_entry *e) {
  const char *n = archive_entry_pathname(e);
  if (n && strncmp(n, "./", 2) == 0) n += 2;
  return n;
}

/* What a tar holds at its top: "manifest.json" (docker save) or "index.json" (OCI). */
static int tar_kind(const char *path, bool *ret_docker, mu_err *err) {
  struct archive *a = open_tar(path, err);
  if (a == NULL) return err->code;
  int rc = 0, r;
  bool index = false, docker = false;
  struct archive_entry *e;
  while (!docker && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *n = entry_name(e);
    docker = n && strcmp(n, "manifest.json") == 0;
    index |= n && strcmp(n, "index.json") == 0;
  }
  if (docker || index) *ret_docker = docker;
  else if (r != ARCHIVE_EOF)
    rc = mu_err_set(err, MU_EINVAL, "%s: not a tar archive: %s", path, archive_error_string(a));
  else
    rc = mu_err_set(err, MU_EINVAL, "%s: neither a `docker save` tar (manifest.json) nor an OCI archive (index.json)",
                    path);
  archive_read_free(a);
  return rc;
}

static bool blob_name(const char *n) {
  if (strncmp(n, "blobs/sha256/", 13) != 0 || strlen(n + 13) != 64) return false;
  for (const char *p = n + 13; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

/* The layout files of an OCI archive into dir (which exists). */
static int extract_layout(const char *tar, const char *dir, uint64_t max, mu_err *err) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/blobs/sha256", dir);
  if (mu_mkdir_p(p, 0700) != 0) return mu_err_set(err, MU_EIO, "%s: %s", p, strerror(errno));
  struct archive *a = open_tar(tar, err);
  if (a == NULL) return err->code;
  int rc = 0, r;
  uint64_t total = 0;
  struct archive_entry *e;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *n = entry_name(e);
    if (n == NULL || archive_entry_filetype(e) != AE_IFREG) continue;
    if (strcmp(n, "index.json") != 0 && strcmp(n, "oci-layout") != 0 && !blob_name(n)) continue;
    snprintf(p, sizeof p, "%s/%s", dir, n);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      rc = mu_err_set(err, MU_EIO, "%s: %s", p, strerror(errno));
      goto done;
    }
    char buf[65536];
    la_ssize_t got;
    while ((got = archive_read_data(a, buf, sizeof buf)) > 0) {
      total += (uint64_t)got;
      if (total > max || write(fd, buf, (size_t)got) != got) {
        close(fd);
        rc = total > max ? mu_err_set(err, MU_ENOSPC, "%s: more than %llu bytes (the archive bound)", tar,
                                      (unsigned long long)max)
                         : mu_err_set(err, MU_EIO, "%s: %s", p, strerror(errno));
        goto done;
      }
    }
    close(fd);
    if (got < 0) {
      rc = mu_err_set(err, MU_EIO, "%s: %s", tar, archive_error_string(a));
      goto done;
    }
  }
  if (r != ARCHIVE_EOF) rc = mu_err_set(err, MU_EIO, "%s: %s", tar, archive_error_string(a));
done:
  archive_read_free(a);
  return rc;
}

static int from_registry(const char *text, const mu_scan_source_opts *o, mu_pull_opts *po, mu_image *img, mu_err *err) {
  mu_imgref ref;
  int rc = mu_imgref_parse(text, o->default_registry, &ref, err);
  if (rc != 0) return rc;
  if (o->insecure && !mu_registry_is_loopback(ref.registry))
    return mu_err_set(err, MU_EINVAL, "--insecure is for loopback registries only, not %s", ref.registry);
  char user[512] = "", pass[512] = "";
  if (o->auth_file && *o->auth_file) {
    rc = read_auth(o->auth_file, user, sizeof user, pass, sizeof pass, err);
    if (rc != 0) return rc;
    po->registry.username = user;
    po->registry.password = pass;
  }
  po->registry.ca_file = o->ca_file;
  po->registry.insecure = o->insecure;
  po->registry.deadline_ms = mu_registry_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 300000);
  po->policy = ref.digest[0] ? MU_PULL_IF_NOT_PRESENT : o->policy;
  rc = mu_image_pull(o->store, &ref, po, img, err);
  explicit_bzero(pass, sizeof pass);
  return rc;
}

/* "PREFIX:PATH[:TAG]" -> path and tag (tag after the last ':' when path exists without it). */
static void split_tag(const char *s, char *path, size_t pcap, char *tag, size_t tcap) {
  snprintf(path, pcap, "%s", s);
  tag[0] = '\0';
  struct stat st;
  if (stat(path, &st) == 0) return;
  char *colon = strrchr(path, ':');
  if (colon == NULL) return;
  *colon = '\0';
  snprintf(tag, tcap, "%s", colon + 1);
}

int mu_scan_source_open(const char *text, const mu_scan_source_opts *o, mu_scan_image *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  mu_pull_opts po = {.no_rootfs = true, .unpack = {.max_bytes = o->max_bytes}};
  if (o->platform && *o->platform) {
    int rc = mu_platform_parse(o->platform, &po.platform, err);
    if (rc != 0) return rc;
  } else {
    mu_platform_host(&po.platform);
  }
  mu_image img;
  memset(&img, 0, sizeof img);
  char path[PATH_MAX], tag[256], scratch[PATH_MAX] = "";
  struct stat st;
  int rc;
  enum { REGISTRY, LAYOUT, DOCKER, OCI_TAR, SOME_TAR } kind = REGISTRY;
  if (strncmp(text, "oci:", 4) == 0) {
    kind = LAYOUT;
    split_tag(text + 4, path, sizeof path, tag, sizeof tag);
  } else if (strncmp(text, "docker-archive:", 15) == 0) {
    kind = DOCKER;
    snprintf(path, sizeof path, "%s", text + 15);
    tag[0] = '\0';
    char *colon = strchr(path, ':'); /* REPO:TAG after the file: the first ':' ends the file name */
    if (colon != NULL && stat(path, &st) != 0) {
      *colon = '\0';
      snprintf(tag, sizeof tag, "%s", colon + 1);
    }
  } else if (strncmp(text, "oci-archive:", 12) == 0) {
    kind = OCI_TAR;
    split_tag(text + 12, path, sizeof path, tag, sizeof tag);
  } else if (stat(text, &st) == 0) {
    snprintf(path, sizeof path, "%s", text);
    tag[0] = '\0';
    kind = S_ISDIR(st.st_mode) ? LAYOUT : SOME_TAR;
  }
  if (kind == SOME_TAR) {
    bool docker = false;
    rc = tar_kind(path, &docker, err);
    if (rc != 0) return rc;
    kind = docker ? DOCKER : OCI_TAR;
  }
  if (kind != REGISTRY) {
    rc = mu_store_init(o->store, err);
    if (rc != 0) return rc;
  }
  switch (kind) {
    case REGISTRY: rc = from_registry(text, o, &po, &img, err); break;
    case LAYOUT: rc = mu_image_from_layout(o->store, path, tag, &po, &img, err); break;
    case DOCKER: rc = mu_image_from_docker_archive(o->store, path, tag, &po, &img, err); break;
    case OCI_TAR:
    case SOME_TAR:
      snprintf(scratch, sizeof scratch, "%s/tmp/ociarchive.XXXXXX", o->store);
      if (mkdtemp(scratch) == NULL) {
        rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", scratch, strerror(errno));
        scratch[0] = '\0';
        break;
      }
      rc = extract_layout(path, scratch, o->max_bytes ? o->max_bytes : (8ull << 30), err);
      if (rc == 0) rc = mu_image_from_layout(o->store, scratch, tag, &po, &img, err);
      break;
  }
  if (scratch[0]) mu_rm_rf(scratch);
  if (rc != 0) return rc;
  snprintf(ret->digest, sizeof ret->digest, "%s", img.manifest_digest);
  ret->user = strdup(img.config.user ? img.config.user : "");
  const char *digests[2] = {img.manifest_digest, img.manifest.config.digest};
  for (int i = 0; i < 2; i++) {
    char bp[PATH_MAX];
    snprintf(bp, sizeof bp, "%s/blobs/sha256/%s", o->store, digests[i] + 7);
    ret->blobs[i] = strdup(bp);
    if (ret->blobs[i] == NULL) {
      mu_image_free(&img);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
  }
  ret->layers = calloc(img.manifest.n_layers + 1, sizeof *ret->layers);
  if (ret->user == NULL || ret->layers == NULL) {
    mu_image_free(&img);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < img.manifest.n_layers; i++) {
    char bp[PATH_MAX];
    snprintf(bp, sizeof bp, "%s/blobs/sha256/%s", o->store, img.manifest.layers[i].digest + 7);
    ret->layers[i] = strdup(bp);
    if (ret->layers[i] == NULL) {
      mu_image_free(&img);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    ret->n_layers++;
  }
  mu_image_free(&img);
  return 0;
}

void mu_scan_image_free(mu_scan_image *img) {
  for (size_t i = 0; i < img->n_layers; i++) free(img->layers[i]);
  free(img->layers);
  free(img->user);
  free(img->blobs[0]);
  free(img->blobs[1]);
  memset(img, 0, sizeof *img);
}
