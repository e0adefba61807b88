/* fanout: times `muster run -- hostname` end to end. For each fleet size it starts a fresh
 * musterd, connects that many simulated agents (bench/fleet, which answer each Assign at once)
 * and runs the real CLI K times, plaintext (--insecure) and then over mTLS (--tls both, the
 * default; a CA made for the run, every agent its own certificate and connection), and
 * compares the two; then the same across R real muster-agent processes; then
 * pdsh, clush and ansible over a private loopback sshd (bench/peers/ssh_peers.sh). Prints
 * "name: value unit" figures with met/missed next to the issue's targets and never asserts
 * them: the exit code is 0 whenever the run completed (see docs/benchmarks.md). */
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
#include "bench/procstat.h"
#include "bench/setup.h"
#include "bench/stats.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "muster/v1/admin.pb-c.h"

#define TARGET_1000_MS 1000.0   /* 1,000 hosts end to end */
#define TARGET_SPEEDUP 100.0    /* vs pdsh and clush at 100 hosts */
#define TARGET_MTLS_SLOWER 10.0 /* issue 12: mTLS at most 10 % slower than plaintext */
#define STARTUP_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 60000
#define RUN_TIMEOUT_MS 120000
#define STOP_GRACE_MS 5000

static const char usage[] =
    "usage: fanout [--agents N] [--sizes N,N,...] [--runs K] [--real-agents R]\n"
    "              [--peers | --no-peers] [--peer-sizes N,N,...] [--peer-runs K]\n"
    "              [--peer-timeout DUR] [--musterd PATH] [--cli PATH] [--agent PATH]\n"
    "              [--peers-script PATH] [--keep-work-dir] [--tls both|on|off]\n"
    "              [--agents-per-channel N]\n"
    "\n"
    "Times `muster -o json run -- hostname` from submit to the last result: across N simulated\n"
    "agents for each size (default 1000,100,10; --agents N sets the first), across R real\n"
    "muster-agent processes (default 10; 0 skips), and pdsh/clush/ansible over SSH to\n"
    "loopback targets (default sizes 10,100, 3 runs each). K = 10 runs per case by default.\n"
    "--tls both (default) runs every case plaintext (--insecure), then over mTLS with a CA\n"
    "made for the run, and compares them. Simulated agents: 1 per connection (100 with\n"
    "--tls off; mTLS is always 1).\n";

#include "bench/fanout.h"

double fanout_ms_between(uint64_t a, uint64_t b) { return (double)(b - a) / 1e6; }

/* --- running the loop until something happens --- */

static void on_tick(uv_timer_t *t) { (void)t; }

static int run_until(bench *b, const int *flag, int64_t timeout_ms) {
  return mu_bench_run_until(b->loop, flag, &b->interrupted, timeout_ms);
}

static void on_signal(uv_signal_t *h, int signum) {
  bench *b = h->data;
  mu_warn("fanout", "signal %d: stopping", signum);
  b->interrupted = 1;
}

/* --- child processes --- */

static void on_line(proc *p, const char *line) {
  if (p->match == NULL || strstr(line, p->match) == NULL) return;
  p->seen_flag = 1;
  p->results++;
  p->last_result_ns = uv_hrtime();
  if (p->match_ok != NULL && strstr(line, p->match_ok) != NULL) p->ok++;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char chunk[65536]; /* the loop is single-threaded; the data is consumed at once */
  (void)suggested;
  *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_pipe_closed(uv_handle_t *h) {
  proc *p = h->data;
  p->out_open = 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  proc *p = s->data;
  if (n < 0) {
    if (p->line_len > 0) {
      p->line[p->line_len] = '\0';
      on_line(p, p->line);
      p->line_len = 0;
    }
    uv_close((uv_handle_t *)s, on_pipe_closed);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      p->line[p->line_len] = '\0';
      on_line(p, p->line);
      p->line_len = 0;
    } else if (p->line_len < sizeof p->line - 1) {
      p->line[p->line_len++] = c;
    }
  }
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig) {
  proc *p = h->data;
  p->exit_ns = uv_hrtime();
  p->status = status;
  p->sig = sig;
  p->exited = 1;
  uv_close((uv_handle_t *)h, NULL);
}

