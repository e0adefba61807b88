/* The rpc server: binds ports, keeps a few grpc_server_request_call slots armed, dispatches
 * each new call to the handler registered for its method (UNIMPLEMENTED otherwise), and shuts
 * down by cancelling every live call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/rpc/internal.h"

#define MU_RPC_REQUEST_SLOTS 32

typedef struct mu_rpc_method {
  char *path;
  mu_rpc_method_cb cb;
  void *ud;
  void (*ud_free)(void *ud);
} mu_rpc_method;

typedef struct mu_rpc_request_slot {
  mu_rpc_server *server;
  mu_rpc_tag tag;
  mu_rpc_call *call; /* allocated while the request is armed */
  grpc_call *raw;
} mu_rpc_request_slot;

struct mu_rpc_server {
  mu_rpc_link link; /* first: in engine->servers */
  mu_rpc_engine *engine;
  grpc_server *server;
  mu_rpc_options opts;
  mu_rpc_method *methods;
  size_t n_methods;
  int started;
  int closing;
  int shutdown_done;
  int slots_armed;
  mu_rpc_request_slot slots[MU_RPC_REQUEST_SLOTS];
  mu_rpc_tag shutdown_tag;
  mu_rpc_gate_cb gate;
  void *gate_ud;
  mu_rpc_observe_cb observe;
  void *observe_ud;
  mu_rpc_tls_state **tls; /* certificate fetchers of TLS listeners (freed after the server) */
  size_t n_tls;
  void (*close_cb)(void *ud);
  void *close_ud;
};

static void server_arm(mu_rpc_request_slot *slot);

static void server_maybe_destroy(mu_rpc_server *server) {
  if (!server->shutdown_done || server->slots_armed > 0) return;
  mu_rpc_engine *engine = server->engine;
  void (*cb)(void *) = server->close_cb;
  void *ud = server->close_ud;
  grpc_server_destroy(server->server);
  for (size_t i = 0; i < server->n_methods; i++) {
    free(server->methods[i].path);
    if (server->methods[i].ud_free != NULL) server->methods[i].ud_free(server->methods[i].ud);
  }
  free(server->methods);
  for (size_t i = 0; i < server->n_tls; i++) mu_rpc_tls_state_free(server->tls[i]);
  free(server->tls);
  mu_rpc_link_remove(&server->link);
  free(server);
  if (cb != NULL) cb(ud);
  mu_rpc_engine_maybe_finish(engine);
}

static void on_shutdown(void *self, int ok) {
  mu_rpc_server *server = self;
  (void)ok;
  server->shutdown_done = 1;
  server_maybe_destroy(server);
}

static const mu_rpc_method *server_find(const mu_rpc_server *server, const char *path) {
  for (size_t i = 0; i < server->n_methods; i++)
    if (strcmp(server->methods[i].path, path) == 0) return &server->methods[i];
  return NULL;
}

