/* muster-plugin-host: runs one task-type plugin (.so) out of the agent's process. The agent
 * starts one per plugin type with one end of a socketpair as fd 3; this process dlopen()s
 * the plugin, says HELLO with its descriptor, and from then on plays the agent's part of
 * muster_plugin.h: every host API call becomes a message to the agent (pmsg.h), every message
 * from the agent becomes a plugin callback. The plugin and its header do not change.
 * Timers, user data and the context live here; output, progress, params, finish, processes
 * and logs go to the agent, which runs processes under its supervisor as for any plugin.
 * When the agent goes away (EOF) the plugin is unloaded and the process exits. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "agent/plugin/pchan.h"
#include "plugins/sdk/muster_plugin.h"

#define CALL_TIMEOUT_MS 30000
#define PARAM_KEY_MAX 128
#define PARAM_VALUE_MAX 4096
#define PARAMS_MAX 256
#define OUTPUT_CHUNK (1024 * 1024)
#define SPAWN_MAX_STRS 8192

struct muster_timer {
  struct muster_timer *next;
  uv_timer_t h;
  muster_task *task;
  muster_timer_cb cb;
  void *user;
  bool stopped;
};

struct muster_proc {
  struct muster_proc *next;
  int64_t id;
  muster_proc_exit_cb on_exit;
  muster_proc_output_cb on_output;
  void *user;
  bool exited;
};

struct muster_task {
  struct muster_task *next;
  uint64_t id;    /* the agent's handle */
  mu_pmsg *start; /* backs ctx's strings */
  muster_task_context ctx;
  const char **keys, **values;
  void *user_data;
  bool started; /* start() ran: cleanup() is owed */
  bool finished, cleaning;
  uint32_t params;
  struct muster_timer *timers;
  int open_timers;
  struct muster_proc *procs;
};

/* SDK v2: the plugin's env here (its state); its metric families live in the agent, known here
 * by number and label count. */
struct muster_plugin_env {
  void *state;
  bool configured;
};

typedef struct hmetric {
  char name[64];
  size_t n_labels;
} hmetric;

typedef struct host {
  uv_loop_t *loop;
  muster_plugin_env env;
  hmetric metrics[MUSTER_METRIC_MAX_FAMILIES];
  size_t n_metrics;
  mu_pchan *ch;
  void *dl;
  const muster_plugin *p;
  muster_task *tasks;
  int64_t next_call, next_proc;
} host;

static host H; /* the process's one daemon context: the host API has no other way to reach it */

static void send_or_die(uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs,
                        size_t n_strs) {
  mu_err e = {0};
  if (mu_pchan_send(H.ch, kind, task, ints, n_ints, strs, n_strs, &e) != 0 && e.code != MU_ENOSPC) {
    fprintf(stderr, "muster-plugin-host: %s: %s\n", mu_pm_kind_name(kind), e.msg);
  }
}

static mu_pstr S(const char *s) { return (mu_pstr){s ? s : "", s ? strlen(s) : 0}; }

/* ---- the host API, forwarded ---- */

static int a_emit_output(muster_task *t, muster_stream stream, const void *data, size_t len) {
  if (t->finished) return -EALREADY;
  if (stream != MUSTER_STDOUT && stream != MUSTER_STDERR) return -EINVAL;
  if (data == NULL && len > 0) return -EINVAL;
  for (size_t off = 0; off < len || (len == 0 && off == 0); off += OUTPUT_CHUNK) {
    size_t n = len - off < OUTPUT_CHUNK ? len - off : OUTPUT_CHUNK;
    int64_t ints[] = {stream};
    mu_pstr strs[] = {{(const char *)data + off, n}};
    send_or_die(MU_PM_OUTPUT, t->id, ints, 1, strs, 1);
    if (len == 0) break;
  }
  return 0;
}

static int a_report_progress(muster_task *t, double pct, const char *msg) {
  if (t->finished) return -EALREADY;
  if (!(pct >= 0)) pct = 0;
  if (pct > 100) pct = 100;
  int64_t ints[] = {(int64_t)(pct * 1e6)};
  mu_pstr strs[] = {S(msg)};
  send_or_die(MU_PM_PROGRESS, t->id, ints, 1, strs, 1);
  return 0;
}

