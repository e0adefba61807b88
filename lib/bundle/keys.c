/* Ed25519 key pairs, signatures and the trust set, on libsodium. Keys and signatures travel as
 * one-line text files ("muster-ed25519-<kind> v1 <key_id> <base64>") so they paste into
 * configs and survive copy-paste; key ids let a verifier pick the key without trying all. */
#define _GNU_SOURCE /* asprintf */
#include "lib/bundle/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bundle/bundle.h"

#define KEY_TEXT_MAX 512

struct mu_trust_set {
  size_t n;
  size_t cap;
  mu_pubkey *keys;
};

static int sodium_ready(mu_err *err) {
  if (sodium_init() < 0) return mu_err_set(err, MU_EIO, "libsodium failed to initialise");
  return 0;
}

static void key_id_of(const uint8_t pk[32], char ret_id[MU_KEY_ID_SIZE]) {
  uint8_t sum[crypto_hash_sha256_BYTES];
  char hex[65];
  crypto_hash_sha256(sum, pk, 32);
  mu_bundle_hex32(sum, hex);
  memcpy(ret_id, hex, 16);
  ret_id[16] = '\0';
}

int mu_key_generate(mu_seckey *ret_sk, mu_pubkey *ret_pk, mu_err *err) {
  int rc = sodium_ready(err);
  if (rc != 0) return rc;
  crypto_sign_ed25519_keypair(ret_pk->pk, ret_sk->sk);
  key_id_of(ret_pk->pk, ret_pk->key_id);
  memcpy(ret_sk->key_id, ret_pk->key_id, MU_KEY_ID_SIZE);
  return 0;
}

void mu_seckey_wipe(mu_seckey *sk) { sodium_memzero(sk, sizeof *sk); }

static int format_line(const char *kind, const char *key_id, const uint8_t *bin, size_t len, char **ret_text,
                       mu_err *err) {
  char b64[128];
  sodium_bin2base64(b64, sizeof b64, bin, len, sodium_base64_VARIANT_ORIGINAL);
  size_t need = strlen(kind) + strlen(key_id) + strlen(b64) + 32;
  char *out = malloc(need);
  if (out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(out, need, "muster-ed25519-%s v1 %s %s\n", kind, key_id, b64);
  sodium_memzero(b64, sizeof b64);
  *ret_text = out;
  return 0;
}

int mu_pubkey_format(const mu_pubkey *pk, char **ret_text, mu_err *err) {
  return format_line("pub", pk->key_id, pk->pk, sizeof pk->pk, ret_text, err);
}

int mu_seckey_format(const mu_seckey *sk, char **ret_text, mu_err *err) {
  return format_line("key", sk->key_id, sk->sk, sizeof sk->sk, ret_text, err);
}

int mu_sig_format(const mu_sig *sig, char **ret_text, mu_err *err) {
  return format_line("sig", sig->key_id, sig->sig, sizeof sig->sig, ret_text, err);
}

/* Parses "muster-ed25519-<kind> v1 <id> <base64>" with optional trailing whitespace into
 * ret_id and exactly want bytes of ret_bin. */
static int parse_line(const char *kind, const char *text, size_t len, char ret_id[MU_KEY_ID_SIZE], uint8_t *ret_bin,
                      size_t want, mu_err *err) {
  char buf[KEY_TEXT_MAX];
  int rc = 0;
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) {
    len--;
  }
  if (len >= sizeof buf) {
    return mu_err_set(err, MU_EINVAL, "not a muster %s file: too long", kind);
  }
  memcpy(buf, text, len);
  buf[len] = '\0';
  char head[32];
  snprintf(head, sizeof head, "muster-ed25519-%s v1 ", kind);
  size_t hlen = strlen(head);
  if (strlen(buf) != len || strncmp(buf, head, hlen) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "not a muster %s file: want a line starting '%s'", kind, head);
    goto out;
  }
  char *id = buf + hlen;
  char *sp = strchr(id, ' ');
  if (sp == NULL || sp - id != 16 || strspn(id, "0123456789abcdef") != 16) {
    rc = mu_err_set(err, MU_EINVAL, "%s file: key id must be 16 hex digits", kind);
    goto out;
  }
  memcpy(ret_id, id, 16);
  ret_id[16] = '\0';
  const char *b64 = sp + 1;
  const char *end = NULL;
  size_t got = 0;
  if (sodium_base642bin(ret_bin, want, b64, strlen(b64), NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      got != want || *end != '\0') {
    rc = mu_err_set(err, MU_EINVAL, "%s file: want base64 of %zu bytes", kind, want);
    goto out;
  }
out:
  sodium_memzero(buf, sizeof buf);
  return rc;
}

