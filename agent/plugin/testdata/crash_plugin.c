/* crasher: a deliberately broken third-party plugin for the isolation tests. Config:
 *   {"crash": "start" | "timer" | "exit" | "unload" | "hang" | "none", "pidFile": "/path", "ms": 100}
 * start: segfaults in start(); timer: starts `sleep 30` (writing its pid to pidFile when
 * given), then segfaults in a timer callback after ms; exit: runs `true` and segfaults in
 * its exit callback; unload: succeeds, and the process segfaults when the plugin is unloaded
 * (dlclose runs the destructor); hang: never returns from a timer callback after ms; none:
 * succeeds after ms. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "muster_plugin.h"

static int crash_at_unload;

__attribute__((no_sanitize_undefined, noinline)) static void crash(void) {
  volatile int *p = NULL;
  *p = 42; /* SIGSEGV */
}

__attribute__((destructor)) static void on_unload(void) {
  if (crash_at_unload) crash();
}

typedef struct ctask {
  char mode[16];
} ctask;

static void on_tick(muster_task *task, muster_timer *timer, void *user) {
  (void)timer;
  (void)task;
  ctask *c = user;
  if (strcmp(c->mode, "timer") == 0) crash();
  if (strcmp(c->mode, "hang") == 0)
    for (;;) sleep(1);
}

static const muster_host_api *g_host; /* test plugin: one host per process */

static void on_done(muster_task *task, muster_timer *timer, void *user) {
  (void)timer;
  (void)user;
  muster_result r = {MUSTER_STATE_SUCCEEDED, 0, 0, "fine"};
  g_host->finish(task, &r);
}

static void on_proc_exit(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)proc;
  (void)x;
  ctask *c = user;
  if (strcmp(c->mode, "exit") == 0) crash();
}

static int c_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  g_host = host;
  json_t *cfg = json_loads(host->context(task)->config_json, 0, NULL);
  const char *mode = cfg ? json_string_value(json_object_get(cfg, "crash")) : NULL;
  const char *pid_file = cfg ? json_string_value(json_object_get(cfg, "pidFile")) : NULL;
  json_int_t ms =
      cfg && json_is_integer(json_object_get(cfg, "ms")) ? json_integer_value(json_object_get(cfg, "ms")) : 100;
  ctask *c = calloc(1, sizeof *c);
  snprintf(c->mode, sizeof c->mode, "%s", mode ? mode : "none");
  host->set_user_data(task, c);
  int rc = 0;
  if (strcmp(c->mode, "start") == 0) crash();
  if (strcmp(c->mode, "timer") == 0) {
    char script[1200];
    snprintf(script, sizeof script, "%s%s%s exec sleep 30", pid_file ? "echo $$ > " : "", pid_file ? pid_file : "",
             pid_file ? ";" : "");
    const char *argv[] = {"sh", "-c", script, NULL};
    muster_spawn_opts o = {.size = sizeof o, .argv = argv, .on_exit = on_proc_exit, .user = c};
    rc = host->spawn(task, &o, NULL, errbuf);
    if (rc == 0) rc = host->timer_start(task, (uint64_t)ms, 0, on_tick, c, NULL);
  } else if (strcmp(c->mode, "hang") == 0) {
    rc = host->timer_start(task, (uint64_t)ms, 0, on_tick, c, NULL);
  } else if (strcmp(c->mode, "exit") == 0) {
    const char *argv[] = {"true", NULL};
    muster_spawn_opts o = {.size = sizeof o, .argv = argv, .on_exit = on_proc_exit, .user = c};
    rc = host->spawn(task, &o, NULL, errbuf);
  } else {
    if (strcmp(c->mode, "unload") == 0) crash_at_unload = 1;
    rc = host->timer_start(task, (uint64_t)ms, 0, on_done, c, NULL);
  }
  json_decref(cfg);
  return rc;
}

static void c_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  (void)reason;
  muster_result r = {MUSTER_STATE_CANCELLED, -1, 0, "cancelled"};
  host->finish(task, &r);
}

static void c_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  free(user_data);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "crasher",
    .version = "0.0.1",
    .description = "crashes on purpose (tests of process isolation)",
    .start = c_start,
    .cancel = c_cancel,
    .cleanup = c_cleanup,
};
