/* `muster doctor [--agent ID | -t SELECTOR]`: asks the control plane (GetCluster, ListAgents)
 * and checks the local and server certificates, then prints each check OK/WARN/FAIL with a
 * fix (doctor.c decides; this file gathers). Exit 1 when a check FAILs. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/list_agents.h"
#include "cli/doctor.h"
#include "cli/doctor_tls.h"
#include "cli/exit_codes.h"
#include "cli/output_json.h"
#include "lib/base/clock.h"

static const char doctor_usage[] =
    "usage: muster doctor [--agent ID | -t SELECTOR | --cluster]\n"
    "\n"
    "Checks the control plane (reachable, clock skew, etcd, leader, certificates) and the\n"
    "agents (all, one with --agent, or those matching -t): connected, task types and plugins,\n"
    "clock skew, spool disk space, cgroups, the exec helper, bundle trust. Each check says OK,\n"
    "WARN or FAIL with a one-line fix. Exits 1 when any check fails; -o json prints one\n"
    "object per check and a summary.\n"
    "\n"
    "  --cluster   the control plane and etcd instead of the agents: etcd health and request\n"
    "              latency, members and the leader, raft term age, database size vs quota\n";

static void check_certs(const mu_cli_opts *opts, mu_doctor *d, int64_t now) {
  struct {
    const char *path, *name, *what;
  } files[] = {{opts->cert, "client-cert", "your client certificate"}, {opts->ca, "ca-cert", "the CA certificate"}};
  for (size_t i = 0; i < 2; i++) {
    if (files[i].path == NULL || files[i].path[0] == '\0') continue;
    int64_t na = 0;
    mu_err err = {0};
    char what[600];
    snprintf(what, sizeof what, "%s (%s)", files[i].what, files[i].path);
    if (mu_doctor_cert_file(files[i].path, &na, &err) != 0)
      mu_doctor_add(d, "client", files[i].name, MU_DOCTOR_FAIL,
                    "point --cert/--ca (MUSTER_CERT, MUSTER_CA) at readable PEM files", "%s", err.msg);
    else mu_doctor_check_cert(d, "client", files[i].name, what, na, now);
  }
  if (opts->ca == NULL) return; /* plaintext: no server certificate */
  int64_t na = 0;
  mu_err err = {0};
  if (mu_doctor_server_cert(opts->addr, opts->cert, opts->key, 5000, &na, &err) != 0)
    mu_doctor_add(d, "cluster", "server-cert", MU_DOCTOR_WARN, "check that musterd serves TLS on --addr", "%s",
                  err.msg);
  else mu_doctor_check_cert(d, "cluster", "server-cert", "musterd's certificate", na, now);
}

/* GetCluster starts musterd's etcd probe and answers with the last one: ask again (every
 * 200 ms, up to 3 s) until a probe that ended after sent_ms is there. */
static void check_etcd(const mu_cli_opts *opts, mu_doctor *d, ProtobufCMessage **cluster, int64_t sent_ms) {
  for (int i = 0; i < 15; i++) {
    const Muster__V1__Cluster *c = (const Muster__V1__Cluster *)*cluster;
    if (c->etcd_status != NULL && c->etcd_status->probed_at_ms >= sent_ms) break;
    if (strstr(c->etcd_error, "--no-etcd") != NULL) break;
    nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    Muster__V1__GetClusterRequest req = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
    ProtobufCMessage *again = NULL;
    mu_err err = {0};
    if (mu_cli_unary(opts, "/muster.v1.Admin/GetCluster", &req.base, &muster__v1__cluster__descriptor, &again, &err) !=
        0)
      break;
    protobuf_c_message_free_unpacked(*cluster, NULL);
    *cluster = again;
  }
  const Muster__V1__Cluster *c = (const Muster__V1__Cluster *)*cluster;
  mu_doctor_check_etcd(d, c->etcd_status, mu_now_ms());
}

