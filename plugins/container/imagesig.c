/* Image signatures as bytes: the canonical payload, the signed envelope, the artifact manifest
 * that carries envelopes as layers, a referrers index, and one envelope's verdict (imagesig.h).
 * Everything here parses untrusted registry bytes: bounded, strict, no I/O. */
#define _GNU_SOURCE
#include "plugins/container/imagesig.h"

#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_names[] = {
    [MU_IMAGESIG_OK] = "ok",
    [MU_IMAGESIG_ERROR] = "error",
    [MU_IMAGESIG_UNSIGNED] = "unsigned",
    [MU_IMAGESIG_MALFORMED] = "malformed",
    [MU_IMAGESIG_UNTRUSTED] = "untrusted",
    [MU_IMAGESIG_BAD_SIGNATURE] = "bad-signature",
    [MU_IMAGESIG_WRONG_REPOSITORY] = "wrong-repository",
    [MU_IMAGESIG_WRONG_DIGEST] = "wrong-digest",
    [MU_IMAGESIG_EXPIRED] = "expired",
};

const char *mu_imagesig_status_name(mu_imagesig_status s) {
  return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "unknown";
}

bool mu_imagesig_status_better(mu_imagesig_status a, mu_imagesig_status b) {
  if (b == MU_IMAGESIG_OK) return false;
  if (a == MU_IMAGESIG_OK) return true;
  return a > b;
}

/* Bytes a registry/repository name or a digest may hold (the reference grammar's). */
static bool name_ok(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) >= MU_IMAGESIG_NAME_MAX) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._-/:[]", *p)))
      return false;
  return true;
}

int mu_imagesig_payload_format(const mu_imagesig_payload *p, char *buf, size_t cap, mu_err *err) {
  if (!mu_digest_valid(p->digest)) return mu_err_set(err, MU_EINVAL, "payload: manifest is not sha256:<64 hex>");
  if (!name_ok(p->repository))
    return mu_err_set(err, MU_EINVAL, "payload: repository \"%.80s\" is not registry/repository", p->repository);
  int n = snprintf(buf, cap, "{\"expires\":%" PRId64 ",\"manifest\":\"%s\",\"repository\":\"%s\",\"type\":\"%s\"}",
                   p->expires, p->digest, p->repository, MU_IMAGESIG_PAYLOAD_TYPE);
  if (n < 0 || (size_t)n >= cap) return mu_err_set(err, MU_ENOSPC, "payload over %zu bytes", cap);
  return n;
}

int mu_imagesig_payload_parse(const char *text, size_t len, mu_imagesig_payload *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  if (len > MU_IMAGESIG_MAX_PAYLOAD)
    return mu_err_set(err, MU_EINVAL, "payload of %zu bytes is over %d", len, MU_IMAGESIG_MAX_PAYLOAD);
  json_error_t je;
  json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  int rc = 0;
  json_t *exp = json_object_get(o, "expires");
  const char *man = json_string_value(json_object_get(o, "manifest"));
  const char *repo = json_string_value(json_object_get(o, "repository"));
  const char *type = json_string_value(json_object_get(o, "type"));
  if (!json_is_object(o) || json_object_size(o) != 4 || !json_is_integer(exp) || man == NULL || repo == NULL ||
      type == NULL) {
    rc = mu_err_set(err, MU_EINVAL, "payload is not {expires, manifest, repository, type}");
    goto done;
  }
  if (strcmp(type, MU_IMAGESIG_PAYLOAD_TYPE) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "payload type \"%.60s\" is not %s", type, MU_IMAGESIG_PAYLOAD_TYPE);
    goto done;
  }
  if (!mu_digest_valid(man) || !name_ok(repo)) {
    rc = mu_err_set(err, MU_EINVAL, "payload: bad manifest digest or repository");
    goto done;
  }
  snprintf(ret->digest, sizeof ret->digest, "%s", man);
  snprintf(ret->repository, sizeof ret->repository, "%s", repo);
  ret->expires = json_integer_value(exp);
  /* only the canonical bytes: what was signed is what is read */
  char canon[MU_IMAGESIG_MAX_PAYLOAD + 1];
  int n = mu_imagesig_payload_format(ret, canon, sizeof canon, err);
  if (n < 0) {
    rc = n;
    goto done;
  }
  if ((size_t)n != len || memcmp(canon, text, len) != 0) rc = mu_err_set(err, MU_EINVAL, "payload is not canonical");
