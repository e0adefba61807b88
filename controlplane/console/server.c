/* The console's HTTP side (console.h): libmicrohttpd with a thread per connection, over
 * GnuTLS with musterd's certificate. Static files are answered from the embedded table on the
 * connection thread (they hold no daemon state); an API request is parsed there, queued for
 * the loop thread (uv_async) and waited for; server-sent events are read from a stream the
 * loop feeds. Nothing here touches daemon state. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/console/assets.h"
#include "controlplane/console/console_int.h"
#include "controlplane/daemon.h"
#include "lib/base/log.h"

#define MU_CONSOLE_WAIT_MS 15000      /* an API answer later than this is 503 */
#define MU_CONSOLE_QUEUE_MAX 256      /* requests waiting for the loop */
#define MU_CONSOLE_KEEPALIVE_MS 15000 /* a comment line on an idle event stream */
#define MU_CONSOLE_PEM_MAX (1u << 20)

const char *const mu_console_query_names[MU_CQ_COUNT] = {"selector", "state",  "tail",   "limit",
                                                         "after",    "offset", "history"};

/* Headers on every answer: nothing is framed, sniffed or loaded from elsewhere. */
static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/* --- configuration --- */

void mu_console_config_init(mu_console_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->max_connections = 64;
  cfg->stream_buffer = 1u << 20;
}

static const char *const flags[] = {"web-listen", "web-tls-cert", "web-tls-key", "web-max-connections",
                                    "web-stream-buffer"};

int mu_console_config_has(const char *flag) {
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if (strcmp(flag, flags[i]) == 0) return 1;
  return 0;
}

static int copy_flag(char *dst, size_t size, const char *flag, const char *value, mu_err *err) {
  if (strlen(value) >= size) return mu_err_set(err, MU_EINVAL, "--%s: value too long", flag);
  memcpy(dst, value, strlen(value) + 1);
  return 0;
}

int mu_console_config_set(mu_console_config *cfg, const char *flag, const char *value, mu_err *err) {
  if (strcmp(flag, "web-listen") == 0) return copy_flag(cfg->listen, sizeof cfg->listen, flag, value, err);
  if (strcmp(flag, "web-tls-cert") == 0) return copy_flag(cfg->tls_cert, sizeof cfg->tls_cert, flag, value, err);
  if (strcmp(flag, "web-tls-key") == 0) return copy_flag(cfg->tls_key, sizeof cfg->tls_key, flag, value, err);
  uint64_t v;
  if (strcmp(flag, "web-max-connections") == 0) {
    if (mu_console_param_uint(value, 0, 4096, &v) != 0 || v < 4)
      return mu_err_set(err, MU_EINVAL, "--web-max-connections: expected 4..4096, got '%.40s'", value);
    cfg->max_connections = (uint32_t)v;
    return 0;
  }
  if (strcmp(flag, "web-stream-buffer") == 0) {
    if (mu_console_param_uint(value, 0, 1u << 30, &v) != 0 || v < 4096)
      return mu_err_set(err, MU_EINVAL, "--web-stream-buffer: expected bytes in 4096..1073741824, got '%.40s'", value);
    cfg->stream_buffer = (size_t)v;
    return 0;
  }
  return mu_err_set(err, MU_EINVAL, "unknown console flag --%s", flag);
}

int mu_console_config_check(const mu_console_config *cfg, int insecure, mu_err *err) {
  int cert = cfg->tls_cert[0] != '\0', key = cfg->tls_key[0] != '\0';
  if (cert != key)
    return mu_err_set(err, MU_EINVAL,
                      "the console over HTTPS needs both --web-tls-cert and "
                      "--web-tls-key: %s is missing",
                      cert ? "--web-tls-key" : "--web-tls-cert");
  if (cert && cfg->listen[0] == '\0')
    return mu_err_set(err, MU_EINVAL, "--web-tls-cert and --web-tls-key given without --web-listen");
  (void)insecure;
  return 0;
}

/* --- TLS files --- */

