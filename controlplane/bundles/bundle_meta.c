/* A stored bundle's meta: deep copy, free, and the JSON form the etcd store keeps at
 * <prefix>bundles/<digest>/meta (and followers read from their watch). See bundle_store.h. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/bundles/bundle_store.h"

mu_bundle_meta *mu_bundle_meta_dup(const mu_bundle_meta *m) {
  mu_bundle_meta *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  *c = *m;
  c->name = strdup(m->name ? m->name : "");
  c->version = strdup(m->version ? m->version : "");
  c->sig = NULL;
  if (m->sig != NULL && m->sig_len > 0) {
    c->sig = malloc(m->sig_len);
    if (c->sig != NULL) memcpy(c->sig, m->sig, m->sig_len);
  }
  if (c->name == NULL || c->version == NULL || (m->sig_len > 0 && c->sig == NULL)) {
    mu_bundle_meta_free(c);
    return NULL;
  }
  return c;
}

void mu_bundle_meta_free(mu_bundle_meta *m) {
  if (m == NULL) return;
  free(m->name);
  free(m->version);
  free(m->sig);
  free(m);
}

char *mu_bundle_meta_to_json(const mu_bundle_meta *m, size_t chunks, size_t chunk_size) {
  char *sig = NULL;
  if (m->sig != NULL && m->sig_len > 0) {
    size_t n = sodium_base64_encoded_len(m->sig_len, sodium_base64_VARIANT_ORIGINAL);
    sig = malloc(n);
    if (sig == NULL) return NULL;
    sodium_bin2base64(sig, n, m->sig, m->sig_len, sodium_base64_VARIANT_ORIGINAL);
  }
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "digest", m->digest, "name",
                        m->name ? m->name : "", "version", m->version ? m->version : "", "key_id", m->key_id, "size",
                        (json_int_t)m->size, "uploaded_at_ms", (json_int_t)m->uploaded_at_ms, "sig", sig ? sig : "",
                        "chunks", (json_int_t)chunks, "chunk_size", (json_int_t)chunk_size);
  free(sig);
  if (o == NULL) return NULL;
  char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  return text;
}

int mu_bundle_meta_from_json(const char *json, size_t len, const char *want_digest, mu_bundle_meta **ret_meta,
                             size_t *ret_chunks, size_t *ret_chunk_size, mu_err *err) {
  json_error_t jerr;
  json_t *o = json_loadb(json, len, 0, &jerr);
  const char *digest = NULL, *name = NULL, *version = NULL, *key_id = NULL, *sig = NULL;
  json_int_t size = -1, at = 0, chunks = -1, chunk_size = 0;
  mu_bundle_meta *m = NULL;
  int rc;
  if (o == NULL) {
    rc = mu_err_set(err, MU_EINVAL, "not JSON (%s)", jerr.text);
    goto fail;
  }
  if (json_unpack_ex(o, &jerr, 0, "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "digest", &digest, "name", &name,
                     "version", &version, "key_id", &key_id, "size", &size, "uploaded_at_ms", &at, "sig", &sig,
                     "chunks", &chunks, "chunk_size", &chunk_size) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "bad meta: %s", jerr.text);
    goto fail;
  }
  rc = mu_bundle_digest_check(digest, err);
  if (rc != 0) goto fail;
  if (want_digest != NULL && strcmp(digest, want_digest) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "meta names digest %s", digest);
    goto fail;
  }
  if (size < 0 || chunks < 0 || chunk_size <= 0 || strlen(key_id) >= MU_KEY_ID_SIZE ||
      (uint64_t)chunks != ((uint64_t)size + (uint64_t)chunk_size - 1) / (uint64_t)chunk_size) {
    rc = mu_err_set(err, MU_EINVAL, "inconsistent meta: size %lld, %lld chunks of %lld bytes", (long long)size,
                    (long long)chunks, (long long)chunk_size);
    goto fail;
  }
  m = calloc(1, sizeof *m);
  if (m != NULL) m->name = strdup(name);
  if (m != NULL && m->name != NULL) m->version = strdup(version);
  if (m == NULL || m->name == NULL || m->version == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  snprintf(m->digest, sizeof m->digest, "%s", digest);
  snprintf(m->key_id, sizeof m->key_id, "%s", key_id);
  m->size = (uint64_t)size;
  m->uploaded_at_ms = (int64_t)at;
  size_t sig_b64 = strlen(sig);
  if (sig_b64 > 0) {
    m->sig = malloc(sig_b64);
    if (m->sig == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto fail;
    }
    if (sodium_base642bin(m->sig, sig_b64, sig, sig_b64, NULL, &m->sig_len, NULL, sodium_base64_VARIANT_ORIGINAL) !=
        0) {
      rc = mu_err_set(err, MU_EINVAL, "sig: not base64");
      goto fail;
    }
  }
  json_decref(o);
  if (ret_chunks) *ret_chunks = (size_t)chunks;
  if (ret_chunk_size) *ret_chunk_size = (size_t)chunk_size;
  *ret_meta = m;
  return 0;
fail:
  mu_bundle_meta_free(m);
  json_decref(o);
  return rc;
}
