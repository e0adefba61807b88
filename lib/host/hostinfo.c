/* Host facts and metrics for Hello and Heartbeat messages, read from uname, sysconf,
 * getloadavg, /proc/meminfo, /proc/self/statm and statvfs. Every reader fills a caller's
 * struct and says which source failed; nothing is cached, so there is no shared state. */
#include "lib/host/hostinfo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Reads "Key:   1234 kB" from /proc/meminfo into bytes. MU_ENOENT if the key is absent. */
static int meminfo_get(const char *key, uint64_t *ret_bytes, mu_err *err) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (f == NULL) {
    int rc = -errno;
    return mu_err_set(err, rc, "/proc/meminfo: %s", strerror(-rc));
  }
  char line[256];
  size_t klen = strlen(key);
  int rc = mu_err_set(err, MU_ENOENT, "/proc/meminfo: no %s line", key);
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, klen) != 0 || line[klen] != ':') continue;
    unsigned long long kb;
    if (sscanf(line + klen + 1, "%llu", &kb) != 1) {
      rc = mu_err_set(err, MU_EIO, "/proc/meminfo: cannot parse %s line", key);
      break;
    }
    *ret_bytes = (uint64_t)kb * 1024;
    mu_err_clear(err);
    rc = 0;
    break;
  }
  fclose(f);
  return rc;
}

int mu_host_facts_get(mu_host_facts *ret_facts, mu_err *err) {
  mu_host_facts facts;
  struct utsname u;
  memset(&facts, 0, sizeof facts);
  if (gethostname(facts.hostname, sizeof facts.hostname) != 0 || facts.hostname[0] == '\0')
    snprintf(facts.hostname, sizeof facts.hostname, "localhost");
  facts.hostname[sizeof facts.hostname - 1] = '\0';
  if (uname(&u) != 0) return mu_err_set(err, MU_EIO, "uname: %s", strerror(errno));
  snprintf(facts.os_name, sizeof facts.os_name, "%s", u.sysname);
  snprintf(facts.os_release, sizeof facts.os_release, "%s", u.release);
  snprintf(facts.os, sizeof facts.os, "%s %s", u.sysname, u.release);
  snprintf(facts.arch, sizeof facts.arch, "%s", u.machine);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  facts.cpu_count = cpus > 0 ? (uint32_t)cpus : 1;
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    facts.memory_bytes = (uint64_t)pages * (uint64_t)page_size;
  } else {
    int rc = meminfo_get("MemTotal", &facts.memory_bytes, err);
    if (rc < 0) return rc;
  }
  *ret_facts = facts;
  return 0;
}

int mu_host_disk_usage(const char *path, uint64_t *ret_total, uint64_t *ret_free, mu_err *err) {
  struct statvfs st;
  if (statvfs(path, &st) != 0) {
    int rc = -errno;
    return mu_err_set(err, rc, "%s: statvfs: %s", path, strerror(-rc));
  }
  *ret_total = (uint64_t)st.f_blocks * st.f_frsize;
  *ret_free = (uint64_t)st.f_bavail * st.f_frsize;
  return 0;
}

int mu_host_rss(uint64_t *ret_bytes, mu_err *err) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) {
    int rc = -errno;
    return mu_err_set(err, rc, "/proc/self/statm: %s", strerror(-rc));
  }
  unsigned long long size, resident;
  int n = fscanf(f, "%llu %llu", &size, &resident);
  fclose(f);
  if (n != 2) return mu_err_set(err, MU_EIO, "/proc/self/statm: cannot parse");
  long page_size = sysconf(_SC_PAGESIZE);
  *ret_bytes = (uint64_t)resident * (uint64_t)(page_size > 0 ? page_size : 4096);
  return 0;
}

int mu_host_metrics_get(const char *disk_path, mu_host_metrics *ret_metrics, mu_err *err) {
  mu_host_metrics m;
  double load[3];
  int rc;
  memset(&m, 0, sizeof m);
  if (getloadavg(load, 3) != 3) return mu_err_set(err, MU_EIO, "getloadavg failed");
  m.load1 = load[0];
  m.load5 = load[1];
  m.load15 = load[2];
  rc = meminfo_get("MemAvailable", &m.memory_available_bytes, err);
  if (rc < 0) return rc;
  rc = mu_host_rss(&m.rss_bytes, err);
  if (rc < 0) return rc;
  if (disk_path != NULL) {
    rc = mu_host_disk_usage(disk_path, &m.disk_total_bytes, &m.disk_free_bytes, err);
    if (rc < 0) return rc;
  }
  *ret_metrics = m;
  return 0;
}
