/* dispatch: SubmitJob throughput and dispatch throughput with state in a real etcd. Starts a
 * single-node etcd (or uses --etcd), musterd on it, and N simulated agents (bench/fleet);
 * then times K back-to-back SubmitJobs of an N-task job ("submit_1000") and one N x T task run
 * ("dispatch_100k": submit until every job's final record is in etcd), and counts etcd writes
 * per task from the revision and etcd's /metrics. Prints "name: value unit" figures with
 * met/missed next to the issues' targets; exit 0 when the run completed (docs/benchmarks.md). */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/fleet.h"
#include "bench/procstat.h"
#include "bench/setup.h"
#include "bench/stats.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "muster/v1/admin.pb-c.h"

#define TARGET_TASKS_PER_S 5000.0 /* issue 6: 100k tasks over 1,000 agents */
#define NOMAD_TASKS_PER_S 3750.0  /* Nomad's published million-container run, five servers */
#define TARGET_WRITES_PER_TASK 3.0
#define MAX_JOBS 1000
#define MAX_MUSTERD_ARGS 16
#define STARTUP_TIMEOUT_MS 20000
#define CONNECT_TIMEOUT_MS 120000

static const char usage[] =
    "usage: dispatch [--agents N] [--tasks-per-agent T] [--submit-jobs K] [--max-job-tasks M]\n"
    "                [--etcd URL] [--etcd-bin PATH] [--musterd PATH] [--musterd-arg ARG]...\n"
    "                [--log-level LEVEL] [--timeout DUR] [--no-submit] [--no-dispatch]\n"
    "                [--etcd-arg ARG]... [--keep-work-dir]\n"
    "\n"
    "Starts etcd (unless --etcd), musterd --etcd and N simulated agents (default 1000). Then\n"
    "submit_N: K (default 20) back-to-back SubmitJob calls of a 1-task job on all N agents;\n"
    "dispatch: an N x T task run (default T = 100, i.e. 100,000 tasks), split into jobs of at\n"
    "most M tasks per agent (musterd's per-job task limit, default 64), timed from the first\n"
    "submit until every job's final record is in etcd. Writes per task come from etcd's\n"
    "revision and /metrics. --musterd-arg / --etcd-arg pass one more flag to musterd / etcd.\n";

typedef struct opts {
  size_t agents, tasks_per_agent, submit_jobs, max_job_tasks;
  const char *etcd_url, *etcd_bin, *musterd_flag, *log_level;
  char *musterd_args[MAX_MUSTERD_ARGS], *etcd_args[MAX_MUSTERD_ARGS];
  size_t n_musterd_args, n_etcd_args;
  int64_t timeout_ms;
  int submit, dispatch, keep_work_dir;
} opts;

typedef struct proc {
  uv_process_t h;
  int started, exited;
  int64_t status;
} proc;

typedef struct bench {
  opts o;
  uv_loop_t *loop;
  mu_rpc_engine *engine;
  mu_rpc_channel *admin;
  uv_timer_t tick;
  uv_signal_t sigint;
  int interrupted;
  char workdir[PATH_MAX], musterd_path[PATH_MAX], etcd_url[128], target[64], prefix[64];
  proc etcd, musterd;
  CURL *curl;
} bench;

/* etcd's counters and revision at one moment */
typedef struct etcd_mark {
  int64_t revision;
  double puts, txns, deletes; /* -1 when /metrics lacks them */
  double fsyncs, fsync_s;     /* WAL fsyncs and the seconds they took */
} etcd_mark;

static double ms_since(uint64_t ns) { return (double)(uv_hrtime() - ns) / 1e6; }

static void on_tick(uv_timer_t *t) { (void)t; }

static int run_until(bench *b, const int *flag, int64_t timeout_ms) {
  return mu_bench_run_until(b->loop, flag, &b->interrupted, timeout_ms);
}

static void on_signal(uv_signal_t *h, int signum) {
  bench *b = h->data;
  mu_warn("dispatch", "signal %d: stopping", signum);
  b->interrupted = 1;
}

/* --- child processes --- */

static void on_exit_cb(uv_process_t *h, int64_t status, int sig) {
  proc *p = h->data;
  p->status = sig ? 128 + sig : status;
  p->exited = 1;
  uv_close((uv_handle_t *)h, NULL);
}

/* Starts argv[0] with stdout and stderr to WORKDIR/log_name. */
static int proc_spawn(bench *b, proc *p, char **argv, const char *log_name, mu_err *err) {
  char log_path[PATH_MAX + 64];
  snprintf(log_path, sizeof log_path, "%s/%s", b->workdir, log_name);
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return mu_err_set(err, MU_EIO, "cannot create %s: %s", log_path, strerror(errno));
  memset(p, 0, sizeof *p);
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = fd}, {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t po = {.file = argv[0], .args = argv, .exit_cb = on_exit_cb, .stdio_count = 3, .stdio = stdio};
  p->h.data = p;
  int rc = uv_spawn(b->loop, &p->h, &po);
  close(fd);
  if (rc != 0) {
    uv_close((uv_handle_t *)&p->h, NULL);
    uv_run(b->loop, UV_RUN_NOWAIT);
    return mu_err_set(err, MU_EIO, "cannot start %s: %s", argv[0], uv_strerror(rc));
  }
  p->started = 1;
  return 0;
}

