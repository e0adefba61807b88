/* A small /metrics and /healthz endpoint for the daemons, on libmicrohttpd's own thread.
 * The loop thread publishes a snapshot (Prometheus text and a health verdict) now and then;
 * the HTTP thread only ever serves the last snapshot, so no daemon state is shared. */
#ifndef MU_METRICS_HTTPD_H
#define MU_METRICS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_metrics_server mu_metrics_server;

/* Listens on HOST:PORT (port 0 picks one; *ret_port gets it, may be NULL). Owner stops it
 * with mu_metrics_server_stop. */
int mu_metrics_server_start(const char *addr, mu_metrics_server **ret, int *ret_port,
                            mu_err *err);
/* Replaces the snapshot (copied). healthy=0 makes /healthz answer 503 with health_msg. */
void mu_metrics_server_publish(mu_metrics_server *s, const char *text, int healthy,
                               const char *health_msg);
void mu_metrics_server_stop(mu_metrics_server *s);

/* Building Prometheus text: a growing buffer (bounded at 4 MiB; past it lines are dropped). */
typedef struct mu_prom {
  char *buf;
  size_t len, cap;
} mu_prom;

/* One sample with HELP/TYPE lines; labels is "" or e.g. "state=\"connected\"". */
void mu_prom_add(mu_prom *p, const char *name, const char *type, const char *help,
                 const char *labels, double value);
void mu_prom_free(mu_prom *p);

#endif
