/* fleet_load: starts a musterd, connects N simulated agents to it from this one process (one
 * libuv loop, one rpc engine, several channels), and prints how long registration took, what
 * musterd and one real idle muster-agent cost in memory, and the heartbeat rate it absorbed.
 * With --tls both (the default) it does that twice, plaintext (musterd --insecure) and then
 * over mTLS (every agent its own certificate and connection), and compares the two.
 * Figures go to stdout as "name: value unit", each next to the issue's target with met/missed;
 * nothing is asserted: the exit code is 0 whenever the run completed (see docs/benchmarks.md). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/fleet.h"
#include "bench/pki_setup.h"
#include "bench/setup.h"
#include "bench/procstat.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "muster/v1/admin.pb-c.h"

/* The issue's targets, for 1,000 agents. */
#define TARGET_REGISTER_MS 2000.0
#define TARGET_MUSTERD_MIB 100.0
#define TARGET_AGENT_RSS_MIB 8.0
#define TARGET_REGISTER_MTLS_MS 3000.0 /* issue 12: mTLS registration */
#define TARGET_MTLS_RATIO 1.5          /* ... and at most 1.5 x the plaintext time */

#define STARTUP_TIMEOUT_MS 10000
#define AGENT_CONNECT_TIMEOUT_MS 15000
#define STOP_GRACE_MS 5000
#define REAL_AGENT_ID "fleet-load-real-agent"

static const char usage[] =
    "usage: fleet_load [--agents N] [--agents-per-channel N] [--heartbeat-interval DUR]\n"
    "                  [--hold DUR] [--idle-wait DUR] [--register-timeout DUR]\n"
    "                  [--poll-interval DUR] [--musterd PATH] [--agent PATH] [--keep-work-dir]\n"
    "                  [--tls both|on|off]\n"
    "\n"
    "Starts musterd on a free loopback port, opens N simulated agent streams against it,\n"
    "holds them for a while and prints registration time, memory and heartbeat figures.\n"
    "--tls both (default) does it plaintext (musterd --insecure), then over mTLS with a CA made\n"
    "for the run (each agent its own certificate and connection), and compares them.\n"
    "Defaults: 1000 agents, heartbeat 5s, hold 5s, idle wait 3s, register timeout 60s, poll\n"
    "50ms; agents per channel 1 (100 with --tls off; mTLS is always 1); binaries from the\n"
    "Bazel runfiles.\n";

typedef struct bench_opts {
  size_t agents;
  size_t agents_per_channel;
  int64_t heartbeat_interval_ms;
  int64_t hold_ms;
  int64_t idle_wait_ms;
  int64_t register_timeout_ms;
  int64_t poll_ms;
  const char *musterd_flag;
  const char *agent_flag;
  int keep_work_dir;
  int tls_modes; /* MU_BENCH_PLAIN | MU_BENCH_MTLS */
} bench_opts;

typedef struct child {
  const char *name;
  uv_process_t proc;
  int started;
  int exited;
  int64_t exit_status;
  int term_signal;
} child;

enum phase { PH_READY, PH_REGISTER, PH_HOLD, PH_FINAL, PH_STOP, PH_DONE };
enum poll_kind { POLL_CLUSTER, POLL_FLEET, POLL_REAL_AGENT, POLL_FRESH };

/* One run: one musterd, plaintext or mTLS. */
typedef struct bench {
  bench_opts opts;
  const mu_bench_pki *pki; /* NULL: a plaintext run */
  const char *prefix;      /* of every figure's name: "" plaintext, "mtls_" */
  uv_loop_t *loop;
  mu_rpc_engine *engine;
  mu_rpc_channel *admin;
  mu_fleet *fleet;
  uv_timer_t tick;
  uv_signal_t sigint;
  char musterd_path[PATH_MAX];
  char agent_path[PATH_MAX];
  char workdir[PATH_MAX];
  char target[64];
  child musterd, agent;
  enum phase phase;
  int poll_inflight;
  char poll_token[256]; /* ListAgents: the next page's token ("" = first page) */
  size_t poll_seen;     /* ListAgents: agents counted on the pages so far */
  size_t poll_fresh;    /* ListAgents: fresh agents on the pages so far */
  int fleet_stopped;
  int failed; /* the run could not complete (exit 1) */
  int interrupted;
  uint64_t phase_start_ns;
  uint64_t stop_signal_ns;
  /* figures */
  mu_proc_mem musterd_idle;
  uint64_t musterd_cpu_ready_ms, musterd_cpu_hold_start_ms, musterd_cpu_hold_end_ms;
  uint64_t listed_ns; /* ListAgents first showed all N; 0 when it never did */
  size_t listed_max;
  uint64_t hold_start_ns, hold_end_ns;
  uint64_t hb_hold_start, hb_hold_end;
  uint64_t agent_connected_ns;
  int agent_sampled, agent_gave_up;
  mu_proc_mem agent_mem;
  mu_proc_mem xs_mem; /* its exec server, when it has one */
  int musterd_sampled;
  mu_proc_mem musterd_mem, self_mem;
  uint32_t musterd_sockets;
  uint64_t self_cpu_ready_ms, self_cpu_hold_start_ms, self_cpu_hold_end_ms;
  size_t fresh_agents;
} bench;

