/* Bench: 100 concurrent HTTP tasks on one runner against integration/http_server.py on
 * loopback, through the http plugin (one curl multi on the loop), against the same 100 calls
 * made by `curl` run as shell tasks (one supervised process each). Prints figures only:
 * tasks/s, the agent process's RSS and CPU, and for curl the children's summed max RSS.
 * Usage: bench_http HTTP.SO SHELL.SO MUSTER-EXEC plugins/http/FILE integration/http_server.py [N] [ROUNDS] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/exec/runner.h"

#define MAX_N 1000

typedef struct bench {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_runner *runner;
  int done, failed;
  int64_t child_rss;
  bool closed;
} bench;

static void on_event(void *arg, const mu_task_event *ev) {
  bench *b = arg;
  if (ev->kind != MU_EV_STATE || !mu_task_state_final(ev->state.state)) return;
  b->done++;
  if (ev->state.state != MU_TASK_SUCCEEDED) {
    if (b->failed++ == 0) fprintf(stderr, "task %s: %s\n", ev->task_id, ev->state.message);
  }
  if (ev->state.metrics && ev->state.metrics->max_rss_bytes > 0) b->child_rss += ev->state.metrics->max_rss_bytes;
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

static void on_closed(void *arg) { ((bench *)arg)->closed = true; }

/* One round: n tasks of spec assigned at once, run to the end. */
static void round_run(bench *b, const char *label, int round, const char *spec, int n) {
  b->done = b->failed = 0;
  b->child_rss = 0;
  long rss0 = status_kb("VmRSS:");
  double cpu0 = cpu_ms();
  uint64_t t0 = uv_hrtime();
  long peak = rss0;
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%d-%d", label, round, i);
    mu_err err = {0};
    if (mu_runner_assign(b->runner, "bench", id, 1, spec, NULL, 0, &err) != 0) {
      fprintf(stderr, "assign: %s\n", err.msg);
      exit(1);
    }
  }
  while (b->done < n) {
    uv_run(&b->loop, UV_RUN_ONCE);
    long r = status_kb("VmRSS:");
    if (r > peak) peak = r;
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("%-11s round %d: %d tasks in %6.0f ms = %7.1f tasks/s; agent RSS %6.1f MiB (peak %6.1f); agent CPU %5.0f ms",
         label, round, n, secs * 1e3, n / secs, rss0 / 1024.0, peak / 1024.0, cpu_ms() - cpu0);
  if (b->child_rss > 0) printf("; children max RSS sum %6.1f MiB", (double)b->child_rss / (1024.0 * 1024.0));
  if (b->failed) printf("; %d FAILED", b->failed);
  printf("\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr,
            "usage: %s HTTP.SO SHELL.SO MUSTER-EXEC plugins/http/FILE integration/http_server.py [N] [ROUNDS]\n",
            argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int n = argc > 6 ? atoi(argv[6]) : 100, rounds = argc > 7 ? atoi(argv[7]) : 3;
  if (n < 1 || n > MAX_N || rounds < 1) return 2;
  char http_so[4096], shell_so[4096], helper[4096], anchor[4096], server[4200];
  if (!realpath(argv[1], http_so) || !realpath(argv[2], shell_so) || !realpath(argv[3], helper) ||
      !realpath(argv[4], anchor)) {
    perror("realpath");
    return 2;
  }
  for (int i = 0; i < 3; i++) *strrchr(anchor, '/') = '\0';
  snprintf(server, sizeof server, "%s/%s", anchor, argv[5]);

  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    execl("/usr/bin/python3", "python3", server, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  FILE *f = fdopen(p[0], "r");
  char line[128] = "";
  int port = 0, tls = 0;
  if (!fgets(line, sizeof line, f) || sscanf(line, "PORTS %d %d", &port, &tls) != 2) {
    fprintf(stderr, "server did not start\n");
    return 1;
  }
  fclose(f);

  char spool[] = "/tmp/bench_http.XXXXXX";
  if (mkdtemp(spool) == NULL) return 1;
  bench b;
  memset(&b, 0, sizeof b);
  uv_loop_init(&b.loop);
  mu_err err = {0};
  if (mu_plugin_host_new(&b.plugins, &err) != 0 || mu_plugin_host_load(b.plugins, http_so, &err) != 0 ||
      mu_plugin_host_load(b.plugins, shell_so, &err) != 0) {
    fprintf(stderr, "plugins: %s\n", err.msg);
    return 1;
  }
  mu_runner_config cfg = {
      .slots = (uint32_t)n + 8, .spool_dir = spool, .agent_id = "bench", .helper_path = helper, .no_cgroups = true};
  mu_runner_sink sink = {on_event, &b};
  if (mu_runner_new(&b.loop, b.plugins, &cfg, &sink, &b.runner, &err) != 0) {
    fprintf(stderr, "runner: %s\n", err.msg);
    return 1;
  }
  char http_spec[512], shell_spec[512];
  snprintf(http_spec, sizeof http_spec, "{\"timeout\":\"60s\",\"http\":{\"url\":\"http://127.0.0.1:%d/json\"}}", port);
  snprintf(shell_spec, sizeof shell_spec,
           "{\"timeout\":\"60s\",\"shell\":{\"command\":[\"curl\",\"-sSf\",\"-o\",\"/dev/null\",\"http://127.0.0.1:%d/"
           "json\"]}}",
           port);
  printf("bench_http: %d concurrent GET /json on one runner against a loopback Python http.server, %d rounds each\n", n,
         rounds);
  for (int r = 1; r <= rounds; r++) round_run(&b, "http-plugin", r, http_spec, n);
  for (int r = 1; r <= rounds; r++) round_run(&b, "shell-curl", r, shell_spec, n);

  mu_runner_close(b.runner, on_closed, &b);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  mu_plugin_host_free(b.plugins);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  return system(cmd) == 0 ? 0 : 1;
}