static int read_pem(const char *flag, const char *path, char **ret, mu_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "%s %s: %s", flag, path, strerror(errno));
  char *buf = malloc(MU_CONSOLE_PEM_MAX + 1);
  size_t n = buf ? fread(buf, 1, MU_CONSOLE_PEM_MAX + 1, f) : 0;
  fclose(f);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (n == 0 || n > MU_CONSOLE_PEM_MAX || memchr(buf, '\0', n) != NULL) {
    free(buf);
    return mu_err_set(err, MU_EINVAL, "%s %s: not a PEM file", flag, path);
  }
  buf[n] = '\0';
  *ret = buf;
  return 0;
}

/* Checks that key is cert's, so a bad pair is named here rather than inside MHD. */
static int check_pair(const char *cert, const char *key, const char *cert_path, const char *key_path, mu_err *err) {
  gnutls_certificate_credentials_t cred;
  if (gnutls_certificate_allocate_credentials(&cred) < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  gnutls_datum_t c = {(unsigned char *)cert, (unsigned int)strlen(cert)};
  gnutls_datum_t k = {(unsigned char *)key, (unsigned int)strlen(key)};
  int grc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
  gnutls_certificate_free_credentials(cred);
  if (grc < 0)
    return mu_err_set(err, MU_EINVAL, "console certificate %s with key %s: %s", cert_path, key_path,
                      gnutls_strerror(grc));
  return 0;
}

/* --- the client certificate (connection thread) --- */

/* Fills r->peer from a client certificate that chains to the CA MHD was given; leaves it
 * unverified otherwise (the caller may still bring a token). */
static void read_client_cert(struct MHD_Connection *conn, mu_console_req *r) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  gnutls_session_t tls = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
  r->peer.tls = tls != NULL;
  unsigned int n = 0;
  const gnutls_datum_t *certs;
  if (tls == NULL || gnutls_certificate_type_get(tls) != GNUTLS_CRT_X509) return;
  certs = gnutls_certificate_get_peers(tls, &n);
  if (certs == NULL || n == 0) return;
  gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                   .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
  unsigned int status = 0;
  if (gnutls_certificate_verify_peers(tls, &purpose, 1, &status) < 0 || status != 0) return;
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0) return;
  if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
    size_t size = sizeof r->peer.common_name;
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, r->peer.common_name, &size) < 0)
      r->peer.common_name[0] = '\0';
    for (unsigned int i = 0; r->peer.n_uris < MU_RPC_PEER_MAX_URIS; i++) {
      char san[256];
      size_t sz = sizeof san - 1;
      int type = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &sz, NULL);
      if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
      if (type == GNUTLS_SAN_URI && sz < sizeof san) {
        san[sz] = '\0';
        snprintf(r->peer.uris[r->peer.n_uris++], sizeof r->peer.uris[0], "%s", san);
      }
      if (type < 0 && type != GNUTLS_E_SHORT_MEMORY_BUFFER) break;
    }
    gnutls_datum_t pem = {NULL, 0};
    if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) == 0) {
      r->pem = malloc(pem.size + 1);
      if (r->pem != NULL) {
        memcpy(r->pem, pem.data, pem.size);
        r->pem[pem.size] = '\0';
        r->peer.pem = r->pem;
        r->peer.verified = 1;
      }
      gnutls_free(pem.data);
    }
  }
  gnutls_x509_crt_deinit(crt);
}

static void peer_address(struct MHD_Connection *conn, char *buf, size_t size) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(buf, size, "?");
  if (ci == NULL || ci->client_addr == NULL) return;
  char ip[INET6_ADDRSTRLEN] = "?";
  const struct sockaddr *sa = ci->client_addr;
  int port = 0;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
  }
  snprintf(buf, size, "ipv4:%s:%d", ip, port);
}

/* --- answers --- */