done:
  if (rc != 0) memset(ret, 0, sizeof *ret);
  json_decref(o);
  return rc;
}

static char *b64(const uint8_t *data, size_t len) {
  size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
  char *out = malloc(cap);
  if (out != NULL) sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
  return out;
}

int mu_imagesig_envelope_make(const mu_seckey *sk, const mu_imagesig_payload *p, char **ret, size_t *ret_len,
                              mu_err *err) {
  *ret = NULL;
  char payload[MU_IMAGESIG_MAX_PAYLOAD + 1];
  int n = mu_imagesig_payload_format(p, payload, sizeof payload, err);
  if (n < 0) return n;
  mu_sig sig;
  int rc = mu_sign(sk, (const uint8_t *)payload, (size_t)n, &sig, err);
  if (rc != 0) return rc;
  char *pb = b64((const uint8_t *)payload, (size_t)n), *sb = b64(sig.sig, sizeof sig.sig);
  char *out = NULL;
  int len =
      pb && sb ? asprintf(&out, "{\"key_id\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", sig.key_id, pb, sb) : -1;
  free(pb);
  free(sb);
  if (len < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  *ret = out;
  *ret_len = (size_t)len;
  return 0;
}

static mu_imagesig_status info_set(mu_imagesig_info *ret, mu_imagesig_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static mu_imagesig_status info_set(mu_imagesig_info *ret, mu_imagesig_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ret->msg, sizeof ret->msg, fmt, ap);
  va_end(ap);
  ret->status = s;
  return s;
}

static void utc(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) snprintf(out, 32, "%" PRId64, t);
}

