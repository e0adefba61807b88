/* The admin service (muster.v1.Admin): the calls the CLI and grpcurl use. This file serves
 * the cluster and agent views and DrainAgent; jobs are in admin_jobs.c, logs in task_logs.c,
 * bundles in bundle_admin.c. */
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/persist.h"
#include "controlplane/scheduler.h"
#include "lib/base/clock.h"
#include "lib/rpc/pb.h"
#include "lib/selector/selector.h"

#define LIST_AGENTS_PAGE 1000
#define LIST_AGENTS_PAGE_MAX 10000

static int agent_listed(const mu_agent *a, const Muster__V1__ListAgentsRequest *req, const mu_selector *sel) {
  if (req->state != MUSTER__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED && mu_agent_shown_state(a) != req->state) return 0;
  return mu_selector_matches(sel, mu_agent_label, a);
}

/* A page of agents in id order from the one after page_token (ListAgentsRequest in
 * admin.proto); the work is the page, not the registry: 100,000 agents do not fit in one
 * message. */
static void list_agents(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListAgentsRequest *req = (const Muster__V1__ListAgentsRequest *)req_msg;
  (void)md;
  mu_selector *sel = NULL;
  mu_err err = {0};
  if (mu_selector_parse(req->selector, &sel, &err) != 0) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "selector: %s", err.msg);
    return;
  }
  size_t page = req->page_size == 0                     ? LIST_AGENTS_PAGE
                : req->page_size > LIST_AGENTS_PAGE_MAX ? LIST_AGENTS_PAGE_MAX
                                                        : req->page_size;
  const mu_registry *reg = &d->registry;
  size_t first = mu_registry_after(reg, req->page_token);
  size_t n = 0, total_labels = 0, end = first;
  for (; end < reg->n && n < page; end++) { /* the page's agents, and where it ends */
    const mu_agent *a = reg->agents[end];
    if (!agent_listed(a, req, sel)) continue;
    n++;
    if (a->hello_msg && a->hello_msg->hello) total_labels += a->hello_msg->hello->n_labels;
  }
  int more = 0; /* another listed agent after the page */
  for (size_t i = end; i < reg->n && !more; i++) more = agent_listed(reg->agents[i], req, sel);
  Muster__V1__AgentInfo *infos = calloc(n ? n : 1, sizeof *infos);
  Muster__V1__AgentInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  Muster__V1__AgentInfo__LabelsEntry *labels = calloc(total_labels + 1, sizeof *labels);
  Muster__V1__AgentInfo__LabelsEntry **label_ptrs = calloc(total_labels + 1, sizeof *label_ptrs);
  if (!infos || !ptrs || !labels || !label_ptrs) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing %zu agents", n);
    goto out;
  }
  Muster__V1__ListAgentsResponse resp = MUSTER__V1__LIST_AGENTS_RESPONSE__INIT;
  size_t used_labels = 0;
  for (size_t i = first; i < end; i++) {
    const mu_agent *a = reg->agents[i];
    if (!agent_listed(a, req, sel)) continue;
    mu_agent_to_info(a, &infos[resp.n_agents], &labels[used_labels], &label_ptrs[used_labels]);
    used_labels += infos[resp.n_agents].n_labels;
    ptrs[resp.n_agents] = &infos[resp.n_agents];
    resp.n_agents++;
  }
  resp.agents = ptrs;
  if (more && resp.n_agents > 0) resp.next_page_token = infos[resp.n_agents - 1].agent_id;
  mu_pb_reply(call, &resp.base);
out:
  free(infos);
  free(ptrs);
  free(labels);
  free(label_ptrs);
  mu_selector_free(sel);
}

