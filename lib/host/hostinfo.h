/* What an agent tells the control plane about its host: static facts (name, OS, arch, CPUs,
 * memory) read once at start, and metrics (load, free memory, disk, own RSS) read for every
 * heartbeat. Linux only: reads /proc, uname, sysconf, statvfs. */
#ifndef MU_HOSTINFO_H
#define MU_HOSTINFO_H

#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_host_facts {
  char hostname[256];
  char os[160];          /* "Linux 6.1.0-18-amd64": uname sysname + " " + release */
  char os_name[65];      /* uname sysname, "Linux" */
  char os_release[65];   /* uname release */
  char arch[65];         /* uname machine, "x86_64" */
  uint32_t cpu_count;    /* online CPUs, >= 1 */
  uint64_t memory_bytes; /* total RAM */
} mu_host_facts;

typedef struct mu_host_metrics {
  double load1, load5, load15;     /* load averages */
  uint64_t memory_available_bytes; /* /proc/meminfo MemAvailable */
  uint64_t disk_total_bytes;       /* of the path given, 0 when none */
  uint64_t disk_free_bytes;        /* available to unprivileged users */
  uint64_t rss_bytes;              /* this process's resident set */
} mu_host_metrics;

/* Fills *ret_facts. MU_EIO (message naming what could not be read) when uname or the memory
 * size cannot be read; the hostname falls back to "localhost". */
int mu_host_facts_get(mu_host_facts *ret_facts, mu_err *err);

/* Fills *ret_metrics; disk figures are for disk_path (e.g. the spool dir), skipped when it is
 * NULL. Cheap (a few small /proc reads) but statvfs on a network filesystem can stall: call it
 * off the event loop (uv_queue_work) when disk_path may be remote. MU_EIO/MU_ENOENT with a
 * message naming the file or path that failed. */
int mu_host_metrics_get(const char *disk_path, mu_host_metrics *ret_metrics, mu_err *err);

/* Total and available bytes of the filesystem holding path (statvfs). */
int mu_host_disk_usage(const char *path, uint64_t *ret_total, uint64_t *ret_free, mu_err *err);

/* This process's resident set size in bytes (/proc/self/statm). */
int mu_host_rss(uint64_t *ret_bytes, mu_err *err);

#endif
