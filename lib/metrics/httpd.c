/* /metrics and /healthz over libmicrohttpd: an internal-thread daemon serving the last
 * snapshot published by the loop thread under a mutex. Optionally over HTTPS (MHD's GnuTLS),
 * and with a CA given, only to clients whose certificate chains to it: MHD asks for a client
 * certificate during the handshake, and each request's certificate is verified here through
 * the GnuTLS session before anything is served. */
#include "lib/metrics/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/metrics/registry.h"

#define MU_PEM_MAX (1u << 20) /* a certificate, key or CA file past this is refused */
#define MU_REFUSED_MAX 256    /* (address, reason) pairs remembered to log a refusal once */

/* Reasons a client is refused besides a gnutls verification status (which is never
 * negative). */
#define MU_REFUSED_NO_CERT (-1)
#define MU_REFUSED_ERROR (-2)

typedef struct refused_peer {
  char addr[INET6_ADDRSTRLEN];
  long reason; /* MU_REFUSED_* or a gnutls_certificate_status_t set */
} refused_peer;

struct mu_metrics_server {
  struct MHD_Daemon *mhd;
  atomic_int serving; /* MHD_start_daemon returned: its messages are about connections */
  pthread_mutex_t lock;
  char *text;
  int healthy;
  char health_msg[256];
  /* PEM text (NUL-terminated) held while MHD runs; NULL without TLS / without a client CA */
  char *tls_cert, *tls_key, *tls_ca;
  /* refusals already logged (under lock): a ring, so a flood of addresses stays bounded */
  refused_peer refused[MU_REFUSED_MAX];
  size_t n_refused, next_refused;
};

static int given(const char *s) { return s != NULL && s[0] != '\0'; }

/* The address of conn's peer as text ("?" when MHD cannot tell). */
static void peer_addr(struct MHD_Connection *conn, char *buf, size_t size) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(buf, size, "?");
  if (ci == NULL || ci->client_addr == NULL) return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)size);
}

/* 0 when conn's client certificate chains to the CA given to MHD and may be used by a TLS
 * client; else 1 with *ret_reason and why (for the log). Runs on MHD's thread. */
static int client_refused(struct MHD_Connection *conn, long *ret_reason, char *why, size_t size) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  gnutls_session_t tls = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
  unsigned int n = 0;
  if (tls == NULL || gnutls_certificate_type_get(tls) != GNUTLS_CRT_X509 ||
      gnutls_certificate_get_peers(tls, &n) == NULL || n == 0) {
    *ret_reason = MU_REFUSED_NO_CERT;
    snprintf(why, size, "no client certificate");
    return 1;
  }
  /* the purpose check passes a certificate without extended key usage, as TLS clients do */
  gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                   .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
  unsigned int status = 0;
  int rc = gnutls_certificate_verify_peers(tls, &purpose, 1, &status);
  if (rc < 0) {
    *ret_reason = MU_REFUSED_ERROR;
    snprintf(why, size, "client certificate not verified: %s", gnutls_strerror(rc));
    return 1;
  }
  if (status == 0) return 0;
  *ret_reason = (long)status;
  gnutls_datum_t text = {NULL, 0};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
    snprintf(why, size, "%s", (const char *)text.data);
    gnutls_free(text.data);
    size_t len = strlen(why);
    while (len > 0 && why[len - 1] == ' ') why[--len] = '\0';
  } else {
    snprintf(why, size, "client certificate not trusted (status 0x%x)", status);
  }
  return 1;
}

/* Logs a refusal unless this address was already logged for this reason. */
static void log_refusal(mu_metrics_server *s, struct MHD_Connection *conn, long reason, const char *why) {
  char addr[INET6_ADDRSTRLEN];
  peer_addr(conn, addr, sizeof addr);
  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < s->n_refused; i++) {
    if (s->refused[i].reason == reason && strcmp(s->refused[i].addr, addr) == 0) {
      pthread_mutex_unlock(&s->lock);
      return;
    }
  }
  refused_peer *p = &s->refused[s->next_refused];
  snprintf(p->addr, sizeof p->addr, "%s", addr);
  p->reason = reason;
  s->next_refused = (s->next_refused + 1) % MU_REFUSED_MAX;
  if (s->n_refused < MU_REFUSED_MAX) s->n_refused++;
  pthread_mutex_unlock(&s->lock);
  mu_warn("metrics",
          "refused %s: %s (a client certificate signed by --metrics-tls-ca is required; "
          "logged once per address and reason)",
          addr, why);
}

