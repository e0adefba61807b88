/* The rpc client side: channels to a target, calls on them, and the unary convenience that
 * sends one request and reports one reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/rpc/internal.h"

int mu_rpc_channel_new(mu_rpc_engine *engine, const char *target, const mu_rpc_creds *creds, const mu_rpc_options *opts,
                       mu_rpc_channel **ret, mu_err *err) {
  grpc_channel_credentials *cc = NULL;
  if (creds != NULL && creds->tls) {
    /* in-memory PEM wins over a file; gRPC copies what it is given */
    const char *pem[3] = {creds->ca_pem, creds->cert_pem, creds->key_pem};
    const char *file[3] = {creds->ca_file, creds->cert_file, creds->key_file};
    char *read[3] = {NULL, NULL, NULL};
    int failed = 0;
    for (int i = 0; i < 3 && !failed; i++) {
      if (pem[i] != NULL || file[i] == NULL) continue;
      read[i] = mu_rpc_read_file(file[i], err);
      pem[i] = read[i];
      failed = read[i] == NULL;
    }
    grpc_ssl_pem_key_cert_pair pair = {pem[2], pem[1]};
    if (!failed) cc = grpc_ssl_credentials_create(pem[0], pem[1] && pem[2] ? &pair : NULL, NULL, NULL);
    if (read[2] != NULL) memset(read[2], 0, strlen(read[2]));
    for (int i = 0; i < 3; i++) free(read[i]);
    if (failed) return err ? err->code : MU_EIO;
  } else {
    cc = grpc_insecure_credentials_create();
  }
  mu_rpc_channel *ch = calloc(1, sizeof *ch);
  if (ch == NULL) {
    grpc_channel_credentials_release(cc);
    return mu_err_set(err, MU_ENOMEM, "rpc channel: out of memory");
  }
  ch->engine = engine;
  if (opts != NULL) ch->opts = *opts;
  grpc_channel_args *args = mu_rpc_args_new(opts, 0);
  if (creds != NULL && creds->tls && creds->server_name != NULL && args != NULL) {
    /* the name the server's certificate must carry, instead of the target's host */
    grpc_arg *grown = realloc(args->args, (args->num_args + 1) * sizeof *grown);
    if (grown != NULL) {
      args->args = grown;
      grown[args->num_args].type = GRPC_ARG_STRING;
      grown[args->num_args].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
      grown[args->num_args].value.string = (char *)creds->server_name;
      args->num_args++;
    }
  }
  ch->channel = grpc_channel_create(target, cc, args);
  mu_rpc_args_free(args);
  grpc_channel_credentials_release(cc);
  if (ch->channel == NULL) {
    free(ch);
    return mu_err_set(err, MU_EINVAL, "rpc: cannot create a channel to '%s'", target);
  }
  mu_rpc_link_add(&engine->channels, &ch->link);
  *ret = ch;
  return 0;
}

void mu_rpc_channel_close(mu_rpc_channel *channel) {
  mu_rpc_engine *engine = channel->engine;
  for (mu_rpc_link *l = engine->calls.next; l != &engine->calls; l = l->next) {
    mu_rpc_call *call = (mu_rpc_call *)l;
    if (call->channel == channel) {
      mu_rpc_call_cancel(call, MU_RPC_CANCELLED, "channel closed");
      call->channel = NULL;
    }
  }
  grpc_channel_destroy(channel->channel);
  mu_rpc_link_remove(&channel->link);
  free(channel);
}

int mu_rpc_call_new(mu_rpc_channel *channel, const char *path, int64_t deadline_ms, const mu_rpc_metadata *md,
                    const mu_rpc_call_handlers *handlers, void *ud, mu_rpc_call **ret, mu_err *err) {
  mu_rpc_engine *engine = channel->engine;
  if (engine->closing) return mu_err_set(err, MU_ECANCELED, "rpc: engine is closing");
  mu_rpc_call *call = mu_rpc_call_alloc(engine, 0, channel->opts.max_send_queue);
  if (call == NULL) return mu_err_set(err, MU_ENOMEM, "rpc: out of memory");
  call->channel = channel;
  call->handlers = *handlers;
  call->ud = ud;
  call->method = strdup(path);
  grpc_slice method = grpc_slice_from_copied_string(path);
  call->call = grpc_channel_create_call(channel->channel, NULL, GRPC_PROPAGATE_DEFAULTS, mu_rpc_engine_pick_cq(engine),
                                        method, NULL, mu_rpc_deadline(deadline_ms), NULL);
  grpc_slice_unref(method);
  if (call->call == NULL) {
    grpc_metadata_array_destroy(&call->recv_headers);
    grpc_metadata_array_destroy(&call->recv_trailers);
    mu_rpc_link_remove(&call->link);
    free(call->method);
    free(call);
    return mu_err_set(err, MU_EIO, "rpc: cannot create call %s", path);
  }
  mu_rpc_call_client_begin(call, md);
  if (ret != NULL) *ret = call;
  return 0;
}

/* --- unary --- */

typedef struct unary_ctx {
  mu_rpc_unary_cb cb;
  void *ud;
  uint8_t *reply;
  size_t reply_len;
  int got_reply;
} unary_ctx;

static int unary_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  unary_ctx *ctx = ud;
  (void)call;
  if (ctx->got_reply) return 1; /* a second reply is a protocol error; ignore it */
  ctx->reply = malloc(len ? len : 1);
  if (ctx->reply == NULL) return 1;
  memcpy(ctx->reply, data, len);
  ctx->reply_len = len;
  ctx->got_reply = 1;
  return 0;
}

static void unary_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  unary_ctx *ctx = ud;
  (void)call;
  mu_rpc_status s = *st;
  if (s.code == MU_RPC_OK && !ctx->got_reply) {
    s.code = MU_RPC_INTERNAL;
    s.message = "server sent no reply";
  }
  ctx->cb(s.code == MU_RPC_OK ? ctx->reply : NULL, ctx->reply_len, &s, ctx->ud);
  free(ctx->reply);
  free(ctx);
}

int mu_rpc_unary(mu_rpc_channel *channel, const char *path, int64_t deadline_ms, const mu_rpc_metadata *md,
                 const uint8_t *req, size_t req_len, mu_rpc_unary_cb cb, void *ud, mu_err *err) {
  unary_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return mu_err_set(err, MU_ENOMEM, "rpc: out of memory");
  ctx->cb = cb;
  ctx->ud = ud;
  mu_rpc_call_handlers h = {.on_message = unary_on_message, .on_done = unary_on_done};
  mu_rpc_call *call;
  int rc = mu_rpc_call_new(channel, path, deadline_ms, md, &h, ctx, &call, err);
  if (rc != 0) {
    free(ctx);
    return rc;
  }
  rc = mu_rpc_call_send(call, req, req_len, err);
  mu_rpc_call_close_send(call);
  return rc;
}