static double ms_since(uint64_t from_ns, uint64_t to_ns) { return (double)(to_ns - from_ns) / 1e6; }
static double mib(uint64_t kib) { return (double)kib / 1024.0; }

/* --- setup: flags, limits, binaries, a free port, the work dir --- */

static int parse_count(const char *flag, const char *text, size_t *ret, mu_err *err) {
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0 || v > 1000000)
    return mu_err_set(err, MU_EINVAL, "--%s: expected a count 1..1000000, got '%s'", flag, text);
  *ret = (size_t)v;
  return 0;
}

static int parse_opts(int argc, char **argv, bench_opts *o, mu_err *err) {
  static const struct option long_opts[] = {
      {"agents", required_argument, NULL, 'n'},
      {"agents-per-channel", required_argument, NULL, 'c'},
      {"heartbeat-interval", required_argument, NULL, 'i'},
      {"hold", required_argument, NULL, 'H'},
      {"idle-wait", required_argument, NULL, 'w'},
      {"register-timeout", required_argument, NULL, 't'},
      {"poll-interval", required_argument, NULL, 'p'},
      {"musterd", required_argument, NULL, 'm'},
      {"agent", required_argument, NULL, 'a'},
      {"keep-work-dir", no_argument, NULL, 'k'},
      {"tls", required_argument, NULL, 'T'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  *o = (bench_opts){.agents = 1000,
                    .heartbeat_interval_ms = 5000,
                    .hold_ms = 5000,
                    .idle_wait_ms = 3000,
                    .register_timeout_ms = 60000,
                    .poll_ms = 50,
                    .tls_modes = MU_BENCH_PLAIN | MU_BENCH_MTLS};
  int c;
  int idx = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
    int rc = 0;
    switch (c) {
      case 'n': rc = parse_count("agents", optarg, &o->agents, err); break;
      case 'c': rc = parse_count("agents-per-channel", optarg, &o->agents_per_channel, err); break;
      case 'i': rc = mu_duration_parse(optarg, &o->heartbeat_interval_ms, err); break;
      case 'H': rc = mu_duration_parse(optarg, &o->hold_ms, err); break;
      case 'w': rc = mu_duration_parse(optarg, &o->idle_wait_ms, err); break;
      case 't': rc = mu_duration_parse(optarg, &o->register_timeout_ms, err); break;
      case 'p': rc = mu_duration_parse(optarg, &o->poll_ms, err); break;
      case 'm': o->musterd_flag = optarg; break;
      case 'a': o->agent_flag = optarg; break;
      case 'k': o->keep_work_dir = 1; break;
      case 'T': rc = mu_bench_tls_parse(optarg, &o->tls_modes, err); break;
      case 'h': fputs(usage, stdout); exit(0);
      default: return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (rc != 0 && strchr("iHwtp", c) != NULL) return mu_err_prefix(err, "--%s", long_opts[idx].name);
    if (rc != 0) return rc;
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (o->heartbeat_interval_ms <= 0 || o->poll_ms <= 0 || o->hold_ms < 0)
    return mu_err_set(err, MU_EINVAL, "--heartbeat-interval and --poll-interval must be > 0");
  /* A TLS connection has one identity, so mTLS agents have one each; the plaintext run they
   * are compared with does the same unless told otherwise. */
  if (o->agents_per_channel == 0) o->agents_per_channel = o->tls_modes == MU_BENCH_PLAIN ? 100 : 1;
  if (o->tls_modes == MU_BENCH_MTLS && o->agents_per_channel != 1)
    return mu_err_set(err, MU_EINVAL,
                      "--agents-per-channel: over mTLS every agent has its own "
                      "connection (1), got %zu",
                      o->agents_per_channel);
  return 0;
}

/* 1,000 agents over few channels need few descriptors, but one channel per agent needs one
 * each (and musterd, our child, inherits the limit). */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) mu_warn("fleet_load", "cannot raise RLIMIT_NOFILE");
}

/* --- children --- */

static void on_child_exit(uv_process_t *proc, int64_t status, int signal) {
  child *c = proc->data;
  c->exited = 1;
  c->exit_status = status;
  c->term_signal = signal;
  uv_close((uv_handle_t *)proc, NULL);
}

static int child_spawn(bench *b, child *c, char **args, const char *log_name, mu_err *err) {
  char log_path[PATH_MAX + 32];
  snprintf(log_path, sizeof log_path, "%s/%s", b->workdir, log_name);
  int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return mu_err_set(err, MU_EIO, "cannot create %s: %s", log_path, strerror(errno));
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = fd}, {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t po = {.file = args[0], .args = args, .exit_cb = on_child_exit, .stdio_count = 3, .stdio = stdio};
  c->proc.data = c;
  int rc = uv_spawn(b->loop, &c->proc, &po);
  close(fd);
  if (rc != 0) return mu_err_set(err, MU_EIO, "cannot start %s: %s", args[0], uv_strerror(rc));
  c->started = 1;
  mu_info("fleet_load", "started %s (pid %d), log %s", c->name, c->proc.pid, log_path);
  return 0;
}

static int spawn_musterd(bench *b, mu_err *err) {
  char listen[64], timeout[32], max_agents[32];
  int64_t hb_timeout = b->opts.heartbeat_interval_ms * 3;
  if (hb_timeout < 15000) hb_timeout = 15000;
  snprintf(listen, sizeof listen, "%s", b->target);
  snprintf(timeout, sizeof timeout, "%lldms", (long long)hb_timeout);
  snprintf(max_agents, sizeof max_agents, "%zu", b->opts.agents + 16);
  char *args[16] = {b->musterd_path, "--listen",     listen,     "--heartbeat-timeout",
                    timeout,         "--max-agents", max_agents, "--no-etcd"};
  const mu_bench_pki *p = b->pki;
  size_t n = 8;
  n += mu_bench_pki_daemon_args(p, p ? p->server_cert : NULL, p ? p->server_key : NULL, args + n);
  args[n] = NULL;
  return child_spawn(b, &b->musterd, args, "musterd.log", err);
}

static int spawn_agent(bench *b, mu_err *err) {
  char spool[PATH_MAX + 16], plugins[PATH_MAX + 16], interval[32];
  snprintf(spool, sizeof spool, "%s/spool", b->workdir);
  snprintf(plugins, sizeof plugins, "%s/plugins", b->workdir);
  mkdir(spool, 0700);
  mkdir(plugins, 0700);
  snprintf(interval, sizeof interval, "%lldms", (long long)b->opts.heartbeat_interval_ms);
  char cert[PATH_MAX + 16], key[PATH_MAX + 16];
  if (b->pki != NULL) {
    int rc = mu_bench_pki_issue_files(b->pki, "agent", REAL_AGENT_ID, cert, key, err);
    if (rc != 0) return rc;
  }
  char *args[24] = {b->agent_path, "--control",   b->target, "--id",         REAL_AGENT_ID, "--labels",
                    "bench=real",  "--spool-dir", spool,     "--plugin-dir", plugins,       "--heartbeat-interval",
                    interval};
  size_t n = 13;
  n += mu_bench_pki_daemon_args(b->pki, cert, key, args + n);
  args[n] = NULL;
  return child_spawn(b, &b->agent, args, "agent.log", err);
}

/* --- admin polls: one unary call at a time --- */

static void on_poll_reply(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud);

typedef struct poll_ctx {
  bench *b;
  enum poll_kind kind;
} poll_ctx;

static const char *poll_selector(enum poll_kind kind) { return kind == POLL_REAL_AGENT ? "bench=real" : "role=sim"; }

/* ListAgents is paged: a poll reads every page (b->poll_token) before it counts. */
static void poll_send(bench *b, enum poll_kind kind) {
  uint8_t buf[512];
  size_t len = 0;
  const char *path = "/muster.v1.Admin/GetCluster";
  if (kind != POLL_CLUSTER) {
    Muster__V1__ListAgentsRequest req = MUSTER__V1__LIST_AGENTS_REQUEST__INIT;
    req.selector = (char *)poll_selector(kind);
    req.state = MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
    req.page_size = 10000;
    req.page_token = b->poll_token;
    if (b->poll_token[0] == '\0') b->poll_seen = b->poll_fresh = 0; /* a new poll */
    len = muster__v1__list_agents_request__pack(&req, buf);
    path = "/muster.v1.Admin/ListAgents";
  }
  poll_ctx *ctx = malloc(sizeof *ctx);
  if (ctx == NULL) return;
  *ctx = (poll_ctx){b, kind};
  mu_err err = {0};
  if (mu_rpc_unary(b->admin, path, 5000, NULL, buf, len, on_poll_reply, ctx, &err) != 0) {
    mu_warn("fleet_load", "poll %s: %s", path, err.msg);
    free(ctx);
    return;
  }
  b->poll_inflight = 1;
}

/* The agent's exec server (`muster-exec --server`, its child): part of an idle agent's cost.
 * Zeroes when there is none. */
static void sample_exec_server(pid_t agent, mu_proc_mem *ret) {
  memset(ret, 0, sizeof *ret);
  char path[64], kids[512] = "";
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)agent, (int)agent);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  if (fgets(kids, sizeof kids, f) == NULL) kids[0] = '\0';
  fclose(f);
  for (char *save = NULL, *tok = strtok_r(kids, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
    char comm[64] = "";
    snprintf(path, sizeof path, "/proc/%s/comm", tok);
    FILE *c = fopen(path, "r");
    if (c == NULL) continue;
    if (fgets(comm, sizeof comm, c) == NULL) comm[0] = '\0';
    fclose(c);
    mu_err err = {0};
    if (strncmp(comm, "muster-exec", 11) == 0 && mu_proc_mem_read((pid_t)atoi(tok), ret, &err) == 0) return;
  }
}