int fanout_proc_spawn(bench *b, proc *p, char **argv, int capture, const char *log_name, mu_err *err) {
  char log_path[PATH_MAX + 64];
  snprintf(log_path, sizeof log_path, "%s/%s", b->workdir, log_name);
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return mu_err_set(err, MU_EIO, "cannot create %s: %s", log_path, strerror(errno));
  const char *match = p->match, *match_ok = p->match_ok;
  memset(p, 0, sizeof *p);
  p->match = match;
  p->match_ok = match_ok;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = fd}, {.flags = UV_INHERIT_FD, .data.fd = fd}};
  if (capture) {
    uv_pipe_init(b->loop, &p->out, 0);
    p->out.data = p;
    p->out_open = 1;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
  }
  uv_process_options_t po = {.file = argv[0], .args = argv, .exit_cb = on_exit_cb, .stdio_count = 3, .stdio = stdio};
  p->h.data = p;
  p->start_ns = uv_hrtime();
  int rc = uv_spawn(b->loop, &p->h, &po);
  close(fd);
  if (rc != 0) {
    /* libuv has initialised the handles even though nothing started: close them */
    uv_close((uv_handle_t *)&p->h, NULL);
    if (capture) uv_close((uv_handle_t *)&p->out, on_pipe_closed);
    uv_run(b->loop, UV_RUN_NOWAIT);
    return mu_err_set(err, MU_EIO, "cannot start %s: %s", argv[0], uv_strerror(rc));
  }
  p->started = 1;
  if (capture) uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
  return 0;
}

int fanout_proc_wait(bench *b, proc *p, int64_t timeout_ms) {
  int done = 0;
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000ull;
  int killed = 0;
  while (!done) {
    done = p->exited && !p->out_open;
    if (done) break;
    if (!killed && (b->interrupted || uv_hrtime() >= end)) {
      if (!p->exited) uv_process_kill(&p->h, SIGKILL);
      killed = 1;
    }
    uv_run(b->loop, UV_RUN_ONCE);
  }
  return killed ? MU_ETIMEDOUT : 0;
}

static void proc_stop(bench *b, proc *p) {
  if (!p->started || p->exited) return;
  uv_process_kill(&p->h, SIGTERM);
  if (fanout_proc_wait(b, p, STOP_GRACE_MS) != 0) mu_warn("fanout", "pid %d needed SIGKILL", p->h.pid);
}

/* --- setup helpers (as in fleet_load) --- */

static int parse_list(const char *flag, const char *text, size_t *ret, size_t *ret_n, mu_err *err) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", text);
  size_t n = 0;
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
    char *end = NULL;
    unsigned long long v = strtoull(t, &end, 10);
    if (end == t || *end != '\0' || v == 0 || v > 100000 || n == MAX_SIZES)
      return mu_err_set(err, MU_EINVAL, "--%s: expected up to %d counts 1..100000, got '%s'", flag, MAX_SIZES, text);
    ret[n++] = (size_t)v;
  }
  if (n == 0) return mu_err_set(err, MU_EINVAL, "--%s: empty list", flag);
  *ret_n = n;
  return 0;
}

static int parse_count(const char *flag, const char *text, size_t max, size_t *ret, mu_err *err) {
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v > max)
    return mu_err_set(err, MU_EINVAL, "--%s: expected a count 0..%zu, got '%s'", flag, max, text);
  *ret = (size_t)v;
  return 0;
}

