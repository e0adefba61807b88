/* Per-layer unpacked directories in the image store: each layer blob is unpacked once, on its
 * own, into <store>/layers/<blob hex>/ in overlayfs's form (unpack.h, mu_unpack_layer_dir), and
 * an image's rootfs/<manifest hex>/ then holds only MU_LAYERS_FILE naming its layers, bottom
 * first; the launcher stacks them as overlay lowerdirs. Images that share a layer share its
 * directory (a second image with the same base unpacks none of it); GC removes a layer's
 * directory with the last image that names it (gc.c).
 *
 * The copy fallback stays: where the store's filesystem cannot hold overlay whiteouts (char
 * 0/0 devices, trusted.* xattrs) or an image has too many layers for one overlay mount's
 * options, the image is unpacked into one merged tree in rootfs/<manifest hex>/ as before. */
#ifndef MU_CONTAINER_LAYERS_H
#define MU_CONTAINER_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"
#include "plugins/container/manifest.h"
#include "plugins/container/unpack.h"

#define MU_LAYERS_FILE ".muster-layers"

/* Unpacks what m's layers lack into the store's layer dirs (blobs[i]: layer i's blob file)
 * and writes MU_LAYERS_FILE into rootfs_tmp (the image's rootfs dir before its rename).
 * *ret_unpacked: the layers unpacked now. limits bound each layer and the image's total.
 * MU_ENOTSUP (nothing written to rootfs_tmp): use the merged copy instead; MU_EINVAL for a
 * refused layer (the message names the entry); MU_EIO. */
int mu_layers_unpack(const char *root, const mu_manifest *m, const char *const *blobs, const mu_unpack_limits *limits,
                     const char *rootfs_tmp, int *ret_unpacked, mu_err *err);

#endif