static void sample_or_warn(const char *what, pid_t pid, mu_proc_mem *ret) {
  mu_err err = {0};
  if (mu_proc_mem_read(pid, ret, &err) != 0) mu_warn("fleet_load", "%s: %s", what, err.msg);
}

static uint64_t cpu_or_zero(pid_t pid) {
  uint64_t ms = 0;
  mu_proc_cpu_ms(pid, &ms, NULL);
  return ms;
}

static void begin_hold(bench *b) {
  b->phase = PH_HOLD;
  b->hold_start_ns = uv_hrtime();
  b->hb_hold_start = mu_fleet_stats_get(b->fleet)->heartbeats;
  b->musterd_cpu_hold_start_ms = cpu_or_zero(b->musterd.proc.pid);
  b->self_cpu_hold_start_ms = cpu_or_zero(getpid());
  mu_err err = {0};
  if (spawn_agent(b, &err) != 0) {
    mu_warn("fleet_load", "real agent: %s", err.msg);
    b->agent_gave_up = 1;
  }
  mu_info("fleet_load", "holding %zu agents for %lldms", mu_fleet_stats_get(b->fleet)->welcomed,
          (long long)b->opts.hold_ms);
}

static void begin_stop(bench *b);

static void on_poll_reply(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  poll_ctx *ctx = ud;
  bench *b = ctx->b;
  enum poll_kind kind = ctx->kind;
  free(ctx);
  b->poll_inflight = 0;
  if (st->code != MU_RPC_OK) {
    b->poll_token[0] = '\0'; /* the next poll starts over */
    if (kind != POLL_CLUSTER) mu_warn("fleet_load", "admin poll: %s: %s", mu_rpc_code_name(st->code), st->message);
    return;
  }
  uint64_t now = uv_hrtime();
  if (kind == POLL_CLUSTER) {
    if (b->phase != PH_READY) return;
    mu_err err = {0};
    sample_or_warn("musterd", b->musterd.proc.pid, &b->musterd_idle);
    b->musterd_cpu_ready_ms = cpu_or_zero(b->musterd.proc.pid);
    b->self_cpu_ready_ms = cpu_or_zero(getpid());
    mu_info("fleet_load", "musterd ready; connecting %zu agents", b->opts.agents);
    b->phase = PH_REGISTER;
    b->phase_start_ns = now;
    if (mu_fleet_connect(b->fleet, &err) != 0) {
      mu_error("fleet_load", "%s", err.msg);
      b->failed = 1;
      begin_stop(b);
    }
    return;
  }
  Muster__V1__ListAgentsResponse *resp = muster__v1__list_agents_response__unpack(NULL, len, reply);
  if (resp == NULL) {
    mu_warn("fleet_load", "ListAgents: cannot decode the %zu-byte reply", len);
    return;
  }
  b->poll_seen += resp->n_agents;
  if (kind == POLL_FRESH) {
    /* An agent is fresh when musterd stored a heartbeat from it within one interval (plus
     * a second of slack) of the end of the hold. */
    int64_t since = mu_now_ms() - b->opts.heartbeat_interval_ms - 1000;
    for (size_t i = 0; i < resp->n_agents; i++)
      if (strcmp(resp->agents[i]->agent_id, REAL_AGENT_ID) != 0 && resp->agents[i]->last_heartbeat_ms >= since)
        b->poll_fresh++;
  }
  snprintf(b->poll_token, sizeof b->poll_token, "%s", resp->next_page_token);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  if (b->poll_token[0] != '\0') { /* more pages: this poll is not over */
    poll_send(b, kind);
    return;
  }
  if (kind == POLL_FLEET) {
    if (b->poll_seen > b->listed_max) b->listed_max = b->poll_seen;
    if (b->poll_seen >= b->opts.agents && b->listed_ns == 0) b->listed_ns = now;
  } else if (kind == POLL_REAL_AGENT) {
    if (b->poll_seen == 1 && b->agent_connected_ns == 0) b->agent_connected_ns = now;
  } else if (kind == POLL_FRESH && b->phase == PH_FINAL) {
    b->fresh_agents = b->poll_fresh;
    begin_stop(b);
  }
}

