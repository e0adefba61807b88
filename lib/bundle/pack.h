/* Packing a directory into a bundle: a zstd (or gzip) compressed tar whose first entry is
 * MANIFEST.json. Packing is reproducible — the same directory contents, name, version and
 * created_at give the same bytes, hence the same digest — because entries are sorted and
 * every header field that could vary (owner, mtime, xattrs, ACLs) is fixed or left out. */
#ifndef MU_BUNDLE_PACK_H
#define MU_BUNDLE_PACK_H

#include <stdint.h>

#include "lib/base/err.h"
#include "lib/bundle/bundle.h"

typedef struct mu_pack_opts {
  const char *name;               /* bundle name (mu_bundle_name_check) */
  const char *version;            /* mu_bundle_version_check */
  const char *entry;              /* entry point, a regular file in the dir; NULL for none */
  int64_t created_at;             /* seconds since the epoch, >= 0; also every mtime */
  mu_bundle_compress compress;    /* AUTO: zstd, else gzip */
  int level;                      /* 0: zstd 3 / gzip 6; zstd 1..19, gzip 1..9 */
  const mu_unpack_limits *limits; /* NULL: defaults; the bundle must fit them */
} mu_pack_opts;

/* Packs dir into out_path (written to a temporary file beside it and renamed into place, so
 * a failed pack leaves nothing). Regular files, directories and symlinks that stay inside dir
 * (mu_bundle_link_check) are packed; sockets, FIFOs, device nodes, setuid/setgid/sticky bits
 * and a top-level MANIFEST.json are refused with MU_EINVAL naming the path; going over a
 * limit is MU_ENOSPC. On success writes "sha256:<hex>" of the archive into ret_digest. */
int mu_bundle_pack(const char *dir, const mu_pack_opts *opts, const char *out_path,
                   char ret_digest[MU_BUNDLE_DIGEST_SIZE], mu_err *err);

#endif
