/* lib/rpc: a small wrapper over the gRPC C core API (grpc/grpc.h) for one libuv loop.
 *
 * A completion-queue thread waits on gRPC and hands every completion to the loop thread through
 * a uv_async_t and a locked queue, so all callbacks below run on the loop thread and daemon
 * state needs no locks. Every call kind (unary, server-streaming, client-streaming, bidi) is one
 * mu_rpc_call: a stream of messages each way plus a final status. Messages are raw serialized
 * bytes; callers pack and unpack with protobuf-c.
 *
 * Life cycle: a call lives until its on_done callback has run; the wrapper frees it right after.
 * Sends are queued (bounded by max_send_queue bytes; overflow is MU_ENOSPC); small messages
 * queued back to back leave in one write. */
#ifndef MU_RPC_H
#define MU_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"

/* gRPC status codes (same numbers as grpc_status_code). */
enum {
  MU_RPC_OK = 0,
  MU_RPC_CANCELLED = 1,
  MU_RPC_UNKNOWN = 2,
  MU_RPC_INVALID_ARGUMENT = 3,
  MU_RPC_DEADLINE_EXCEEDED = 4,
  MU_RPC_NOT_FOUND = 5,
  MU_RPC_ALREADY_EXISTS = 6,
  MU_RPC_PERMISSION_DENIED = 7,
  MU_RPC_RESOURCE_EXHAUSTED = 8,
  MU_RPC_FAILED_PRECONDITION = 9,
  MU_RPC_ABORTED = 10,
  MU_RPC_OUT_OF_RANGE = 11,
  MU_RPC_UNIMPLEMENTED = 12,
  MU_RPC_INTERNAL = 13,
  MU_RPC_UNAVAILABLE = 14,
  MU_RPC_DATA_LOSS = 15,
  MU_RPC_UNAUTHENTICATED = 16,
};

/* Name of a status code ("UNAVAILABLE"); never NULL. */
const char *mu_rpc_code_name(int code);
/* Maps a MU_E* error code to the closest gRPC status code. */
int mu_rpc_code_from_err(int err_code);

#define MU_RPC_MAX_METADATA 16

typedef struct mu_rpc_metadata {
  size_t count;
  struct {
    char key[64];
    char value[512];
  } entries[MU_RPC_MAX_METADATA];
} mu_rpc_metadata;

/* Adds an entry (keys are lower-case ASCII); MU_ENOSPC when full, MU_EINVAL for a bad key. */
int mu_rpc_metadata_add(mu_rpc_metadata *md, const char *key, const char *value);
/* Value for key, or NULL. The pointer is valid while md is. */
const char *mu_rpc_metadata_get(const mu_rpc_metadata *md, const char *key);

/* Credentials: insecure, or TLS with PEM files (server: cert+key, optional client CA for mTLS;
 * client: CA, optional cert+key for mTLS). The files are read when a channel is created
 * (client) and, on a server, again on the next handshake after any of them changes on disk
 * (mtime or size): a renewed certificate is used by new connections while running streams go
 * on. A server file that turns unreadable keeps the last good set (logged once). */
typedef struct mu_rpc_creds {
  int tls; /* 0: insecure (plaintext) */
  const char *ca_file;
  const char *cert_file;
  const char *key_file;
  int require_client_cert; /* server side: GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY */
  const char *server_name; /* client side: name checked against the server certificate
                            * instead of the target's host (NULL: the target's host) */
  /* Client side, optional: PEM text used instead of the matching file (ca_pem for ca_file,
   * and so on), copied when the channel is created. For programs that hold certificates in
   * memory, e.g. a benchmark's thousands of simulated agents (lib/pki mu_pki_issue_ca). A
   * server ignores them: it reads its files, to reload them when they change. */
  const char *ca_pem;
  const char *cert_pem;
  const char *key_pem;
} mu_rpc_creds;

/* The peer of a server call as its TLS handshake proved it. Filled before any handler runs. */
#define MU_RPC_PEER_MAX_URIS 4
typedef struct mu_rpc_peer {
  int tls;                              /* the connection is TLS */
  int verified;                         /* a client certificate was presented and verified */
  char common_name[129];                /* subject CN of the client certificate, "" when none */
  char uris[MU_RPC_PEER_MAX_URIS][256]; /* URI subject alternative names */
  size_t n_uris;
  const char *pem;  /* the client's leaf certificate (PEM) or NULL; valid
                                   * during the gate callback only */
  char address[80]; /* "ipv4:127.0.0.1:5000" */
} mu_rpc_peer;

typedef struct mu_rpc_status {
  int code;                        /* MU_RPC_* */
  const char *message;             /* never NULL; valid during the callback */
  const mu_rpc_metadata *trailers; /* client side: trailing metadata; may be empty */
} mu_rpc_status;