/* MHD's own messages: at start they explain a failure; once serving they are mostly about
 * single bad connections (a plaintext request on the HTTPS port, a port scan), which anyone
 * who reaches the port could turn into a flood, so they go to debug. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  mu_metrics_server *s = cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
  mu_log(atomic_load(&s->serving) ? MU_LOG_DEBUG : MU_LOG_WARN, "metrics", "%s", line);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  mu_metrics_server *s = cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)con_cls;
  unsigned int status = MHD_HTTP_OK;
  char *body = NULL;
  const char *ctype = "text/plain; charset=utf-8";
  long reason = 0;
  char why[256];
  if (s->tls_ca != NULL && client_refused(conn, &reason, why, sizeof why)) {
    log_refusal(s, conn, reason, why);
    status = MHD_HTTP_FORBIDDEN;
    body = strdup("forbidden: a client certificate signed by the metrics CA is required\n");
  } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    body = strdup("only GET\n");
  } else {
    pthread_mutex_lock(&s->lock);
    if (strcmp(url, "/metrics") == 0) {
      body = strdup(s->text ? s->text : "");
      ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(url, "/healthz") == 0) {
      status = s->healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
      size_t n = strlen(s->health_msg) + 16;
      body = malloc(n);
      if (body) snprintf(body, n, "%s\n", s->healthy ? "ok" : s->health_msg);
    } else {
      status = MHD_HTTP_NOT_FOUND;
      body = strdup("not found: try /metrics or /healthz\n");
    }
    pthread_mutex_unlock(&s->lock);
  }
  if (body == NULL) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (r == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", ctype);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

int mu_metrics_options_check(const mu_metrics_options *opts, mu_err *err) {
  int cert = given(opts->tls_cert);
  int key = given(opts->tls_key);
  if (cert != key)
    return mu_err_set(err, MU_EINVAL,
                      "metrics over HTTPS needs both --metrics-tls-cert and --metrics-tls-key: "
                      "%s is missing",
                      cert ? "--metrics-tls-key (metrics_tls_key)" : "--metrics-tls-cert (metrics_tls_cert)");
  if (given(opts->tls_ca) && !cert)
    return mu_err_set(err, MU_EINVAL,
                      "--metrics-tls-ca (metrics_tls_ca) needs --metrics-tls-cert and "
                      "--metrics-tls-key: client certificates are asked for over HTTPS only");
  if (cert && !given(opts->listen))
    return mu_err_set(err, MU_EINVAL,
                      "--metrics-tls-cert and --metrics-tls-key given without --metrics-listen "
                      "(metrics_listen): there is no metrics endpoint to serve over HTTPS");
  return 0;
}

static int parse_listen(const char *addr, struct sockaddr_in *ret_sa, mu_err *err) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
    return mu_err_set(err, MU_EINVAL, "metrics address '%s': expected HOST:PORT", addr);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
    return mu_err_set(err, MU_EINVAL, "metrics address '%s': bad port", addr);
  memset(ret_sa, 0, sizeof *ret_sa);
  ret_sa->sin_family = AF_INET;
  ret_sa->sin_port = htons((uint16_t)port);
  if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0) ret_sa->sin_addr.s_addr = htonl(INADDR_ANY);
  else if (strcmp(host, "localhost") == 0) ret_sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (inet_pton(AF_INET, host, &ret_sa->sin_addr) != 1)
    return mu_err_set(err, MU_EINVAL, "metrics address '%s': host must be an IPv4 address", addr);
  return 0;
}

/* Reads a PEM file whole into *ret (NUL-terminated, caller frees). flag names it in errors. */
static int read_pem(const char *flag, const char *path, char **ret, mu_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "%s %s: %s", flag, path, strerror(errno));
  char *buf = malloc(MU_PEM_MAX + 1);
  if (buf == NULL) {
    fclose(f);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  size_t n = fread(buf, 1, MU_PEM_MAX + 1, f);
  int failed = ferror(f);
  fclose(f);
  int rc = 0;
  if (failed) rc = mu_err_set(err, MU_EIO, "%s %s: read error", flag, path);
  else if (n > MU_PEM_MAX)
    rc = mu_err_set(err, MU_EINVAL, "%s %s: bigger than %u KiB, not a PEM file", flag, path, MU_PEM_MAX >> 10);
  else if (n == 0 || memchr(buf, '\0', n) != NULL)
    rc = mu_err_set(err, MU_EINVAL, "%s %s: empty or binary, expected PEM", flag, path);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  char *fit = realloc(buf, n + 1);
  *ret = fit != NULL ? fit : buf;
  return 0;
}

static gnutls_datum_t datum(const char *pem) {
  gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)strlen(pem)};
  return d;
}

/* MU_EINVAL naming flag and path unless pem holds at least one X.509 certificate. */
static int check_certs(const char *flag, const char *path, const char *pem, mu_err *err) {
  gnutls_x509_crt_t *certs = NULL;
  unsigned int n = 0;
  gnutls_datum_t d = datum(pem);
  int rc = gnutls_x509_crt_list_import2(&certs, &n, &d, GNUTLS_X509_FMT_PEM, 0);
  for (unsigned int i = 0; rc >= 0 && i < n; i++) gnutls_x509_crt_deinit(certs[i]);
  gnutls_free(certs);
  if (rc < 0 || n == 0)
    return mu_err_set(err, MU_EINVAL, "%s %s: no PEM certificate in it (%s)", flag, path,
                      rc < 0 ? gnutls_strerror(rc) : "empty");
  return 0;
}

/* Reads the TLS files into s and checks them the way MHD will use them, so a bad file is
 * named here instead of failing inside MHD_start_daemon with a line on stderr. */
