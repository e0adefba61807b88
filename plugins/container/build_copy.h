/* COPY/ADD sources of `muster image build`: resolved inside the build context, hashed for the
 * layer cache, and written as layer entries. Internal to plugins/container's builder.
 *
 * A source is a path relative to the context; its last component may be a glob (* ? [..]).
 * It is opened with openat2(RESOLVE_BENEATH): a symlink on the way that leads out of the
 * context is refused (MU_EPERM naming it). Inside a copied directory, symlinks are copied as
 * symlinks. Destination: with several sources or a dest ending in "/", dest is a directory
 * and a file lands as dest/NAME; otherwise a single file is written at dest. A directory's
 * contents land in dest. Modes are kept; owners are 0:0 unless --chown; mtimes are the
 * build's epoch. Devices, sockets and fifos in the context are refused. */
#ifndef MU_BUILD_COPY_H
#define MU_BUILD_COPY_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/base/err.h"
#include "plugins/container/layer_writer.h"

typedef struct mu_copy_spec {
  int ctx_fd;              /* the context directory */
  const char *const *srcs; /* cleaned, relative ("." = the whole context) */
  size_t n_srcs;
  const char *dest; /* absolute in the image (WORKDIR already applied) */
  bool chown;
  uid_t uid;
  gid_t gid;
  uint64_t max_bytes; /* file bytes over all sources; 0 = 1 GiB */
} mu_copy_spec;

/* Walks the sources in a fixed order, feeding md (may be NULL) with every entry's name,
 * type, mode, owner and content, and adding them to w (may be NULL). */
int mu_copy_walk(const mu_copy_spec *c, EVP_MD_CTX *md, mu_layer_writer *w, mu_err *err);

#endif