int mu_pubkey_parse(const char *text, size_t len, mu_pubkey *ret, mu_err *err) {
  int rc = sodium_ready(err);
  if (rc == 0) rc = parse_line("pub", text, len, ret->key_id, ret->pk, sizeof ret->pk, err);
  if (rc != 0) return rc;
  char id[MU_KEY_ID_SIZE];
  key_id_of(ret->pk, id);
  if (strcmp(id, ret->key_id) != 0) {
    return mu_err_set(err, MU_EINVAL, "pub file: key id %s does not match the key (%s)", ret->key_id, id);
  }
  return 0;
}

int mu_seckey_parse(const char *text, size_t len, mu_seckey *ret, mu_err *err) {
  int rc = sodium_ready(err);
  if (rc == 0) rc = parse_line("key", text, len, ret->key_id, ret->sk, sizeof ret->sk, err);
  if (rc != 0) return rc;
  uint8_t pk[32];
  uint8_t derived[32];
  uint8_t sk2[64];
  char id[MU_KEY_ID_SIZE];
  /* The stored public half must be the one the seed derives; else the key file is corrupt. */
  crypto_sign_ed25519_sk_to_pk(pk, ret->sk);
  crypto_sign_ed25519_seed_keypair(derived, sk2, ret->sk);
  sodium_memzero(sk2, sizeof sk2);
  key_id_of(pk, id);
  if (memcmp(pk, derived, 32) != 0 || strcmp(id, ret->key_id) != 0) {
    mu_seckey_wipe(ret);
    return mu_err_set(err, MU_EINVAL, "key file: key id or public half does not match the key");
  }
  return 0;
}

int mu_sig_parse(const char *text, size_t len, mu_sig *ret, mu_err *err) {
  return parse_line("sig", text, len, ret->key_id, ret->sig, sizeof ret->sig, err);
}

int mu_pubkey_load_file(const char *path, mu_pubkey *ret, mu_err *err) {
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = mu_bundle_read_file(path, KEY_TEXT_MAX, &data, &len, err);
  if (rc == 0) {
    rc = mu_pubkey_parse((const char *)data, len, ret, err);
    if (rc != 0) mu_err_prefix(err, "'%s'", path);
  }
  free(data);
  return rc;
}

int mu_seckey_load_file(const char *path, mu_seckey *ret, mu_err *err) {
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
    return mu_err_set(err, MU_EPERM, "key file '%s': mode %04o lets others read it; chmod 600 it", path,
                      (unsigned)(st.st_mode & 07777));
  }
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = mu_bundle_read_file(path, KEY_TEXT_MAX, &data, &len, err);
  if (rc == 0) {
    rc = mu_seckey_parse((const char *)data, len, ret, err);
    if (rc != 0) mu_err_prefix(err, "'%s'", path);
    sodium_memzero(data, len);
  }
  free(data);
  return rc;
}

static int write_text(const char *path, const char *text, mode_t mode, mu_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    return mu_err_set(err, e == EEXIST ? MU_EEXIST : MU_EIO, "'%s': %s", path,
                      e == EEXIST ? "already exists, refusing to overwrite" : strerror(e));
  }
  size_t len = strlen(text);
  int ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0) ok = 0;
  if (!ok) {
    unlink(path);
    return mu_err_set(err, MU_EIO, "'%s': %s", path, strerror(e));
  }
  return 0;
}