static int a_set_param(muster_task *t, const char *key, const char *value) {
  if (t->finished) return -EALREADY;
  if (key == NULL || value == NULL || *key == '\0' || strlen(key) > PARAM_KEY_MAX) return -EINVAL;
  for (const char *c = key; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' ||
          *c == '-'))
      return -EINVAL;
  if (strlen(value) > PARAM_VALUE_MAX || t->params >= PARAMS_MAX) return -ENOSPC;
  t->params++;
  mu_pstr strs[] = {S(key), S(value)};
  send_or_die(MU_PM_PARAM, t->id, NULL, 0, strs, 2);
  return 0;
}

static int a_finish(muster_task *t, const muster_result *r) {
  if (r == NULL) return -EINVAL;
  if (t->finished) return -EALREADY;
  t->finished = true;
  int64_t ints[] = {r->state, r->exit_code, r->signal, r->message != NULL};
  mu_pstr strs[] = {S(r->message)};
  send_or_die(MU_PM_FINISH, t->id, ints, 4, strs, 1);
  return 0;
}

static int call(uint8_t kind, muster_task *t, int64_t *ints, size_t n_ints, const mu_pstr *strs, size_t n_strs,
                char *errbuf) {
  int64_t id = ++H.next_call;
  ints[0] = id;
  mu_pmsg *reply = NULL;
  mu_err e = {0};
  if (mu_pchan_call(H.ch, kind, t->id, ints, n_ints, strs, n_strs, id, CALL_TIMEOUT_MS, &reply, &e) != 0) {
    if (errbuf != NULL) snprintf(errbuf, MUSTER_ERRBUF_SIZE, "plugin host: %s", e.msg);
    return e.code == MU_ETIMEDOUT ? -ETIMEDOUT : -EIO;
  }
  int rc = (int)reply->ints[1];
  if (rc != 0 && errbuf != NULL) snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s", reply->strs[0].p);
  free(reply);
  return rc;
}

static int a_spawn(muster_task *t, const muster_spawn_opts *o, muster_proc **ret, char *errbuf) {
  if (o == NULL || o->argv == NULL || o->argv[0] == NULL || o->on_exit == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spawn: argv and on_exit are required");
    return -EINVAL;
  }
  size_t n_argv = 0, n_env = 0;
  while (o->argv[n_argv] != NULL) n_argv++;
  while (o->env != NULL && o->env[n_env] != NULL) n_env++;
  if (n_argv + n_env + 2 > SPAWN_MAX_STRS) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spawn: more than %d arguments and variables", SPAWN_MAX_STRS - 2);
    return -ENOSPC;
  }
  mu_pstr *strs = calloc(n_argv + n_env + 2, sizeof *strs);
  struct muster_proc *mp = calloc(1, sizeof *mp);
  if (strs == NULL || mp == NULL) {
    free(strs);
    free(mp);
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spawn: out of memory");
    return -ENOMEM;
  }
  bool want_output = o->size >= offsetof(muster_spawn_opts, on_output) + sizeof o->on_output && o->on_output;
  strs[0] = S(o->cwd);
  strs[1] = (mu_pstr){o->stdin_data ? o->stdin_data : "", o->stdin_data ? o->stdin_len : 0};
  for (size_t i = 0; i < n_argv; i++) strs[2 + i] = S(o->argv[i]);
  for (size_t i = 0; i < n_env; i++) strs[2 + n_argv + i] = S(o->env[i]);
  mp->id = ++H.next_proc;
  mp->on_exit = o->on_exit;
  mp->on_output = want_output ? o->on_output : NULL;
  mp->user = o->user;
  /* Listed before the call: its output and exit may arrive while we wait (they are held). */
  mp->next = t->procs;
  t->procs = mp;
  int64_t ints[] = {0, mp->id, want_output, o->stdin_data != NULL, o->cwd != NULL, (int64_t)n_argv};
  int rc = call(MU_PM_SPAWN, t, ints, 6, strs, n_argv + n_env + 2, errbuf);
  free(strs);
  if (rc != 0) {
    t->procs = mp->next;
    free(mp);
    return rc;
  }
  if (ret != NULL) *ret = mp;
  return 0;
}

static int a_proc_kill(muster_task *t, muster_proc *mp) {
  if (mp == NULL) return -EINVAL;
  if (mp->exited) return -EALREADY;
  int64_t ints[] = {mp->id};
  send_or_die(MU_PM_PROC_KILL, t->id, ints, 1, NULL, 0);
  return 0;
}

static uv_loop_t *a_loop(muster_task *t) {
  (void)t;
  return H.loop;
}

static void maybe_free_task(muster_task *t);

