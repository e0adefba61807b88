/* bench/procstat: reads /proc/PID/{status,smaps_rollup,stat,fd} for the figures benchmarks
 * print. Every function reads its file whole into a bounded stack buffer and parses that, so
 * the parsers can be tested on fixed text. */
#include "bench/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MU_PROC_FILE_MAX 16384 /* status and smaps_rollup are ~1.5 KiB; stat is < 1 KiB */

/* Reads path into buf (NUL-terminated, truncated at size - 1). */
static int read_small(const char *path, char *buf, size_t size, mu_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "cannot open %s: %s", path, strerror(errno));
  size_t used = 0;
  while (used < size - 1) {
    ssize_t n = read(fd, buf + used, size - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return mu_err_set(err, MU_EIO, "cannot read %s: %s", path, strerror(e));
    }
    if (n == 0) break;
    used += (size_t)n;
  }
  close(fd);
  buf[used] = '\0';
  return 0;
}

int mu_proc_field(const char *text, const char *key, uint64_t *ret_value, mu_err *err) {
  size_t klen = strlen(key);
  const char *line = text;
  while (line != NULL && *line != '\0') {
    if (strncmp(line, key, klen) == 0) {
      const char *p = line + klen;
      while (*p == ' ' || *p == '\t') p++;
      if (*p < '0' || *p > '9') return mu_err_set(err, MU_EINVAL, "%s: no number after it", key);
      *ret_value = strtoull(p, NULL, 10);
      return 0;
    }
    line = strchr(line, '\n');
    if (line != NULL) line++;
  }
  return mu_err_set(err, MU_ENOENT, "no '%s' line", key);
}

int mu_proc_mem_read(pid_t pid, mu_proc_mem *ret_mem, mu_err *err) {
  char path[64];
  char buf[MU_PROC_FILE_MAX];
  uint64_t rss = 0, threads = 0, pss = 0, dirty = 0;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if (read_small(path, buf, sizeof buf, err) != 0) return err ? err->code : MU_EIO;
  if (mu_proc_field(buf, "VmRSS:", &rss, err) != 0 || mu_proc_field(buf, "Threads:", &threads, err) != 0)
    return mu_err_prefix(err, "%s", path);
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  if (read_small(path, buf, sizeof buf, err) != 0) return err ? err->code : MU_EIO;
  if (mu_proc_field(buf, "Pss:", &pss, err) != 0 || mu_proc_field(buf, "Private_Dirty:", &dirty, err) != 0)
    return mu_err_prefix(err, "%s", path);
  ret_mem->rss_kib = rss;
  ret_mem->pss_kib = pss;
  ret_mem->private_dirty_kib = dirty;
  ret_mem->threads = (uint32_t)threads;
  return 0;
}

int mu_proc_cpu_ms(pid_t pid, uint64_t *ret_ms, mu_err *err) {
  char path[64];
  char buf[MU_PROC_FILE_MAX];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof buf, err) != 0) return err ? err->code : MU_EIO;
  /* The command name (field 2) may hold spaces and parentheses: count from the last ')'.
   * After it come field 3 (state) ... field 14 (utime) and 15 (stime). */
  const char *p = strrchr(buf, ')');
  unsigned long long utime = 0, stime = 0;
  if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return mu_err_set(err, MU_EINVAL, "%s: cannot parse utime/stime", path);
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  *ret_ms = (uint64_t)((utime + stime) * 1000ULL / (unsigned long long)hz);
  return 0;
}

int mu_proc_socket_count(pid_t pid, uint32_t *ret_count, mu_err *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *dir = opendir(path);
  if (dir == NULL)
    return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "cannot open %s: %s", path, strerror(errno));
  uint32_t n = 0;
  struct dirent *de;
  while ((de = readdir(dir)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char link[64];
    char target[128];
    snprintf(link, sizeof link, "%s/%s", path, de->d_name);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) continue; /* closed meanwhile */
    target[len] = '\0';
    if (strncmp(target, "socket:", 7) == 0) n++;
  }
  closedir(dir);
  *ret_count = n;
  return 0;
}
