/* Pushing an image to a registry v2 (see registry_push.h). */
#define _GNU_SOURCE
#include "plugins/container/registry_push.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "plugins/container/image_int.h"
#include "plugins/container/wwwauth.h"

typedef struct pusher {
  const mu_imgref *ref;
  const mu_registry_opts *o;
  char base[MU_IMGREF_NAME_MAX + 16];
  char token[16384];
  bool basic, tried_auth;
  const char *mount_from; /* a repository of the same registry to mount blobs from, or NULL */
} pusher;

typedef struct resp {
  long status;
  char location[2048];
  char digest[80];
  char challenge[2048];
  char body[32768]; /* error text, or the token server's answer */
  size_t body_len;
} resp;

static size_t on_header(char *data, size_t size, size_t n, void *arg) {
  resp *r = arg;
  size_t len = size * n;
  char line[2300];
  size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, data, l);
  line[l] = '\0';
  while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n')) line[--l] = '\0';
  char *colon = strchr(line, ':');
  if (colon == NULL) return len;
  *colon = '\0';
  char *v = colon + 1;
  while (*v == ' ') v++;
  if (strcasecmp(line, "location") == 0) snprintf(r->location, sizeof r->location, "%s", v);
  else if (strcasecmp(line, "docker-content-digest") == 0) snprintf(r->digest, sizeof r->digest, "%.79s", v);
  else if (strcasecmp(line, "www-authenticate") == 0) snprintf(r->challenge, sizeof r->challenge, "%s", v);
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  resp *r = arg;
  size_t len = size * n, room = sizeof r->body - 1 - r->body_len;
  memcpy(r->body + r->body_len, data, len < room ? len : room);
  r->body_len += len < room ? len : room;
  r->body[r->body_len] = '\0';
  return len;
}

typedef struct body {
  FILE *file;      /* a blob */
  const char *mem; /* a manifest */
  size_t len;
  const char *ctype;
} body;

static int once(pusher *p, const char *method, const char *url, const body *b, resp *r, mu_err *err) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "curl_easy_init failed");
  char cerr[CURL_ERROR_SIZE] = "", ct[200];
  struct curl_slist *h = NULL;
  FILE *mem = NULL;
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, p->o->insecure ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "muster-image-build/1");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  if (p->o->ca_file && *p->o->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, p->o->ca_file);
  if (p->token[0]) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, p->token);
  } else if (p->basic && p->o->username) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, p->o->username);
    curl_easy_setopt(c, CURLOPT_PASSWORD, p->o->password ? p->o->password : "");
  }
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  } else if (strcmp(method, "PUT") == 0) {
    /* a blob from its store file, a manifest from memory */
    mem = b && b->file == NULL ? fmemopen((void *)b->mem, b->len, "r") : NULL;
    FILE *in = b && b->file ? b->file : mem;
    if (in == NULL) {
      curl_easy_cleanup(c);
      return mu_err_set(err, MU_EINVAL, "PUT %s: no body", url);
    }
    rewind(in);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READDATA, in);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)b->len);
    snprintf(ct, sizeof ct, "Content-Type: %s", b->ctype ? b->ctype : "application/octet-stream");
    h = curl_slist_append(h, ct);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  }
  CURLcode cc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  if (mem) fclose(mem);
  if (cc != CURLE_OK) return mu_err_set(err, MU_EIO, "%s %s: %s", method, url, cerr[0] ? cerr : curl_easy_strerror(cc));
  return 0;
}

