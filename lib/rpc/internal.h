/* lib/rpc internals shared by engine.c, call.c, server.c and channel.c. Not a public header. */
#ifndef MU_RPC_INTERNAL_H
#define MU_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>

#include "lib/rpc/rpc.h"

/* A completion-queue tag: what to run on the loop thread when the operation completes. */
typedef struct mu_rpc_tag {
  void (*fn)(void *self, int ok);
  void *self;
} mu_rpc_tag;

typedef struct mu_rpc_event {
  mu_rpc_tag *tag;
  int ok;
} mu_rpc_event;

typedef struct mu_rpc_link {
  struct mu_rpc_link *prev, *next;
} mu_rpc_link;

#define MU_RPC_MAX_QUEUES 64

struct mu_rpc_engine {
  uv_loop_t *loop;
  /* Completion queues, each with a thread that waits on it. gRPC's debug build (Debian's)
   * scans every outstanding tag of a queue on each completion, so with one queue for 100,000
   * streams that scan was a fifth of musterd's CPU and quadratic: calls are spread over the
   * queues (mu_rpc_engine_pick_cq), and all of one call's tags go to its one queue. */
  grpc_completion_queue *cqs[MU_RPC_MAX_QUEUES];
  pthread_t threads[MU_RPC_MAX_QUEUES];
  size_t n_cqs;     /* queues with a running thread */
  size_t next_cq;   /* round robin */
  int queues_added; /* mu_rpc_engine_add_queues ran */
  uv_async_t wakeup;

  pthread_mutex_t lock; /* guards the event vector and cq_done */
  mu_rpc_event *events;
  size_t n_events, cap_events;
  mu_rpc_event *spare; /* the other buffer, swapped in on each drain */
  size_t cap_spare;
  size_t cq_done; /* threads that saw GRPC_QUEUE_SHUTDOWN */

  mu_rpc_link calls;    /* live mu_rpc_call (list head) */
  mu_rpc_link servers;  /* live mu_rpc_server */
  mu_rpc_link channels; /* live mu_rpc_channel */
  int closing;
  int cq_shutdown_started;
  void (*close_cb)(void *ud);
  void *close_ud;
};

/* The queue for a new call or request slot (round robin over the engine's queues). */
grpc_completion_queue *mu_rpc_engine_pick_cq(mu_rpc_engine *engine);

/* Metadata a call sends, with the gRPC view of it (slices point into md). Allocated only when a
 * call has some: most streams send none, and inline it cost ~20 KiB on every call. */
typedef struct mu_rpc_call_md {
  mu_rpc_metadata md;
  grpc_metadata grpc[MU_RPC_MAX_METADATA];
} mu_rpc_call_md;

struct mu_rpc_call {
  mu_rpc_link link; /* first: in engine->calls */
  mu_rpc_engine *engine;
  grpc_call *call;
  int is_server;
  mu_rpc_call_handlers handlers;
  void *ud;
  mu_rpc_channel *channel; /* client side */
  size_t max_send_queue;

  int ops_pending; /* batches started and not completed */
  mu_rpc_tag recv_tag, send_tag, final_tag, start_tag, headers_tag, status_send_tag;

  /* reading */
  int reading; /* a RECV_MESSAGE is outstanding */
  int read_stopped;
  grpc_byte_buffer *recv_buf;

  /* sending: a FIFO of byte buffers; one SEND_MESSAGE at a time */
  struct mu_rpc_send_item *send_head, *send_tail;
  size_t queued_bytes;
  size_t drain_below; /* mu_rpc_call_on_drain: its threshold, callback and argument */
  void (*drain_cb)(mu_rpc_call *call, void *arg);
  void *drain_arg;
  int sending;
  int headers_sent;                          /* server: initial metadata sent */
  struct mu_rpc_call_md *headers;            /* server: to send with the first message; NULL = none */
  int close_send_requested, close_send_sent; /* client */
  int finish_requested, finish_sent;         /* server */
  int finish_code;
  char *finish_message;
  struct mu_rpc_call_md *trailers; /* server: sent with the status; NULL = none */
  grpc_slice finish_slice;

  /* the end */
  int final_seen; /* server: RECV_CLOSE done; client: RECV_STATUS done */
  int done;       /* on_done has run (or is running) */
  int server_cancelled;
  int cancel_code; /* set by mu_rpc_call_cancel: reported instead of CANCELLED */
  char *cancel_message;

  /* server side request data */
  grpc_call_details details;
  grpc_metadata_array request_md;
  char *method;
  mu_rpc_observe_cb observe; /* the server's observer, told when the call is over */
  void *observe_ud;
  int observe_known; /* method is registered (else reported as "") */
  int64_t begin_mono_ns;
  void *auth; /* mu_rpc_call_set_auth */
  void (*auth_free)(void *auth);

  /* client side status */
  grpc_metadata_array recv_headers;
  grpc_metadata_array recv_trailers;
  grpc_status_code status_code;
  grpc_slice status_details;
  const char *error_string;
};

/* engine.c */
void mu_rpc_link_add(mu_rpc_link *head, mu_rpc_link *item);
void mu_rpc_link_remove(mu_rpc_link *item);
int mu_rpc_link_empty(const mu_rpc_link *head);
/* Re-checks whether a closing engine can shut its completion queue down. */
void mu_rpc_engine_maybe_finish(mu_rpc_engine *engine);
gpr_timespec mu_rpc_deadline(int64_t deadline_ms);
/* Channel/server args for options; caller frees with mu_rpc_args_free. */
grpc_channel_args *mu_rpc_args_new(const mu_rpc_options *opts, int server);
void mu_rpc_args_free(grpc_channel_args *args);

/* call.c */
int64_t mu_rpc_mono_ns(void);
mu_rpc_call *mu_rpc_call_alloc(mu_rpc_engine *engine, int is_server, size_t max_send_queue);
void mu_rpc_call_start_reading(mu_rpc_call *call);
void mu_rpc_call_client_begin(mu_rpc_call *call, const mu_rpc_metadata *md);
void mu_rpc_call_server_begin(mu_rpc_call *call);
void mu_rpc_metadata_from_grpc(mu_rpc_metadata *md, const grpc_metadata_array *arr);

/* peer.c: the peer of a server call from its auth context (pem borrowed from *ret_ctx,
 * which the caller releases with grpc_auth_context_release; NULL ctx when none). */
void mu_rpc_peer_fill(grpc_call *call, mu_rpc_peer *peer, grpc_auth_context **ret_ctx);

/* tls.c: server credentials that re-read their files when they change; NULL with err set.
 * The fetcher's state (*ret_state) must outlive the credentials: the server frees it with
 * mu_rpc_tls_state_free after grpc_server_destroy. */
typedef struct mu_rpc_tls_state mu_rpc_tls_state;
grpc_server_credentials *mu_rpc_tls_server_creds(const mu_rpc_creds *creds, mu_rpc_tls_state **ret_state, mu_err *err);
void mu_rpc_tls_state_free(mu_rpc_tls_state *s);
/* Reads a whole (small) file; NULL with err set. Caller frees. */
char *mu_rpc_read_file(const char *path, mu_err *err);

/* channel.c: calls of a closed channel are cancelled through this list */
struct mu_rpc_channel {
  mu_rpc_link link;
  mu_rpc_engine *engine;
  grpc_channel *channel;
  mu_rpc_options opts;
};

#endif
