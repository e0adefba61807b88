/* The checks an agent's messages must pass at the gateway: its Hello before the agent is
 * registered, and every AgentMessage on a Connect stream before it is acted on. Pure: no
 * daemon state, so the fuzz target and hello_test run them as the gateway does. */
#ifndef MU_CP_HELLO_H
#define MU_CP_HELLO_H

#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

/* 0, or MU_EINVAL with a message naming the bad field ("Hello.agent_id 'x y' is invalid ..."):
 * agent_id 1-128 of [A-Za-z0-9._-], at most 64 labels, keys 1-63 bytes, values at most 255. */
int mu_hello_check(const Muster__V1__Hello *h, mu_err *err);

/* One AgentMessage on a Connect stream (hello_seen: a Hello was accepted on it before): valid
 * proto3 (UTF-8 strings), a Hello first (passing mu_hello_check) and never again, some field
 * set, a Heartbeat with metrics. 0, or MU_EINVAL with the message the stream is closed with
 * ("the first message on a Connect stream must be Hello (got field 2)"). */
int mu_agent_message_check(const Muster__V1__AgentMessage *msg, int hello_seen, mu_err *err);

#endif
