/* The secret store's crypto, with no daemon state: the 32-byte key musterd is given with
 * --secret-key (file formats, mode check, key id), and the record codec: one stored secret
 * (etcd `secrets/<name>`) as JSON holding its metadata and its value sealed with libsodium's
 * XChaCha20-Poly1305 (a random 24-byte nonce per seal; associated data "secrets/<name>" and
 * the version, so a ciphertext moved to another record or version does not open).
 *
 * Key files hold exactly 32 bytes, raw, or as text: 64 hex characters or base64 (44
 * characters), optionally followed by a newline. A file readable or writable by group or
 * others (mode wider than 0600) is refused. The key id is the first 8 bytes of a BLAKE2b hash
 * of the key, in hex: it names a key in messages without revealing it. */
#ifndef MU_SECRETS_SECRET_BOX_H
#define MU_SECRETS_SECRET_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_SECRET_KEY_BYTES 32
#define MU_SECRET_KEY_ID_SIZE 17 /* 16 hex characters and a NUL */
#define MU_SECRET_NONCE_BYTES 24
#define MU_SECRET_NAME_MAX 128
#define MU_SECRET_VALUE_MIN 4 /* shorter values could not be redacted reliably */
#define MU_SECRET_VALUE_MAX 65536

typedef struct mu_secret_key {
  unsigned char bytes[MU_SECRET_KEY_BYTES];
  char id[MU_SECRET_KEY_ID_SIZE];
} mu_secret_key;

/* Reads the key file at path (formats above). MU_EPERM when its mode is wider than 0600 or it
 * is not a regular file; MU_EINVAL when it does not hold 32 bytes in one of the formats;
 * MU_ENOENT / MU_EIO when it cannot be read. Every message names the file. */
int mu_secret_key_load(const char *path, mu_secret_key *ret, mu_err *err);
/* The same for bytes already read (len of them). */
int mu_secret_key_parse(const void *data, size_t len, mu_secret_key *ret, mu_err *err);
/* A fresh random key. */
void mu_secret_key_generate(mu_secret_key *ret);
/* Writes key as hex text to a new file at path with mode 0600 (MU_EEXIST when it exists). */
int mu_secret_key_write(const mu_secret_key *key, const char *path, mu_err *err);
/* Zeroes a key in memory. */
void mu_secret_key_wipe(mu_secret_key *key);

/* Checks a secret's name ([A-Za-z0-9._-], 1..MU_SECRET_NAME_MAX, not starting with '.') and
 * value (UTF-8 text without NUL bytes, MU_SECRET_VALUE_MIN..MU_SECRET_VALUE_MAX bytes).
 * MU_EINVAL with a message saying what is wrong (never quoting the value). */
int mu_secret_check_name(const char *name, mu_err *err);
int mu_secret_check_value(const void *value, size_t len, mu_err *err);

/* One stored secret. Strings are owned by the record (mu_secret_record_free). */
typedef struct mu_secret_record {
  char *name;
  uint64_t version; /* 1 on the first set, +1 on every set */
  char *scope;      /* agent selector; "" = any agent */
  int64_t created_at_ms, updated_at_ms;
  char *created_by, *updated_by; /* mu_caller_describe() of the caller */
  char key_id[MU_SECRET_KEY_ID_SIZE];
  unsigned char nonce[MU_SECRET_NONCE_BYTES];
  unsigned char *ct; /* ciphertext with its 16-byte tag */
  size_t ct_len;
} mu_secret_record;

/* A new record with copies of the strings (scope/by may be NULL: ""); no value yet. NULL when
 * out of memory. */
mu_secret_record *mu_secret_record_new(const char *name, uint64_t version, const char *scope, const char *by,
                                       int64_t now_ms);
/* A deep copy; NULL when out of memory. */
mu_secret_record *mu_secret_record_dup(const mu_secret_record *rec);
void mu_secret_record_free(mu_secret_record *rec);

/* Seals value (len bytes) into rec under key: a fresh nonce, rec->key_id set, the old
 * ciphertext replaced. Binds rec->name and rec->version, so set them first. */
int mu_secret_record_seal(mu_secret_record *rec, const mu_secret_key *key, const void *value, size_t len, mu_err *err);
/* Opens rec's value with key. On success *ret_value (NUL-terminated, *ret_len bytes without
 * the NUL) is the caller's to release with mu_secret_value_free. MU_EPERM when key is not
 * the one rec names ("secret 'x' is encrypted with key id A; this key is B") or the
 * ciphertext does not open under this name and version (tampered or moved). */
int mu_secret_record_open(const mu_secret_record *rec, const mu_secret_key *key, char **ret_value, size_t *ret_len,
                          mu_err *err);
/* Wipes and frees a value from mu_secret_record_open (NULL is fine). */
void mu_secret_value_free(char *value, size_t len);

/* The record as compact JSON (caller frees), NULL when out of memory. The value appears only
 * as nonce and ciphertext in base64. */
char *mu_secret_record_encode(const mu_secret_record *rec);
/* Parses a stored record (len bytes of JSON); name is the one its key says and must match.
 * *ret is the caller's (mu_secret_record_free). MU_EINVAL naming the bad field. */
int mu_secret_record_decode(const char *name, const char *json, size_t len, mu_secret_record **ret, mu_err *err);

#endif