/* --- the state machine, driven by one timer --- */

static void end_hold(bench *b) {
  b->hold_end_ns = uv_hrtime();
  b->hb_hold_end = mu_fleet_stats_get(b->fleet)->heartbeats;
  b->musterd_cpu_hold_end_ms = cpu_or_zero(b->musterd.proc.pid);
  b->self_cpu_hold_end_ms = cpu_or_zero(getpid());
  sample_or_warn("musterd", b->musterd.proc.pid, &b->musterd_mem);
  b->musterd_sampled = b->musterd_mem.rss_kib > 0;
  sample_or_warn("fleet_load", getpid(), &b->self_mem);
  mu_proc_socket_count(b->musterd.proc.pid, &b->musterd_sockets, NULL);
  b->phase = PH_FINAL;
}

static void on_fleet_stopped(void *ud) {
  bench *b = ud;
  b->fleet_stopped = 1;
}

static void begin_stop(bench *b) {
  if (b->phase == PH_STOP || b->phase == PH_DONE) return;
  b->phase = PH_STOP;
  b->stop_signal_ns = uv_hrtime();
  mu_fleet_stop(b->fleet, on_fleet_stopped, b);
  if (b->agent.started && !b->agent.exited) uv_process_kill(&b->agent.proc, SIGTERM);
  if (b->musterd.started && !b->musterd.exited) uv_process_kill(&b->musterd.proc, SIGTERM);
}

