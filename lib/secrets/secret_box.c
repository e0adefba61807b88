/* The secret store's crypto (secret_box.h): key files, key ids, and the sealed record codec.
 * Pure functions over libsodium and jansson; the daemon side (secrets.c) owns the records,
 * the RPCs and etcd. */
#include "lib/secrets/secret_box.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 256 /* raw 32, hex 64, base64 44, with a newline and some slack */
#define AD_MAX (sizeof "secrets/" + MU_SECRET_NAME_MAX + 24)

/* sodium_init is idempotent and thread-safe; every entry point that needs libsodium calls it
 * so no caller has to remember. It only fails without a random source, which open() of
 * /dev/urandom would have reported long before. */
static void sodium_ready(void) {
  if (sodium_init() < 0) abort(); /* no randomness: nothing here can be done safely */
}

static void key_set_id(mu_secret_key *key) {
  static const char ctx[] = "muster-secret-key-id";
  unsigned char h[8];
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, (const unsigned char *)ctx, sizeof ctx - 1);
  crypto_generichash_update(&st, key->bytes, sizeof key->bytes);
  crypto_generichash_final(&st, h, sizeof h);
  sodium_bin2hex(key->id, sizeof key->id, h, sizeof h);
}

int mu_secret_key_parse(const void *data, size_t len, mu_secret_key *ret, mu_err *err) {
  sodium_ready();
  mu_secret_key k;
  memset(&k, 0, sizeof k);
  const char *text = data;
  size_t n = len;
  int ok = 0;
  if (len == MU_SECRET_KEY_BYTES) {
    memcpy(k.bytes, data, MU_SECRET_KEY_BYTES);
    ok = 1;
  } else {
    while (n > 0 && isspace((unsigned char)text[n - 1])) n--;
    size_t got = 0;
    const char *end = NULL;
    if (n == 2 * MU_SECRET_KEY_BYTES)
      ok = sodium_hex2bin(k.bytes, sizeof k.bytes, text, n, NULL, &got, &end) == 0 && got == MU_SECRET_KEY_BYTES &&
           end == text + n;
    else if (n == 44)
      ok = sodium_base642bin(k.bytes, sizeof k.bytes, text, n, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
           got == MU_SECRET_KEY_BYTES && end == text + n;
  }
  if (!ok) {
    sodium_memzero(&k, sizeof k);
    return mu_err_set(err, MU_EINVAL,
                      "a secret key is 32 bytes: raw (32 bytes), hex (64 characters) or base64 "
                      "(44 characters), optionally with a newline; got %zu bytes that are none "
                      "of these (make one with `muster secret keygen --out FILE`)",
                      len);
  }
  key_set_id(&k);
  *ret = k;
  sodium_memzero(&k, sizeof k);
  return 0;
}

int mu_secret_key_load(const char *path, mu_secret_key *ret, mu_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "secret key %s: %s", path,
                      errno == ELOOP ? "is a symbolic link (give the file itself)" : strerror(errno));
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    rc = mu_err_set(err, MU_EIO, "secret key %s: %s", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    rc = mu_err_set(err, MU_EPERM, "secret key %s: not a regular file", path);
  } else if ((st.st_mode & 0177) != 0) {
    rc = mu_err_set(err, MU_EPERM,
                    "secret key %s: mode %04o is wider than 0600 (others may read or run it); "
                    "chmod 600 %s",
                    path, (unsigned)(st.st_mode & 07777), path);
  } else if (st.st_size > KEY_FILE_MAX) {
    rc = mu_err_set(err, MU_EINVAL,
                    "secret key %s: %lld bytes; a secret key is 32 bytes (raw, "
                    "or 64 hex / 44 base64 characters)",
                    path, (long long)st.st_size);
  }
  if (rc != 0) {
    close(fd);
    return rc;
  }
  unsigned char buf[KEY_FILE_MAX + 1];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 0) return mu_err_set(err, MU_EIO, "secret key %s: %s", path, strerror(errno));
  rc = mu_secret_key_parse(buf, (size_t)n, ret, err);
  sodium_memzero(buf, sizeof buf);
  if (rc != 0) mu_err_prefix(err, "secret key %s", path);
  return rc;
}

