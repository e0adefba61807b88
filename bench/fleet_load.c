/* fleet_load: starts a musterd, connects N simulated agents to it from this one process (one
 * libuv loop, one rpc engine, several channels), and prints how long registration took, what
 * musterd and one real idle muster-agent cost in memory, and the heartbeat rate it absorbed.
 * Figures go to stdout as "name: value unit", each next to the target with met/missed;
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
#include "bench/setup.h"
#include "bench/procstat.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "muster/v1/admin.pb-c.h"

/* The targets, for 1,000 agents. */
#define TARGET_REGISTER_MS 2000.0
#define TARGET_MUSTERD_MIB 100.0
#define TARGET_AGENT_RSS_MIB 8.0

#define STARTUP_TIMEOUT_MS 10000
#define AGENT_CONNECT_TIMEOUT_MS 15000
#define STOP_GRACE_MS 5000
#define REAL_AGENT_ID "fleet-load-real-agent"

static const char usage[] =
    "usage: fleet_load [--agents N] [--agents-per-channel N] [--heartbeat-interval DUR]\n"
    "                  [--hold DUR] [--idle-wait DUR] [--register-timeout DUR]\n"
    "                  [--poll-interval DUR] [--musterd PATH] [--agent PATH] [--keep-work-dir]\n"
    "\n"
    "Starts musterd on a free loopback port, opens N simulated agent streams against it,\n"
    "holds them for a while and prints registration time, memory and heartbeat figures.\n"
    "Defaults: 1000 agents, 100 per channel, heartbeat 5s, hold 5s, idle wait 3s,\n"
    "register timeout 60s, poll 50ms; binaries from the Bazel runfiles.\n";

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

