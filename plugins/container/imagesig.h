/* Image signatures (docs/images.md "Signing and verifying"): the signed payload, the envelope
 * stored as a registry blob, the OCI artifact manifest that attaches it to an image, and the
 * verdict of checking one. Pure functions of bytes (no I/O): imagesig_registry.h finds and
 * stores them in a registry.
 *
 * Payload, the exact bytes signed (keys sorted, no spaces, no escapes needed: names and
 * digests are from the reference grammar):
 *   {"expires":<unix seconds>,"manifest":"sha256:<hex>","repository":"<registry>/<repo>",
 *    "type":"muster.image.signature.v1"}
 * Envelope (a layer blob of media type MU_IMAGESIG_MEDIA_TYPE):
 *   {"key_id":"<16 hex>","payload":"<base64 payload>","signature":"<base64 Ed25519 sig>"}
 * The signature is Ed25519 (libsodium, lib/bundle/keys.h: the same keys as bundles) over the
 * payload bytes. */
#ifndef MU_IMAGESIG_H
#define MU_IMAGESIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/bundle/keys.h"
#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"

#define MU_IMAGESIG_ARTIFACT_TYPE "application/vnd.muster.image.signature.v1+json"
#define MU_IMAGESIG_MEDIA_TYPE MU_IMAGESIG_ARTIFACT_TYPE
#define MU_IMAGESIG_PAYLOAD_TYPE "muster.image.signature.v1"
#define MU_IMAGESIG_EMPTY_TYPE "application/vnd.oci.empty.v1+json"
#define MU_IMAGESIG_EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define MU_IMAGESIG_KEY_ANNOTATION "dev.muster.image.signature.key-id"
#define MU_IMAGESIG_MAX_BLOB 16384   /* an envelope's bytes at most */
#define MU_IMAGESIG_MAX_PAYLOAD 2048 /* a payload's bytes at most */
#define MU_IMAGESIG_MAX_LAYERS 64    /* signature layers one artifact manifest may hold */
#define MU_IMAGESIG_NAME_MAX (2 * MU_IMGREF_NAME_MAX + 2)

/* A check's outcome, worst news last: when no signature is valid, the verdict is the most
 * specific failure seen (a trusted key's expired signature says more than an untrusted one). */
typedef enum {
  MU_IMAGESIG_OK = 0,
  MU_IMAGESIG_ERROR,            /* the registry could not be asked (transport, auth, 5xx) */
  MU_IMAGESIG_UNSIGNED,         /* no signature artifact for the digest */
  MU_IMAGESIG_MALFORMED,        /* an artifact, envelope or payload that does not parse */
  MU_IMAGESIG_UNTRUSTED,        /* signed, but by no trusted key */
  MU_IMAGESIG_BAD_SIGNATURE,    /* a trusted key's signature that does not verify */
  MU_IMAGESIG_WRONG_REPOSITORY, /* a valid signature for the digest in another repository */
  MU_IMAGESIG_WRONG_DIGEST,     /* a valid signature over another manifest digest */
  MU_IMAGESIG_EXPIRED,          /* a valid signature past its expiry */
} mu_imagesig_status;

/* "ok", "unsigned", "expired", ... (stable words, for JSON output and audit). */
const char *mu_imagesig_status_name(mu_imagesig_status s);
/* True when a is more specific than b (the order above; OK beats everything). */
bool mu_imagesig_status_better(mu_imagesig_status a, mu_imagesig_status b);

typedef struct mu_imagesig_payload {
  char repository[MU_IMAGESIG_NAME_MAX]; /* "registry/repo" */
  char digest[72];                       /* the signed manifest (or index) digest */
  int64_t expires;                       /* unix seconds */
} mu_imagesig_payload;

/* The canonical payload bytes into buf (NUL-terminated); returns the length, or MU_EINVAL when
 * a field is malformed (digest grammar, a name with bytes outside the reference grammar). */
int mu_imagesig_payload_format(const mu_imagesig_payload *p, char *buf, size_t cap, mu_err *err);
/* Parses payload bytes; they must be exactly the canonical form (MU_EINVAL otherwise). */
int mu_imagesig_payload_parse(const char *text, size_t len, mu_imagesig_payload *ret, mu_err *err);

/* Signs p with sk into an envelope: *ret (caller frees) of *ret_len bytes. */
int mu_imagesig_envelope_make(const mu_seckey *sk, const mu_imagesig_payload *p, char **ret, size_t *ret_len,
                              mu_err *err);

/* What one envelope says and whether it holds for (repository, digest) at now (unix s). */
typedef struct mu_imagesig_info {
  mu_imagesig_status status;
  char key_id[MU_KEY_ID_SIZE]; /* "" when the envelope did not parse */
  mu_imagesig_payload payload; /* zeroes when it did not parse */
  char msg[400];               /* why not (or "signed by KEY until ...") */
} mu_imagesig_info;

/* Checks an envelope: parses, finds its key in trust (NULL = none trusted), verifies the
 * signature, then the payload's digest, repository and expiry. Returns ret->status. */
mu_imagesig_status mu_imagesig_envelope_verify(const char *blob, size_t len, const mu_trust_set *trust,
                                               const char *repository, const char *digest, int64_t now,
                                               mu_imagesig_info *ret);

/* A signature artifact manifest: its subject and its signature layers. */
typedef struct mu_imagesig_layer {
  mu_descriptor desc;
  char key_id[MU_KEY_ID_SIZE]; /* the layer's key-id annotation ("" = none); a hint only */
} mu_imagesig_layer;

typedef struct mu_imagesig_artifact {
  mu_descriptor subject;
  mu_imagesig_layer layers[MU_IMAGESIG_MAX_LAYERS];
  size_t n_layers;
} mu_imagesig_artifact;

/* Parses an artifact manifest: an OCI image manifest whose artifactType is
 * MU_IMAGESIG_ARTIFACT_TYPE with a subject; layers of other media types are skipped, ours are
 * at most MU_IMAGESIG_MAX_LAYERS and MU_IMAGESIG_MAX_BLOB bytes each. MU_EINVAL otherwise. */
int mu_imagesig_artifact_parse(const char *body, size_t len, mu_imagesig_artifact *ret, mu_err *err);

/* The manifest for a (subject, layers) with an empty config and the time it was made (unix s,
 * as org.opencontainers.image.created). *ret (caller frees). */
int mu_imagesig_artifact_format(const mu_imagesig_artifact *a, int64_t created, char **ret, size_t *ret_len,
                                mu_err *err);

/* From a referrers index: the descriptors whose artifactType is ours, up to max (the rest are
 * counted in *ret_skipped). MU_EINVAL when the body is not an index. */
int mu_imagesig_referrers_parse(const char *body, size_t len, mu_descriptor *ret, size_t max, size_t *ret_n,
                                size_t *ret_skipped, mu_err *err);

/* "sha256-<hex>.sig": the tag a signature artifact gets on registries without referrers. */
void mu_imagesig_fallback_tag(const char *digest, char out[80]);

#endif
