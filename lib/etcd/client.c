/* The etcd client's transport: libcurl's multi interface driven by the libuv loop (socket
 * callbacks → uv_poll_t, timer callback → uv_timer_t), one POST per request with failover
 * over the endpoints when a connect fails, etcd auth tokens, error mapping, and the
 * completion queue from which user callbacks run (never from inside libcurl). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/etcd/internal.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define DEFAULT_WATCH_RETRY_MAX_MS 2000

static void client_teardown(mu_etcd_client *c);
static void req_complete(mu_etcd_req *r, json_t *reply, const mu_err *err);
static int req_attempt(mu_etcd_req *r, mu_err *err);

/* ---- libuv ↔ libcurl glue ---- */

static void client_process(mu_etcd_client *c);

static void client_drive(mu_etcd_client *c, curl_socket_t fd, int flags) {
  int running = 0;
  mu__etcd_client_enter(c);
  if (!c->torn_down) {
    curl_multi_socket_action(c->multi, fd, flags, &running);
    client_process(c);
  }
  mu__etcd_client_leave(c);
}

static void on_timer(uv_timer_t *t) { client_drive(t->data, CURL_SOCKET_TIMEOUT, 0); }

static void on_poll(uv_poll_t *h, int status, int events) {
  mu_etcd_sock *s = h->data;
  int flags = 0;
  if (status < 0) flags |= CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  client_drive(s->c, s->fd, flags);
}

static void on_sock_closed(uv_handle_t *h) {
  mu_etcd_sock *s = h->data;
  mu_etcd_client *c = s->c;
  free(s);
  mu__etcd_client_handle_closed(c);
}

