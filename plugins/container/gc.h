/* Image store listing and garbage collection (see image.h for the layout).
 *
 * An image in use is one whose rootfs a running container holds a shared flock(2) on
 * (mu_store_use); GC takes the lock exclusively without waiting and skips what it cannot get.
 * Each use also touches the rootfs dir's mtime, which is the image's last use for GC.
 * GC removes images (rootfs, manifest, the refs that name it, then every blob no remaining
 * manifest names) unused for longer than max_age, then the least recently used ones until
 * the store is at most max_bytes. Partial files in tmp/ older than an hour go too, and so do
 * the image builder's cache entries unused for max_age (with their layer blobs when no image
 * left names them) and those whose blob is gone. */
#ifndef MU_GC_H
#define MU_GC_H

#include <stdint.h>
#include <stdio.h>

#include "lib/base/err.h"

typedef struct mu_gc_opts {
  uint64_t max_bytes;      /* 0 = no size bound */
  int64_t max_age_s;       /* 0 = no age bound */
  const char *keep_digest; /* "sha256:..." never removed (the image a task is about to run) */
} mu_gc_opts;

typedef struct mu_gc_result {
  int images_removed, images_kept, images_in_use;
  uint64_t bytes_before, bytes_after;
} mu_gc_result;

/* Marks the image of rootfs as in use until *ret_fd is closed (also refreshes its mtime). */
int mu_store_use(const char *rootfs, int *ret_fd, mu_err *err);

/* Prints one line per image: digest, last use (unix seconds), bytes (blobs + rootfs), the
 * refs that name it, "in-use" when a container holds it. */
int mu_store_list(const char *root, FILE *out, mu_err *err);

int mu_store_gc(const char *root, const mu_gc_opts *opts, mu_gc_result *ret, mu_err *err);

#endif
