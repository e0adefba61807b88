/* The CLI's way to talk to musterd: one blocking unary call at a time on a private loop
 * (the CLI has nothing else to do meanwhile), following `muster-leader` redirects. */
#ifndef MU_CLI_CLIENT_H
#define MU_CLI_CLIENT_H

#include <protobuf-c/protobuf-c.h>

#include "lib/base/err.h"

typedef struct mu_cli_opts {
  const char *addr;       /* --addr, MUSTER_ADDR, default 127.0.0.1:7400 */
  int json;               /* -o json */
  int64_t timeout_ms;     /* per call */
} mu_cli_opts;

/* Calls path with req and unpacks the reply as reply_desc into *ret_reply (caller frees with
 * protobuf_c_message_free_unpacked). A non-OK status becomes an error whose message names the
 * address, the gRPC code and the server's message; err->code is MU_EIO for transport
 * problems and the closest MU_E* otherwise. */
int mu_cli_unary(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply,
                 mu_err *err);

#endif

#ifndef MU_CLI_STREAM_DECLS
#define MU_CLI_STREAM_DECLS
/* A server-streaming call: sends req, then calls on_message for every reply until the server
 * ends the stream (or on_message returns non-zero, which cancels it). on_interrupt (may be
 * NULL) runs on SIGINT; it returns 0 to keep watching, non-zero to stop. The final status is
 * an error in err when not OK (a stop we asked for is not an error). */
typedef int (*mu_cli_message_fn)(void *ud, const uint8_t *data, size_t len);
typedef int (*mu_cli_interrupt_fn)(void *ud);
int mu_cli_stream(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                  mu_cli_message_fn on_message, mu_cli_interrupt_fn on_interrupt, void *ud,
                  mu_err *err);
#endif
