/* The container launcher (see launch.h). Errors in the child go to stderr (the task's) as
 * "muster-container: ..." and end it with exit code 126 (setup) or 127 (no such program). */
#define _GNU_SOURCE
#include "plugins/container/launch.h"

#include "plugins/container/creds.h"
#include "plugins/container/layers_list.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

static int openat2_root(int rootfd, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

static const char *fdpath(int fd, char *buf, size_t cap) {
  snprintf(buf, cap, "/proc/self/fd/%d", fd);
  return buf;
}

/* Creates every directory of path (relative to rootfd) without following symlinks; a symlink
 * or file in the way is replaced by a directory (in the overlay's upper layer). Returns an
 * O_PATH fd of the last one (or of a file there when want_file). */
static int make_target(int rootfd, const char *path, bool want_file) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  int cur = dup(rootfd);
  char *save = NULL;
  char *comp = strtok_r(buf, "/", &save);
  while (comp != NULL) {
    char *next = strtok_r(NULL, "/", &save);
    if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0)
      mu_launch_die(126, "mount target %s: \".\" or \"..\" refused", path);
    bool last = next == NULL;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC | (last && want_file ? 0 : O_DIRECTORY),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, cur, comp, &how, sizeof how);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      if (unlinkat(cur, comp, 0) != 0)
        mu_launch_die(126, "mount target %s: cannot replace %s: %s", path, comp, strerror(errno));
      errno = ENOENT;
    }
    if (fd < 0 && errno == ENOENT) {
      if (last && want_file) {
        int f = openat(cur, comp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f >= 0) close(f);
      } else if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
        mu_launch_die(126, "mount target %s: cannot create %s: %s", path, comp, strerror(errno));
      }
      fd = (int)syscall(SYS_openat2, cur, comp, &how, sizeof how);
    }
    if (fd < 0) mu_launch_die(126, "mount target %s: %s: %s", path, comp, strerror(errno));
    close(cur);
    cur = fd;
    comp = next;
  }
  return cur;
}

static void mount_at(int rootfd, const char *target, const char *src, const char *fstype, unsigned long flags,
                     const char *data) {
  int fd = make_target(rootfd, target, false);
  char p[64];
  if (mount(src, fdpath(fd, p, sizeof p), fstype, flags, data) != 0)
    mu_launch_die(126, "mount %s on %s: %s", fstype ? fstype : src, target, strerror(errno));
  close(fd);
}

/* True when path is one of the colon-separated roots or below one (roots NULL: no check). */
static bool path_allowed(const char *path, const char *roots) {
  if (roots == NULL) return true;
  for (const char *p = roots; *p;) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len > 1 && p[len - 1] == '/') len--;
    if (len > 0 && strncmp(path, p, len) == 0 && (path[len] == '\0' || path[len] == '/' || len == 1)) return true;
    if (e == NULL) break;
    p = e + 1;
  }
  return false;
}