static void get_cluster(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)req_msg;
  (void)md;
  Muster__V1__Cluster c = MUSTER__V1__CLUSTER__INIT;
  Muster__V1__Member self = MUSTER__V1__MEMBER__INIT;
  Muster__V1__Member other = MUSTER__V1__MEMBER__INIT;
  Muster__V1__Member *members[2] = {&self, &other};
  char etcd_error[400];
  int leading = mu_cluster_leading(d);
  int etcd_ok = mu_cluster_etcd_healthy(d, etcd_error, sizeof etcd_error);
  const char *leader = d->cluster->role == MU_ROLE_SINGLE ? d->cfg.advertise : d->cluster->leader_address;
  self.id = d->cfg.member_id;
  self.address = d->cfg.advertise;
  self.leader = leading;
  c.version = MU_VERSION;
  c.member_id = d->cfg.member_id;
  c.address = d->cfg.advertise;
  c.leader = leading;
  c.leader_address = (char *)leader;
  c.leader_term = d->cluster->role == MU_ROLE_SINGLE ? 0 : (uint64_t)mu_leader_known_term(d->cluster->leader);
  c.n_members = 1;
  if (!leading && leader[0] != '\0' && strcmp(leader, d->cfg.advertise) != 0) {
    other.id = "";
    other.address = (char *)leader;
    other.leader = 1;
    c.n_members = 2;
  }
  c.members = members;
  c.etcd_healthy = etcd_ok;
  c.etcd_error = etcd_error;
  uint32_t connected = 0;
  for (size_t i = 0; i < d->registry.n; i++)
    connected += d->registry.agents[i]->state == MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
  c.agents_connected = connected;
  c.agents_total = (uint32_t)d->registry.n;
  c.started_at_ms = d->started_at_ms;
  /* healthy: this member can do its job: serve (SINGLE), or etcd answers and a leader is known */
  c.healthy = !d->stopping && (d->cluster->role == MU_ROLE_SINGLE || (etcd_ok && leader[0] != '\0'));
  c.security = d->cfg.insecure ? "insecure" : "mtls";
  char who[200] = "-";
  const mu_caller *caller = mu_authz_caller(call);
  if (caller != NULL) mu_caller_describe(caller, who, sizeof who);
  c.caller = who;
  if (d->cluster->role != MU_ROLE_SINGLE) { /* `muster doctor --cluster` */
    c.etcd_status = (Muster__V1__EtcdStatus *)mu_etcd_probe_status(&d->cluster->etcd_probe);
    mu_etcd_probe_kick(&d->cluster->etcd_probe, d->cluster->etcd);
  }
  c.now_ms = mu_now_ms();
  mu_pb_reply(call, &c.base);
}

mu_agent *mu_admin_agent_for_write(mu_daemon *d, mu_rpc_call *call, const char *agent_id, const char *action) {
  if (mu_cluster_check_write(d, call) != 0) return NULL;
  mu_agent *a = mu_registry_find(&d->registry, agent_id);
  if (a == NULL) {
    mu_pb_fail(call, MU_RPC_NOT_FOUND, "agent '%s' is not known", agent_id);
    return NULL;
  }
  mu_err err = {0};
  char *ids[1] = {a->id};
  if (mu_authz_check_targets(d, mu_authz_caller(call), ids, 1, &err) != 0) {
    mu_audit_record(d, call, action, a->id, MU_AUDIT_DENIED, err.msg, NULL);
    mu_pb_fail(call, MU_RPC_PERMISSION_DENIED, "%s", err.msg);
    return NULL;
  }
  return a;
}

/* DrainAgent: a draining agent keeps running what it has, but no new host run starts on it
 * and target resolution skips it (docs/operations.md). The agent is told with a Drain. */
static void drain_agent(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__DrainAgentRequest *req = (const Muster__V1__DrainAgentRequest *)req_msg;
  (void)md;
  mu_agent *a = mu_admin_agent_for_write(d, call, req->agent_id, req->undrain ? "agent.undrain" : "agent.drain");
  if (a == NULL) return;
  int draining = !req->undrain;
  mu_audit_record(d, call, draining ? "agent.drain" : "agent.undrain", a->id, MU_AUDIT_OK, NULL, "%s",
                  a->draining == draining ? "unchanged" : "");
  if (a->draining != draining) {
    a->draining = draining;
    mu_persist_agent(d, a);
    mu_gateway_send_drain(a);
    if (!draining) mu_sched_kick(d->sched);
  }
  Muster__V1__DrainAgentResponse resp = MUSTER__V1__DRAIN_AGENT_RESPONSE__INIT;
  resp.state = mu_agent_shown_state(a);
  mu_pb_reply(call, &resp.base);
}

int mu_admin_register(mu_daemon *d, mu_err *err) {
  int rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/ListAgents", &muster__v1__list_agents_request__descriptor,
                           list_agents, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/GetCluster", &muster__v1__get_cluster_request__descriptor,
                         get_cluster, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/DrainAgent", &muster__v1__drain_agent_request__descriptor,
                         drain_agent, d, err);
  if (rc == 0) rc = mu_task_action_register(d, err); /* task_action.c, savepoints.c */
  if (rc == 0) rc = mu_images_register(d, err);
  return rc;
}