static void sock_release(mu_etcd_sock *s) {
  mu_etcd_client *c = s->c;
  uv_poll_stop(&s->poll);
  if (s->prev != NULL) s->prev->next = s->next;
  else c->socks = s->next;
  if (s->next != NULL) s->next->prev = s->prev;
  c->pending_closes++;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static int curl_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  mu_etcd_client *c = userp;
  mu_etcd_sock *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      sock_release(s);
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL) return -1;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->c = c;
    s->poll.data = s;
    s->next = c->socks;
    if (c->socks != NULL) c->socks->prev = s;
    c->socks = s;
    curl_multi_assign(c->multi, fd, s);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  mu_etcd_client *c = userp;
  (void)multi;
  if (timeout_ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- client life ---- */

static void free_tls(mu_etcd_client *c) {
  free((char *)c->opts.tls_ca);
  free((char *)c->opts.tls_cert);
  free((char *)c->opts.tls_key);
}

int mu_etcd_client_new(uv_loop_t *loop, const char *const *endpoints, size_t n_endpoints, const mu_etcd_options *opts,
                       mu_etcd_client **ret_client, mu_err *err) {
  mu_etcd_client *c = NULL;
  int rc;
  if (loop == NULL || endpoints == NULL || n_endpoints == 0) {
    return mu_err_set(err, MU_EINVAL, "etcd: at least one endpoint is needed");
  }
  for (size_t i = 0; i < n_endpoints; i++) {
    if (endpoints[i] == NULL || endpoints[i][0] == '\0') {
      return mu_err_set(err, MU_EINVAL, "etcd: endpoint %zu is empty", i + 1);
    }
  }
  if (opts != NULL && opts->username != NULL && opts->password == NULL) {
    return mu_err_set(err, MU_EINVAL, "etcd: user '%s' has no password", opts->username);
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return mu_err_set(err, MU_EIO, "etcd: curl_global_init failed");
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) goto nomem;
  c->loop = loop;
  if (opts != NULL) c->opts = *opts;
  c->opts.username = c->opts.password = NULL;
  c->opts.tls_ca = c->opts.tls_cert = c->opts.tls_key = NULL;
  if (opts != NULL) {
    const char *in[3] = {opts->tls_ca, opts->tls_cert, opts->tls_key};
    const char **out[3] = {&c->opts.tls_ca, &c->opts.tls_cert, &c->opts.tls_key};
    for (int i = 0; i < 3; i++) {
      if (in[i] != NULL && in[i][0] != '\0') {
        *out[i] = strdup(in[i]);
        if (*out[i] == NULL) goto nomem;
      }
    }
  }
  if (c->opts.request_timeout_ms <= 0) c->opts.request_timeout_ms = DEFAULT_TIMEOUT_MS;
  if (c->opts.connect_timeout_ms <= 0) c->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  if (c->opts.max_request_bytes == 0) c->opts.max_request_bytes = MU_ETCD_DEFAULT_MAX_REQUEST_BYTES;
  if (c->opts.max_response_bytes == 0) c->opts.max_response_bytes = DEFAULT_MAX_RESPONSE;
  if (c->opts.max_txn_ops == 0) c->opts.max_txn_ops = MU_ETCD_DEFAULT_MAX_TXN_OPS;
  if (c->opts.watch_retry_max_ms <= 0) c->opts.watch_retry_max_ms = DEFAULT_WATCH_RETRY_MAX_MS;
  if (opts != NULL && opts->username != NULL) {
    c->opts.username = strdup(opts->username);
    c->opts.password = strdup(opts->password);
    if (c->opts.username == NULL || c->opts.password == NULL) goto nomem;
  }
  c->endpoints = calloc(n_endpoints, sizeof(char *));
  if (c->endpoints == NULL) goto nomem;
  c->n_endpoints = n_endpoints;
  for (size_t i = 0; i < n_endpoints; i++) {
    const char *e = endpoints[i];
    bool has_scheme = strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0;
    size_t len = strlen(e) + 8;
    c->endpoints[i] = malloc(len);
    if (c->endpoints[i] == NULL) goto nomem;
    snprintf(c->endpoints[i], len, "%s%s", has_scheme ? "" : "http://", e);
    size_t l = strlen(c->endpoints[i]);
    while (l > 0 && c->endpoints[i][l - 1] == '/') c->endpoints[i][--l] = '\0';
  }
  c->multi = curl_multi_init();
  if (c->multi == NULL) goto nomem;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  rc = uv_timer_init(loop, &c->timer);
  if (rc != 0) {
    rc = mu_err_set(err, MU_EIO, "etcd: uv_timer_init: %s", uv_strerror(rc));
    goto fail;
  }
  c->timer.data = c;
  *ret_client = c;
  return 0;
nomem:
  rc = mu_err_set(err, MU_ENOMEM, "etcd: out of memory creating the client");
fail:
  if (c != NULL) {
    if (c->multi != NULL) curl_multi_cleanup(c->multi);
    for (size_t i = 0; c->endpoints != NULL && i < c->n_endpoints; i++) free(c->endpoints[i]);
    free(c->endpoints);
    free((char *)c->opts.username);
    free((char *)c->opts.password);
    free_tls(c);
    free(c);
  }
  curl_global_cleanup();
  return rc;
}

const char *mu_etcd_client_endpoint(const mu_etcd_client *c) { return c->endpoints[c->good]; }

void mu__etcd_client_enter(mu_etcd_client *c) { c->depth++; }

void mu__etcd_client_leave(mu_etcd_client *c) {
  c->depth--;
  if (c->depth == 0 && c->closing && !c->torn_down) client_teardown(c);
}

void mu_etcd_client_close(mu_etcd_client *c, void (*close_cb)(void *ud), void *ud) {
  if (c == NULL || c->closing) return;
  c->closing = true;
  c->close_cb = close_cb;
  c->close_ud = ud;
  if (c->depth == 0) {
    mu__etcd_client_enter(c);
    client_teardown(c);
    mu__etcd_client_leave(c);
  }
}

static void client_free(mu_etcd_client *c) {
  for (size_t i = 0; i < c->n_endpoints; i++) free(c->endpoints[i]);
  free(c->endpoints);
  free((char *)c->opts.username);
  free((char *)c->opts.password);
  free_tls(c);
  free(c->token);
  free(c);
  curl_global_cleanup();
}

void mu__etcd_client_handle_closed(mu_etcd_client *c) {
  c->pending_closes--;
  if (c->torn_down && c->pending_closes == 0) {
    void (*cb)(void *) = c->close_cb;
    void *ud = c->close_ud;
    client_free(c);
    if (cb != NULL) cb(ud);
  }
}

static void on_timer_closed(uv_handle_t *h) { mu__etcd_client_handle_closed(h->data); }

static void client_flush(mu_etcd_client *c);

static void client_teardown(mu_etcd_client *c) {
  c->torn_down = true;
  for (;;) {
    mu_etcd_req *r = c->reqs;
    while (r != NULL && r->watch != NULL) r = r->next;
    if (r == NULL) break;
    if (r->in_multi) curl_multi_remove_handle(c->multi, r->easy);
    r->in_multi = false;
    mu_err e;
    mu_err_set(&e, MU_ECANCELED, "etcd %s: client closed", r->what);
    req_complete(r, NULL, &e);
  }
  client_flush(c);
  mu__etcd_watch_close_all(c);
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  while (c->socks != NULL) sock_release(c->socks);
  uv_timer_stop(&c->timer);
  c->pending_closes++;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* ---- requests ---- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud) {
  mu_etcd_req *r = ud;
  size_t n = size * nmemb;
  if (r->watch != NULL) return mu__etcd_watch_write(r->watch, data, n);
  if (r->resp_len + n > r->c->opts.max_response_bytes) {
    r->resp_overflow = true;
    return 0;
  }
  if (r->resp_len + n + 1 > r->resp_cap) {
    size_t cap = r->resp_cap == 0 ? 4096 : r->resp_cap;
    while (cap < r->resp_len + n + 1) cap *= 2;
    char *p = realloc(r->resp, cap);
    if (p == NULL) return 0;
    r->resp = p;
    r->resp_cap = cap;
  }
  memcpy(r->resp + r->resp_len, data, n);
  r->resp_len += n;
  r->resp[r->resp_len] = '\0';
  return n;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *mu_etcd_kind_name(mu_etcd_kind kind) {
  static const char *const names[] = {"other",       "range",           "put",          "delete",  "txn",
                                      "lease_grant", "lease_keepalive", "lease_revoke", "compact", "raw"};
  return kind >= MU_ETCD_RANGE && kind <= MU_ETCD_RAW ? names[kind] : names[0];
}

int mu__etcd_client_req_new(mu_etcd_client *c, const char *path, char *body, const char *what, mu_etcd_req **ret_req,
                            mu_err *err) {
  mu_etcd_req *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    free(body);
    return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", what);
  }
  r->c = c;
  snprintf(r->path, sizeof(r->path), "%s", path);
  r->body = body;
  r->body_len = strlen(body);
  snprintf(r->what, sizeof(r->what), "%s", what);
  r->ep_idx = c->good;
  r->begin_mono_ns = mono_ns();
  r->next = c->reqs;
  if (c->reqs != NULL) c->reqs->prev = r;
  c->reqs = r;
  *ret_req = r;
  return 0;
}

static void req_unlink(mu_etcd_req *r) {
  mu_etcd_client *c = r->c;
  if (r->prev != NULL) r->prev->next = r->next;
  else if (c->reqs == r) c->reqs = r->next;
  if (r->next != NULL) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static void req_free(mu_etcd_req *r) {
  if (r->easy != NULL) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  free(r->body);
  free(r->resp);
  mu_etcd_result_free(r->res);
  free(r);
}

void mu__etcd_client_req_drop(mu_etcd_req *r) {
  if (r->in_multi) curl_multi_remove_handle(r->c->multi, r->easy);
  r->in_multi = false;
  req_unlink(r);
  req_free(r);
}

static int req_attempt(mu_etcd_req *r, mu_err *err) {
  mu_etcd_client *c = r->c;
  char url[1024];
  char auth[1024];
  if (r->easy == NULL) r->easy = curl_easy_init();
  else curl_easy_reset(r->easy);
  if (r->easy == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: curl_easy_init failed", r->what);
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  snprintf(url, sizeof(url), "%s%s", c->endpoints[r->ep_idx], r->path);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (h != NULL) r->headers = h;
  h = curl_slist_append(r->headers, "Expect:");
  if (h != NULL) r->headers = h;
  if (c->token != NULL && !r->is_auth) {
    snprintf(auth, sizeof(auth), "Authorization: %s", c->token);
    h = curl_slist_append(r->headers, auth);
    if (h != NULL) r->headers = h;
  }
  if (r->headers == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", r->what);
  r->token_gen = c->token_gen;
  r->resp_len = 0;
  r->resp_overflow = false;
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
  if (c->opts.tls_ca != NULL) curl_easy_setopt(e, CURLOPT_CAINFO, c->opts.tls_ca);
  if (c->opts.tls_cert != NULL) curl_easy_setopt(e, CURLOPT_SSLCERT, c->opts.tls_cert);
  if (c->opts.tls_key != NULL) curl_easy_setopt(e, CURLOPT_SSLKEY, c->opts.tls_key);
  if (r->watch != NULL) {
    /* A watch lives for hours: no overall timeout, TCP keep-alive finds dead peers. */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
  } else {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->opts.request_timeout_ms);
  }
  CURLMcode mc = curl_multi_add_handle(c->multi, e);
  if (mc != CURLM_OK) {
    return mu_err_set(err, MU_EIO, "etcd %s: curl_multi_add_handle: %s", r->what, curl_multi_strerror(mc));
  }
  r->in_multi = true;
  return 0;
}

static int auth_start(mu_etcd_client *c, mu_err *err) {
  json_t *j = json_pack("{s:s,s:s}", "name", c->opts.username, "password", c->opts.password);
  char *body = j == NULL ? NULL : json_dumps(j, JSON_COMPACT);
  char what[128];
  mu_etcd_req *r = NULL;
  json_decref(j);
  if (body == NULL) return mu_err_set(err, MU_ENOMEM, "etcd: out of memory (auth)");
  snprintf(what, sizeof(what), "auth as '%s'", c->opts.username);
  int rc = mu__etcd_client_req_new(c, "/v3/auth/authenticate", body, what, &r, err);
  if (rc != 0) return rc;
  r->is_auth = true;
  rc = req_attempt(r, err);
  if (rc != 0) {
    mu__etcd_client_req_drop(r);
    return rc;
  }
  c->auth_running = true;
  return 0;
}

/* Authentication finished: start or fail everything that waited for it. No user code runs. */
static void auth_done(mu_etcd_client *c, json_t *reply, const mu_err *err) {
  mu_err e;
  mu_err_clear(&e);
  c->auth_running = false;
  if (err != NULL) {
    e = *err;
  } else {
    const char *tok = json_string_value(json_object_get(reply, "token"));
    if (tok == NULL) {
      mu_err_set(&e, MU_EPERM, "etcd auth as '%s': reply carries no token", c->opts.username);
    } else {
      free(c->token);
      c->token = strdup(tok);
      c->token_gen++;
      if (c->token == NULL) mu_err_set(&e, MU_ENOMEM, "etcd: out of memory (auth token)");
    }
  }
  for (;;) {
    mu_etcd_req *r = c->reqs;
    while (r != NULL && !r->waiting_auth) r = r->next;
    if (r == NULL) break;
    r->waiting_auth = false;
    mu_err re = e;
    if (re.code != 0) mu_err_prefix(&re, "%s", r->what);
    else if (req_attempt(r, &re) == 0) continue;
    req_complete(r, NULL, &re);
  }
}

int mu__etcd_client_req_submit(mu_etcd_req *r, mu_err *err) {
  mu_etcd_client *c = r->c;
  if (c->closing) return mu_err_set(err, MU_ECANCELED, "etcd %s: client is closing", r->what);
  if (c->opts.username != NULL && c->token == NULL && !r->is_auth) {
    if (!c->auth_running) {
      int rc = auth_start(c, err);
      if (rc != 0) return rc;
    }
    r->waiting_auth = true;
    return 0;
  }
  return req_attempt(r, err);
}

int mu__etcd_client_unary(mu_etcd_client *c, mu_etcd_kind kind, const char *path, char *body, const char *what,
                          mu_etcd_cb cb, void *ud, mu_err *err) {
  mu_etcd_req *r = NULL;
  if (c->closing) {
    free(body);
    return mu_err_set(err, MU_ECANCELED, "etcd %s: client is closing", what);
  }
  int rc = mu__etcd_client_req_new(c, path, body, what, &r, err);
  if (rc != 0) return rc;
  r->kind = kind;
  r->cb = cb;
  r->ud = ud;
  rc = mu__etcd_client_req_submit(r, err);
  if (rc != 0) mu__etcd_client_req_drop(r);
  return rc;
}

static bool connect_failed(mu_etcd_req *r, CURLcode cc) {
  if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) return true;
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    /* Nothing sent yet (a reused connection has no connect time, so ask for bytes sent). */
    long sent = 0;
    curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
    return sent == 0;
  }
  return false;
}

/* One attempt ended: fail over, re-authenticate, or complete. No user code runs. */
static void req_attempt_done(mu_etcd_req *r, CURLcode cc) {
  mu_etcd_client *c = r->c;
  const char *url = c->endpoints[r->ep_idx];
  long status = 0;
  mu_err e;
  mu_err_clear(&e);
  curl_multi_remove_handle(c->multi, r->easy);
  r->in_multi = false;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK && connect_failed(r, cc)) {
    size_t l = strlen(r->tried);
    snprintf(r->tried + l, sizeof(r->tried) - l, "%s%s (%s)", l > 0 ? ", " : "", url, curl_easy_strerror(cc));
    r->attempts++;
    if (r->attempts < c->n_endpoints && !c->closing) {
      r->ep_idx = (r->ep_idx + 1) % c->n_endpoints;
      if (req_attempt(r, &e) == 0) return;
    } else {
      mu_err_set(&e, MU_EAGAIN, "etcd %s: unreachable, tried %s", r->what, r->tried);
    }
    req_complete(r, NULL, &e);
    return;
  }
  if (cc != CURLE_OK) {
    if (r->resp_overflow || (r->watch != NULL && cc == CURLE_WRITE_ERROR)) {
      mu_err_set(&e, MU_ENOSPC, "etcd %s: reply from %s larger than %zu bytes", r->what, url,
                 c->opts.max_response_bytes);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
      mu_err_set(&e, MU_ETIMEDOUT, "etcd %s: no reply from %s within %lld ms", r->what, url,
                 (long long)c->opts.request_timeout_ms);
    } else {
      mu_err_set(&e, MU_EIO, "etcd %s via %s: %s", r->what, url, curl_easy_strerror(cc));
    }
    req_complete(r, NULL, &e);
    return;
  }
  c->good = r->ep_idx;
  r->attempts = 0;
  r->tried[0] = '\0';
  if (r->watch != NULL) {
    req_complete(r, NULL, NULL);
    return;
  }
  json_t *reply = json_loadb(r->resp == NULL ? "" : r->resp, r->resp_len, 0, NULL);
  if (r->kind == MU_ETCD_LEASE_KEEPALIVE && json_is_object(json_object_get(reply, "result"))) {
    /* A streaming endpoint: the reply is wrapped as {"result": {...}}. */
    json_t *inner = json_incref(json_object_get(reply, "result"));
    json_decref(reply);
    reply = inner;
  } else if (r->kind == MU_ETCD_LEASE_KEEPALIVE && json_is_object(json_object_get(reply, "error"))) {
    json_t *inner = json_incref(json_object_get(reply, "error"));
    json_decref(reply);
    reply = inner;
    if (json_object_get(reply, "code") == NULL) {
      json_object_set(reply, "code", json_object_get(reply, "grpc_code"));
    }
    status = 0;
  }
  if (status == 200 && json_is_object(reply) && json_object_get(reply, "error") == NULL) {
    req_complete(r, reply, NULL);
    json_decref(reply);
    return;
  }
  if (!r->is_auth && !r->reauthed && c->opts.username != NULL && mu__etcd_codec_int(reply, "code") == 16) {
    /* The token expired (simple tokens do after idling): get a new one and retry once. */
    r->reauthed = true;
    if (r->token_gen == c->token_gen) {
      free(c->token);
      c->token = NULL;
    }
    json_decref(reply);
    if (mu__etcd_client_req_submit(r, &e) == 0) return;
    req_complete(r, NULL, &e);
    return;
  }
  if (r->is_auth) {
    char what[sizeof(r->what) + 16];
    snprintf(what, sizeof(what), "%s refused", r->what);
    mu__etcd_client_etcd_error(what, status, reply, &e);
    e.code = MU_EPERM;
  } else {
    mu__etcd_client_etcd_error(r->what, status, reply, &e);
  }
  json_decref(reply);
  req_complete(r, NULL, &e);
}