static void on_timer_closed(uv_handle_t *h) {
  struct muster_timer *tm = h->data;
  muster_task *t = tm->task;
  for (struct muster_timer **pp = &t->timers; *pp != NULL; pp = &(*pp)->next)
    if (*pp == tm) {
      *pp = tm->next;
      break;
    }
  free(tm);
  t->open_timers--;
  maybe_free_task(t);
}

static void timer_release(struct muster_timer *tm) {
  if (tm->stopped) return;
  tm->stopped = true;
  uv_timer_stop(&tm->h);
  uv_close((uv_handle_t *)&tm->h, on_timer_closed);
}

static void on_timer(uv_timer_t *h) {
  struct muster_timer *tm = h->data;
  bool one_shot = uv_timer_get_repeat(h) == 0;
  tm->cb(tm->task, tm, tm->user);
  if (one_shot) timer_release(tm);
}

static int a_timer_start(muster_task *t, uint64_t timeout_ms, uint64_t repeat_ms, muster_timer_cb cb, void *user,
                         muster_timer **ret) {
  if (cb == NULL) return -EINVAL;
  if (t->finished || t->cleaning) return -EALREADY;
  struct muster_timer *tm = calloc(1, sizeof *tm);
  if (tm == NULL) return -ENOMEM;
  tm->task = t;
  tm->cb = cb;
  tm->user = user;
  uv_timer_init(H.loop, &tm->h);
  tm->h.data = tm;
  uv_timer_start(&tm->h, on_timer, timeout_ms, repeat_ms);
  tm->next = t->timers;
  t->timers = tm;
  t->open_timers++;
  if (ret != NULL) *ret = tm;
  return 0;
}

static void a_timer_stop(muster_task *t, muster_timer *tm) {
  (void)t;
  if (tm != NULL) timer_release(tm);
}

static const muster_task_context *a_context(muster_task *t) { return &t->ctx; }
static void a_set_user_data(muster_task *t, void *d) { t->user_data = d; }
static void *a_user_data(muster_task *t) { return t->user_data; }

static void a_log(muster_task *t, muster_log_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int64_t ints[] = {level};
  mu_pstr strs[] = {S(msg)};
  send_or_die(MU_PM_LOG, t->id, ints, 1, strs, 1);
}

static int a_cancel_extend(muster_task *t, uint64_t ms) {
  int64_t ints[] = {0, (int64_t)(ms > INT64_MAX ? INT64_MAX : ms)};
  return call(MU_PM_CANCEL_EXTEND, t, ints, 2, NULL, 0, NULL);
}

static int a_cancel_withdraw(muster_task *t) {
  int64_t ints[] = {0};
  return call(MU_PM_CANCEL_WITHDRAW, t, ints, 1, NULL, 0, NULL);
}

static muster_plugin_env *a_env(muster_task *t) {
  (void)t;
  return &H.env;
}

static void *a_plugin_state(muster_task *t) {
  (void)t;
  return H.env.state;
}

/* ---- SDK v2: the plugin-wide API, forwarded ---- */

static void p_set_state(muster_plugin_env *env, void *state) { env->state = state; }
static void *p_state(muster_plugin_env *env) { return env->state; }

static int p_metric_register(muster_plugin_env *env, const muster_metric_desc *d, muster_metric **ret, char *errbuf) {
  (void)env;
  if (ret != NULL) *ret = NULL;
  if (d == NULL || d->name == NULL || d->name[0] == '\0' || strlen(d->name) > 63) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric name: want [a-z0-9_]{1,63}");
    return -EINVAL;
  }
  for (size_t i = 0; i < H.n_metrics; i++)
    if (strcmp(H.metrics[i].name, d->name) == 0) {
      if (ret != NULL) *ret = (muster_metric *)(uintptr_t)(i + 1);
      return 0;
    }
  size_t nl = 0;
  while (d->labels != NULL && d->labels[nl] != NULL && nl <= MUSTER_METRIC_MAX_LABELS) nl++;
  if (H.n_metrics >= MUSTER_METRIC_MAX_FAMILIES || nl > MUSTER_METRIC_MAX_LABELS ||
      d->n_buckets > MUSTER_METRIC_MAX_BUCKETS) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric %s: over a bound (families, labels or buckets)", d->name);
    return -ENOSPC;
  }
  int64_t ints[3 + MUSTER_METRIC_MAX_BUCKETS] = {(int64_t)H.n_metrics, d->type, (int64_t)d->n_buckets};
  for (size_t i = 0; i < d->n_buckets; i++) ints[3 + i] = mu_pm_double_bits(d->buckets[i]);
  mu_pstr strs[2 + MUSTER_METRIC_MAX_LABELS] = {S(d->name), S(d->help)};
  for (size_t i = 0; i < nl; i++) strs[2 + i] = S(d->labels[i]);
  send_or_die(MU_PM_METRIC_DEF, 0, ints, 3 + d->n_buckets, strs, 2 + nl);
  hmetric *hm = &H.metrics[H.n_metrics++];
  snprintf(hm->name, sizeof hm->name, "%s", d->name);
  hm->n_labels = nl;
  if (ret != NULL) *ret = (muster_metric *)(uintptr_t)H.n_metrics;
  return 0;
}