static void on_engine_closed(void *ud) {
  bench *b = ud;
  b->phase = PH_DONE;
}

static void on_tick(uv_timer_t *t) {
  bench *b = t->data;
  uint64_t now = uv_hrtime();
  double in_phase = ms_since(b->phase_start_ns, now);
  if (b->phase != PH_STOP && b->musterd.exited) {
    mu_error("fleet_load", "musterd exited early (status %lld, signal %d); see %s/musterd.log",
             (long long)b->musterd.exit_status, b->musterd.term_signal, b->workdir);
    b->failed = 1;
    begin_stop(b);
  }
  switch (b->phase) {
    case PH_READY:
      if (in_phase > STARTUP_TIMEOUT_MS) {
        mu_error("fleet_load", "musterd did not answer GetCluster within %dms", STARTUP_TIMEOUT_MS);
        b->failed = 1;
        begin_stop(b);
      } else if (!b->poll_inflight) {
        poll_send(b, POLL_CLUSTER);
      }
      break;
    case PH_REGISTER: {
      const mu_fleet_stats *fs = mu_fleet_stats_get(b->fleet);
      if (b->listed_ns != 0 && fs->welcomed == b->opts.agents) {
        begin_hold(b);
      } else if (in_phase > (double)b->opts.register_timeout_ms ||
                 (fs->failed > 0 && fs->failed + fs->welcomed >= b->opts.agents)) {
        mu_warn("fleet_load", "registration incomplete: %zu welcomed, %zu listed, %zu failed", fs->welcomed,
                b->listed_max, fs->failed);
        begin_hold(b);
      } else if (!b->poll_inflight) {
        poll_send(b, POLL_FLEET);
      }
      break;
    }
    case PH_HOLD: {
      double held = ms_since(b->hold_start_ns, now);
      if (!b->agent_sampled && !b->agent_gave_up) {
        if (b->agent.exited || (b->agent_connected_ns == 0 && held > AGENT_CONNECT_TIMEOUT_MS)) {
          mu_warn("fleet_load", "the real agent did not stay connected; see %s/agent.log", b->workdir);
          b->agent_gave_up = 1;
        } else if (b->agent_connected_ns == 0) {
          if (!b->poll_inflight) poll_send(b, POLL_REAL_AGENT);
        } else if (ms_since(b->agent_connected_ns, now) >= (double)b->opts.idle_wait_ms) {
          sample_or_warn("muster-agent", b->agent.proc.pid, &b->agent_mem);
          sample_exec_server(b->agent.proc.pid, &b->xs_mem);
          b->agent_sampled = b->agent_mem.rss_kib > 0;
          if (!b->agent_sampled) b->agent_gave_up = 1;
        }
      }
      if (held >= (double)b->opts.hold_ms && (b->agent_sampled || b->agent_gave_up)) end_hold(b);
      break;
    }
    case PH_FINAL:
      if (!b->poll_inflight) poll_send(b, POLL_FRESH);
      break;
    case PH_STOP: {
      if (ms_since(b->stop_signal_ns, now) > STOP_GRACE_MS) {
        if (b->agent.started && !b->agent.exited) uv_process_kill(&b->agent.proc, SIGKILL);
        if (b->musterd.started && !b->musterd.exited) uv_process_kill(&b->musterd.proc, SIGKILL);
      }
      int children_gone = (!b->agent.started || b->agent.exited) && (!b->musterd.started || b->musterd.exited);
      if (b->fleet_stopped && children_gone && !b->poll_inflight) {
        uv_timer_stop(&b->tick);
        uv_close((uv_handle_t *)&b->tick, NULL);
        uv_close((uv_handle_t *)&b->sigint, NULL);
        mu_rpc_channel_close(b->admin);
        b->admin = NULL;
        mu_rpc_engine_close(b->engine, on_engine_closed, b);
      }
      break;
    }
    case PH_DONE: break;
  }
}

