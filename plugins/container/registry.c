/* Registry v2 client (see registry.h). */
#define _GNU_SOURCE
#include "plugins/container/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugins/container/wwwauth.h"

#define MU_TOKEN_MAX 16384

struct mu_registry {
  mu_imgref ref;
  mu_registry_opts opts;
  char base[MU_IMGREF_NAME_MAX + 16]; /* "https://host:port" */
  char token[MU_TOKEN_MAX];           /* Bearer token once obtained */
  bool use_basic;                     /* the registry asked for Basic */
};

int64_t mu_registry_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mu_registry_new(const mu_imgref *ref, const mu_registry_opts *opts, mu_registry **ret, mu_err *err) {
  /* No curl_global_init here: a warm start never talks to the registry, and the first
   * curl_easy_init() does it (the helper is single-threaded). It costs milliseconds (TLS). */
  mu_registry *r = calloc(1, sizeof *r);
  if (r == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  r->ref = *ref;
  r->opts = *opts;
  if (r->opts.stall_ms <= 0) r->opts.stall_ms = 30000;
  snprintf(r->base, sizeof r->base, "%s://%s", opts->insecure ? "http" : "https", ref->registry);
  *ret = r;
  return 0;
}

void mu_registry_global_init(void) {
  static int done;
  if (!done) curl_global_init(CURL_GLOBAL_DEFAULT);
  done = 1;
}

mu_registry *mu_registry_clone(const mu_registry *r) {
  mu_registry *c = malloc(sizeof *c);
  if (c != NULL) memcpy(c, r, sizeof *c);
  return c;
}

void mu_registry_set_progress(mu_registry *r, void (*on_bytes)(void *, uint64_t), void *arg) {
  r->opts.on_bytes = on_bytes;
  r->opts.arg = arg;
}

void mu_registry_free(mu_registry *r) {
  if (r == NULL) return;
  explicit_bzero(r->token, sizeof r->token);
  free(r);
}

/* ---- one request ---- */

typedef struct xfer {
  mu_registry *reg;
  /* memory sink */
  char *buf;
  size_t len, cap, max;
  bool over;
  /* file sink */
  int fd;
  EVP_MD_CTX *md;
  int64_t expect_size, have;
  bool too_big, write_failed;
  /* headers */
  long status;
  char ctype[128];
  char content_digest[80];
  char challenge[2048];
  char location[2048];
  int64_t content_length;      /* -1 unless the answer said */
  int64_t content_range_start; /* -1 unless a 206 said where it starts */
} xfer;

static size_t on_header(char *data, size_t size, size_t n, void *arg) {
  xfer *x = arg;
  size_t len = size * n;
  char line[2300];
  size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, data, l);
  line[l] = '\0';
  while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n')) line[--l] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect or 100): reset */
    x->ctype[0] = x->content_digest[0] = x->challenge[0] = x->location[0] = '\0';
    x->content_range_start = x->content_length = -1;
    return len;
  }
  char *colon = strchr(line, ':');
  if (colon == NULL) return len;
  *colon = '\0';
  char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  if (strcasecmp(line, "content-type") == 0) snprintf(x->ctype, sizeof x->ctype, "%.127s", v);
  else if (strcasecmp(line, "docker-content-digest") == 0)
    snprintf(x->content_digest, sizeof x->content_digest, "%.79s", v);
  else if (strcasecmp(line, "www-authenticate") == 0 && x->challenge[0] == '\0')
    snprintf(x->challenge, sizeof x->challenge, "%.2047s", v);
  else if (strcasecmp(line, "location") == 0) snprintf(x->location, sizeof x->location, "%.2047s", v);
  else if (strcasecmp(line, "content-length") == 0) x->content_length = atoll(v);
  else if (strcasecmp(line, "content-range") == 0) {
    long long from;
    if (sscanf(v, "bytes %lld-", &from) == 1) x->content_range_start = from;
  }
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  xfer *x = arg;
  size_t len = size * n;
  if (x->md == NULL) {
    if (x->len + len > x->max) {
      x->over = true;
      return 0;
    }
    if (x->len + len + 1 > x->cap) {
      size_t cap = x->cap ? x->cap : 16384;
      while (cap < x->len + len + 1) cap *= 2;
      char *nb = realloc(x->buf, cap);
      if (nb == NULL) return 0;
      x->buf = nb;
      x->cap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    x->buf[x->len] = '\0';
  } else {
    if (x->have + (int64_t)len > x->expect_size) {
      x->too_big = true;
      return 0;
    }
    EVP_DigestUpdate(x->md, data, len);
    for (size_t off = 0; off < len;) {
      ssize_t w = write(x->fd, data + off, len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        x->write_failed = true;
        return 0;
      }
      off += (size_t)w;
    }
    x->have += (int64_t)len;
  }
  if (x->reg->opts.on_bytes) x->reg->opts.on_bytes(x->reg->opts.arg, len);
  return len;
}

