/* The fast launcher's stand-ins (BUILD :store_lite, helper.c MU_CONTAINER_LITE): the warm start
 * reads the store only, so `muster-container` links neither libcurl nor libarchive (their ~45
 * shared libraries, ICU among them, cost ~13 ms of every start). Whatever would reach the
 * registry or unpack a layer fails here with MU_ENOTSUP, and the helper hands the task to
 * muster-container-full, which does it all. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "plugins/container/image.h"
#include "plugins/container/layers.h"

#define FULL "needs muster-container-full"

int mu_registry_new(const mu_imgref *ref, const mu_registry_opts *opts, mu_registry **ret, mu_err *err) {
  (void)ref, (void)opts;
  *ret = NULL;
  return mu_err_set(err, MU_ENOTSUP, "registry access " FULL);
}
void mu_registry_free(mu_registry *r) { (void)r; }
void mu_registry_global_init(void) {}
mu_registry *mu_registry_clone(const mu_registry *r) {
  (void)r;
  return NULL;
}
void mu_registry_set_progress(mu_registry *r, void (*on_bytes)(void *, uint64_t), void *arg) {
  (void)r, (void)on_bytes, (void)arg;
}
int mu_registry_get_manifest(mu_registry *r, const char *reference, char **ret_body, size_t *ret_len, char ctype[128],
                             char digest[72], mu_err *err) {
  (void)r, (void)reference, (void)ctype, (void)digest;
  *ret_body = NULL;
  *ret_len = 0;
  return mu_err_set(err, MU_ENOTSUP, "registry access " FULL);
}
int mu_registry_get_blob(mu_registry *r, const mu_descriptor *d, const char *dest, mu_err *err) {
  (void)r, (void)d, (void)dest;
  return mu_err_set(err, MU_ENOTSUP, "registry access " FULL);
}
int64_t mu_registry_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
int mu_unpack_layers(const char *dir, const char *const *layers, size_t n, const mu_unpack_limits *limits,
                     mu_err *err) {
  (void)dir, (void)layers, (void)n, (void)limits;
  return mu_err_set(err, MU_ENOTSUP, "unpacking " FULL);
}
int mu_layers_unpack(const char *root, const mu_manifest *m, const char *const *blobs, const mu_unpack_limits *limits,
                     const char *rootfs_tmp, int *ret_unpacked, mu_err *err) {
  (void)root, (void)m, (void)blobs, (void)limits, (void)rootfs_tmp, (void)err;
  *ret_unpacked = 0;
  return MU_ENOTSUP; /* then mu_unpack_layers above hands the pull to the full helper */
}
int mu_layer_diff_id(const char *path, char *ret, mu_err *err) {
  (void)path;
  ret[0] = '\0';
  return mu_err_set(err, MU_ENOTSUP, "layer digests " FULL);
}
int mu_image_from_docker_archive(const char *root, const char *tar, const char *ref, const mu_pull_opts *opts,
                                 mu_image *img, mu_err *err) {
  (void)root, (void)tar, (void)ref, (void)opts, (void)img;
  return mu_err_set(err, MU_ENOTSUP, "docker archives " FULL);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int mu_rm_rf(const char *path) { return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }
