/* The plugin test library (plugin_test.h): a private loop, the real runner and supervisor,
 * one plugin in-process or behind a muster-plugin-host, and a recorder for one task at a time
 * that also measures loop stalls (libuv's idle-time metric around each iteration) and looks
 * for processes the task left behind (/proc/PID/environ carrying its MUSTER_TASK_ID). */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "plugins/testing/plugin_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent/plugin/remote.h"

/* The plugin as the runner sees it in-process: its own callbacks, handed a copy of the host
 * API whose spawn() is timed, so the loop-stall measure can leave out the agent's own cost of
 * starting a process (libuv waits for the child's exec) and blame only the plugin. */
typedef struct wrapped {
  muster_plugin desc; /* first: found again through mu_runner_task_plugin() */
  const muster_plugin *real;
  muster_host_api api;
  struct muster_pt_world *w;
} wrapped;

struct muster_pt_world {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_plugin_host *loaded; /* the real plugin, in-process */
  wrapped wrap;
  uint64_t spawn_ns; /* spent in host->spawn during this loop iteration */
  mu_plugin_remote *remote;
  mu_runner *runner;
  muster_pt_opts o;
  char spool[256];
  uint64_t runs;
  unsigned nonce;        /* task ids differ between worlds too (plugins remember ids) */
  muster_pt_result *cur; /* the task being run */
  uv_prepare_t stall;
  uint64_t last_ns, last_idle_ns, last_cpu_ns;
  long last_nvcsw;
  bool closed;
};

const char *muster_pt_state_name(int state) {
  switch (state) {
    case MU_TASK_STARTING: return "STARTING";
    case MU_TASK_RUNNING: return "RUNNING";
    case MU_TASK_SUCCEEDED: return "SUCCEEDED";
    case MU_TASK_FAILED: return "FAILED";
    case MU_TASK_TIMED_OUT: return "TIMED_OUT";
    case MU_TASK_CANCELLED: return "CANCELLED";
    default: return "NONE";
  }
}

static void append(char *dst, size_t *len, size_t cap, const void *data, size_t n) {
  if (n > cap - *len) n = cap - *len;
  memcpy(dst + *len, data, n);
  *len += n;
  dst[*len] = '\0';
}

static void on_event(void *arg, const mu_task_event *ev) {
  muster_pt_world *w = arg;
  muster_pt_result *r = w->cur;
  if (r == NULL || strcmp(ev->task_id, r->task_id) != 0) return;
  if (r->state != 0 && mu_task_state_final(r->state)) r->event_after_final = true;
  r->n_events++;
  size_t cap = w->o.capture_max;
  switch (ev->kind) {
    case MU_EV_STATE:
      if (r->n_states < MUSTER_PT_MAX_STATES) r->states[r->n_states++] = ev->state.state;
      if (mu_task_state_final(ev->state.state)) {
        r->state = ev->state.state;
        r->exit_code = ev->state.exit_code;
        r->signal = ev->state.signal;
        snprintf(r->message, sizeof r->message, "%s", ev->state.message ? ev->state.message : "");
      }
      break;
    case MU_EV_OUTPUT:
      if (ev->output.stream == 1) {
        append(r->out, &r->out_len, cap, ev->output.data, ev->output.len);
        r->out_total += ev->output.len;
      } else {
        append(r->err, &r->err_len, cap, ev->output.data, ev->output.len);
        r->err_total += ev->output.len;
      }
      break;
    case MU_EV_PROGRESS: {
      r->n_progress++;
      r->last_pct = ev->progress.percent;
      size_t ml = ev->progress.message ? strlen(ev->progress.message) : 0;
      if (ml > r->max_progress_msg) r->max_progress_msg = ml;
      break;
    }
    case MU_EV_PARAM:
      for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->param_keys[i], ev->param.key) == 0) {
          free(r->param_values[i]);
          r->param_values[i] = strdup(ev->param.value);
          return;
        }
      if (r->n_params < MUSTER_PT_MAX_PARAMS) {
        r->param_keys[r->n_params] = strdup(ev->param.key);
        r->param_values[r->n_params++] = strdup(ev->param.value);
      }
      break;
  }
}

static void thread_usage(uint64_t *ret_cpu_ns, long *ret_nvcsw) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  *ret_cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
                ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
  *ret_nvcsw = ru.ru_nvcsw;
}

static void stall_mark(muster_pt_world *w) {
  w->spawn_ns = 0;
  w->last_ns = uv_hrtime();
  w->last_idle_ns = uv_metrics_idle_time(&w->loop);
  thread_usage(&w->last_cpu_ns, &w->last_nvcsw);
}

/* How long each loop iteration kept the loop from polling: wall time between two prepares
 * minus the time spent waiting in poll (UV_METRICS_IDLE_TIME). So that a busy machine does
 * not fail a plugin, an iteration that never gave up the CPU on its own (no voluntary context
 * switch: nothing slept or blocked) counts only the CPU time it used. */
static void on_prepare(uv_prepare_t *h) {
  muster_pt_world *w = h->data;
  uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&w->loop), cpu;
  long nvcsw;
  thread_usage(&cpu, &nvcsw);
  if (w->cur != NULL) {
    /* poll itself switches voluntarily when it waits; only count switches beyond that. An
     * epoll_wait that found events at once still adds a few microseconds of "idle" without
     * switching, so only a wait of 1 ms or more counts as one (else a usleep in the plugin
     * looked like poll's own switch and the stall went unseen on a loaded machine). */
    bool waited = idle - w->last_idle_ns >= 1000000;
    bool blocked = nvcsw - w->last_nvcsw > (waited ? 1 : 0);
    uint64_t busy = (now - w->last_ns) - (idle - w->last_idle_ns);
    busy = busy > w->spawn_ns ? busy - w->spawn_ns : 0; /* the agent's own, see wrapped */
    int64_t ms = (int64_t)((blocked ? busy : cpu - w->last_cpu_ns) / 1000000);
    if (ms > w->cur->max_stall_ms) w->cur->max_stall_ms = ms;
    if (getenv("MUSTER_PT_DEBUG_STALL") != NULL && ms > 2)
      fprintf(stderr, "stall %lld ms: wall %llu us cpu %llu us voluntary switches %ld waited %d\n", (long long)ms,
              (unsigned long long)(busy / 1000), (unsigned long long)((cpu - w->last_cpu_ns) / 1000),
              nvcsw - w->last_nvcsw, waited);
  }
  w->last_ns = now;
  w->last_idle_ns = idle;
  w->spawn_ns = 0;
  w->last_cpu_ns = cpu;
  w->last_nvcsw = nvcsw;
}

static wrapped *wrap_of(muster_task *t) { return (wrapped *)mu_runner_task_plugin(t); }

static int w_spawn(muster_task *t, const muster_spawn_opts *o, muster_proc **ret, char *errbuf) {
  wrapped *wr = wrap_of(t);
  uint64_t t0 = uv_hrtime();
  int rc = mu_host_api()->spawn(t, o, ret, errbuf);
  wr->w->spawn_ns += uv_hrtime() - t0;
  return rc;
}

/* A plugin entry point's own stall, measured around the call: its wall time when it gave up
 * the CPU on its own (it slept or blocked), else its CPU time, less the agent's spawn cost. The
 * per-iteration measure (on_prepare) cannot always tell a sleep from poll's own switch on a
 * loaded machine; a call can. */
typedef struct call_mark {
  uint64_t wall_ns, cpu_ns, spawn_ns;
  long nvcsw;
} call_mark;

static void call_begin(const muster_pt_world *w, call_mark *m) {
  m->wall_ns = uv_hrtime();
  m->spawn_ns = w->spawn_ns;
  thread_usage(&m->cpu_ns, &m->nvcsw);
}

static void call_end(muster_pt_world *w, const call_mark *m) {
  uint64_t cpu;
  long nvcsw;
  thread_usage(&cpu, &nvcsw);
  uint64_t busy = nvcsw > m->nvcsw ? uv_hrtime() - m->wall_ns : cpu - m->cpu_ns;
  uint64_t spawned = w->spawn_ns - m->spawn_ns;
  busy = busy > spawned ? busy - spawned : 0;
  int64_t ms = (int64_t)(busy / 1000000);
  if (w->cur != NULL && ms > w->cur->max_stall_ms) w->cur->max_stall_ms = ms;
  if (getenv("MUSTER_PT_DEBUG_STALL") != NULL)
    fprintf(stderr, "call %lld ms: voluntary switches %ld, cur %p\n", (long long)ms, nvcsw - m->nvcsw, (void *)w->cur);
}

