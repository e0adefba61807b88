/* cli_startup: how long the commands people type most take, process start to exit:
 * `muster --version` (no network) and `muster agents` against a local musterd (--no-etcd,
 * with 0 agents), over plaintext and over mTLS (a `muster pki` CA made in a temp dir). Each is
 * run N times after 3 warm-up runs; prints min / median / p90 / max wall time in ms.
 *   cli_startup MUSTER MUSTERD [N]       (bazel run -c opt //bench:cli_startup passes both) */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv with stdout and stderr to /dev/null; returns its exit code, or -1. */
static int run_quiet(char *const argv[]) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 01, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 01, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void measure(const char *label, char *const argv[], int n) {
  double *t = calloc((size_t)n, sizeof *t);
  for (int i = 0; i < 3; i++) run_quiet(argv);
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    int rc = run_quiet(argv);
    t[i] = now_ms() - t0;
    if (rc != 0) {
      printf("%-34s exit %d: not measured\n", label, rc);
      free(t);
      return;
    }
  }
  qsort(t, (size_t)n, sizeof *t, cmp);
  printf("%-34s n=%d  min %.1f  median %.1f  p90 %.1f  max %.1f ms\n", label, n, t[0], t[n / 2], t[(n * 9) / 10],
         t[n - 1]);
  free(t);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cli_startup MUSTER MUSTERD [N]\n");
    return 2;
  }
  char *muster = realpath(argv[1], NULL), *musterd = realpath(argv[2], NULL);
  int n = argc > 3 ? atoi(argv[3]) : 50;
  if (muster == NULL || musterd == NULL || n < 1) return 2;
  char dir[] = "/tmp/cli_startup.XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  setenv("MUSTER_CONFIG", "/nonexistent", 1);
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "set -e; cd %s; M=%s; $M pki init --out ca >/dev/null; "
           "$M pki issue --ca ca --kind server --name localhost --san 127.0.0.1 --out srv >/dev/null; "
           "$M pki issue --ca ca --kind admin --name bench --role admin --out adm >/dev/null",
           dir, muster);
  if (system(cmd) != 0) return 1;
  /* two musterd: one plaintext, one mTLS, on ports picked from the pid */
  int p1 = 20000 + getpid() % 20000, p2 = p1 + 1;
  char a1[64], a2[64], l1[64], l2[64], ca[600], crt[600], key[600], acrt[600], akey[600];
  snprintf(a1, sizeof a1, "127.0.0.1:%d", p1);
  snprintf(a2, sizeof a2, "127.0.0.1:%d", p2);
  snprintf(l1, sizeof l1, "%s", a1);
  snprintf(l2, sizeof l2, "%s", a2);
  snprintf(ca, sizeof ca, "%s/ca/ca.crt", dir);
  snprintf(crt, sizeof crt, "%s/srv.crt", dir);
  snprintf(key, sizeof key, "%s/srv.key", dir);
  snprintf(acrt, sizeof acrt, "%s/adm.crt", dir);
  snprintf(akey, sizeof akey, "%s/adm.key", dir);
  char *d1[] = {musterd, "--no-etcd", "--insecure", "--listen", l1, "--log-level", "error", NULL};
  char *d2[] = {musterd,     "--no-etcd", "--listen",    l2,      "--tls-ca", ca, "--tls-cert", crt,
                "--tls-key", key,         "--log-level", "error", NULL};
  pid_t s1, s2;
  if (posix_spawn(&s1, musterd, NULL, NULL, d1, environ) != 0 ||
      posix_spawn(&s2, musterd, NULL, NULL, d2, environ) != 0)
    return 1;
  char *probe1[] = {muster, "--addr", a1, "agents", NULL};
  char *probe2[] = {muster, "--addr", a2, "--ca", ca, "--cert", acrt, "--key", akey, "agents", NULL};
  for (int i = 0; i < 100 && (run_quiet(probe1) != 0 || run_quiet(probe2) != 0); i++) usleep(100000);
  char *version[] = {muster, "--version", NULL};
  char *help[] = {muster, "--help", NULL};
  measure("muster --version", version, n);
  measure("muster --help", help, n);
  measure("muster agents (plaintext)", probe1, n);
  measure("muster agents (mTLS)", probe2, n);
  kill(s1, SIGTERM);
  kill(s2, SIGTERM);
  waitpid(s1, NULL, 0);
  waitpid(s2, NULL, 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}
