/* Server-streaming calls for the CLI (watch, logs): one private loop that also listens for
 * SIGINT so the caller can offer to cancel or detach. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/client.h"
#include "lib/rpc/rpc.h"

typedef struct stream_state {
  mu_cli_message_fn on_message;
  mu_cli_interrupt_fn on_interrupt;
  void *ud;
  mu_rpc_call *call;
  uv_signal_t sigint;
  int done;
  int stopped_by_us;
  int code;
  char message[1024];
} stream_state;

static int st_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  stream_state *s = ud;
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
  s->code = st->code;
  snprintf(s->message, sizeof s->message, "%s", st->message);
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

static void on_closed(void *ud) { *(int *)ud = 1; }

int mu_cli_stream(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                  mu_cli_message_fn on_message, mu_cli_interrupt_fn on_interrupt, void *ud,
                  mu_err *err) {
  uv_loop_t loop;
  mu_rpc_engine *engine = NULL;
  mu_rpc_channel *channel = NULL;
  stream_state s;
  memset(&s, 0, sizeof s);
  s.on_message = on_message;
  s.on_interrupt = on_interrupt;
  s.ud = ud;
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  int rc = 0;
  uv_loop_init(&loop);
  uv_signal_init(&loop, &s.sigint);
  s.sigint.data = &s;
  uv_signal_start(&s.sigint, st_on_sigint, SIGINT);
  if (buf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  protobuf_c_message_pack(req, buf);
  if ((rc = mu_rpc_engine_new(&loop, &engine, err)) != 0) goto out;
  if ((rc = mu_rpc_channel_new(engine, opts->addr, NULL, NULL, &channel, err)) != 0) goto out;
  mu_rpc_call_handlers h = {.on_message = st_on_message, .on_done = st_on_done};
  if ((rc = mu_rpc_call_new(channel, path, 0, NULL, &h, &s, &s.call, err)) != 0) goto out;
  mu_rpc_call_send(s.call, buf, len, NULL);
  mu_rpc_call_close_send(s.call);
  while (!s.done) uv_run(&loop, UV_RUN_ONCE);
  if (s.code != MU_RPC_OK && !s.stopped_by_us)
    rc = mu_err_set(err, s.code == MU_RPC_NOT_FOUND ? MU_ENOENT : MU_EIO, "%s: %s: %s",
                    opts->addr, mu_rpc_code_name(s.code), s.message);
out:
  free(buf);
  uv_signal_stop(&s.sigint);
  uv_close((uv_handle_t *)&s.sigint, NULL);
  if (engine != NULL) {
    int closed = 0;
    mu_rpc_engine_close(engine, on_closed, &closed);
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return rc;
}