static void on_request(void *self, int ok) {
  mu_rpc_request_slot *slot = self;
  mu_rpc_server *server = slot->server;
  mu_rpc_call *call = slot->call;
  slot->call = NULL;
  server->slots_armed--;
  call->ops_pending--;
  if (!ok) {
    /* Shutdown (or a failed accept): the call never started. */
    call->final_seen = 1;
    call->done = 1;
    mu_rpc_link_remove(&call->link);
    mu_rpc_link_add(&server->engine->calls, &call->link);
    /* call_free via the normal path needs a grpc call; there is none. */
    grpc_call_details_destroy(&call->details);
    grpc_metadata_array_destroy(&call->request_md);
    grpc_slice_unref(call->finish_slice);
    mu_rpc_link_remove(&call->link);
    free(call);
    server_maybe_destroy(server);
    return;
  }
  call->call = slot->raw;
  slot->raw = NULL;
  size_t mlen = GRPC_SLICE_LENGTH(call->details.method);
  call->method = malloc(mlen + 1);
  if (call->method != NULL) {
    memcpy(call->method, GRPC_SLICE_START_PTR(call->details.method), mlen);
    call->method[mlen] = '\0';
  }
  if (!server->closing) server_arm(slot);
  mu_rpc_call_server_begin(call);
  const mu_rpc_method *m = call->method ? server_find(server, call->method) : NULL;
  call->observe = server->observe;
  call->observe_ud = server->observe_ud;
  call->observe_known = m != NULL;
  call->begin_mono_ns = mu_rpc_mono_ns();
  if (server->closing) {
    mu_rpc_call_finish(call, MU_RPC_UNAVAILABLE, "server shutting down", NULL);
    return;
  }
  mu_rpc_metadata md;
  mu_rpc_metadata_from_grpc(&md, &call->request_md);
  if (server->gate != NULL) {
    mu_rpc_peer peer;
    grpc_auth_context *ctx = NULL;
    char msg[600] = "";
    mu_rpc_peer_fill(call->call, &peer, &ctx);
    int code = server->gate(call, call->method ? call->method : "", &md, &peer, msg, sizeof msg, server->gate_ud);
    if (ctx != NULL) grpc_auth_context_release(ctx);
    if (code != MU_RPC_OK) {
      mu_rpc_call_finish(call, code, msg[0] ? msg : mu_rpc_code_name(code), NULL);
      return;
    }
  }
  if (m == NULL) {
    char msg[600];
    snprintf(msg, sizeof msg, "unknown method %s", call->method ? call->method : "?");
    mu_rpc_call_finish(call, MU_RPC_UNIMPLEMENTED, msg, NULL);
  } else {
    m->cb(call, &md, m->ud);
  }
}

static void server_arm(mu_rpc_request_slot *slot) {
  mu_rpc_server *server = slot->server;
  mu_rpc_call *call = mu_rpc_call_alloc(server->engine, 1, server->opts.max_send_queue);
  if (call == NULL) {
    mu_error("rpc", "out of memory arming a request slot");
    return;
  }
  slot->call = call;
  slot->raw = NULL;
  grpc_completion_queue *cq = mu_rpc_engine_pick_cq(server->engine); /* the call's, for all its tags */
  grpc_call_error e =
      grpc_server_request_call(server->server, &slot->raw, &call->details, &call->request_md, cq, cq, &slot->tag);
  if (e != GRPC_CALL_OK) {
    mu_error("rpc", "grpc_server_request_call failed: %d", (int)e);
    grpc_call_details_destroy(&call->details);
    grpc_metadata_array_destroy(&call->request_md);
    mu_rpc_link_remove(&call->link);
    free(call);
    slot->call = NULL;
    return;
  }
  call->ops_pending++;
  server->slots_armed++;
}

int mu_rpc_server_new(mu_rpc_engine *engine, const mu_rpc_options *opts, mu_rpc_server **ret, mu_err *err) {
  mu_rpc_server *server = calloc(1, sizeof *server);
  if (server == NULL) return mu_err_set(err, MU_ENOMEM, "rpc server: out of memory");
  server->engine = engine;
  if (opts != NULL) server->opts = *opts;
  grpc_channel_args *args = mu_rpc_args_new(opts, 1);
  server->server = grpc_server_create(args, NULL);
  mu_rpc_args_free(args);
  for (size_t i = 0; i < engine->n_cqs; i++)
    grpc_server_register_completion_queue(server->server, engine->cqs[i], NULL);
  server->shutdown_tag.fn = on_shutdown;
  server->shutdown_tag.self = server;
  mu_rpc_link_add(&engine->servers, &server->link);
  *ret = server;
  return 0;
}

int mu_rpc_server_add_method(mu_rpc_server *server, const char *path, mu_rpc_method_cb cb, void *ud, mu_err *err) {
  return mu_rpc_server_add_method_owned(server, path, cb, ud, NULL, err);
}

