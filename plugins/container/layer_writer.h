/* Reproducible image layers for `muster image build`: a tar (pax) compressed with gzip,
 * written into the image store's blobs.
 *
 * Reproducible means the same entries give the same bytes: every entry's mtime is the
 * build's epoch (SOURCE_DATE_EPOCH-like, 0 by default), no atime/ctime, no user or group
 * names, no xattrs, owners as the caller gives them (0:0 unless COPY --chown or the RUN's
 * user made the file), and a gzip header without a name or a time. Callers add entries in a
 * fixed order (directories walked with their names sorted by strcmp). */
#ifndef MU_LAYER_WRITER_H
#define MU_LAYER_WRITER_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/base/err.h"

typedef struct mu_layer_out {
  char digest[72];  /* "sha256:<hex>" of the gzip blob, now at <store>/blobs/sha256/<hex> */
  char diff_id[72]; /* "sha256:<hex>" of the uncompressed tar */
  int64_t size;     /* the blob's bytes */
  uint64_t entries;
} mu_layer_out;

typedef struct mu_layer_writer mu_layer_writer;

/* Starts a layer in <store>/tmp. max_bytes bounds the file bytes put in (0 = 4 GiB);
 * passing it is MU_ENOSPC naming the entry. Free with finish or abort. */
int mu_layer_writer_new(const char *store, int64_t epoch, uint64_t max_bytes, mu_layer_writer **ret, mu_err *err);

/* path: relative to the image root, no leading "/", already clean. */
int mu_layer_add_dir(mu_layer_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, mu_err *err);
/* size bytes read from fd (a short read is MU_EIO: the file changed under us). */
int mu_layer_add_file(mu_layer_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, int fd, int64_t size,
                      mu_err *err);
int mu_layer_add_symlink(mu_layer_writer *w, const char *path, const char *target, uid_t uid, gid_t gid, mu_err *err);
/* `.wh.NAME` for a deleted path; `.wh..wh..opq` in dir for a directory whose lower
 * contents are hidden (replaced). */
int mu_layer_add_whiteout(mu_layer_writer *w, const char *deleted_path, mu_err *err);
int mu_layer_add_opaque(mu_layer_writer *w, const char *dir, mu_err *err);

/* Adds the changes an overlayfs upper directory records (a RUN step's diff against the
 * rootfs below it): files, dirs and symlinks as they are, char 0/0 devices as whiteouts,
 * directories marked trusted.overlay.opaque as opaque. Mount points the launcher made
 * (top-level dev, proc, sys, tmp, run left empty) are not changes. Other device nodes are
 * refused; sockets are skipped. */
int mu_layer_add_upper(mu_layer_writer *w, const char *upper, mu_err *err);

/* Closes the tar, computes digest and diff_id, renames the blob into the store. Frees w. */
int mu_layer_writer_finish(mu_layer_writer *w, mu_layer_out *ret, mu_err *err);
void mu_layer_writer_abort(mu_layer_writer *w);

#endif