static void on_sigint(uv_signal_t *h, int signum) {
  bench *b = h->data;
  (void)signum;
  mu_warn("fleet_load", "interrupted; stopping");
  b->interrupted = 1;
  begin_stop(b);
}

/* --- the report --- */

static void fig(const bench *b, const char *name, double value, int decimals, const char *unit) {
  printf("%s%s: %.*f %s\n", b->prefix, name, decimals, value, unit);
}

/* A figure next to its target ("< target unit") with met/missed; value < 0 means n/a. */
static void fig_target(const bench *b, const char *name, double value, int decimals, const char *unit, double target) {
  if (value < 0) printf("%s%s: n/a %s  [target < %g %s: missed]\n", b->prefix, name, unit, target, unit);
  else
    printf("%s%s: %.*f %s  [target < %g %s: %s]\n", b->prefix, name, decimals, value, unit, target, unit,
           value < target ? "met" : "missed");
}

/* What the mTLS run is compared on; a value < 0 was not measured. */
typedef struct run_summary {
  double welcomed_ms, listed_ms, musterd_rss_mib, musterd_cpu_ms, load_tool_cpu_ms;
} run_summary;

static void report(const bench *b, run_summary *ret) {
  const mu_fleet_stats *fs = mu_fleet_stats_get(b->fleet);
  double hold_s = (double)(b->hold_end_ns - b->hold_start_ns) / 1e9;
  double target = b->pki ? TARGET_REGISTER_MTLS_MS : TARGET_REGISTER_MS;
  *ret = (run_summary){.welcomed_ms = fs->all_welcomed_ns ? ms_since(fs->start_ns, fs->all_welcomed_ns) : -1,
                       .listed_ms = b->listed_ns ? ms_since(fs->start_ns, b->listed_ns) : -1,
                       .musterd_rss_mib = b->musterd_sampled ? mib(b->musterd_mem.rss_kib) : -1,
                       .musterd_cpu_ms = (double)(b->musterd_cpu_hold_start_ms - b->musterd_cpu_ready_ms),
                       .load_tool_cpu_ms = (double)(b->self_cpu_hold_start_ms - b->self_cpu_ready_ms)};
  printf("# fleet_load %s: musterd %s, agent %s\n", b->pki ? "over mTLS" : "plaintext (--insecure)", b->musterd_path,
         b->agent_path);
  fig(b, "agents", (double)b->opts.agents, 0, "agents");
  fig(b, "channels", (double)fs->channels, 0, "channels");
  fig(b, "heartbeat_interval", (double)b->opts.heartbeat_interval_ms, 0, "ms");
  if (b->pki != NULL)
    printf(
        "%sagent_certs_issued: %zu certificates in %.1f ms (%.3f ms each; set-up, before the "
        "first Connect)\n",
        b->prefix, fs->certs, (double)fs->cert_issue_ns / 1e6,
        fs->certs ? (double)fs->cert_issue_ns / 1e6 / (double)fs->certs : 0);
  fig_target(b, "register_all_welcomed", ret->welcomed_ms, 1, "ms", target);
  fig_target(b, "register_all_listed", ret->listed_ms, 1, "ms", target);
  fig(b, "register_poll_interval", (double)b->opts.poll_ms, 0, "ms");
  fig(b, "welcomed", (double)fs->welcomed, 0, "agents");
  fig(b, "streams_failed", (double)fs->failed, 0, "agents");
  if (fs->first_error[0] != '\0') printf("# first failed stream: %s\n", fs->first_error);
  fig(b, "musterd_idle_rss", mib(b->musterd_idle.rss_kib), 1, "MiB");
  fig_target(b, "musterd_rss", b->musterd_sampled ? mib(b->musterd_mem.rss_kib) : -1, 1, "MiB", TARGET_MUSTERD_MIB);
  fig_target(b, "musterd_pss", b->musterd_sampled ? mib(b->musterd_mem.pss_kib) : -1, 1, "MiB", TARGET_MUSTERD_MIB);
  fig(b, "musterd_private_dirty", mib(b->musterd_mem.private_dirty_kib), 1, "MiB");
  fig(b, "musterd_threads", (double)b->musterd_mem.threads, 0, "threads");
  fig(b, "musterd_sockets", (double)b->musterd_sockets, 0, "sockets");
  fig(b, "musterd_cpu_register", (double)(b->musterd_cpu_hold_start_ms - b->musterd_cpu_ready_ms), 0, "ms");
  fig(b, "musterd_cpu_hold",
      hold_s > 0 ? (double)(b->musterd_cpu_hold_end_ms - b->musterd_cpu_hold_start_ms) / 10.0 / hold_s : 0, 1, "%");
  fig(b, "hold", hold_s * 1000.0, 0, "ms");
  fig(b, "heartbeats_per_s", hold_s > 0 ? (double)(b->hb_hold_end - b->hb_hold_start) / hold_s : 0, 1, "heartbeats/s");
  fig(b, "heartbeats_fresh", (double)b->fresh_agents, 0, "agents");
  fig_target(b, "agent_rss", b->agent_sampled ? mib(b->agent_mem.rss_kib) : -1, 2, "MiB", TARGET_AGENT_RSS_MIB);
  fig(b, "agent_pss", mib(b->agent_mem.pss_kib), 2, "MiB");
  fig(b, "agent_private_dirty", mib(b->agent_mem.private_dirty_kib), 2, "MiB");
  fig(b, "agent_threads", (double)b->agent_mem.threads, 0, "threads");
  fig(b, "agent_exec_server_rss", mib(b->xs_mem.rss_kib), 2, "MiB");
  fig(b, "agent_exec_server_pss", mib(b->xs_mem.pss_kib), 2, "MiB");
  fig(b, "agent_exec_server_private_dirty", mib(b->xs_mem.private_dirty_kib), 2, "MiB");
  fig(b, "load_tool_rss", mib(b->self_mem.rss_kib), 1, "MiB");
  fig(b, "load_tool_cpu_register", (double)(b->self_cpu_hold_start_ms - b->self_cpu_ready_ms), 0, "ms");
  fig(b, "load_tool_cpu_hold",
      hold_s > 0 ? (double)(b->self_cpu_hold_end_ms - b->self_cpu_hold_start_ms) / 10.0 / hold_s : 0, 1, "%");
}