static void setup_dev(int rootfd) {
  mount_at(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k");
  int dev = openat2_root(rootfd, "dev", O_RDONLY | O_DIRECTORY);
  if (dev < 0) mu_launch_die(126, "open /dev: %s", strerror(errno));
  static const struct {
    const char *name;
    unsigned maj, min;
  } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
    if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) != 0)
      mu_launch_die(126, "mknod /dev/%s: %s", nodes[i].name, strerror(errno));
    if (fchmodat(dev, nodes[i].name, 0666, 0) != 0)
      mu_launch_die(126, "chmod /dev/%s: %s", nodes[i].name, strerror(errno));
  }
  struct stat st;
  if (fstatat(dev, "null", &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 ||
      minor(st.st_rdev) != 3)
    mu_launch_die(126, "/dev/null is not the null device");
  mkdirat(dev, "pts", 0755);
  mkdirat(dev, "shm", 01777);
  static const char *const links[][2] = {{"pts/ptmx", "ptmx"},
                                         {"/proc/self/fd", "fd"},
                                         {"/proc/self/fd/0", "stdin"},
                                         {"/proc/self/fd/1", "stdout"},
                                         {"/proc/self/fd/2", "stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++)
    if (symlinkat(links[i][0], dev, links[i][1]) != 0) mu_launch_die(126, "/dev/%s: %s", links[i][1], strerror(errno));
  close(dev);
  mount_at(rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  mount_at(rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
}

/* After pivot_root: masks and read-only parts of /proc. */
static void mask_proc(void) {
  static const char *const masked_files[] = {"/proc/kcore",      "/proc/sysrq-trigger", "/proc/keys",
                                             "/proc/timer_list", "/proc/sched_debug",   "/proc/latency_stats",
                                             "/proc/kallsyms"};
  static const char *const masked_dirs[] = {"/proc/acpi", "/proc/scsi"};
  static const char *const ro[] = {"/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs"};
  for (size_t i = 0; i < sizeof masked_files / sizeof *masked_files; i++)
    if (access(masked_files[i], F_OK) == 0 && mount("/dev/null", masked_files[i], NULL, MS_BIND, NULL) != 0)
      mu_launch_die(126, "mask %s: %s", masked_files[i], strerror(errno));
  for (size_t i = 0; i < sizeof masked_dirs / sizeof *masked_dirs; i++)
    if (access(masked_dirs[i], F_OK) == 0 && mount("tmpfs", masked_dirs[i], "tmpfs", MS_RDONLY, "size=0") != 0)
      mu_launch_die(126, "mask %s: %s", masked_dirs[i], strerror(errno));
  for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
    if (access(ro[i], F_OK) != 0) continue;
    if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) != 0 ||
        mount(NULL, ro[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
      mu_launch_die(126, "read-only %s: %s", ro[i], strerror(errno));
  }
}

/* The task's file secrets into /run/secrets (the container's tmpfs /run): 0400 files owned by
 * the container's user in a 0500 directory; never on a disk. */
static void copy_secrets(int from, const char *skip, uid_t uid, gid_t gid) {
  if (mkdir("/run/secrets", 0500) != 0 || chown("/run/secrets", uid, gid) != 0)
    mu_launch_die(126, "/run/secrets: %s", strerror(errno));
  int to = open("/run/secrets", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  DIR *d = fdopendir(dup(from));
  if (to < 0 || d == NULL) mu_launch_die(126, "/run/secrets: %s", strerror(errno));
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || (skip && strcmp(e->d_name, skip) == 0)) continue;
    int in = openat(from, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
      if (in >= 0) close(in);
      continue;
    }
    int out = openat(to, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
    if (out < 0) mu_launch_die(126, "/run/secrets/%s: %s", e->d_name, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
      if (write(out, buf, (size_t)n) != n) mu_launch_die(126, "/run/secrets/%s: %s", e->d_name, strerror(errno));
    explicit_bzero(buf, sizeof buf);
    if (fchown(out, uid, gid) != 0) mu_launch_die(126, "/run/secrets/%s: %s", e->d_name, strerror(errno));
    close(out);
    close(in);
  }
  closedir(d);
  close(to);
}

static void lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

/* An image stored as per-layer dirs (layers.h): rootfs holds only ".muster-layers"; into buf
 * as overlay's lowerdir (layers_list.h). -1 when rootfs is a merged tree (the copy fallback). */
static int layer_dirs(const char *rootfs, char *buf, size_t cap) {
  char path[4200], list[16384], why[256];
  snprintf(path, sizeof path, "%s/.muster-layers", rootfs);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  ssize_t n = read(fd, list, sizeof list - 1);
  close(fd);
  if (n < 0) mu_launch_die(126, "%s: %s", path, strerror(errno));
  list[n] = '\0';
  const char *cut = strstr(rootfs, "/rootfs/"); /* <store>/rootfs/<hex> */
  char store[4096];
  snprintf(store, sizeof store, "%.*s", cut ? (int)(cut - rootfs) : 0, rootfs);
  if (cut == NULL || mu_layers_lowerdir(store, list, buf, cap, why, sizeof why) != 0)
    mu_launch_die(126, "%s: %s", path, cut == NULL ? "not in a store" : why);
  return 0;
}

__attribute__((noreturn)) static void child_main(const mu_launch_spec *s) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    mu_launch_die(126, "make mounts private: %s", strerror(errno));
  char root[4096], upper[4096], work[4096], opts[12288];
  snprintf(root, sizeof root, "%s/root", s->state_dir);
  snprintf(upper, sizeof upper, "%s/upper", s->state_dir);
  snprintf(work, sizeof work, "%s/work", s->state_dir);
  if (mkdir(s->state_dir, 0700) != 0 && errno != EEXIST)
    mu_launch_die(126, "create %s: %s", s->state_dir, strerror(errno));
  mkdir(root, 0755);
  mkdir(upper, 0755);
  mkdir(work, 0700);
  if (strpbrk(s->rootfs, ",:") || strpbrk(upper, ",:") || strpbrk(work, ",:"))
    mu_launch_die(126, "paths with ',' or ':' cannot be overlay layers");
  char lower[8192];
  if (layer_dirs(s->rootfs, lower, sizeof lower) != 0) snprintf(lower, sizeof lower, "%s", s->rootfs);
  snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  if (mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, opts) != 0)
    mu_launch_die(126, "overlay rootfs: %s", strerror(errno));
  int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) mu_launch_die(126, "open rootfs: %s", strerror(errno));
  mount_at(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  setup_dev(rootfd);
  mount_at(rootfd, "tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_at(rootfd, "run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
  for (size_t i = 0; i < s->n_volumes; i++) {
    const mu_volume *v = &s->volumes[i];
    int src = open(v->source, O_PATH | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (src < 0 || fstat(src, &st) != 0) mu_launch_die(126, "volume %s: %s", v->source, strerror(errno));
    /* What was opened must still be under the allow-list (a path component swapped for a
     * symlink after the plugin's check would point elsewhere). */
    char lp[64], real[4096];
    ssize_t rl = readlink(fdpath(src, lp, sizeof lp), real, sizeof real - 1);
    if (rl <= 0) mu_launch_die(126, "volume %s: %s", v->source, strerror(errno));
    real[rl] = '\0';
    if (!path_allowed(real, s->volume_roots))
      mu_launch_die(126, "volume %s resolves to %s, outside the allowed host paths", v->source, real);
    int tgt = make_target(rootfd, v->target, !S_ISDIR(st.st_mode));
    char sp[64], tp[64];
    if (mount(fdpath(src, sp, sizeof sp), fdpath(tgt, tp, sizeof tp), NULL, MS_BIND | MS_REC, NULL) != 0)
      mu_launch_die(126, "volume %s on %s: %s", v->source, v->target, strerror(errno));
    close(src);
    close(tgt);
  }
  int secrets = s->secrets_dir ? open(s->secrets_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
  if (s->secrets_dir && secrets < 0) mu_launch_die(126, "secrets %s: %s", s->secrets_dir, strerror(errno));
  if (fchdir(rootfd) != 0) mu_launch_die(126, "chdir rootfs: %s", strerror(errno));
  close(rootfd);
  if (syscall(SYS_pivot_root, ".", ".") != 0) mu_launch_die(126, "pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) != 0) mu_launch_die(126, "detach the old root: %s", strerror(errno));
  if (chdir("/") != 0) mu_launch_die(126, "chdir /: %s", strerror(errno));
  mask_proc();
  for (size_t i = 0; i < s->n_volumes; i++) {
    unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (s->volumes[i].read_only ? MS_RDONLY : 0);
    if (mount(NULL, s->volumes[i].target, NULL, fl, NULL) != 0)
      mu_launch_die(126, "volume %s: remount: %s", s->volumes[i].target, strerror(errno));
  }
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (s->read_only_root ? MS_RDONLY : 0), NULL) !=
      0)
    mu_launch_die(126, "remount the root: %s", strerror(errno));
  if (s->hostname && *s->hostname && sethostname(s->hostname, strnlen(s->hostname, 64)) != 0)
    mu_launch_die(126, "sethostname: %s", strerror(errno));
  if (!s->host_network) lo_up();

  uid_t uid;
  gid_t gid;
  mu_creds_resolve_user(s->user, s->allow_root, &uid, &gid);
  if (secrets >= 0) {
    copy_secrets(secrets, s->secrets_skip, uid, gid);
    close(secrets);
  }
  const char *cwd = s->cwd && *s->cwd ? s->cwd : "/";
  if (cwd[0] != '/' || strncmp(cwd, "/proc", 5) == 0 || strstr(cwd, "/..") != NULL)
    mu_launch_die(126, "working dir \"%s\" refused (absolute, no \"..\", not under /proc)", cwd);
  mu_creds_drop(s, uid, gid);
  if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
    for (int fd = 3; fd < 65536; fd++) close(fd);
  if (chdir(cwd) != 0) mu_launch_die(126, "working dir \"%s\": %s", cwd, strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) mu_launch_die(126, "no_new_privs: %s", strerror(errno));
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) mu_launch_die(126, "pdeathsig: %s", strerror(errno));
  mu_seccomp_load_default();
  mu_exec_in_container(s, s->argv);
}

static volatile sig_atomic_t child_pid, stop_signal = SIGTERM;

static void forward(int sig) {
  if (child_pid > 0) kill((pid_t)child_pid, sig == SIGTERM ? stop_signal : sig);
}

int mu_signal_from_name(const char *name) {
  static const struct {
    const char *n;
    int s;
  } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"KILL", SIGKILL}, {"USR1", SIGUSR1},
              {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"WINCH", SIGWINCH}, {"STOP", SIGSTOP}, {"PWR", SIGPWR}};
  if (name == NULL || *name == '\0') return -1;
  if (name[0] >= '0' && name[0] <= '9') {
    int v = atoi(name);
    return v > 0 && v < 65 ? v : -1;
  }
  if (strncasecmp(name, "SIG", 3) == 0) name += 3;
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
    if (strcasecmp(name, sigs[i].n) == 0) return sigs[i].s;
  return -1;
}

typedef struct clone_arg {
  const mu_launch_spec *spec;
  sigset_t mask;
} clone_arg;

__attribute__((noreturn)) static void clone_main(void *p) {
  clone_arg *a = p;
  static const int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof fwd / sizeof *fwd; i++) signal(fwd[i], SIG_DFL);
  sigprocmask(SIG_SETMASK, &a->mask, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  setpgid(0, 0); /* signals reach it through the helper (TERM as the image's StopSignal) */
  const mu_shim *sh = a->spec->shim;
  if (sh != NULL && sh->dir[0] != '\0' && (dup2(sh->child[0], 1) < 0 || dup2(sh->child[1], 2) < 0))
    mu_launch_die(126, "shim pipes: %s", strerror(errno));
  child_main(a->spec);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A health check: a child that joins the container's namespaces, then a grandchild (in its
 * pid namespace) with the container's user, capabilities, no_new_privs and seccomp runs the
 * command. Output (stdout and stderr) goes to *ret_out. Returns the child's pid or -1. */
static pid_t start_check(const mu_launch_spec *s, pid_t init, int *ret_out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t c = fork();
  if (c < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (c == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0) _exit(126);
    int pfd = (int)syscall(SYS_pidfd_open, init, 0);
    int ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP |
             (s->host_network ? 0 : CLONE_NEWNET);
    if (pfd < 0 || setns(pfd, ns) != 0)
      mu_launch_die(126, "health check: cannot join the container: %s", strerror(errno));
    close(pfd);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    pid_t g = fork();
    if (g < 0) mu_launch_die(126, "health check: fork: %s", strerror(errno));
    if (g == 0) {
      uid_t uid;
      gid_t gid;
      mu_creds_resolve_user(s->user, s->allow_root, &uid, &gid);
      mu_creds_drop(s, uid, gid);
      if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
        for (int fd = 3; fd < 65536; fd++) close(fd);
      if (chdir(s->cwd && *s->cwd ? s->cwd : "/") != 0 && chdir("/") != 0) _exit(126);
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(126);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      mu_seccomp_load_default();
      mu_exec_in_container(s, s->health.argv);
    }
    int st = 0;
    while (waitpid(g, &st, 0) < 0 && errno == EINTR) {}
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  *ret_out = p[0];
  return c;
}

/* Waits for the container's pid 1 to exit, killing it when the agent dies or when the health
 * check failed `retries` times in a row. */
static void supervise(mu_launch_spec *s, pid_t pid) {
  int childfd = (int)syscall(SYS_pidfd_open, pid, 0);
  int watch = s->watch_pid > 0 ? (int)syscall(SYS_pidfd_open, s->watch_pid, 0) : -1;
  mu_shim *shim = s->shim != NULL && s->shim->dir[0] != '\0' ? s->shim : NULL;
  if (s->report && s->report_cap) s->report[0] = '\0';
  if (shim != NULL && s->watch_pid > 0 && watch < 0 && errno == ESRCH) {
    dprintf(2, "muster-container: the agent (pid %d) is gone: the container's output goes to %s\n", s->watch_pid,
            shim->dir);
    mu_shim_detach(shim);
  } else if (s->watch_pid > 0 && watch < 0 && errno == ESRCH) {
    dprintf(2, "muster-container: the agent (pid %d) is gone: stopping the container\n", s->watch_pid);
    kill(pid, SIGKILL);
  }
  if (childfd < 0) return; /* the plain waitpid() follows */
  const mu_health_check *h = &s->health;
  bool health = h->argv != NULL && h->argv[0] != NULL;
  int64_t interval = h->interval_ms > 0 ? h->interval_ms : 30000, timeout = h->timeout_ms > 0 ? h->timeout_ms : 30000;
  int retries = h->retries > 0 ? h->retries : 3, failures = 0;
  int64_t next = now_ms() + (h->start_period_ms > 0 ? h->start_period_ms : interval), deadline = 0;
  pid_t check = -1;
  int check_fd = -1, check_out = -1;
  char out[1024];
  size_t out_len = 0;
  bool timed_out = false, ended = false;
  for (;;) {
    struct pollfd fds[6];
    int n = 0, i_child = n++, i_watch = -1, i_check = -1, i_out = -1, i_shim[2] = {-1, -1};
    fds[i_child] = (struct pollfd){.fd = childfd, .events = POLLIN};
    for (int k = 0; shim != NULL && k < 2; k++)
      if (shim->in[k] >= 0) fds[i_shim[k] = n++] = (struct pollfd){.fd = shim->in[k], .events = POLLIN};
    if (watch >= 0) fds[i_watch = n++] = (struct pollfd){.fd = watch, .events = POLLIN};
    if (check_fd >= 0) fds[i_check = n++] = (struct pollfd){.fd = check_fd, .events = POLLIN};
    if (check_out >= 0) fds[i_out = n++] = (struct pollfd){.fd = check_out, .events = POLLIN};
    int wait_ms = -1;
    if (health && !ended) {
      int64_t at = check > 0 ? deadline : next, left = at - now_ms();
      wait_ms = left < 0 ? 0 : (int)(left > 60000 ? 60000 : left);
    }
    int r = poll(fds, (nfds_t)n, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int k = 0; k < 2; k++)
      if (i_shim[k] >= 0 && fds[i_shim[k]].revents != 0) mu_shim_pump(shim, k);
    if (fds[i_child].revents & POLLIN) break;
    if (i_watch >= 0 && (fds[i_watch].revents & POLLIN) && shim != NULL) {
      /* conmon's way: the container outlives the agent; the restarted agent re-adopts it */
      dprintf(2, "muster-container: the agent (pid %d) died: the container runs on, its output goes to %s\n",
              s->watch_pid, shim->dir);
      mu_shim_detach(shim);
      close(watch);
      watch = -1;
      continue;
    }
    if (i_watch >= 0 && (fds[i_watch].revents & POLLIN)) {
      dprintf(2, "muster-container: the agent (pid %d) died: killing the container\n", s->watch_pid);
      kill(pid, SIGKILL);
      break;
    }
    if (i_out >= 0 && (fds[i_out].revents & (POLLIN | POLLHUP))) {
      char buf[4096];
      ssize_t got = read(check_out, buf, sizeof buf);
      if (got <= 0) {
        close(check_out);
        check_out = -1;
      } else {
        size_t keep = (size_t)got < sizeof out - 1 - out_len ? (size_t)got : sizeof out - 1 - out_len;
        memcpy(out + out_len, buf, keep);
        out_len += keep;
      }
    }
    if (check > 0 && !timed_out && now_ms() >= deadline) {
      kill(check, SIGKILL);
      timed_out = true;
    }
    if (i_check >= 0 && (fds[i_check].revents & POLLIN)) {
      /* what the check wrote is in the pipe already (it was non-blocking-drained above or is
       * read now); a background process it left holding the pipe is not waited for */
      for (char buf[4096]; check_out >= 0;) {
        ssize_t got = read(check_out, buf, sizeof buf);
        if (got <= 0) break;
        size_t keep = (size_t)got < sizeof out - 1 - out_len ? (size_t)got : sizeof out - 1 - out_len;
        memcpy(out + out_len, buf, keep);
        out_len += keep;
      }
      if (check_out >= 0) close(check_out);
      check_out = -1;
      int st = 0;
      while (waitpid(check, &st, 0) < 0 && errno == EINTR) {}
      close(check_fd);
      check_fd = -1;
      check = -1;
      bool ok = !timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
      out[out_len] = '\0';
      if (ok) {
        failures = 0;
      } else if (++failures >= retries) {
        while (out_len > 0 && (out[out_len - 1] == '\n' || out[out_len - 1] == ' ')) out[--out_len] = '\0';
        char why[64];
        if (timed_out) snprintf(why, sizeof why, "timed out after %lld ms", (long long)timeout);
        else snprintf(why, sizeof why, "exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        if (s->report && s->report_cap)
          snprintf(s->report, s->report_cap, "unhealthy: the health check failed %d times in a row (last: %s%s%.300s)",
                   failures, why, out_len ? ": " : "", out);
        dprintf(2, "muster-container: %s\n", s->report ? s->report : "unhealthy");
        kill(pid, SIGKILL);
        ended = true;
      }
      next = now_ms() + interval;
    }
    if (health && !ended && check < 0 && now_ms() >= next) {
      out_len = 0;
      timed_out = false;
      check = start_check(s, pid, &check_out);
      if (check > 0) {
        check_fd = (int)syscall(SYS_pidfd_open, check, 0);
        deadline = now_ms() + timeout;
      } else {
        next = now_ms() + interval;
      }
    }
  }
  if (check > 0) {
    kill(check, SIGKILL);
    while (waitpid(check, NULL, 0) < 0 && errno == EINTR) {}
  }
  if (check_fd >= 0) close(check_fd);
  if (check_out >= 0) close(check_out);
  if (watch >= 0) close(watch);
  close(childfd);
}

int mu_launch_run(mu_launch_spec *s) {
  /* clone() rather than unshare() + fork(): the helper itself stays in the agent's
   * namespaces (a process whose pid namespace's init has exited can no longer fork). */
  int flags =
      CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP | (s->host_network ? 0 : CLONE_NEWNET);
  static const int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  sigset_t block;
  clone_arg arg = {.spec = s};
  sigemptyset(&block);
  for (size_t i = 0; i < sizeof fwd / sizeof *fwd; i++) sigaddset(&block, fwd[i]);
  sigprocmask(SIG_BLOCK, &block, &arg.mask);
  /* The raw syscall with no new stack: fork semantics (the child runs on a copy of this
   * stack), which sanitizers and libc's noreturn paths expect. The helper is single-threaded. */
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, 0UL);
  if (pid == 0) clone_main(&arg);
  if (pid < 0) {
    dprintf(2, "muster-container: clone with new namespaces: %s\n", strerror(errno));
    if (s->shim != NULL) mu_shim_close_child(s->shim);
    sigprocmask(SIG_SETMASK, &arg.mask, NULL);
    return -1;
  }
  child_pid = pid;
  if (s->shim != NULL) mu_shim_close_child(s->shim);
  /* Hold the container's mount namespace: tearing down its ~20 mounts takes the kernel tens
   * of ms of RCU grace periods, which would otherwise sit between the container's exit and
   * this wait returning. A short-lived child of ours drops it after we report (it stays in
   * the task's cgroup, which the supervisor empties). */
  char nspath[64];
  snprintf(nspath, sizeof nspath, "/proc/%d/ns/mnt", (int)pid);
  int mntns = open(nspath, O_RDONLY | O_CLOEXEC);
  if (s->stop_signal > 0) stop_signal = s->stop_signal;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  for (size_t i = 0; i < sizeof fwd / sizeof *fwd; i++) sigaction(fwd[i], &sa, NULL);
  sigprocmask(SIG_SETMASK, &arg.mask, NULL);
  int status = 0;
  supervise(s, pid);
  if (s->shim != NULL && s->shim->dir[0] != '\0') mu_shim_drain(s->shim); /* before the exit is reported */
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      status = -1;
      break;
    }
  }
  if (mntns >= 0) {
    pid_t dropper = fork();
    if (dropper == 0) { /* holds nothing else (not the image's GC lock, not the pipes) */
      if (mntns > 0) syscall(SYS_close_range, 0U, (unsigned)mntns - 1, 0);
      syscall(SYS_close_range, (unsigned)mntns + 1, ~0U, 0);
      close(mntns);
      _exit(0);
    }
    close(mntns);
  }
  return status;
}
