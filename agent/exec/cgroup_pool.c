/* Reused limitless leaf groups (cgroup_pool.h): a stack of idle leaves, topped up by
 * mu_cgroup_create and drained by removal past max_idle. */
#include "agent/exec/cgroup_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct mu_cgroup_pool {
  mu_cgroup_root root;
  mu_cgroup **idle;
  uint32_t n_idle, max_idle;
  uint64_t next; /* leaf name counter */
  mu_cgroup_pool_stats st;
};

int mu_cgroup_pool_new(const mu_cgroup_root *root, uint32_t max_idle, mu_cgroup_pool **ret, mu_err *err) {
  if (root == NULL || root->mode != MU_CGROUP_V1) return mu_err_set(err, MU_ENOTSUP, "cgroup pool: only on cgroup v1");
  mu_cgroup_pool *pool = calloc(1, sizeof *pool);
  if (pool != NULL) pool->idle = calloc(max_idle ? max_idle : 1, sizeof *pool->idle);
  if (pool == NULL || pool->idle == NULL) {
    free(pool);
    return mu_err_set(err, MU_ENOMEM, "cgroup pool: out of memory");
  }
  pool->root = *root;
  pool->max_idle = max_idle;
  *ret = pool;
  return 0;
}

int mu_cgroup_pool_take(mu_cgroup_pool *pool, mu_cgroup **ret, mu_err *err) {
  while (pool->n_idle > 0) {
    mu_cgroup *cg = pool->idle[--pool->n_idle];
    if (mu_cgroup_is_empty(cg) && mu_cgroup_reset_counters(cg) == 0) {
      pool->st.reused++;
      *ret = cg;
      return 0;
    }
    /* something joined it behind our back, or the counters would not reset: not reusable */
    (void)mu_cgroup_remove(cg);
    mu_cgroup_free(cg);
  }
  char leaf[64];
  snprintf(leaf, sizeof leaf, "pool-%d-%llu", (int)getpid(), (unsigned long long)++pool->next);
  mu_cgroup_limits none = {0};
  int rc = mu_cgroup_create(&pool->root, leaf, &none, ret, err);
  if (rc == 0) pool->st.made++;
  return rc;
}

int mu_cgroup_pool_give(mu_cgroup_pool *pool, mu_cgroup *cg) {
  if (!mu_cgroup_is_empty(cg)) return MU_EAGAIN;
  if (pool->n_idle < pool->max_idle) {
    pool->idle[pool->n_idle++] = cg;
    return 0;
  }
  if (mu_cgroup_remove(cg) != 0) return MU_EAGAIN;
  mu_cgroup_free(cg);
  return 0;
}

void mu_cgroup_pool_drop(mu_cgroup_pool *pool, mu_cgroup *cg) {
  (void)pool;
  mu_cgroup_free(cg);
}

void mu_cgroup_pool_stats_get(const mu_cgroup_pool *pool, mu_cgroup_pool_stats *ret) {
  *ret = pool->st;
  ret->idle = pool->n_idle;
}

void mu_cgroup_pool_free(mu_cgroup_pool *pool) {
  if (pool == NULL) return;
  for (uint32_t i = 0; i < pool->n_idle; i++) {
    (void)mu_cgroup_remove(pool->idle[i]);
    mu_cgroup_free(pool->idle[i]);
  }
  free(pool->idle);
  free(pool);
}
