/* The rpc engine: gRPC completion queues, a thread waiting on each, and the bridge that hands
 * each completion to the libuv loop thread (a locked event vector + uv_async_t). All tag
 * callbacks therefore run on the loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/rpc/internal.h"

void mu_rpc_link_add(mu_rpc_link *head, mu_rpc_link *item) {
  item->next = head->next;
  item->prev = head;
  head->next->prev = item;
  head->next = item;
}

void mu_rpc_link_remove(mu_rpc_link *item) {
  item->prev->next = item->next;
  item->next->prev = item->prev;
  item->prev = item->next = item;
}

int mu_rpc_link_empty(const mu_rpc_link *head) { return head->next == head; }

typedef struct cq_thread_arg {
  mu_rpc_engine *engine;
  grpc_completion_queue *cq;
} cq_thread_arg;

static void *cq_thread_main(void *arg) {
  cq_thread_arg a = *(cq_thread_arg *)arg;
  free(arg);
  mu_rpc_engine *engine = a.engine;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(a.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    pthread_mutex_lock(&engine->lock);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {
      engine->cq_done++;
      pthread_mutex_unlock(&engine->lock);
      uv_async_send(&engine->wakeup);
      return NULL;
    }
    if (ev.type == GRPC_OP_COMPLETE) {
      if (engine->n_events == engine->cap_events) {
        size_t cap = engine->cap_events ? engine->cap_events * 2 : 256;
        mu_rpc_event *grown = realloc(engine->events, cap * sizeof *grown);
        if (grown == NULL) abort(); /* a lost completion would hang a call forever */
        engine->events = grown;
        engine->cap_events = cap;
      }
      engine->events[engine->n_events].tag = ev.tag;
      engine->events[engine->n_events].ok = ev.success;
      engine->n_events++;
    }
    pthread_mutex_unlock(&engine->lock);
    uv_async_send(&engine->wakeup);
  }
}

/* Creates a queue and its thread as engine->cqs[engine->n_cqs]. */
static int queue_start(mu_rpc_engine *engine, mu_err *err) {
  if (engine->n_cqs == MU_RPC_MAX_QUEUES)
    return mu_err_set(err, MU_EINVAL, "rpc engine: at most %d completion queues", MU_RPC_MAX_QUEUES);
  cq_thread_arg *arg = malloc(sizeof *arg);
  if (arg == NULL) return mu_err_set(err, MU_ENOMEM, "rpc engine: out of memory");
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  *arg = (cq_thread_arg){.engine = engine, .cq = cq};
  int rc = pthread_create(&engine->threads[engine->n_cqs], NULL, cq_thread_main, arg);
  if (rc != 0) {
    free(arg);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    return mu_err_set(err, MU_EIO, "rpc engine: pthread_create: %s", strerror(rc));
  }
  engine->cqs[engine->n_cqs++] = cq;
  return 0;
}

grpc_completion_queue *mu_rpc_engine_pick_cq(mu_rpc_engine *engine) {
  grpc_completion_queue *cq = engine->cqs[engine->next_cq % engine->n_cqs];
  engine->next_cq = (engine->next_cq + 1) % engine->n_cqs;
  return cq;
}

int mu_rpc_engine_add_queues(mu_rpc_engine *engine, size_t n, mu_err *err) {
  if (engine->queues_added || engine->closing || !mu_rpc_link_empty(&engine->servers))
    return mu_err_set(err, MU_EINVAL, "rpc engine: queues are added once, before any server and before closing");
  engine->queues_added = 1;
  for (size_t i = 0; i < n; i++) {
    mu_err e = {0};
    if (queue_start(engine, &e) != 0) {
      mu_warn("rpc", "started %zu of %zu more completion queues: %s", i, n, e.msg);
      break;
    }
  }
  return 0;
}

static void engine_closed(uv_handle_t *handle) {
  mu_rpc_engine *engine = handle->data;
  void (*cb)(void *) = engine->close_cb;
  void *ud = engine->close_ud;
  free(engine->events);
  free(engine->spare);
  pthread_mutex_destroy(&engine->lock);
  free(engine);
  grpc_shutdown_blocking(); /* waits for gRPC's own threads: no TLS state left behind */
  if (cb != NULL) cb(ud);
}