typedef struct bench {
  bench_opts opts;
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
  int fleet_stopped;
  int failed;                  /* the run could not complete (exit 1) */
  int interrupted;
  uint64_t phase_start_ns;
  uint64_t stop_signal_ns;
  /* figures */
  mu_proc_mem musterd_idle;
  uint64_t musterd_cpu_ready_ms, musterd_cpu_hold_start_ms, musterd_cpu_hold_end_ms;
  uint64_t listed_ns;          /* ListAgents first showed all N; 0 when it never did */
  size_t listed_max;
  uint64_t hold_start_ns, hold_end_ns;
  uint64_t hb_hold_start, hb_hold_end;
  uint64_t agent_connected_ns;
  int agent_sampled, agent_gave_up;
  mu_proc_mem agent_mem;
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
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  *o = (bench_opts){.agents = 1000, .agents_per_channel = 100, .heartbeat_interval_ms = 5000,
                    .hold_ms = 5000, .idle_wait_ms = 3000, .register_timeout_ms = 60000,
                    .poll_ms = 50};
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
      case 'h': fputs(usage, stdout); exit(0);
      default:
        return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (rc != 0 && strchr("iHwtp", c) != NULL)
      return mu_err_prefix(err, "--%s", long_opts[idx].name);
    if (rc != 0) return rc;
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (o->heartbeat_interval_ms <= 0 || o->poll_ms <= 0 || o->hold_ms < 0)
    return mu_err_set(err, MU_EINVAL, "--heartbeat-interval and --poll-interval must be > 0");
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
      {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = fd},
      {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t po = {.file = args[0], .args = args, .exit_cb = on_child_exit,
                             .stdio_count = 3, .stdio = stdio};
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
  char *args[] = {b->musterd_path, "--listen", listen, "--heartbeat-timeout", timeout,
                  "--max-agents", max_agents, "--no-etcd", NULL};
  return child_spawn(b, &b->musterd, args, "musterd.log", err);
}

static int spawn_agent(bench *b, mu_err *err) {
  char spool[PATH_MAX + 16], plugins[PATH_MAX + 16], interval[32];
  snprintf(spool, sizeof spool, "%s/spool", b->workdir);
  snprintf(plugins, sizeof plugins, "%s/plugins", b->workdir);
  mkdir(spool, 0700);
  mkdir(plugins, 0700);
  snprintf(interval, sizeof interval, "%lldms", (long long)b->opts.heartbeat_interval_ms);
  char *args[] = {b->agent_path, "--control", b->target, "--id", REAL_AGENT_ID,
                  "--labels", "bench=real", "--spool-dir", spool, "--plugin-dir", plugins,
                  "--heartbeat-interval", interval, NULL};
  return child_spawn(b, &b->agent, args, "agent.log", err);
}

/* --- admin polls: one unary call at a time --- */

static void on_poll_reply(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud);

typedef struct poll_ctx {
  bench *b;
  enum poll_kind kind;
} poll_ctx;

static void poll_send(bench *b, enum poll_kind kind, const char *selector) {
  uint8_t buf[256];
  size_t len = 0;
  const char *path = "/muster.v1.Admin/GetCluster";
  if (kind != POLL_CLUSTER) {
    Muster__V1__ListAgentsRequest req = MUSTER__V1__LIST_AGENTS_REQUEST__INIT;
    req.selector = (char *)selector;
    req.state = MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
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
    if (kind != POLL_CLUSTER)
      mu_warn("fleet_load", "admin poll: %s: %s", mu_rpc_code_name(st->code), st->message);
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
  if (kind == POLL_FLEET) {
    if (resp->n_agents > b->listed_max) b->listed_max = resp->n_agents;
    if (resp->n_agents >= b->opts.agents && b->listed_ns == 0) b->listed_ns = now;
  } else if (kind == POLL_REAL_AGENT) {
    if (resp->n_agents == 1 && b->agent_connected_ns == 0) b->agent_connected_ns = now;
  } else if (kind == POLL_FRESH && b->phase == PH_FINAL) {
    /* An agent is fresh when musterd stored a heartbeat from it within one interval (plus
     * a second of slack) of the end of the hold. */
    int64_t since = mu_now_ms() - b->opts.heartbeat_interval_ms - 1000;
    for (size_t i = 0; i < resp->n_agents; i++)
      if (strcmp(resp->agents[i]->agent_id, REAL_AGENT_ID) != 0 &&
          resp->agents[i]->last_heartbeat_ms >= since)
        b->fresh_agents++;
    begin_stop(b);
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
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
        poll_send(b, POLL_CLUSTER, NULL);
      }
      break;
    case PH_REGISTER: {
      const mu_fleet_stats *fs = mu_fleet_stats_get(b->fleet);
      if (b->listed_ns != 0 && fs->welcomed == b->opts.agents) {
        begin_hold(b);
      } else if (in_phase > (double)b->opts.register_timeout_ms ||
                 (fs->failed > 0 && fs->failed + fs->welcomed >= b->opts.agents)) {
        mu_warn("fleet_load", "registration incomplete: %zu welcomed, %zu listed, %zu failed",
                fs->welcomed, b->listed_max, fs->failed);
        begin_hold(b);
      } else if (!b->poll_inflight) {
        poll_send(b, POLL_FLEET, "role=sim");
      }
      break;
    }
    case PH_HOLD: {
      double held = ms_since(b->hold_start_ns, now);
      if (!b->agent_sampled && !b->agent_gave_up) {
        if (b->agent.exited || (b->agent_connected_ns == 0 && held > AGENT_CONNECT_TIMEOUT_MS)) {
          mu_warn("fleet_load", "the real agent did not stay connected; see %s/agent.log",
                  b->workdir);
          b->agent_gave_up = 1;
        } else if (b->agent_connected_ns == 0) {
          if (!b->poll_inflight) poll_send(b, POLL_REAL_AGENT, "bench=real");
        } else if (ms_since(b->agent_connected_ns, now) >= (double)b->opts.idle_wait_ms) {
          sample_or_warn("muster-agent", b->agent.proc.pid, &b->agent_mem);
          b->agent_sampled = b->agent_mem.rss_kib > 0;
          if (!b->agent_sampled) b->agent_gave_up = 1;
        }
      }
      if (held >= (double)b->opts.hold_ms && (b->agent_sampled || b->agent_gave_up)) end_hold(b);
      break;
    }
    case PH_FINAL:
      if (!b->poll_inflight) poll_send(b, POLL_FRESH, "role=sim");
      break;
    case PH_STOP: {
      if (ms_since(b->stop_signal_ns, now) > STOP_GRACE_MS) {
        if (b->agent.started && !b->agent.exited) uv_process_kill(&b->agent.proc, SIGKILL);
        if (b->musterd.started && !b->musterd.exited) uv_process_kill(&b->musterd.proc, SIGKILL);
      }
      int children_gone = (!b->agent.started || b->agent.exited) &&
                          (!b->musterd.started || b->musterd.exited);
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
    case PH_DONE:
      break;
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

static void fig(const char *name, double value, int decimals, const char *unit) {
  printf("%s: %.*f %s\n", name, decimals, value, unit);
}

/* A figure next to its target ("< target unit") with met/missed; value < 0 means n/a. */
static void fig_target(const char *name, double value, int decimals, const char *unit,
                       double target) {
  if (value < 0)
    printf("%s: n/a %s  [target < %g %s: missed]\n", name, unit, target, unit);
  else
    printf("%s: %.*f %s  [target < %g %s: %s]\n", name, decimals, value, unit, target, unit,
           value < target ? "met" : "missed");
}

static void report(const bench *b) {
  const mu_fleet_stats *fs = mu_fleet_stats_get(b->fleet);
  double hold_s = (double)(b->hold_end_ns - b->hold_start_ns) / 1e9;
  printf("# fleet_load: musterd %s, agent %s\n", b->musterd_path, b->agent_path);
  fig("agents", (double)b->opts.agents, 0, "agents");
  fig("channels", (double)fs->channels, 0, "channels");
  fig("heartbeat_interval", (double)b->opts.heartbeat_interval_ms, 0, "ms");
  fig_target("register_all_welcomed", fs->all_welcomed_ns ? ms_since(fs->start_ns,
             fs->all_welcomed_ns) : -1, 1, "ms", TARGET_REGISTER_MS);
  fig_target("register_all_listed", b->listed_ns ? ms_since(fs->start_ns, b->listed_ns) : -1, 1,
             "ms", TARGET_REGISTER_MS);
  fig("register_poll_interval", (double)b->opts.poll_ms, 0, "ms");
  fig("welcomed", (double)fs->welcomed, 0, "agents");
  fig("streams_failed", (double)fs->failed, 0, "agents");
  if (fs->first_error[0] != '\0') printf("# first failed stream: %s\n", fs->first_error);
  fig("musterd_idle_rss", mib(b->musterd_idle.rss_kib), 1, "MiB");
  fig_target("musterd_rss", b->musterd_sampled ? mib(b->musterd_mem.rss_kib) : -1, 1, "MiB",
             TARGET_MUSTERD_MIB);
  fig_target("musterd_pss", b->musterd_sampled ? mib(b->musterd_mem.pss_kib) : -1, 1, "MiB",
             TARGET_MUSTERD_MIB);
  fig("musterd_private_dirty", mib(b->musterd_mem.private_dirty_kib), 1, "MiB");
  fig("musterd_threads", (double)b->musterd_mem.threads, 0, "threads");
  fig("musterd_sockets", (double)b->musterd_sockets, 0, "sockets");
  fig("musterd_cpu_register", (double)(b->musterd_cpu_hold_start_ms - b->musterd_cpu_ready_ms),
      0, "ms");
  fig("musterd_cpu_hold", hold_s > 0 ? (double)(b->musterd_cpu_hold_end_ms -
      b->musterd_cpu_hold_start_ms) / 10.0 / hold_s : 0, 1, "%");
  fig("hold", hold_s * 1000.0, 0, "ms");
  fig("heartbeats_per_s", hold_s > 0 ? (double)(b->hb_hold_end - b->hb_hold_start) / hold_s : 0,
      1, "heartbeats/s");
  fig("heartbeats_fresh", (double)b->fresh_agents, 0, "agents");
  fig_target("agent_rss", b->agent_sampled ? mib(b->agent_mem.rss_kib) : -1, 2, "MiB",
             TARGET_AGENT_RSS_MIB);
  fig("agent_pss", mib(b->agent_mem.pss_kib), 2, "MiB");
  fig("agent_private_dirty", mib(b->agent_mem.private_dirty_kib), 2, "MiB");
  fig("agent_threads", (double)b->agent_mem.threads, 0, "threads");
  fig("load_tool_rss", mib(b->self_mem.rss_kib), 1, "MiB");
  fig("load_tool_cpu_register", (double)(b->self_cpu_hold_start_ms - b->self_cpu_ready_ms), 0,
      "ms");
  fig("load_tool_cpu_hold", hold_s > 0 ? (double)(b->self_cpu_hold_end_ms -
      b->self_cpu_hold_start_ms) / 10.0 / hold_s : 0, 1, "%");
}

/* --- main --- */

static int bench_setup(bench *b, const char *argv0, mu_err *err) {
  int port = 0;
  int rc;
  if ((rc = mu_bench_find_binary(b->opts.musterd_flag, "musterd", "controlplane/musterd", argv0,
                        b->musterd_path, err)) != 0 ||
      (rc = mu_bench_find_binary(b->opts.agent_flag, "agent", "agent/muster-agent", argv0,
                        b->agent_path, err)) != 0 ||
      (rc = mu_bench_free_port(&port, err)) != 0)
    return rc;
  snprintf(b->target, sizeof b->target, "127.0.0.1:%d", port);
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(b->workdir, sizeof b->workdir, "%s/fleet_load.XXXXXX", tmp);
  if (mkdtemp(b->workdir) == NULL)
    return mu_err_set(err, MU_EIO, "cannot create a work dir under %s: %s", tmp, strerror(errno));
  if ((rc = mu_rpc_engine_new(b->loop, &b->engine, err)) != 0) return rc;
  mu_rpc_options admin_opts = {.max_message = 64u << 20};
  if ((rc = mu_rpc_channel_new(b->engine, b->target, NULL, &admin_opts, &b->admin, err)) != 0)
    return rc;
  mu_fleet_config fc = {.target = b->target, .agents = b->opts.agents,
                        .agents_per_channel = b->opts.agents_per_channel,
                        .heartbeat_interval_ms = b->opts.heartbeat_interval_ms,
                        .id_prefix = "sim"};
  if ((rc = mu_fleet_new(b->engine, &fc, &b->fleet, err)) != 0) return rc;
  return spawn_musterd(b, err);
}

int main(int argc, char **argv) {
  bench b;
  mu_err err = {0};
  memset(&b, 0, sizeof b);
  signal(SIGPIPE, SIG_IGN);
  if (parse_opts(argc, argv, &b.opts, &err) != 0) {
    fprintf(stderr, "fleet_load: %s\n%s", err.msg, usage);
    return 2;
  }
  raise_nofile();
  b.loop = uv_default_loop();
  b.musterd.name = "musterd";
  b.agent.name = "muster-agent";
  if (bench_setup(&b, argv[0], &err) != 0) {
    fprintf(stderr, "fleet_load: %s\n", err.msg);
    if (b.engine != NULL) {
      if (b.admin != NULL) mu_rpc_channel_close(b.admin);
      mu_rpc_engine_close(b.engine, NULL, NULL);
      uv_run(b.loop, UV_RUN_DEFAULT);
    }
    mu_fleet_free(b.fleet);
    if (b.workdir[0] != '\0') mu_bench_rm_tree(b.workdir);
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
  if (completed) report(&b);
  mu_fleet_free(b.fleet);
  if (completed && !b.opts.keep_work_dir)
    mu_bench_rm_tree(b.workdir);
  else
    fprintf(stderr, "fleet_load: logs kept in %s\n", b.workdir);
  return completed ? 0 : 1;
}
