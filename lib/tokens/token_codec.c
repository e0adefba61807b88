/* Admin bearer tokens without the daemon (token_codec.h): making a token, splitting a
 * presented one, checking it against its record (constant-time hash compare, revocation,
 * expiry), field checks, and the JSON record kept in etcd. */
#include "lib/tokens/token_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "lib/base/clock.h"

static const char id_alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

static int sodium_ready(mu_err *err) {
  if (sodium_init() < 0) return mu_err_set(err, MU_EIO, "libsodium failed to initialise");
  return 0;
}

static void hash_secret(const char *secret, uint8_t out[MU_TOKEN_HASH_BYTES]) {
  crypto_generichash(out, MU_TOKEN_HASH_BYTES, (const unsigned char *)secret, strlen(secret), NULL, 0);
}

int mu_token_generate(mu_token_record *rec, char *ret_token, size_t size, mu_err *err) {
  if (size <= MU_TOKEN_LEN) return mu_err_set(err, MU_EINVAL, "token buffer too small");
  int rc = sodium_ready(err);
  if (rc != 0) return rc;
  for (size_t i = 0; i < MU_TOKEN_ID_LEN; i++) rec->id[i] = id_alphabet[randombytes_uniform(sizeof id_alphabet - 1)];
  rec->id[MU_TOKEN_ID_LEN] = '\0';
  uint8_t raw[MU_TOKEN_SECRET_BYTES];
  char secret[MU_TOKEN_SECRET_LEN + 1];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(secret, sizeof secret, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  hash_secret(secret, rec->hash);
  snprintf(ret_token, size, "%s%s_%s", MU_TOKEN_PREFIX, rec->id, secret);
  sodium_memzero(raw, sizeof raw);
  sodium_memzero(secret, sizeof secret);
  return 0;
}

static int in_set(const char *s, size_t n, const char *set) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\0' || strchr(set, s[i]) == NULL) return 0;
  return 1;
}

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int mu_token_parse(const char *token, char ret_id[MU_TOKEN_ID_LEN + 1], const char **ret_secret, mu_err *err) {
  const size_t plen = sizeof MU_TOKEN_PREFIX - 1;
  /* The secret's alphabet has '_' in it: split by position, not by separator. */
  if (strncmp(token, MU_TOKEN_PREFIX, plen) != 0 || strlen(token) != MU_TOKEN_LEN ||
      !in_set(token + plen, MU_TOKEN_ID_LEN, id_alphabet) || token[plen + MU_TOKEN_ID_LEN] != '_' ||
      !in_set(token + plen + MU_TOKEN_ID_LEN + 1, MU_TOKEN_SECRET_LEN, b64url_alphabet))
    return mu_err_set(err, MU_EPERM,
                      "malformed token (expected mst_<12-char id>_<43-char secret>, as "
                      "`muster token create` prints)");
  memcpy(ret_id, token + plen, MU_TOKEN_ID_LEN);
  ret_id[MU_TOKEN_ID_LEN] = '\0';
  *ret_secret = token + plen + MU_TOKEN_ID_LEN + 1;
  return 0;
}

const char *mu_token_span(int64_t ms, char *buf, size_t size) {
  int64_t s = ms < 0 ? 0 : ms / 1000;
  if (s < 120) snprintf(buf, size, "%llds", (long long)s);
  else if (s < 7200) snprintf(buf, size, "%lldm", (long long)(s / 60));
  else if (s < 3 * 86400) snprintf(buf, size, "%lldh", (long long)(s / 3600));
  else snprintf(buf, size, "%lldd", (long long)(s / 86400));
  return buf;
}

int mu_token_live(const mu_token_record *rec, int64_t now_ms) {
  return rec->revoked_at_ms == 0 && (rec->expires_at_ms == 0 || now_ms < rec->expires_at_ms);
}

const char *mu_token_state(const mu_token_record *rec, int64_t now_ms) {
  if (rec->revoked_at_ms != 0) return "revoked";
  return mu_token_live(rec, now_ms) ? "active" : "expired";
}

int mu_token_verify(const mu_token_record *rec, const char *secret, int64_t now_ms, mu_err *err) {
  uint8_t h[MU_TOKEN_HASH_BYTES];
  char span[32];
  int rc = sodium_ready(err);
  if (rc != 0) return rc;
  hash_secret(secret, h);
  if (sodium_memcmp(h, rec->hash, sizeof h) != 0) return mu_err_set(err, MU_EPERM, "unknown token");
  if (rec->revoked_at_ms != 0)
    return mu_err_set(err, MU_EPERM, "token %s was revoked %s ago", rec->name,
                      mu_token_span(now_ms - rec->revoked_at_ms, span, sizeof span));
  if (rec->expires_at_ms != 0 && now_ms >= rec->expires_at_ms)
    return mu_err_set(err, MU_EPERM, "token %s expired %s ago", rec->name,
                      mu_token_span(now_ms - rec->expires_at_ms, span, sizeof span));
  return 0;
}

static const char name_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

int mu_token_check_name(const char *name, mu_err *err) {
  size_t n = strlen(name);
  if (n == 0) return mu_err_set(err, MU_EINVAL, "name: required");
  if (n > MU_TOKEN_NAME_MAX || !in_set(name, n, name_chars))
    return mu_err_set(err, MU_EINVAL, "name '%.80s': expected 1-%d of A-Z a-z 0-9 . _ -", name, MU_TOKEN_NAME_MAX);
  return 0;
}

