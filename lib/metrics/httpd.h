/* A small /metrics and /healthz endpoint for the daemons, on libmicrohttpd's own thread.
 * The loop thread publishes a snapshot (Prometheus text and a health verdict) now and then;
 * the HTTP thread only ever serves the last snapshot, so no daemon state is shared. */
#ifndef MU_METRICS_HTTPD_H
#define MU_METRICS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_metrics_server mu_metrics_server;

/* Where and how to serve. Strings are borrowed for the call only; NULL and "" mean unset.
 * The TLS fields are the daemons' --metrics-tls-* flags (metrics_tls_* config keys). */
typedef struct mu_metrics_options {
  const char *listen; /* HOST:PORT, an IPv4 host; port 0 picks one */
  /* PEM files. cert + key: HTTPS (any key gnutls reads: EC P-256 from `muster pki`, RSA,
   * PKCS#8). ca as well: every request must come with a client certificate that chains to
   * it (and, when it has an extended key usage, allows clientAuth); others get 403, logged
   * once per address and reason. Read once, at start. */
  const char *tls_cert;
  const char *tls_key;
  const char *tls_ca;
} mu_metrics_options;

/* Checks the options' shape without touching files: MU_EINVAL naming the missing flag when
 * only one of cert and key is given, when ca comes without them, or when TLS is given
 * without listen. For the daemons' flag parsing (bad configuration, exit 2). */
int mu_metrics_options_check(const mu_metrics_options *opts, mu_err *err);

/* Checks the options, reads the TLS files, and serves on opts->listen from libmicrohttpd's
 * own thread (logging where, at info). *ret_port (may be NULL) gets the bound port. Errors: MU_EINVAL (address, option
 * shape, a file that is not a PEM certificate or key, a key that is not the certificate's),
 * MU_ENOENT/MU_EIO (a file unreadable, the address not bindable), MU_ENOTSUP (TLS asked of a
 * libmicrohttpd built without it). Owner stops it with mu_metrics_server_stop. */
int mu_metrics_server_start(const mu_metrics_options *opts, mu_metrics_server **ret, int *ret_port, mu_err *err);
/* Replaces the snapshot (copied). healthy=0 makes /healthz answer 503 with health_msg. */
void mu_metrics_server_publish(mu_metrics_server *s, const char *text, int healthy, const char *health_msg);
void mu_metrics_server_stop(mu_metrics_server *s);

/* Building Prometheus text: a growing buffer (bounded at 4 MiB; past it lines are dropped). */
typedef struct mu_prom {
  char *buf;
  size_t len, cap;
} mu_prom;

/* One sample with HELP/TYPE lines; labels is "" or e.g. "state=\"connected\"". */
void mu_prom_add(mu_prom *p, const char *name, const char *type, const char *help, const char *labels, double value);
void mu_prom_free(mu_prom *p);

#endif