typedef struct mu_rpc_engine mu_rpc_engine;
typedef struct mu_rpc_server mu_rpc_server;
typedef struct mu_rpc_channel mu_rpc_channel;
typedef struct mu_rpc_call mu_rpc_call;

/* Callbacks of one call. All run on the loop thread. */
typedef struct mu_rpc_call_handlers {
  /* One message from the peer. data is only valid during the callback. Return 0 to keep
   * reading; a non-zero return stops reading (the handler should then finish or cancel). */
  int (*on_message)(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud);
  /* The peer has no more messages (client half-closed, or server ended its stream).
   * Optional. */
  void (*on_read_end)(mu_rpc_call *call, void *ud);
  /* Client side: initial metadata from the server arrived. Optional. */
  void (*on_headers)(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud);
  /* The call is over: client side with the server's status; server side with the status we
   * sent, or CANCELLED when the peer went away. Runs exactly once; the call is freed after. */
  void (*on_done)(mu_rpc_call *call, const mu_rpc_status *status, void *ud);
} mu_rpc_call_handlers;

typedef struct mu_rpc_options {
  size_t max_message;    /* biggest message accepted either way; default 16 MiB */
  size_t max_send_queue; /* bytes queued for sending per call; default 64 MiB */
  int keepalive_ms;      /* HTTP/2 keepalive pings; 0 = off */
} mu_rpc_options;

/* --- engine: the completion queue, its thread, and the bridge into the loop --- */

/* Starts gRPC (grpc_init) and the completion-queue thread. Owner frees with
 * mu_rpc_engine_close + running the loop until close_cb. */
int mu_rpc_engine_new(uv_loop_t *loop, mu_rpc_engine **ret_engine, mu_err *err);
/* Adds n completion queues, each with a thread waiting on it (at most MU_RPC_MAX_QUEUES in
 * all). Calls are spread over the queues, all of one call's completions on one, so
 * callbacks still run on the loop thread and in order for each call. This does two things
 * for a process with many calls (musterd, bench/fleet): gRPC polls connections from every
 * waiting thread, so the network work it does there (TLS handshakes above all, HTTP/2
 * framing) uses more cores; and gRPC's debug builds (Debian's) scan every outstanding tag of
 * a queue at each completion, which with one queue grows with the number of calls. 0 adds
 * none. Once, before any server is created (servers register every queue) and before
 * mu_rpc_engine_close: MU_EINVAL otherwise. A thread that cannot start is logged, not an
 * error. All are joined when the engine closes. */
int mu_rpc_engine_add_queues(mu_rpc_engine *engine, size_t n, mu_err *err);
/* Shuts down servers and channels still open, cancels their calls, drains the queue, joins
 * the thread and releases gRPC. close_cb (may be NULL) runs on the loop when all is gone. */
void mu_rpc_engine_close(mu_rpc_engine *engine, void (*close_cb)(void *ud), void *ud);
uv_loop_t *mu_rpc_engine_loop(const mu_rpc_engine *engine);

/* --- server --- */

/* A new call for a registered method. The handler takes the call: it must set handlers with
 * mu_rpc_call_start() (which begins reading) or finish it at once. */
typedef void (*mu_rpc_method_cb)(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud);

int mu_rpc_server_new(mu_rpc_engine *engine, const mu_rpc_options *opts, mu_rpc_server **ret, mu_err *err);
/* Registers "/pkg.Service/Method". Calls for unregistered methods get UNIMPLEMENTED. Before
 * mu_rpc_server_start only. */
int mu_rpc_server_add_method(mu_rpc_server *server, const char *path, mu_rpc_method_cb cb, void *ud, mu_err *err);
/* Same, and the server owns ud: ud_free(ud) runs when the server is freed (or at once when
 * registering fails). */
int mu_rpc_server_add_method_owned(mu_rpc_server *server, const char *path, mu_rpc_method_cb cb, void *ud,
                                   void (*ud_free)(void *ud), mu_err *err);
/* The server's gate: runs on the loop thread for every new call, registered method or not,
 * before the method's handler, with the caller's metadata and proven identity. It returns
 * MU_RPC_OK to let the call through (it may attach data with mu_rpc_call_set_auth first), or
 * another status code: the call is then finished with that code and msg, and no handler
 * runs. Without a gate every call goes through. Before mu_rpc_server_start only. */
typedef int (*mu_rpc_gate_cb)(mu_rpc_call *call, const char *method, const mu_rpc_metadata *md, const mu_rpc_peer *peer,
                              char *msg, size_t msg_size, void *ud);
void mu_rpc_server_set_gate(mu_rpc_server *server, mu_rpc_gate_cb gate, void *ud);
/* The server's observer (for metrics): runs on the loop thread once per call when it is over,
 * with its method path ("" for a method not registered, so the set of paths stays bounded),
 * its final status code and the seconds since it arrived (a stream's whole life). Set on the
 * loop thread; calls that arrived before it was set are not reported. */
