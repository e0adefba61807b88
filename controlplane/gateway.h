/* The agent gateway (gateway.c): one muster.v1.AgentGateway/Connect stream per agent, the
 * Hello checks, heartbeats, the silence sweep, and sending control messages down a stream.
 * It publishes what agents do to d->events (events.h) and includes no module that listens. */
#ifndef MU_CP_GATEWAY_H
#define MU_CP_GATEWAY_H

#include <stddef.h>

#include <uv.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

struct mu_daemon;

typedef struct mu_gateway {
  uv_timer_t sweep_timer; /* marks agents silent past the heartbeat timeout */
  int started;
} mu_gateway;

/* Registers AgentGateway/Connect on the server (before it starts). */
int mu_gateway_register(struct mu_daemon *d, mu_err *err);
/* Starts the sweep: agents silent past the heartbeat timeout are disconnected. */
void mu_gateway_start(struct mu_daemon *d);
void mu_gateway_stop(struct mu_daemon *d);
/* Ends agent a's stream now (UNAVAILABLE reason): the registry says disconnected and the
 * agent_down listeners have run when it returns; the stream's end no longer touches a. No-op
 * when a is not connected. */
void mu_gateway_disconnect(struct mu_daemon *d, mu_agent *a, const char *reason);
/* Disconnects agents whose last heartbeat is older than the timeout (what the sweep runs). */
void mu_gateway_sweep(struct mu_daemon *d);
/* Ends every agent stream: with NotLeader(leader_address) when it is non-NULL (agents go
 * there), else with UNAVAILABLE reason (agents reconnect and resend). */
void mu_gateway_end_all(struct mu_daemon *d, const char *leader_address, const char *reason);

/* Cluster events (events.h): streams kept through an etcd outage end when elected again (their
 * unacked events must reach the rebuilt state); a deposed member or a follower that learns of
 * another leader sends agents there. */
void mu_gateway_on_elected(struct mu_daemon *d);
void mu_gateway_on_deposed(struct mu_daemon *d, const char *reason, const char *redirect_to);
void mu_gateway_on_leader_elsewhere(struct mu_daemon *d, const char *address);

/* Sends one control message down an agent's stream. MU_EAGAIN when not connected. */
int mu_gateway_send(mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err);
/* Tells a connected agent whether it is draining (a Drain message); no-op when disconnected. */
void mu_gateway_send_drain(mu_agent *agent);
/* Bytes queued on the agent's stream not yet handed to gRPC; SIZE_MAX when the agent is not
 * connected (flow control for bundle chunks). */
size_t mu_gateway_queued_bytes(const mu_agent *agent);

#endif
