/* Job targets over the agent registry (no daemon): which agents a Target names (all, a label
 * selector, host globs, or "any" one placed later) and which task types the fleet serves.
 * Draining agents are never targets; a target naming only draining agents is an error that
 * says so. Loop thread only. */
#ifndef MU_CP_TARGETS_H
#define MU_CP_TARGETS_H

#include <stddef.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

/* The agent ids t names (borrowed from reg; a NULL entry is an "any" target placed at
 * dispatch). Caller frees the array. MU_EINVAL names the field when nothing matches. */
int mu_targets_resolve(const mu_registry *reg, const Muster__V1__Target *t, char ***ret_ids, size_t *ret_n,
                       mu_err *err);
/* A mu_jobspec_limits.type_known callback (ud: the mu_registry): 1 when a known agent reports
 * a plugin for type. */
int mu_targets_type_known(void *ud, const char *type);
/* MU_EINVAL when a task's type is served by none of the resolved targets ids (n of them; an
 * "any" target is not checked), naming the task, the type and up to 10 of the hosts. */
int mu_targets_check_types(const mu_registry *reg, const Muster__V1__JobSpec *spec, char *const *ids, size_t n,
                           mu_err *err);

/* Plugin version pins (TaskSpec.plugin_version, docs/plugins.md#versions). 1 when agent a
 * reports, for every task of spec that pins one, its type at a version in the range (an agent
 * with no Hello yet fits nothing pinned). */
int mu_targets_agent_fits_pins(const mu_agent *a, const Muster__V1__JobSpec *spec);
/* Drops from ids (n of them, updated) the agents that do not fit spec's pins; for an "any"
 * target (ids[0] NULL) checks that some known agent fits. MU_EINVAL when none does, naming the
 * task, the range and what the agents have ("a1: 1.0.0, a2: 2.0.0, a3: none"). */
int mu_targets_filter_pins(const mu_registry *reg, const Muster__V1__JobSpec *spec, char **ids, size_t *n, mu_err *err);

#endif
