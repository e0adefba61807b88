/* Benchmark set-up helpers (setup.h): binary lookup, a free port, stopping children, work-dir
 * removal. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "bench/setup.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/base/log.h"

int mu_bench_find_binary(const char *flag, const char *flag_name, const char *rel, const char *argv0, char *ret_path,
                         mu_err *err) {
  char cand[4][PATH_MAX];
  size_t n = 0;
  if (flag != NULL) {
    snprintf(cand[n++], PATH_MAX, "%s", flag);
  } else {
    const char *rd = getenv("RUNFILES_DIR");
    snprintf(cand[n++], PATH_MAX, "%s", rel);
    if (rd != NULL) snprintf(cand[n++], PATH_MAX, "%s/muster/%s", rd, rel);
    snprintf(cand[n++], PATH_MAX, "%s.runfiles/muster/%s", argv0, rel);
    snprintf(cand[n++], PATH_MAX, "bazel-bin/%s", rel);
  }
  for (size_t i = 0; i < n; i++)
    if (access(cand[i], X_OK) == 0 && realpath(cand[i], ret_path) != NULL) return 0;
  if (flag != NULL) return mu_err_set(err, MU_ENOENT, "--%s '%s': not an executable file", flag_name, flag);
  return mu_err_set(err, MU_ENOENT, "cannot find %s in the runfiles or bazel-bin; pass --%s PATH", rel, flag_name);
}

int mu_bench_free_port(int *ret_port, mu_err *err) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return mu_err_set(err, MU_EIO, "cannot pick a free loopback port: %s", strerror(e));
  }
  close(fd);
  *ret_port = ntohs(sa.sin_port);
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void mu_bench_rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

int mu_bench_run_until(uv_loop_t *loop, const int *flag, const volatile int *interrupted, int64_t timeout_ms) {
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000ull;
  while (flag == NULL || !*flag) {
    if (*interrupted) return MU_ECANCELED;
    if (uv_hrtime() >= end) return flag == NULL ? 0 : MU_ETIMEDOUT;
    uv_run(loop, UV_RUN_ONCE);
  }
  return 0;
}

void mu_bench_stop_child(pid_t pid, const char *name) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return;
    nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
  }
  mu_warn("bench", "%s did not stop within 10s of SIGTERM; killing it", name);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}