void mu_secret_key_generate(mu_secret_key *ret) {
  sodium_ready();
  randombytes_buf(ret->bytes, sizeof ret->bytes);
  key_set_id(ret);
}

int mu_secret_key_write(const mu_secret_key *key, const char *path, mu_err *err) {
  char hex[2 * MU_SECRET_KEY_BYTES + 2];
  sodium_bin2hex(hex, sizeof hex - 1, key->bytes, sizeof key->bytes);
  size_t len = strlen(hex);
  hex[len++] = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    sodium_memzero(hex, sizeof hex);
    return mu_err_set(err, errno == EEXIST ? MU_EEXIST : MU_EIO, "%s: %s", path,
                      errno == EEXIST ? "already exists (a key is never overwritten)" : strerror(errno));
  }
  int ok = fchmod(fd, 0600) == 0 && write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
  int saved = errno;
  sodium_memzero(hex, sizeof hex);
  close(fd);
  if (!ok) {
    unlink(path);
    return mu_err_set(err, MU_EIO, "%s: %s", path, strerror(saved));
  }
  return 0;
}

void mu_secret_key_wipe(mu_secret_key *key) { sodium_memzero(key, sizeof *key); }

/* --- names and values --- */

int mu_secret_check_name(const char *name, mu_err *err) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > MU_SECRET_NAME_MAX || name[0] == '.')
    return mu_err_set(err, MU_EINVAL,
                      "secret name '%.140s': 1 to %d characters, not starting "
                      "with '.'",
                      name ? name : "", MU_SECRET_NAME_MAX);
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)name[i]) && strchr("._-", name[i]) == NULL)
      return mu_err_set(err, MU_EINVAL,
                        "secret name '%.140s': only letters, digits, '.', '_' "
                        "and '-'",
                        name);
  return 0;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  size_t len;
  uint32_t cp;
  if (p[0] < 0x80) return 1;
  if ((p[0] & 0xe0) == 0xc0) len = 2, cp = p[0] & 0x1f;
  else if ((p[0] & 0xf0) == 0xe0) len = 3, cp = p[0] & 0x0f;
  else if ((p[0] & 0xf8) == 0xf0) len = 4, cp = p[0] & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

int mu_secret_check_value(const void *value, size_t len, mu_err *err) {
  if (len < MU_SECRET_VALUE_MIN)
    return mu_err_set(err, MU_EINVAL,
                      "the value has %zu bytes; a secret needs at least %d (a "
                      "shorter one could not be redacted from task output reliably)",
                      len, MU_SECRET_VALUE_MIN);
  if (len > MU_SECRET_VALUE_MAX)
    return mu_err_set(err, MU_EINVAL, "the value has %zu bytes; at most %d", len, MU_SECRET_VALUE_MAX);
  const unsigned char *p = value;
  for (size_t i = 0; i < len;) {
    size_t l = p[i] == 0 ? 0 : utf8_len(p + i, len - i);
    if (l == 0)
      return mu_err_set(err, MU_EINVAL,
                        "the value is not UTF-8 text without NUL bytes (byte "
                        "%zu); store binary data base64-encoded and decode it in the task",
                        i);
    i += l;
  }
  return 0;
}

/* --- records --- */

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

mu_secret_record *mu_secret_record_new(const char *name, uint64_t version, const char *scope, const char *by,
                                       int64_t now_ms) {
  mu_secret_record *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->name = dup_or_empty(name);
  r->scope = dup_or_empty(scope);
  r->created_by = dup_or_empty(by);
  r->updated_by = dup_or_empty(by);
  r->version = version;
  r->created_at_ms = r->updated_at_ms = now_ms;
  if (!r->name || !r->scope || !r->created_by || !r->updated_by) {
    mu_secret_record_free(r);
    return NULL;
  }
  return r;
}