static void proc_stop(bench *b, proc *p) {
  if (!p->started || p->exited) return;
  uv_process_kill(&p->h, SIGTERM);
  uint64_t end = uv_hrtime() + 10000ull * 1000000ull;
  while (!p->exited && uv_hrtime() < end) uv_run(b->loop, UV_RUN_ONCE);
  if (!p->exited) {
    uv_process_kill(&p->h, SIGKILL);
    while (!p->exited) uv_run(b->loop, UV_RUN_ONCE);
  }
}

/* --- etcd over its JSON gateway (blocking libcurl; only between or after timed parts) --- */

typedef struct buf {
  char *data;
  size_t len;
} buf;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buf *bf = ud;
  size_t add = size * n;
  char *grown = realloc(bf->data, bf->len + add + 1);
  if (grown == NULL) return 0;
  memcpy(grown + bf->len, p, add);
  bf->data = grown;
  bf->len += add;
  grown[bf->len] = '\0';
  return add;
}

/* GET (body NULL) or POST path on etcd; *ret holds the body (caller frees ret->data). */
static int etcd_http(bench *b, const char *path, const char *body, buf *ret, mu_err *err) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", b->etcd_url, path);
  *ret = (buf){0};
  curl_easy_reset(b->curl);
  curl_easy_setopt(b->curl, CURLOPT_URL, url);
  curl_easy_setopt(b->curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, ret);
  if (body != NULL) curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, body);
  CURLcode cc = curl_easy_perform(b->curl);
  long status = 0;
  curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK || status != 200) {
    free(ret->data);
    *ret = (buf){0};
    return mu_err_set(err, MU_EIO, "etcd %s: %s (HTTP %ld)", url,
                      cc != CURLE_OK ? curl_easy_strerror(cc) : "bad status", status);
  }
  return 0;
}

/* Ranges one key; ret_revision gets the store's revision, *ret_value the decoded value
 * (caller frees; NULL when the key is absent). */
static int etcd_get(bench *b, const char *key, int64_t *ret_revision, char **ret_value, mu_err *err) {
  char k64[512], body[600];
  sodium_bin2base64(k64, sizeof k64, (const unsigned char *)key, strlen(key), sodium_base64_VARIANT_ORIGINAL);
  snprintf(body, sizeof body, "{\"key\":\"%s\"}", k64);
  buf r;
  int rc = etcd_http(b, "/v3/kv/range", body, &r, err);
  if (rc != 0) return rc;
  json_t *o = json_loads(r.data, 0, NULL);
  free(r.data);
  const char *rev = json_string_value(json_object_get(json_object_get(o, "header"), "revision"));
  if (rev == NULL) {
    json_decref(o);
    return mu_err_set(err, MU_EIO, "etcd range: no header.revision in the answer");
  }
  *ret_revision = strtoll(rev, NULL, 10);
  if (ret_value != NULL) {
    *ret_value = NULL;
    const char *v64 = json_string_value(json_object_get(json_array_get(json_object_get(o, "kvs"), 0), "value"));
    size_t cap = v64 ? strlen(v64) + 1 : 0, len = 0;
    char *v = v64 ? malloc(cap) : NULL;
    if (v != NULL && sodium_base642bin((unsigned char *)v, cap, v64, cap - 1, NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL) == 0) {
      v[len] = '\0';
      *ret_value = v;
    } else {
      free(v);
    }
  }
  json_decref(o);
  return 0;
}

/* Sum of the samples of metric `name` in Prometheus text (labels included); -1 if absent. */
static double metric_sum(const char *text, const char *name) {
  double sum = -1;
  size_t n = strlen(name);
  for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, name, n) != 0 || (p[n] != ' ' && p[n] != '{')) continue;
    const char *sp = strchr(p + n, ' ');
    if (sp == NULL) continue;
    sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
  }
  return sum;
}

static int etcd_mark_read(bench *b, etcd_mark *m, mu_err *err) {
  char key[128];
  snprintf(key, sizeof key, "%sbench-none", b->prefix);
  int rc = etcd_get(b, key, &m->revision, NULL, err);
  if (rc != 0) return rc;
  buf r;
  m->puts = m->txns = m->deletes = m->fsyncs = m->fsync_s = -1;
  if (etcd_http(b, "/metrics", NULL, &r, err) != 0) return 0; /* the revision is enough */
  m->puts = metric_sum(r.data, "etcd_mvcc_put_total");
  if (m->puts < 0) m->puts = metric_sum(r.data, "etcd_debugging_mvcc_put_total");
  m->txns = metric_sum(r.data, "etcd_mvcc_txn_total");
  m->deletes = metric_sum(r.data, "etcd_mvcc_delete_total");
  m->fsyncs = metric_sum(r.data, "etcd_disk_wal_fsync_duration_seconds_count");
  m->fsync_s = metric_sum(r.data, "etcd_disk_wal_fsync_duration_seconds_sum");
  free(r.data);
  return 0;
}

