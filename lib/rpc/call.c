/* One gRPC call, client or server side: the read loop, the bounded send queue, half-close,
 * finish and cancel, and the single on_done report after every batch has completed. */
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "lib/rpc/internal.h"

typedef struct mu_rpc_send_item {
  struct mu_rpc_send_item *next;
  grpc_byte_buffer *buf;
  size_t len;
} mu_rpc_send_item;

static void call_pump(mu_rpc_call *call);

static void call_free(mu_rpc_call *call) {
  mu_rpc_engine *engine = call->engine;
  while (call->send_head != NULL) {
    mu_rpc_send_item *item = call->send_head;
    call->send_head = item->next;
    grpc_byte_buffer_destroy(item->buf);
    free(item);
  }
  if (call->recv_buf != NULL) grpc_byte_buffer_destroy(call->recv_buf);
  if (call->call != NULL) grpc_call_unref(call->call);
  if (call->is_server) {
    grpc_call_details_destroy(&call->details);
    grpc_metadata_array_destroy(&call->request_md);
  } else {
    grpc_metadata_array_destroy(&call->recv_headers);
    grpc_metadata_array_destroy(&call->recv_trailers);
    grpc_slice_unref(call->status_details);
  }
  grpc_slice_unref(call->finish_slice);
  free(call->finish_message);
  free(call->cancel_message);
  free(call->headers);
  free(call->trailers);
  free(call->method);
  if (call->auth_free != NULL) call->auth_free(call->auth);
  mu_rpc_link_remove(&call->link);
  free(call);
  mu_rpc_engine_maybe_finish(engine);
}

int64_t mu_rpc_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reports the end once the final op has completed and nothing else is outstanding. */
static void call_maybe_done(mu_rpc_call *call) {
  if (!call->final_seen || call->ops_pending > 0 || call->done) return;
  call->done = 1;
  mu_rpc_status st;
  mu_rpc_metadata trailers = {0};
  char *msg = NULL;
  if (call->is_server) {
    if (call->server_cancelled || !call->finish_sent) {
      st.code = call->cancel_code ? call->cancel_code : MU_RPC_CANCELLED;
      st.message = call->cancel_message ? call->cancel_message : "call cancelled by the peer";
    } else {
      st.code = call->finish_code;
      st.message = call->finish_message ? call->finish_message : "";
    }
  } else {
    size_t len = GRPC_SLICE_LENGTH(call->status_details);
    msg = malloc(len + 1);
    if (msg != NULL) {
      memcpy(msg, GRPC_SLICE_START_PTR(call->status_details), len);
      msg[len] = '\0';
    }
    mu_rpc_metadata_from_grpc(&trailers, &call->recv_trailers);
    st.code = (int)call->status_code;
    if (call->cancel_code != 0 && st.code == MU_RPC_CANCELLED) {
      st.code = call->cancel_code;
      st.message = call->cancel_message ? call->cancel_message : "";
    } else {
      st.message = msg ? msg : "";
    }
  }
  st.trailers = &trailers;
  if (call->is_server && call->observe != NULL)
    call->observe(call->observe_known && call->method ? call->method : "", st.code,
                  (double)(mu_rpc_mono_ns() - call->begin_mono_ns) / 1e9, call->observe_ud);
  if (call->handlers.on_done != NULL) call->handlers.on_done(call, &st, call->ud);
  free(msg);
  call_free(call);
}

static int call_start_batch(mu_rpc_call *call, const grpc_op *ops, size_t n, mu_rpc_tag *tag) {
  grpc_call_error e = grpc_call_start_batch(call->call, ops, n, tag, NULL);
  if (e != GRPC_CALL_OK) return MU_EIO;
  call->ops_pending++;
  return 0;
}

/* --- reading --- */

