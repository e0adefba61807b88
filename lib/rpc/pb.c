/* Unary protobuf-c methods over lib/rpc: unpack the one request, hand it to the handler, and
 * make sure a missing or malformed request still gets a clear status. */
#include "lib/rpc/pb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/pbjson/pbjson.h"

typedef struct pb_method {
  const ProtobufCMessageDescriptor *desc;
  mu_pb_unary_fn fn;
  void *ud;
} pb_method;

typedef struct pb_call {
  const pb_method *method;
  mu_rpc_metadata md;
  int answered;
} pb_call;

static int pb_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  pb_call *pc = ud;
  if (pc->answered) return 1;
  pc->answered = 1;
  ProtobufCMessage *req = protobuf_c_message_unpack(pc->method->desc, NULL, len, data);
  if (req == NULL) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "malformed %s request (%zu bytes): cannot decode", pc->method->desc->name,
               len);
    return 1;
  }
  mu_err err = {0};
  if (mu_pbjson_proto3_check(req, &err) != 0) { /* what other runtimes refuse */
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "malformed %s request: %s", pc->method->desc->name, err.msg);
    protobuf_c_message_free_unpacked(req, NULL);
    return 1;
  }
  pc->method->fn(call, req, &pc->md, pc->method->ud);
  protobuf_c_message_free_unpacked(req, NULL);
  return 1;
}

static void pb_on_read_end(mu_rpc_call *call, void *ud) {
  pb_call *pc = ud;
  if (!pc->answered) {
    pc->answered = 1;
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "no request message sent");
  }
}

static void pb_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  (void)call;
  (void)st;
  free(ud);
}

static void pb_on_call(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  pb_call *pc = calloc(1, sizeof *pc);
  if (pc == NULL) {
    mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  pc->method = ud;
  pc->md = *md;
  mu_rpc_call_handlers h = {.on_message = pb_on_message, .on_read_end = pb_on_read_end, .on_done = pb_on_done};
  mu_rpc_call_start(call, &h, pc);
}

int mu_pb_add_unary(mu_rpc_server *server, const char *path, const ProtobufCMessageDescriptor *req_desc,
                    mu_pb_unary_fn fn, void *ud, mu_err *err) {
  pb_method *m = malloc(sizeof *m);
  if (m == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  m->desc = req_desc;
  m->fn = fn;
  m->ud = ud;
  return mu_rpc_server_add_method_owned(server, path, pb_on_call, m, free, err);
}

int mu_pb_send(mu_rpc_call *call, const ProtobufCMessage *msg, mu_err *err) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t stackbuf[1024];
  uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory packing %zu bytes", len);
  protobuf_c_message_pack(msg, buf);
  int rc = mu_rpc_call_send(call, buf, len, err);
  if (buf != stackbuf) free(buf);
  return rc;
}

void mu_pb_reply(mu_rpc_call *call, const ProtobufCMessage *msg) {
  mu_err err = {0};
  if (mu_pb_send(call, msg, &err) != 0) {
    mu_rpc_call_finish(call, mu_rpc_code_from_err(err.code), err.msg, NULL);
    return;
  }
  mu_rpc_call_finish(call, MU_RPC_OK, "", NULL);
}

void mu_pb_fail(mu_rpc_call *call, int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mu_rpc_call_finish(call, code, msg, NULL);
}

int mu_pb_add_unaries(mu_rpc_server *server, const mu_pb_method *methods, size_t n, void *ud, mu_err *err) {
  for (size_t i = 0; i < n; i++) {
    int rc = mu_pb_add_unary(server, methods[i].path, methods[i].req_desc, methods[i].fn, ud, err);
    if (rc != 0) return rc;
  }
  return 0;
}
