/* etcd as `muster doctor --cluster` sees it: a probe (Maintenance.Status, then MemberList,
 * through the gateway's JSON) started by GetCluster at most once a second; GetCluster
 * answers with the last finished probe. The probe lives in mu_cluster, which outlives the
 * etcd client, so a reply after close (MU_ECANCELED) lands safely. */
#ifndef MU_CP_ETCD_PROBE_H
#define MU_CP_ETCD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/etcd/etcd.h"
#include "muster/v1/admin.pb-c.h"

#define MU_ETCD_PROBE_MEMBERS 16 /* members listed; more are counted, not named */
#define MU_ETCD_PROBE_EVERY_MS 1000

typedef struct mu_etcd_probe {
  bool in_flight;
  int64_t started_mono_ms;
  /* the last finished probe */
  int64_t probed_at_ms, latency_ms;
  char error[300];
  char version[32], endpoint[256], leader[128], leader_id[32];
  uint64_t db_size, db_size_in_use, raft_term;
  int64_t raft_term_since_ms;
  char members[MU_ETCD_PROBE_MEMBERS][300];
  size_t n_members;
  /* GetCluster's view of it (points into the above) */
  char *member_ptrs[MU_ETCD_PROBE_MEMBERS];
  Muster__V1__EtcdStatus msg;
} mu_etcd_probe;

/* Starts a probe on c unless one runs or the last ended under a second ago. c may be NULL. */
void mu_etcd_probe_kick(mu_etcd_probe *p, mu_etcd_client *c);
/* The last finished probe as a message borrowing p, or NULL before the first. */
const Muster__V1__EtcdStatus *mu_etcd_probe_status(mu_etcd_probe *p);

/* Parsers for the gateway's replies (exposed for the fuzz target and tests): fill p's
 * figures from a Status body, its members (and leader name) from a MemberList body. */
int mu_etcd_probe_parse_status(mu_etcd_probe *p, const char *body, mu_err *err);
int mu_etcd_probe_parse_members(mu_etcd_probe *p, const char *body, mu_err *err);

#endif