/* Error bodies are read into memory (bounded) whatever the sink was, to quote them. */
typedef struct gate {
  xfer *x;
  CURL *curl;
  char errbody[512];
  size_t errlen;
} gate;

static size_t on_body_gate(char *data, size_t size, size_t n, void *arg) {
  gate *g = arg;
  long code = 0;
  curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 300) {
    size_t len = size * n, room = sizeof g->errbody - 1 - g->errlen;
    if (len > room) len = room;
    memcpy(g->errbody + g->errlen, data, len);
    g->errlen += len;
    g->errbody[g->errlen] = '\0';
    return size * n;
  }
  return on_body(data, size, n, g->x);
}

static int curl_setup(mu_registry *r, CURL *c, const char *url, gate *g, struct curl_slist *hdrs, const char *range,
                      bool with_auth, mu_err *err) {
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, r->opts.insecure ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, r->opts.insecure ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "muster-container/1");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, g->x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_gate);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)((r->opts.stall_ms + 999) / 1000));
  if (r->opts.ca_file && *r->opts.ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, r->opts.ca_file);
  if (range) curl_easy_setopt(c, CURLOPT_RANGE, range);
  if (r->opts.deadline_ms > 0) {
    int64_t left = r->opts.deadline_ms - mu_registry_now_ms();
    if (left <= 0) return mu_err_set(err, MU_ETIMEDOUT, "pull timeout reached");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
  }
  if (with_auth) {
    if (r->token[0]) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
      curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, r->token);
    } else if (r->use_basic && r->opts.username) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(c, CURLOPT_USERNAME, r->opts.username);
      curl_easy_setopt(c, CURLOPT_PASSWORD, r->opts.password ? r->opts.password : "");
    }
  }
  return 0;
}

/* The method and body of a write (or a HEAD). */
static void request_setup(CURL *c, const mu_registry_req *q) {
  if (strcmp(q->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    return;
  }
  if (strcmp(q->method, "GET") == 0) return;
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body_len ? (const char *)q->body : "");
  if (strcmp(q->method, "POST") != 0) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
}

static int perform_req(mu_registry *r, const char *url, xfer *x, struct curl_slist *hdrs, const char *range,
                       bool with_auth, const mu_registry_req *q, char *errbody, size_t errcap, mu_err *err) {
  CURL *c = curl_easy_init();
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "curl_easy_init failed");
  gate g = {.x = x, .curl = c};
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  x->reg = r;
  x->content_range_start = x->content_length = -1;
  int rc = curl_setup(r, c, url, &g, hdrs, range, with_auth, err);
  if (rc == 0 && q != NULL) request_setup(c, q);
  if (rc != 0) {
    curl_easy_cleanup(c);
    return rc;
  }
  CURLcode cc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
  curl_easy_cleanup(c);
  if (errbody) snprintf(errbody, errcap, "%s", g.errbody);
  if (cc == CURLE_OK) return 0;
  if (x->over) return mu_err_set(err, MU_ENOSPC, "%s: response over the %zu-byte bound", url, x->max);
  if (x->too_big)
    return mu_err_set(err, MU_EIO, "%s: more bytes than the descriptor's size %lld", url, (long long)x->expect_size);
  if (x->write_failed) return mu_err_set(err, MU_EIO, "%s: cannot write to the store: %s", url, strerror(errno));
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    if (r->opts.deadline_ms > 0 && mu_registry_now_ms() >= r->opts.deadline_ms - 50)
      return mu_err_set(err, MU_ETIMEDOUT, "%s: pull timeout reached", url);
    return mu_err_set(err, MU_ETIMEDOUT, "%s: the registry stalled (no data for %lld ms): %s", url,
                      (long long)r->opts.stall_ms, cerr);
  }
  return mu_err_set(err, MU_EIO, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(cc));
}

