/* Start latency of a trivial Python task (assign -> final state, through the agent's runner,
 * the supervisor and this plugin): on the bare interpreter, in a warm cached environment, and
 * in a cold one (a new requirements set each run, so venv + pip install every time), against
 * `python3 -c pass` spawned directly as the floor. Prints figures only, never fails on time.
 *   bazel run //plugins/python:bench_python [-- MUSTER-EXEC PYTHON.so [RUNS]] */
#define _GNU_SOURCE
#include <glob.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/exec/runner.h"

extern char **environ;

static char base[256], spool[300], cache[300], wheelhouse[300];

typedef struct bench {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_runner *runner;
  int final_state;
  bool done, closed;
  char message[512];
} bench;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_event(void *arg, const mu_task_event *ev) {
  bench *b = arg;
  if (ev->kind == MU_EV_STATE && mu_task_state_final(ev->state.state)) {
    b->done = true;
    b->final_state = ev->state.state;
    snprintf(b->message, sizeof b->message, "%s", ev->state.message);
  }
}

/* One task from assign to its final state, in ms; -1 when it did not succeed. */
static double run_task(bench *b, const char *id, const char *spec, const char *reqs) {
  mu_err err = {0};
  b->done = false;
  double t0 = now_ms();
  if (mu_runner_assign(b->runner, "bench", id, 1, spec, NULL, 0, &err) != 0) {
    fprintf(stderr, "assign: %s\n", err.msg);
    return -1;
  }
  if (reqs != NULL) { /* the bundle's requirements.txt, written as an unpack would */
    char pattern[600], path[900];
    snprintf(pattern, sizeof pattern, "%s/work/%s.1.*", spool, id);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc != 1) return -1;
    snprintf(path, sizeof path, "%s/requirements.txt", g.gl_pathv[0]);
    globfree(&g);
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    fputs(reqs, f);
    fclose(f);
  }
  while (!b->done) uv_run(&b->loop, UV_RUN_ONCE);
  double ms = now_ms() - t0;
  if (b->final_state != MU_TASK_SUCCEEDED) {
    fprintf(stderr, "task %s: %s\n", id, b->message);
    return -1;
  }
  return ms;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  printf("%-44s median %8.1f ms   min %8.1f   max %8.1f   (n=%d)\n", what, v[n / 2], v[0], v[n - 1], n);
}

static void on_closed(void *arg) { ((bench *)arg)->closed = true; }

int main(int argc, char **argv) {
  const char *helper_arg = argc > 1 ? argv[1] : "agent/exec/muster-exec";
  const char *so_arg = argc > 2 ? argv[2] : "plugins/python/libmuster_python.so";
  int runs = argc > 3 ? atoi(argv[3]) : 10;
  if (runs < 3) runs = 3;
  char helper[4096], so[4096];
  if (!realpath(helper_arg, helper) || !realpath(so_arg, so)) {
    fprintf(stderr, "usage: bench_python MUSTER-EXEC PYTHON.so [RUNS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(base, sizeof base, "/tmp/bench_python.XXXXXX");
  if (mkdtemp(base) == NULL) return 2;
  chmod(base, 0755);
  snprintf(spool, sizeof spool, "%s/spool", base);
  snprintf(cache, sizeof cache, "%s/cache", base);
  snprintf(wheelhouse, sizeof wheelhouse, "%s/wh", base);
  mkdir(spool, 0755);
  setenv("MUSTER_PYTHON_CACHE", cache, 1);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/src/tinypkg && printf \"from setuptools import setup\\nsetup(name='tinypkg', version='1.0.0', "
           "packages=['tinypkg'])\\n\" > %s/src/setup.py && echo 'X = 1' > %s/src/tinypkg/__init__.py && cd %s && "
           "/usr/bin/python3 -m pip wheel --isolated -q --no-deps --no-build-isolation -w %s ./src >/dev/null 2>&1",
           base, base, base, base, wheelhouse);
  if (system(cmd) != 0) {
    fprintf(stderr, "cannot build the wheelhouse\n");
    return 1;
  }

  /* The floor: the interpreter alone, spawned and reaped directly. */
  double *v = calloc((size_t)runs, sizeof *v);
  for (int i = 0; i < runs; i++) {
    char *args[] = {"/usr/bin/python3", "-c", "pass", NULL};
    pid_t pid;
    int st;
    double t0 = now_ms();
    if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0 || waitpid(pid, &st, 0) < 0) return 1;
    v[i] = now_ms() - t0;
  }
  printf("python task start latency, %d runs each (load average matters: see /proc/loadavg)\n", runs);
  report("floor: /usr/bin/python3 -c pass", v, runs);

  bench b;
  memset(&b, 0, sizeof b);
  uv_loop_init(&b.loop);
  mu_err err = {0};
  mu_plugin_host_new(&b.plugins, &err);
  if (mu_plugin_host_load(b.plugins, so, &err) != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  mu_runner_config cfg = {
      .slots = 4, .spool_dir = spool, .agent_id = "bench", .helper_path = helper, .cgroup_name = "muster-pybench"};
  mu_runner_sink sink = {on_event, &b};
  if (mu_runner_new(&b.loop, b.plugins, &cfg, &sink, &b.runner, &err) != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  char id[64], spec[1024];
  for (int i = 0; i < runs; i++) {
    snprintf(id, sizeof id, "bare-%d", i);
    v[i] = run_task(&b, id, "{\"python\":{\"code\":\"pass\"}}", NULL);
  }
  report("task, bare interpreter (code: pass)", v, runs);

  snprintf(spec, sizeof spec,
           "{\"python\":{\"code\":\"import tinypkg\",\"requirements\":\"requirements.txt\",\"wheelhouse\":\"%s\"}}",
           wheelhouse);
  run_task(&b, "warmup", spec, "tinypkg==1.0.0\n");
  for (int i = 0; i < runs; i++) {
    snprintf(id, sizeof id, "warm-%d", i);
    v[i] = run_task(&b, id, spec, "tinypkg==1.0.0\n");
  }
  report("task, warm env cache (import tinypkg)", v, runs);

  int cold = runs < 5 ? runs : 5;
  for (int i = 0; i < cold; i++) {
    char reqs[128];
    snprintf(id, sizeof id, "cold-%d", i);
    snprintf(reqs, sizeof reqs, "tinypkg==1.0.0 ; python_version >= \"3.%d\"\n", i); /* a new key each run */
    v[i] = run_task(&b, id, spec, reqs);
  }
  report("task, cold env (venv + pip install)", v, cold);

  mu_runner_close(b.runner, on_closed, &b);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  mu_plugin_host_free(b.plugins);
  free(v);
  snprintf(cmd, sizeof cmd, "rm -rf %s", base);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", base);
  return 0;
}
