/* Image signatures in a registry: sign (store an envelope as a referrer artifact, or under the
 * fallback tag) and check (find the artifacts, verify their envelopes) (imagesig_registry.h).
 * Only manifests and signature blobs are read here, never an image layer. */
#include "plugins/container/imagesig_registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mu_imagesig_name(const mu_imgref *ref, char out[MU_IMAGESIG_NAME_MAX]) {
  snprintf(out, MU_IMAGESIG_NAME_MAX, "%s/%s", ref->registry, ref->repository);
}

int mu_imagesig_resolve(mu_registry *r, const mu_imgref *ref, mu_descriptor *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  char *body = NULL, ctype[128] = "";
  size_t len = 0;
  int rc = mu_registry_get_manifest(r, mu_imgref_reference(ref), &body, &len, ctype, ret->digest, err);
  if (rc != 0) return rc;
  ctype[strcspn(ctype, "; ")] = '\0';
  if (ctype[0] == '\0' || strcmp(ctype, "application/json") == 0) { /* the body says, else OCI */
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *mt = json_string_value(json_object_get(o, "mediaType"));
    snprintf(ctype, sizeof ctype, "%s", mt && strlen(mt) < sizeof ctype ? mt : MU_MT_OCI_MANIFEST);
    json_decref(o);
  }
  snprintf(ret->media_type, sizeof ret->media_type, "%s", ctype);
  ret->size = (int64_t)len;
  free(body);
  return 0;
}

/* Checks every signature layer of one artifact manifest (bounded by *budget). */
static void check_artifact(mu_registry *r, const char *body, size_t len, const char *where,
                           const mu_imagesig_check_opts *o, size_t *budget, mu_imagesig_verdict *ret) {
  mu_imagesig_artifact *a = malloc(sizeof *a);
  mu_err e = {0};
  mu_imagesig_info info;
  memset(&info, 0, sizeof info);
  if (a == NULL) return;
  if (mu_imagesig_artifact_parse(body, len, a, &e) != 0) {
    info.status = MU_IMAGESIG_MALFORMED;
    snprintf(info.msg, sizeof info.msg, "%s: %s", where, e.msg);
    if (mu_imagesig_status_better(info.status, ret->best.status)) ret->best = info;
    goto done;
  }
  if (strcmp(a->subject.digest, ret->subject.digest) != 0) {
    info.status = MU_IMAGESIG_WRONG_DIGEST;
    snprintf(info.msg, sizeof info.msg, "%s is attached to %s, not %s", where, a->subject.digest, ret->subject.digest);
    if (mu_imagesig_status_better(info.status, ret->best.status)) ret->best = info;
    goto done;
  }
  for (size_t i = 0; i < a->n_layers && ret->best.status != MU_IMAGESIG_OK; i++) {
    if (*budget == 0) {
      ret->n_skipped++;
      continue;
    }
    (*budget)--;
    char *blob = NULL;
    size_t blen = 0;
    memset(&info, 0, sizeof info);
    if (mu_registry_get_blob_mem(r, a->layers[i].desc.digest, MU_IMAGESIG_MAX_BLOB, &blob, &blen, &e) != 0) {
      info.status = e.code == MU_EPERM || e.code == MU_ETIMEDOUT ? MU_IMAGESIG_ERROR : MU_IMAGESIG_MALFORMED;
      snprintf(info.msg, sizeof info.msg, "signature blob: %s", e.msg);
    } else {
      mu_imagesig_envelope_verify(blob, blen, o->trust, ret->name, ret->subject.digest, o->now, &info);
      ret->n_checked++;
    }
    free(blob);
    if (ret->best.status == MU_IMAGESIG_UNSIGNED || mu_imagesig_status_better(info.status, ret->best.status))
      ret->best = info;
  }
done:
  free(a);
}