mu_secret_record *mu_secret_record_dup(const mu_secret_record *rec) {
  mu_secret_record *r = mu_secret_record_new(rec->name, rec->version, rec->scope, rec->created_by, rec->created_at_ms);
  if (r == NULL) return NULL;
  free(r->updated_by);
  r->updated_by = dup_or_empty(rec->updated_by);
  r->updated_at_ms = rec->updated_at_ms;
  memcpy(r->key_id, rec->key_id, sizeof r->key_id);
  memcpy(r->nonce, rec->nonce, sizeof r->nonce);
  r->ct = rec->ct_len ? malloc(rec->ct_len) : NULL;
  if (r->updated_by == NULL || (rec->ct_len && r->ct == NULL)) {
    mu_secret_record_free(r);
    return NULL;
  }
  if (rec->ct_len) memcpy(r->ct, rec->ct, rec->ct_len);
  r->ct_len = rec->ct_len;
  return r;
}

void mu_secret_record_free(mu_secret_record *rec) {
  if (rec == NULL) return;
  free(rec->name);
  free(rec->scope);
  free(rec->created_by);
  free(rec->updated_by);
  free(rec->ct);
  free(rec);
}

/* The associated data: which record and version a ciphertext belongs to. */
static size_t record_ad(const mu_secret_record *rec, unsigned char *buf, size_t size) {
  int n = snprintf((char *)buf, size, "secrets/%s\n%" PRIu64, rec->name, rec->version);
  return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

int mu_secret_record_seal(mu_secret_record *rec, const mu_secret_key *key, const void *value, size_t len, mu_err *err) {
  unsigned char ad[AD_MAX];
  size_t ad_len = record_ad(rec, ad, sizeof ad);
  if (ad_len == 0) return mu_err_set(err, MU_EINVAL, "secret name too long");
  sodium_ready();
  size_t cap = len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
  unsigned char *ct = malloc(cap);
  if (ct == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  randombytes_buf(rec->nonce, sizeof rec->nonce);
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, value, len, ad, ad_len, NULL, rec->nonce, key->bytes);
  free(rec->ct);
  rec->ct = ct;
  rec->ct_len = (size_t)ct_len;
  memcpy(rec->key_id, key->id, sizeof rec->key_id);
  return 0;
}

int mu_secret_record_open(const mu_secret_record *rec, const mu_secret_key *key, char **ret_value, size_t *ret_len,
                          mu_err *err) {
  if (strcmp(rec->key_id, key->id) != 0)
    return mu_err_set(err, MU_EPERM,
                      "secret '%s' is encrypted with key id %s; this key is key "
                      "id %s",
                      rec->name, rec->key_id, key->id);
  if (rec->ct_len < crypto_aead_xchacha20poly1305_ietf_ABYTES)
    return mu_err_set(err, MU_EPERM, "secret '%s': stored ciphertext is truncated", rec->name);
  unsigned char ad[AD_MAX];
  size_t ad_len = record_ad(rec, ad, sizeof ad);
  size_t cap = rec->ct_len - crypto_aead_xchacha20poly1305_ietf_ABYTES;
  char *out = malloc(cap + 1);
  if (out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  unsigned long long len = 0;
  if (ad_len == 0 || crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &len, NULL, rec->ct, rec->ct_len,
                                                                ad, ad_len, rec->nonce, key->bytes) != 0) {
    free(out);
    return mu_err_set(err, MU_EPERM,
                      "secret '%s' version %" PRIu64
                      " does not decrypt under "
                      "key id %s: the record was altered or moved from another name or version",
                      rec->name, rec->version, key->id);
  }
  out[len] = '\0';
  *ret_value = out;
  *ret_len = (size_t)len;
  return 0;
}

void mu_secret_value_free(char *value, size_t len) {
  if (value == NULL) return;
  sodium_memzero(value, len);
  free(value);
}

/* --- JSON --- */

static json_t *b64(const unsigned char *data, size_t len) {
  size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  char *text = malloc(cap);
  if (text == NULL) return NULL;
  sodium_bin2base64(text, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
  json_t *s = json_string(text);
  free(text);
  return s;
}

char *mu_secret_record_encode(const mu_secret_record *rec) {
  json_t *o = json_pack("{s:i,s:s,s:I,s:s,s:I,s:s,s:I,s:s,s:s,s:o,s:o}", "v", 1, "name", rec->name, "version",
                        (json_int_t)rec->version, "scope", rec->scope, "created_at_ms", (json_int_t)rec->created_at_ms,
                        "created_by", rec->created_by, "updated_at_ms", (json_int_t)rec->updated_at_ms, "updated_by",
                        rec->updated_by, "key_id", rec->key_id, "nonce", b64(rec->nonce, sizeof rec->nonce),
                        "ciphertext", b64(rec->ct, rec->ct_len));
  if (o == NULL) return NULL;
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

static int unb64(const json_t *o, const char *field, unsigned char **ret, size_t *ret_len, size_t exact, mu_err *err) {
  const char *s = json_string_value(json_object_get(o, field));
  size_t n = s ? strlen(s) : 0;
  unsigned char *buf = n ? malloc(n) : NULL;
  size_t got = 0;
  if (s == NULL || buf == NULL ||
      sodium_base642bin(buf, n, s, n, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      (exact && got != exact)) {
    free(buf);
    return mu_err_set(err, MU_EINVAL, "%s: missing or not base64%s", field, exact ? " of the right length" : "");
  }
  *ret = buf;
  *ret_len = got;
  return 0;
}

int mu_secret_record_decode(const char *name, const char *json, size_t len, mu_secret_record **ret, mu_err *err) {
  json_error_t je;
  json_t *o = json_loadb(json, len, 0, &je);
  if (o == NULL || !json_is_object(o)) {
    json_decref(o);
    return mu_err_set(err, MU_EINVAL, "secrets/%s: not a JSON object (%s)", name, je.text);
  }
  const char *rec_name = json_string_value(json_object_get(o, "name"));
  const char *key_id = json_string_value(json_object_get(o, "key_id"));
  json_t *version = json_object_get(o, "version");
  mu_secret_record *r = NULL;
  unsigned char *nonce = NULL;
  size_t nonce_len = 0;
  int rc = 0;
  if (rec_name == NULL || strcmp(rec_name, name) != 0)
    rc = mu_err_set(err, MU_EINVAL, "secrets/%s: holds the record of '%s'", name, rec_name ? rec_name : "(no name)");
  else if (!json_is_integer(version) || json_integer_value(version) < 1)
    rc = mu_err_set(err, MU_EINVAL, "secrets/%s: version: missing or not a positive number", name);
  else if (key_id == NULL || strlen(key_id) != MU_SECRET_KEY_ID_SIZE - 1)
    rc = mu_err_set(err, MU_EINVAL, "secrets/%s: key_id: missing or malformed", name);
  if (rc == 0) {
    r = mu_secret_record_new(
        name, (uint64_t)json_integer_value(version), json_string_value(json_object_get(o, "scope")),
        json_string_value(json_object_get(o, "created_by")), json_integer_value(json_object_get(o, "created_at_ms")));
    if (r == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (rc == 0) {
    free(r->updated_by);
    r->updated_by = dup_or_empty(json_string_value(json_object_get(o, "updated_by")));
    r->updated_at_ms = json_integer_value(json_object_get(o, "updated_at_ms"));
    memcpy(r->key_id, key_id, sizeof r->key_id);
    if (r->updated_by == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (rc == 0) rc = unb64(o, "nonce", &nonce, &nonce_len, MU_SECRET_NONCE_BYTES, err);
  if (rc == 0) {
    memcpy(r->nonce, nonce, MU_SECRET_NONCE_BYTES);
    rc = unb64(o, "ciphertext", &r->ct, &r->ct_len, 0, err);
  }
  free(nonce);
  json_decref(o);
  if (rc != 0) {
    if (rc != MU_ENOMEM && strncmp(err->msg, "secrets/", 8) != 0) mu_err_prefix(err, "secrets/%s", name);
    mu_secret_record_free(r);
    return rc;
  }
  *ret = r;
  return 0;
}
