/* The image store and pulls. Layout under the store root (the agent's spool, e.g.
 * /var/lib/muster/images):
 *   blobs/sha256/<hex>     manifests, configs and layers by digest: each stored once,
 *                          written as <hex>.partial and renamed once verified
 *   refs/<escaped ref>     "sha256:<hex>" of the platform manifest a tag last resolved to
 *   rootfs/<hex>/          the manifest's layers unpacked in order (made in tmp/, renamed)
 *   tmp/                   work in progress
 * Writers never leave a half-written file under a final name, so concurrent pulls of one image
 * (two tasks, two processes) at worst both download and one rename wins. */
#ifndef MU_IMAGE_H
#define MU_IMAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"
#include "plugins/container/registry.h"
#include "plugins/container/unpack.h"

typedef enum { MU_PULL_IF_NOT_PRESENT = 0, MU_PULL_ALWAYS, MU_PULL_NEVER } mu_pull_policy;

typedef struct mu_pull_opts {
  mu_registry_opts registry;
  mu_platform platform;
  mu_pull_policy policy;
  mu_unpack_limits unpack;
  int parallel;       /* layer downloads at once in this pull; 0 = 3 */
  int store_parallel; /* downloads at once across every pull of this store (the
                                 * agent), by flock slots; 0 = 6 */
  /* Blobs only (`muster image scan` reads layers as tar streams): the manifest, config and
   * layers fetched and checked against the manifest's digests, no rootfs unpacked (rootfs ""),
   * and no diff_id pass (nothing is extracted, so nothing reads the uncompressed bytes). */
  bool no_rootfs;
  /* Progress (may be NULL): a phase ("manifest", "layer 2/5", "unpack"), bytes so far. */
  void (*on_progress)(void *arg, const char *phase, uint64_t bytes_done, uint64_t bytes_total);
  void *arg;
  /* Admission (may be NULL): called once per pull when the manifest and the config are in the
   * store and before any layer is fetched, copied or unpacked (for a `docker save` tar, whose
   * layers come with it, before the unpack). Non-zero refuses the image: the pull fails with
   * that code and err, and nothing more is fetched. reg: the pull's registry client (for a
   * verifier that fetches signatures); NULL for a bundle's image and in the fast launcher's warm start. */
  int (*admit)(void *arg, mu_registry *reg, const char *manifest_digest, const mu_manifest *m,
               const mu_image_config *cfg, mu_err *err);
  void *admit_arg;
} mu_pull_opts;

typedef struct mu_image {
  char manifest_digest[72];
  mu_manifest manifest;
  mu_image_config config;
  char rootfs[PATH_MAX];
  uint64_t downloaded_bytes; /* this pull */
  int layers_downloaded;     /* this pull; 0 on a warm start */
  bool unpacked;             /* this pull unpacked the rootfs */
  bool admitted;             /* opts->admit ran and allowed it */
} mu_image;

/* Creates the store's directories. */
int mu_store_init(const char *root, mu_err *err);

/* Resolves ref (tag -> digest, index -> platform manifest), fetches what the store lacks and
 * unpacks the rootfs. ret->config must be freed with mu_image_free. */
int mu_image_pull(const char *root, const mu_imgref *ref, const mu_pull_opts *opts, mu_image *ret, mu_err *err);
void mu_image_free(mu_image *img);

/* The same from an OCI image layout directory (index.json + blobs/sha256/, e.g. from a bundle
 * or `skopeo copy ... oci:DIR:TAG`): the manifest named tag (annotation
 * org.opencontainers.image.ref.name; "" = the only one), an index resolved for the platform,
 * every blob copied into the store with its size and sha256 checked. */
int mu_image_from_layout(const char *root, const char *dir, const char *tag, const mu_pull_opts *opts, mu_image *img,
                         mu_err *err);

/* The same from a `docker save` tar (docker_archive.c): manifest.json's entry whose RepoTags
 * has ref ("" = the only one), its config and layers copied into the store as blobs (each
 * hashed as it is copied), a layer's digest checked against the config's diff_ids, and an
 * OCI manifest made for them (its digest names the image; the same archive gives the same
 * digest, so a second import starts warm). Entries with "..", absolute names or links out of
 * the archive are refused; the archive's bytes are bounded by opts->unpack.max_bytes. */
int mu_image_from_docker_archive(const char *root, const char *tar, const char *ref, const mu_pull_opts *opts,
                                 mu_image *img, mu_err *err);

/* Records that ref's tag resolved to digest (refs/, as a pull by tag does), for a pull that was
 * pinned to a digest found otherwise (a signature check). No-op without a tag. */
int mu_store_ref_set(const char *root, const mu_imgref *ref, const char *digest, mu_err *err);

/* Parses "always" / "if-not-present" / "never" ("" = if-not-present). */
int mu_pull_policy_parse(const char *s, mu_pull_policy *ret);

#endif
