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
