/* The CLI's way to talk to musterd: blocking calls, one at a time, on a session (one loop, one
 * rpc engine, one channel per address used) that lives for the whole process, following
 * `muster-leader` redirects and the `--addr a,b,c` list. */
#ifndef MU_CLI_CLIENT_H
#define MU_CLI_CLIENT_H

#include <protobuf-c/protobuf-c.h>

#include "lib/base/err.h"

/* Loop, engine and channels shared by every call of the process. Cheap to create: the loop,
 * engine (grpc_init, completion-queue thread) and channels start with the first call. */
typedef struct mu_cli_session mu_cli_session;

typedef struct mu_cli_opts {
  const char *addr;        /* --addr, MUSTER_ADDR, default 127.0.0.1:7400 */
  int json;                /* -o json */
  int64_t timeout_ms;      /* per call */
  mu_cli_session *session; /* owned by main; NULL: every call sets up and tears down its own */
  /* mTLS (--ca/--cert/--key or MUSTER_CA/MUSTER_CERT/MUSTER_KEY); ca NULL = plaintext */
  const char *ca;
  const char *cert;
  const char *key;
  const char *token;       /* --token, MUSTER_TOKEN: sent as a bearer token; NULL or "": none */
  int quiet;               /* -q: results and errors only, no progress, notes or hints */
  const char *config_path; /* the CLI config file (cli_config.h), whether or not it exists */
  const char *context;     /* the context in use (--context, MUSTER_CONTEXT, the file's), or NULL */
} mu_cli_opts;

/* A new, idle session; caller frees with mu_cli_session_close. NULL when out of memory (calls
 * then fall back to one-shot sessions). */
mu_cli_session *mu_cli_session_new(void);
/* Closes the channels and engine (grpc_shutdown), runs the loop dry and frees s. NULL is ok.
 * Not while a call is running. */
void mu_cli_session_close(mu_cli_session *s);

/* Calls path with req and unpacks the reply as reply_desc into *ret_reply (caller frees with
 * protobuf_c_message_free_unpacked). A non-OK status becomes an error whose message names the
 * address, the gRPC code and the server's message; err->code is MU_EIO for transport
 * problems and the closest MU_E* otherwise. May be called from a mu_cli_stream callback (it
 * then uses a one-shot session of its own). */
int mu_cli_unary(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply, mu_err *err);
/* mu_cli_unary for a command: on error prints "muster WHAT: MESSAGE" (what NULL: "muster:
 * MESSAGE") to stderr and returns the exit code, 2 for a refused request (invalid, not found,
 * exists) and 1 otherwise; 0 with *ret_reply set on success. */
int mu_cli_unary_exit(const mu_cli_opts *opts, const char *what, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply);

#endif

#ifndef MU_CLI_STREAM_DECLS
#define MU_CLI_STREAM_DECLS
/* A server-streaming call: sends req, then calls on_message for every reply until the server
 * ends the stream (or on_message returns non-zero, which cancels it). on_interrupt (may be
 * NULL) runs on SIGINT; it returns 0 to keep watching, non-zero to stop. The final status is
 * an error in err when not OK (a stop we asked for is not an error). Like mu_cli_unary it
 * follows redirects and the address list, as long as no message has arrived yet. */
typedef int (*mu_cli_message_fn)(void *ud, const uint8_t *data, size_t len);
typedef int (*mu_cli_interrupt_fn)(void *ud);
int mu_cli_stream(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req, mu_cli_message_fn on_message,
                  mu_cli_interrupt_fn on_interrupt, void *ud, mu_err *err);
/* mu_cli_stream, plus on_tick (may be NULL) called every tick_ms on the call's loop while a
 * stream is open, whether or not messages arrive (the live panel's redraw). */
typedef void (*mu_cli_tick_fn)(void *ud);
int mu_cli_stream_ticking(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                          mu_cli_message_fn on_message, mu_cli_interrupt_fn on_interrupt, mu_cli_tick_fn on_tick,
                          uint64_t tick_ms, void *ud, mu_err *err);
#endif

#ifndef MU_CLI_ROUTE_DECLS
#define MU_CLI_ROUTE_DECLS
/* Internal to cli/client.c and cli/stream.c: one call routed over the address list. */
#include <uv.h>

#include "lib/rpc/rpc.h"

typedef struct mu_cli_result {
  int code; /* MU_RPC_* of the attempt */
  char message[1024];
  char leader[300]; /* the `muster-leader` trailer, or "" */
  int delivered;    /* messages already handed to the caller: the call is not retried */
} mu_cli_result;

/* Runs one attempt on channel until it is over (running loop), filling *res. Returns 0, or a
 * negative MU_E* (err filled) for a local failure, which ends the call. */
typedef int (*mu_cli_attempt_fn)(uv_loop_t *loop, mu_rpc_channel *channel, void *ud, mu_cli_result *res, mu_err *err);

/* Runs attempt against opts->addr's entries and the leaders they name (at most 8 hops) until
 * one answers other than a leaderless UNAVAILABLE or the list is used up. Returns 0 with the
 * last attempt's outcome in *res and its address in ret_addr (size addr_size), or non-zero
 * for a local failure. */
int mu_cli_route(const mu_cli_opts *opts, mu_cli_attempt_fn attempt, void *ud, mu_cli_result *res, char *ret_addr,
                 size_t addr_size, mu_err *err);
/* The error for a call to addr that ended with res (not OK): transport failures become "cannot
 * reach the control plane at ADDR (WHY): ..." naming what to check, with the gRPC status on a
 * second "detail:" line; other statuses "ADDR: CODE: message". Returns err->code (MU_EIO,
 * MU_ETIMEDOUT, or the closest MU_E* of the gRPC code). */
int mu_cli_status_error(const mu_cli_opts *opts, const char *addr, const mu_cli_result *res, mu_err *err);
/* A channel to addr (HOST:PORT) with opts' credentials (TLS when opts->ca is set). */
int mu_cli_channel_new(const mu_cli_opts *opts, mu_rpc_engine *engine, const char *addr, const mu_rpc_options *ro,
                       mu_rpc_channel **ret, mu_err *err);

/* The request metadata of every call into *ret_md: `authorization: Bearer TOKEN` when
 * opts->token is set, nothing otherwise. MU_EINVAL "--token: ..." when the token cannot be
 * sent (control characters, spaces, too long); the message never echoes it. */
int mu_cli_call_metadata(const mu_cli_opts *opts, mu_rpc_metadata *ret_md, mu_err *err);
#endif