static void on_wakeup(uv_async_t *async) {
  mu_rpc_engine *engine = async->data;
  pthread_mutex_lock(&engine->lock);
  /* Swap buffers so the thread can keep appending while we run callbacks. */
  mu_rpc_event *batch = engine->events;
  size_t n = engine->n_events;
  size_t cap = engine->cap_events;
  engine->events = engine->spare;
  engine->cap_events = engine->cap_spare;
  engine->n_events = 0;
  engine->spare = batch;
  engine->cap_spare = cap;
  int all_done = engine->n_cqs > 0 && engine->cq_done == engine->n_cqs;
  pthread_mutex_unlock(&engine->lock);

  for (size_t i = 0; i < n; i++) batch[i].tag->fn(batch[i].tag->self, batch[i].ok);

  if (all_done) {
    pthread_mutex_lock(&engine->lock);
    int more = engine->n_events > 0;
    pthread_mutex_unlock(&engine->lock);
    if (more) {
      uv_async_send(&engine->wakeup);
      return;
    }
    for (size_t i = 0; i < engine->n_cqs; i++) {
      pthread_join(engine->threads[i], NULL);
      grpc_completion_queue_destroy(engine->cqs[i]);
      engine->cqs[i] = NULL;
    }
    engine->n_cqs = 0;
    uv_close((uv_handle_t *)&engine->wakeup, engine_closed);
  }
}

int mu_rpc_engine_new(uv_loop_t *loop, mu_rpc_engine **ret_engine, mu_err *err) {
  mu_rpc_engine *engine = calloc(1, sizeof *engine);
  if (engine == NULL) return mu_err_set(err, MU_ENOMEM, "rpc engine: out of memory");
  engine->loop = loop;
  engine->calls.next = engine->calls.prev = &engine->calls;
  engine->servers.next = engine->servers.prev = &engine->servers;
  engine->channels.next = engine->channels.prev = &engine->channels;
  pthread_mutex_init(&engine->lock, NULL);
  int rc = uv_async_init(loop, &engine->wakeup, on_wakeup);
  if (rc != 0) {
    pthread_mutex_destroy(&engine->lock);
    free(engine);
    return mu_err_set(err, MU_EIO, "rpc engine: uv_async_init: %s", uv_strerror(rc));
  }
  engine->wakeup.data = engine;
  grpc_init();
  rc = queue_start(engine, err);
  if (rc != 0) { /* no queue: close through the normal path */
    uv_close((uv_handle_t *)&engine->wakeup, engine_closed);
    return rc;
  }
  *ret_engine = engine;
  return 0;
}

uv_loop_t *mu_rpc_engine_loop(const mu_rpc_engine *engine) { return engine->loop; }

void mu_rpc_engine_maybe_finish(mu_rpc_engine *engine) {
  if (!engine->closing || engine->cq_shutdown_started) return;
  if (!mu_rpc_link_empty(&engine->calls) || !mu_rpc_link_empty(&engine->servers)) return;
  engine->cq_shutdown_started = 1;
  for (size_t i = 0; i < engine->n_cqs; i++) grpc_completion_queue_shutdown(engine->cqs[i]);
}

void mu_rpc_engine_close(mu_rpc_engine *engine, void (*close_cb)(void *ud), void *ud) {
  if (engine->closing) return;
  engine->closing = 1;
  engine->close_cb = close_cb;
  engine->close_ud = ud;
  while (!mu_rpc_link_empty(&engine->channels)) mu_rpc_channel_close((mu_rpc_channel *)engine->channels.next);
  /* Servers unlink themselves once their shutdown completes. */
  for (mu_rpc_link *l = engine->servers.next; l != &engine->servers;) {
    mu_rpc_link *next = l->next;
    mu_rpc_server_close((mu_rpc_server *)l, NULL, NULL);
    l = next;
  }
  for (mu_rpc_link *l = engine->calls.next; l != &engine->calls; l = l->next) {
    mu_rpc_call *call = (mu_rpc_call *)l;
    if (call->call != NULL) /* armed request slots have no call yet */
      grpc_call_cancel_with_status(call->call, GRPC_STATUS_UNAVAILABLE, "shutting down", NULL);
  }
  mu_rpc_engine_maybe_finish(engine);
}
