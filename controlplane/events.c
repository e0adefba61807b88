/* The listener tables of events.h. */
#include "controlplane/events.h"

int mu_events_on_agent(mu_events *ev, const mu_agent_listener *l, mu_err *err) {
  if (ev->n_agent >= MU_EVENTS_MAX_LISTENERS)
    return mu_err_set(err, MU_ENOSPC, "more than %d agent event listeners", MU_EVENTS_MAX_LISTENERS);
  ev->agent[ev->n_agent++] = *l;
  return 0;
}

int mu_events_on_cluster(mu_events *ev, const mu_cluster_listener *l, mu_err *err) {
  if (ev->n_cluster >= MU_EVENTS_MAX_LISTENERS)
    return mu_err_set(err, MU_ENOSPC, "more than %d cluster event listeners", MU_EVENTS_MAX_LISTENERS);
  ev->cluster[ev->n_cluster++] = *l;
  return 0;
}

#define EACH_AGENT(member, ...)            \
  for (size_t i = 0; i < ev->n_agent; i++) \
    if (ev->agent[i].member != NULL) ev->agent[i].member(ev->agent[i].ud, __VA_ARGS__)
#define EACH_CLUSTER(member, ...)            \
  for (size_t i = 0; i < ev->n_cluster; i++) \
    if (ev->cluster[i].member != NULL) ev->cluster[i].member(ev->cluster[i].ud, __VA_ARGS__)

void mu_events_agent_up(const mu_events *ev, mu_agent *agent) { EACH_AGENT(up, agent); }

void mu_events_agent_down(const mu_events *ev, mu_agent *agent, int stopping) { EACH_AGENT(down, agent, stopping); }

void mu_events_agent_heartbeat(const mu_events *ev, mu_agent *agent, const Muster__V1__Heartbeat *hb) {
  EACH_AGENT(heartbeat, agent, hb);
}

void mu_events_agent_task_event(const mu_events *ev, mu_agent *agent, const Muster__V1__TaskEvent *e) {
  EACH_AGENT(task_event, agent, e);
}

void mu_events_agent_log_reply(const mu_events *ev, mu_agent *agent, const Muster__V1__LogRequestReply *rep) {
  EACH_AGENT(log_reply, agent, rep);
}

void mu_events_agent_bundle_request(const mu_events *ev, mu_agent *agent, const Muster__V1__BundleRequest *req) {
  EACH_AGENT(bundle_request, agent, req);
}

void mu_events_agent_forgotten(const mu_events *ev, mu_agent *agent) { EACH_AGENT(forgotten, agent); }

void mu_events_elected(const mu_events *ev, uint64_t term) { EACH_CLUSTER(elected, term); }

void mu_events_deposed(const mu_events *ev, const char *reason, const char *redirect_to) {
  EACH_CLUSTER(deposed, reason, redirect_to);
}

void mu_events_leader_elsewhere(const mu_events *ev, const char *address) { EACH_CLUSTER(leader_elsewhere, address); }

void mu_events_leader_changed(const mu_events *ev, const char *address, int64_t term) {
  EACH_CLUSTER(leader_changed, address, term);
}

void mu_events_snapshot_begin(const mu_events *ev) {
  for (size_t i = 0; i < ev->n_cluster; i++)
    if (ev->cluster[i].snapshot_begin != NULL) ev->cluster[i].snapshot_begin(ev->cluster[i].ud);
}

void mu_events_record(const mu_events *ev, const char *rel_key, const char *value, size_t len, int leading) {
  EACH_CLUSTER(record, rel_key, value, len, leading);
}

void mu_events_records_end(const mu_events *ev, int snapshot) { EACH_CLUSTER(records_end, snapshot); }

void mu_events_takeover(const mu_events *ev, uint64_t term, int64_t grace_ms) {
  EACH_CLUSTER(takeover, term, grace_ms);
}