/* The request is finished: hand it to its owner. Unary requests wait in the done queue. */
static void req_complete(mu_etcd_req *r, json_t *reply, const mu_err *err) {
  mu_etcd_client *c = r->c;
  if (r->in_multi) curl_multi_remove_handle(c->multi, r->easy);
  r->in_multi = false;
  req_unlink(r);
  if (r->is_auth) {
    req_free(r);
    auth_done(c, reply, err);
    return;
  }
  if (r->watch != NULL) {
    mu_etcd_watch *w = r->watch;
    req_free(r);
    mu__etcd_watch_on_done(w, err);
    return;
  }
  if (err != NULL) {
    r->err = *err;
  } else {
    r->res = calloc(1, sizeof(*r->res));
    if (r->res == NULL) {
      mu_err_set(&r->err, MU_ENOMEM, "etcd %s: out of memory", r->what);
    } else if (r->kind == MU_ETCD_RAW) {
      r->res->kind = MU_ETCD_RAW;
      r->res->revision = mu__etcd_codec_int(json_object_get(reply, "header"), "revision");
      r->res->raw = json_dumps(reply, JSON_COMPACT);
      if (r->res->raw == NULL) mu_err_set(&r->err, MU_ENOMEM, "etcd %s: out of memory", r->what);
    } else if (mu__etcd_codec_result(r->kind, reply, r->res, &r->err) == 0 && r->kind == MU_ETCD_LEASE_KEEPALIVE &&
               r->res->ttl <= 0) {
      mu_err_set(&r->err, MU_ENOENT, "etcd %s: lease is gone (expired or revoked)", r->what);
    }
    if (r->err.code != 0) {
      mu_etcd_result_free(r->res);
      r->res = NULL;
    }
  }
  if (c->done_tail != NULL) c->done_tail->done_next = r;
  else c->done_head = r;
  c->done_tail = r;
}

static void client_flush(mu_etcd_client *c) {
  while (c->done_head != NULL) {
    mu_etcd_req *r = c->done_head;
    c->done_head = r->done_next;
    if (c->done_head == NULL) c->done_tail = NULL;
    if (c->opts.observe != NULL)
      c->opts.observe(c->opts.observe_ud, mu_etcd_kind_name(r->kind), (double)(mono_ns() - r->begin_mono_ns) / 1e9,
                      r->res == NULL);
    if (r->cb != NULL) r->cb(r->ud, r->res, r->res != NULL ? NULL : &r->err);
    req_free(r);
  }
}

static void client_process(mu_etcd_client *c) {
  for (;;) {
    int left = 0;
    CURLMsg *m = curl_multi_info_read(c->multi, &left);
    if (m == NULL) break;
    if (m->msg != CURLMSG_DONE) continue;
    mu_etcd_req *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    req_attempt_done(r, m->data.result);
  }
  mu__etcd_watch_deliver_all(c);
  if (!c->closing) client_flush(c);
}