static void on_recv(void *self, int ok) {
  mu_rpc_call *call = self;
  call->ops_pending--;
  call->reading = 0;
  grpc_byte_buffer *buf = call->recv_buf;
  call->recv_buf = NULL;
  if (!ok || buf == NULL || call->done) {
    if (buf != NULL) grpc_byte_buffer_destroy(buf);
    call->read_stopped = 1;
    if (ok && buf == NULL && call->handlers.on_read_end != NULL && !call->finish_requested)
      call->handlers.on_read_end(call, call->ud);
    call_maybe_done(call);
    return;
  }
  grpc_byte_buffer_reader reader;
  int stop = 0;
  if (!grpc_byte_buffer_reader_init(&reader, buf)) {
    stop = 1;
  } else {
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    /* Messages that arrive after the server decided to finish are dropped. */
    if (call->handlers.on_message != NULL && !call->finish_requested)
      stop = call->handlers.on_message(call, GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice), call->ud);
    grpc_slice_unref(slice);
  }
  grpc_byte_buffer_destroy(buf);
  if (stop) call->read_stopped = 1;
  if (!call->read_stopped && !call->final_seen) mu_rpc_call_start_reading(call);
  call_maybe_done(call);
}

void mu_rpc_call_start_reading(mu_rpc_call *call) {
  if (call->reading || call->read_stopped || call->done) return;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &call->recv_buf;
  if (call_start_batch(call, &op, 1, &call->recv_tag) == 0) call->reading = 1;
}

/* --- sending --- */

#define MU_RPC_COALESCE_MAX 16384 /* messages up to this size may wait for the next one */

/* The gRPC view of m (NULL = no metadata): fills m->grpc, returns the count. */
static size_t md_to_grpc(mu_rpc_call_md *m) {
  if (m == NULL) return 0;
  for (size_t i = 0; i < m->md.count; i++) {
    memset(&m->grpc[i], 0, sizeof m->grpc[i]);
    m->grpc[i].key = grpc_slice_from_static_string(m->md.entries[i].key);
    m->grpc[i].value = grpc_slice_from_static_string(m->md.entries[i].value);
  }
  return m->md.count;
}

static grpc_metadata *md_array(mu_rpc_call_md *m) { return m != NULL ? m->grpc : NULL; }

/* A heap copy of md for *slot (replacing what was there); NULL md or no entries = none. */
static int md_keep(mu_rpc_call_md **slot, const mu_rpc_metadata *md) {
  free(*slot);
  *slot = NULL;
  if (md == NULL || md->count == 0) return 0;
  *slot = malloc(sizeof **slot);
  if (*slot == NULL) return MU_ENOMEM;
  (*slot)->md = *md;
  return 0;
}

static void on_send(void *self, int ok) {
  mu_rpc_call *call = self;
  call->ops_pending--;
  call->sending = 0;
  mu_rpc_send_item *item = call->send_head;
  if (item != NULL) {
    call->send_head = item->next;
    if (call->send_head == NULL) call->send_tail = NULL;
    call->queued_bytes -= item->len;
    grpc_byte_buffer_destroy(item->buf);
    free(item);
  }
  if (!ok) call->read_stopped = 1; /* the stream is broken; status will tell why */
  if (call->drain_cb != NULL && call->queued_bytes < call->drain_below && !call->done && !call->final_seen) {
    void (*cb)(mu_rpc_call *, void *) = call->drain_cb;
    call->drain_cb = NULL;
    cb(call, call->drain_arg); /* may queue more: call_pump below sends it */
  }
  call_pump(call);
  call_maybe_done(call);
}

static void on_status_sent(void *self, int ok) {
  mu_rpc_call *call = self;
  (void)ok;
  call->ops_pending--;
  call_maybe_done(call);
}

