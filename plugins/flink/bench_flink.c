/* Bench: what tracking Flink jobs costs the agent, and what our stop-with-savepoint adds to the
 * savepoint itself, through the flink plugin on one runner against the JobManager emulator
 * (integration/emulators/flink/jobmanager.py) on loopback. Prints figures only:
 *  1. N streaming tasks tracked at the default poll interval (2 s): the agent process's CPU (% of
 *     one core) and RSS over a measuring window, after all jobs run.
 *  2. stop-with-savepoint: cancel -> CANCELLED for tasks polling every P ms against a savepoint
 *     the emulator completes at the first status poll; the protocol needs two poll waits (trigger
 *     -> status, completed savepoint -> FINISHED job), so overhead = latency - 2 P.
 * Usage: bench_flink FLINK.SO integration/emulators/flink/jobmanager.py [N] [WINDOW_S] [STOPS] [P_MS] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/exec/runner.h"

#define MAX_N 2000

typedef struct bench {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_runner *runner;
  int running, done, failed;
  uint64_t last_final_ms;
  bool closed;
} bench;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void on_event(void *arg, const mu_task_event *ev) {
  bench *b = arg;
  if (ev->kind == MU_EV_PARAM && strcmp(ev->param.key, "state") == 0 && strcmp(ev->param.value, "RUNNING") == 0)
    b->running++;
  if (ev->kind != MU_EV_STATE || !mu_task_state_final(ev->state.state)) return;
  b->done++;
  b->last_final_ms = now_ms();
  if (ev->state.state != MU_TASK_CANCELLED && b->failed++ == 0)
    fprintf(stderr, "task %s: %s\n", ev->task_id, ev->state.message);
}

static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, strlen(field)) == 0) v = strtol(line + strlen(field) + 1, NULL, 10);
  if (f) fclose(f);
  return v;
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void on_wake(uv_timer_t *t) { *(bool *)t->data = true; }

static void run_for(bench *b, uint64_t ms) {
  bool done = false;
  uv_timer_t t;
  uv_timer_init(&b->loop, &t);
  t.data = &done;
  uv_timer_start(&t, on_wake, ms, 0);
  while (!done) uv_run(&b->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&b->loop, UV_RUN_NOWAIT);
}

static void assign(bench *b, const char *id, const char *spec) {
  mu_err err = {0};
  if (mu_runner_assign(b->runner, "bench", id, 1, spec, NULL, 0, &err) != 0) {
    fprintf(stderr, "assign %s: %s\n", id, err.msg);
    exit(1);
  }
}

static void cancel(bench *b, const char *id) {
  mu_err err = {0};
  if (mu_runner_cancel(b->runner, id, 1, "bench", &err) != 0) fprintf(stderr, "cancel %s: %s\n", id, err.msg);
}

static void on_closed(void *arg) { ((bench *)arg)->closed = true; }

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s FLINK.SO jobmanager.py [N] [WINDOW_S] [STOPS] [P_MS]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int n = argc > 3 ? atoi(argv[3]) : 200, window = argc > 4 ? atoi(argv[4]) : 30;
  int stops = argc > 5 ? atoi(argv[5]) : 20, poll = argc > 6 ? atoi(argv[6]) : 100;
  if (n < 1 || n > MAX_N || window < 1 || stops < 1 || poll < 50) return 2;
  char so[4096], emulator[4096];
  if (!realpath(argv[1], so) || !realpath(argv[2], emulator)) {
    perror("realpath");
    return 2;
  }
  char dir[] = "/tmp/bench_flink.XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  char port_file[600], jar[600], spool[600];
  snprintf(port_file, sizeof port_file, "%s/port", dir);
  snprintf(jar, sizeof jar, "%s/app.jar", dir);
  snprintf(spool, sizeof spool, "%s/spool", dir);
  FILE *f = fopen(jar, "w");
  if (f == NULL) return 1;
  fputs("class com.example.Clicks streaming checkpoint_every=5\n", f);
  fclose(f);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/usr/bin/python3", "python3", emulator, "--port-file", port_file, "--savepoint-polls", "1", (char *)NULL);
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 400 && port == 0; i++) {
    usleep(25000);
    FILE *pf = fopen(port_file, "r");
    if (pf != NULL) {
      if (fscanf(pf, "%d", &port) != 1) port = 0;
      fclose(pf);
    }
  }
  if (port == 0) {
    fprintf(stderr, "the emulator did not start\n");
    return 1;
  }

  bench b;
  memset(&b, 0, sizeof b);
  uv_loop_init(&b.loop);
  mu_err err = {0};
  if (mu_plugin_host_new(&b.plugins, &err) != 0 || mu_plugin_host_load(b.plugins, so, &err) != 0) {
    fprintf(stderr, "plugins: %s\n", err.msg);
    return 1;
  }
  mu_runner_config cfg = {.slots = (uint32_t)n + 8, .spool_dir = spool, .agent_id = "bench", .no_cgroups = true};
  mu_runner_sink sink = {on_event, &b};
  if (mu_runner_new(&b.loop, b.plugins, &cfg, &sink, &b.runner, &err) != 0) {
    fprintf(stderr, "runner: %s\n", err.msg);
    return 1;
  }

  /* 1. N tracked streaming jobs */
  char spec[1024];
  snprintf(
      spec, sizeof spec,
      "{\"name\":\"s\",\"flink\":{\"jobmanagerUrl\":\"http://127.0.0.1:%d\",\"jar\":\"%s\",\"kind\":\"streaming\"}}",
      port, jar);
  long rss0 = status_kb("VmRSS:");
  uint64_t t0 = now_ms();
  for (int i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "track-%d", i);
    assign(&b, id, spec);
  }
  while (b.running < n && now_ms() - t0 < 120000) run_for(&b, 100);
  printf(
      "bench_flink: %d streaming tasks RUNNING after %llu ms (poll interval 2 s, one runner, emulator on loopback)\n",
      b.running, (unsigned long long)(now_ms() - t0));
  run_for(&b, 2500);
  double c0 = cpu_ms();
  uint64_t w0 = now_ms();
  run_for(&b, (uint64_t)window * 1000);
  double cpu = cpu_ms() - c0, wall = (double)(now_ms() - w0);
  printf(
      "tracking %d jobs: agent CPU %.0f ms over %.0f ms = %.2f%% of one core; RSS %.1f MiB (%.1f before the tasks, "
      "%.1f KiB per task)\n",
      n, cpu, wall, 100.0 * cpu / wall, status_kb("VmRSS:") / 1024.0, rss0 / 1024.0,
      (double)(status_kb("VmRSS:") - rss0) / n);
  fflush(stdout);
  for (int i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "track-%d", i);
    cancel(&b, id);
  }
  while (b.done < n) uv_run(&b.loop, UV_RUN_ONCE);

  /* 2. stop-with-savepoint latency, one at a time */
  snprintf(
      spec, sizeof spec,
      "{\"name\":\"sp\",\"flink\":{\"jobmanagerUrl\":\"http://127.0.0.1:%d\",\"jar\":\"%s\",\"kind\":\"streaming\","
      "\"onCancel\":\"savepoint\",\"savepointDir\":\"file:%s/sp\",\"pollInterval\":\"%dms\"}}",
      port, jar, dir, poll);
  double sum = 0, max = 0;
  for (int i = 0; i < stops; i++) {
    char id[32];
    snprintf(id, sizeof id, "stop-%d", i);
    int running0 = b.running, done0 = b.done;
    assign(&b, id, spec);
    while (b.running == running0) uv_run(&b.loop, UV_RUN_ONCE);
    run_for(&b, 50);
    uint64_t c = now_ms();
    cancel(&b, id);
    while (b.done == done0) uv_run(&b.loop, UV_RUN_ONCE);
    double ms = (double)(b.last_final_ms - c);
    sum += ms;
    if (ms > max) max = ms;
  }
  double mean = sum / stops;
  printf(
      "stop-with-savepoint (%d stops, poll %d ms): cancel -> CANCELLED mean %.0f ms, max %.0f ms; the two poll "
      "waits the protocol needs are %d ms, so overhead mean %.0f ms, max %.0f ms%s\n",
      stops, poll, mean, max, 2 * poll, mean - 2 * poll, max - 2 * poll, b.failed ? " (some tasks FAILED)" : "");

  mu_runner_close(b.runner, on_closed, &b);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  mu_plugin_host_free(b.plugins);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}