static int parse_opts(int argc, char **argv, opts *o, mu_err *err) {
  static const struct option lo[] = {{"agents", required_argument, NULL, 'n'},
                                     {"sizes", required_argument, NULL, 's'},
                                     {"runs", required_argument, NULL, 'k'},
                                     {"real-agents", required_argument, NULL, 'r'},
                                     {"peers", no_argument, NULL, 'P'},
                                     {"no-peers", no_argument, NULL, 'N'},
                                     {"peer-sizes", required_argument, NULL, 'S'},
                                     {"peer-runs", required_argument, NULL, 'K'},
                                     {"peer-timeout", required_argument, NULL, 'T'},
                                     {"musterd", required_argument, NULL, 'm'},
                                     {"cli", required_argument, NULL, 'c'},
                                     {"agent", required_argument, NULL, 'a'},
                                     {"peers-script", required_argument, NULL, 'x'},
                                     {"keep-work-dir", no_argument, NULL, 'w'},
                                     {"tls", required_argument, NULL, 't'},
                                     {"agents-per-channel", required_argument, NULL, 'C'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  *o = (opts){.sizes = {1000, 100, 10},
              .n_sizes = 3,
              .peer_sizes = {10, 100},
              .n_peer_sizes = 2,
              .runs = 10,
              .real_agents = 10,
              .peer_runs = 3,
              .peers = 1,
              .peer_timeout_ms = 300000,
              .tls_modes = MU_BENCH_PLAIN | MU_BENCH_MTLS};
  int c, rc = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case 'n': rc = parse_count("agents", optarg, 100000, &o->sizes[0], err); break;
      case 's': rc = parse_list("sizes", optarg, o->sizes, &o->n_sizes, err); break;
      case 'k': rc = parse_count("runs", optarg, MAX_RUNS, &o->runs, err); break;
      case 'r': rc = parse_count("real-agents", optarg, 1000, &o->real_agents, err); break;
      case 'P': o->peers = 1; break;
      case 'N': o->peers = 0; break;
      case 'S': rc = parse_list("peer-sizes", optarg, o->peer_sizes, &o->n_peer_sizes, err); break;
      case 'K': rc = parse_count("peer-runs", optarg, MAX_RUNS, &o->peer_runs, err); break;
      case 'T':
        rc = mu_duration_parse(optarg, &o->peer_timeout_ms, err);
        if (rc != 0) mu_err_prefix(err, "--peer-timeout");
        break;
      case 'm': o->musterd_flag = optarg; break;
      case 'c': o->cli_flag = optarg; break;
      case 'a': o->agent_flag = optarg; break;
      case 'x': o->script_flag = optarg; break;
      case 'w': o->keep_work_dir = 1; break;
      case 't': rc = mu_bench_tls_parse(optarg, &o->tls_modes, err); break;
      case 'C': rc = parse_count("agents-per-channel", optarg, 100000, &o->agents_per_channel, err); break;
      case 'h': fputs(usage, stdout); exit(0);
      default: return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (rc != 0) return rc;
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (o->sizes[0] == 0 || o->runs == 0) return mu_err_set(err, MU_EINVAL, "--agents and --runs must be at least 1");
  /* mTLS agents have a connection each; the plaintext run they are compared with too */
  if (o->agents_per_channel == 0) o->agents_per_channel = o->tls_modes == MU_BENCH_PLAIN ? 100 : 1;
  return 0;
}

/* --- statistics and the report --- */

double fanout_percentile(const samples *s, double p) {
  double v[MAX_RUNS];
  memcpy(v, s->v, s->n * sizeof v[0]);
  return mu_bench_percentile(v, s->n, p);
}

void fanout_add_sample(samples *s, double v) {
  if (s->n < MAX_RUNS) s->v[s->n++] = v;
}

void fanout_print_samples(const char *name, const samples *s) {
  if (s->n == 0) {
    printf("%s_median: n/a ms\n", name);
    return;
  }
  printf(
      "%s_median: %.1f ms\n%s_p99: %.1f ms\n%s_min: %.1f ms\n%s_runs: %zu runs (%zu "
      "incomplete)\n",
      name, fanout_percentile(s, 50), name, fanout_percentile(s, 99), name, fanout_percentile(s, 0), name, s->n,
      s->incomplete);
  fflush(stdout);
}

static void load_average(char *buf, size_t size) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (f == NULL || fgets(buf, (int)size, f) == NULL) snprintf(buf, size, "?\n");
  if (f != NULL) fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
}

/* --- musterd and its admin API --- */

static void on_cluster(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  bench *b = ud;
  b->cluster_inflight = 0;
  if (st->code != MU_RPC_OK) return;
  Muster__V1__Cluster *c = muster__v1__cluster__unpack(NULL, len, reply);
  if (c == NULL) return;
  b->cluster_agents = c->agents_connected;
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

/* Polls GetCluster every 50 ms until it reports at least `agents` connected. */
static int wait_cluster(bench *b, uint32_t agents, int64_t timeout_ms, mu_err *err) {
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000ull;
  b->cluster_agents = (uint32_t)-1;
  for (;;) {
    if (b->cluster_agents != (uint32_t)-1 && b->cluster_agents >= agents) return 0;
    if (b->musterd.exited)
      return mu_err_set(err, MU_EIO, "musterd exited (status %lld); see %s/musterd.log", (long long)b->musterd.status,
                        b->workdir);
    if (b->interrupted) return mu_err_set(err, MU_ECANCELED, "interrupted");
    if (uv_hrtime() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "musterd at %s: %u of %u agents connected after %lldms", b->target,
                        b->cluster_agents == (uint32_t)-1 ? 0 : b->cluster_agents, agents, (long long)timeout_ms);
    if (!b->cluster_inflight) {
      Muster__V1__GetClusterRequest req = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
      uint8_t buf[16];
      size_t len = muster__v1__get_cluster_request__pack(&req, buf);
      if (mu_rpc_unary(b->admin, "/muster.v1.Admin/GetCluster", 2000, NULL, buf, len, on_cluster, b, err) != 0)
        return err->code;
      b->cluster_inflight = 1;
    }
    run_until(b, NULL, 50);
  }
}

static int musterd_start(bench *b, size_t max_agents, mu_err *err) {
  int port = 0;
  int rc = mu_bench_free_port(&port, err);
  if (rc != 0) return rc;
  snprintf(b->target, sizeof b->target, "127.0.0.1:%d", port);
  char maxa[32];
  snprintf(maxa, sizeof maxa, "%zu", max_agents + 16);
  char *args[16] = {b->musterd_path, "--listen", b->target, "--heartbeat-timeout", "60s", "--max-agents", maxa};
  size_t n = 7;
  if (b->no_etcd) args[n++] = "--no-etcd";
  const mu_bench_pki *p = b->tls;
  n += mu_bench_pki_daemon_args(p, p ? p->server_cert : NULL, p ? p->server_key : NULL, args + n);
  args[n] = NULL;
  b->musterd.match = NULL;
  rc = fanout_proc_spawn(b, &b->musterd, args, 0, "musterd.log", err);
  if (rc != 0) return rc;
  mu_rpc_options ao = {.max_message = 64u << 20};
  mu_rpc_creds creds = p ? mu_bench_pki_admin_creds(p) : (mu_rpc_creds){0};
  rc = mu_rpc_channel_new(b->engine, b->target, &creds, &ao, &b->admin, err);
  if (rc != 0) return rc;
  return wait_cluster(b, 0, STARTUP_TIMEOUT_MS, err);
}

static void musterd_stop(bench *b) {
  if (b->admin != NULL) mu_rpc_channel_close(b->admin);
  b->admin = NULL;
  run_until(b, NULL, 20); /* let cancelled polls report */
  proc_stop(b, &b->musterd);
}

/* --- one timed `muster run`: the CLI, and the API directly --- */

/* Spawns `muster --addr T -o json run -- hostname`; adds spawn→exit to total and
 * spawn→last result line to last. */
static void cli_run(bench *b, size_t expect, samples *total, samples *last) {
  proc p = {.match = "\"taskId\"", .match_ok = "\"SUCCEEDED\""};
  char *args[24] = {b->cli_path, "--addr", b->target};
  size_t n = 3;
  if (b->tls != NULL) {
    char *tls[] = {"--ca",  (char *)b->tls->ca_file,  "--cert", (char *)b->tls->admin_cert,
                   "--key", (char *)b->tls->admin_key};
    memcpy(args + n, tls, sizeof tls);
    n += sizeof tls / sizeof tls[0];
  }
  char *rest[] = {"--timeout", "60s", "-o", "json", "run", "--", "hostname", NULL};
  memcpy(args + n, rest, sizeof rest);
  mu_err err = {0};
  if (fanout_proc_spawn(b, &p, args, 1, "cli.log", &err) != 0) {
    mu_warn("fanout", "%s", err.msg);
    total->incomplete++;
    return;
  }
  int rc = fanout_proc_wait(b, &p, RUN_TIMEOUT_MS);
  int complete = rc == 0 && p.status == 0 && p.ok == expect;
  if (!complete) {
    mu_warn("fanout", "muster run: exit %lld, %zu results, %zu ok of %zu%s; see %s/cli.log", (long long)p.status,
            p.results, p.ok, expect, rc ? " (killed)" : "", b->workdir);
    total->incomplete++;
    last->incomplete++;
  }
  fanout_add_sample(total, fanout_ms_between(p.start_ns, p.exit_ns));
  if (p.results > 0) fanout_add_sample(last, fanout_ms_between(p.start_ns, p.last_result_ns));
}

typedef struct api_run {
  bench *b;
  uint64_t submit_ns, reply_ns, last_ns;
  uint32_t targets;
  size_t finals, ok;
  int done, failed, watch_open;
  mu_rpc_call *watch;
} api_run;

static int on_job_event(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  api_run *r = ud;
  (void)call;
  Muster__V1__JobEvent *ev = muster__v1__job_event__unpack(NULL, len, data);
  if (ev == NULL) return 0;
  if (ev->task != NULL && ev->output == NULL && ev->progress == NULL &&
      ev->task->state >= MUSTER__V1__TASK_STATE__SUCCEEDED && !ev->task->retry_pending) {
    r->finals++;
    if (ev->task->state == MUSTER__V1__TASK_STATE__SUCCEEDED) r->ok++;
    r->last_ns = uv_hrtime();
  }
  if (ev->job_state >= MUSTER__V1__JOB_STATE__JOB_SUCCEEDED || r->finals >= r->targets) r->done = 1;
  protobuf_c_message_free_unpacked(&ev->base, NULL);
  return 0;
}

static void on_watch_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  api_run *r = ud;
  (void)call;
  (void)st;
  r->watch = NULL;
  r->watch_open = 0;
  if (!r->done) r->failed = 1;
  r->done = 1;
}

static void on_submitted(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  api_run *r = ud;
  r->reply_ns = uv_hrtime();
  Muster__V1__SubmitJobResponse *resp =
      st->code == MU_RPC_OK ? muster__v1__submit_job_response__unpack(NULL, len, reply) : NULL;
  if (resp == NULL) {
    mu_warn("fanout", "RunAdhoc: %s: %s", mu_rpc_code_name(st->code), st->message);
    r->failed = r->done = 1;
    return;
  }
  r->targets = resp->targets;
  Muster__V1__WatchJobRequest req = MUSTER__V1__WATCH_JOB_REQUEST__INIT;
  req.job_id = resp->job_id;
  uint8_t buf[256];
  size_t n = muster__v1__watch_job_request__get_packed_size(&req);
  mu_rpc_call_handlers h = {.on_message = on_job_event, .on_done = on_watch_done};
  mu_err err = {0};
  if (n > sizeof buf ||
      mu_rpc_call_new(r->b->admin, "/muster.v1.Admin/WatchJob", RUN_TIMEOUT_MS, NULL, &h, r, &r->watch, &err) != 0) {
    mu_warn("fanout", "WatchJob: %s", n > sizeof buf ? "job id too long" : err.msg);
    r->failed = r->done = 1;
  } else {
    r->watch_open = 1;
    muster__v1__watch_job_request__pack(&req, buf);
    mu_rpc_call_send(r->watch, buf, n, &err);
    mu_rpc_call_close_send(r->watch);
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* RunAdhoc then WatchJob on the bench's own channel: submit→last and reply→last result. */
static void api_run_once(bench *b, size_t expect, samples *submit_last, samples *reply_last) {
  api_run r = {.b = b};
  char *cmd[] = {"hostname"};
  Muster__V1__Target t = MUSTER__V1__TARGET__INIT;
  t.all = 1;
  Muster__V1__RunAdhocRequest req = MUSTER__V1__RUN_ADHOC_REQUEST__INIT;
  req.target = &t;
  req.command = cmd;
  req.n_command = 1;
  uint8_t buf[256];
  size_t n = muster__v1__run_adhoc_request__pack(&req, buf);
  mu_err err = {0};
  r.submit_ns = uv_hrtime();
  if (mu_rpc_unary(b->admin, "/muster.v1.Admin/RunAdhoc", 30000, NULL, buf, n, on_submitted, &r, &err) != 0) {
    mu_warn("fanout", "RunAdhoc: %s", err.msg);
    submit_last->incomplete++;
    return;
  }
  if (run_until(b, &r.done, RUN_TIMEOUT_MS + 5000) != 0) r.failed = 1;
  if (r.watch != NULL) mu_rpc_call_cancel(r.watch, MU_RPC_CANCELLED, "bench: job done");
  while (r.watch_open || r.reply_ns == 0) uv_run(b->loop, UV_RUN_ONCE); /* r is on our stack */
  if (r.failed || r.ok != expect) {
    mu_warn("fanout", "API run: %zu of %zu ok (%u targets)", r.ok, expect, r.targets);
    submit_last->incomplete++;
    reply_last->incomplete++;
  }
  if (r.last_ns != 0) {
    fanout_add_sample(submit_last, fanout_ms_between(r.submit_ns, r.last_ns));
    fanout_add_sample(reply_last, fanout_ms_between(r.reply_ns, r.last_ns));
  }
}

typedef struct result_set {
  samples cli_total, cli_last, api_submit, api_reply;
  double musterd_cpu_ms, self_cpu_ms; /* per CLI run: musterd's and this process's (agents) */
} result_set;

static uint64_t cpu_ms(pid_t pid) {
  uint64_t ms = 0;
  mu_proc_cpu_ms(pid, &ms, NULL);
  return ms;
}

/* One warm-up CLI run, then K CLI runs and K API runs against the connected agents. */
static void time_runs(bench *b, const char *label, size_t n, result_set *rs) {
  samples warm = {0}, ignore = {0};
  cli_run(b, n, &warm, &ignore);
  uint64_t musterd0 = cpu_ms(b->musterd.h.pid), self0 = cpu_ms(getpid());
  for (size_t k = 0; k < b->o.runs && !b->interrupted; k++) cli_run(b, n, &rs->cli_total, &rs->cli_last);
  if (rs->cli_total.n > 0) {
    rs->musterd_cpu_ms = (double)(cpu_ms(b->musterd.h.pid) - musterd0) / (double)rs->cli_total.n;
    rs->self_cpu_ms = (double)(cpu_ms(getpid()) - self0) / (double)rs->cli_total.n;
  }
  for (size_t k = 0; k < b->o.runs && !b->interrupted; k++) api_run_once(b, n, &rs->api_submit, &rs->api_reply);
  char name[96];
  printf("# %s: %zu hosts, %zu runs each (after one warm-up CLI run: %.1f ms)\n", label, n, b->o.runs,
         warm.n ? warm.v[0] : -1.0);
  snprintf(name, sizeof name, "%s_%zu_cli_total", label, n);
  fanout_print_samples(name, &rs->cli_total);
  snprintf(name, sizeof name, "%s_%zu_cli_last_result", label, n);
  fanout_print_samples(name, &rs->cli_last);
  snprintf(name, sizeof name, "%s_%zu_api_submit_to_last", label, n);
  fanout_print_samples(name, &rs->api_submit);
  snprintf(name, sizeof name, "%s_%zu_api_reply_to_last", label, n);
  fanout_print_samples(name, &rs->api_reply);
  printf("%s_%zu_musterd_cpu_per_run: %.1f ms\n%s_%zu_load_tool_cpu_per_run: %.1f ms\n", label, n, rs->musterd_cpu_ms,
         label, n, rs->self_cpu_ms);
}

/* --- the three parts --- */

static void on_fleet_stopped(void *ud) { *(int *)ud = 1; }

static int sim_size(bench *b, size_t n, result_set *rs, mu_err *err) {
  mu_fleet *fleet = NULL;
  int stopped = 0, rc;
  const char *label = b->tls ? "mtls_sim" : "sim";
  rc = musterd_start(b, n, err);
  if (rc != 0) goto out;
  mu_fleet_config fc = {.target = b->target,
                        .agents = n,
                        .agents_per_channel = b->o.agents_per_channel,
                        .heartbeat_interval_ms = 5000,
                        .id_prefix = "sim"};
  rc = mu_fleet_new(b->engine, &fc, &fleet, err);
  if (rc != 0) goto out;
  if (b->tls != NULL) {
    rc = mu_fleet_use_tls(fleet, b->tls->ca, b->tls->ca_cert_pem, NULL, err);
    if (rc != 0) goto out;
  }
  uint64_t t0 = uv_hrtime();
  rc = mu_fleet_connect(fleet, err);
  if (rc != 0) goto out;
  rc = wait_cluster(b, (uint32_t)n, CONNECT_TIMEOUT_MS, err);
  if (rc != 0) goto out;
  const mu_fleet_stats *fs = mu_fleet_stats_get(fleet);
  printf(
      "# %s fleet: %zu agents over %zu connections, connected in %.0f ms (certificates issued "
      "before, in %.0f ms)\n",
      label, n, fs->channels, fanout_ms_between(t0, uv_hrtime()), (double)fs->cert_issue_ns / 1e6);
  time_runs(b, label, n, rs);
  printf("# %s fleet: %llu assigns answered, %llu task events, %llu acks, %llu send errors\n", label,
         (unsigned long long)fs->assigns, (unsigned long long)fs->task_events, (unsigned long long)fs->acks,
         (unsigned long long)fs->send_errors);
out:
  if (fleet != NULL) {
    mu_fleet_stop(fleet, on_fleet_stopped, &stopped);
    while (!stopped) uv_run(b->loop, UV_RUN_ONCE);
    mu_fleet_free(fleet);
  }
  musterd_stop(b);
  return rc;
}

static int real_agents(bench *b, result_set *rs, mu_err *err) {
  size_t r = b->o.real_agents;
  proc *agents = calloc(r, sizeof *agents);
  if (agents == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory for %zu agents", r);
  int rc = musterd_start(b, r, err);
  char plugins[PATH_MAX + 16];
  snprintf(plugins, sizeof plugins, "%s/plugins", b->workdir);
  mkdir(plugins, 0700);
  for (size_t i = 0; i < r && rc == 0; i++) {
    char id[32], spool[PATH_MAX + 32], log[48];
    snprintf(id, sizeof id, "real-%03zu", i);
    snprintf(spool, sizeof spool, "%s/spool-%03zu", b->workdir, i);
    snprintf(log, sizeof log, "agent-%03zu.log", i);
    char *args[24] = {b->agent_path, "--control",   b->target, "--id",         id,     "--labels",
                      "bench=real",  "--spool-dir", spool,     "--plugin-dir", plugins};
    char cert[PATH_MAX + 16], key[PATH_MAX + 16];
    if (b->tls != NULL) rc = mu_bench_pki_issue_files(b->tls, "agent", id, cert, key, err);
    size_t n = 11;
    n += mu_bench_pki_daemon_args(b->tls, cert, key, args + n);
    args[n] = NULL;
    if (rc == 0) rc = fanout_proc_spawn(b, &agents[i], args, 0, log, err);
  }
  if (rc == 0) rc = wait_cluster(b, (uint32_t)r, CONNECT_TIMEOUT_MS, err);
  if (rc == 0) time_runs(b, b->tls ? "mtls_real" : "real", r, rs);
  for (size_t i = 0; i < r; i++) proc_stop(b, &agents[i]);
  musterd_stop(b);
  free(agents);
  return rc;
}

/* --- main --- */

static void probe_no_etcd(bench *b) {
  proc p = {.match = "--no-etcd"};
  char *args[] = {b->musterd_path, "--help", NULL};
  mu_err err = {0};
  if (fanout_proc_spawn(b, &p, args, 1, "musterd.log", &err) == 0) fanout_proc_wait(b, &p, 10000);
  b->no_etcd = p.seen_flag;
}

static void report_ratio(const char *prefix, const char *tool, size_t n, double peer_ms, double ours_ms, int target) {
  if (peer_ms <= 0 || ours_ms <= 0) {
    printf("%sours_vs_%s_%zu: n/a\n", prefix, tool, n);
    return;
  }
  double ratio = peer_ms / ours_ms;
  if (target)
    printf("%sours_vs_%s_%zu: %.1f x faster  [target >= %g x: %s]\n", prefix, tool, n, ratio, TARGET_SPEEDUP,
           ratio >= TARGET_SPEEDUP ? "met" : "missed");
  else printf("%sours_vs_%s_%zu: %.1f x faster\n", prefix, tool, n, ratio);
}

/* How much slower mTLS was than plaintext at percentile p of one figure, in %. */
static void report_mtls(const char *name, const char *stat, double p, const samples *plain, const samples *mtls,
                        int target) {
  double a = fanout_percentile(plain, p), m = fanout_percentile(mtls, p);
  if (a <= 0 || m < 0) {
    printf("mtls_vs_plain_%s_%s: n/a\n", name, stat);
    return;
  }
  double slower = 100.0 * (m - a) / a;
  if (target)
    printf("mtls_vs_plain_%s_%s: %+.1f %% (%.1f vs %.1f ms)  [target <= %g %% slower: %s]\n", name, stat, slower, m, a,
           TARGET_MTLS_SLOWER, slower <= TARGET_MTLS_SLOWER ? "met" : "missed");
  else printf("mtls_vs_plain_%s_%s: %+.1f %% (%.1f vs %.1f ms)\n", name, stat, slower, m, a);
}

/* The end-to-end target and the peers' ratios of one mode (0 plaintext, 1 mTLS). */
static void report_mode(const bench *b, int mode, const result_set *sim, const result_set *real,
                        double peer_med[][MAX_SIZES]) {
  const char *prefix = mode ? "mtls_" : "";
  for (size_t s = 0; s < b->o.n_sizes; s++) {
    if (b->o.sizes[s] != 1000) continue;
    double m = fanout_percentile(&sim[s].cli_total, 50);
    printf("%sfanout_1000_end_to_end: %.1f ms  [target < %g ms: %s]\n", prefix, m, TARGET_1000_MS,
           m >= 0 && m < TARGET_1000_MS ? "met" : "missed");
  }
  for (size_t p = 0; b->o.peers && p < b->o.n_peer_sizes; p++) {
    size_t n = b->o.peer_sizes[p];
    for (size_t s = 0; s < b->o.n_sizes; s++) {
      if (b->o.sizes[s] != n) continue;
      double ours = fanout_percentile(&sim[s].cli_total, 50);
      for (size_t t = 0; t < N_PEERS; t++)
        report_ratio(prefix, fanout_peer_tools[t].name, n, peer_med[t][p], ours, n == 100 && t < 2);
    }
    if (b->o.real_agents == n) {
      double ours = fanout_percentile(&real->cli_total, 50);
      for (size_t t = 0; t < N_PEERS; t++) {
        char name[32];
        snprintf(name, sizeof name, "%s_real", fanout_peer_tools[t].name);
        report_ratio(prefix, name, n, peer_med[t][p], ours, 0);
      }
    }
  }
}

/* mTLS against plaintext, case by case: CLI end to end (the issue's target) and the API. */
static void report_mtls_cases(const bench *b, result_set sim[2][MAX_SIZES], result_set real[2]) {
  printf("# mTLS against plaintext (median and p99 of the same runs)\n");
  for (size_t s = 0; s <= b->o.n_sizes; s++) {
    if (s == b->o.n_sizes && b->o.real_agents == 0) break;
    const result_set *a = s < b->o.n_sizes ? &sim[0][s] : &real[0];
    const result_set *m = s < b->o.n_sizes ? &sim[1][s] : &real[1];
    char name[64];
    snprintf(name, sizeof name, "%s_%zu_cli_total", s < b->o.n_sizes ? "sim" : "real",
             s < b->o.n_sizes ? b->o.sizes[s] : b->o.real_agents);
    report_mtls(name, "median", 50, &a->cli_total, &m->cli_total, 1);
    report_mtls(name, "p99", 99, &a->cli_total, &m->cli_total, 1);
    snprintf(name, sizeof name, "%s_%zu_api_submit_to_last", s < b->o.n_sizes ? "sim" : "real",
             s < b->o.n_sizes ? b->o.sizes[s] : b->o.real_agents);
    report_mtls(name, "median", 50, &a->api_submit, &m->api_submit, 0);
    report_mtls(name, "p99", 99, &a->api_submit, &m->api_submit, 0);
    if (a->musterd_cpu_ms > 0)
      printf("mtls_vs_plain_%.*s_musterd_cpu_per_run: %.2f x (%.1f vs %.1f ms)\n",
             (int)(strlen(name) - strlen("_api_submit_to_last")), name, m->musterd_cpu_ms / a->musterd_cpu_ms,
             m->musterd_cpu_ms, a->musterd_cpu_ms);
  }
}

static int setup(bench *b, const char *argv0, mu_err *err) {
  int rc = mu_bench_find_binary(b->o.musterd_flag, "musterd", "controlplane/musterd", argv0, b->musterd_path, err);
  if (rc == 0) rc = mu_bench_find_binary(b->o.cli_flag, "cli", "cli/muster", argv0, b->cli_path, err);
  if (rc == 0) rc = mu_bench_find_binary(b->o.agent_flag, "agent", "agent/muster-agent", argv0, b->agent_path, err);
  if (rc == 0)
    rc = mu_bench_find_binary(b->o.script_flag, "peers-script", "bench/peers/ssh_peers.sh", argv0, b->script_path, err);
  if (rc != 0) return rc;
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(b->workdir, sizeof b->workdir, "%s/fanout.XXXXXX", tmp);
  if (mkdtemp(b->workdir) == NULL)
    return mu_err_set(err, MU_EIO, "cannot create a work dir under %s: %s", tmp, strerror(errno));
  if (b->o.tls_modes & MU_BENCH_MTLS) {
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/pki", b->workdir);
    rc = mu_bench_pki_make(&b->pki, dir, err);
    if (rc != 0) return rc;
    printf("# mTLS: CA, server and admin certificates made in %.1f ms\n", b->pki.setup_ms);
  }
  rc = mu_rpc_engine_new(b->loop, &b->engine, err);
  /* thousands of simulated agents' calls: spread them (lib/rpc/rpc.h) */
  return rc != 0 ? rc : mu_rpc_engine_add_queues(b->engine, 7, err);
}

int main(int argc, char **argv) {
  static bench b; /* large (line buffers); one per process */
  mu_err err = {0};
  signal(SIGPIPE, SIG_IGN);
  if (parse_opts(argc, argv, &b.o, &err) != 0) {
    fprintf(stderr, "fanout: %s\n%s", err.msg, usage);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  b.loop = uv_default_loop();
  uv_timer_init(b.loop, &b.tick);
  uv_timer_start(&b.tick, on_tick, 10, 10);
  uv_signal_init(b.loop, &b.sigint);
  uv_signal_init(b.loop, &b.sigterm);
  b.sigint.data = b.sigterm.data = &b;
  uv_signal_start(&b.sigint, on_signal, SIGINT);
  uv_signal_start(&b.sigterm, on_signal, SIGTERM);
  int failed = 0;
  if (setup(&b, argv[0], &err) != 0) {
    fprintf(stderr, "fanout: %s\n", err.msg);
    failed = 1;
  }
  /* [0] plaintext, [1] mTLS; each size runs plaintext then mTLS, so both see the same load */
  static result_set sim[2][MAX_SIZES], real[2];
  double peer_med[N_PEERS][MAX_SIZES];
  char load[64];
  if (!failed) {
    probe_no_etcd(&b);
    load_average(load, sizeof load);
    printf("# fanout: musterd %s%s, cli %s; load average at start %s\n", b.musterd_path, b.no_etcd ? " --no-etcd" : "",
           b.cli_path, load);
    for (size_t s = 0; s < b.o.n_sizes && !failed; s++)
      for (int mode = 0; mode < 2 && !failed; mode++) {
        if (!(b.o.tls_modes & (mode ? MU_BENCH_MTLS : MU_BENCH_PLAIN))) continue;
        b.tls = mode ? &b.pki : NULL;
        if (sim_size(&b, b.o.sizes[s], &sim[mode][s], &err) != 0) {
          fprintf(stderr, "fanout: %zu simulated agents: %s\n", b.o.sizes[s], err.msg);
          failed = 1;
        }
      }
    for (int mode = 0; mode < 2 && !failed && b.o.real_agents > 0; mode++) {
      if (!(b.o.tls_modes & (mode ? MU_BENCH_MTLS : MU_BENCH_PLAIN))) continue;
      b.tls = mode ? &b.pki : NULL;
      if (real_agents(&b, &real[mode], &err) != 0) {
        fprintf(stderr, "fanout: %zu real agents: %s\n", b.o.real_agents, err.msg);
        failed = 1;
      }
    }
    if (!failed && b.o.peers) fanout_peers(&b, peer_med);
  }
  if (!failed && !b.interrupted) {
    printf("# summary (medians; ours = `muster run` CLI process start to exit)\n");
    for (int mode = 0; mode < 2; mode++)
      if (b.o.tls_modes & (mode ? MU_BENCH_MTLS : MU_BENCH_PLAIN))
        report_mode(&b, mode, sim[mode], &real[mode], peer_med);
    if (b.o.tls_modes == (MU_BENCH_PLAIN | MU_BENCH_MTLS)) report_mtls_cases(&b, sim, real);
    load_average(load, sizeof load);
    printf("# load average at the end %s\n", load);
  }
  mu_bench_pki_free(&b.pki);
  if (b.engine != NULL) {
    int closed = 0;
    mu_rpc_engine_close(b.engine, on_fleet_stopped, &closed);
    while (!closed) uv_run(b.loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&b.tick, NULL);
  uv_close((uv_handle_t *)&b.sigint, NULL);
  uv_close((uv_handle_t *)&b.sigterm, NULL);
  uv_run(b.loop, UV_RUN_DEFAULT);
  uv_loop_close(b.loop);
  int completed = !failed && !b.interrupted;
  if (b.workdir[0] != '\0') {
    if (completed && !b.o.keep_work_dir) mu_bench_rm_tree(b.workdir);
    else fprintf(stderr, "fanout: logs kept in %s\n", b.workdir);
  }
  return completed ? 0 : 1;
}
