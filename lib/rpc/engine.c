/* The rpc engine: one gRPC completion queue, a thread that waits on it, and the bridge that
 * hands each completion to the libuv loop thread (a locked event vector + uv_async_t). All
 * tag callbacks therefore run on the loop thread. */
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

static void *cq_thread_main(void *arg) {
  mu_rpc_engine *engine = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(engine->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    pthread_mutex_lock(&engine->lock);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {
      engine->cq_done = 1;
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

/* A poller: waits on a queue that never gets a tag. gRPC's epoll engine lets any thread
 * waiting on a queue poll every connection and run what the events trigger there (TLS
 * handshakes, HTTP/2 framing), so pollers spread that work over more cores. */
static void *poller_main(void *arg) {
  grpc_completion_queue *cq = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) return NULL;
  }
}

int mu_rpc_engine_add_pollers(mu_rpc_engine *engine, size_t n, mu_err *err) {
  if (engine->poll_cq != NULL || engine->closing)
    return mu_err_set(err, MU_EINVAL, "rpc engine: pollers are added once, before closing");
  if (n == 0) return 0;
  engine->pollers = calloc(n, sizeof *engine->pollers);
  if (engine->pollers == NULL) return mu_err_set(err, MU_ENOMEM, "rpc engine: out of memory");
  engine->poll_cq = grpc_completion_queue_create_for_next(NULL);
  for (size_t i = 0; i < n; i++) {
    int rc = pthread_create(&engine->pollers[i], NULL, poller_main, engine->poll_cq);
    if (rc != 0) {
      mu_warn("rpc", "started %zu of %zu poller threads: %s", i, n, strerror(rc));
      break;
    }
    engine->n_pollers++;
  }
  return 0;
}

static void pollers_stop(mu_rpc_engine *engine) {
  if (engine->poll_cq == NULL) return;
  grpc_completion_queue_shutdown(engine->poll_cq);
  for (size_t i = 0; i < engine->n_pollers; i++) pthread_join(engine->pollers[i], NULL);
  grpc_completion_queue_destroy(engine->poll_cq);
  engine->poll_cq = NULL;
  free(engine->pollers);
  engine->pollers = NULL;
  engine->n_pollers = 0;
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
  int cq_done = engine->cq_done;
  pthread_mutex_unlock(&engine->lock);

  for (size_t i = 0; i < n; i++) batch[i].tag->fn(batch[i].tag->self, batch[i].ok);

  if (cq_done && engine->thread_started) {
    pthread_mutex_lock(&engine->lock);
    int more = engine->n_events > 0;
    pthread_mutex_unlock(&engine->lock);
    if (more) {
      uv_async_send(&engine->wakeup);
      return;
    }
    pthread_join(engine->thread, NULL);
    engine->thread_started = 0;
    pollers_stop(engine);
    grpc_completion_queue_destroy(engine->cq);
    engine->cq = NULL;
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
  engine->cq = grpc_completion_queue_create_for_next(NULL);
  rc = pthread_create(&engine->thread, NULL, cq_thread_main, engine);
  if (rc != 0) {
    /* No thread: shut the queue down and close through the normal path. */
    grpc_completion_queue_shutdown(engine->cq);
    grpc_completion_queue_destroy(engine->cq);
    uv_close((uv_handle_t *)&engine->wakeup, engine_closed);
    return mu_err_set(err, MU_EIO, "rpc engine: pthread_create: %s", strerror(rc));
  }
  engine->thread_started = 1;
  *ret_engine = engine;
  return 0;
}

uv_loop_t *mu_rpc_engine_loop(const mu_rpc_engine *engine) { return engine->loop; }

void mu_rpc_engine_maybe_finish(mu_rpc_engine *engine) {
  if (!engine->closing || engine->cq_shutdown_started) return;
  if (!mu_rpc_link_empty(&engine->calls) || !mu_rpc_link_empty(&engine->servers)) return;
  engine->cq_shutdown_started = 1;
  grpc_completion_queue_shutdown(engine->cq);
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