static int perform(mu_registry *r, const char *url, xfer *x, struct curl_slist *hdrs, const char *range, bool with_auth,
                   char *errbody, size_t errcap, mu_err *err) {
  return perform_req(r, url, x, hdrs, range, with_auth, NULL, errbody, errcap, err);
}

static char *url_escape(const char *s) {
  CURL *c = curl_easy_init();
  char *e = c ? curl_easy_escape(c, s, 0) : NULL;
  char *out = e ? strdup(e) : NULL;
  curl_free(e);
  if (c) curl_easy_cleanup(c);
  return out;
}

/* Answers a 401: a Bearer token from the realm, or Basic on the next request. */
static int authenticate(mu_registry *r, const char *challenge, mu_err *err) {
  mu_challenge ch;
  mu_err perr = {0};
  if (challenge[0] == '\0')
    return mu_err_set(err, MU_EPERM, "registry %s: 401 without a WWW-Authenticate challenge", r->ref.registry);
  if (mu_challenge_parse(challenge, strlen(challenge), &ch, &perr) != 0)
    return mu_err_set(err, MU_EPERM, "registry %s: %s", r->ref.registry, perr.msg);
  if (ch.scheme == MU_AUTH_BASIC) {
    if (r->opts.username == NULL)
      return mu_err_set(err, MU_EPERM, "registry %s asks for Basic credentials and none are configured (registry_auth)",
                        r->ref.registry);
    r->use_basic = true;
    return 0;
  }
  if (!r->opts.insecure && strncmp(ch.realm, "https://", 8) != 0)
    return mu_err_set(err, MU_EPERM, "registry %s: token realm %s is not https", r->ref.registry, ch.realm);
  char scope_default[MU_IMGREF_NAME_MAX + 32];
  snprintf(scope_default, sizeof scope_default, "repository:%s:pull", r->ref.repository);
  /* A challenge may name several scopes, space-separated (a cross-repository mount needs
   * push here and pull there): each is its own scope= parameter. */
  char url[2048];
  char *svc = url_escape(ch.service);
  int n = svc ? snprintf(url, sizeof url, "%s%sservice=%s", ch.realm, strchr(ch.realm, '?') ? "&" : "?", svc) : -1;
  free(svc);
  char scopes[sizeof ch.scope];
  snprintf(scopes, sizeof scopes, "%s", ch.scope[0] ? ch.scope : scope_default);
  char *save = NULL;
  for (char *one = strtok_r(scopes, " ", &save); one != NULL && n >= 0 && (size_t)n < sizeof url;
       one = strtok_r(NULL, " ", &save)) {
    char *e = url_escape(one);
    int k = e ? snprintf(url + n, sizeof url - (size_t)n, "&scope=%s", e) : -1;
    free(e);
    n = k < 0 ? -1 : n + k;
  }
  if (n < 0 || (size_t)n >= sizeof url)
    return mu_err_set(err, MU_EINVAL, "registry %s: token URL too long", r->ref.registry);
  r->token[0] = '\0'; /* a new challenge (another scope) replaces the token held */
  xfer x = {.max = 65536};
  CURL *c = curl_easy_init();
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "curl_easy_init failed");
  gate g = {.x = &x, .curl = c};
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  x.reg = r;
  int rc = curl_setup(r, c, url, &g, NULL, NULL, false, err);
  if (rc == 0 && r->opts.username) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, r->opts.username);
    curl_easy_setopt(c, CURLOPT_PASSWORD, r->opts.password ? r->opts.password : "");
  }
  CURLcode cc = rc == 0 ? curl_easy_perform(c) : CURLE_OK;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x.status);
  curl_easy_cleanup(c);
  if (rc != 0) goto done;
  if (cc != CURLE_OK) {
    rc = mu_err_set(err, MU_EIO, "token server %s: %s", ch.realm, cerr[0] ? cerr : curl_easy_strerror(cc));
    goto done;
  }
  if (x.status != 200) {
    rc = mu_err_set(err, MU_EPERM, "token server %s: HTTP %ld%s", ch.realm, x.status,
                    r->opts.username ? " (check the credentials)" : "");
    goto done;
  }
  /* {"token": "...", "access_token": "...", "expires_in": N}: a tiny scan, no JSON library. */
  const char *keys[] = {"\"token\"", "\"access_token\""};
  for (int k = 0; k < 2 && r->token[0] == '\0'; k++) {
    const char *p = x.buf ? strstr(x.buf, keys[k]) : NULL;
    if (p == NULL) continue;
    p += strlen(keys[k]);
    while (*p == ' ' || *p == ':' || *p == '\t') p++;
    if (*p != '"') continue;
    const char *end = strchr(++p, '"');
    if (end == NULL || (size_t)(end - p) >= sizeof r->token) continue;
    for (const char *q = p; q < end; q++)
      if (*q < 0x21 || *q > 0x7e || *q == '\\') goto bad;
    memcpy(r->token, p, (size_t)(end - p));
    r->token[end - p] = '\0';
  }
