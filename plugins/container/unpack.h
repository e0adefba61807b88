/* Layer unpacking into a rootfs directory, for the image store.
 *
 * Runs in a forked child that chroot()s into the target first, so nothing a layer says can
 * name a host path; inside, every layer is read twice: its whiteouts first (`.wh.NAME`
 * removes NAME from lower layers, `.wh..wh..opq` empties its directory, wherever they sit in
 * the tar), resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS) and removed with
 * unlinkat; then its entries, through libarchive's write-disk with the SECURE flags (no
 * "..", no absolute paths, no writing through symlinks) and without xattrs or ACLs.
 * Refused, failing the unpack with a message naming the entry: absolute paths, "..", device
 * nodes, a bare ".wh.", a path twice in one layer, and more than the size or entry caps
 * (a bomb layer). Compression: plain tar, gzip or zstd, detected from the bytes. */
#ifndef MU_UNPACK_H
#define MU_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_unpack_limits {
  uint64_t max_bytes;   /* total file bytes over all layers; 0 = 8 GiB */
  uint64_t max_entries; /* total entries over all layers; 0 = 1,000,000 */
} mu_unpack_limits;

/* Unpacks layers[0..n) in order into dir (an existing, empty directory). Needs root (chroot,
 * file owners). On failure dir is left partly filled: the caller removes it. */
int mu_unpack_layers(const char *dir, const char *const *layers, size_t n, const mu_unpack_limits *limits, mu_err *err);

/* Unpacks one layer on its own into dir (an existing, empty directory), in overlayfs's form,
 * to be stacked with the image's other layers as overlay lowerdirs: `.wh.NAME` becomes the
 * char 0/0 device NAME (an overlay whiteout), `.wh..wh..opq` the trusted.overlay.opaque="y"
 * xattr of its directory; everything else as mu_unpack_layers (same refusals, caps for this
 * layer). *ret_bytes: its file bytes. A filesystem without device nodes or trusted xattrs
 * fails (the caller falls back to mu_unpack_layers). */
int mu_unpack_layer_dir(const char *dir, const char *layer, const mu_unpack_limits *limits, uint64_t *ret_bytes,
                        mu_err *err);

/* The diff_id of the layer blob at path: "sha256:<hex>" of its uncompressed tar (plain, gzip
 * or zstd, detected from the bytes), into ret (72 bytes). MU_EIO naming the file. */
int mu_layer_diff_id(const char *path, char *ret, mu_err *err);

/* Removes path and everything under it without following symlinks. */
int mu_rm_rf(const char *path);

#endif