/* Starts the next send, or the half-close / status once the queue is empty. */
static void call_pump(mu_rpc_call *call) {
  if (call->sending || call->done || call->final_seen) return;
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (call->send_head != NULL) {
    if (call->is_server && !call->headers_sent) {
      ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
      ops[n].data.send_initial_metadata.count = md_to_grpc(call->headers);
      ops[n].data.send_initial_metadata.metadata = md_array(call->headers);
      n++;
      call->headers_sent = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = call->send_head->buf;
    /* More is queued behind a small message: let gRPC hold it for the next one, so a burst
     * (an agent's task events, musterd's acks) goes out in one write and one TLS record
     * instead of one each. gRPC completes the send at once and writes by 64 KiB buffered at
     * the latest; the last message of the burst is never held. */
    if (call->send_head->next != NULL && call->send_head->len <= MU_RPC_COALESCE_MAX)
      ops[n].flags = GRPC_WRITE_BUFFER_HINT;
    n++;
    if (call_start_batch(call, ops, n, &call->send_tag) == 0) call->sending = 1;
    return;
  }
  if (call->is_server && call->finish_requested && !call->finish_sent) {
    if (!call->headers_sent) {
      ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
      ops[n].data.send_initial_metadata.count = md_to_grpc(call->headers);
      ops[n].data.send_initial_metadata.metadata = md_array(call->headers);
      n++;
      call->headers_sent = 1;
    }
    call->finish_slice = grpc_slice_from_copied_string(call->finish_message ? call->finish_message : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)call->finish_code;
    ops[n].data.send_status_from_server.status_details = &call->finish_slice;
    ops[n].data.send_status_from_server.trailing_metadata_count = md_to_grpc(call->trailers);
    ops[n].data.send_status_from_server.trailing_metadata = md_array(call->trailers);
    n++;
    if (call_start_batch(call, ops, n, &call->status_send_tag) == 0) call->finish_sent = 1;
    return;
  }
  if (!call->is_server && call->close_send_requested && !call->close_send_sent) {
    ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (call_start_batch(call, ops, 1, &call->status_send_tag) == 0) call->close_send_sent = 1;
  }
}

int mu_rpc_call_send(mu_rpc_call *call, const uint8_t *data, size_t len, mu_err *err) {
  if (call->done || call->final_seen || call->finish_requested || call->close_send_requested)
    return mu_err_set(err, MU_EIO, "rpc %s: call is over, message not sent", call->method ? call->method : "call");
  if (call->queued_bytes + len > call->max_send_queue)
    return mu_err_set(err, MU_ENOSPC, "rpc %s: send queue full (%zu bytes queued, limit %zu): peer too slow",
                      call->method ? call->method : "call", call->queued_bytes, call->max_send_queue);
  mu_rpc_send_item *item = calloc(1, sizeof *item);
  if (item == NULL) return mu_err_set(err, MU_ENOMEM, "rpc: out of memory");
  grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data, len);
  item->buf = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  item->len = len;
  if (call->send_tail != NULL) call->send_tail->next = item;
  else call->send_head = item;
  call->send_tail = item;
  call->queued_bytes += len;
  call_pump(call);
  return 0;
}

size_t mu_rpc_call_queued_bytes(const mu_rpc_call *call) { return call->queued_bytes; }

void mu_rpc_call_on_drain(mu_rpc_call *call, size_t below, void (*cb)(mu_rpc_call *, void *), void *arg) {
  call->drain_below = below;
  call->drain_cb = cb;
  call->drain_arg = arg;
}

void mu_rpc_call_close_send(mu_rpc_call *call) {
  if (call->is_server || call->close_send_requested) return;
  call->close_send_requested = 1;
  call_pump(call);
}

void mu_rpc_call_finish(mu_rpc_call *call, int code, const char *message, const mu_rpc_metadata *trailers) {
  if (!call->is_server || call->finish_requested || call->done) return;
  call->finish_requested = 1;
  call->finish_code = code;
  call->finish_message = strdup(message ? message : "");
  /* Out of memory here loses only the trailers (a redirect hint); the status still goes. */
  (void)md_keep(&call->trailers, trailers);
  call_pump(call);
}

void mu_rpc_call_cancel(mu_rpc_call *call, int code, const char *message) {
  if (call->done || call->final_seen) return;
  if (call->cancel_code == 0) {
    call->cancel_code = code;
    call->cancel_message = strdup(message ? message : "");
  }
  grpc_call_cancel_with_status(call->call, (grpc_status_code)code, message ? message : "", NULL);
}

int mu_rpc_call_set_headers(mu_rpc_call *call, const mu_rpc_metadata *md, mu_err *err) {
  if (!call->is_server || call->headers_sent) return mu_err_set(err, MU_EINVAL, "rpc: headers already sent");
  if (md_keep(&call->headers, md) != 0) return mu_err_set(err, MU_ENOMEM, "rpc: out of memory");
  return 0;
}

char *mu_rpc_call_peer(const mu_rpc_call *call) {
  char *p = grpc_call_get_peer(call->call);
  char *copy = strdup(p ? p : "");
  gpr_free(p);
  return copy;
}