bad:
  if (r->token[0] == '\0') rc = mu_err_set(err, MU_EPERM, "token server %s: no token in its answer", ch.realm);
done:
  if (x.buf) explicit_bzero(x.buf, x.len);
  free(x.buf);
  return rc;
}

static void hex_digest(EVP_MD_CTX *md, char out[72]) {
  unsigned char h[32];
  unsigned int hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  mu_sha256_format(h, out);
}

static void sha256_hex(const void *data, size_t len, char out[72]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  EVP_DigestUpdate(md, data, len);
  hex_digest(md, out);
  EVP_MD_CTX_free(md);
}

static int status_error(mu_registry *r, const char *what, long status, const char *body, mu_err *err) {
  char b[200];
  size_t n = 0;
  for (const char *p = body; *p && n < sizeof b - 1; p++) b[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : ' ';
  b[n] = '\0';
  int code = status == 401 || status == 403 ? MU_EPERM : status == 404 ? MU_ENOENT : MU_EIO;
  return mu_err_set(err, code, "registry %s: %s: HTTP %ld%s%s%s", r->ref.registry, what, status,
                    status == 401 ? (r->opts.username ? " (credentials refused)" : " (no credentials configured)") : "",
                    n ? ": " : "", b);
}

int mu_registry_get_manifest(mu_registry *r, const char *reference, char **ret_body, size_t *ret_len, char ctype[128],
                             char digest[72], mu_err *err) {
  *ret_body = NULL;
  char url[1024], what[600];
  snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", r->base, r->ref.repository, reference);
  snprintf(what, sizeof what, "manifest %s:%s", r->ref.repository, reference);
  struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: " MU_MANIFEST_ACCEPT);
  xfer x = {0};
  char errbody[512];
  int rc = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    free(x.buf);
    memset(&x, 0, sizeof x);
    x.max = MU_MANIFEST_MAX_BYTES;
    rc = perform(r, url, &x, hdrs, NULL, true, errbody, sizeof errbody, err);
    if (rc != 0) goto done;
    if (x.status == 401 && attempt == 0 && !r->token[0] && !r->use_basic) {
      rc = authenticate(r, x.challenge, err);
      if (rc != 0) goto done;
      continue;
    }
    break;
  }
  if (x.status != 200) {
    rc = status_error(r, what, x.status, errbody, err);
    goto done;
  }
  sha256_hex(x.buf ? x.buf : "", x.len, digest);
  if (mu_digest_valid(reference) && strcmp(reference, digest) != 0) {
    rc = mu_err_set(err, MU_EIO, "%s: body has digest %s, not the one asked for", what, digest);
    goto done;
  }
  if (x.content_digest[0] && strcmp(x.content_digest, digest) != 0) {
    rc = mu_err_set(err, MU_EIO, "%s: body has digest %s but Docker-Content-Digest says %s", what, digest,
                    x.content_digest);
    goto done;
  }
  snprintf(ctype, 128, "%s", x.ctype);
  if (x.buf == NULL) {
    x.buf = calloc(1, 1);
    if (x.buf == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto done;
    }
  }
  *ret_body = x.buf;
  *ret_len = x.len;
  x.buf = NULL;
done:
  free(x.buf);
  curl_slist_free_all(hdrs);
  return rc;
}