mu_imagesig_status mu_imagesig_check_subject(mu_registry *r, const mu_imgref *ref, const mu_descriptor *subject,
                                             const mu_imagesig_check_opts *opts, mu_imagesig_verdict *ret) {
  memset(ret, 0, sizeof *ret);
  mu_imagesig_check_opts o = *opts;
  if (o.now == 0) o.now = (int64_t)time(NULL);
  if (o.max_signatures == 0) o.max_signatures = MU_IMAGESIG_DEFAULT_MAX;
  ret->subject = *subject;
  mu_imagesig_name(ref, ret->name);
  ret->best.status = MU_IMAGESIG_UNSIGNED;
  size_t budget = o.max_signatures;
  mu_err e = {0};
  char *body = NULL;
  size_t len = 0;
  mu_descriptor *arts = calloc(o.max_signatures, sizeof *arts);
  size_t n_arts = 0, skipped = 0;
  if (arts == NULL) {
    ret->status = MU_IMAGESIG_ERROR;
    snprintf(ret->msg, sizeof ret->msg, "out of memory");
    return ret->status;
  }
  int rc = mu_registry_get_referrers(r, subject->digest, MU_IMAGESIG_ARTIFACT_TYPE, &body, &len, &e);
  if (rc == 0) {
    snprintf(ret->found_via, sizeof ret->found_via, "referrers API");
    if (mu_imagesig_referrers_parse(body, len, arts, o.max_signatures, &n_arts, &skipped, &e) != 0) {
      ret->best.status = MU_IMAGESIG_MALFORMED;
      snprintf(ret->best.msg, sizeof ret->best.msg, "referrers of %s: %s", subject->digest, e.msg);
    }
    ret->n_skipped += skipped;
    for (size_t i = 0; i < n_arts && ret->best.status != MU_IMAGESIG_OK; i++) {
      char *ab = NULL, ctype[128], digest[72];
      size_t alen = 0;
      char where[120];
      snprintf(where, sizeof where, "signature artifact %.80s", arts[i].digest);
      if (mu_registry_get_manifest(r, arts[i].digest, &ab, &alen, ctype, digest, &e) != 0) {
        mu_imagesig_info info = {.status = MU_IMAGESIG_MALFORMED};
        snprintf(info.msg, sizeof info.msg, "%s: %s", where, e.msg);
        if (mu_imagesig_status_better(info.status, ret->best.status)) ret->best = info;
      } else {
        check_artifact(r, ab, alen, where, &o, &budget, ret);
      }
      free(ab);
    }
  } else if (rc == MU_ENOTSUP) {
    char tag[80], ctype[128], digest[72], where[120];
    mu_imagesig_fallback_tag(subject->digest, tag);
    snprintf(ret->found_via, sizeof ret->found_via, "tag %s", tag);
    snprintf(where, sizeof where, "signature artifact under tag %s", tag);
    rc = mu_registry_get_manifest(r, tag, &body, &len, ctype, digest, &e);
    if (rc == 0) {
      check_artifact(r, body, len, where, &o, &budget, ret);
    } else if (rc == MU_ENOENT) {
      ret->found_via[0] = '\0';
    } else {
      ret->best.status = MU_IMAGESIG_ERROR;
      snprintf(ret->best.msg, sizeof ret->best.msg, "%s", e.msg);
    }
  } else {
    ret->best.status = MU_IMAGESIG_ERROR;
    snprintf(ret->best.msg, sizeof ret->best.msg, "%s", e.msg);
  }
  free(body);
  free(arts);
  ret->status = ret->best.status;
  if (ret->status == MU_IMAGESIG_UNSIGNED) {
    snprintf(ret->msg, sizeof ret->msg, "%s@%s: no signature (%s)", ret->name, subject->digest,
             rc == 0 ? "no muster referrer" : "no referrers API and no tag sha256-<hex>.sig");
  } else if (ret->status == MU_IMAGESIG_OK)
    snprintf(ret->msg, sizeof ret->msg, "%s@%s: %s (found via %s)", ret->name, subject->digest, ret->best.msg,
             ret->found_via);
  else
    snprintf(ret->msg, sizeof ret->msg, "%s@%s: no valid signature from a trusted key: %s%s", ret->name,
             subject->digest, ret->best.msg,
             ret->n_skipped ? " (more signatures than max_signatures, not checked)" : "");
  return ret->status;
}

mu_imagesig_status mu_imagesig_check(mu_registry *r, const mu_imgref *ref, const mu_imagesig_check_opts *o,
                                     mu_imagesig_verdict *ret) {
  mu_descriptor subject;
  mu_err e = {0};
  if (mu_imagesig_resolve(r, ref, &subject, &e) != 0) {
    memset(ret, 0, sizeof *ret);
    mu_imagesig_name(ref, ret->name);
    ret->status = ret->best.status = MU_IMAGESIG_ERROR;
    snprintf(ret->msg, sizeof ret->msg, "%s", e.msg);
    snprintf(ret->best.msg, sizeof ret->best.msg, "%s", e.msg);
    return ret->status;
  }
  return mu_imagesig_check_subject(r, ref, &subject, o, ret);
}