static int load_tls(mu_metrics_server *s, const mu_metrics_options *opts, mu_err *err) {
  if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
    return mu_err_set(err, MU_ENOTSUP, "--metrics-tls-cert: this libmicrohttpd was built without TLS support");
  int rc = read_pem("--metrics-tls-cert", opts->tls_cert, &s->tls_cert, err);
  if (rc == 0) rc = read_pem("--metrics-tls-key", opts->tls_key, &s->tls_key, err);
  if (rc == 0 && given(opts->tls_ca)) rc = read_pem("--metrics-tls-ca", opts->tls_ca, &s->tls_ca, err);
  if (rc == 0) rc = check_certs("--metrics-tls-cert", opts->tls_cert, s->tls_cert, err);
  if (rc == 0 && s->tls_ca != NULL) rc = check_certs("--metrics-tls-ca", opts->tls_ca, s->tls_ca, err);
  if (rc != 0) return rc;
  gnutls_x509_privkey_t key;
  if (gnutls_x509_privkey_init(&key) < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  gnutls_datum_t d = datum(s->tls_key);
  int grc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
  gnutls_x509_privkey_deinit(key);
  if (grc < 0)
    return mu_err_set(err, MU_EINVAL, "--metrics-tls-key %s: not an unencrypted PEM private key (%s)", opts->tls_key,
                      gnutls_strerror(grc));
  gnutls_certificate_credentials_t cred;
  if (gnutls_certificate_allocate_credentials(&cred) < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  gnutls_datum_t cert = datum(s->tls_cert);
  gnutls_datum_t kd = datum(s->tls_key);
  grc = gnutls_certificate_set_x509_key_mem(cred, &cert, &kd, GNUTLS_X509_FMT_PEM);
  gnutls_certificate_free_credentials(cred);
  if (grc < 0)
    return mu_err_set(err, MU_EINVAL, "--metrics-tls-cert %s with --metrics-tls-key %s: %s", opts->tls_cert,
                      opts->tls_key, gnutls_strerror(grc));
  return 0;
}

static void server_free(mu_metrics_server *s) {
  pthread_mutex_destroy(&s->lock);
  free(s->text);
  free(s->tls_cert);
  free(s->tls_key);
  free(s->tls_ca);
  free(s);
}

int mu_metrics_server_start(const mu_metrics_options *opts, mu_metrics_server **ret, int *ret_port, mu_err *err) {
  struct sockaddr_in sa;
  int rc = mu_metrics_options_check(opts, err);
  if (rc == 0 && !given(opts->listen)) rc = mu_err_set(err, MU_EINVAL, "metrics address: none given");
  if (rc == 0) rc = parse_listen(opts->listen, &sa, err);
  if (rc != 0) return rc;
  mu_metrics_server *s = calloc(1, sizeof *s);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  pthread_mutex_init(&s->lock, NULL);
  s->healthy = 1;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  struct MHD_OptionItem tls[4];
  size_t n = 0;
  if (given(opts->tls_cert)) {
    rc = load_tls(s, opts, err);
    if (rc != 0) {
      server_free(s);
      return rc;
    }
    flags |= MHD_USE_TLS;
    tls[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
    tls[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
    /* MHD requests (does not require) a client certificate when it has a trust list; the
     * verdict is answer()'s */
    if (s->tls_ca != NULL) tls[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_ca};
  }
  tls[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  /* the logger first, so that MHD's messages about the other options go through it */
  s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
  if (s->mhd == NULL) {
    server_free(s);
    return mu_err_set(err, MU_EIO, "cannot serve metrics on %s (address in use?)", opts->listen);
  }
  atomic_store(&s->serving, 1);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  int port = info ? info->port : (int)ntohs(sa.sin_port);
  mu_info("metrics", "metrics on %s://%s/metrics (port %d)%s", s->tls_cert ? "https" : "http", opts->listen, port,
          s->tls_ca ? ", client certificate required" : "");
  if (ret_port != NULL) *ret_port = port;
  *ret = s;
  return 0;
}

void mu_metrics_server_publish(mu_metrics_server *s, const char *text, int healthy, const char *health_msg) {
  char *copy = strdup(text ? text : "");
  pthread_mutex_lock(&s->lock);
  free(s->text);
  s->text = copy;
  s->healthy = healthy;
  snprintf(s->health_msg, sizeof s->health_msg, "%s", health_msg ? health_msg : "unhealthy");
  pthread_mutex_unlock(&s->lock);
}

void mu_metrics_server_stop(mu_metrics_server *s) {
  if (s == NULL) return;
  MHD_stop_daemon(s->mhd);
  server_free(s);
}

void mu_prom_add(mu_prom *p, const char *name, const char *type, const char *help, const char *labels, double value) {
  mu_prom_printf(p, "# HELP %s %s\n# TYPE %s %s\n%s%s%s%s %.17g\n", name, help, name, type, name, labels[0] ? "{" : "",
                 labels, labels[0] ? "}" : "", value);
}

void mu_prom_free(mu_prom *p) {
  free(p->buf);
  p->buf = NULL;
  p->len = p->cap = 0;
}
