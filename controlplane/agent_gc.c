/* Forgetting agents (agent_gc.h): RemoveAgent for `muster agents rm`, the leader's sweep of
 * agents disconnected past agent_gc_after, and the one way both (and a follower seeing the
 * leader's delete) drop an agent: listeners first, then the records, then the registry. */
#include "controlplane/agent_gc.h"

#include <stdio.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/events.h"
#include "controlplane/gateway.h"
#include "controlplane/persist.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/jobcounts/jobcounts.h"
#include "lib/rpc/pb.h"

void mu_agent_forget(mu_daemon *d, mu_agent *a, const char *why) {
  mu_info("agents", "agent %s forgotten: %s", a->id, why);
  mu_events_agent_forgotten(&d->events, a);
  mu_persist_forget_agent(d, a->id);
  mu_registry_remove(&d->registry, a);
}

void mu_agent_gc_on_record(mu_daemon *d, const char *rel_key, const char *value) {
  char id[300];
  int n = 0;
  if (value != NULL || d->cluster->role != MU_ROLE_FOLLOWER || sscanf(rel_key, "agents/%299[^/]%n", id, &n) != 1 ||
      rel_key[n] != '\0')
    return;
  mu_agent *a = mu_registry_find(&d->registry, id);
  if (a != NULL && a->session == NULL) mu_agent_forget(d, a, "the leader forgot it (agents/ record deleted)");
}

/* RemoveAgent: forgets an agent; a connected one only with force, which ends its stream. */
static void remove_agent(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__RemoveAgentRequest *req = (const Muster__V1__RemoveAgentRequest *)req_msg;
  (void)md;
  mu_agent *a = mu_admin_agent_for_write(d, call, req->agent_id, "agent.remove");
  if (a == NULL) return;
  if (a->session != NULL && !req->force) {
    char why[400];
    snprintf(why, sizeof why,
             "agent '%s' is connected (from %s): stop it first, or use --force to end its stream "
             "and forget it (an agent still running reconnects and is registered again)",
             a->id, a->peer ? a->peer : "?");
    mu_audit_record(d, call, "agent.remove", a->id, MU_AUDIT_REFUSED, "connected", NULL);
    mu_pb_fail(call, MU_RPC_FAILED_PRECONDITION, "%s", why);
    return;
  }
  Muster__V1__RemoveAgentResponse resp = MUSTER__V1__REMOVE_AGENT_RESPONSE__INIT;
  resp.state = mu_agent_shown_state(a);
  resp.disconnected = a->session != NULL;
  mu_audit_record(d, call, "agent.remove", a->id, MU_AUDIT_OK, NULL, "force=%s state=%s", req->force ? "true" : "false",
                  protobuf_c_enum_descriptor_get_value(&muster__v1__agent_state__descriptor, resp.state)->name);
  if (a->session != NULL) mu_gateway_disconnect(d, a, "removed (muster agents rm --force)");
  char who[200] = "a caller";
  const mu_caller *caller = mu_authz_caller(call);
  if (caller != NULL) mu_caller_describe(caller, who, sizeof who);
  char why[300];
  snprintf(why, sizeof why, "removed by %s%s", who, resp.disconnected ? " (--force)" : "");
  mu_agent_forget(d, a, why);
  mu_pb_reply(call, &resp.base);
}

int mu_agent_gc_register(mu_daemon *d, mu_err *err) {
  return mu_pb_add_unary(d->server, "/muster.v1.Admin/RemoveAgent", &muster__v1__remove_agent_request__descriptor,
                         remove_agent, d, err);
}

void mu_agent_gc_sweep(mu_daemon *d) {
  mu_agent_gc *g = d->agent_gc;
  int64_t after = d->cfg.agent_gc_after_ms;
  if (after <= 0 || d->stopping || !mu_cluster_leading(d)) return;
  int64_t now = mu_now_ms();
  for (size_t i = d->registry.n; i-- > 0;) { /* backwards: forgetting shifts the rest down */
    mu_agent *a = d->registry.agents[i];
    if (!mu_agent_gc_due(a, after, g->since_ms, now)) continue;
    char gone[32], limit[32], why[200];
    mu_duration_format(now - a->last_heartbeat_ms, gone, sizeof gone);
    mu_duration_format(after, limit, sizeof limit);
    snprintf(why, sizeof why, "disconnected for %s, past agent_gc_after (%s)", a->last_heartbeat_ms > 0 ? gone : "ever",
             limit);
    mu_audit_record_as(d, NULL, "agent.gc", a->id, MU_AUDIT_OK, NULL, "%s", why);
    mu_agent_forget(d, a, why);
    g->forgotten++;
  }
}

static void on_sweep(uv_timer_t *t) { mu_agent_gc_sweep(t->data); }

void mu_agent_gc_start(mu_daemon *d) {
  mu_agent_gc *g = d->agent_gc;
  g->since_ms = mu_now_ms();
  int64_t after = d->cfg.agent_gc_after_ms;
  if (after <= 0) return;
  int64_t every = after / 4;
  if (every < 200) every = 200;
  if (every > 60000) every = 60000;
  uv_timer_init(d->loop, &g->timer);
  g->timer.data = d;
  g->started = 1;
  uv_timer_start(&g->timer, on_sweep, (uint64_t)every, (uint64_t)every);
}

void mu_agent_gc_stop(mu_daemon *d) {
  mu_agent_gc *g = d->agent_gc;
  if (g == NULL || !g->started) return;
  g->started = 0;
  uv_timer_stop(&g->timer);
  uv_close((uv_handle_t *)&g->timer, NULL);
}