static int w_start(muster_task *t, const muster_host_api *host, char *errbuf) {
  (void)host;
  wrapped *wr = wrap_of(t);
  call_mark m;
  call_begin(wr->w, &m);
  int rc = wr->real->start(t, &wr->api, errbuf);
  call_end(wr->w, &m);
  return rc;
}

static void w_cancel(muster_task *t, const muster_host_api *host, muster_cancel_reason reason) {
  (void)host;
  wrapped *wr = wrap_of(t);
  if (wr->real->cancel == NULL) return;
  call_mark m;
  call_begin(wr->w, &m);
  wr->real->cancel(t, &wr->api, reason);
  call_end(wr->w, &m);
}

static void w_cleanup(muster_task *t, const muster_host_api *host, void *user_data) {
  (void)host;
  wrapped *wr = wrap_of(t);
  if (wr->real->cleanup != NULL) wr->real->cleanup(t, &wr->api, user_data);
}

/* Loads plugin_so in-process behind the wrapper. */
static int load_wrapped(muster_pt_world *w, const char *plugin_so, mu_err *err) {
  int rc = mu_plugin_host_new(&w->loaded, err);
  if (rc == 0) rc = mu_plugin_host_load(w->loaded, plugin_so, err);
  if (rc != 0) return rc;
  const muster_plugin *real = mu_plugin_host_find(w->loaded, mu_plugin_host_info(w->loaded, 0)->type);
  w->wrap.real = real;
  w->wrap.w = w;
  w->wrap.api = *mu_host_api();
  w->wrap.api.spawn = w_spawn;
  w->wrap.desc = *real;
  w->wrap.desc.start = w_start;
  w->wrap.desc.cancel = w_cancel;
  w->wrap.desc.cleanup = w_cleanup;
  return mu_plugin_host_register_as(w->plugins, &w->wrap.desc, plugin_so, "in-process", err);
}

/* The runner's prepare_dir: the test's bundle into the fresh task dir (the assign's own work,
 * outside the stall measure). */
static int prepare_dir(void *arg, const char *task_id, uint32_t attempt, const char *task_dir, mu_err *err) {
  (void)task_id;
  (void)attempt;
  muster_pt_world *w = arg;
  if (w->o.bundle_dir == NULL) return 0;
  char cmd[8192];
  if (snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", w->o.bundle_dir, task_dir) >= (int)sizeof cmd ||
      strchr(w->o.bundle_dir, '\'') != NULL)
    return mu_err_set(err, MU_EINVAL, "bundle dir %s: path too long or has a quote", w->o.bundle_dir);
  if (system(cmd) != 0)
    return mu_err_set(err, MU_EIO, "copying bundle dir %s into %s failed", w->o.bundle_dir, task_dir);
  return 0;
}