static void p_metric(int op, muster_metric *m, const char *const *values, double v) {
  uintptr_t id = (uintptr_t)m;
  if (id == 0 || id > H.n_metrics) return;
  hmetric *hm = &H.metrics[id - 1];
  int64_t ints[] = {(int64_t)id - 1, op, mu_pm_double_bits(v)};
  mu_pstr strs[MUSTER_METRIC_MAX_LABELS];
  for (size_t i = 0; i < hm->n_labels; i++) strs[i] = S(values != NULL ? values[i] : NULL);
  send_or_die(MU_PM_METRIC, 0, ints, 3, strs, hm->n_labels);
}
static void p_metric_add(muster_metric *m, const char *const *values, double v) { p_metric(1, m, values, v); }
static void p_metric_set(muster_metric *m, const char *const *values, double v) { p_metric(2, m, values, v); }
static void p_metric_observe(muster_metric *m, const char *const *values, double v) { p_metric(3, m, values, v); }

static void p_log(muster_plugin_env *env, muster_log_level level, const char *fmt, ...) {
  (void)env;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int64_t ints[] = {level};
  mu_pstr strs[] = {S(msg)};
  send_or_die(MU_PM_LOG, 0, ints, 1, strs, 1);
}

static const muster_plugin_api papi = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .size = sizeof(muster_plugin_api),
    .set_state = p_set_state,
    .state = p_state,
    .metric_register = p_metric_register,
    .metric_add = p_metric_add,
    .metric_set = p_metric_set,
    .metric_observe = p_metric_observe,
    .log = p_log,
};

static bool v2(void) { return H.p->abi_version >= 2; }

static void on_configure(mu_pmsg *m) {
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  int rc = 0;
  if (v2() && H.p->configure != NULL) rc = H.p->configure(&H.env, &papi, m->strs[0].p, errbuf);
  if (rc == 0) H.env.configured = true;
  int64_t ints[] = {m->ints[0], rc};
  mu_pstr strs[] = {S(errbuf)};
  send_or_die(MU_PM_CONFIGURED, 0, ints, 2, strs, 1);
}

static void on_health(mu_pmsg *m) {
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  int h = v2() && H.p->health != NULL ? H.p->health(&H.env, &papi, errbuf) : MUSTER_HEALTH_OK;
  int64_t ints[] = {m->ints[0], h};
  mu_pstr strs[] = {S(errbuf)};
  send_or_die(MU_PM_HEALTH_IS, 0, ints, 2, strs, 1);
}

static const muster_host_api api = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .size = sizeof(muster_host_api),
    .emit_output = a_emit_output,
    .report_progress = a_report_progress,
    .set_param = a_set_param,
    .finish = a_finish,
    .spawn = a_spawn,
    .proc_kill = a_proc_kill,
    .loop = a_loop,
    .timer_start = a_timer_start,
    .timer_stop = a_timer_stop,
    .context = a_context,
    .set_user_data = a_set_user_data,
    .user_data = a_user_data,
    .log = a_log,
    .cancel_extend = a_cancel_extend,
    .cancel_withdraw = a_cancel_withdraw,
    .env = a_env,
    .plugin_state = a_plugin_state,
};

/* ---- messages from the agent ---- */

static muster_task *find_task(uint64_t id) {
  for (muster_task *t = H.tasks; t != NULL; t = t->next)
    if (t->id == id) return t;
  return NULL;
}

