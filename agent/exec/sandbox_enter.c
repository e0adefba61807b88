/* muster-exec: entering a task sandbox (sandbox_enter.h). */
#define _GNU_SOURCE
#include "agent/exec/sandbox_enter.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t cap, const char *fmt, ...) {
  int e = errno;
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(msg, cap, "sandbox: %s: %s", what, strerror(e));
  return -1;
}

static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
  return rc;
}

static int set_attr(const char *path, unsigned flags, uint64_t set, uint64_t clr) {
  struct mount_attr a = {.attr_set = set, .attr_clr = clr};
  return mount_setattr(AT_FDCWD, path, flags, &a, sizeof a);
}

/* mkdir -p of path's directories (and path itself: a directory, or an empty file when
 * is_file), 0755 root's; only ever inside a tmpfs this sandbox mounted. */
static int make_path(const char *path, bool is_file) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return errno = ENAMETOOLONG, -1;
  for (char *c = p + 1; *c; c++) {
    if (*c != '/') continue;
    *c = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
    *c = '/';
  }
  if (!is_file) return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
  int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static bool same_inode(const char *path, int fd) {
  struct stat a, b;
  return stat(path, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int mu_sandbox_enter(const mu_sb_opts *o, char *msg, size_t cap) {
  int rw_fd[MU_SB_MAX];
  bool hidden_dir[MU_SB_MAX] = {false};
  size_t opened = 0;
  int rc = -1;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL) return fail(msg, cap, "getcwd");
  if (unshare(CLONE_NEWNS | (o->net_none ? CLONE_NEWNET : 0) | (o->pid_ns ? CLONE_NEWPID : 0)) != 0)
    return fail(msg, cap, "unshare (mount%s%s namespace)", o->net_none ? ", network" : "", o->pid_ns ? ", pid" : "");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return fail(msg, cap, "making mounts private");
  if (o->net_none && lo_up() != 0) return fail(msg, cap, "bringing up lo");
  for (; opened < o->n_rw; opened++) {
    rw_fd[opened] = open(o->rw[opened], O_PATH | O_CLOEXEC);
    if (rw_fd[opened] < 0) {
      fail(msg, cap, "writable path %s", o->rw[opened]);
      goto done;
    }
  }
  if (o->ro_root) {
    if (set_attr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) != 0) {
      fail(msg, cap, "making / read-only");
      goto done;
    }
    /* /proc's own files (oom_score_adj, comm) stay as writable as they were */
    set_attr("/proc", 0, 0, MOUNT_ATTR_RDONLY);
    const char *tmps[] = {"/tmp", "/dev/shm"};
    for (size_t i = 0; i < 2; i++) {
      struct stat st;
      if (stat(tmps[i], &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      if (mount("tmpfs", tmps[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
        fail(msg, cap, "tmpfs on %s", tmps[i]);
        goto done;
      }
    }
  }
  for (size_t i = 0; i < o->n_hide; i++) {
    struct stat st;
    if (stat(o->hide[i], &st) != 0) continue; /* nothing there to hide */
    hidden_dir[i] = S_ISDIR(st.st_mode);
    int r = hidden_dir[i] ? mount("tmpfs", o->hide[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                  "mode=0755,size=64k,nr_inodes=4096")
                          : mount("/dev/null", o->hide[i], NULL, MS_BIND, NULL);
    if (r != 0) {
      fail(msg, cap, "hiding %s", o->hide[i]);
      goto done;
    }
  }
  for (size_t i = 0; i < o->n_rw; i++) {
    struct stat st;
    if (fstat(rw_fd[i], &st) != 0) {
      fail(msg, cap, "writable path %s", o->rw[i]);
      goto done;
    }
    if (!same_inode(o->rw[i], rw_fd[i]) && make_path(o->rw[i], !S_ISDIR(st.st_mode)) != 0) {
      fail(msg, cap, "writable path %s (under a hidden one)", o->rw[i]);
      goto done;
    }
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", rw_fd[i]);
    if (mount(src, o->rw[i], NULL, MS_BIND | MS_REC, NULL) != 0 || set_attr(o->rw[i], 0, 0, MOUNT_ATTR_RDONLY) != 0) {
      fail(msg, cap, "binding writable path %s", o->rw[i]);
      goto done;
    }
  }
  for (size_t i = 0; i < o->n_hide; i++) {
    if (hidden_dir[i] && set_attr(o->hide[i], 0, MOUNT_ATTR_RDONLY, 0) != 0 && errno != EINVAL) {
      fail(msg, cap, "making hidden %s read-only", o->hide[i]);
      goto done;
    }
  }
  if (chdir(cwd) != 0) {
    fail(msg, cap, "entering %s", cwd);
    goto done;
  }
  rc = 0;
done:
  for (size_t i = 0; i < opened; i++) close(rw_fd[i]);
  return rc;
}

static void die126(const char *what) {
  dprintf(2, "muster-exec: sandbox: %s: %s\n", what, strerror(errno));
  _exit(126);
}

void mu_sandbox_pid_init(int *ret_status_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) die126("pipe");
  /* the group's TERM/INT/... are for the program (it is in the same process group): this
   * process ignores them, as muster-exec itself does */
  static const int ignored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
  sigset_t block, old;
  sigemptyset(&block);
  for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) sigaddset(&block, ignored[i]);
  sigprocmask(SIG_BLOCK, &block, &old);
  pid_t pid = fork();
  if (pid < 0) die126("fork (pid namespace)");
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[0]);
    /* pid 1 of the new namespace: a /proc of its own, over the host's */
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die126("mounting /proc");
    *ret_status_fd = p[1];
    return;
  }
  for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) signal(ignored[i], SIG_IGN);
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(p[1]);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && devnull >= 0; fd++) dup2(devnull, fd);
  if (devnull > 2) close(devnull);
  int keep = p[0];
  if (keep > 3) close_range(3, (unsigned)keep - 1, 0);
  close_range((unsigned)keep + 1, ~0U, 0);
  int st = 0, prog = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) _exit(126);
  ssize_t n;
  do n = read(keep, &prog, sizeof prog);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof prog) prog = WIFEXITED(st) ? st : 126 << 8; /* it died before saying */
  mu_exit_as(prog);
}

void mu_exit_as(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
}

void mu_sandbox_pid_status(int fd, int status) {
  if (fd < 0) return;
  ssize_t n;
  do n = write(fd, &status, sizeof status);
  while (n < 0 && errno == EINTR);
  close(fd);
}