static int report(const mu_cli_opts *opts, const mu_doctor *d) {
  mu_doctor_status worst = mu_doctor_worst(d);
  if (!opts->json) {
    mu_doctor_print(d, stdout);
  } else {
    size_t count[3] = {0, 0, 0};
    for (size_t i = 0; i < d->n; i++) {
      const mu_doctor_check *c = &d->checks[i];
      count[c->status]++;
      mu_cli_json_emit("check", json_pack("{s:s, s:s, s:s, s:s, s:s}", "scope", c->scope, "check", c->name, "status",
                                          mu_doctor_status_name(c->status), "message", c->message, "fix", c->fix));
    }
    mu_cli_json_emit("summary",
                     json_pack("{s:I, s:I, s:I, s:s}", "ok", (json_int_t)count[0], "warn", (json_int_t)count[1], "fail",
                               (json_int_t)count[2], "status", mu_doctor_status_name(worst)));
  }
  return worst == MU_DOCTOR_FAIL ? MU_EXIT_FAILED : MU_EXIT_OK;
}

int mu_cmd_doctor(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"agent", required_argument, NULL, 'a'},
                                     {"selector", required_argument, NULL, 't'},
                                     {"cluster", no_argument, NULL, 'c'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  const char *agent = NULL, *selector = NULL;
  int cluster_only = 0;
  Muster__V1__ListAgentsRequest areq = MUSTER__V1__LIST_AGENTS_REQUEST__INIT;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "a:t:h", lo, NULL)) != -1) {
    switch (c) {
      case 'a': agent = optarg; break;
      case 't': selector = optarg; break;
      case 'c': cluster_only = 1; break;
      case 'h': fputs(doctor_usage, stdout); return 0;
      default:
        fprintf(stderr, "muster doctor: unknown option '%s'\n%s", argv[optind - 1], doctor_usage);
        return MU_EXIT_USAGE;
    }
  }
  if (optind < argc || (agent != NULL) + (selector != NULL) + cluster_only > 1) {
    fprintf(stderr, "muster doctor: %s\n%s",
            optind < argc ? "unexpected argument" : "--agent, -t and --cluster do not go together", doctor_usage);
    return MU_EXIT_USAGE;
  }
  if (selector != NULL) areq.selector = (char *)selector;
  mu_doctor d = {0};
  mu_err err = {0};
  Muster__V1__GetClusterRequest creq = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
  ProtobufCMessage *cluster = NULL, *agents = NULL;
  int64_t sent = mu_now_ms();
  int rc =
      mu_cli_unary(opts, "/muster.v1.Admin/GetCluster", &creq.base, &muster__v1__cluster__descriptor, &cluster, &err);
  int64_t recv = mu_now_ms();
  if (rc != 0) {
    mu_doctor_add(&d, "cluster", "connectivity", MU_DOCTOR_FAIL,
                  "start musterd, or point --addr (MUSTER_ADDR, muster config) and the "
                  "certificates at it; `muster cluster` shows the same call",
                  "%s", err.msg);
    check_certs(opts, &d, recv);
    rc = report(opts, &d);
    mu_doctor_free(&d);
    return rc;
  }
  mu_doctor_check_cluster(&d, opts->addr, (const Muster__V1__Cluster *)cluster, sent, recv);
  check_certs(opts, &d, recv);
  if (cluster_only) {
    check_etcd(opts, &d, &cluster, sent);
    rc = report(opts, &d);
    protobuf_c_message_free_unpacked(cluster, NULL);
    mu_doctor_free(&d);
    return rc;
  }
  if (mu_cli_list_agents(opts, &areq, &agents, &err) != 0) {
    mu_doctor_add(&d, "cluster", "agents", MU_DOCTOR_FAIL, "check your role allows ListAgents (viewer or more)", "%s",
                  err.msg);
  } else {
    const Muster__V1__ListAgentsResponse *al = (const Muster__V1__ListAgentsResponse *)agents;
    size_t checked = 0;
    int64_t now = mu_now_ms();
    for (size_t i = 0; i < al->n_agents; i++) {
      if (agent != NULL && strcmp(al->agents[i]->agent_id, agent) != 0) continue;
      mu_doctor_check_agent(&d, al->agents[i], now);
      checked++;
    }
    if (checked == 0 && (agent != NULL || selector != NULL))
      mu_doctor_add(&d, "cluster", "agents", MU_DOCTOR_FAIL, "muster agents lists the agents musterd knows",
                    "no agent %s%s", agent ? agent : "matches ", agent ? "" : selector);
  }
  rc = report(opts, &d);
  protobuf_c_message_free_unpacked(cluster, NULL);
  if (agents != NULL) protobuf_c_message_free_unpacked(agents, NULL);
  mu_doctor_free(&d);
  return rc;
}
