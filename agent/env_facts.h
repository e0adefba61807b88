/* What the agent reports about its environment beyond main.c's start-up facts, for
 * `muster doctor` (Hello.env): run-as users that do not resolve, the python venv cache's
 * health, the container runtime's prerequisites. Facts only; cli/doctor.c judges them. */
#ifndef MU_AGENT_ENV_FACTS_H
#define MU_AGENT_ENV_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/exec/plugin_host.h"

#define MU_ENV_FACTS_MAX 4          /* items per list; more are not reported */
#define MU_ENV_CACHE_WALK_MAX 20000 /* entries of the venv cache summed; past it, a floor */

typedef struct mu_env_facts {
  char run_as[MU_ENV_FACTS_MAX][160];
  char *run_as_ptrs[MU_ENV_FACTS_MAX];
  size_t n_run_as;
  char run_as_missing[MU_ENV_FACTS_MAX][400];
  char *run_as_missing_ptrs[MU_ENV_FACTS_MAX];
  size_t n_run_as_missing;
  char python_cache_dir[1024]; /* "" = no python plugin */
  bool python_cache_writable;
  uint64_t python_cache_bytes;
  bool container_plugin;
  char container_missing[MU_ENV_FACTS_MAX][400];
  char *container_missing_ptrs[MU_ENV_FACTS_MAX];
  size_t n_container_missing;
} mu_env_facts;

/* Fills f: run_as ("" = none configured) resolved on host (named in messages), the plugins'
 * python cache and container prerequisites. Bounded work: a few lookups and a walk of at
 * most MU_ENV_CACHE_WALK_MAX cache entries. */
void mu_env_facts_gather(mu_env_facts *f, const char *run_as, const char *host, const mu_plugin_host *plugins);

#endif