/* Re-hashes the bytes already in a partial file; returns how many (0 when none/unusable). */
static int64_t rehash_partial(int fd, EVP_MD_CTX *md, int64_t max) {
  char buf[65536];
  int64_t total = 0;
  if (lseek(fd, 0, SEEK_SET) != 0) return 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    EVP_DigestUpdate(md, buf, (size_t)n);
    total += n;
  }
  if (total > max || total < 0) return -1;
  return total;
}

int mu_registry_get_blob(mu_registry *r, const mu_descriptor *d, const char *dest, mu_err *err) {
  char url[1024], partial[4200];
  snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", r->base, r->ref.repository, d->digest);
  snprintf(partial, sizeof partial, "%s.partial", dest);
  int rc = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (md == NULL || fd < 0) {
    rc = mu_err_set(err, MU_EIO, "cannot open %s: %s", partial, strerror(errno));
    goto done;
  }
  /* One writer per blob (another task, another thread): wait for it, then see whether it
   * stored the blob meanwhile. */
  if (flock(fd, LOCK_EX) != 0) {
    rc = mu_err_set(err, MU_EIO, "cannot lock %s: %s", partial, strerror(errno));
    goto done;
  }
  struct stat done_st;
  if (stat(dest, &done_st) == 0 && done_st.st_size == d->size) goto done;
  for (int attempt = 0; attempt < 3; attempt++) {
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    int64_t have = rehash_partial(fd, md, d->size);
    if (have < 0 || (have == d->size && have > 0)) { /* unusable or complete-but-unverified: start over */
      if (have == d->size) {
        char got[72];
        EVP_MD_CTX *copy = EVP_MD_CTX_new();
        EVP_MD_CTX_copy_ex(copy, md);
        hex_digest(copy, got);
        EVP_MD_CTX_free(copy);
        if (strcmp(got, d->digest) == 0) goto verified;
      }
      if (ftruncate(fd, 0) != 0) {
        rc = mu_err_set(err, MU_EIO, "cannot truncate %s", partial);
        goto done;
      }
      EVP_DigestInit_ex(md, EVP_sha256(), NULL);
      have = 0;
    }
    char range[64];
    snprintf(range, sizeof range, "%lld-", (long long)have);
    xfer x = {.fd = fd, .md = md, .expect_size = d->size, .have = have};
    lseek(fd, have, SEEK_SET);
    char errbody[512];
    rc = perform(r, url, &x, NULL, have > 0 ? range : NULL, true, errbody, sizeof errbody, err);
    if (rc == 0 && x.status == 401 && !r->token[0] && !r->use_basic) {
      rc = authenticate(r, x.challenge, err);
      if (rc != 0) goto done;
      continue;
    }
    if (rc == MU_EIO && x.have > have && !x.too_big && !x.write_failed && attempt < 2) continue; /* dropped: resume */
    if (rc != 0) goto done;
    if (x.status == 200 && have > 0) { /* the registry ignored Range: the body started at 0 */
      if (ftruncate(fd, 0) != 0) {
        rc = mu_err_set(err, MU_EIO, "cannot truncate %s", partial);
        goto done;
      }
      continue;
    }
    if (x.status == 206 && x.content_range_start != have) {
      rc = mu_err_set(err, MU_EIO, "blob %s: the registry answered a range from %lld, not %lld", d->digest,
                      (long long)x.content_range_start, (long long)have);
      goto done;
    }
    if (x.status != 200 && x.status != 206) {
      rc = status_error(r, "blob", x.status, errbody, err);
      goto done;
    }
    if (x.have != d->size) {
      rc = mu_err_set(err, MU_EIO, "blob %s: got %lld bytes, the manifest says %lld", d->digest, (long long)x.have,
                      (long long)d->size);
      goto done;
    }
    char got[72];
    hex_digest(md, got);
    if (strcmp(got, d->digest) != 0) {
      rc = mu_err_set(err, MU_EIO, "blob %s: content has digest %s (refused)", d->digest, got);
      if (ftruncate(fd, 0) != 0) unlink(partial); /* never resume from refused bytes */
      goto done;
    }
    goto verified;
  }
  rc = mu_err_set(err, MU_EIO, "blob %s: gave up after 3 attempts", d->digest);
  goto done;
verified:
  if (fsync(fd) != 0 || rename(partial, dest) != 0)
    rc = mu_err_set(err, MU_EIO, "cannot store %s: %s", dest, strerror(errno));
done:
  if (fd >= 0) close(fd);
  EVP_MD_CTX_free(md);
  return rc;
}

