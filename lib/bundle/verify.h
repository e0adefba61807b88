/* Signing and verifying bundles. A signature covers
 *     "sha256:<hex digest of the archive bytes>" || MANIFEST.json bytes
 * so a verifier needs only the archive bytes and the .sig text. Verification reads the
 * manifest out of the archive in memory; nothing is written to disk. */
#ifndef MU_BUNDLE_VERIFY_H
#define MU_BUNDLE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/bundle/bundle.h"
#include "lib/bundle/keys.h"
#include "lib/bundle/manifest.h"

/* What a bundle must satisfy before it is trusted. All pointers are borrowed. */
typedef struct mu_bundle_check {
  const char *expected_digest; /* "sha256:<hex>" the caller asked for; NULL skips the check */
  const mu_trust_set *trust;   /* trusted keys; NULL is the empty set */
  const uint8_t *sig;          /* FILE.sig bytes; NULL (or sig_len 0) = unsigned */
  size_t sig_len;
  bool allow_unsigned; /* accept a bundle with no signature at all. A signature that
                                 * is present is always checked, so an unknown key or a bad
                                 * signature is refused even then. */
} mu_bundle_check;

/* What verification learnt. Caller frees with mu_bundle_info_free. */
typedef struct mu_bundle_info {
  char digest[MU_BUNDLE_DIGEST_SIZE]; /* of the archive bytes */
  char key_id[MU_KEY_ID_SIZE];        /* the signer, "" when unsigned */
  size_t archive_bytes;
  mu_manifest *manifest; /* owned */
} mu_bundle_info;

void mu_bundle_info_free(mu_bundle_info *info);

/* Reads MANIFEST.json (which must be the first entry) out of archive bytes and parses it
 * against limits (NULL = defaults). On success *ret_json (caller frees; the exact bytes) and
 * *ret_manifest (caller frees with mu_manifest_free); either may be NULL if unwanted.
 * Errors: MU_EINVAL (corrupt or truncated archive, bad manifest), MU_ENOSPC (over a limit). */
int mu_bundle_read_manifest(const uint8_t *data, size_t len, const mu_unpack_limits *limits, char **ret_json,
                            size_t *ret_len, mu_manifest **ret_manifest, mu_err *err);

/* Signs archive bytes with sk: checks the manifest first (never signs garbage). On success
 * *ret_sig_text is the .sig file content (caller frees). */
int mu_bundle_sign(const uint8_t *data, size_t len, const mu_seckey *sk, const mu_unpack_limits *limits,
                   char **ret_sig_text, mu_err *err);

/* Signs the bundle at path and writes path + ".sig" (replacing an older one atomically).
 * On success *ret_sig_path (caller frees) when ret_sig_path is non-NULL. */
int mu_bundle_sign_file(const char *path, const mu_seckey *sk, const mu_unpack_limits *limits, char **ret_sig_path,
                        mu_err *err);

/* Checks, in this order: size limit, digest ("digest mismatch: expected X, got Y"), the
 * manifest, then the signature ("bundle is unsigned", "unknown key id X", "bad signature by
 * key X"). Trust refusals are MU_EPERM; a corrupt archive or manifest MU_EINVAL; a limit
 * MU_ENOSPC. A NULL check means "signed by a trusted key" with an empty trust set, which
 * refuses everything. data must not change during the call. On success *ret_info (caller
 * frees with mu_bundle_info_free) if non-NULL. */
int mu_bundle_verify(const uint8_t *data, size_t len, const mu_bundle_check *check, const mu_unpack_limits *limits,
                     mu_bundle_info **ret_info, mu_err *err);

#endif
