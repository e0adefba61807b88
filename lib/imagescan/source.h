/* Where the image a scan reads comes from, resolved into the image store of
 * plugins/container (blobs only, nothing unpacked: mu_pull_opts.no_rootfs):
 *   - a registry reference ("registry/repo:tag", "@sha256:..."), pulled with the container
 *     plugin's registry client: https with the system CAs or ca_file, plain http only for a
 *     loopback registry with insecure, Basic/Bearer credentials from auth_file;
 *   - an OCI image layout directory ("DIR", or "oci:DIR[:TAG]");
 *   - a `docker save` tar ("FILE", or "docker-archive:FILE[:REPO:TAG]");
 *   - an OCI archive, the layout in a tar ("FILE", or "oci-archive:FILE[:TAG]"): its
 *     index.json, oci-layout and blobs/sha256/<hex> files (nothing else) are copied to a
 *     scratch directory of the store, bounded by max_bytes, then read as a layout. */
#ifndef MU_IMAGESCAN_SOURCE_H
#define MU_IMAGESCAN_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "plugins/container/image.h"

typedef struct mu_scan_source_opts {
  const char *store;            /* the image store directory (created if missing) */
  const char *ca_file;          /* NULL: the system's CAs */
  bool insecure;                /* plain http, loopback registries only */
  const char *auth_file;        /* one line "user:password", mode 0600 or 0400; NULL: anonymous */
  const char *default_registry; /* for short names; NULL: refused */
  const char *platform;         /* "os/arch[/variant]"; NULL: this host's */
  mu_pull_policy policy;        /* for tags: MU_PULL_ALWAYS asks the registry what the tag is now */
  uint64_t max_bytes;           /* an archive's bytes; 0 = 8 GiB */
  int64_t timeout_ms;           /* a pull's; 0 = 300000 */
} mu_scan_source_opts;

typedef struct mu_scan_image {
  char digest[72]; /* the manifest's */
  char *user;      /* the config's User ("" when unset) */
  char **layers;   /* blob paths in the store, bottom first */
  size_t n_layers;
  char *blobs[2]; /* the manifest's and the config's blob paths */
} mu_scan_image;

/* Resolves text into ret (mu_scan_image_free, also after a failure). MU_EINVAL for a bad
 * reference or option (insecure for a non-loopback registry), MU_ENOENT when the thing
 * named is not there, MU_EPERM for refused credentials, MU_EIO otherwise. */
int mu_scan_source_open(const char *text, const mu_scan_source_opts *o, mu_scan_image *ret, mu_err *err);
void mu_scan_image_free(mu_scan_image *img);

#endif