int mu_token_check_types(const char *types, mu_err *err) {
  if (strlen(types) > MU_TOKEN_TYPES_MAX)
    return mu_err_set(err, MU_EINVAL, "types: longer than %d characters", MU_TOKEN_TYPES_MAX);
  for (const char *p = types; *p != '\0';) {
    size_t n = strcspn(p, ",");
    if (n == 0 || n > 64 || !in_set(p, n, name_chars))
      return mu_err_set(err, MU_EINVAL, "types '%s': expected a comma list of task types (e.g. shell,http)", types);
    p += n + (p[n] == ',');
    if (p[-1] == ',' && *p == '\0') return mu_err_set(err, MU_EINVAL, "types '%s': ends with a comma", types);
  }
  return 0;
}

int mu_token_expiry(const char *ttl, int64_t now_ms, int64_t *ret_expires_at_ms, mu_err *err) {
  int64_t ms = 0;
  if (ttl[0] == '\0') {
    *ret_expires_at_ms = 0;
    return 0;
  }
  if (mu_duration_parse(ttl, &ms, err) != 0) return mu_err_prefix(err, "ttl");
  if (ms <= 0) return mu_err_set(err, MU_EINVAL, "ttl '%s': must be positive", ttl);
  *ret_expires_at_ms = now_ms + ms;
  return 0;
}

char *mu_token_to_json(const mu_token_record *rec) {
  char hex[MU_TOKEN_HASH_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, rec->hash, sizeof rec->hash);
  json_t *o =
      json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:s,s:s}", "v", 1, "id", rec->id, "name", rec->name, "role",
                rec->role, "scope", rec->scope, "types", rec->types, "created_at_ms", (json_int_t)rec->created_at_ms,
                "created_by", rec->created_by, "expires_at_ms", (json_int_t)rec->expires_at_ms, "revoked_at_ms",
                (json_int_t)rec->revoked_at_ms, "revoked_by", rec->revoked_by, "hash", hex);
  if (o == NULL) return NULL;
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

/* Copies string field key of o into dst (size); MU_EINVAL when it is not a string that fits. */
static int get_str(const json_t *o, const char *key, char *dst, size_t size, int required, mu_err *err) {
  const json_t *v = json_object_get(o, key);
  if (v == NULL && !required) {
    dst[0] = '\0';
    return 0;
  }
  if (!json_is_string(v)) return mu_err_set(err, MU_EINVAL, "%s: expected a string", key);
  if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v))
    return mu_err_set(err, MU_EINVAL, "%s: longer than %zu bytes", key, size - 1);
  memcpy(dst, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

static int get_ms(const json_t *o, const char *key, int64_t *dst, mu_err *err) {
  const json_t *v = json_object_get(o, key);
  if (v == NULL) {
    *dst = 0;
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return mu_err_set(err, MU_EINVAL, "%s: expected a non-negative integer", key);
  *dst = (int64_t)json_integer_value(v);
  return 0;
}

int mu_token_from_json(const char *text, size_t len, mu_token_record *ret, mu_err *err) {
  json_error_t jerr;
  json_t *o = json_loadb(text, len, 0, &jerr);
  char hex[MU_TOKEN_HASH_BYTES * 2 + 1];
  size_t hash_len = 0;
  int rc = 0;
  memset(ret, 0, sizeof *ret);
  if (!json_is_object(o)) {
    rc = mu_err_set(err, MU_EINVAL, "not a JSON object (%s)", o ? "wrong type" : jerr.text);
    goto out;
  }
  rc = get_str(o, "id", ret->id, sizeof ret->id, 1, err);
  if (rc == 0) rc = get_str(o, "name", ret->name, sizeof ret->name, 1, err);
  if (rc == 0) rc = get_str(o, "role", ret->role, sizeof ret->role, 1, err);
  if (rc == 0) rc = get_str(o, "scope", ret->scope, sizeof ret->scope, 0, err);
  if (rc == 0) rc = get_str(o, "types", ret->types, sizeof ret->types, 0, err);
  if (rc == 0) rc = get_str(o, "created_by", ret->created_by, sizeof ret->created_by, 0, err);
  if (rc == 0) rc = get_str(o, "revoked_by", ret->revoked_by, sizeof ret->revoked_by, 0, err);
  if (rc == 0) rc = get_str(o, "hash", hex, sizeof hex, 1, err);
  if (rc == 0) rc = get_ms(o, "created_at_ms", &ret->created_at_ms, err);
  if (rc == 0) rc = get_ms(o, "expires_at_ms", &ret->expires_at_ms, err);
  if (rc == 0) rc = get_ms(o, "revoked_at_ms", &ret->revoked_at_ms, err);
  if (rc != 0) goto out;
  if (strlen(ret->id) != MU_TOKEN_ID_LEN || !in_set(ret->id, MU_TOKEN_ID_LEN, id_alphabet)) {
    rc = mu_err_set(err, MU_EINVAL, "id '%s': expected %d of [a-z0-9]", ret->id, MU_TOKEN_ID_LEN);
    goto out;
  }
  rc = mu_token_check_name(ret->name, err);
  if (rc == 0) rc = mu_token_check_types(ret->types, err);
  if (rc != 0) goto out;
  if (sodium_hex2bin(ret->hash, sizeof ret->hash, hex, strlen(hex), NULL, &hash_len, NULL) != 0 ||
      hash_len != sizeof ret->hash)
    rc = mu_err_set(err, MU_EINVAL, "hash: expected %d hex digits", MU_TOKEN_HASH_BYTES * 2);
out:
  json_decref(o);
  return rc;
}