int mu_rpc_server_add_method_owned(mu_rpc_server *server, const char *path, mu_rpc_method_cb cb, void *ud,
                                   void (*ud_free)(void *ud), mu_err *err) {
  int rc = 0;
  if (server->started) {
    rc = mu_err_set(err, MU_EINVAL, "rpc: add_method after start");
    goto fail;
  }
  if (path[0] != '/' || strchr(path + 1, '/') == NULL) {
    rc = mu_err_set(err, MU_EINVAL, "rpc: method path '%s' must be /pkg.Service/Method", path);
    goto fail;
  }
  if (server_find(server, path) != NULL) {
    rc = mu_err_set(err, MU_EEXIST, "rpc: method %s registered twice", path);
    goto fail;
  }
  mu_rpc_method *grown = realloc(server->methods, (server->n_methods + 1) * sizeof *grown);
  if (grown == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "rpc: out of memory");
    goto fail;
  }
  server->methods = grown;
  grown[server->n_methods].path = strdup(path);
  grown[server->n_methods].cb = cb;
  grown[server->n_methods].ud = ud;
  grown[server->n_methods].ud_free = ud_free;
  server->n_methods++;
  return 0;
fail:
  if (ud_free != NULL) ud_free(ud);
  return rc;
}

int mu_rpc_server_listen(mu_rpc_server *server, const char *addr, const mu_rpc_creds *creds, int *ret_port,
                         mu_err *err) {
  grpc_server_credentials *sc = NULL;
  mu_rpc_tls_state *tls = NULL;
  if (creds != NULL && creds->tls) {
    sc = mu_rpc_tls_server_creds(creds, &tls, err);
    if (sc == NULL) return err ? err->code : MU_EIO;
    mu_rpc_tls_state **grown = realloc(server->tls, (server->n_tls + 1) * sizeof *grown);
    if (grown == NULL) {
      grpc_server_credentials_release(sc);
      mu_rpc_tls_state_free(tls);
      return mu_err_set(err, MU_ENOMEM, "rpc: out of memory");
    }
    server->tls = grown;
    server->tls[server->n_tls++] = tls;
  } else {
    sc = grpc_insecure_server_credentials_create();
  }
  int port = grpc_server_add_http2_port(server->server, addr, sc);
  grpc_server_credentials_release(sc);
  if (port == 0) return mu_err_set(err, MU_EIO, "cannot listen on %s (address in use or invalid)", addr);
  if (ret_port != NULL) *ret_port = port;
  return 0;
}

void mu_rpc_server_set_observer(mu_rpc_server *server, mu_rpc_observe_cb cb, void *ud) {
  server->observe = cb;
  server->observe_ud = ud;
}

void mu_rpc_server_set_gate(mu_rpc_server *server, mu_rpc_gate_cb gate, void *ud) {
  server->gate = gate;
  server->gate_ud = ud;
}

int mu_rpc_server_start(mu_rpc_server *server, mu_err *err) {
  if (server->started) return mu_err_set(err, MU_EINVAL, "rpc: server started twice");
  grpc_server_start(server->server);
  server->started = 1;
  for (size_t i = 0; i < MU_RPC_REQUEST_SLOTS; i++) {
    server->slots[i].server = server;
    server->slots[i].tag.fn = on_request;
    server->slots[i].tag.self = &server->slots[i];
    server_arm(&server->slots[i]);
  }
  return 0;
}

void mu_rpc_server_close(mu_rpc_server *server, void (*close_cb)(void *ud), void *ud) {
  if (server->closing) return;
  server->closing = 1;
  server->close_cb = close_cb;
  server->close_ud = ud;
  if (!server->started) {
    server->shutdown_done = 1;
    server_maybe_destroy(server);
    return;
  }
  grpc_server_shutdown_and_notify(server->server, server->engine->cqs[0], &server->shutdown_tag);
  grpc_server_cancel_all_calls(server->server);
}
