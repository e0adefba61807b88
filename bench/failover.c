/* failover: control-plane failover time (issue 3). Starts a 3-member etcd cluster on loopback,
 * three musterd (--etcd, leader TTL --ttl) and N real muster-agent processes that know all
 * three addresses (plus, optionally, M simulated agents from bench/fleet), then R times: waits
 * for one leader with every agent connected, kill -9s it, and measures (a) until a surviving
 * member accepts a mutating admin call and (b) until every agent is connected to it; then
 * restarts the killed member. Prints each run, median and p99 as "name: value unit" with the
 * target; never fails on figures (exit 0 ran, 1 could not run, 2 bad flags). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/fleet.h"
#include "bench/setup.h"
#include "bench/stats.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/rpc.h"
#include "muster/v1/admin.pb-c.h"

#define MEMBERS 3
#define MAX_ARGS 32
#define PROBE_JOB "j-failover-probe"

extern char **environ;

static const char usage[] =
    "usage: failover [--runs R] [--agents N] [--sim-agents M] [--ttl DUR]\n"
    "                [--takeover-grace DUR] [--heartbeat-timeout DUR] [--poll DUR]\n"
    "                [--timeout DUR] [--reconnect-max DUR] [--musterd PATH] [--agent PATH]\n"
    "                [--etcd PATH] [--keep-work-dir]\n"
    "\n"
    "kill -9s the musterd leader of a 3-member cluster R times and prints how long until a new\n"
    "leader accepts admin calls and until every agent is connected to it. Defaults: 5 runs,\n"
    "3 real agents, 0 simulated, TTL 5s, grace 5s, heartbeat timeout 15s, poll 20ms, timeout\n"
    "60s per phase; binaries from the Bazel runfiles, etcd /usr/bin/etcd.\n";

typedef struct proc {
  char name[32];
  char *argv[MAX_ARGS]; /* owned, NULL-terminated; kept to restart */
  pid_t pid;            /* 0 when not running */
} proc;

typedef struct opts {
  int runs;
  size_t agents, sim_agents;
  int64_t ttl_ms, grace_ms, hb_timeout_ms, poll_ms, timeout_ms, reconnect_max_ms;
  const char *musterd_flag, *agent_flag, *etcd_flag;
  int keep;
} opts;

typedef struct bench {
  opts o;
  uv_loop_t *loop;
  mu_rpc_engine *engine;
  char musterd_path[PATH_MAX], agent_path[PATH_MAX], etcd_path[PATH_MAX];
  char workdir[PATH_MAX];
  char etcd_urls[512];
  char control[512]; /* the three musterd addresses */
  char addr[MEMBERS][64];
  proc etcd[MEMBERS], member[MEMBERS];
  proc *agents;
  mu_rpc_channel *ch[MEMBERS];
  mu_fleet *fleet;
  int fleet_member; /* the member the simulated fleet talks to, -1 none */
} bench;

/* --- processes --- */

static int proc_set(proc *p, const char *name, const char *const *args) {
  snprintf(p->name, sizeof p->name, "%s", name);
  size_t i = 0;
  for (; args[i] != NULL && i + 1 < MAX_ARGS; i++) {
    p->argv[i] = strdup(args[i]);
    if (p->argv[i] == NULL) return MU_ENOMEM;
  }
  p->argv[i] = NULL;
  return 0;
}

static void proc_free(proc *p) {
  for (size_t i = 0; i < MAX_ARGS && p->argv[i] != NULL; i++) free(p->argv[i]);
  memset(p->argv, 0, sizeof p->argv);
}

static int proc_start(bench *b, proc *p, mu_err *err) {
  char log[PATH_MAX + 64];
  snprintf(log, sizeof log, "%s/%s.log", b->workdir, p->name);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  int rc = posix_spawn(&p->pid, p->argv[0], &fa, NULL, p->argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    p->pid = 0;
    return mu_err_set(err, MU_EIO, "starting %s (%s): %s", p->name, p->argv[0], strerror(rc));
  }
  return 0;
}

