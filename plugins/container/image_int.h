/* The image store's helpers shared by image.c and docker_archive.c. Not part of the API. */
#ifndef MU_IMAGE_INT_H
#define MU_IMAGE_INT_H

#include <stddef.h>

#include "plugins/container/image.h"

void mu_store_blob_path(const char *root, const char *digest, char *buf, size_t cap);
/* A small blob (manifest, config) read and its digest checked; MU_ENOENT when missing or damaged. */
int mu_store_read_blob(const char *root, const char *digest, char **ret, size_t *ret_len, mu_err *err);
/* data written to a temp file in the store and renamed to final. */
int mu_store_write_atomic(const char *root, const char *final, const void *data, size_t len, mu_err *err);
/* <root>/refs/<registry%repo:tag>: the file naming the manifest digest a tag resolves to. */
void mu_store_ref_path(const char *root, const mu_imgref *ref, char *buf, size_t cap);
/* From img->manifest (parsed) and img->manifest_digest on: config, diff_ids, rootfs. */
int mu_image_complete(const char *root, const mu_pull_opts *opts, mu_image *img, mu_err *err);

#endif
