/* Per-task control groups: detection of a writable hierarchy (v2 when /sys/fs/cgroup is the
 * unified mount with the controllers we need, else v1 per controller), one leaf group per
 * supervised process with memory / pids / cpu limits, its stats, kill-all and removal.
 *
 * Groups are created under the agent's own group ("<own>/muster/<leaf>"), so a limit put on
 * the agent (e.g. by systemd or a container) still bounds its tasks. All calls are small
 * synchronous writes to cgroupfs (an in-kernel filesystem that never waits on a disk). */
#ifndef MU_CGROUP_H
#define MU_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/base/err.h"

typedef enum { MU_CGROUP_NONE = 0, MU_CGROUP_V1 = 1, MU_CGROUP_V2 = 2 } mu_cgroup_mode;

enum { MU_CG_MEMORY = 0, MU_CG_PIDS, MU_CG_CPU, MU_CG_CPUACCT, MU_CG_COUNT };

/* Where task groups go. Plain data; the caller owns it (usually once per runner). */
typedef struct mu_cgroup_root {
  mu_cgroup_mode mode;
  char v2_parent[PATH_MAX];              /* v2: ".../<own>/muster" */
  char v1_parent[MU_CG_COUNT][PATH_MAX]; /* v1: per controller, "" when not writable */
} mu_cgroup_root;

typedef struct mu_cgroup_limits {
  uint64_t memory_bytes; /* 0 = no limit */
  uint32_t pids;         /* 0 = no limit */
  double cpu_cores;      /* 0 = no limit */
} mu_cgroup_limits;

typedef struct mu_cgroup_stats {
  int64_t user_us, sys_us;               /* -1 when unknown */
  int64_t memory_peak_bytes;             /* -1 when unknown */
  int64_t oom_kills;                     /* -1 when unknown */
  int64_t io_read_bytes, io_write_bytes; /* v2 io.stat rbytes/wbytes; -1 when unknown (v1) */
} mu_cgroup_stats;

typedef struct mu_cgroup mu_cgroup;

/* Detects a writable hierarchy under fs_root (normally "/sys/fs/cgroup") and creates the
 * "<own>/<name>" parents. Sets ret->mode to MU_CGROUP_NONE (and returns 0) when nothing is
 * writable: callers then fall back to rlimits. */
int mu_cgroup_root_detect(const char *fs_root, const char *name, mu_cgroup_root *ret);

/* True when the root can enforce the limit kind (MU_CG_MEMORY/PIDS/CPU). */
bool mu_cgroup_root_has(const mu_cgroup_root *root, int controller);

/* Creates the leaf group `leaf` ([A-Za-z0-9._-]) with the limits. The caller owns *ret and
 * frees it with mu_cgroup_free (after mu_cgroup_remove). Returns MU_EINVAL for a bad leaf,
 * MU_EIO (message names the file) when a write fails. */
int mu_cgroup_create(const mu_cgroup_root *root, const char *leaf, const mu_cgroup_limits *limits, mu_cgroup **ret,
                     mu_err *err);

/* The cgroup.procs files a process writes its pid to, to join the group (one per v1
 * controller, one for v2). Pointers borrowed from cg. Returns the count (<= max). */
int mu_cgroup_procs_files(const mu_cgroup *cg, const char **ret_paths, int max);

/* SIGKILLs every process in the group; returns how many were signalled. */
int mu_cgroup_kill_all(mu_cgroup *cg);

int mu_cgroup_stats_read(const mu_cgroup *cg, mu_cgroup_stats *ret);

/* Removes the leaf directories. MU_EAGAIN while processes are still in it. */
int mu_cgroup_remove(mu_cgroup *cg);

void mu_cgroup_free(mu_cgroup *cg);

/* True when no process is in the group (every cgroup.procs file reads empty). */
bool mu_cgroup_is_empty(const mu_cgroup *cg);

/* Resets the peak memory and CPU counters of an empty group, for reuse (cgroup_pool.h).
 * MU_ENOTSUP on v2 (memory.peak cannot be reset there on most kernels), MU_EIO when a write
 * fails. */
int mu_cgroup_reset_counters(mu_cgroup *cg);
/* At start: SIGKILLs every process left in the groups under root's parents (the leaves of a
 * previous run of the same agent that died without removing them, and any group below those),
 * then removes the groups, deepest first, retrying for up to ~1 s while the killed processes
 * exit. *ret_groups / *ret_procs (either may be NULL): groups removed and processes killed.
 * Returns MU_EAGAIN when some group could not be removed (still populated). */
int mu_cgroup_sweep(const mu_cgroup_root *root, int *ret_groups, int *ret_procs);

/* The same, leaving alone every group (and what is below it) that lists one of keep's n_keep
 * pids in its cgroup.procs: the groups of tasks a restarted agent re-adopts (adopt.h). */
int mu_cgroup_sweep_except(const mu_cgroup_root *root, const pid_t *keep, size_t n_keep, int *ret_groups,
                           int *ret_procs);

/* The leaf group under root that holds process pid, as an mu_cgroup (each v1 controller's leaf
 * that exists): for killing, reading and removing the group of a re-adopted task. The caller
 * owns *ret (mu_cgroup_free). MU_ENOENT when pid is in none of root's groups. */
int mu_cgroup_find(const mu_cgroup_root *root, pid_t pid, mu_cgroup **ret, mu_err *err);

#endif
