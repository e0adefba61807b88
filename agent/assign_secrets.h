/* The secret values an Assign carries (Assign.secrets), wiped in place once their copy has gone
 * where it is needed: the task path and the bundle wait each wipe the Assign they hold. */
#ifndef MU_AGENT_ASSIGN_SECRETS_H
#define MU_AGENT_ASSIGN_SECRETS_H

#include "muster/v1/agent.pb-c.h"

/* Zeroes every secret value of assign (NULL is fine); the entries and their names stay. */
void mu_assign_wipe_secrets(Muster__V1__Assign *assign);

#endif