int mu_key_write_files(const char *prefix, const mu_seckey *sk, const mu_pubkey *pk, mu_err *err) {
  char *key_path = NULL;
  char *pub_path = NULL;
  char *sk_text = NULL;
  char *pk_text = NULL;
  int rc = MU_ENOMEM;
  if (asprintf(&key_path, "%s.key", prefix) < 0) key_path = NULL;
  if (asprintf(&pub_path, "%s.pub", prefix) < 0) pub_path = NULL;
  if (key_path == NULL || pub_path == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  struct stat st;
  if (lstat(key_path, &st) == 0 || lstat(pub_path, &st) == 0) {
    rc = mu_err_set(err, MU_EEXIST, "'%s' already exists, refusing to overwrite",
                    lstat(key_path, &st) == 0 ? key_path : pub_path);
    goto out;
  }
  rc = mu_seckey_format(sk, &sk_text, err);
  if (rc != 0) goto out;
  rc = mu_pubkey_format(pk, &pk_text, err);
  if (rc != 0) goto out;
  rc = write_text(key_path, sk_text, 0600, err);
  if (rc != 0) goto out;
  rc = write_text(pub_path, pk_text, 0644, err);
  if (rc != 0) {
    unlink(key_path);
    goto out;
  }
out:
  if (sk_text != NULL) sodium_memzero(sk_text, strlen(sk_text));
  free(sk_text);
  free(pk_text);
  free(key_path);
  free(pub_path);
  return rc;
}

int mu_trust_set_new(size_t max_keys, mu_trust_set **ret, mu_err *err) {
  if (max_keys == 0) return mu_err_set(err, MU_EINVAL, "trust set: max_keys must be > 0");
  mu_trust_set *set = calloc(1, sizeof *set);
  if (set == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  set->cap = max_keys;
  *ret = set;
  return 0;
}

void mu_trust_set_free(mu_trust_set *set) {
  if (set == NULL) return;
  free(set->keys);
  free(set);
}

const mu_pubkey *mu_trust_set_find(const mu_trust_set *set, const char *key_id) {
  if (set == NULL) return NULL;
  for (size_t i = 0; i < set->n; i++) {
    if (strcmp(set->keys[i].key_id, key_id) == 0) return &set->keys[i];
  }
  return NULL;
}

size_t mu_trust_set_count(const mu_trust_set *set) { return set != NULL ? set->n : 0; }

int mu_trust_set_add(mu_trust_set *set, const mu_pubkey *pk, mu_err *err) {
  const mu_pubkey *have = mu_trust_set_find(set, pk->key_id);
  if (have != NULL) {
    if (memcmp(have->pk, pk->pk, sizeof pk->pk) == 0) return 0;
    return mu_err_set(err, MU_EEXIST, "trust set: a different key has id %s", pk->key_id);
  }
  if (set->n == set->cap) {
    return mu_err_set(err, MU_ENOSPC, "trust set: full (%zu keys)", set->cap);
  }
  mu_pubkey *keys = realloc(set->keys, (set->n + 1) * sizeof *keys);
  if (keys == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  set->keys = keys;
  set->keys[set->n++] = *pk;
  return 0;
}

int mu_trust_set_add_file(mu_trust_set *set, const char *path, mu_err *err) {
  mu_pubkey pk;
  int rc = mu_pubkey_load_file(path, &pk, err);
  if (rc == 0) rc = mu_trust_set_add(set, &pk, err);
  return rc;
}

int mu_sign(const mu_seckey *sk, const uint8_t *msg, size_t len, mu_sig *ret_sig, mu_err *err) {
  int rc = sodium_ready(err);
  if (rc != 0) return rc;
  crypto_sign_ed25519_detached(ret_sig->sig, NULL, msg, len, sk->sk);
  memcpy(ret_sig->key_id, sk->key_id, MU_KEY_ID_SIZE);
  return 0;
}

int mu_sig_verify(const mu_pubkey *pk, const mu_sig *sig, const uint8_t *msg, size_t len, mu_err *err) {
  int rc = sodium_ready(err);
  if (rc != 0) return rc;
  if (crypto_sign_ed25519_verify_detached(sig->sig, msg, len, pk->pk) != 0) {
    return mu_err_set(err, MU_EPERM, "bad signature by key %s", pk->key_id);
  }
  return 0;
}