/* A Bearer token for pull,push on the repository, or Basic from now on. */
static int authenticate(pusher *p, const char *challenge, mu_err *err) {
  mu_challenge ch;
  if (challenge[0] == '\0')
    return mu_err_set(err, MU_EPERM, "registry %s: 401 without a WWW-Authenticate challenge", p->ref->registry);
  int rc = mu_challenge_parse(challenge, strlen(challenge), &ch, err);
  if (rc != 0) return mu_err_prefix(err, "registry %s", p->ref->registry);
  if (ch.scheme == MU_AUTH_BASIC) {
    if (p->o->username == NULL)
      return mu_err_set(err, MU_EPERM, "registry %s asks for credentials and none were given", p->ref->registry);
    p->basic = true;
    return 0;
  }
  if (!p->o->insecure && strncmp(ch.realm, "https://", 8) != 0)
    return mu_err_set(err, MU_EPERM, "registry %s: token realm %s is not https", p->ref->registry, ch.realm);
  CURL *c = curl_easy_init();
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "curl_easy_init failed");
  char scope[MU_IMGREF_NAME_MAX + 40], from_scope[MU_IMGREF_NAME_MAX + 40] = "";
  snprintf(scope, sizeof scope, "repository:%s:pull,push", p->ref->repository);
  if (p->mount_from) snprintf(from_scope, sizeof from_scope, "repository:%s:pull", p->mount_from);
  char *es = curl_easy_escape(c, ch.service, 0), *sc = curl_easy_escape(c, scope, 0);
  char *fs = from_scope[0] ? curl_easy_escape(c, from_scope, 0) : NULL;
  char url[2600];
  snprintf(url, sizeof url, "%s%sservice=%s&scope=%s%s%s", ch.realm, strchr(ch.realm, '?') ? "&" : "?", es ? es : "",
           sc ? sc : "", fs ? "&scope=" : "", fs ? fs : ""); /* the base's pull: for mounts */
  curl_free(es);
  curl_free(sc);
  curl_free(fs);
  curl_easy_cleanup(c);
  pusher anon = *p; /* the token request itself: Basic when credentials are given */
  anon.token[0] = '\0';
  anon.basic = p->o->username != NULL;
  resp r;
  rc = once(&anon, "GET", url, NULL, &r, err);
  if (rc != 0) return rc;
  if (r.status != 200)
    return mu_err_set(err, MU_EPERM, "token server %s: HTTP %ld%s", ch.realm, r.status,
                      p->o->username ? " (check the credentials)" : " (no credentials given)");
  json_t *j = json_loads(r.body, 0, NULL);
  const char *t = json_string_value(json_object_get(j, "token"));
  if (t == NULL) t = json_string_value(json_object_get(j, "access_token"));
  if (t == NULL || strlen(t) >= sizeof p->token || strpbrk(t, " \r\n\"\\") != NULL) {
    json_decref(j);
    return mu_err_set(err, MU_EPERM, "token server %s: no usable token in its answer", ch.realm);
  }
  snprintf(p->token, sizeof p->token, "%s", t);
  json_decref(j);
  return 0;
}

/* A request, with one answer to a 401. */
static int request(pusher *p, const char *method, const char *url, const body *b, resp *r, mu_err *err) {
  int rc = once(p, method, url, b, r, err);
  if (rc == 0 && r->status == 401) {
    if (p->tried_auth && (p->token[0] || p->basic))
      return mu_err_set(err, MU_EPERM, "%s %s: 401 with the credentials given (refused)", method, url);
    p->tried_auth = true;
    rc = authenticate(p, r->challenge, err);
    if (rc == 0) rc = once(p, method, url, b, r, err);
    if (rc == 0 && r->status == 401)
      return mu_err_set(err, MU_EPERM, "%s %s: 401 with the credentials given (refused)", method, url);
  }
  return rc;
}