/* --- main --- */

static int bench_setup(bench *b, const char *argv0, mu_err *err) {
  int port = 0;
  int rc;
  rc = mu_bench_find_binary(b->opts.musterd_flag, "musterd", "controlplane/musterd", argv0, b->musterd_path, err);
  if (rc == 0) rc = mu_bench_find_binary(b->opts.agent_flag, "agent", "agent/muster-agent", argv0, b->agent_path, err);
  if (rc == 0) rc = mu_bench_free_port(&port, err);
  if (rc != 0) return rc;
  snprintf(b->target, sizeof b->target, "127.0.0.1:%d", port);
  if (mkdir(b->workdir, 0700) != 0) return mu_err_set(err, MU_EIO, "cannot create %s: %s", b->workdir, strerror(errno));
  rc = mu_rpc_engine_new(b->loop, &b->engine, err);
  if (rc != 0) return rc;
  /* thousands of simulated agents' calls: spread them (lib/rpc/rpc.h) */
  rc = mu_rpc_engine_add_queues(b->engine, 7, err);
  if (rc != 0) return rc;
  mu_rpc_options admin_opts = {.max_message = 64u << 20};
  mu_rpc_creds admin_creds = b->pki ? mu_bench_pki_admin_creds(b->pki) : (mu_rpc_creds){0};
  rc = mu_rpc_channel_new(b->engine, b->target, &admin_creds, &admin_opts, &b->admin, err);
  if (rc != 0) return rc;
  mu_fleet_config fc = {.target = b->target,
                        .agents = b->opts.agents,
                        .agents_per_channel = b->opts.agents_per_channel,
                        .heartbeat_interval_ms = b->opts.heartbeat_interval_ms,
                        .id_prefix = "sim"};
  rc = mu_fleet_new(b->engine, &fc, &b->fleet, err);
  if (rc != 0) return rc;
  if (b->pki != NULL) {
    mu_info("fleet_load", "issuing %zu agent certificates", b->opts.agents);
    rc = mu_fleet_use_tls(b->fleet, b->pki->ca, b->pki->ca_cert_pem, NULL, err);
    if (rc != 0) return rc;
  }
  return spawn_musterd(b, err);
}

/* One musterd and its fleet, plaintext (pki NULL) or over mTLS, in workdir (created here).
 * 0 when the run completed and *ret holds its figures (printed already), 1 otherwise. */
