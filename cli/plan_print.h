/* Prints the answer to a dry run (`muster run --dry-run`, `muster submit --plan`). */
#ifndef MU_CLI_PLAN_PRINT_H
#define MU_CLI_PLAN_PRINT_H

#include <stdio.h>

#include "muster/v1/admin.pb-c.h"

/* Hosts listed per batch (or in the order line) before "... and N more". */
#define MU_PLAN_HOSTS_SHOWN 20

/* Writes plan as text to out: the job, its tasks, the rollout (hosts at a time, error budget,
 * batches with their hosts in order) and the targets disconnected now. */
void mu_plan_print(const Muster__V1__JobPlan *plan, FILE *out);

#endif
