/* Image signatures in a registry (docs/images.md "Signing and verifying"): signing stores an
 * envelope (imagesig.h) as an OCI artifact whose subject is the image's manifest (or index);
 * checking finds those artifacts and says whether one holds. Used by `muster image sign|verify`
 * (cli/cmd_image_sign.c) and by muster-container before a pull when the agent requires
 * signed images; the admission policy calls mu_imagesig_check too.
 *
 * Where signatures live: through the referrers API (GET /v2/<name>/referrers/<digest>?
 * artifactType=...), one artifact manifest per signature, pushed by digest; a registry without
 * that API (404, Debian 12's docker-registry 2.8) gets one artifact under the tag
 * "sha256-<hex>.sig" whose layers are every signature (one per key: signing again with a key
 * replaces its layer; the oldest go past max_signatures). */
#ifndef MU_IMAGESIG_REGISTRY_H
#define MU_IMAGESIG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/bundle/keys.h"
#include "plugins/container/imagesig.h"
#include "plugins/container/registry.h"
#include "plugins/container/registry_write.h"

#define MU_IMAGESIG_DEFAULT_MAX 16

/* The manifest (or index) ref names now: GET by tag or digest, its bytes hashed (registry.h).
 * ret->media_type from the Content-Type, else the body's mediaType. */
int mu_imagesig_resolve(mu_registry *r, const mu_imgref *ref, mu_descriptor *ret, mu_err *err);

/* "registry/repository": what a payload names. */
void mu_imagesig_name(const mu_imgref *ref, char out[MU_IMAGESIG_NAME_MAX]);

typedef struct mu_imagesig_check_opts {
  const mu_trust_set *trust; /* the keys whose signatures count */
  int64_t now;               /* unix seconds; 0 = time(NULL) */
  size_t max_signatures;     /* envelopes fetched and checked at most; 0 = MU_IMAGESIG_DEFAULT_MAX */
} mu_imagesig_check_opts;

typedef struct mu_imagesig_verdict {
  mu_imagesig_status status;
  mu_descriptor subject;           /* the digest checked (pin the pull to it) */
  char name[MU_IMAGESIG_NAME_MAX]; /* registry/repository */
  mu_imagesig_info best;           /* the valid signature, or the most specific failure */
  char found_via[128];             /* "referrers API" or "tag sha256-<hex>.sig", "" = none */
  size_t n_checked;                /* envelopes checked */
  size_t n_skipped;                /* signatures past max_signatures, not checked */
  char msg[MU_ERR_MSG_MAX];        /* one line for a task's message or the CLI */
} mu_imagesig_verdict;

/* Resolves ref and checks its signatures. Never fetches a layer of the image. Returns
 * ret->status; MU_IMAGESIG_ERROR when the registry could not be asked (ret->msg says why). */
mu_imagesig_status mu_imagesig_check(mu_registry *r, const mu_imgref *ref, const mu_imagesig_check_opts *o,
                                     mu_imagesig_verdict *ret);

/* The same for a subject already resolved. */
mu_imagesig_status mu_imagesig_check_subject(mu_registry *r, const mu_imgref *ref, const mu_descriptor *subject,
                                             const mu_imagesig_check_opts *o, mu_imagesig_verdict *ret);

typedef struct mu_imagesig_sign_result {
  mu_descriptor subject;
  char artifact_digest[72];
  char tag[80];        /* the fallback tag used, "" when stored through the referrers API */
  size_t n_signatures; /* signatures the artifact holds (the fallback tag's: all of them) */
  mu_blob_put_how how; /* the envelope blob: uploaded or already there */
  int64_t expires;
  char key_id[MU_KEY_ID_SIZE];
} mu_imagesig_sign_result;

/* Signs ref's manifest digest for its repository until expires (unix s) and stores the
 * signature (see above). max_signatures bounds the fallback tag's layers (0 = default). */
int mu_imagesig_sign(mu_registry *r, const mu_imgref *ref, const mu_seckey *sk, int64_t expires, size_t max_signatures,
                     mu_imagesig_sign_result *ret, mu_err *err);

#endif
