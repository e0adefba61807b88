/* Shared by the console's two halves: server.c (libmicrohttpd's connection threads, the
 * request queue) and api.c (the JSON endpoints, on the loop thread). */
#ifndef MU_CONSOLE_INT_H
#define MU_CONSOLE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "controlplane/console/console.h"
#include "controlplane/console/encode.h"
#include "controlplane/console/request.h"
#include "controlplane/console/stream.h"
#include "lib/rpc/rpc.h"

/* Query parameters the endpoints read; others are ignored. */
typedef enum {
  MU_CQ_SELECTOR = 0,
  MU_CQ_STATE,
  MU_CQ_TAIL,
  MU_CQ_LIMIT,
  MU_CQ_AFTER,
  MU_CQ_OFFSET,
  MU_CQ_HISTORY,
  MU_CQ_COUNT
} mu_console_query;
extern const char *const mu_console_query_names[MU_CQ_COUNT];
#define MU_CONSOLE_QUERY_VALUE_MAX 1100 /* a longer value is 400 before it is queued */

/* One API request handed from a connection thread to the loop. Two references while queued
 * (the connection thread's and the queue's); the last unref frees it. */
typedef struct mu_console_req {
  struct mu_console_req *next;
  atomic_int refs;
  mu_console_route route;
  char *query[MU_CQ_COUNT]; /* NULL when absent */
  int auth;                 /* mu_console_bearer's verdict: 1 token, 0 none, -1 malformed */
  char bearer[MU_CONSOLE_TOKEN_MAX + 1];
  mu_rpc_peer peer; /* the client certificate (verified) and address */
  char *pem;        /* peer.pem's storage */
  /* the answer, set by the loop under the console's lock */
  int done;
  unsigned int status;
  char *body;                /* JSON (malloc) */
  mu_console_stream *stream; /* server-sent events instead of body (a reference) */
} mu_console_req;

void mu_console_req_unref(mu_console_req *r);

/* A live /events subscription (loop thread): the job watcher feeding a stream. */
typedef struct mu_console_sub mu_console_sub;

struct mu_console {
  struct mu_daemon *d;
  mu_console_config cfg;
  int tls; /* serving HTTPS */
  int port;
  struct MHD_Daemon *mhd;
  char *tls_cert, *tls_key, *tls_ca; /* PEM text while MHD runs */
  uv_async_t async;                  /* wakes the loop for queued requests */
  uv_timer_t sweep;                  /* drops subscriptions whose reader went away */
  pthread_mutex_t lock;              /* queue, done flags, stopping */
  pthread_cond_t cond;
  mu_console_req *head, *tail;
  size_t queued;
  int stopping;
  /* loop thread only */
  mu_console_sub *subs;
  size_t n_subs;
  int closed; /* handles closed so far (2: free) */
};

/* api.c: answers r (sets status and body or stream) on the loop thread. */
void mu_console_api_handle(mu_console *c, mu_console_req *r);
/* api.c: ends every subscription (console stopping) and drops those whose reader left. */
void mu_console_subs_close_all(mu_console *c);
void mu_console_subs_sweep(mu_console *c);

#endif