static bool key_id_ok(const char *s) {
  if (s == NULL || strlen(s) != MU_KEY_ID_SIZE - 1) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

mu_imagesig_status mu_imagesig_envelope_verify(const char *blob, size_t len, const mu_trust_set *trust,
                                               const char *repository, const char *digest, int64_t now,
                                               mu_imagesig_info *ret) {
  memset(ret, 0, sizeof *ret);
  if (len > MU_IMAGESIG_MAX_BLOB)
    return info_set(ret, MU_IMAGESIG_MALFORMED, "signature envelope of %zu bytes is over %d", len,
                    MU_IMAGESIG_MAX_BLOB);
  json_error_t je;
  json_t *o = json_loadb(blob, len, JSON_REJECT_DUPLICATES, &je);
  const char *kid = json_string_value(json_object_get(o, "key_id"));
  const char *pb = json_string_value(json_object_get(o, "payload"));
  const char *sb = json_string_value(json_object_get(o, "signature"));
  uint8_t payload[MU_IMAGESIG_MAX_PAYLOAD];
  size_t plen = 0, slen = 0;
  mu_sig sig;
  mu_imagesig_status st = MU_IMAGESIG_OK;
  if (!json_is_object(o) || json_object_size(o) != 3 || !key_id_ok(kid) || pb == NULL || sb == NULL) {
    st = info_set(ret, MU_IMAGESIG_MALFORMED, "signature envelope is not {key_id, payload, signature}");
    goto done;
  }
  snprintf(ret->key_id, sizeof ret->key_id, "%s", kid);
  if (sodium_base642bin(payload, sizeof payload, pb, strlen(pb), NULL, &plen, NULL, sodium_base64_VARIANT_ORIGINAL) !=
          0 ||
      sodium_base642bin(sig.sig, sizeof sig.sig, sb, strlen(sb), NULL, &slen, NULL, sodium_base64_VARIANT_ORIGINAL) !=
          0 ||
      slen != sizeof sig.sig) {
    st = info_set(ret, MU_IMAGESIG_MALFORMED, "signature by key %s: bad base64 or length", kid);
    goto done;
  }
  mu_err perr = {0};
  if (mu_imagesig_payload_parse((const char *)payload, plen, &ret->payload, &perr) != 0) {
    st = info_set(ret, MU_IMAGESIG_MALFORMED, "signature by key %s: %s", kid, perr.msg);
    goto done;
  }
  const mu_pubkey *pk = trust ? mu_trust_set_find(trust, kid) : NULL;
  if (pk == NULL) {
    st = info_set(ret, MU_IMAGESIG_UNTRUSTED, "signed by key %s, which is not trusted here", kid);
    goto done;
  }
  snprintf(sig.key_id, sizeof sig.key_id, "%s", kid);
  if (mu_sig_verify(pk, &sig, payload, plen, &perr) != 0) {
    st = info_set(ret, MU_IMAGESIG_BAD_SIGNATURE, "signature by key %s does not verify (tampered payload)", kid);
    goto done;
  }
  if (strcmp(ret->payload.digest, digest) != 0) {
    st = info_set(ret, MU_IMAGESIG_WRONG_DIGEST, "signature by key %s is over %s, not %s", kid, ret->payload.digest,
                  digest);
    goto done;
  }
  if (strcmp(ret->payload.repository, repository) != 0) {
    st = info_set(ret, MU_IMAGESIG_WRONG_REPOSITORY, "signature by key %s is for repository %s, not %s", kid,
                  ret->payload.repository, repository);
    goto done;
  }
  char when[32];
  utc(ret->payload.expires, when);
  if (ret->payload.expires <= now) {
    st = info_set(ret, MU_IMAGESIG_EXPIRED, "signature by key %s expired at %s", kid, when);
    goto done;
  }
  st = info_set(ret, MU_IMAGESIG_OK, "signed by key %s until %s", kid, when);
done:
  json_decref(o);
  return st;
}

static const char *str_of(json_t *obj, const char *key) { return json_string_value(json_object_get(obj, key)); }

static int descriptor_parse(json_t *d, const char *what, mu_descriptor *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  const char *digest = str_of(d, "digest"), *mt = str_of(d, "mediaType");
  json_t *size = json_object_get(d, "size");
  if (!json_is_object(d) || !mu_digest_valid(digest) || !json_is_integer(size) || json_integer_value(size) < 0 ||
      mt == NULL || strlen(mt) >= sizeof ret->media_type)
    return mu_err_set(err, MU_EINVAL, "%s: not a descriptor {mediaType, digest sha256:<hex>, size}", what);
  snprintf(ret->media_type, sizeof ret->media_type, "%s", mt);
  snprintf(ret->digest, sizeof ret->digest, "%s", digest);
  ret->size = json_integer_value(size);
  return 0;
}

static json_t *load_object(const char *body, size_t len, mu_err *err) {
  if (len > MU_MANIFEST_MAX_BYTES) {
    mu_err_set(err, MU_EINVAL, "document of %zu bytes is over the %u-byte bound", len, MU_MANIFEST_MAX_BYTES);
    return NULL;
  }
  json_error_t je;
  json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(o)) {
    mu_err_set(err, MU_EINVAL, "not a JSON object%s%s", o ? "" : ": ", o ? "" : je.text);
    json_decref(o);
    return NULL;
  }
  return o;
}