static int push_blob(pusher *p, const char *root, const char *digest, int64_t size, mu_push_result *res, mu_err *err) {
  char url[4096];
  resp r;
  snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", p->base, p->ref->repository, digest);
  int rc = request(p, "HEAD", url, NULL, &r, err);
  if (rc != 0) return rc;
  if (r.status == 200) {
    res->blobs_present++;
    return 0;
  }
  /* a blob of the base image: mounted from its repository when the registry has it there
   * (201); a 202 starts an ordinary upload; anything else (no access to the base's
   * repository) falls back to a plain upload */
  bool have_upload = false;
  if (p->mount_from && strcmp(p->mount_from, p->ref->repository) != 0) {
    snprintf(url, sizeof url, "%s/v2/%s/blobs/uploads/?mount=%s&from=%s", p->base, p->ref->repository, digest,
             p->mount_from);
    rc = once(p, "POST", url, NULL, &r, err);
    if (rc != 0) return rc;
    if (r.status == 201) {
      res->blobs_mounted++;
      return 0;
    }
    have_upload = r.status == 202 && r.location[0] != '\0';
  }
  snprintf(url, sizeof url, "%s/v2/%s/blobs/uploads/", p->base, p->ref->repository);
  if (!have_upload) {
    rc = request(p, "POST", url, NULL, &r, err);
    if (rc != 0) return rc;
  }
  if (r.status != 202 || r.location[0] == '\0')
    return mu_err_set(err, MU_EIO, "POST %s: HTTP %ld %.200s", url, r.status, r.body);
  char put[4096 + 128];
  if (strncmp(r.location, "http", 4) == 0)
    snprintf(put, sizeof put, "%s%sdigest=%s", r.location, strchr(r.location, '?') ? "&" : "?", digest);
  else snprintf(put, sizeof put, "%s%s%sdigest=%s", p->base, r.location, strchr(r.location, '?') ? "&" : "?", digest);
  if (strncmp(put, p->base, strlen(p->base)) != 0)
    return mu_err_set(err, MU_EPERM, "upload location %s is on another host (refused)", r.location);
  char path[PATH_MAX];
  mu_store_blob_path(root, digest, path, sizeof path);
  FILE *f = fopen(path, "rbe");
  if (f == NULL) return mu_err_set(err, MU_ENOENT, "blob %s is not in the store", digest);
  body b = {.file = f, .len = (size_t)size};
  rc = request(p, "PUT", put, &b, &r, err);
  fclose(f);
  if (rc != 0) return rc;
  if (r.status != 201) return mu_err_set(err, MU_EIO, "PUT blob %s: HTTP %ld %.200s", digest, r.status, r.body);
  res->blobs_uploaded++;
  res->bytes_uploaded += (uint64_t)size;
  return 0;
}

int mu_registry_push(const char *root, const char *manifest_digest, const mu_imgref *ref, const char *mount_from,
                     const mu_registry_opts *opts, mu_push_result *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  mu_registry_global_init();
  pusher p = {.ref = ref, .o = opts, .mount_from = mount_from};
  snprintf(p.base, sizeof p.base, "%s://%s", opts->insecure ? "http" : "https", ref->registry);
  char *man = NULL;
  size_t len = 0;
  int rc = mu_store_read_blob(root, manifest_digest, &man, &len, err);
  if (rc != 0) return rc;
  mu_manifest m;
  rc = mu_image_manifest_parse(man, len, &m, err);
  for (size_t i = 0; rc == 0 && i < m.n_layers; i++)
    rc = push_blob(&p, root, m.layers[i].digest, m.layers[i].size, ret, err);
  if (rc == 0) rc = push_blob(&p, root, m.config.digest, m.config.size, ret, err);
  if (rc == 0) {
    char url[4096];
    resp r;
    snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", p.base, ref->repository,
             ref->tag[0] ? ref->tag : manifest_digest);
    body b = {.mem = man, .len = len, .ctype = MU_MT_OCI_MANIFEST};
    rc = request(&p, "PUT", url, &b, &r, err);
    if (rc == 0 && r.status != 201) rc = mu_err_set(err, MU_EIO, "PUT %s: HTTP %ld %.300s", url, r.status, r.body);
    if (rc == 0 && r.digest[0] && strcmp(r.digest, manifest_digest) != 0)
      rc = mu_err_set(err, MU_EIO, "PUT %s: the registry stored %s, not %s", url, r.digest, manifest_digest);
  }
  explicit_bzero(p.token, sizeof p.token);
  free(man);
  return rc;
}
