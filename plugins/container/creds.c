/* Credentials, the default seccomp filter and exec, for the container and its health checks
 * (see creds.h). Errors end the calling (child) process through mu_launch_die. */
#define _GNU_SOURCE
#include "plugins/container/creds.h"

#include "lib/seccomp/default_filter.h"

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

static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};
#define N_CAPS ((int)(sizeof cap_names / sizeof *cap_names))

int mu_cap_from_name(const char *name) {
  if (strncasecmp(name, "CAP_", 4) == 0) name += 4;
  for (int i = 0; i < N_CAPS; i++)
    if (strcasecmp(name, cap_names[i]) == 0) return i;
  return -1;
}

__attribute__((noreturn, format(printf, 2, 3))) void mu_launch_die(int code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(2, "muster-container: %s\n", msg);
  _exit(code);
}

static bool all_digits(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* Looks name up in the container's /etc/passwd (field 0 -> uid, gid) or /etc/group. */
static bool lookup(const char *file, const char *name, long *id, long *gid) {
  FILE *f = fopen(file, "re");
  if (f == NULL) return false;
  char line[1024];
  bool found = false;
  int lines = 0;
  while (!found && lines++ < 100000 && fgets(line, sizeof line, f) != NULL) {
    char *save = NULL, *fields[4] = {0};
    int n = 0;
    for (char *p = strtok_r(line, ":\n", &save); p && n < 4; p = strtok_r(NULL, ":\n", &save)) fields[n++] = p;
    if (n >= 3 && strcmp(fields[0], name) == 0 && all_digits(fields[2])) {
      *id = strtol(fields[2], NULL, 10);
      if (gid && n >= 4 && all_digits(fields[3])) *gid = strtol(fields[3], NULL, 10);
      found = true;
    }
  }
  fclose(f);
  return found;
}

void mu_creds_resolve_user(const char *spec, bool allow_root, uid_t *uid, gid_t *gid) {
  long u = 65534, g = -1;
  if (spec != NULL && *spec != '\0') {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    if (all_digits(buf)) u = strtol(buf, NULL, 10);
    else if (!lookup("/etc/passwd", buf, &u, &g))
      mu_launch_die(126, "user \"%s\" is not in the image's /etc/passwd", buf);
    if (colon) {
      const char *gs = colon + 1;
      if (all_digits(gs)) g = strtol(gs, NULL, 10);
      else if (!lookup("/etc/group", gs, &g, NULL))
        mu_launch_die(126, "group \"%s\" is not in the image's /etc/group", gs);
    }
  }
  if (g < 0) {
    /* the user's primary group from the image, else the uid's number */
    g = u;
    FILE *f = fopen("/etc/passwd", "re");
    if (f != NULL) {
      char line[1024];
      while (fgets(line, sizeof line, f) != NULL) {
        char *save = NULL, *fields[4] = {0};
        int n = 0;
        for (char *p = strtok_r(line, ":\n", &save); p && n < 4; p = strtok_r(NULL, ":\n", &save)) fields[n++] = p;
        if (n >= 4 && all_digits(fields[2]) && strtol(fields[2], NULL, 10) == u && all_digits(fields[3])) {
          g = strtol(fields[3], NULL, 10);
          break;
        }
      }
      fclose(f);
    }
  }
  if (u < 0 || u > 0x7fffffff || g < 0 || g > 0x7fffffff) mu_launch_die(126, "user \"%s\": id out of range", spec);
  if ((u == 0 || g == 0) && !allow_root)
    mu_launch_die(126, "user \"%s\" is root, which this agent does not allow (container.allow_root)", spec ? spec : "");
  *uid = (uid_t)u;
  *gid = (gid_t)g;
}

void mu_creds_drop(const mu_launch_spec *s, uid_t uid, gid_t gid) {
  uint64_t keep = 0;
  for (const char *const *c = s->cap_add; c && *c; c++) {
    int n = mu_cap_from_name(*c);
    if (n < 0) mu_launch_die(126, "unknown capability %s", *c);
    keep |= 1ull << n;
  }
  for (int c = 0; c <= 63; c++) {
    if (keep & (1ull << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      mu_launch_die(126, "drop capability %d: %s", c, strerror(errno));
  }
  if (setgroups(0, NULL) != 0) mu_launch_die(126, "setgroups: %s", strerror(errno));
  if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) mu_launch_die(126, "keepcaps: %s", strerror(errno));
  if (setresgid(gid, gid, gid) != 0) mu_launch_die(126, "setresgid %u: %s", (unsigned)gid, strerror(errno));
  if (setresuid(uid, uid, uid) != 0) mu_launch_die(126, "setresuid %u: %s", (unsigned)uid, strerror(errno));
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)keep;
  data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(keep >> 32);
  if (syscall(SYS_capset, &hdr, data) != 0) mu_launch_die(126, "capset: %s", strerror(errno));
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int c = 0; c < 64; c++)
    if ((keep & (1ull << c)) && uid != 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
      mu_launch_die(126, "ambient capability %s: %s", cap_names[c], strerror(errno));
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) mu_launch_die(126, "keepcaps: %s", strerror(errno));
}

/* The default profile: everything a normal program needs, EPERM for what Docker's default
 * profile refuses without capabilities (mounts, namespaces, module and kexec loading, BPF,
 * perf, ptrace, keyrings, clock setting, reboot, ...). Namespaces through clone() flags too;
 * clone3 answers ENOSYS so libc falls back to clone, whose flags can be checked. */
void mu_seccomp_load_default(void) {
  char msg[256];
  if (mu_seccomp_default_load(msg, sizeof msg) != 0) mu_launch_die(126, "%s", msg);
}

static const char *env_get(const char *const *env, const char *key) {
  size_t n = strlen(key);
  for (const char *const *e = env; e && *e; e++)
    if (strncmp(*e, key, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

void mu_exec_in_container(const mu_launch_spec *s, const char *const *args) {
  const char *prog = args[0];
  char *const *argv = (char *const *)args;
  char *const *envp = (char *const *)s->env;
  if (strchr(prog, '/') != NULL) {
    execve(prog, argv, envp);
    mu_launch_die(errno == ENOENT ? 127 : 126, "cannot run \"%s\": %s", prog, strerror(errno));
  }
  const char *path = env_get(s->env, "PATH");
  if (path == NULL) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int last = ENOENT;
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s", path);
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", d, prog);
    execve(full, argv, envp);
    if (errno != ENOENT) last = errno;
  }
  mu_launch_die(last == ENOENT ? 127 : 126, "cannot run \"%s\": %s (PATH=%s)", prog, strerror(last), path);
}