const char *mu_rpc_call_method(const mu_rpc_call *call) { return call->method ? call->method : ""; }

void mu_rpc_call_set_userdata(mu_rpc_call *call, void *ud) { call->ud = ud; }

/* --- the end of a call --- */

static void on_final(void *self, int ok) {
  mu_rpc_call *call = self;
  (void)ok;
  call->ops_pending--;
  call->final_seen = 1;
  call_maybe_done(call);
}

static void on_client_start(void *self, int ok) {
  mu_rpc_call *call = self;
  (void)ok;
  call->ops_pending--;
  call_maybe_done(call);
}

static void on_client_headers(void *self, int ok) {
  mu_rpc_call *call = self;
  call->ops_pending--;
  if (ok && call->handlers.on_headers != NULL && !call->done) {
    mu_rpc_metadata md;
    mu_rpc_metadata_from_grpc(&md, &call->recv_headers);
    call->handlers.on_headers(call, &md, call->ud);
  }
  call_maybe_done(call);
}

mu_rpc_call *mu_rpc_call_alloc(mu_rpc_engine *engine, int is_server, size_t max_send_queue) {
  mu_rpc_call *call = calloc(1, sizeof *call);
  if (call == NULL) return NULL;
  call->engine = engine;
  call->is_server = is_server;
  call->max_send_queue = max_send_queue ? max_send_queue : (64u << 20);
  mu_rpc_tag *tags[] = {&call->recv_tag,  &call->send_tag,    &call->final_tag,
                        &call->start_tag, &call->headers_tag, &call->status_send_tag};
  void (*fns[])(void *, int) = {on_recv, on_send, on_final, on_client_start, on_client_headers, on_status_sent};
  for (size_t i = 0; i < 6; i++) {
    tags[i]->fn = fns[i];
    tags[i]->self = call;
  }
  call->finish_slice = grpc_empty_slice();
  call->status_details = grpc_empty_slice();
  if (is_server) {
    grpc_call_details_init(&call->details);
    grpc_metadata_array_init(&call->request_md);
  } else {
    grpc_metadata_array_init(&call->recv_headers);
    grpc_metadata_array_init(&call->recv_trailers);
  }
  mu_rpc_link_add(&engine->calls, &call->link);
  return call;
}

void mu_rpc_call_server_begin(mu_rpc_call *call) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &call->server_cancelled;
  if (call_start_batch(call, &op, 1, &call->final_tag) != 0) call->final_seen = 1;
}

void mu_rpc_call_client_begin(mu_rpc_call *call, const mu_rpc_metadata *md) {
  grpc_op ops[1];
  memset(ops, 0, sizeof ops);
  /* Without its metadata (out of memory) the call must not go out as if it had none: it is
   * cancelled, and the batches below still run so that it ends the usual way. */
  if (md_keep(&call->headers, md) != 0)
    grpc_call_cancel_with_status(call->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for metadata", NULL);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = md_to_grpc(call->headers);
  ops[0].data.send_initial_metadata.metadata = md_array(call->headers);
  call_start_batch(call, ops, 1, &call->start_tag);

  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[0].data.recv_initial_metadata.recv_initial_metadata = &call->recv_headers;
  call_start_batch(call, ops, 1, &call->headers_tag);

  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.trailing_metadata = &call->recv_trailers;
  ops[0].data.recv_status_on_client.status = &call->status_code;
  ops[0].data.recv_status_on_client.status_details = &call->status_details;
  if (call_start_batch(call, ops, 1, &call->final_tag) != 0) call->final_seen = 1;
  mu_rpc_call_start_reading(call);
}

void mu_rpc_call_start(mu_rpc_call *call, const mu_rpc_call_handlers *handlers, void *ud) {
  call->handlers = *handlers;
  call->ud = ud;
  mu_rpc_call_start_reading(call);
}

void mu_rpc_call_set_auth(mu_rpc_call *call, void *auth, void (*free_fn)(void *auth)) {
  if (call->auth_free != NULL && call->auth != auth) call->auth_free(call->auth);
  call->auth = auth;
  call->auth_free = free_fn;
}

void *mu_rpc_call_auth(const mu_rpc_call *call) { return call->auth; }