int muster_pt_world_new(const char *plugin_so, const muster_pt_opts *o, muster_pt_world **ret, mu_err *err) {
  muster_pt_world *w = calloc(1, sizeof *w);
  if (w == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (o != NULL) w->o = *o;
  if (w->o.capture_max == 0) w->o.capture_max = 1024 * 1024;
  if (w->o.grace_ms == 0) w->o.grace_ms = 1000;
  w->nonce = (unsigned)(uv_hrtime() & 0xffffff);
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(w->spool, sizeof w->spool, "%s/muster-plugin-test.XXXXXX", tmp);
  int rc;
  if (mkdtemp(w->spool) == NULL) {
    rc = mu_err_set(err, MU_EIO, "spool dir under %s: %s", tmp, strerror(errno));
    free(w);
    return rc;
  }
  chmod(w->spool, 0755);
  uv_loop_init(&w->loop);
  uv_loop_configure(&w->loop, UV_METRICS_IDLE_TIME);
  uv_prepare_init(&w->loop, &w->stall);
  w->stall.data = w;
  uv_prepare_start(&w->stall, on_prepare);
  uv_unref((uv_handle_t *)&w->stall);
  rc = mu_plugin_host_new(&w->plugins, err);
  if (rc != 0) goto fail;
  if (w->o.host_path != NULL) {
    mu_plugin_remote_opts ro = {.host_path = w->o.host_path, .so_path = plugin_so, .backoff_min_ms = 50};
    rc = mu_plugin_remote_open(&w->loop, &ro, &w->remote, err);
    if (rc != 0) goto fail;
    rc = mu_plugin_host_register_as(w->plugins, mu_plugin_remote_descriptor(w->remote), plugin_so, "process", err);
  } else {
    rc = load_wrapped(w, plugin_so, err);
  }
  if (rc == 0) /* SDK v2: configured before any task, as the agent does (a no-op for ABI 1) */
    rc = mu_plugin_host_configure(w->plugins, mu_plugin_host_info(w->plugins, 0)->type,
                                  w->o.plugin_config ? w->o.plugin_config : "{}", err);
  if (rc != 0) goto fail;
  mu_runner_config cfg = {.slots = 4,
                          .spool_dir = w->spool,
                          .agent_id = "plugin-test",
                          .helper_path = w->o.helper_path,
                          .output_limit = w->o.output_limit,
                          .grace_ms = w->o.grace_ms,
                          .cgroup_name = "muster-plugin-test",
                          .prepare_dir = prepare_dir,
                          .prepare_arg = w};
  mu_runner_sink sink = {on_event, w};
  rc = mu_runner_new(&w->loop, w->plugins, &cfg, &sink, &w->runner, err);
  if (rc != 0) goto fail;
  *ret = w;
  return 0;
fail:
  w->runner = NULL;
  muster_pt_world_free(w);
  return rc;
}

const mu_plugin_info *muster_pt_world_plugin(const muster_pt_world *w) { return mu_plugin_host_info(w->plugins, 0); }

static void on_closed(void *arg) { ((muster_pt_world *)arg)->closed = true; }

void muster_pt_world_free(muster_pt_world *w) {
  if (w == NULL) return;
  if (w->runner != NULL) {
    mu_runner_close(w->runner, on_closed, w);
    while (!w->closed) uv_run(&w->loop, UV_RUN_ONCE);
  }
  if (w->remote != NULL) mu_plugin_remote_close(w->remote, NULL, NULL);
  uv_close((uv_handle_t *)&w->stall, NULL);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&w->loop) != 0) fprintf(stderr, "muster-plugin-test: the plugin left libuv handles open\n");
  mu_plugin_host_free(w->plugins);
  mu_plugin_host_free(w->loaded); /* dlclose after the last task of it */
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->spool);
  if (system(cmd) != 0) fprintf(stderr, "muster-plugin-test: could not remove %s\n", w->spool);
  free(w);
}

/* The parent pid from /proc/PID/stat, or -1. */
static int parent_of(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')');
  int ppid = -1;
  char st = 0;
  if (rp == NULL || sscanf(rp + 1, " %c %d", &st, &ppid) != 2 || st == 'Z') return -1;
  return ppid;
}

/* True for the runner's exec server (`muster-exec --server`, agent/exec/exec_server.h): a child
 * of this process that lives across tasks, as it does in the agent, and is no task's. */
static bool is_exec_server(int pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char *base = strrchr(buf, '/');
  if (strncmp(base != NULL ? base + 1 : buf, "muster-exec", 11) != 0) return false;
  for (ssize_t i = (ssize_t)strlen(buf) + 1; i < n; i += (ssize_t)strlen(buf + i) + 1)
    if (strcmp(buf + i, "--server") == 0) return true;
  return false;
}

/* Processes the task left behind: still carrying MUSTER_TASK_ID=task_id in their environment
 * (started through the supervisor), or children of this process other than the plugin host
 * (started by the plugin behind the supervisor's back). They are killed once counted. */