/* ---- any request (registry_write.c's writes, HEADs, referrers) ---- */

const mu_imgref *mu_registry_ref(const mu_registry *r) { return &r->ref; }

int mu_registry_status_error(mu_registry *r, const char *what, long status, const char *body, mu_err *err) {
  return status_error(r, what, status, body ? body : "", err);
}

void mu_registry_resp_free(mu_registry_resp *resp) {
  if (resp == NULL) return;
  free(resp->body);
  resp->body = NULL;
  resp->len = 0;
}

int mu_registry_request(mu_registry *r, const mu_registry_req *q, mu_registry_resp *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  char url[2300];
  size_t bl = strlen(r->base);
  if (strncmp(q->path, "http://", 7) == 0 || strncmp(q->path, "https://", 8) == 0) {
    /* a Location the registry gave: our credentials go to the registry's own host only */
    if (strncmp(q->path, r->base, bl) != 0 || q->path[bl] != '/')
      return mu_err_set(err, MU_EPERM, "registry %s: location %.200s is on another host (refused)", r->ref.registry,
                        q->path);
    snprintf(url, sizeof url, "%s", q->path);
  } else if (q->path[0] == '/') {
    snprintf(url, sizeof url, "%s%s", r->base, q->path);
  } else {
    return mu_err_set(err, MU_EINVAL, "registry %s: bad location %.200s", r->ref.registry, q->path);
  }
  struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
  for (size_t i = 0; q->headers != NULL && q->headers[i] != NULL && hdrs != NULL; i++) {
    struct curl_slist *more = curl_slist_append(hdrs, q->headers[i]);
    if (more == NULL) curl_slist_free_all(hdrs);
    hdrs = more;
  }
  if (hdrs == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  xfer x = {0};
  int rc = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    free(x.buf);
    memset(&x, 0, sizeof x);
    x.max = q->max_response ? q->max_response : 65536;
    rc = perform_req(r, url, &x, hdrs, NULL, true, q, ret->errbody, sizeof ret->errbody, err);
    if (rc != 0) goto done;
    if (x.status == 401 && attempt == 0) { /* no token yet, or one without this scope (push) */
      rc = authenticate(r, x.challenge, err);
      if (rc != 0) goto done;
      continue;
    }
    break;
  }
  ret->status = x.status;
  ret->body = x.buf;
  ret->len = x.len;
  x.buf = NULL;
  ret->content_length = x.content_length;
  snprintf(ret->ctype, sizeof ret->ctype, "%s", x.ctype);
  snprintf(ret->digest, sizeof ret->digest, "%s", x.content_digest);
  snprintf(ret->location, sizeof ret->location, "%s", x.location);
done:
  free(x.buf);
  curl_slist_free_all(hdrs);
  return rc;
}
