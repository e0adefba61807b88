/* /metrics and /healthz over libmicrohttpd: an internal-thread daemon serving the last
 * snapshot published by the loop thread under a mutex. */
#include "lib/metrics/httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MU_PROM_MAX (4u << 20)

struct mu_metrics_server {
  struct MHD_Daemon *mhd;
  pthread_mutex_t lock;
  char *text;
  int healthy;
  char health_msg[256];
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
  mu_metrics_server *s = cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)con_cls;
  unsigned int status = MHD_HTTP_OK;
  char *body = NULL;
  const char *ctype = "text/plain; charset=utf-8";
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
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
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (r == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", ctype);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

int mu_metrics_server_start(const char *addr, mu_metrics_server **ret, int *ret_port,
                            mu_err *err) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
    return mu_err_set(err, MU_EINVAL, "metrics address '%s': expected HOST:PORT", addr);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535)
    return mu_err_set(err, MU_EINVAL, "metrics address '%s': bad port", addr);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
  else if (strcmp(host, "localhost") == 0)
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return mu_err_set(err, MU_EINVAL, "metrics address '%s': host must be an IPv4 address", addr);
  mu_metrics_server *s = calloc(1, sizeof *s);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  pthread_mutex_init(&s->lock, NULL);
  s->healthy = 1;
  s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
  if (s->mhd == NULL) {
    pthread_mutex_destroy(&s->lock);
    free(s);
    return mu_err_set(err, MU_EIO, "cannot serve metrics on %s (address in use?)", addr);
  }
  if (ret_port != NULL) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    *ret_port = info ? info->port : (int)port;
  }
  *ret = s;
  return 0;
}

void mu_metrics_server_publish(mu_metrics_server *s, const char *text, int healthy,
                               const char *health_msg) {
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
  pthread_mutex_destroy(&s->lock);
  free(s->text);
  free(s);
}

void mu_prom_add(mu_prom *p, const char *name, const char *type, const char *help,
                 const char *labels, double value) {
  char line[1024];
  int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s%s%s%s %.17g\n", name, help,
                   name, type, name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", value);
  if (n <= 0 || (size_t)n >= sizeof line || p->len + (size_t)n + 1 > MU_PROM_MAX) return;
  if (p->len + (size_t)n + 1 > p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 4096;
    while (cap < p->len + (size_t)n + 1) cap *= 2;
    char *g = realloc(p->buf, cap);
    if (g == NULL) return;
    p->buf = g;
    p->cap = cap;
  }
  memcpy(p->buf + p->len, line, (size_t)n + 1);
  p->len += (size_t)n;
}

void mu_prom_free(mu_prom *p) {
  free(p->buf);
  p->buf = NULL;
  p->len = p->cap = 0;
}