static void maybe_free_task(muster_task *t) {
  if (!t->cleaning || t->open_timers > 0) return;
  for (muster_task **pp = &H.tasks; *pp != NULL; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  while (t->procs != NULL) {
    struct muster_proc *n = t->procs->next;
    free(t->procs);
    t->procs = n;
  }
  free(t->keys);
  free(t->values);
  free(t->start);
  free(t);
}

static void start_failed(uint64_t id, const char *why) {
  mu_pstr strs[] = {S(why)};
  send_or_die(MU_PM_START_FAILED, id, NULL, 0, strs, 1);
}

static void on_start(mu_pmsg *m) {
  int64_t n_params = m->ints[1];
  if (find_task(m->task) != NULL || n_params < 0 || (uint64_t)n_params * 2 + 6 != m->n_strs) {
    start_failed(m->task, "plugin host: malformed START");
    free(m);
    return;
  }
  muster_task *t = calloc(1, sizeof *t);
  const char **keys = calloc((size_t)n_params + 1, sizeof *keys);
  const char **values = calloc((size_t)n_params + 1, sizeof *values);
  if (t == NULL || keys == NULL || values == NULL) {
    free(t);
    free(keys);
    free(values);
    start_failed(m->task, "plugin host: out of memory");
    free(m);
    return;
  }
  t->id = m->task;
  t->start = m;
  t->keys = keys;
  t->values = values;
  for (int64_t i = 0; i < n_params; i++) {
    keys[i] = m->strs[6 + 2 * i].p;
    values[i] = m->strs[7 + 2 * i].p;
  }
  t->ctx = (muster_task_context){
      .job_id = m->strs[0].p,
      .task_id = m->strs[1].p,
      .attempt = (uint32_t)m->ints[0],
      .agent_id = m->strs[2].p,
      .task_dir = m->strs[3].p,
      .spec_json = m->strs[4].p,
      .config_json = m->strs[5].p,
      .n_params = (size_t)n_params,
      .param_keys = keys,
      .param_values = values,
  };
  t->next = H.tasks;
  H.tasks = t;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  /* validate() runs here, not at the agent's assign: the agent never waits on this process. */
  if (H.p->validate != NULL && H.p->validate(t->ctx.spec_json, t->ctx.config_json, errbuf) != 0) {
    t->finished = true;
    start_failed(t->id, errbuf[0] ? errbuf : "validation failed");
    return;
  }
  errbuf[0] = '\0';
  t->started = true;
  if (H.p->start(t, &api, errbuf) != 0) {
    t->finished = true;
    start_failed(t->id, errbuf[0] ? errbuf : "start failed");
  }
}

static void on_cleanup(muster_task *t) {
  if (t->cleaning) return;
  t->cleaning = true;
  t->finished = true;
  for (struct muster_timer *tm = t->timers; tm != NULL; tm = tm->next) timer_release(tm);
  if (t->started && H.p->cleanup != NULL) H.p->cleanup(t, &api, t->user_data);
  maybe_free_task(t); /* now, or when the last timer handle has closed */
}

static void on_proc_exit(muster_task *t, mu_pmsg *m) {
  struct muster_proc **pp = &t->procs;
  while (*pp != NULL && (*pp)->id != m->ints[0]) pp = &(*pp)->next;
  if (*pp == NULL) return;
  struct muster_proc *mp = *pp;
  mp->exited = true;
  muster_proc_exit x = {
      .exit_code = (int)m->ints[1],
      .signal = (int)m->ints[2],
      .timed_out = (int)m->ints[3],
      .cancelled = (int)m->ints[4],
      .oom_killed = (int)m->ints[5],
      .suggested_state = (muster_state)m->ints[6],
      .message = m->strs[0].p,
      .wall_ms = m->ints[7],
      .user_cpu_us = m->ints[8],
      .sys_cpu_us = m->ints[9],
      .max_rss_bytes = m->ints[10],
  };
  mp->on_exit(t, mp, &x, mp->user);
  for (pp = &t->procs; *pp != NULL; pp = &(*pp)->next)
    if (*pp == mp) {
      *pp = mp->next;
      break;
    }
  free(mp);
}

static void on_proc_output(muster_task *t, mu_pmsg *m) {
  for (struct muster_proc *mp = t->procs; mp != NULL; mp = mp->next)
    if (mp->id == m->ints[0] && mp->on_output != NULL && !mp->exited) {
      mp->on_output(t, mp, (muster_stream)m->ints[1], m->strs[0].p, m->strs[0].len, mp->user);
      return;
    }
}

static void on_msg(mu_pchan *ch, mu_pmsg *m, void *arg) {
  (void)ch;
  (void)arg;
  if (m->kind == MU_PM_START) {
    on_start(m); /* keeps m */
    return;
  }
  if (m->kind == MU_PM_PING) {
    send_or_die(MU_PM_PONG, 0, m->ints, 1, NULL, 0);
    free(m);
    return;
  }
  if (m->kind == MU_PM_CONFIGURE || m->kind == MU_PM_HEALTH) {
    if (m->kind == MU_PM_CONFIGURE) on_configure(m);
    else on_health(m);
    free(m);
    return;
  }
  muster_task *t = find_task(m->task);
  if (t != NULL && !t->cleaning) {
    switch (m->kind) {
      case MU_PM_CANCEL:
        if (H.p->cancel != NULL && !t->finished) H.p->cancel(t, &api, (muster_cancel_reason)m->ints[0]);
        break;
      case MU_PM_CLEANUP: on_cleanup(t); break;
      case MU_PM_PROC_EXIT: on_proc_exit(t, m); break;
      case MU_PM_PROC_OUTPUT: on_proc_output(t, m); break;
      default: fprintf(stderr, "muster-plugin-host: unexpected %s\n", mu_pm_kind_name(m->kind));
    }
  }
  free(m);
}

static void on_error(mu_pchan *ch, const mu_err *err, void *arg) {
  (void)ch;
  (void)arg;
  if (err->code != MU_EIO) fprintf(stderr, "muster-plugin-host: %s\n", err->msg);
  /* The agent is gone or broke the protocol: nothing here outlives it. */
  uv_stop(H.loop);
}

static int usage(void) {
  fprintf(stderr,
          "usage: muster-plugin-host --fd N PLUGIN.so\n"
          "Started by muster-agent for a plugin in process isolation (docs/plugins.md).\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 4 || strcmp(argv[1], "--fd") != 0) return usage();
  int fd = atoi(argv[2]);
  if (fd < 3) return usage();
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the agent */
  signal(SIGPIPE, SIG_IGN);
  H.loop = uv_default_loop();
  mu_pchan_cb cb = {on_msg, on_error, NULL};
  mu_err e = {0};
  if (mu_pchan_open(H.loop, fd, NULL, &cb, &H.ch, &e) != 0) {
    fprintf(stderr, "muster-plugin-host: %s\n", e.msg);
    return 1;
  }
  char why[MUSTER_ERRBUF_SIZE] = "";
  H.dl = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
  if (H.dl == NULL) {
    snprintf(why, sizeof why, "cannot load: %s", dlerror());
  } else {
    H.p = dlsym(H.dl, MUSTER_PLUGIN_SYMBOL);
    if (H.p == NULL) snprintf(why, sizeof why, "no %s symbol (not a Muster plugin?)", MUSTER_PLUGIN_SYMBOL);
    else if (H.p->abi_version < MUSTER_PLUGIN_ABI_MIN || H.p->abi_version > MUSTER_PLUGIN_ABI_VERSION)
      snprintf(why, sizeof why, "built for ABI version %u, this host speaks %u to %u", H.p->abi_version,
               MUSTER_PLUGIN_ABI_MIN, MUSTER_PLUGIN_ABI_VERSION);
    else if (H.p->start == NULL || H.p->type == NULL) snprintf(why, sizeof why, "no type or no start callback");
  }
  int rc = 0;
  if (why[0] != '\0') {
    mu_pstr strs[] = {S(why)};
    send_or_die(MU_PM_LOAD_FAILED, 0, NULL, 0, strs, 1);
    rc = 2;
  } else {
    const char *schema = v2() && H.p->describe != NULL ? H.p->describe(&H.env, &papi) : NULL;
    int64_t ints[] = {H.p->abi_version,           H.p->validate != NULL, H.p->cancel != NULL,
                      H.p->cleanup != NULL,       (int64_t)getpid(),     v2() && H.p->configure != NULL,
                      v2() && H.p->health != NULL};
    mu_pstr strs[] = {S(H.p->type), S(H.p->version), S(H.p->description), S(schema)};
    send_or_die(MU_PM_HELLO, 0, ints, 7, strs, 4);
    uv_run(H.loop, UV_RUN_DEFAULT);
    if (v2() && H.p->shutdown != NULL && H.env.configured) H.p->shutdown(&H.env, &papi);
  }
  mu_pchan_flush(H.ch, 1000); /* a LOAD_FAILED, or the last words of the tasks */
  mu_pchan_close(H.ch, NULL, NULL);
  uv_run(H.loop, UV_RUN_NOWAIT);
  if (H.dl != NULL) dlclose(H.dl); /* runs the plugin's destructors: a crash here is reported */
  return rc;
}
