/* bench/plugin_isolation_bench: the per-task cost of running a plugin out of process
 * (muster-plugin-host over a socketpair, agent/plugin/remote.h) against in-process, on the
 * agent's real runner. Trivial tasks, one at a time (latency: assign -> final state) and 4 at
 * a time (throughput), for sleep-echo (one message, no process: pure host-API traffic) and the
 * shell type running `true` (a process spawn through the agent: the SPAWN round trip), plus
 * the channel's bare round trip (PING/PONG). Prints figures, never fails on them.
 *   bazel run -c opt //bench:plugin_isolation_bench [-- --tasks 2000] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent/exec/runner.h"
#include "agent/plugin/remote.h"
#include "bench/stats.h"
#include "lib/base/log.h"

typedef struct bench {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_plugin_remote *remote;
  mu_runner *runner;
  uint64_t done, failed, next;
  char first_failure[512];
  bool closed;
} bench;

static void on_event(void *arg, const mu_task_event *ev) {
  bench *b = arg;
  if (ev->kind != MU_EV_STATE || !mu_task_state_final(ev->state.state)) return;
  b->done++;
  if (ev->state.state != MU_TASK_SUCCEEDED && b->failed++ == 0)
    snprintf(b->first_failure, sizeof b->first_failure, "%s: %s", ev->task_id, ev->state.message);
}

static void bench_open(bench *b, const char *spool, const char *helper, const char *so, const char *host) {
  memset(b, 0, sizeof *b);
  uv_loop_init(&b->loop);
  mu_err err = {0};
  if (mu_plugin_host_new(&b->plugins, &err) != 0) goto fail;
  if (host != NULL) {
    mu_plugin_remote_opts o = {.host_path = host, .so_path = so};
    if (mu_plugin_remote_open(&b->loop, &o, &b->remote, &err) != 0 ||
        mu_plugin_host_register_as(b->plugins, mu_plugin_remote_descriptor(b->remote), so, "process", &err) != 0)
      goto fail;
  } else if (mu_plugin_host_load(b->plugins, so, &err) != 0) {
    goto fail;
  }
  mu_runner_config cfg = {
      .slots = 4, .spool_dir = spool, .agent_id = "bench", .helper_path = helper, .cgroup_name = "muster-bench"};
  mu_runner_sink sink = {on_event, b};
  if (mu_runner_new(&b->loop, b->plugins, &cfg, &sink, &b->runner, &err) != 0) goto fail;
  return;
fail:
  fprintf(stderr, "plugin_isolation_bench: %s\n", err.msg);
  exit(1);
}

static void on_closed(void *arg) { ((bench *)arg)->closed = true; }

static void bench_close(bench *b) {
  mu_runner_close(b->runner, on_closed, b);
  while (!b->closed) uv_run(&b->loop, UV_RUN_ONCE);
  if (b->remote != NULL) mu_plugin_remote_close(b->remote, NULL, NULL);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->loop);
  mu_plugin_host_free(b->plugins);
}

static void assign(bench *b, const char *spec) {
  char id[32];
  snprintf(id, sizeof id, "t%llu", (unsigned long long)b->next++);
  mu_err err = {0};
  if (mu_runner_assign(b->runner, "bench", id, 1, spec, NULL, 0, &err) != 0) {
    fprintf(stderr, "plugin_isolation_bench: assign: %s\n", err.msg);
    exit(1);
  }
}

/* n tasks one after another: per-task latency in microseconds into lat[]. */
static void sequential(bench *b, const char *spec, size_t n, double *lat) {
  for (size_t i = 0; i < n; i++) {
    uint64_t before = b->done, t0 = uv_hrtime();
    assign(b, spec);
    while (b->done == before) uv_run(&b->loop, UV_RUN_ONCE);
    lat[i] = (double)(uv_hrtime() - t0) / 1000.0;
  }
}

/* n tasks, 4 in flight: tasks per second. */
static double concurrent(bench *b, const char *spec, size_t n) {
  uint64_t start_done = b->done, t0 = uv_hrtime();
  size_t sent = 0;
  while (b->done - start_done < n) {
    while (sent < n && sent - (b->done - start_done) < 4) {
      assign(b, spec);
      sent++;
    }
    uv_run(&b->loop, UV_RUN_ONCE);
  }
  return (double)n / ((double)(uv_hrtime() - t0) / 1e9);
}

typedef struct summary {
  double p50, p99, mean;
} summary;

