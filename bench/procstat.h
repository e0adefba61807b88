/* bench/procstat: what a benchmark reads about a running process from /proc — resident and
 * proportional memory, private dirty pages, threads, CPU time and open sockets. Linux only.
 * The reads are of small procfs files (memory-backed), cheap enough for a benchmark's loop. */
#ifndef MU_BENCH_PROCSTAT_H
#define MU_BENCH_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/base/err.h"

typedef struct mu_proc_mem {
  uint64_t rss_kib;           /* /proc/PID/status VmRSS */
  uint64_t pss_kib;           /* /proc/PID/smaps_rollup Pss */
  uint64_t private_dirty_kib; /* /proc/PID/smaps_rollup Private_Dirty */
  uint32_t threads;           /* /proc/PID/status Threads */
} mu_proc_mem;

/* Finds "key:" at the start of a line of text (e.g. "VmRSS:") and parses the number after it
 * (the kB figure in status and smaps files). MU_ENOENT when the key is absent, MU_EINVAL when
 * no number follows it. */
int mu_proc_field(const char *text, const char *key, uint64_t *ret_value, mu_err *err);

/* Fills *ret_mem for pid. MU_ENOENT (message names the file) when the process is gone or a
 * field is missing. */
int mu_proc_mem_read(pid_t pid, mu_proc_mem *ret_mem, mu_err *err);

/* User plus system CPU time of pid in ms (/proc/PID/stat utime + stime). */
int mu_proc_cpu_ms(pid_t pid, uint64_t *ret_ms, mu_err *err);

/* Number of socket file descriptors pid holds (/proc/PID/fd links to "socket:[...]"). */
int mu_proc_socket_count(pid_t pid, uint32_t *ret_count, mu_err *err);

#endif
