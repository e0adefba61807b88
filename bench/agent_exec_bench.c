/* bench/agent_exec_bench: the agent's execution core on one loop, as the agent runs it (runner,
 * shell plugin, supervisor, muster-exec helper, task dirs, cgroups when available): task-start
 * latency (assign -> RUNNING event) and assign -> final state, throughput of trivial tasks,
 * and the process's RSS over many tasks; beside them, in the same run, the physical floor: a
 * plain C loop doing posix_spawn + waitpid of /bin/true (and of the helper in front of it, and
 * fork + exec as libuv does).
 * Prints figures, never fails on them (docs/benchmarks.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "agent/exec/runner.h"
#include "bench/procstat.h"
#include "lib/base/log.h"

extern char **environ;

typedef struct bench {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_runner *runner;
  char spool[256];
  char prefix;                                 /* task ids are PREFIX<n> */
  uint64_t *assign_ns, *running_ns, *final_ns; /* per task of the latency phase, else NULL */
  uint64_t assigned, done, failed;
  double rate; /* throughput phase, tasks/s */
  char first_failure[512];
  bool closed;
} bench;

static void on_event(void *arg, const mu_task_event *ev) {
  bench *b = arg;
  if (ev->kind != MU_EV_STATE || ev->task_id[0] != b->prefix) return;
  uint64_t now = uv_hrtime();
  size_t i = strtoul(ev->task_id + 1, NULL, 10);
  if (ev->state.state == MU_TASK_RUNNING && b->running_ns != NULL) b->running_ns[i] = now;
  if (!mu_task_state_final(ev->state.state)) return;
  if (b->final_ns != NULL) b->final_ns[i] = now;
  b->done++;
  if (ev->state.state != MU_TASK_SUCCEEDED && b->failed++ == 0)
    snprintf(b->first_failure, sizeof b->first_failure, "%s: state %d: %s", ev->task_id, ev->state.state,
             ev->state.message);
}

static const char *spec_true = "{\"shell\":{\"command\":[\"true\"]}}";
/* --script: what `muster run -- true` sends (one string: a shell script). */
static const char *const spec_script_true = "{\"shell\":{\"script\":\"true\"}}";

static int assign_one(bench *b, uint64_t i) {
  char id[32];
  snprintf(id, sizeof id, "%c%llu", b->prefix, (unsigned long long)i);
  mu_err err = {0};
  if (b->assign_ns != NULL) b->assign_ns[i] = uv_hrtime();
  int rc = mu_runner_assign(b->runner, "bench", id, 1, spec_true, NULL, 0, &err);
  if (rc != 0) fprintf(stderr, "agent_exec_bench: assign %s: %s\n", id, err.msg);
  else b->assigned++;
  return rc;
}

static int cmp_u64(const void *a, const void *c) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)c;
  return x < y ? -1 : x > y;
}

/* Median and p99 of the differences end[i] - start[i], in ms. */
static void pct(const uint64_t *start, const uint64_t *end, size_t n, double *ret_med, double *ret_p99) {
  uint64_t *d = malloc(n * sizeof *d);
  if (d == NULL) abort();
  for (size_t i = 0; i < n; i++) d[i] = end[i] - start[i];
  qsort(d, n, sizeof *d, cmp_u64);
  *ret_med = (double)d[n / 2] / 1e6;
  *ret_p99 = (double)d[(n * 99) / 100] / 1e6;
  free(d);
}

static double rss_mib(void) {
  mu_proc_mem m;
  mu_err err = {0};
  if (mu_proc_mem_read(getpid(), &m, &err) != 0) return -1;
  return (double)m.rss_kib / 1024.0;
}