typedef void (*mu_rpc_observe_cb)(const char *method, int code, double seconds, void *ud);
void mu_rpc_server_set_observer(mu_rpc_server *server, mu_rpc_observe_cb cb, void *ud);

/* Binds HOST:PORT (":0" picks a port; ret_port may be NULL). Before start. */
int mu_rpc_server_listen(mu_rpc_server *server, const char *addr, const mu_rpc_creds *creds, int *ret_port,
                         mu_err *err);
int mu_rpc_server_start(mu_rpc_server *server, mu_err *err);
/* Stops accepting, cancels every live call (their on_done runs), and frees the server when
 * the last one is gone; close_cb (may be NULL) runs then. */
void mu_rpc_server_close(mu_rpc_server *server, void (*close_cb)(void *ud), void *ud);

/* --- client --- */

int mu_rpc_channel_new(mu_rpc_engine *engine, const char *target, const mu_rpc_creds *creds, const mu_rpc_options *opts,
                       mu_rpc_channel **ret, mu_err *err);
/* Destroys the channel; calls still open on it are cancelled first (their on_done runs). */
void mu_rpc_channel_close(mu_rpc_channel *channel);

/* Opens a call on "/pkg.Service/Method" with a deadline (ms from now; <= 0 none) and request
 * metadata (may be NULL). Reading starts at once; on_done reports the final status. */
int mu_rpc_call_new(mu_rpc_channel *channel, const char *path, int64_t deadline_ms, const mu_rpc_metadata *md,
                    const mu_rpc_call_handlers *handlers, void *ud, mu_rpc_call **ret, mu_err *err);

/* Unary convenience: sends one request, half-closes, and calls cb once with the reply (NULL
 * unless status OK) and the status. */
typedef void (*mu_rpc_unary_cb)(const uint8_t *reply, size_t len, const mu_rpc_status *status, void *ud);
int mu_rpc_unary(mu_rpc_channel *channel, const char *path, int64_t deadline_ms, const mu_rpc_metadata *md,
                 const uint8_t *req, size_t req_len, mu_rpc_unary_cb cb, void *ud, mu_err *err);

/* --- both sides --- */

/* Server side: sets the handlers and starts reading the client's messages. */
void mu_rpc_call_start(mu_rpc_call *call, const mu_rpc_call_handlers *handlers, void *ud);
/* Server side: metadata sent with the response headers; before the first send only. */
int mu_rpc_call_set_headers(mu_rpc_call *call, const mu_rpc_metadata *md, mu_err *err);
/* Queues one message (copied). MU_ENOSPC when the send queue bound is hit, MU_EIO when the
 * call is already over or finishing. */
int mu_rpc_call_send(mu_rpc_call *call, const uint8_t *data, size_t len, mu_err *err);
/* Bytes queued and not yet handed to gRPC (for flow control by callers). */
size_t mu_rpc_call_queued_bytes(const mu_rpc_call *call);
/* Flow control without polling: cb(call, arg) runs once, on the loop, when a send completes
 * and leaves fewer than `below` bytes queued (check mu_rpc_call_queued_bytes first: nothing
 * fires while the queue is empty). It may send. One waiter per call: another registration
 * replaces it, cb NULL removes it; it never runs once the call is over. */
void mu_rpc_call_on_drain(mu_rpc_call *call, size_t below, void (*cb)(mu_rpc_call *call, void *arg), void *arg);
/* Client side: no more messages from us (after the queued ones). */
void mu_rpc_call_close_send(mu_rpc_call *call);
/* Server side: ends the call with a status after the queued messages; trailers may be NULL. */
void mu_rpc_call_finish(mu_rpc_call *call, int code, const char *message, const mu_rpc_metadata *trailers);
/* Either side: ends the call at once with code/message; on_done still runs once. */
void mu_rpc_call_cancel(mu_rpc_call *call, int code, const char *message);
/* Server side: "ipv4:127.0.0.1:5000" style peer address; caller frees with free(). */
char *mu_rpc_call_peer(const mu_rpc_call *call);
/* Server side: the method path of the call. */
const char *mu_rpc_call_method(const mu_rpc_call *call);
/* Server side: attaches data to the call (the gate's verdict on who calls); the call owns it
 * and runs free_fn(auth) when it is freed. Replaces (and frees) what was attached before. */
void mu_rpc_call_set_auth(mu_rpc_call *call, void *auth, void (*free_fn)(void *auth));
/* The data attached with mu_rpc_call_set_auth, or NULL. */
void *mu_rpc_call_auth(const mu_rpc_call *call);
/* Swaps the user data handed to the callbacks. */
void mu_rpc_call_set_userdata(mu_rpc_call *call, void *ud);

#endif