static int leftovers(const char *task_id, int host_pid, int *ret_pid) {
  char want[128];
  int wl = snprintf(want, sizeof want, "MUSTER_TASK_ID=%s", task_id);
  DIR *d = opendir("/proc");
  if (d == NULL) return 0;
  int n = 0;
  struct dirent *de;
  size_t cap = 256 * 1024;
  char *buf = malloc(cap);
  if (buf == NULL) {
    closedir(d);
    return 0;
  }
  while ((de = readdir(d)) != NULL) {
    int pid = atoi(de->d_name);
    if (pid <= 0 || pid == getpid() || pid == host_pid) continue;
    if (parent_of(pid) == getpid() && !is_exec_server(pid)) {
      n++;
      *ret_pid = pid;
      kill(pid, SIGKILL);
      continue;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t len = read(fd, buf, cap - 1);
    close(fd);
    for (ssize_t i = 0; i < len;) {
      size_t el = strnlen(buf + i, (size_t)(len - i));
      if ((int)el == wl && memcmp(buf + i, want, (size_t)wl) == 0) {
        n++;
        *ret_pid = pid;
        kill(pid, SIGKILL);
        break;
      }
      i += (ssize_t)el + 1;
    }
  }
  closedir(d);
  free(buf);
  return n;
}

typedef struct canceller {
  muster_pt_world *w;
  uv_timer_t t;
} canceller;

static void on_cancel_timer(uv_timer_t *t) {
  canceller *c = t->data;
  mu_err e = {0};
  if (c->w->cur != NULL) mu_runner_cancel(c->w->runner, c->w->cur->task_id, 1, "muster-plugin-test", &e);
}

int muster_pt_run(muster_pt_world *w, const muster_pt_run_opts *ro, muster_pt_result *r, mu_err *err) {
  memset(r, 0, sizeof *r);
  r->out = calloc(1, w->o.capture_max + 1);
  r->err = calloc(1, w->o.capture_max + 1);
  if (r->out == NULL || r->err == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(r->task_id, sizeof r->task_id, "mpt-%d-%x-%llu", (int)getpid(), w->nonce, (unsigned long long)++w->runs);
  w->cur = r;
  uint64_t t0 = uv_hrtime();
  int rc = mu_runner_assign(w->runner, "plugin-test", r->task_id, 1, ro->spec_json, ro->params, ro->n_params, err);
  if (rc != 0) {
    w->cur = NULL;
    return rc;
  }
  stall_mark(w); /* the assign's own work (spec, task dir) is the agent's, not the plugin's */
  canceller c = {.w = w};
  uv_timer_init(&w->loop, &c.t);
  c.t.data = &c;
  if (ro->cancel_after_ms >= 0) uv_timer_start(&c.t, on_cancel_timer, (uint64_t)ro->cancel_after_ms, 0);
  int64_t deadline = ro->deadline_ms > 0 ? ro->deadline_ms : 120000;
  bool gave_up = false;
  while (!mu_task_state_final(r->state)) {
    uv_run(&w->loop, UV_RUN_ONCE);
    if (!gave_up && (int64_t)((uv_hrtime() - t0) / 1000000) > deadline) {
      gave_up = true;
      mu_runner_cancel(w->runner, r->task_id, 1, "muster-plugin-test: deadline", NULL);
    }
  }
  r->wall_ms = (int64_t)((uv_hrtime() - t0) / 1000000);
  uv_close((uv_handle_t *)&c.t, NULL);
  uv_run(&w->loop, UV_RUN_NOWAIT); /* cleanup() and closes that follow the final event */
  w->cur = NULL;
  mu_plugin_remote_stats st = {0};
  if (w->remote != NULL) mu_plugin_remote_stats_get(w->remote, &st);
  r->leftover_pids = leftovers(r->task_id, st.pid, &r->leftover_pid);
  if (gave_up)
    return mu_err_set(err, MU_ETIMEDOUT, "task %s: no final state within %lld ms", r->task_id, (long long)deadline);
  return 0;
}

void muster_pt_result_free(muster_pt_result *r) {
  free(r->out);
  free(r->err);
  for (size_t i = 0; i < r->n_params; i++) {
    free(r->param_keys[i]);
    free(r->param_values[i]);
  }
  memset(r, 0, sizeof *r);
}

static void unescape(const char *in, char *out, size_t cap) {
  size_t n = 0;
  for (; *in && n + 1 < cap; in++) {
    if (in[0] == '\\' && in[1] == 'n') {
      out[n++] = '\n';
      in++;
    } else if (in[0] == '\\' && in[1] == 't') {
      out[n++] = '\t';
      in++;
    } else {
      out[n++] = *in;
    }
  }
  out[n] = '\0';
}

static const char *param_of(const muster_pt_result *r, const char *key) {
  for (size_t i = 0; i < r->n_params; i++)
    if (strcmp(r->param_keys[i], key) == 0) return r->param_values[i];
  return NULL;
}

static int text_check(const char *what, const char *have, char op, const char *want, char *why, size_t cap) {
  bool ok = op == '=' ? strcmp(have, want) == 0 : strstr(have, want) != NULL;
  if (!ok)
    snprintf(why, cap, "%s: wanted %s \"%.200s\", got \"%.300s\"", what, op == '=' ? "exactly" : "to contain", want,
             have);
  return ok ? 0 : 1;
}

static int num_check(const char *what, double have, const char *op, double want, char *why, size_t cap) {
  bool ok = strcmp(op, "=") == 0 ? have == want : strcmp(op, ">=") == 0 ? have >= want : have <= want;
  if (!ok) snprintf(why, cap, "%s: wanted %s %g, got %g", what, op, want, have);
  return ok ? 0 : 1;
}

int muster_pt_expect(const muster_pt_result *r, const char *a, char *why, size_t cap) {
  char want[4096];
  why[0] = '\0';
  const char *op = strpbrk(a, "=~<>");
  if (strncmp(a, "noparam.", 8) == 0) {
    const char *v = param_of(r, a + 8);
    if (v != NULL) snprintf(why, cap, "param %s: wanted none, got \"%.200s\"", a + 8, v);
    return v != NULL;
  }
  if (op == NULL || op == a) {
    snprintf(why, cap, "cannot read assertion \"%s\" (see muster-plugin-test --help)", a);
    return MU_EINVAL;
  }
  size_t kl = (size_t)(op - a);
  char key[160];
  snprintf(key, sizeof key, "%.*s", (int)(kl < sizeof key ? kl : sizeof key - 1), a);
  char nop[3] = {op[0], 0, 0};
  if ((op[0] == '>' || op[0] == '<') && op[1] == '=') nop[1] = '=';
  unescape(op + strlen(nop), want, sizeof want);
  char *end = NULL;
  double num = strtod(want, &end);
  bool is_num = end != want && *end == '\0';
  bool text_op = strcmp(nop, "=") == 0 || strcmp(nop, "~") == 0;
  if (strcmp(key, "state") == 0 && strcmp(nop, "=") == 0)
    return text_check("state", muster_pt_state_name(r->state), '=', want, why, cap);
  if ((strcmp(key, "stdout") == 0 || strcmp(key, "stderr") == 0 || strcmp(key, "message") == 0) && text_op)
    return text_check(key, key[0] == 'm' ? r->message : key[3] == 'o' ? r->out : r->err, nop[0], want, why, cap);
  if (strncmp(key, "param.", 6) == 0 && text_op) {
    const char *v = param_of(r, key + 6);
    if (v == NULL) {
      snprintf(why, cap, "param %s: not set", key + 6);
      return 1;
    }
    return text_check(key, v, nop[0], want, why, cap);
  }
  if (!is_num) {
    snprintf(why, cap, "cannot read assertion \"%s\" (see muster-plugin-test --help)", a);
    return MU_EINVAL;
  }
  if (strcmp(nop, "~") == 0) nop[0] = '=';
  if (strcmp(key, "exit") == 0) return num_check("exit code", r->exit_code, nop, num, why, cap);
  if (strcmp(key, "signal") == 0) return num_check("signal", r->signal, nop, num, why, cap);
  if (strcmp(key, "progress") == 0) return num_check("progress reports", r->n_progress, nop, num, why, cap);
  if (strcmp(key, "pct") == 0) return num_check("last progress percent", r->last_pct, nop, num, why, cap);
  if (strcmp(key, "ms") == 0) return num_check("wall ms", (double)r->wall_ms, nop, num, why, cap);
  if (strcmp(key, "stall") == 0)
    return num_check("longest loop stall (ms)", (double)r->max_stall_ms, nop, num, why, cap);
  if (strcmp(key, "leftover") == 0) return num_check("processes left behind", r->leftover_pids, nop, num, why, cap);
  snprintf(why, cap, "cannot read assertion \"%s\" (see muster-plugin-test --help)", a);
  return MU_EINVAL;
}
