/* Registry v2 writes and the small reads signatures need, on mu_registry_request (registry.h):
 * blob presence (HEAD), blob upload (POST then a monolithic PUT; nothing sent when the blob is
 * there; a cross-repository mount tried first when the caller names a source repository),
 * manifest PUT, a small blob read into memory (size bound, sha256 checked) and the OCI
 * referrers API. Every failure names the registry, the object and the HTTP status; a 401/403
 * says whether credentials were configured (a push with bad credentials reads
 * "... HTTP 401 (credentials refused)"). */
#ifndef MU_REGISTRY_WRITE_H
#define MU_REGISTRY_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "plugins/container/registry.h"

typedef enum {
  MU_BLOB_UPLOADED = 1, /* the bytes were sent */
  MU_BLOB_EXISTED,      /* HEAD found it: nothing sent */
  MU_BLOB_MOUNTED,      /* the registry linked it from the source repository */
} mu_blob_put_how;

/* HEAD blobs/<digest>: *ret_exists. Errors only for transport or statuses other than 200/404. */
int mu_registry_blob_exists(mu_registry *r, const char *digest, bool *ret_exists, mu_err *err);

/* Stores data (len bytes) as blob digest (its "sha256:<hex>", checked here) in the client's
 * repository. mount_from (NULL or "" = none) is another repository of the same registry that
 * holds the blob: a mount is asked first, an upload follows if the registry declines.
 * *ret_how (may be NULL) says what happened. */
int mu_registry_put_blob(mu_registry *r, const void *data, size_t len, const char *mount_from, mu_blob_put_how *ret_how,
                         mu_err *err);

/* PUT manifests/<reference> (a tag or the body's digest) with Content-Type media_type. */
int mu_registry_put_manifest(mu_registry *r, const char *reference, const char *media_type, const char *body,
                             size_t len, mu_err *err);

/* GET blobs/<digest> into memory: at most max bytes, sha256 checked. *ret (NUL-terminated,
 * caller frees) holds *ret_len bytes. MU_ENOSPC over max, MU_EIO on a digest mismatch. */
int mu_registry_get_blob_mem(mu_registry *r, const char *digest, size_t max, char **ret, size_t *ret_len, mu_err *err);

/* GET referrers/<digest>?artifactType=<artifact_type> (OCI distribution-spec 1.1): an image
 * index, in *ret (caller frees). MU_ENOTSUP when the registry has no referrers API (404, as
 * docker-registry 2.8); other statuses are errors. */
int mu_registry_get_referrers(mu_registry *r, const char *digest, const char *artifact_type, char **ret,
                              size_t *ret_len, mu_err *err);

/* "sha256:<hex>" of len bytes into out. */
void mu_registry_sha256(const void *data, size_t len, char out[72]);

#endif
