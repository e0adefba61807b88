/* The checks an agent's Hello must pass before the gateway registers the agent. Pure: no
 * daemon state, so the fuzz target runs them as the gateway does. */
#ifndef MU_CP_HELLO_H
#define MU_CP_HELLO_H

#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

/* 0, or MU_EINVAL with a message naming the bad field ("Hello.agent_id 'x y' is invalid ..."):
 * agent_id 1-128 of [A-Za-z0-9._-], at most 64 labels, keys 1-63 bytes, values at most 255. */
int mu_hello_check(const Muster__V1__Hello *h, mu_err *err);

#endif