/* Signals and reaps; after grace_ms a SIGKILL follows. */
static void proc_stop(proc *p, int sig, int64_t grace_ms) {
  if (p->pid <= 0) return;
  kill(p->pid, sig);
  int64_t end = mu_mono_ms() + grace_ms;
  for (;;) {
    pid_t r = waitpid(p->pid, NULL, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) break;
    if (mu_mono_ms() >= end) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, NULL, 0);
      break;
    }
    usleep(10000);
  }
  p->pid = 0;
}

static int proc_alive(proc *p) {
  if (p->pid <= 0) return 0;
  if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
    p->pid = 0;
    return 0;
  }
  return 1;
}

/* --- rpc: one call at a time per member, on the loop --- */

typedef struct probe {
  int done;
  int code;
  int leader;         /* GetCluster: says it leads */
  uint32_t connected; /* GetCluster: agents_connected */
} probe;

static void on_cluster(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  probe *p = ud;
  p->done = 1;
  p->code = st->code;
  if (st->code != MU_RPC_OK) return;
  Muster__V1__Cluster *c = muster__v1__cluster__unpack(NULL, len, reply);
  if (c == NULL) return;
  p->leader = c->leader;
  p->connected = c->agents_connected;
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void on_cancel(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  probe *p = ud;
  (void)reply;
  (void)len;
  p->done = 1;
  p->code = st->code;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop for ms (simulated agents and replies progress meanwhile). */
static void run_for(bench *b, int64_t ms) {
  uv_timer_t t;
  uv_timer_init(b->loop, &t);
  uv_timer_start(&t, on_tick, (uint64_t)ms, 0);
  while (uv_is_active((uv_handle_t *)&t)) uv_run(b->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(b->loop, UV_RUN_NOWAIT);
}

/* Sends GetCluster (cancel=0) or a CancelJob of a job that does not exist (cancel=1: the
 * leader answers NOT_FOUND, anyone else UNAVAILABLE) to every live member at once and waits
 * for all answers (each bounded by the poll deadline). */
static void probe_all(bench *b, int cancel, probe ps[MEMBERS]) {
  uint8_t buf[64];
  size_t len;
  if (cancel) {
    Muster__V1__CancelJobRequest req = MUSTER__V1__CANCEL_JOB_REQUEST__INIT;
    req.job_id = PROBE_JOB;
    len = muster__v1__cancel_job_request__pack(&req, buf);
  } else {
    Muster__V1__GetClusterRequest req = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
    len = muster__v1__get_cluster_request__pack(&req, buf);
  }
  int64_t deadline = b->o.poll_ms * 10 < 500 ? 500 : b->o.poll_ms * 10;
  for (int i = 0; i < MEMBERS; i++) {
    ps[i] = (probe){.done = 1, .code = -1};
    if (b->member[i].pid <= 0 || b->ch[i] == NULL) continue;
    mu_err err = {0};
    ps[i].done = 0;
    if (mu_rpc_unary(b->ch[i], cancel ? "/muster.v1.Admin/CancelJob" : "/muster.v1.Admin/GetCluster", deadline, NULL,
                     buf, len, cancel ? on_cancel : on_cluster, &ps[i], &err) != 0)
      ps[i].done = 1;
  }
  for (;;) {
    int all = 1;
    for (int i = 0; i < MEMBERS; i++) all &= ps[i].done;
    if (all) return;
    uv_run(b->loop, UV_RUN_ONCE);
  }
}

/* The member that says it leads (GetCluster), or -1. */
static int find_leader(bench *b, uint32_t *ret_connected) {
  probe ps[MEMBERS];
  probe_all(b, 0, ps);
  for (int i = 0; i < MEMBERS; i++)
    if (ps[i].code == MU_RPC_OK && ps[i].leader) {
      if (ret_connected) *ret_connected = ps[i].connected;
      return i;
    }
  return -1;
}

/* --- simulated agents: a fleet pointed at one member (it does not follow redirects) --- */

static void on_fleet_stopped(void *ud) { *(int *)ud = 1; }

static void fleet_stop(bench *b) {
  if (b->fleet == NULL) return;
  int done = 0;
  mu_fleet_stop(b->fleet, on_fleet_stopped, &done);
  while (!done) uv_run(b->loop, UV_RUN_ONCE);
  mu_fleet_free(b->fleet);
  b->fleet = NULL;
  b->fleet_member = -1;
}

static int fleet_start(bench *b, int member, mu_err *err) {
  if (b->o.sim_agents == 0) return 0;
  fleet_stop(b);
  mu_fleet_config fc = {.target = b->addr[member],
                        .agents = b->o.sim_agents,
                        .agents_per_channel = 100,
                        .heartbeat_interval_ms = 1000,
                        .id_prefix = "sim"};
  int rc = mu_fleet_new(b->engine, &fc, &b->fleet, err);
  if (rc == 0) rc = mu_fleet_connect(b->fleet, err);
  if (rc == 0) b->fleet_member = member;
  return rc;
}

/* --- set-up --- */

static int start_member(bench *b, int i, mu_err *err) {
  /* a fresh channel: the old one may sit in gRPC's reconnect backoff after the kill */
  if (b->ch[i] != NULL) mu_rpc_channel_close(b->ch[i]);
  b->ch[i] = NULL;
  mu_rpc_options ro = {0};
  int rc = mu_rpc_channel_new(b->engine, b->addr[i], NULL, &ro, &b->ch[i], err);
  if (rc == 0) rc = proc_start(b, &b->member[i], err);
  if (rc != 0) return rc;
  int64_t end = mu_mono_ms() + b->o.timeout_ms;
  for (;;) { /* answers GetCluster (follower or leader) */
    probe ps[MEMBERS];
    probe_all(b, 0, ps);
    if (ps[i].code == MU_RPC_OK) return 0;
    if (!proc_alive(&b->member[i]))
      return mu_err_set(err, MU_EIO, "%s exited; see %s/%s.log", b->member[i].name, b->workdir, b->member[i].name);
    if (mu_mono_ms() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "%s did not answer within %lldms", b->member[i].name,
                        (long long)b->o.timeout_ms);
    run_for(b, 50);
  }
}

static int setup(bench *b, mu_err *err) {
  int cport[MEMBERS], pport[MEMBERS], mport[MEMBERS];
  int rc = 0;
  for (int i = 0; i < MEMBERS && rc == 0; i++) {
    rc = mu_bench_free_port(&cport[i], err);
    if (rc == 0) rc = mu_bench_free_port(&pport[i], err);
    if (rc == 0) rc = mu_bench_free_port(&mport[i], err);
  }
  if (rc != 0) return rc;
  char initial[512] = "";
  size_t off = 0;
  for (int i = 0; i < MEMBERS; i++) {
    off +=
        (size_t)snprintf(initial + off, sizeof initial - off, "%se%d=http://127.0.0.1:%d", i ? "," : "", i, pport[i]);
  }
  size_t uo = 0, co = 0;
  for (int i = 0; i < MEMBERS; i++) {
    uo +=
        (size_t)snprintf(b->etcd_urls + uo, sizeof b->etcd_urls - uo, "%shttp://127.0.0.1:%d", i ? "," : "", cport[i]);
    snprintf(b->addr[i], sizeof b->addr[i], "127.0.0.1:%d", mport[i]);
    co += (size_t)snprintf(b->control + co, sizeof b->control - co, "%s%s", i ? "," : "", b->addr[i]);
  }
  for (int i = 0; i < MEMBERS && rc == 0; i++) {
    char name[16], data[PATH_MAX + 32], client[64], peer[64];
    snprintf(name, sizeof name, "e%d", i);
    snprintf(data, sizeof data, "%s/etcd-%d", b->workdir, i);
    snprintf(client, sizeof client, "http://127.0.0.1:%d", cport[i]);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pport[i]);
    const char *args[] = {b->etcd_path,
                          "--name",
                          name,
                          "--data-dir",
                          data,
                          "--listen-client-urls",
                          client,
                          "--advertise-client-urls",
                          client,
                          "--listen-peer-urls",
                          peer,
                          "--initial-advertise-peer-urls",
                          peer,
                          "--initial-cluster",
                          initial,
                          "--initial-cluster-state",
                          "new",
                          "--initial-cluster-token",
                          "muster-failover-bench",
                          "--heartbeat-interval",
                          "50",
                          "--election-timeout",
                          "500",
                          NULL};
    char pname[32];
    snprintf(pname, sizeof pname, "etcd-%d", i);
    rc = proc_set(&b->etcd[i], pname, args);
    if (rc == 0) rc = proc_start(b, &b->etcd[i], err);
  }
  char ttl[32], grace[32], hb[32];
  snprintf(ttl, sizeof ttl, "%lldms", (long long)b->o.ttl_ms);
  snprintf(grace, sizeof grace, "%lldms", (long long)b->o.grace_ms);
  snprintf(hb, sizeof hb, "%lldms", (long long)b->o.hb_timeout_ms);
  for (int i = 0; i < MEMBERS && rc == 0; i++) {
    char id[16];
    snprintf(id, sizeof id, "cp-%c", 'a' + i);
    const char *args[] = {b->musterd_path,
                          "--listen",
                          b->addr[i],
                          "--advertise",
                          b->addr[i],
                          "--etcd",
                          b->etcd_urls,
                          "--member-id",
                          id,
                          "--leader-ttl",
                          ttl,
                          "--takeover-grace",
                          grace,
                          "--heartbeat-timeout",
                          hb,
                          "--etcd-prefix",
                          "/muster/",
                          "--insecure",
                          NULL};
    rc = proc_set(&b->member[i], id, args);
  }
  for (int i = 0; i < MEMBERS && rc == 0; i++) rc = start_member(b, i, err);
  if (rc != 0) return rc;
  b->agents = calloc(b->o.agents, sizeof *b->agents);
  if (b->agents == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  char rmax[32];
  snprintf(rmax, sizeof rmax, "%lldms", (long long)b->o.reconnect_max_ms);
  for (size_t i = 0; i < b->o.agents && rc == 0; i++) {
    char id[32], spool[PATH_MAX + 48], plugins[PATH_MAX + 16];
    snprintf(id, sizeof id, "agent-%zu", i);
    snprintf(spool, sizeof spool, "%s/spool-%zu", b->workdir, i);
    snprintf(plugins, sizeof plugins, "%s/plugins", b->workdir);
    mkdir(spool, 0755);
    mkdir(plugins, 0755);
    const char *args[] = {b->agent_path,
                          "--control",
                          b->control,
                          "--id",
                          id,
                          "--spool-dir",
                          spool,
                          "--plugin-dir",
                          plugins,
                          "--heartbeat-interval",
                          "1s",
                          "--insecure",
                          b->o.reconnect_max_ms > 0 ? "--reconnect-max" : NULL,
                          rmax,
                          NULL};
    rc = proc_set(&b->agents[i], id, args);
    if (rc == 0) rc = proc_start(b, &b->agents[i], err);
  }
  return rc;
}

static void teardown(bench *b) {
  fleet_stop(b);
  for (int i = 0; i < MEMBERS; i++) {
    if (b->ch[i] != NULL) mu_rpc_channel_close(b->ch[i]);
    b->ch[i] = NULL;
  }
  run_for(b, 20);
  for (size_t i = 0; b->agents != NULL && i < b->o.agents; i++) {
    proc_stop(&b->agents[i], SIGTERM, 5000);
    proc_free(&b->agents[i]);
  }
  free(b->agents);
  b->agents = NULL;
  for (int i = 0; i < MEMBERS; i++) {
    proc_stop(&b->member[i], SIGTERM, 10000);
    proc_free(&b->member[i]);
  }
  for (int i = 0; i < MEMBERS; i++) {
    proc_stop(&b->etcd[i], SIGTERM, 5000);
    proc_free(&b->etcd[i]);
  }
}

/* --- one run --- */

typedef struct run_result {
  double admin_ms, agents_ms;
  int from, to;
} run_result;

/* Waits for one leader with every agent (real and simulated) connected to it. */
static int wait_steady(bench *b, int *ret_leader, mu_err *err) {
  uint32_t want = (uint32_t)(b->o.agents + b->o.sim_agents);
  int64_t end = mu_mono_ms() + b->o.timeout_ms;
  uint32_t connected = 0;
  int leader = -1;
  for (;;) {
    connected = 0;
    leader = find_leader(b, &connected);
    if (leader >= 0 && b->o.sim_agents > 0 && b->fleet_member != leader) {
      mu_err ferr = {0};
      if (fleet_start(b, leader, &ferr) != 0) return mu_err_set(err, ferr.code, "%s", ferr.msg);
    }
    if (leader >= 0 && connected >= want) break;
    if (mu_mono_ms() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "no leader with %u agents within %lldms (leader %d, %u)", want,
                        (long long)b->o.timeout_ms, leader, connected);
    run_for(b, 100);
  }
  *ret_leader = leader;
  return 0;
}

static int one_run(bench *b, run_result *r, mu_err *err) {
  int leader = -1;
  int rc = wait_steady(b, &leader, err);
  if (rc != 0) return rc;
  uint32_t want = (uint32_t)(b->o.agents + b->o.sim_agents);
  r->from = leader;
  uint64_t t0 = uv_hrtime();
  proc_stop(&b->member[leader], SIGKILL, 1000);
  int64_t end = mu_mono_ms() + b->o.timeout_ms;
  int new_leader = -1;
  while (new_leader < 0) { /* (a) a member accepts a mutating admin call */
    uint64_t tick = uv_hrtime();
    probe ps[MEMBERS];
    probe_all(b, 1, ps);
    for (int i = 0; i < MEMBERS; i++)
      if (i != leader && ps[i].code != -1 && ps[i].code != MU_RPC_UNAVAILABLE &&
          ps[i].code != MU_RPC_DEADLINE_EXCEEDED && ps[i].code != MU_RPC_CANCELLED)
        new_leader = i;
    if (new_leader >= 0) break;
    if (mu_mono_ms() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "no member accepted admin calls within %lldms of the kill",
                        (long long)b->o.timeout_ms);
    int64_t spent = (int64_t)((uv_hrtime() - tick) / 1000000);
    if (spent < b->o.poll_ms) run_for(b, b->o.poll_ms - spent);
  }
  r->admin_ms = (double)(uv_hrtime() - t0) / 1e6;
  r->to = new_leader;
  mu_err ferr = {0};
  if (b->o.sim_agents > 0 && fleet_start(b, new_leader, &ferr) != 0)
    return mu_err_set(err, ferr.code, "simulated agents: %s", ferr.msg);
  for (;;) { /* (b) every agent connected to it */
    uint64_t tick = uv_hrtime();
    probe ps[MEMBERS];
    probe_all(b, 0, ps);
    if (ps[new_leader].code == MU_RPC_OK && ps[new_leader].connected >= want) break;
    if (mu_mono_ms() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "%u of %u agents on %s within %lldms of the kill", ps[new_leader].connected,
                        want, b->member[new_leader].name, (long long)b->o.timeout_ms);
    int64_t spent = (int64_t)((uv_hrtime() - tick) / 1000000);
    if (spent < b->o.poll_ms) run_for(b, b->o.poll_ms - spent);
  }
  r->agents_ms = (double)(uv_hrtime() - t0) / 1e6;
  return start_member(b, leader, err); /* back for the next run, as a follower */
}

/* --- figures --- */

static void report(const bench *b, const run_result *rs, size_t n) {
  double target = (double)b->o.ttl_ms + 1000.0;
  double *a = calloc(n, sizeof *a), *g = calloc(n, sizeof *g);
  if (a == NULL || g == NULL) {
    free(a);
    free(g);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    a[i] = rs[i].admin_ms;
    g[i] = rs[i].agents_ms;
    printf(
        "run %zu: %s killed -> %s accepts admin calls after %.0f ms, all %zu agents on it "
        "after %.0f ms\n",
        i + 1, b->member[rs[i].from].name, b->member[rs[i].to].name, rs[i].admin_ms, b->o.agents + b->o.sim_agents,
        rs[i].agents_ms);
  }
  const char *names[2] = {"failover_admin", "failover_agents"};
  double *vals[2] = {a, g};
  for (int k = 0; k < 2; k++) {
    double med = mu_bench_percentile(vals[k], n, 50), p99 = mu_bench_percentile(vals[k], n, 99);
    printf("%s_median: %.0f ms [target under %.0f ms with %.0f s TTL (within 1 s of lease expiry): %s]\n", names[k],
           med, target, (double)b->o.ttl_ms / 1000.0, med < target ? "met" : "missed");
    printf("%s_p99: %.0f ms [target under %.0f ms: %s]\n", names[k], p99, target, p99 < target ? "met" : "missed");
  }
  free(a);
  free(g);
}

/* --- main --- */

static int parse_dur(const char *flag, const char *text, int64_t min, int64_t *ret) {
  mu_err err = {0};
  if (mu_duration_parse(text, ret, &err) != 0 || *ret < min) {
    fprintf(stderr, "failover: --%s '%s': want a duration of at least %lldms\n", flag, text, (long long)min);
    return -1;
  }
  return 0;
}

static int parse_opts(int argc, char **argv, opts *o) {
  static const struct option lo[] = {{"runs", required_argument, NULL, 'r'},
                                     {"agents", required_argument, NULL, 'n'},
                                     {"sim-agents", required_argument, NULL, 'm'},
                                     {"ttl", required_argument, NULL, 't'},
                                     {"takeover-grace", required_argument, NULL, 'g'},
                                     {"heartbeat-timeout", required_argument, NULL, 'b'},
                                     {"poll", required_argument, NULL, 'p'},
                                     {"timeout", required_argument, NULL, 'T'},
                                     {"reconnect-max", required_argument, NULL, 'R'},
                                     {"musterd", required_argument, NULL, 'M'},
                                     {"agent", required_argument, NULL, 'A'},
                                     {"etcd", required_argument, NULL, 'E'},
                                     {"keep-work-dir", no_argument, NULL, 'k'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  *o = (opts){.runs = 5,
              .agents = 3,
              .ttl_ms = 5000,
              .grace_ms = 5000,
              .hb_timeout_ms = 15000,
              .poll_ms = 20,
              .timeout_ms = 60000};
  int c;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    char *end = NULL;
    long long v = 0;
    switch (c) {
      case 'r':
      case 'n':
      case 'm':
        v = strtoll(optarg, &end, 10);
        if (end == optarg || *end != '\0' || v < (c == 'm' ? 0 : 1) || v > 100000) {
          fprintf(stderr, "failover: bad count '%s'\n", optarg);
          return -1;
        }
        if (c == 'r') o->runs = (int)v;
        if (c == 'n') o->agents = (size_t)v;
        if (c == 'm') o->sim_agents = (size_t)v;
        break;
      case 't':
        if (parse_dur("ttl", optarg, 1000, &o->ttl_ms) != 0) return -1;
        break;
      case 'g':
        if (parse_dur("takeover-grace", optarg, 0, &o->grace_ms) != 0) return -1;
        break;
      case 'b':
        if (parse_dur("heartbeat-timeout", optarg, 1000, &o->hb_timeout_ms) != 0) return -1;
        break;
      case 'p':
        if (parse_dur("poll", optarg, 1, &o->poll_ms) != 0) return -1;
        break;
      case 'T':
        if (parse_dur("timeout", optarg, 1000, &o->timeout_ms) != 0) return -1;
        break;
      case 'R':
        if (parse_dur("reconnect-max", optarg, 1000, &o->reconnect_max_ms) != 0) return -1;
        break;
      case 'M': o->musterd_flag = optarg; break;
      case 'A': o->agent_flag = optarg; break;
      case 'E': o->etcd_flag = optarg; break;
      case 'k': o->keep = 1; break;
      case 'h': fputs(usage, stdout); exit(0);
      default: fputs(usage, stderr); return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "failover: unexpected argument '%s'\n%s", argv[optind], usage);
    return -1;
  }
  return 0;
}

static void on_engine_closed(void *ud) { *(int *)ud = 1; }

int main(int argc, char **argv) {
  bench b;
  memset(&b, 0, sizeof b);
  b.fleet_member = -1;
  if (parse_opts(argc, argv, &b.o) != 0) return 2;
  signal(SIGPIPE, SIG_IGN);
  mu_err err = {0};
  if (mu_bench_find_binary(b.o.musterd_flag, "musterd", "controlplane/musterd", argv[0], b.musterd_path, &err) != 0 ||
      mu_bench_find_binary(b.o.agent_flag, "agent", "agent/muster-agent", argv[0], b.agent_path, &err) != 0 ||
      mu_bench_find_binary(b.o.etcd_flag ? b.o.etcd_flag : "/usr/bin/etcd", "etcd", "etcd", argv[0], b.etcd_path,
                           &err) != 0) {
    fprintf(stderr, "failover: %s\n", err.msg);
    return 1;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(b.workdir, sizeof b.workdir, "%s/muster-failover.XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(b.workdir) == NULL) {
    fprintf(stderr, "failover: mkdtemp %s: %s\n", b.workdir, strerror(errno));
    return 1;
  }
  b.loop = uv_default_loop();
  if (mu_rpc_engine_new(b.loop, &b.engine, &err) != 0) {
    fprintf(stderr, "failover: %s\n", err.msg);
    return 1;
  }
  printf(
      "failover: 3 etcd, 3 musterd (TTL %lld ms, grace %lld ms), %zu real + %zu simulated "
      "agents, %d runs; work dir %s\n",
      (long long)b.o.ttl_ms, (long long)b.o.grace_ms, b.o.agents, b.o.sim_agents, b.o.runs, b.workdir);
  fflush(stdout);
  int status = 0;
  run_result *rs = calloc((size_t)b.o.runs, sizeof *rs);
  size_t done = 0;
  if (rs == NULL || setup(&b, &err) != 0) {
    fprintf(stderr, "failover: set-up: %s\n", rs ? err.msg : "out of memory");
    status = 1;
  }
  for (int i = 0; status == 0 && i < b.o.runs; i++) {
    if (one_run(&b, &rs[i], &err) != 0) {
      fprintf(stderr, "failover: run %d: %s (logs in %s)\n", i + 1, err.msg, b.workdir);
      status = 1;
      break;
    }
    fprintf(stderr, "failover: run %d: %.0f ms to admin calls, %.0f ms to all agents\n", i + 1, rs[i].admin_ms,
            rs[i].agents_ms);
    done++;
  }
  if (done > 0) report(&b, rs, done);
  teardown(&b);
  int closed = 0;
  mu_rpc_engine_close(b.engine, on_engine_closed, &closed);
  while (!closed) uv_run(b.loop, UV_RUN_ONCE);
  free(rs);
  if (!b.o.keep && status == 0) mu_bench_rm_tree(b.workdir);
  return status;
}
