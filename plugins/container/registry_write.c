/* Registry v2 writes and small reads (see registry_write.h). Uploads are monolithic: one POST
 * for an upload session, one PUT with every byte and the digest (distribution-spec "pushing a
 * blob monolithically"); signatures and configs are small, layers go through the same path. */
#include "plugins/container/registry_write.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/container/manifest.h"

void mu_registry_sha256(const void *data, size_t len, char out[72]) {
  unsigned char h[32];
  unsigned int hl = 0;
  EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL);
  mu_sha256_format(h, out);
}

static const char *repo_of(mu_registry *r) { return mu_registry_ref(r)->repository; }

int mu_registry_blob_exists(mu_registry *r, const char *digest, bool *ret_exists, mu_err *err) {
  *ret_exists = false;
  if (!mu_digest_valid(digest)) return mu_err_set(err, MU_EINVAL, "bad blob digest %.80s", digest);
  char path[600], what[700];
  snprintf(path, sizeof path, "/v2/%s/blobs/%s", repo_of(r), digest);
  snprintf(what, sizeof what, "blob %s in %s", digest, repo_of(r));
  mu_registry_req q = {.method = "HEAD", .path = path};
  mu_registry_resp resp;
  int rc = mu_registry_request(r, &q, &resp, err);
  if (rc == 0 && resp.status == 200) *ret_exists = true;
  else if (rc == 0 && resp.status != 404) rc = mu_registry_status_error(r, what, resp.status, resp.errbody, err);
  mu_registry_resp_free(&resp);
  return rc;
}

/* The upload URL with "digest=" appended (the Location may carry a query already). */
static int put_url(mu_registry *r, const char *location, const char *digest, char *buf, size_t cap, mu_err *err) {
  if (location[0] == '\0')
    return mu_err_set(err, MU_EIO, "registry %s: blob upload: no Location in the answer", mu_registry_ref(r)->registry);
  int n = snprintf(buf, cap, "%s%sdigest=%s", location, strchr(location, '?') ? "&" : "?", digest);
  if (n < 0 || (size_t)n >= cap)
    return mu_err_set(err, MU_EINVAL, "registry %s: upload location too long", mu_registry_ref(r)->registry);
  return 0;
}

int mu_registry_put_blob(mu_registry *r, const void *data, size_t len, const char *mount_from, mu_blob_put_how *ret_how,
                         mu_err *err) {
  char digest[72];
  mu_registry_sha256(data, len, digest);
  bool exists = false;
  int rc = mu_registry_blob_exists(r, digest, &exists, err);
  if (rc != 0) return rc;
  if (exists) {
    if (ret_how) *ret_how = MU_BLOB_EXISTED;
    return 0;
  }
  char path[1200], what[700];
  snprintf(what, sizeof what, "blob upload %s to %s", digest, repo_of(r));
  if (mount_from != NULL && *mount_from && strcmp(mount_from, repo_of(r)) != 0)
    snprintf(path, sizeof path, "/v2/%s/blobs/uploads/?mount=%s&from=%s", repo_of(r), digest, mount_from);
  else snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", repo_of(r));
  mu_registry_req post = {.method = "POST", .path = path};
  mu_registry_resp resp;
  rc = mu_registry_request(r, &post, &resp, err);
  if (rc != 0) goto done;
  if (resp.status == 201) { /* mounted */
    if (ret_how) *ret_how = MU_BLOB_MOUNTED;
    goto done;
  }
  if (resp.status != 202) {
    rc = mu_registry_status_error(r, what, resp.status, resp.errbody, err);
    goto done;
  }
  char url[2200];
  rc = put_url(r, resp.location, digest, url, sizeof url, err);
  mu_registry_resp_free(&resp);
  if (rc != 0) return rc;
  static const char *const octet[] = {"Content-Type: application/octet-stream", NULL};
  mu_registry_req put = {.method = "PUT", .path = url, .headers = octet, .body = data, .body_len = len};
  rc = mu_registry_request(r, &put, &resp, err);
  if (rc == 0 && resp.status != 201) rc = mu_registry_status_error(r, what, resp.status, resp.errbody, err);
  if (rc == 0 && resp.digest[0] && strcmp(resp.digest, digest) != 0)
    rc = mu_err_set(err, MU_EIO, "registry %s: %s: the registry stored %s", mu_registry_ref(r)->registry, what,
                    resp.digest);
  if (rc == 0 && ret_how) *ret_how = MU_BLOB_UPLOADED;
done:
  mu_registry_resp_free(&resp);
  return rc;
}

