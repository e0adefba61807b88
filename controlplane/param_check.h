/* Submit-time checks of third-party task types' parameters against their schema (SDK v2
 * describe(), docs/plugins.md "Schemas"): a `plugin:` task's config_json is checked against the
 * "params" section of its type's schema as the target agents (or, for "any" targets, any agent)
 * describe it in their Hello. A type no agent describes is not checked here (its agents check
 * at start). The built-in types are checked by their own validate() on the agents. */
#ifndef MU_CP_PARAM_CHECK_H
#define MU_CP_PARAM_CHECK_H

#include <stddef.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

/* 0, or MU_EINVAL "task NAME: TYPE.KEY: PROBLEM" for the first task that does not fit. */
int mu_param_check(const mu_registry *reg, const Muster__V1__JobSpec *spec, char *const *ids, size_t n, mu_err *err);

#endif
