/* lib/rpc/pb: protobuf-c on top of lib/rpc — unary methods whose request arrives unpacked,
 * and helpers to send a message or fail a call with a formatted status. */
#ifndef MU_RPC_PB_H
#define MU_RPC_PB_H

#include <protobuf-c/protobuf-c.h>

#include "lib/rpc/rpc.h"

/* Handles one unary request. req is freed when the function returns; md is the request
 * metadata (also only valid during the call). The function answers with mu_pb_reply() or
 * mu_pb_fail(), now or later (it then owns the call until it does). */
typedef void (*mu_pb_unary_fn)(mu_rpc_call *call, const ProtobufCMessage *req, const mu_rpc_metadata *md, void *ud);

/* Registers a unary method; a request that does not decode as req_desc, or breaks a proto3
 * rule protobuf-c lets through (mu_pbjson_proto3_check), gets INVALID_ARGUMENT. */
int mu_pb_add_unary(mu_rpc_server *server, const char *path, const ProtobufCMessageDescriptor *req_desc,
                    mu_pb_unary_fn fn, void *ud, mu_err *err);

/* One row of a service's method table. */
typedef struct mu_pb_method {
  const char *path;
  const ProtobufCMessageDescriptor *req_desc;
  mu_pb_unary_fn fn;
} mu_pb_method;

/* Registers each of the n methods as mu_pb_add_unary does; stops at the first error. */
int mu_pb_add_unaries(mu_rpc_server *server, const mu_pb_method *methods, size_t n, void *ud, mu_err *err);

/* Packs and queues msg on the call. */
int mu_pb_send(mu_rpc_call *call, const ProtobufCMessage *msg, mu_err *err);
/* Sends msg and finishes the call with OK. */
void mu_pb_reply(mu_rpc_call *call, const ProtobufCMessage *msg);
/* Finishes the call with code and a formatted message. */
void mu_pb_fail(mu_rpc_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