void mu_console_req_unref(mu_console_req *r) {
  if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1) return;
  for (int i = 0; i < MU_CQ_COUNT; i++) free(r->query[i]);
  free(r->pem);
  free(r->body);
  if (r->stream != NULL) { /* answered after its connection gave up: nobody will read it */
    mu_console_stream_reader_gone(r->stream);
    mu_console_stream_unref(r->stream);
  }
  free(r);
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned int status, struct MHD_Response *resp,
                             const char *ctype, int no_store) {
  if (resp == NULL) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", ctype);
  MHD_add_response_header(resp, "Content-Security-Policy", csp);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(resp, "Cache-Control", no_store ? "no-store" : "no-cache");
  enum MHD_Result ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Takes body (malloc). */
static enum MHD_Result answer_json(struct MHD_Connection *conn, unsigned int status, char *body) {
  if (body == NULL) return MHD_NO;
  struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) free(body);
  if (resp != NULL && status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"muster\"");
  return queue(conn, status, resp, "application/json; charset=utf-8", 1);
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, unsigned int status, const char *msg) {
  return answer_json(conn, status, mu_console_error_json(status, msg));
}

static enum MHD_Result answer_asset(struct MHD_Connection *conn, unsigned int status, const mu_console_asset *a) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
  return queue(conn, status, resp, a->content_type, 0);
}

/* The event stream's reader (a connection thread): blocks until the loop pushed bytes. */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max) {
  mu_console_stream *s = cls;
  (void)pos;
  long n = mu_console_stream_read(s, buf, max, MU_CONSOLE_KEEPALIVE_MS);
  if (n > 0) return n;
  if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
  static const char ping[] = ": keep-alive\n\n";
  if (max < sizeof ping - 1) return 0;
  memcpy(buf, ping, sizeof ping - 1);
  return (ssize_t)(sizeof ping - 1);
}

static void events_done(void *cls) {
  mu_console_stream *s = cls;
  mu_console_stream_reader_gone(s);
  mu_console_stream_unref(s);
}

static enum MHD_Result answer_stream(struct MHD_Connection *conn, mu_console_stream *s) {
  mu_console_stream_ref(s);
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_events, s, events_done);
  if (resp == NULL) {
    mu_console_stream_unref(s);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "X-Accel-Buffering", "no");
  return queue(conn, MHD_HTTP_OK, resp, "text/event-stream; charset=utf-8", 1);
}

