/* Bundles on the agent: a task whose spec names a bundle waits until the bundle is in the
 * cache (fetched from the control plane on a miss), verified (digest, then signature against
 * the --trust-key set unless allow_unsigned), checked against rollback (a lower version of a
 * name this agent already ran is refused unless the job pins the bundle by digest and the
 * agent has allow_downgrade) and unpacked into a staging dir; the runner's prepare_dir hook
 * then moves it into the attempt's fresh task dir. A version counts as run here (the rollback
 * floor rises) only once a task started from it. See docs/bundles.md. Loop thread only. */
#ifndef MU_AGENT_BUNDLES_H
#define MU_AGENT_BUNDLES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

typedef struct mu_agent_daemon mu_agent_daemon;
typedef struct mu_agent_bundles mu_agent_bundles;

/* What the bundle wait hands back to the task path (tasks.c fills it in), so news goes up by
 * callback and this file never calls tasks.c. Both run on the loop thread. */
typedef struct mu_agent_bundles_hooks {
  /* assign's bundle is verified, unpacked and staged: run it now. 0, or the runner's refusal
   * (which the task path has already reported FAILED). */
  int (*ready)(void *arg, const Muster__V1__Assign *assign);
  /* assign cannot run (its bundle was refused or could not be fetched, the agent stops):
   * report the attempt FAILED with message. */
  void (*refused)(void *arg, const Muster__V1__Assign *assign, const char *message);
  void *arg;
} mu_agent_bundles_hooks;

/* Sets up a->bundles: the cache under <spool>/bundles/cache, the trust set from
 * cfg.trust_keys, the rollback record <spool>/bundles/ran, an empty staging dir; hooks (both
 * required) are copied. */
int mu_agent_bundles_start(mu_agent_daemon *a, const mu_agent_bundles_hooks *hooks, mu_err *err);
/* Cancels waiting tasks and frees a->bundles once no background work is left. */
void mu_agent_bundles_stop(mu_agent_daemon *a);
/* Returns 1 when assign needs a bundle: it is then handled here (run, or reported FAILED
 * naming the rule that refused the bundle); 0 when the caller should run it now. */
int mu_agent_bundles_on_assign(mu_agent_daemon *a, const Muster__V1__Assign *assign);
void mu_agent_bundles_on_chunk(mu_agent_daemon *a, const Muster__V1__BundleChunk *chunk);
/* After a (re)connect: asks again for bundles still being fetched. */
void mu_agent_bundles_on_welcome(mu_agent_daemon *a);
/* mu_runner_config.prepare_dir (arg is the agent): moves the attempt's unpacked bundle, if it
 * has one, into task_dir. */
int mu_agent_bundles_prepare_dir(void *arg, const char *task_id, uint32_t attempt, const char *task_dir, mu_err *err);
/* mu_runner_config.started (arg is the agent): the attempt started, so its bundle's version
 * is now run here; the rollback record is raised (and saved on the thread pool). */
void mu_agent_bundles_started(void *arg, const char *task_id, uint32_t attempt);
/* The attempt ended: forgets its bundle if it never started (its version never ran). */
void mu_agent_bundles_attempt_ended(mu_agent_daemon *a, const char *task_id, uint32_t attempt);

/* Digests of the bundles in the cache, for Hello: up to max borrowed strings (valid until the
 * cache changes) into ret; returns how many. */
size_t mu_agent_bundles_cached(const mu_agent_daemon *a, const char **ret, size_t max);
/* The bundle cache's counters (hits, misses, ...) into *ret; zeros when there is no cache. */
struct mu_bundle_cache_stats;
void mu_agent_bundles_stats(const mu_agent_daemon *a, struct mu_bundle_cache_stats *ret);

#endif