/* The fallback tag's current artifact, for appending to: its layers other than key_id's
 * (oldest dropped past max - 1). A tag holding something else is not overwritten. */
static int existing_layers(mu_registry *r, const char *tag, const mu_descriptor *subject, const char *key_id,
                           size_t max, mu_imagesig_artifact *a, mu_err *err) {
  char *body = NULL, ctype[128], digest[72];
  size_t len = 0;
  mu_err e = {0};
  int rc = mu_registry_get_manifest(r, tag, &body, &len, ctype, digest, &e);
  if (rc == MU_ENOENT) return 0;
  if (rc != 0) return mu_err_set(err, rc, "%s", e.msg);
  mu_imagesig_artifact *old = malloc(sizeof *old);
  if (old == NULL) {
    free(body);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  rc = mu_imagesig_artifact_parse(body, len, old, &e);
  free(body);
  if (rc != 0) {
    free(old);
    return mu_err_set(err, MU_EEXIST, "tag %s holds something else (%s): not overwritten", tag, e.msg);
  }
  if (strcmp(old->subject.digest, subject->digest) == 0) /* else a stray artifact: replaced */
    for (size_t i = 0; i < old->n_layers; i++)
      if (strcmp(old->layers[i].key_id, key_id) != 0) a->layers[a->n_layers++] = old->layers[i];
  free(old);
  while (a->n_layers >= max) { /* room for ours: the oldest go */
    memmove(&a->layers[0], &a->layers[1], (a->n_layers - 1) * sizeof a->layers[0]);
    a->n_layers--;
  }
  return 0;
}

int mu_imagesig_sign(mu_registry *r, const mu_imgref *ref, const mu_seckey *sk, int64_t expires, size_t max_signatures,
                     mu_imagesig_sign_result *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  if (max_signatures == 0) max_signatures = MU_IMAGESIG_DEFAULT_MAX;
  if (max_signatures > MU_IMAGESIG_MAX_LAYERS) max_signatures = MU_IMAGESIG_MAX_LAYERS;
  char *env = NULL, *man = NULL, *refs = NULL;
  size_t env_len = 0, man_len = 0, refs_len = 0;
  mu_imagesig_artifact *a = calloc(1, sizeof *a);
  if (a == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc = mu_imagesig_resolve(r, ref, &ret->subject, err);
  if (rc != 0) goto done;
  mu_imagesig_payload p = {.expires = expires};
  mu_imagesig_name(ref, p.repository);
  snprintf(p.digest, sizeof p.digest, "%s", ret->subject.digest);
  rc = mu_imagesig_envelope_make(sk, &p, &env, &env_len, err);
  if (rc != 0) goto done;
  rc = mu_registry_put_blob(r, "{}", 2, NULL, NULL, err);
  if (rc != 0) goto done;
  rc = mu_registry_put_blob(r, env, env_len, NULL, &ret->how, err);
  if (rc != 0) goto done;
  mu_imagesig_layer mine = {.desc = {.media_type = MU_IMAGESIG_MEDIA_TYPE, .size = (int64_t)env_len}};
  mu_registry_sha256(env, env_len, mine.desc.digest);
  snprintf(mine.key_id, sizeof mine.key_id, "%s", sk->key_id);
  a->subject = ret->subject;
  mu_err e = {0};
  rc = mu_registry_get_referrers(r, ret->subject.digest, MU_IMAGESIG_ARTIFACT_TYPE, &refs, &refs_len, &e);
  if (rc == MU_ENOTSUP) {
    mu_imagesig_fallback_tag(ret->subject.digest, ret->tag);
    rc = existing_layers(r, ret->tag, &ret->subject, sk->key_id, max_signatures, a, err);
    if (rc != 0) goto done;
  } else if (rc != 0) {
    rc = mu_err_set(err, rc, "%s", e.msg);
    goto done;
  }
  a->layers[a->n_layers++] = mine;
  rc = mu_imagesig_artifact_format(a, (int64_t)time(NULL), &man, &man_len, err);
  if (rc != 0) goto done;
  mu_registry_sha256(man, man_len, ret->artifact_digest);
  rc =
      mu_registry_put_manifest(r, ret->tag[0] ? ret->tag : ret->artifact_digest, MU_MT_OCI_MANIFEST, man, man_len, err);
  if (rc != 0) goto done;
  ret->n_signatures = a->n_layers;
  ret->expires = expires;
  snprintf(ret->key_id, sizeof ret->key_id, "%s", sk->key_id);
done:
  free(env);
  free(man);
  free(refs);
  free(a);
  return rc;
}
