/* `muster doctor`'s checks, as pure functions of what the control plane and the local files
 * said: each check is OK, WARN or FAIL with a one-line message and a one-line fix. The
 * command (cmd_doctor.c) gathers the inputs (GetCluster, ListAgents, certificates) and
 * prints the result; these functions decide, so a test can hand them any situation. */
#ifndef MU_CLI_DOCTOR_H
#define MU_CLI_DOCTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "muster/v1/admin.pb-c.h"

typedef enum { MU_DOCTOR_OK = 0, MU_DOCTOR_WARN = 1, MU_DOCTOR_FAIL = 2 } mu_doctor_status;

typedef struct mu_doctor_check {
  char scope[160]; /* "cluster", "client", or "agent <id>" */
  char name[48];   /* "connectivity", "clock-skew", ... */
  mu_doctor_status status;
  char message[480];
  char fix[320]; /* "" for OK */
} mu_doctor_check;

/* The checks so far (grown as needed; past MU_DOCTOR_MAX_CHECKS they are dropped, counted). */
#define MU_DOCTOR_MAX_CHECKS 100000
typedef struct mu_doctor {
  mu_doctor_check *checks;
  size_t n, cap;
  size_t dropped;
} mu_doctor;

void mu_doctor_free(mu_doctor *d);
void mu_doctor_add(mu_doctor *d, const char *scope, const char *name, mu_doctor_status status, const char *fix,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The worst status of all checks (OK when there are none). */
mu_doctor_status mu_doctor_worst(const mu_doctor *d);
const char *mu_doctor_status_name(mu_doctor_status s); /* "OK", "WARN", "FAIL" */

/* The control plane, from GetCluster sent at sent_ms and answered at recv_ms (local clock):
 * connectivity and round trip, clock skew (Cluster.now_ms vs the middle of the round trip),
 * health, etcd and the leader, agents connected. */
void mu_doctor_check_cluster(mu_doctor *d, const char *addr, const Muster__V1__Cluster *c, int64_t sent_ms,
                             int64_t recv_ms);
/* A certificate that expires at not_after (unix seconds): FAIL when expired, WARN within
 * 14 days. scope/name as in the report; what names the certificate in the message. */
void mu_doctor_check_cert(mu_doctor *d, const char *scope, const char *name, const char *what, int64_t not_after,
                          int64_t now_ms);
/* One agent as ListAgents shows it: connected, task types and refused plugins, heartbeat age,
 * clock skew (its last heartbeat's send time vs when musterd got it), spool disk space and
 * writability, cgroups, the exec helper, bundle trust. */
void mu_doctor_check_agent(mu_doctor *d, const Muster__V1__AgentInfo *a, int64_t now_ms);

/* etcd as musterd probed it (Cluster.etcd_status, NULL = no probe yet or --no-etcd):
 * health and request latency, members and the leader, the raft term's age, the database
 * size against the quota (when known). */
void mu_doctor_check_etcd(mu_doctor *d, const Muster__V1__EtcdStatus *s, int64_t now_ms);

/* Text: a line per check ("FAIL  agent web-2  connected: ...", then "      fix: ...") and
 * a summary line. */
void mu_doctor_print(const mu_doctor *d, FILE *out);

#endif