/* Queues r for the loop and waits for its answer (or the console stopping). 0 answered. */
static int ask_loop(mu_console *c, mu_console_req *r) {
  pthread_mutex_lock(&c->lock);
  if (c->stopping || c->queued >= MU_CONSOLE_QUEUE_MAX) {
    pthread_mutex_unlock(&c->lock);
    return -1;
  }
  atomic_fetch_add(&r->refs, 1); /* the queue's */
  if (c->tail) c->tail->next = r;
  else c->head = r;
  c->tail = r;
  c->queued++;
  pthread_mutex_unlock(&c->lock);
  uv_async_send(&c->async);
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += MU_CONSOLE_WAIT_MS / 1000;
  pthread_mutex_lock(&c->lock);
  while (!r->done && !c->stopping)
    if (pthread_cond_timedwait(&c->cond, &c->lock, &until) == ETIMEDOUT) break;
  int done = r->done;
  pthread_mutex_unlock(&c->lock);
  return done ? 0 : -1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  mu_console *c = cls;
  (void)version;
  (void)upload;
  (void)con_cls;
  if (*upload_size != 0) return answer_error(conn, 413, "the console takes no request body");
  mu_console_route route;
  char msg[128];
  int status = mu_console_route_parse(method, url, &route, msg, sizeof msg);
  if (status != MU_CONSOLE_HTTP_OK) return answer_error(conn, (unsigned int)status, msg);
  const mu_console_asset *a;
  switch (route.kind) {
    case MU_CONSOLE_PAGE:
      a = mu_console_asset_find("index.html");
      return a ? answer_asset(conn, route.page_is_404 ? MHD_HTTP_NOT_FOUND : MHD_HTTP_OK, a)
               : answer_error(conn, 500, "console page not built in");
    case MU_CONSOLE_STATIC:
      a = mu_console_asset_find(route.static_name);
      if (a != NULL && strcmp(a->name, "index.html") != 0) return answer_asset(conn, MHD_HTTP_OK, a);
      return answer_error(conn, MHD_HTTP_NOT_FOUND, "no such file");
    case MU_CONSOLE_NOT_FOUND: return answer_error(conn, MHD_HTTP_NOT_FOUND, "not found");
    default: break;
  }
  /* an API call: everything the loop needs is copied out of MHD here */
  mu_console_req *r = calloc(1, sizeof *r);
  if (r == NULL) return MHD_NO;
  atomic_init(&r->refs, 1);
  r->route = route;
  for (int i = 0; i < MU_CQ_COUNT; i++) {
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, mu_console_query_names[i]);
    if (v == NULL) continue;
    if (strlen(v) > MU_CONSOLE_QUERY_VALUE_MAX) {
      mu_console_req_unref(r);
      return answer_error(conn, MHD_HTTP_BAD_REQUEST, "query value too long");
    }
    r->query[i] = strdup(v);
    if (r->query[i] == NULL) {
      mu_console_req_unref(r);
      return MHD_NO;
    }
  }
  r->auth = mu_console_bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                              r->bearer, sizeof r->bearer);
  peer_address(conn, r->peer.address, sizeof r->peer.address);
  if (c->tls_ca != NULL) read_client_cert(conn, r);
  enum MHD_Result ret;
  if (ask_loop(c, r) != 0) {
    ret = answer_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "musterd is busy or stopping");
  } else if (r->stream != NULL) {
    mu_console_stream *st = r->stream; /* the response takes it over */
    r->stream = NULL;
    ret = answer_stream(conn, st);
    mu_console_stream_unref(st);
  } else {
    char *body = r->body;
    r->body = NULL;
    ret = answer_json(conn, r->status, body);
  }
  mu_console_req_unref(r);
  return ret;
}

/* --- the loop side of the queue --- */

static void on_async(uv_async_t *h) {
  mu_console *c = h->data;
  for (;;) {
    pthread_mutex_lock(&c->lock);
    mu_console_req *r = c->head;
    if (r != NULL) {
      c->head = r->next;
      if (c->head == NULL) c->tail = NULL;
      c->queued--;
    }
    pthread_mutex_unlock(&c->lock);
    if (r == NULL) return;
    mu_console_api_handle(c, r); /* sets status and body or stream */
    pthread_mutex_lock(&c->lock);
    r->done = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    mu_console_req_unref(r);
  }
}

static void on_sweep(uv_timer_t *t) { mu_console_subs_sweep(t->data); }

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
  mu_log(MU_LOG_DEBUG, "console", "%s", line);
}

static int parse_listen(const char *addr, struct sockaddr_in *sa, mu_err *err) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
    return mu_err_set(err, MU_EINVAL, "--web-listen '%s': expected HOST:PORT", addr);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  uint64_t port;
  if (mu_console_param_uint(colon + 1, 0, 65535, &port) != 0)
    return mu_err_set(err, MU_EINVAL, "--web-listen '%s': bad port", addr);
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0) sa->sin_addr.s_addr = htonl(INADDR_ANY);
  else if (strcmp(host, "localhost") == 0) sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
    return mu_err_set(err, MU_EINVAL, "--web-listen '%s': host must be an IPv4 address", addr);
  return 0;
}

static void console_free(mu_console *c) {
  pthread_cond_destroy(&c->cond);
  pthread_mutex_destroy(&c->lock);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->tls_ca);
  free(c);
}

/* Both handles close; the second close callback frees. */
static void on_closed(uv_handle_t *h) {
  mu_console *c = h->data;
  if (++c->closed == 2) console_free(c);
}