static int run_once(const bench_opts *o, const char *argv0, const char *workdir, const mu_bench_pki *pki,
                    run_summary *ret) {
  static bench b; /* one run at a time */
  mu_err err = {0};
  memset(&b, 0, sizeof b);
  b.opts = *o;
  b.pki = pki;
  b.prefix = pki ? "mtls_" : "";
  if (pki != NULL) b.opts.agents_per_channel = 1;
  snprintf(b.workdir, sizeof b.workdir, "%s", workdir);
  b.loop = uv_default_loop();
  b.musterd.name = "musterd";
  b.agent.name = "muster-agent";
  if (bench_setup(&b, argv0, &err) != 0) {
    fprintf(stderr, "fleet_load: %s\n", err.msg);
    if (b.engine != NULL) {
      if (b.admin != NULL) mu_rpc_channel_close(b.admin);
      mu_rpc_engine_close(b.engine, NULL, NULL);
      uv_run(b.loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(b.loop);
    mu_fleet_free(b.fleet);
    return 1;
  }
  uv_timer_init(b.loop, &b.tick);
  b.tick.data = &b;
  uv_signal_init(b.loop, &b.sigint);
  b.sigint.data = &b;
  uv_signal_start(&b.sigint, on_sigint, SIGINT);
  b.phase = PH_READY;
  b.phase_start_ns = uv_hrtime();
  uv_timer_start(&b.tick, on_tick, 0, (uint64_t)b.opts.poll_ms);
  uv_run(b.loop, UV_RUN_DEFAULT);
  uv_loop_close(b.loop);
  int completed = !b.failed && !b.interrupted && b.hold_end_ns != 0;
  if (completed) report(&b, ret);
  fflush(stdout);
  mu_fleet_free(b.fleet);
  return completed ? 0 : 1;
}

/* mTLS against plaintext: "<figure>: R x" with the issue's target when it set one. */
static void compare(const char *name, double mtls, double plain, double target) {
  if (mtls < 0 || plain <= 0) {
    printf("mtls_vs_plain_%s: n/a\n", name);
  } else if (target > 0) {
    printf("mtls_vs_plain_%s: %.2f x  [target <= %g x: %s]\n", name, mtls / plain, target,
           mtls / plain <= target ? "met" : "missed");
  } else {
    printf("mtls_vs_plain_%s: %.2f x\n", name, mtls / plain);
  }
}

int main(int argc, char **argv) {
  bench_opts o;
  mu_err err = {0};
  signal(SIGPIPE, SIG_IGN);
  if (parse_opts(argc, argv, &o, &err) != 0) {
    fprintf(stderr, "fleet_load: %s\n%s", err.msg, usage);
    return 2;
  }
  raise_nofile();
  char top[PATH_MAX], dir[PATH_MAX + 16];
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(top, sizeof top, "%s/fleet_load.XXXXXX", tmp);
  if (mkdtemp(top) == NULL) {
    fprintf(stderr, "fleet_load: cannot create a work dir under %s: %s\n", tmp, strerror(errno));
    return 1;
  }
  mu_bench_pki pki = {0};
  int failed = 0;
  run_summary plain = {-1, -1, -1, -1, -1}, mtls = plain;
  if (o.tls_modes & MU_BENCH_MTLS) {
    snprintf(dir, sizeof dir, "%s/pki", top);
    if (mu_bench_pki_make(&pki, dir, &err) != 0) {
      fprintf(stderr, "fleet_load: %s\n", err.msg);
      failed = 1;
    } else {
      printf("# mTLS: CA, server and admin certificates made in %.1f ms (%s)\n", pki.setup_ms, dir);
    }
  }
  if (!failed && (o.tls_modes & MU_BENCH_PLAIN)) {
    snprintf(dir, sizeof dir, "%s/plain", top);
    failed = run_once(&o, argv[0], dir, NULL, &plain);
  }
  if (!failed && (o.tls_modes & MU_BENCH_MTLS)) {
    snprintf(dir, sizeof dir, "%s/mtls", top);
    failed = run_once(&o, argv[0], dir, &pki, &mtls);
  }
  if (!failed && o.tls_modes == (MU_BENCH_PLAIN | MU_BENCH_MTLS)) {
    printf("# mTLS (%zu agents, 1 per connection) against plaintext (%zu per connection)\n", o.agents,
           o.agents_per_channel);
    compare("register_all_welcomed", mtls.welcomed_ms, plain.welcomed_ms, TARGET_MTLS_RATIO);
    compare("register_all_listed", mtls.listed_ms, plain.listed_ms, TARGET_MTLS_RATIO);
    compare("musterd_rss", mtls.musterd_rss_mib, plain.musterd_rss_mib, 0);
    compare("musterd_cpu_register", mtls.musterd_cpu_ms, plain.musterd_cpu_ms, 0);
    compare("load_tool_cpu_register", mtls.load_tool_cpu_ms, plain.load_tool_cpu_ms, 0);
  }
  mu_bench_pki_free(&pki);
  if (!failed && !o.keep_work_dir) mu_bench_rm_tree(top);
  else fprintf(stderr, "fleet_load: logs kept in %s\n", top);
  return failed ? 1 : 0;
}
