/* musterd's web console (`--web-listen HOST:PORT`, off by default): the embedded pages and
 * their read-only JSON endpoints, over HTTPS with musterd's server certificate (plain HTTP
 * under --insecure), behind the admin API's authentication: a bearer token (viewer or more)
 * or an admin certificate. docs/console.md is the user's side.
 *
 * Threads: libmicrohttpd runs a thread per connection (bounded by max_connections). Those
 * threads never touch daemon state: a request is queued to the loop thread (uv_async) and
 * the connection thread waits for its answer; live events reach it through a bounded stream
 * (stream.h). Everything in this header runs on the loop thread. */
#ifndef MU_CONSOLE_H
#define MU_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

struct mu_daemon;
typedef struct mu_console mu_console;

typedef struct mu_console_config {
  char listen[256];         /* --web-listen HOST:PORT; "" = no console */
  char tls_cert[1024];      /* --web-tls-cert; "" = musterd's --tls-cert */
  char tls_key[1024];       /* --web-tls-key; "" = musterd's --tls-key */
  uint32_t max_connections; /* --web-max-connections (default 64) */
  size_t stream_buffer;     /* --web-stream-buffer: bytes buffered per live stream (1 MiB) */
} mu_console_config;

void mu_console_config_init(mu_console_config *cfg);
/* 1 when flag (without "--") is one of the console's. */
int mu_console_config_has(const char *flag);
/* Sets flag from value; MU_EINVAL naming the flag for a bad value. */
int mu_console_config_set(mu_console_config *cfg, const char *flag, const char *value, mu_err *err);
/* The shape of the flags, given musterd's own TLS mode (bad configuration, exit 2). */
int mu_console_config_check(const mu_console_config *cfg, int insecure, mu_err *err);

/* Serves the console when cfg->listen is set (else does nothing): d->console is set. Reads
 * the TLS files (musterd's --tls-cert/--tls-key unless overridden; its --tls-ca asks for
 * client certificates). Errors name the flag or file. */
int mu_console_start(struct mu_daemon *d, const mu_console_config *cfg, mu_err *err);
/* Ends every live stream, stops the server (joining its threads) and frees d->console. */
void mu_console_stop(struct mu_daemon *d);
/* The bound port (tests, logs); 0 when not serving. */
int mu_console_port(const struct mu_daemon *d);

#endif