int mu_registry_put_manifest(mu_registry *r, const char *reference, const char *media_type, const char *body,
                             size_t len, mu_err *err) {
  char path[800], what[800], ctype[200];
  snprintf(path, sizeof path, "/v2/%s/manifests/%s", repo_of(r), reference);
  snprintf(what, sizeof what, "manifest PUT %s:%s", repo_of(r), reference);
  snprintf(ctype, sizeof ctype, "Content-Type: %s", media_type);
  const char *const hdrs[] = {ctype, NULL};
  mu_registry_req q = {.method = "PUT", .path = path, .headers = hdrs, .body = body, .body_len = len};
  mu_registry_resp resp;
  int rc = mu_registry_request(r, &q, &resp, err);
  if (rc == 0 && resp.status != 201) rc = mu_registry_status_error(r, what, resp.status, resp.errbody, err);
  mu_registry_resp_free(&resp);
  return rc;
}

/* The answer's body handed to the caller (an empty one as ""). */
static int take_body(mu_registry_resp *resp, char **ret, size_t *ret_len, mu_err *err) {
  char *body = resp->body;
  if (body == NULL) body = calloc(1, 1);
  if (body == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  *ret = body;
  *ret_len = resp->len;
  resp->body = NULL;
  return 0;
}

int mu_registry_get_blob_mem(mu_registry *r, const char *digest, size_t max, char **ret, size_t *ret_len, mu_err *err) {
  *ret = NULL;
  *ret_len = 0;
  if (!mu_digest_valid(digest)) return mu_err_set(err, MU_EINVAL, "bad blob digest %.80s", digest);
  char path[600], what[700];
  snprintf(path, sizeof path, "/v2/%s/blobs/%s", repo_of(r), digest);
  snprintf(what, sizeof what, "blob %s", digest);
  mu_registry_req q = {.method = "GET", .path = path, .max_response = max};
  mu_registry_resp resp;
  int rc = mu_registry_request(r, &q, &resp, err);
  if (rc != 0) goto done;
  if (resp.status != 200) {
    rc = mu_registry_status_error(r, what, resp.status, resp.errbody, err);
    goto done;
  }
  char got[72];
  mu_registry_sha256(resp.body ? resp.body : "", resp.len, got);
  if (strcmp(got, digest) != 0) {
    rc = mu_err_set(err, MU_EIO, "blob %s: content has digest %s (refused)", digest, got);
    goto done;
  }
  rc = take_body(&resp, ret, ret_len, err);
done:
  mu_registry_resp_free(&resp);
  return rc;
}

int mu_registry_get_referrers(mu_registry *r, const char *digest, const char *artifact_type, char **ret,
                              size_t *ret_len, mu_err *err) {
  *ret = NULL;
  *ret_len = 0;
  if (!mu_digest_valid(digest)) return mu_err_set(err, MU_EINVAL, "bad digest %.80s", digest);
  char path[900], what[700], at[300];
  size_t n = 0;
  for (const char *p = artifact_type; *p && n + 4 < sizeof at; p++) { /* '+' would read as a space */
    if (*p == '+') {
      memcpy(at + n, "%2B", 3);
      n += 3;
    } else {
      at[n++] = *p;
    }
  }
  at[n] = '\0';
  snprintf(path, sizeof path, "/v2/%s/referrers/%s?artifactType=%s", repo_of(r), digest, at);
  snprintf(what, sizeof what, "referrers of %s", digest);
  static const char *const accept[] = {"Accept: " MU_MT_OCI_INDEX, NULL};
  mu_registry_req q = {.method = "GET", .path = path, .headers = accept, .max_response = MU_MANIFEST_MAX_BYTES};
  mu_registry_resp resp;
  int rc = mu_registry_request(r, &q, &resp, err);
  if (rc != 0) goto done;
  if (resp.status == 404) {
    rc = mu_err_set(err, MU_ENOTSUP, "registry %s has no referrers API (404)", mu_registry_ref(r)->registry);
    goto done;
  }
  if (resp.status != 200) {
    rc = mu_registry_status_error(r, what, resp.status, resp.errbody, err);
    goto done;
  }
  rc = take_body(&resp, ret, ret_len, err);
done:
  mu_registry_resp_free(&resp);
  return rc;
}