static double cpu_ms(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void target(bool met, const char *what) { printf("  [target %s: %s]\n", what, met ? "met" : "missed"); }

/* ---- the floor: posix_spawn + waitpid from a plain loop ---- */

/* The floor's spawn: posix_spawn (vfork-like), or fork + execv as libuv 1.44's uv_spawn does. */
static pid_t spawn_argv(char *const argv[], bool use_fork) {
  if (use_fork) {
    pid_t pid = fork();
    if (pid == 0) {
      execv(argv[0], argv);
      _exit(127);
    }
    if (pid < 0) fprintf(stderr, "agent_exec_bench: fork: %s\n", strerror(errno));
    return pid;
  }
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
  if (rc != 0) {
    fprintf(stderr, "agent_exec_bench: posix_spawn %s: %s\n", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

static int reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* n sequential spawns: per-task latency; then n with `par` in flight: tasks/s. */
static int floor_run(const char *name, char *const argv[], size_t n, uint32_t par, bool use_fork, double *ret_rate) {
  uint64_t *s = malloc(n * sizeof *s), *e = malloc(n * sizeof *e);
  if (s == NULL || e == NULL) abort();
  for (size_t i = 0; i < n; i++) {
    s[i] = uv_hrtime();
    pid_t pid = spawn_argv(argv, use_fork);
    if (pid < 0 || reap(pid) != 0) return -1;
    e[i] = uv_hrtime();
  }
  double med, p99;
  pct(s, e, n, &med, &p99);
  printf("%s_latency_median: %.3f ms\n%s_latency_p99: %.3f ms\n", name, med, name, p99);
  printf("%s_serial_tasks_per_s: %.0f tasks/s\n", name, 1e9 * (double)n / (double)(e[n - 1] - s[0]));
  free(s);
  free(e);
  double cpu0 = cpu_ms(RUSAGE_SELF) + cpu_ms(RUSAGE_CHILDREN);
  uint64_t t0 = uv_hrtime();
  size_t started = 0, ended = 0;
  uint32_t inflight = 0;
  while (ended < n) {
    while (inflight < par && started < n) {
      if (spawn_argv(argv, use_fork) < 0) return -1;
      started++;
      inflight++;
    }
    int st;
    pid_t pid = wait(&st);
    if (pid < 0) return -1;
    inflight--;
    ended++;
  }
  *ret_rate = 1e9 * (double)n / (double)(uv_hrtime() - t0);
  printf("%s_parallel_tasks_per_s: %.0f tasks/s (%u in flight)\n", name, *ret_rate, par);
  printf("%s_cpu_per_task: %.3f ms (this loop and the children, parallel part)\n", name,
         (cpu_ms(RUSAGE_SELF) + cpu_ms(RUSAGE_CHILDREN) - cpu0) / (double)n);
  return 0;
}

/* ---- the runner ---- */

static void on_closed(void *arg) { ((bench *)arg)->closed = true; }

static int latency_phase(bench *b, size_t n) {
  b->prefix = 'L';
  b->assign_ns = calloc(n, sizeof(uint64_t));
  b->running_ns = calloc(n, sizeof(uint64_t));
  b->final_ns = calloc(n, sizeof(uint64_t));
  if (b->assign_ns == NULL || b->running_ns == NULL || b->final_ns == NULL) abort();
  b->assigned = b->done = 0;
  for (size_t i = 0; i < n; i++) {
    if (assign_one(b, i) != 0) return -1;
    while (b->done <= i) uv_run(&b->loop, UV_RUN_ONCE);
  }
  double med, p99, fmed, fp99;
  pct(b->assign_ns, b->running_ns, n, &med, &p99);
  pct(b->assign_ns, b->final_ns, n, &fmed, &fp99);
  printf("start_latency_median: %.3f ms\n", med);
  target(med < 2.0, "< 2 ms");
  printf("start_latency_p99: %.3f ms\n", p99);
  printf("assign_to_final_median: %.3f ms\nassign_to_final_p99: %.3f ms\n", fmed, fp99);
  printf("serial_tasks_per_s: %.0f tasks/s\n", 1e9 * (double)n / (double)(b->final_ns[n - 1] - b->assign_ns[0]));
  free(b->assign_ns);
  free(b->running_ns);
  free(b->final_ns);
  b->assign_ns = b->running_ns = b->final_ns = NULL;
  return 0;
}

/* Keeps `window` tasks assigned (slots busy, a few queued) until n are done. */
static int throughput_phase(bench *b, size_t n, uint32_t window) {
  b->prefix = 'T';
  b->assigned = b->done = 0;
  double rss0 = rss_mib(), cpu0 = cpu_ms(RUSAGE_SELF);
  printf("agent_rss_before: %.1f MiB (after the latency phase's warm-up)\n", rss0);
  uint64_t t0 = uv_hrtime(), next_sample = n / 4;
  while (b->done < n) {
    while (b->assigned - b->done < window && b->assigned < n)
      if (assign_one(b, b->assigned) != 0) return -1;
    uv_run(&b->loop, UV_RUN_ONCE);
    if (b->done >= next_sample && b->done < n) {
      printf("agent_rss_at_%llu: %.1f MiB\n", (unsigned long long)b->done, rss_mib());
      next_sample += n / 4;
    }
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  double rate = (double)n / secs;
  b->rate = rate;
  printf("throughput: %.0f tasks/s (%zu tasks in %.1f s)\n", rate, n, secs);
  target(rate >= 500, ">= 500 tasks/s");
  printf("agent_cpu_per_task: %.3f ms\n", (cpu_ms(RUSAGE_SELF) - cpu0) / (double)n);
  double rss1 = rss_mib();
  printf("agent_rss_after: %.1f MiB (after %zu tasks; %+.1f MiB)\n", rss1, n, rss1 - rss0);
  target(rss1 - rss0 < 1.0, "flat, < 1 MiB growth");
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: agent_exec_bench [--latency-tasks N] [--tasks N] [--floor-tasks N] [--slots N]\n"
          "                        [--no-cgroups] [--no-exec-server] [--script] [--helper PATH] [--shell-so PATH] "
          "[--log-level LEVEL]\n"
          "  defaults: 2000 latency tasks, 100000 throughput/RSS tasks, 2000 floor tasks,\n"
          "  slots = 2 x CPUs, helper and plugin from the Bazel runfiles, log level warn\n");
}

int main(int argc, char **argv) {
  size_t n_lat = 2000, n_tasks = 100000, n_floor = 2000;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t slots = (uint32_t)(ncpu > 0 ? 2 * ncpu : 4);
  bool no_cgroups = false, no_exec_server = false;
  const char *helper_arg = "agent/exec/muster-exec", *shell_arg = "plugins/shell/libmuster_shell.so";
  mu_log_level level = MU_LOG_WARN;
  static const struct option opts[] = {{"latency-tasks", required_argument, NULL, 'l'},
                                       {"tasks", required_argument, NULL, 't'},
                                       {"floor-tasks", required_argument, NULL, 'f'},
                                       {"slots", required_argument, NULL, 's'},
                                       {"no-cgroups", no_argument, NULL, 'n'},
                                       {"helper", required_argument, NULL, 'H'},
                                       {"shell-so", required_argument, NULL, 'S'},
                                       {"log-level", required_argument, NULL, 'L'},
                                       {"script", no_argument, NULL, 'x'},
                                       {"no-exec-server", no_argument, NULL, 'X'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
      case 'l': n_lat = strtoul(optarg, &end, 10); break;
      case 't': n_tasks = strtoul(optarg, &end, 10); break;
      case 'f': n_floor = strtoul(optarg, &end, 10); break;
      case 's': slots = (uint32_t)strtoul(optarg, &end, 10); break;
      case 'n': no_cgroups = true; break;
      case 'x': spec_true = spec_script_true; break;
      case 'X': no_exec_server = true; break;
      case 'H': helper_arg = optarg; break;
      case 'S': shell_arg = optarg; break;
      case 'L':
        if (mu_log_parse_level(optarg, &level) != 0) {
          usage(stderr);
          return 2;
        }
        break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
    if (end != NULL && (*end != '\0' || end == optarg)) {
      fprintf(stderr, "agent_exec_bench: bad number \"%s\"\n", optarg);
      return 2;
    }
  }
  if (n_lat == 0 || n_tasks < 4 || n_floor == 0 || slots == 0) {
    usage(stderr);
    return 2;
  }
  char helper[4096], shell_so[4096];
  if (realpath(helper_arg, helper) == NULL || realpath(shell_arg, shell_so) == NULL) {
    fprintf(stderr, "agent_exec_bench: cannot find %s or %s (run it with bazel run, or pass --helper/--shell-so)\n",
            helper_arg, shell_arg);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  mu_log_set_level(level);
  setvbuf(stdout, NULL, _IOLBF, 0);

  bench b;
  memset(&b, 0, sizeof b);
  snprintf(b.spool, sizeof b.spool, "/tmp/agent_exec_bench.XXXXXX");
  if (mkdtemp(b.spool) == NULL) return 1;
  uv_loop_init(&b.loop);
  mu_err err = {0};
  if (mu_plugin_host_new(&b.plugins, &err) != 0 || mu_plugin_host_load(b.plugins, shell_so, &err) != 0) {
    fprintf(stderr, "agent_exec_bench: %s\n", err.msg);
    return 1;
  }
  mu_runner_config cfg = {.slots = slots,
                          .spool_dir = b.spool,
                          .agent_id = "bench",
                          .helper_path = helper,
                          .no_cgroups = no_cgroups,
                          .no_exec_server = no_exec_server,
                          .cgroup_name = "muster-bench",
                          .queue_max = 4 * slots};
  mu_runner_sink sink = {on_event, &b};
  if (mu_runner_new(&b.loop, b.plugins, &cfg, &sink, &b.runner, &err) != 0) {
    fprintf(stderr, "agent_exec_bench: %s\n", err.msg);
    return 1;
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = -1;
  printf("machine: %ld CPUs, load average %.2f at start; limits via %s; %u slots; task %s\n", ncpu, load[0],
         mu_runner_limits_mode(b.runner), slots, spec_true);

  double self0 = cpu_ms(RUSAGE_SELF), kids0 = cpu_ms(RUSAGE_CHILDREN);
  int rc = latency_phase(&b, n_lat);
  if (rc == 0) rc = throughput_phase(&b, n_tasks, 2 * slots);
  if (b.failed > 0) printf("failed_tasks: %llu (first: %s)\n", (unsigned long long)b.failed, b.first_failure);
  mu_runner_close(b.runner, on_closed, &b);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  /* Children's CPU counts once they are reaped: the exec server's (its tasks' included) after
   * the close above, each one-shot helper's (and its task's) as it ends. */
  double all_tasks = (double)(n_lat + n_tasks);
  printf("cpu_per_task_all: %.3f ms (agent %.3f + helper/server and the task %.3f; both phases)\n",
         (cpu_ms(RUSAGE_SELF) - self0 + cpu_ms(RUSAGE_CHILDREN) - kids0) / all_tasks,
         (cpu_ms(RUSAGE_SELF) - self0) / all_tasks, (cpu_ms(RUSAGE_CHILDREN) - kids0) / all_tasks);
  uv_loop_close(&b.loop);
  mu_plugin_host_free(b.plugins);

  char *true_argv[] = {"/bin/true", NULL};
  char *helper_argv[] = {helper, "--", "/bin/true", NULL};
  double floor_rate = 0, helper_rate = 0, fork_rate = 0;
  if (rc == 0) rc = floor_run("floor_spawn_true", true_argv, n_floor, slots, false, &floor_rate);
  if (rc == 0) rc = floor_run("floor_spawn_helper_true", helper_argv, n_floor, slots, false, &helper_rate);
  if (rc == 0) rc = floor_run("floor_fork_exec_true", true_argv, n_floor, slots, true, &fork_rate);
  if (rc == 0 && floor_rate > 0) {
    printf("throughput_to_floor_ratio: %.2f (throughput / floor_spawn_true_parallel, same run)\n", b.rate / floor_rate);
    target(b.rate >= 0.8 * floor_rate, ">= 0.8 x the posix_spawn floor");
  }
  if (getloadavg(load, 3) >= 0) printf("load average at end: %.2f\n", load[0]);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", b.spool);
  if (system(cmd) != 0) fprintf(stderr, "agent_exec_bench: cleanup of %s failed\n", b.spool);
  return rc == 0 ? 0 : 1;
}
