/* The etcd probe of GetCluster (etcd_probe.h). */
#include "controlplane/etcd_probe.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"

/* The gateway renders 64-bit integers as strings ("20480"); small ones may be numbers. */
static uint64_t json_u64(json_t *v) {
  if (json_is_integer(v)) return (uint64_t)json_integer_value(v);
  const char *s = json_string_value(v);
  return s ? strtoull(s, NULL, 10) : 0;
}

int mu_etcd_probe_parse_status(mu_etcd_probe *p, const char *body, mu_err *err) {
  json_t *root = json_loads(body ? body : "", 0, NULL);
  if (!json_is_object(root)) {
    json_decref(root);
    return mu_err_set(err, MU_EINVAL, "etcd status: the reply is not a JSON object");
  }
  const char *v = json_string_value(json_object_get(root, "version"));
  snprintf(p->version, sizeof p->version, "%s", v ? v : "");
  p->db_size = json_u64(json_object_get(root, "dbSize"));
  p->db_size_in_use = json_u64(json_object_get(root, "dbSizeInUse"));
  snprintf(p->leader_id, sizeof p->leader_id, "%" PRIu64, json_u64(json_object_get(root, "leader")));
  uint64_t term = json_u64(json_object_get(root, "raftTerm"));
  if (term != p->raft_term || p->raft_term_since_ms == 0) p->raft_term_since_ms = mu_now_ms();
  p->raft_term = term;
  json_decref(root);
  return 0;
}

int mu_etcd_probe_parse_members(mu_etcd_probe *p, const char *body, mu_err *err) {
  json_t *root = json_loads(body ? body : "", 0, NULL);
  json_t *members = json_object_get(root, "members");
  if (!json_is_array(members)) {
    json_decref(root);
    return mu_err_set(err, MU_EINVAL, "etcd member list: no \"members\" array in the reply");
  }
  p->n_members = 0;
  snprintf(p->leader, sizeof p->leader, "%s", p->leader_id);
  size_t i;
  json_t *m;
  json_array_foreach(members, i, m) {
    char id[32];
    snprintf(id, sizeof id, "%" PRIu64, json_u64(json_object_get(m, "ID")));
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *url = json_string_value(json_array_get(json_object_get(m, "clientURLs"), 0));
    if (name == NULL || name[0] == '\0') name = id;
    if (strcmp(id, p->leader_id) == 0) snprintf(p->leader, sizeof p->leader, "%s", name);
    if (p->n_members < MU_ETCD_PROBE_MEMBERS)
      snprintf(p->members[p->n_members++], sizeof p->members[0], "%s %s", name, url ? url : "-");
  }
  json_decref(root);
  return 0;
}

static void probe_end(mu_etcd_probe *p, const mu_err *err) {
  p->in_flight = false;
  p->probed_at_ms = mu_now_ms();
  snprintf(p->error, sizeof p->error, "%s", err ? err->msg : "");
}

typedef struct probe_call {
  mu_etcd_probe *p;
  mu_etcd_client *c;
} probe_call;

static void on_members(void *ud, const mu_etcd_result *res, const mu_err *err) {
  mu_etcd_probe *p = ud;
  mu_err perr = {0};
  if (err == NULL && mu_etcd_probe_parse_members(p, res->raw, &perr) != 0) err = &perr;
  probe_end(p, err);
}

static void on_status(void *ud, const mu_etcd_result *res, const mu_err *err) {
  probe_call *pc = ud;
  mu_etcd_probe *p = pc->p;
  mu_etcd_client *c = pc->c;
  free(pc);
  p->latency_ms = mu_mono_ms() - p->started_mono_ms;
  mu_err perr = {0};
  if (err == NULL && mu_etcd_probe_parse_status(p, res->raw, &perr) != 0) err = &perr;
  if (err != NULL) {
    probe_end(p, err);
    return;
  }
  snprintf(p->endpoint, sizeof p->endpoint, "%s", mu_etcd_client_endpoint(c));
  if (mu_etcd_raw(c, "/v3/cluster/member/list", "{}", on_members, p, &perr) != 0) probe_end(p, &perr);
}

void mu_etcd_probe_kick(mu_etcd_probe *p, mu_etcd_client *c) {
  if (c == NULL || p->in_flight) return;
  if (p->probed_at_ms != 0 && mu_now_ms() - p->probed_at_ms < MU_ETCD_PROBE_EVERY_MS) return;
  probe_call *pc = malloc(sizeof *pc);
  if (pc == NULL) return;
  *pc = (probe_call){p, c};
  mu_err err = {0};
  p->in_flight = true;
  p->started_mono_ms = mu_mono_ms();
  if (mu_etcd_raw(c, "/v3/maintenance/status", "{}", on_status, pc, &err) != 0) {
    free(pc);
    probe_end(p, &err);
  }
}

const Muster__V1__EtcdStatus *mu_etcd_probe_status(mu_etcd_probe *p) {
  if (p->probed_at_ms == 0) return NULL;
  Muster__V1__EtcdStatus *m = &p->msg;
  muster__v1__etcd_status__init(m);
  m->probed_at_ms = p->probed_at_ms;
  m->latency_ms = p->latency_ms;
  m->error = p->error;
  m->version = p->version;
  m->db_size_bytes = p->db_size;
  m->db_size_in_use_bytes = p->db_size_in_use;
  m->leader = p->leader;
  m->raft_term = p->raft_term;
  m->raft_term_since_ms = p->raft_term_since_ms;
  for (size_t i = 0; i < p->n_members; i++) p->member_ptrs[i] = p->members[i];
  m->n_members = p->n_members;
  m->members = p->member_ptrs;
  m->endpoint = p->endpoint;
  return m;
}