int mu_imagesig_artifact_parse(const char *body, size_t len, mu_imagesig_artifact *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_t *o = load_object(body, len, err);
  if (o == NULL) return MU_EINVAL;
  int rc = 0;
  const char *mt = str_of(o, "mediaType"), *at = str_of(o, "artifactType");
  json_t *layers = json_object_get(o, "layers");
  if (mt != NULL && strcmp(mt, MU_MT_OCI_MANIFEST) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "signature artifact: mediaType %.100s is not an OCI image manifest", mt);
    goto done;
  }
  if (at == NULL || strcmp(at, MU_IMAGESIG_ARTIFACT_TYPE) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "not a muster signature artifact (artifactType %.100s)", at ? at : "missing");
    goto done;
  }
  rc = descriptor_parse(json_object_get(o, "subject"), "signature artifact: subject", &ret->subject, err);
  if (rc != 0) goto done;
  if (!json_is_array(layers)) {
    rc = mu_err_set(err, MU_EINVAL, "signature artifact: layers missing");
    goto done;
  }
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) {
    const char *lmt = str_of(l, "mediaType");
    if (lmt == NULL || strcmp(lmt, MU_IMAGESIG_MEDIA_TYPE) != 0) continue;
    if (ret->n_layers == MU_IMAGESIG_MAX_LAYERS) {
      rc = mu_err_set(err, MU_EINVAL, "signature artifact: more than %d signatures", MU_IMAGESIG_MAX_LAYERS);
      goto done;
    }
    mu_imagesig_layer *sl = &ret->layers[ret->n_layers];
    rc = descriptor_parse(l, "signature artifact: layer", &sl->desc, err);
    if (rc != 0) goto done;
    if (sl->desc.size > MU_IMAGESIG_MAX_BLOB) {
      rc = mu_err_set(err, MU_EINVAL, "signature artifact: a signature of %lld bytes (over %d)",
                      (long long)sl->desc.size, MU_IMAGESIG_MAX_BLOB);
      goto done;
    }
    const char *kid = str_of(json_object_get(l, "annotations"), MU_IMAGESIG_KEY_ANNOTATION);
    if (key_id_ok(kid)) snprintf(sl->key_id, sizeof sl->key_id, "%s", kid);
    ret->n_layers++;
  }
done:
  if (rc != 0) memset(ret, 0, sizeof *ret);
  json_decref(o);
  return rc;
}

static json_t *descriptor_json(const mu_descriptor *d) {
  return json_pack("{s:s, s:s, s:I}", "mediaType", d->media_type, "digest", d->digest, "size", (json_int_t)d->size);
}

int mu_imagesig_artifact_format(const mu_imagesig_artifact *a, int64_t created, char **ret, size_t *ret_len,
                                mu_err *err) {
  *ret = NULL;
  char when[32];
  utc(created, when);
  json_t *layers = json_array();
  for (size_t i = 0; layers != NULL && i < a->n_layers; i++) {
    json_t *d = descriptor_json(&a->layers[i].desc);
    if (d != NULL && a->layers[i].key_id[0])
      json_object_set_new(d, "annotations", json_pack("{s:s}", MU_IMAGESIG_KEY_ANNOTATION, a->layers[i].key_id));
    json_array_append_new(layers, d);
  }
  json_t *o =
      json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:o, s:o, s:{s:s}}", "schemaVersion", 2, "mediaType",
                MU_MT_OCI_MANIFEST, "artifactType", MU_IMAGESIG_ARTIFACT_TYPE, "config", "mediaType",
                MU_IMAGESIG_EMPTY_TYPE, "digest", MU_IMAGESIG_EMPTY_DIGEST, "size", 2, "layers", layers, "subject",
                descriptor_json(&a->subject), "annotations", "org.opencontainers.image.created", when);
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  *ret = s;
  *ret_len = strlen(s);
  return 0;
}

int mu_imagesig_referrers_parse(const char *body, size_t len, mu_descriptor *ret, size_t max, size_t *ret_n,
                                size_t *ret_skipped, mu_err *err) {
  *ret_n = *ret_skipped = 0;
  json_t *o = load_object(body, len, err);
  if (o == NULL) return MU_EINVAL;
  json_t *ms = json_object_get(o, "manifests");
  int rc = 0;
  if (!json_is_array(ms)) {
    rc = mu_err_set(err, MU_EINVAL, "referrers: not an image index (no manifests list)");
    goto done;
  }
  size_t i;
  json_t *m;
  json_array_foreach(ms, i, m) {
    const char *at = str_of(m, "artifactType");
    if (at == NULL || strcmp(at, MU_IMAGESIG_ARTIFACT_TYPE) != 0) continue;
    mu_descriptor d;
    mu_err derr = {0};
    if (descriptor_parse(m, "referrer", &d, &derr) != 0) continue; /* one bad entry hides no good one */
    if (*ret_n == max) {
      (*ret_skipped)++;
      continue;
    }
    ret[(*ret_n)++] = d;
  }
done:
  json_decref(o);
  return rc;
}

void mu_imagesig_fallback_tag(const char *digest, char out[80]) {
  snprintf(out, 80, "sha256-%.64s.sig", strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest);
}