static int load_tls(mu_console *c, mu_daemon *d, mu_err *err) {
  const char *cert = c->cfg.tls_cert[0] ? c->cfg.tls_cert : d->cfg.tls_cert;
  const char *key = c->cfg.tls_key[0] ? c->cfg.tls_key : d->cfg.tls_key;
  if (cert[0] == '\0') return 0; /* --insecure without --web-tls-*: plain HTTP */
  if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
    return mu_err_set(err, MU_ENOTSUP, "--web-listen: libmicrohttpd was built without TLS");
  int rc = read_pem("console certificate", cert, &c->tls_cert, err);
  if (rc == 0) rc = read_pem("console key", key, &c->tls_key, err);
  if (rc == 0 && !d->cfg.insecure && d->cfg.tls_ca[0] != '\0')
    rc = read_pem("--tls-ca", d->cfg.tls_ca, &c->tls_ca, err);
  if (rc == 0) rc = check_pair(c->tls_cert, c->tls_key, cert, key, err);
  if (rc == 0) c->tls = 1;
  return rc;
}

int mu_console_start(mu_daemon *d, const mu_console_config *cfg, mu_err *err) {
  if (cfg->listen[0] == '\0') return 0;
  struct sockaddr_in sa;
  int rc = parse_listen(cfg->listen, &sa, err);
  if (rc != 0) return rc;
  mu_console *c = calloc(1, sizeof *c);
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  c->d = d;
  c->cfg = *cfg;
  pthread_mutex_init(&c->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cond, &ca);
  pthread_condattr_destroy(&ca);
  rc = load_tls(c, d, err);
  if (rc != 0) {
    console_free(c);
    return rc;
  }
  uv_async_init(d->loop, &c->async, on_async);
  c->async.data = c;
  uv_timer_init(d->loop, &c->sweep);
  c->sweep.data = c;
  unsigned int mflags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  struct MHD_OptionItem tls[4];
  size_t n = 0;
  if (c->tls) {
    mflags |= MHD_USE_TLS;
    tls[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, c->tls_cert};
    tls[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, c->tls_key};
    /* asks for (does not require) a client certificate; a token works without one */
    if (c->tls_ca != NULL) tls[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, c->tls_ca};
  }
  tls[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  c->mhd = MHD_start_daemon(mflags, 0, NULL, NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, c,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned int)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned int)(cfg->max_connections / 2), MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
                            MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
  if (c->mhd == NULL) {
    rc = mu_err_set(err, MU_EIO, "--web-listen %s: cannot serve there (address in use?)", cfg->listen);
    uv_close((uv_handle_t *)&c->async, on_closed);
    uv_close((uv_handle_t *)&c->sweep, on_closed);
    return rc;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_BIND_PORT);
  c->port = info ? info->port : (int)ntohs(sa.sin_port);
  uv_timer_start(&c->sweep, on_sweep, 2000, 2000);
  d->console = c;
  mu_info("console", "web console on %s://%s/ (port %d)%s", c->tls ? "https" : "http", cfg->listen, c->port,
          c->tls ? "" : "; INSECURE: plain HTTP, anyone who reaches it sees the fleet");
  return 0;
}

void mu_console_stop(mu_daemon *d) {
  mu_console *c = d->console;
  if (c == NULL) return;
  d->console = NULL;
  pthread_mutex_lock(&c->lock);
  c->stopping = 1;
  mu_console_req *r = c->head;
  c->head = c->tail = NULL;
  c->queued = 0;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
  while (r != NULL) { /* waiting threads see stopping and answer 503 */
    mu_console_req *next = r->next;
    mu_console_req_unref(r);
    r = next;
  }
  mu_console_subs_close_all(c); /* readers end, so MHD can join their threads */
  MHD_stop_daemon(c->mhd);
  c->mhd = NULL;
  uv_timer_stop(&c->sweep);
  uv_close((uv_handle_t *)&c->async, on_closed);
  uv_close((uv_handle_t *)&c->sweep, on_closed);
}

int mu_console_port(const mu_daemon *d) { return d->console ? d->console->port : 0; }
