/* Ed25519 keys, signature files and the trust set (libsodium). All three are one-line text
 * files:
 *   PREFIX.key  "muster-ed25519-key v1 <key_id> <base64 64-byte secret key>"   mode 0600
 *   PREFIX.pub  "muster-ed25519-pub v1 <key_id> <base64 32-byte public key>"
 *   FILE.sig    "muster-ed25519-sig v1 <key_id> <base64 64-byte signature>"
 * key_id is the first 16 hex digits of sha256(public key). */
#ifndef MU_BUNDLE_KEYS_H
#define MU_BUNDLE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_KEY_ID_SIZE 17 /* 16 hex + NUL */

typedef struct mu_pubkey {
  char key_id[MU_KEY_ID_SIZE];
  uint8_t pk[32];
} mu_pubkey;

typedef struct mu_seckey {
  char key_id[MU_KEY_ID_SIZE];
  uint8_t sk[64]; /* libsodium layout: seed || public key */
} mu_seckey;

typedef struct mu_sig {
  char key_id[MU_KEY_ID_SIZE];
  uint8_t sig[64];
} mu_sig;

/* A bounded set of trusted public keys, looked up by key id. */
typedef struct mu_trust_set mu_trust_set;

/* Makes a fresh key pair. Returns 0 or MU_EIO when libsodium cannot start. */
int mu_key_generate(mu_seckey *ret_sk, mu_pubkey *ret_pk, mu_err *err);

/* Wipes a secret key in memory (sodium_memzero). */
void mu_seckey_wipe(mu_seckey *sk);

/* Writes PREFIX.key (mode 0600) and PREFIX.pub. Refuses with MU_EEXIST, writing nothing,
 * when either already exists; on a later failure removes what it wrote. */
int mu_key_write_files(const char *prefix, const mu_seckey *sk, const mu_pubkey *pk, mu_err *err);

/* Text forms (one line with '\n'). *ret_text is owned by the caller (free(); for the secret
 * key, wipe with sodium_memzero first). Returns 0 or MU_ENOMEM. */
int mu_pubkey_format(const mu_pubkey *pk, char **ret_text, mu_err *err);
int mu_seckey_format(const mu_seckey *sk, char **ret_text, mu_err *err);
int mu_sig_format(const mu_sig *sig, char **ret_text, mu_err *err);

/* Parses the text forms. Checks the header, base64, length and that key_id matches the key.
 * Returns 0 or MU_EINVAL naming what is wrong. */
int mu_pubkey_parse(const char *text, size_t len, mu_pubkey *ret, mu_err *err);
int mu_seckey_parse(const char *text, size_t len, mu_seckey *ret, mu_err *err);
int mu_sig_parse(const char *text, size_t len, mu_sig *ret, mu_err *err);

/* Load from files. mu_seckey_load_file refuses (MU_EPERM) a key file readable or writable by
 * group or others. Errors are prefixed with the path. */
int mu_pubkey_load_file(const char *path, mu_pubkey *ret, mu_err *err);
int mu_seckey_load_file(const char *path, mu_seckey *ret, mu_err *err);

/* Makes an empty set holding at most max_keys keys. Caller frees with mu_trust_set_free.
 * Returns 0 or MU_ENOMEM / MU_EINVAL (max_keys == 0). */
int mu_trust_set_new(size_t max_keys, mu_trust_set **ret, mu_err *err);
void mu_trust_set_free(mu_trust_set *set);

/* Adds a copy of pk. Adding the same key twice is a no-op; a different key with the same id
 * is MU_EEXIST; a full set is MU_ENOSPC. */
int mu_trust_set_add(mu_trust_set *set, const mu_pubkey *pk, mu_err *err);

/* Loads a .pub file and adds it (e.g. every --trust-key FILE). */
int mu_trust_set_add_file(mu_trust_set *set, const char *path, mu_err *err);

/* The key with this id, or NULL. The pointer is borrowed from set. */
const mu_pubkey *mu_trust_set_find(const mu_trust_set *set, const char *key_id);
size_t mu_trust_set_count(const mu_trust_set *set);

/* Detached Ed25519 over msg. Returns 0 (or MU_EIO if libsodium cannot start). */
int mu_sign(const mu_seckey *sk, const uint8_t *msg, size_t len, mu_sig *ret_sig, mu_err *err);

/* Checks sig over msg with pk. Returns 0 or MU_EPERM ("bad signature by key X"). */
int mu_sig_verify(const mu_pubkey *pk, const mu_sig *sig, const uint8_t *msg, size_t len, mu_err *err);

#endif