/* Waits until the revision holds still for `quiet_ms` (musterd's writes have settled). */
static int etcd_settle(bench *b, int64_t quiet_ms, etcd_mark *ret, mu_err *err) {
  etcd_mark last = {0};
  int rc = etcd_mark_read(b, &last, err);
  uint64_t end = uv_hrtime() + (uint64_t)b->o.timeout_ms * 1000000ull;
  while (rc == 0) {
    run_until(b, NULL, quiet_ms);
    etcd_mark now;
    rc = etcd_mark_read(b, &now, err);
    if (rc != 0) break;
    if (now.revision == last.revision) {
      *ret = now;
      return 0;
    }
    last = now;
    if (b->interrupted || uv_hrtime() >= end) return mu_err_set(err, MU_ETIMEDOUT, "etcd's revision never held still");
  }
  return rc;
}

/* The state of jobs/<id> as etcd holds it; 0 when absent or unreadable. */
static int etcd_job_state(bench *b, const char *job_id, mu_err *err) {
  char key[256];
  snprintf(key, sizeof key, "%sjobs/%s", b->prefix, job_id);
  int64_t rev;
  char *v = NULL;
  if (etcd_get(b, key, &rev, &v, err) != 0 || v == NULL) return 0;
  json_t *o = json_loads(v, 0, NULL);
  free(v);
  int st = (int)json_integer_value(json_object_get(o, "state"));
  json_decref(o);
  return st;
}

/* --- musterd's admin API (async, on the loop) --- */

typedef struct unary {
  int done, ok;
  char msg[256];
  uint8_t *reply;
  size_t len;
} unary;

static void on_unary(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  unary *u = ud;
  u->done = 1;
  u->ok = st->code == MU_RPC_OK;
  snprintf(u->msg, sizeof u->msg, "%s: %s", mu_rpc_code_name(st->code), st->message);
  if (u->ok) {
    u->reply = malloc(len ? len : 1);
    if (u->reply != NULL) {
      memcpy(u->reply, reply, len);
      u->len = len;
    }
  }
}

