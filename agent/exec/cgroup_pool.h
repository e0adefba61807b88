/* Reused leaf groups for processes that set no limit. Making and removing a leaf is a mkdir and
 * an rmdir per controller on every task (on cgroup v1, memory and cpuacct: the kernel builds
 * and tears down every control file each time), the largest kernel cost of a trivial task
 * after the exec itself. A pooled leaf has no limits and is handed out again once it is empty,
 * with its peak-memory and CPU counters reset, so a process still gets its own group: kill-all,
 * peak memory and CPU accounting work as with a fresh one. Processes with a limit get fresh
 * leaves (mu_cgroup_create). cgroup v1 only: v2's memory.peak cannot be reset on most kernels
 * (v2 needs one mkdir per task anyway, not one per controller).
 *
 * Leaves are named "pool-<agent pid>-<n>" under the root; at most max_idle wait idle, the rest
 * are removed when given back. All calls on one thread. */
#ifndef MU_CGROUP_POOL_H
#define MU_CGROUP_POOL_H

#include <stdint.h>

#include "agent/exec/cgroup.h"
#include "lib/base/err.h"

typedef struct mu_cgroup_pool mu_cgroup_pool;

typedef struct mu_cgroup_pool_stats {
  uint64_t made;   /* leaves created */
  uint64_t reused; /* handed out again */
  uint64_t idle;   /* waiting now */
} mu_cgroup_pool_stats;

/* root is copied. MU_ENOTSUP unless root is cgroup v1; MU_ENOMEM. *ret is the caller's, freed
 * with mu_cgroup_pool_free. */
int mu_cgroup_pool_new(const mu_cgroup_root *root, uint32_t max_idle, mu_cgroup_pool **ret, mu_err *err);

/* An empty leaf without limits, counters at zero. *ret belongs to the caller until given back
 * (mu_cgroup_pool_give) or dropped. MU_EIO when a leaf cannot be made. */
int mu_cgroup_pool_take(mu_cgroup_pool *pool, mu_cgroup **ret, mu_err *err);

/* Takes cg back once it is empty: 0 (cg is the pool's again, or removed) or MU_EAGAIN while
 * processes remain in it (cg stays the caller's; kill them and try again). */
int mu_cgroup_pool_give(mu_cgroup_pool *pool, mu_cgroup *cg);

/* Gives up on cg (processes would not leave it): freed, its directories left behind. */
void mu_cgroup_pool_drop(mu_cgroup_pool *pool, mu_cgroup *cg);

void mu_cgroup_pool_stats_get(const mu_cgroup_pool *pool, mu_cgroup_pool_stats *ret);

/* Removes the idle leaves and frees the pool (leaves handed out must be given back first). */
void mu_cgroup_pool_free(mu_cgroup_pool *pool);

#endif
