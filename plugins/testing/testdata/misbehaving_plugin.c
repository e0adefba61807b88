/* misbehaving: a plugin that breaks the contract on purpose, for the conformance suite's own
 * test (it must catch each). Config {"block": ms, "leak": true, "orphan": true, "runMs": ms}:
 * block sleeps in start() (blocking the agent's loop), leak drops an allocation start() made,
 * orphan starts `sleep 30` with libuv directly, outside the agent's supervisor, and never
 * stops it; the task succeeds after runMs (cancel ends it at once). */
#include <errno.h>
#include <time.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "muster_plugin.h"

static void on_closed(uv_handle_t *h) { free(h); }

static void orphan(uv_loop_t *loop) {
  uv_process_t *p = calloc(1, sizeof *p);
  char *args[] = {"sleep", "30", NULL};
  uv_process_options_t o = {.file = "sleep", .args = args, .flags = UV_PROCESS_DETACHED};
  if (uv_spawn(loop, p, &o) == 0) uv_unref((uv_handle_t *)p);
  uv_close((uv_handle_t *)p, on_closed);
}

static void on_done(muster_task *task, muster_timer *timer, void *user) {
  (void)timer;
  const muster_host_api *host = user;
  muster_result r = {MUSTER_STATE_SUCCEEDED, 0, 0, "done"};
  host->finish(task, &r);
}

static int m_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  (void)errbuf;
  json_t *cfg = json_loads(host->context(task)->config_json, 0, NULL);
  json_int_t block = json_integer_value(json_object_get(cfg, "block"));
  json_int_t run_ms = json_integer_value(json_object_get(cfg, "runMs"));
  /* the whole block even when a signal (SIGCHLD of an earlier run's orphan) cuts a sleep short */
  struct timespec left = {.tv_sec = (time_t)(block / 1000), .tv_nsec = (long)(block % 1000) * 1000000L};
  while (block > 0 && nanosleep(&left, &left) != 0 && errno == EINTR) continue;
  if (json_is_true(json_object_get(cfg, "leak"))) {
    char *lost = malloc(4096);
    snprintf(lost, 4096, "allocated in start() and never freed");
    host->log(task, MUSTER_LOG_DEBUG, "%s", lost);
  }
  if (json_is_true(json_object_get(cfg, "orphan"))) orphan(host->loop(task));
  json_decref(cfg);
  return host->timer_start(task, (uint64_t)run_ms, 0, on_done, (void *)host, NULL);
}

static void m_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  muster_result r = {reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, -1, 0,
                     "stopped"};
  host->finish(task, &r);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "misbehaving",
    .version = "0.0.1",
    .description = "breaks the plugin contract (conformance suite tests)",
    .start = m_start,
    .cancel = m_cancel,
};