/* One unary admin call; *u holds the reply (free u->reply). */
static int admin_call(bench *b, const char *method, const ProtobufCMessage *req, unary *u, mu_err *err) {
  char path[96];
  snprintf(path, sizeof path, "/muster.v1.Admin/%s", method);
  size_t n = protobuf_c_message_get_packed_size(req);
  uint8_t *bytes = malloc(n ? n : 1);
  if (bytes == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  protobuf_c_message_pack(req, bytes);
  *u = (unary){0};
  int rc = mu_rpc_unary(b->admin, path, 120000, NULL, bytes, n, on_unary, u, err);
  free(bytes);
  if (rc != 0) return rc;
  while (!u->done) uv_run(b->loop, UV_RUN_ONCE); /* u is on the caller's stack */
  if (!u->ok) return mu_err_set(err, MU_EIO, "%s: %s", method, u->msg);
  return 0;
}

static int get_cluster(bench *b, Muster__V1__Cluster **ret, mu_err *err) {
  Muster__V1__GetClusterRequest req = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
  unary u;
  int rc = admin_call(b, "GetCluster", &req.base, &u, err);
  if (rc != 0) return rc;
  *ret = muster__v1__cluster__unpack(NULL, u.len, u.reply);
  free(u.reply);
  return *ret ? 0 : mu_err_set(err, MU_EIO, "GetCluster: bad reply");
}

/* Polls GetCluster until this musterd leads and at least `agents` are connected. */
static int wait_cluster(bench *b, uint32_t agents, int64_t timeout_ms, mu_err *err) {
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000ull;
  uint32_t seen = 0;
  for (;;) {
    Muster__V1__Cluster *c = NULL;
    mu_err e = {0};
    if (get_cluster(b, &c, &e) == 0) {
      int ok = c->leader && c->agents_connected >= agents;
      seen = c->agents_connected;
      protobuf_c_message_free_unpacked(&c->base, NULL);
      if (ok) return 0;
    }
    if (b->musterd.exited)
      return mu_err_set(err, MU_EIO, "musterd exited (status %lld); see %s/musterd.log", (long long)b->musterd.status,
                        b->workdir);
    if (b->interrupted) return mu_err_set(err, MU_ECANCELED, "interrupted");
    if (uv_hrtime() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "musterd %s: not leading with %u of %u agents after %lldms", b->target, seen,
                        agents, (long long)timeout_ms);
    run_until(b, NULL, 100);
  }
}

/* SubmitJob of a job with n_tasks shell tasks ("hostname") on every agent. */
static int submit(bench *b, const char *name, size_t n_tasks, char *ret_id, size_t id_size, mu_err *err) {
  Muster__V1__TaskSpec *tasks = calloc(n_tasks, sizeof *tasks);
  Muster__V1__TaskSpec **ptrs = calloc(n_tasks, sizeof *ptrs);
  Muster__V1__ShellTask shell = MUSTER__V1__SHELL_TASK__INIT;
  char(*names)[16] = calloc(n_tasks, sizeof *names);
  if (!tasks || !ptrs || !names) {
    free(tasks);
    free(ptrs);
    free(names);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  shell.script = "hostname";
  for (size_t i = 0; i < n_tasks; i++) {
    muster__v1__task_spec__init(&tasks[i]);
    snprintf(names[i], sizeof names[i], "t%03zu", i);
    tasks[i].name = names[i];
    tasks[i].type = "shell";
    tasks[i].kind_case = MUSTER__V1__TASK_SPEC__KIND_SHELL;
    tasks[i].shell = &shell;
    ptrs[i] = &tasks[i];
  }
  Muster__V1__Target t = MUSTER__V1__TARGET__INIT;
  t.all = 1;
  Muster__V1__JobSpec spec = MUSTER__V1__JOB_SPEC__INIT;
  spec.name = (char *)name;
  spec.target = &t;
  spec.n_tasks = n_tasks;
  spec.tasks = ptrs;
  Muster__V1__SubmitJobRequest req = MUSTER__V1__SUBMIT_JOB_REQUEST__INIT;
  req.spec = &spec;
  unary u;
  int rc = admin_call(b, "SubmitJob", &req.base, &u, err);
  free(tasks);
  free(ptrs);
  free(names);
  if (rc != 0) return rc;
  Muster__V1__SubmitJobResponse *resp = muster__v1__submit_job_response__unpack(NULL, u.len, u.reply);
  free(u.reply);
  if (resp == NULL) return mu_err_set(err, MU_EIO, "SubmitJob: bad reply");
  snprintf(ret_id, id_size, "%s", resp->job_id);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return 0;
}

/* GetJob (no tasks): the job's state, or -1 on error. */
static int job_state(bench *b, const char *id, uint32_t *ret_succeeded) {
  Muster__V1__GetJobRequest req = MUSTER__V1__GET_JOB_REQUEST__INIT;
  req.job_id = (char *)id;
  unary u;
  mu_err e = {0};
  if (admin_call(b, "GetJob", &req.base, &u, &e) != 0) return -1;
  Muster__V1__Job *j = muster__v1__job__unpack(NULL, u.len, u.reply);
  free(u.reply);
  if (j == NULL) return -1;
  int st = j->state;
  if (ret_succeeded) *ret_succeeded = j->succeeded;
  protobuf_c_message_free_unpacked(&j->base, NULL);
  return st;
}

/* Waits until every job is final in GetJob (poll every 100 ms), then until its jobs/<id>
 * record in etcd says so too (poll every 5 ms). *ret_mem_ns / *ret_etcd_ns: when each was seen. */
static int wait_final(bench *b, char (*ids)[64], size_t n, uint64_t *ret_mem_ns, uint64_t *ret_etcd_ns,
                      size_t *ret_failed, mu_err *err) {
  uint64_t end = uv_hrtime() + (uint64_t)b->o.timeout_ms * 1000000ull;
  size_t i = 0, failed = 0;
  while (i < n) {
    int st = job_state(b, ids[i], NULL);
    if (st >= MUSTER__V1__JOB_STATE__JOB_SUCCEEDED) {
      failed += st != MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
      i++;
      continue;
    }
    if (b->interrupted || b->musterd.exited || uv_hrtime() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "job %s not final in GetJob (state %d)%s", ids[i], st,
                        b->musterd.exited ? ": musterd exited" : "");
    run_until(b, NULL, 100);
  }
  *ret_mem_ns = uv_hrtime();
  for (i = 0; i < n;) {
    if (etcd_job_state(b, ids[i], err) >= MUSTER__V1__JOB_STATE__JOB_SUCCEEDED) {
      i++;
      continue;
    }
    if (b->interrupted || uv_hrtime() >= end)
      return mu_err_set(err, MU_ETIMEDOUT, "job %s: final record never reached etcd", ids[i]);
    run_until(b, NULL, 5);
  }
  *ret_etcd_ns = uv_hrtime();
  *ret_failed = failed;
  return 0;
}

/* --- what the processes spent --- */

typedef struct cpu_usage {
  uint64_t musterd_cpu_ms, etcd_cpu_ms, self_cpu_ms;
} cpu_usage;

static uint64_t self_cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_utime.tv_sec * 1000 + (uint64_t)ru.ru_utime.tv_usec / 1000 +
         (uint64_t)ru.ru_stime.tv_sec * 1000 + (uint64_t)ru.ru_stime.tv_usec / 1000;
}

static void usage_read(bench *b, cpu_usage *u) {
  mu_err e = {0};
  u->musterd_cpu_ms = u->etcd_cpu_ms = 0;
  if (b->musterd.started && !b->musterd.exited) mu_proc_cpu_ms(b->musterd.h.pid, &u->musterd_cpu_ms, &e);
  if (b->etcd.started && !b->etcd.exited) mu_proc_cpu_ms(b->etcd.h.pid, &u->etcd_cpu_ms, &e);
  u->self_cpu_ms = self_cpu_ms();
}

/* VmHWM (peak resident set) of pid in KiB; 0 when unreadable. */
static uint64_t peak_rss_kib(pid_t pid) {
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  uint64_t v = 0;
  mu_err e = {0};
  mu_proc_field(text, "VmHWM:", &v, &e);
  return v;
}

static void print_usage(bench *b, const char *name, const cpu_usage *before, double wall_ms) {
  cpu_usage now;
  usage_read(b, &now);
  double m = (double)(now.musterd_cpu_ms - before->musterd_cpu_ms);
  double e = (double)(now.etcd_cpu_ms - before->etcd_cpu_ms);
  double s = (double)(now.self_cpu_ms - before->self_cpu_ms);
  printf("%s_musterd_cpu: %.0f ms (%.0f%% of one core)\n", name, m, wall_ms > 0 ? 100 * m / wall_ms : 0);
  if (b->etcd.started)
    printf("%s_etcd_cpu: %.0f ms (%.0f%% of one core)\n", name, e, wall_ms > 0 ? 100 * e / wall_ms : 0);
  printf("%s_load_tool_cpu: %.0f ms (%.0f%% of one core)\n", name, s, wall_ms > 0 ? 100 * s / wall_ms : 0);
  mu_proc_mem mem;
  mu_err err = {0};
  if (mu_proc_mem_read(b->musterd.h.pid, &mem, &err) == 0)
    printf("%s_musterd_rss: %.1f MiB (peak %.1f MiB)\n", name, (double)mem.rss_kib / 1024,
           (double)peak_rss_kib(b->musterd.h.pid) / 1024);
}

static void print_writes(const char *name, const etcd_mark *a, const etcd_mark *z, size_t tasks) {
  double txns = (double)(z->revision - a->revision) / (double)tasks;
  printf("%s_etcd_revisions: %lld (%zu tasks)\n", name, (long long)(z->revision - a->revision), tasks);
  printf("%s_writes_per_task: %.3f txns  [target <= %g: %s]\n", name, txns, TARGET_WRITES_PER_TASK,
         txns <= TARGET_WRITES_PER_TASK ? "met" : "missed");
  if (a->puts >= 0 && z->puts >= 0)
    printf("%s_keys_written_per_task: %.2f puts\n", name, (z->puts - a->puts) / (double)tasks);
  if (a->txns >= 0 && z->txns >= 0)
    printf("%s_etcd_txn_calls_per_task: %.3f\n", name, (z->txns - a->txns) / (double)tasks);
  if (a->fsyncs >= 0 && z->fsyncs > a->fsyncs)
    printf("%s_etcd_wal_fsyncs: %.0f (mean %.2f ms, %.0f ms in all)\n", name, z->fsyncs - a->fsyncs,
           1000 * (z->fsync_s - a->fsync_s) / (z->fsyncs - a->fsyncs), 1000 * (z->fsync_s - a->fsync_s));
  fflush(stdout);
}

/* --- the two figures --- */

static int submit_figure(bench *b, mu_err *err) {
  size_t k = b->o.submit_jobs, n = b->o.agents;
  char(*ids)[64] = calloc(k, sizeof *ids);
  double *lat = calloc(k, sizeof *lat);
  int rc = ids && lat ? 0 : mu_err_set(err, MU_ENOMEM, "out of memory");
  etcd_mark before, after;
  cpu_usage u;
  if (rc == 0) rc = etcd_settle(b, 300, &before, err);
  usage_read(b, &u);
  uint64_t t0 = uv_hrtime();
  for (size_t i = 0; i < k && rc == 0; i++) {
    uint64_t s = uv_hrtime();
    rc = submit(b, "bench-submit", 1, ids[i], sizeof ids[i], err);
    lat[i] = ms_since(s);
  }
  double submit_ms = ms_since(t0);
  uint64_t mem_ns = 0, etcd_ns = 0;
  size_t failed = 0;
  if (rc == 0) rc = wait_final(b, ids, k, &mem_ns, &etcd_ns, &failed, err);
  if (rc == 0) rc = etcd_settle(b, 300, &after, err);
  if (rc == 0) {
    char name[32];
    snprintf(name, sizeof name, "submit_%zu", n);
    double med = mu_bench_percentile(lat, k, 50), p99 = mu_bench_percentile(lat, k, 99);
    printf("# %s: %zu back-to-back SubmitJob calls of a 1-task job on %zu agents\n", name, k, n);
    printf("%s_latency_median: %.1f ms\n%s_latency_p99: %.1f ms\n%s_latency_max: %.1f ms\n", name, med, name, p99, name,
           lat[k - 1]);
    printf("%s_jobs_per_s: %.1f jobs/s\n%s_tasks_per_s: %.0f tasks/s accepted\n", name, (double)k * 1000 / submit_ms,
           name, (double)(k * n) * 1000 / submit_ms);
    printf("%s_all_results_in_etcd: %.0f ms after the first submit (%zu jobs failed)\n", name,
           (double)(etcd_ns - t0) / 1e6, failed);
    print_writes(name, &before, &after, k * n);
    print_usage(b, name, &u, (double)(etcd_ns - t0) / 1e6);
  }
  free(ids);
  free(lat);
  return rc;
}

static int dispatch_figure(bench *b, mu_err *err) {
  size_t n = b->o.agents, t = b->o.tasks_per_agent, m = b->o.max_job_tasks;
  size_t n_jobs = (t + m - 1) / m, total = n * t;
  char(*ids)[64] = calloc(n_jobs, sizeof *ids);
  if (ids == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  etcd_mark before, after;
  cpu_usage u;
  int rc = etcd_settle(b, 300, &before, err);
  usage_read(b, &u);
  uint64_t t0 = uv_hrtime();
  double submit_ms = 0;
  for (size_t j = 0; j < n_jobs && rc == 0; j++) {
    size_t tasks = t / n_jobs + (j < t % n_jobs);
    uint64_t s = uv_hrtime();
    rc = submit(b, "bench-dispatch", tasks, ids[j], sizeof ids[j], err);
    submit_ms += ms_since(s);
  }
  uint64_t mem_ns = 0, etcd_ns = 0;
  size_t failed = 0;
  if (rc == 0) rc = wait_final(b, ids, n_jobs, &mem_ns, &etcd_ns, &failed, err);
  if (rc == 0) rc = etcd_settle(b, 300, &after, err);
  if (rc == 0) {
    double wall = (double)(etcd_ns - t0) / 1e6, rate = (double)total * 1000 / wall;
    char name[32];
    snprintf(name, sizeof name, total % 1000 ? "dispatch_%zu" : "dispatch_%zuk", total % 1000 ? total : total / 1000);
    printf("# %s: %zu tasks (%zu per agent on %zu agents) in %zu job(s), %zu failed\n", name, total, t, n, n_jobs,
           failed);
    printf("%s_submit: %.0f ms (SubmitJob total)\n", name, submit_ms);
    printf("%s_all_final_in_memory: %.0f ms\n", name, (double)(mem_ns - t0) / 1e6);
    printf("%s_all_persisted: %.0f ms\n", name, wall);
    printf("%s_tasks_per_s: %.0f tasks/s  [target >= %g: %s] (Nomad: %g/s with five servers)\n", name, rate,
           TARGET_TASKS_PER_S, rate >= TARGET_TASKS_PER_S ? "met" : "missed", NOMAD_TASKS_PER_S);
    print_writes(name, &before, &after, total);
    print_usage(b, name, &u, wall);
  }
  free(ids);
  return rc;
}

/* --- set-up --- */

static int parse_count(const char *flag, const char *text, size_t min, size_t max, size_t *ret, mu_err *err) {
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max)
    return mu_err_set(err, MU_EINVAL, "--%s: expected a count %zu..%zu, got '%s'", flag, min, max, text);
  *ret = (size_t)v;
  return 0;
}

static int parse_opts(int argc, char **argv, opts *o, mu_err *err) {
  static const struct option lo[] = {
      {"agents", required_argument, NULL, 'n'},      {"tasks-per-agent", required_argument, NULL, 't'},
      {"submit-jobs", required_argument, NULL, 'k'}, {"max-job-tasks", required_argument, NULL, 'M'},
      {"etcd", required_argument, NULL, 'e'},        {"etcd-bin", required_argument, NULL, 'E'},
      {"musterd", required_argument, NULL, 'm'},     {"musterd-arg", required_argument, NULL, 'a'},
      {"log-level", required_argument, NULL, 'l'},   {"timeout", required_argument, NULL, 'T'},
      {"no-submit", no_argument, NULL, 'S'},         {"no-dispatch", no_argument, NULL, 'D'},
      {"keep-work-dir", no_argument, NULL, 'w'},     {"help", no_argument, NULL, 'h'},
      {"etcd-arg", required_argument, NULL, 'x'},    {NULL, 0, NULL, 0}};
  *o = (opts){.agents = 1000,
              .tasks_per_agent = 100,
              .submit_jobs = 20,
              .max_job_tasks = 64,
              .etcd_bin = "/usr/bin/etcd",
              .log_level = "warn",
              .timeout_ms = 600000,
              .submit = 1,
              .dispatch = 1};
  int c, rc = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case 'n': rc = parse_count("agents", optarg, 1, 100000, &o->agents, err); break;
      case 't': rc = parse_count("tasks-per-agent", optarg, 1, 10000, &o->tasks_per_agent, err); break;
      case 'k': rc = parse_count("submit-jobs", optarg, 1, MAX_JOBS, &o->submit_jobs, err); break;
      case 'M': rc = parse_count("max-job-tasks", optarg, 1, 10000, &o->max_job_tasks, err); break;
      case 'e': o->etcd_url = optarg; break;
      case 'E': o->etcd_bin = optarg; break;
      case 'm': o->musterd_flag = optarg; break;
      case 'a':
        if (o->n_musterd_args == MAX_MUSTERD_ARGS)
          rc = mu_err_set(err, MU_EINVAL, "--musterd-arg: at most %d", MAX_MUSTERD_ARGS);
        else o->musterd_args[o->n_musterd_args++] = optarg;
        break;
      case 'x':
        if (o->n_etcd_args == MAX_MUSTERD_ARGS)
          rc = mu_err_set(err, MU_EINVAL, "--etcd-arg: at most %d", MAX_MUSTERD_ARGS);
        else o->etcd_args[o->n_etcd_args++] = optarg;
        break;
      case 'l': o->log_level = optarg; break;
      case 'T':
        rc = mu_duration_parse(optarg, &o->timeout_ms, err);
        if (rc != 0) mu_err_prefix(err, "--timeout");
        break;
      case 'S': o->submit = 0; break;
      case 'D': o->dispatch = 0; break;
      case 'w': o->keep_work_dir = 1; break;
      case 'h': fputs(usage, stdout); exit(0);
      default: return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (rc != 0) return rc;
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (o->tasks_per_agent / o->max_job_tasks + 1 > MAX_JOBS)
    return mu_err_set(err, MU_EINVAL, "--tasks-per-agent / --max-job-tasks: more than %d jobs", MAX_JOBS);
  return 0;
}

static int etcd_start(bench *b, mu_err *err) {
  int cport = 0, pport = 0, rc;
  rc = mu_bench_free_port(&cport, err);
  if (rc == 0) rc = mu_bench_free_port(&pport, err);
  if (rc != 0) return rc;
  char data[PATH_MAX + 8], curl_[64], purl[64], cluster[96];
  snprintf(data, sizeof data, "%s/etcd", b->workdir);
  snprintf(curl_, sizeof curl_, "http://127.0.0.1:%d", cport);
  snprintf(purl, sizeof purl, "http://127.0.0.1:%d", pport);
  snprintf(cluster, sizeof cluster, "bench=%s", purl);
  snprintf(b->etcd_url, sizeof b->etcd_url, "%s", curl_);
  char *args[20 + MAX_MUSTERD_ARGS] = {(char *)b->o.etcd_bin,
                                       "--name",
                                       "bench",
                                       "--data-dir",
                                       data,
                                       "--listen-client-urls",
                                       curl_,
                                       "--advertise-client-urls",
                                       curl_,
                                       "--listen-peer-urls",
                                       purl,
                                       "--initial-advertise-peer-urls",
                                       purl,
                                       "--initial-cluster",
                                       cluster,
                                       "--quota-backend-bytes",
                                       "8589934592"};
  size_t n = 17;
  for (size_t i = 0; i < b->o.n_etcd_args; i++) args[n++] = b->o.etcd_args[i];
  args[n] = NULL;
  rc = proc_spawn(b, &b->etcd, args, "etcd.log", err);
  if (rc != 0) return rc;
  uint64_t end = uv_hrtime() + (uint64_t)STARTUP_TIMEOUT_MS * 1000000ull;
  for (;;) {
    buf r;
    mu_err e = {0};
    if (etcd_http(b, "/health", NULL, &r, &e) == 0) {
      int ok = strstr(r.data, "true") != NULL;
      free(r.data);
      if (ok) return 0;
    }
    if (b->etcd.exited || b->interrupted || uv_hrtime() >= end)
      return mu_err_set(err, MU_EIO, "etcd at %s not healthy (%s); see %s/etcd.log", curl_,
                        b->etcd.exited ? "exited" : "timeout", b->workdir);
    run_until(b, NULL, 100);
  }
}

static int musterd_start(bench *b, mu_err *err) {
  int port = 0, rc = mu_bench_free_port(&port, err);
  if (rc != 0) return rc;
  snprintf(b->target, sizeof b->target, "127.0.0.1:%d", port);
  char maxa[32], state[PATH_MAX + 16];
  snprintf(maxa, sizeof maxa, "%zu", b->o.agents + 16);
  snprintf(state, sizeof state, "%s/musterd", b->workdir);
  char *args[16 + MAX_MUSTERD_ARGS] = {
      b->musterd_path,       "--listen", b->target,      "--etcd", b->etcd_url,   "--state-dir",          state,
      "--heartbeat-timeout", "60s",      "--max-agents", maxa,     "--log-level", (char *)b->o.log_level, "--insecure"};
  size_t n = 14;
  for (size_t i = 0; i < b->o.n_musterd_args; i++) args[n++] = b->o.musterd_args[i];
  args[n] = NULL;
  rc = proc_spawn(b, &b->musterd, args, "musterd.log", err);
  if (rc != 0) return rc;
  mu_rpc_options ao = {.max_message = 64u << 20};
  rc = mu_rpc_channel_new(b->engine, b->target, NULL, &ao, &b->admin, err);
  if (rc != 0) return rc;
  return wait_cluster(b, 0, STARTUP_TIMEOUT_MS, err);
}

static void on_done_flag(void *ud) { *(int *)ud = 1; }

static int run(bench *b, const char *argv0, mu_err *err) {
  int rc = mu_bench_find_binary(b->o.musterd_flag, "musterd", "controlplane/musterd", argv0, b->musterd_path, err);
  if (rc != 0) return rc;
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(b->workdir, sizeof b->workdir, "%s/dispatch.XXXXXX", tmp);
  if (mkdtemp(b->workdir) == NULL)
    return mu_err_set(err, MU_EIO, "cannot create a work dir under %s: %s", tmp, strerror(errno));
  snprintf(b->prefix, sizeof b->prefix, "/muster/");
  b->curl = curl_easy_init();
  if (b->curl == NULL) return mu_err_set(err, MU_ENOMEM, "curl_easy_init failed");
  rc = mu_rpc_engine_new(b->loop, &b->engine, err);
  if (rc != 0) return rc;
  /* thousands of simulated agents' calls: spread them (lib/rpc/rpc.h) */
  rc = mu_rpc_engine_add_queues(b->engine, 7, err);
  if (rc != 0) return rc;
  if (b->o.etcd_url != NULL) {
    snprintf(b->etcd_url, sizeof b->etcd_url, "%s", b->o.etcd_url);
  } else {
    rc = etcd_start(b, err);
    if (rc != 0) return rc;
  }
  rc = musterd_start(b, err);
  if (rc != 0) return rc;
  mu_fleet *fleet = NULL;
  mu_fleet_config fc = {.target = b->target,
                        .agents = b->o.agents,
                        .agents_per_channel = 100,
                        .heartbeat_interval_ms = 5000,
                        .id_prefix = "sim"};
  rc = mu_fleet_new(b->engine, &fc, &fleet, err);
  if (rc != 0) return rc;
  uint64_t c0 = uv_hrtime();
  rc = mu_fleet_connect(fleet, err);
  if (rc == 0) rc = wait_cluster(b, (uint32_t)b->o.agents, CONNECT_TIMEOUT_MS, err);
  if (rc == 0) {
    printf("# dispatch: musterd %s --etcd %s%s; %zu simulated agents connected in %.0f ms\n", b->musterd_path,
           b->etcd_url, b->o.etcd_url ? " (existing)" : " (started here)", b->o.agents, ms_since(c0));
    fflush(stdout);
    if (b->o.submit) rc = submit_figure(b, err);
    if (rc == 0 && b->o.dispatch) rc = dispatch_figure(b, err);
    if (rc == 0) printf("musterd_peak_rss: %.1f MiB\n", (double)peak_rss_kib(b->musterd.h.pid) / 1024);
    const mu_fleet_stats *fs = mu_fleet_stats_get(fleet);
    printf(
        "# fleet: %llu assigns answered, %llu task events, %llu acks, %llu send errors, %zu "
        "streams failed%s%s\n",
        (unsigned long long)fs->assigns, (unsigned long long)fs->task_events, (unsigned long long)fs->acks,
        (unsigned long long)fs->send_errors, fs->failed, fs->first_error[0] ? ": " : "", fs->first_error);
  }
  int stopped = 0;
  mu_fleet_stop(fleet, on_done_flag, &stopped);
  while (!stopped) uv_run(b->loop, UV_RUN_ONCE);
  mu_fleet_free(fleet);
  return rc;
}

int main(int argc, char **argv) {
  static bench b;
  mu_err err = {0};
  signal(SIGPIPE, SIG_IGN);
  if (parse_opts(argc, argv, &b.o, &err) != 0) {
    fprintf(stderr, "dispatch: %s\n%s", err.msg, usage);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  b.loop = uv_default_loop();
  uv_timer_init(b.loop, &b.tick);
  uv_timer_start(&b.tick, on_tick, 10, 10);
  uv_signal_init(b.loop, &b.sigint);
  b.sigint.data = &b;
  uv_signal_start(&b.sigint, on_signal, SIGINT);
  int failed = run(&b, argv[0], &err) != 0;
  if (failed) fprintf(stderr, "dispatch: %s\n", err.msg);
  if (b.admin != NULL) mu_rpc_channel_close(b.admin);
  proc_stop(&b, &b.musterd);
  proc_stop(&b, &b.etcd);
  if (b.engine != NULL) {
    int closed = 0;
    mu_rpc_engine_close(b.engine, on_done_flag, &closed);
    while (!closed) uv_run(b.loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&b.tick, NULL);
  uv_close((uv_handle_t *)&b.sigint, NULL);
  uv_run(b.loop, UV_RUN_DEFAULT);
  uv_loop_close(b.loop);
  if (b.curl != NULL) curl_easy_cleanup(b.curl);
  curl_global_cleanup();
  int completed = !failed && !b.interrupted;
  if (b.workdir[0] != '\0') {
    if (completed && !b.o.keep_work_dir) mu_bench_rm_tree(b.workdir);
    else fprintf(stderr, "dispatch: logs kept in %s\n", b.workdir);
  }
  return completed ? 0 : 1;
}