static summary summarize(double *v, size_t n) {
  summary s = {0, 0, 0};
  for (size_t i = 0; i < n; i++) s.mean += v[i] / (double)n;
  s.p50 = mu_bench_percentile(v, n, 50);
  s.p99 = mu_bench_percentile(v, n, 99);
  return s;
}

static void on_pong(void *arg, int64_t rtt_us) { *(int64_t *)arg = rtt_us; }

int main(int argc, char **argv) {
  size_t tasks = 2000;
  static const struct option opts[] = {{"tasks", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
    if (c == 't') tasks = strtoul(optarg, NULL, 10);
  if (argc - optind != 4 || tasks < 10) {
    fprintf(stderr, "usage: plugin_isolation_bench [--tasks N] MUSTER_EXEC PLUGIN_HOST SLEEP_ECHO_SO SHELL_SO\n");
    return 2;
  }
  char helper[4096], host[4096], echo_so[4096], shell_so[4096];
  if (!realpath(argv[optind], helper) || !realpath(argv[optind + 1], host) || !realpath(argv[optind + 2], echo_so) ||
      !realpath(argv[optind + 3], shell_so)) {
    fprintf(stderr, "plugin_isolation_bench: a path does not exist\n");
    return 2;
  }
  mu_log_set_level(MU_LOG_WARN);
  char spool[] = "/tmp/plugin_isolation_bench.XXXXXX";
  if (mkdtemp(spool) == NULL) return 1;
  struct {
    const char *name, *so, *spec;
  } cases[] = {
      {"sleep-echo (no process)", echo_so,
       "{\"plugin\":{\"type\":\"sleep-echo\",\"configJson\":\"{\\\"message\\\":\\\"x\\\",\\\"count\\\":1,"
       "\\\"intervalMs\\\":0}\"}}"},
      {"shell `true` (one process)", shell_so, "{\"shell\":{\"command\":[\"true\"]}}"},
  };
  double *lat[2] = {calloc(tasks, sizeof(double)), calloc(tasks, sizeof(double))};
  printf(
      "plugin isolation: %zu trivial tasks per case and mode, one at a time (assign -> final state), the two\n"
      "modes interleaved in rounds of 100 so load on the machine hits both alike; then 4 in flight\n",
      tasks);
  printf("%-28s %-11s %9s %9s %9s %10s\n", "case", "isolation", "p50 us", "p99 us", "mean us", "tasks/s");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    bench b[2];
    for (int proc = 0; proc < 2; proc++) {
      bench_open(&b[proc], spool, helper, cases[k].so, proc ? host : NULL);
      sequential(&b[proc], cases[k].spec, tasks / 10 < 100 ? tasks / 10 : 100, lat[proc]); /* warm-up */
    }
    for (size_t done = 0; done < tasks; done += 100) {
      size_t n = tasks - done < 100 ? tasks - done : 100;
      for (int proc = 0; proc < 2; proc++) sequential(&b[proc], cases[k].spec, n, lat[proc] + done);
    }
    summary st[2];
    for (int proc = 0; proc < 2; proc++) {
      st[proc] = summarize(lat[proc], tasks);
      double tps = concurrent(&b[proc], cases[k].spec, tasks);
      printf("%-28s %-11s %9.0f %9.0f %9.0f %10.0f\n", cases[k].name, proc ? "process" : "in-process", st[proc].p50,
             st[proc].p99, st[proc].mean, tps);
      if (b[proc].failed)
        printf("  %llu tasks failed; first: %s\n", (unsigned long long)b[proc].failed, b[proc].first_failure);
    }
    if (k == 0) {
      for (size_t i = 0; i < tasks; i++) {
        int64_t rtt = -2;
        mu_plugin_remote_ping(b[1].remote, on_pong, &rtt);
        while (rtt == -2) uv_run(&b[1].loop, UV_RUN_ONCE);
        lat[1][i] = (double)rtt;
      }
      summary ps = summarize(lat[1], tasks);
      printf("%-28s %-11s %9.0f %9.0f %9.0f\n", "  channel PING/PONG", "process", ps.p50, ps.p99, ps.mean);
    }
    printf("  per-task overhead of process isolation: %+.0f us at p50, %+.0f us mean\n", st[1].p50 - st[0].p50,
           st[1].mean - st[0].mean);
    for (int proc = 0; proc < 2; proc++) bench_close(&b[proc]);
  }
  free(lat[0]);
  free(lat[1]);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  if (system(cmd) != 0) return 1;
  return 0;
}
