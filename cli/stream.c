/* Server-streaming calls for the CLI (watch, logs) on the process's session: each attempt
 * also listens for SIGINT so the caller can offer to cancel or detach. Redirects and the
 * address list are followed (cli/client.c) until the first message arrives. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/client.h"
#include "lib/rpc/rpc.h"

typedef struct stream_state {
  const char *path;
  const mu_rpc_metadata *md;
  const uint8_t *req;
  size_t req_len;
  mu_cli_message_fn on_message;
  mu_cli_interrupt_fn on_interrupt;
  mu_cli_tick_fn on_tick;
  uint64_t tick_ms;
  void *ud;
  mu_rpc_call *call;
  mu_cli_result *res;
  int done;
  int stopped_by_us;
} stream_state;

static int st_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  stream_state *s = ud;
  s->res->delivered = 1;
  if (s->on_message(s->ud, data, len) != 0) {
    s->stopped_by_us = 1;
    mu_rpc_call_cancel(call, MU_RPC_CANCELLED, "stopped by the client");
    return 1;
  }
  return 0;
}

static void st_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  stream_state *s = ud;
  (void)call;
  s->done = 1;
  s->call = NULL;
  s->res->code = st->code;
  snprintf(s->res->message, sizeof s->res->message, "%s", st->message);
  const char *leader = mu_rpc_metadata_get(st->trailers, "muster-leader");
  if (leader != NULL) snprintf(s->res->leader, sizeof s->res->leader, "%s", leader);
}

static void st_on_sigint(uv_signal_t *h, int signum) {
  stream_state *s = h->data;
  (void)signum;
  int stop = s->on_interrupt == NULL || s->on_interrupt(s->ud) != 0;
  if (stop && s->call != NULL) {
    s->stopped_by_us = 1;
    mu_rpc_call_cancel(s->call, MU_RPC_CANCELLED, "interrupted");
  }
}

static void st_on_tick(uv_timer_t *t) {
  stream_state *s = t->data;
  s->on_tick(s->ud);
}

static void on_handle_closed(uv_handle_t *h) { *(int *)h->data = 1; }

static int stream_attempt(uv_loop_t *loop, mu_rpc_channel *channel, void *ud, mu_cli_result *res, mu_err *err) {
  stream_state *s = ud;
  uv_signal_t sigint;
  s->res = res;
  s->done = 0;
  uv_signal_init(loop, &sigint);
  sigint.data = s;
  uv_signal_start(&sigint, st_on_sigint, SIGINT);
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  tick.data = s;
  if (s->on_tick != NULL) uv_timer_start(&tick, st_on_tick, s->tick_ms, s->tick_ms);
  mu_rpc_call_handlers h = {.on_message = st_on_message, .on_done = st_on_done};
  int rc = mu_rpc_call_new(channel, s->path, 0, s->md, &h, s, &s->call, err);
  if (rc == 0) {
    mu_rpc_call_send(s->call, s->req, s->req_len, NULL);
    mu_rpc_call_close_send(s->call);
    while (!s->done) uv_run(loop, UV_RUN_ONCE);
  }
  int closed = 0, tick_closed = 0;
  uv_signal_stop(&sigint);
  sigint.data = &closed;
  uv_close((uv_handle_t *)&sigint, on_handle_closed);
  uv_timer_stop(&tick);
  tick.data = &tick_closed;
  uv_close((uv_handle_t *)&tick, on_handle_closed);
  while (!closed || !tick_closed) uv_run(loop, UV_RUN_ONCE);
  return rc;
}

int mu_cli_stream(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req, mu_cli_message_fn on_message,
                  mu_cli_interrupt_fn on_interrupt, void *ud, mu_err *err) {
  return mu_cli_stream_ticking(opts, path, req, on_message, on_interrupt, NULL, 0, ud, err);
}

int mu_cli_stream_ticking(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                          mu_cli_message_fn on_message, mu_cli_interrupt_fn on_interrupt, mu_cli_tick_fn on_tick,
                          uint64_t tick_ms, void *ud, mu_err *err) {
  mu_rpc_metadata md;
  if (mu_cli_call_metadata(opts, &md, err) != 0) return err->code;
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  protobuf_c_message_pack(req, buf);
  stream_state s = {.path = path,
                    .req = buf,
                    .req_len = len,
                    .on_message = on_message,
                    .on_interrupt = on_interrupt,
                    .on_tick = on_tick,
                    .tick_ms = tick_ms ? tick_ms : 100,
                    .ud = ud,
                    .md = &md};
  mu_cli_result res;
  char addr[300];
  int rc = mu_cli_route(opts, stream_attempt, &s, &res, addr, sizeof addr, err);
  if (rc == 0 && res.code != MU_RPC_OK && !s.stopped_by_us) rc = mu_cli_status_error(opts, addr, &res, err);
  free(buf);
  return rc;
}
