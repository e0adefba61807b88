/* The host API table handed to plugins (muster_host_api in plugins/sdk/muster_plugin.h),
 * implemented on the runner's tasks: output, progress and params go to the runner's event
 * sink; spawn wraps the supervisor with the task's env, dir, user, limits and control channel;
 * timers are libuv timers the task owns and releases when it ends. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/exec/env.h"
#include "agent/exec/plugin_host.h"
#include "agent/exec/task_int.h"
#include "lib/base/log.h"

static void set_errbuf(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_errbuf(char *errbuf, const char *fmt, ...) {
  if (errbuf == NULL) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, MUSTER_ERRBUF_SIZE, fmt, ap);
  va_end(ap);
}

static int h_emit_output(muster_task *t, muster_stream stream, const void *data, size_t len) {
  if (t->final_sent) return -EALREADY;
  if (stream != MUSTER_STDOUT && stream != MUSTER_STDERR) return -EINVAL;
  if (data == NULL && len > 0) return -EINVAL;
  mu_task_emit_output(t, (int)stream, data, len);
  return 0;
}

static int h_report_progress(muster_task *t, double pct, const char *msg) {
  if (t->final_sent) return -EALREADY;
  if (!(pct >= 0)) pct = 0; /* also catches NaN */
  if (pct > 100) pct = 100;
  mu_task_emit_progress(t, pct, msg ? msg : "");
  return 0;
}

static int h_set_param(muster_task *t, const char *key, const char *value) {
  if (t->final_sent) return -EALREADY;
  return mu_task_set_param(t, key, value);
}

static int h_finish(muster_task *t, const muster_result *res) {
  if (res == NULL) return -EINVAL;
  return mu_task_finish(t, res->state, res->exit_code, res->signal, res->message);
}

/* ---- supervised processes ---- */

static void warn_control(muster_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn_control(muster_task *t, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  mu_task_emit_output(t, MUSTER_STDERR, line, (size_t)n);
}

static void on_proc_output(mu_proc *p, void *arg, int stream, const char *data, size_t len) {
  (void)p;
  struct muster_proc *mp = arg;
  mu_task_emit_output(mp->task, stream, data, len);
  if (mp->on_output != NULL) mp->on_output(mp->task, mp, (muster_stream)stream, data, len, mp->user);
}

static void on_proc_control(mu_proc *p, void *arg, const mu_ctl_line *l) {
  (void)p;
  struct muster_proc *mp = arg;
  muster_task *t = mp->task;
  if (l->kind == MU_CTL_PROGRESS) {
    mu_task_emit_progress(t, l->percent, l->message);
  } else if (l->kind == MU_CTL_PARAM) {
    int rc = mu_task_set_param(t, l->key, l->value);
    if (rc != 0)
      warn_control(t, "muster: control: param %.128s not set: %s", l->key,
                   rc == -ENOSPC ? "too many params or value too long" : "bad key");
  } else {
    warn_control(t, "muster: control: line ignored: %s: %.200s", l->error, l->text ? l->text : "");
  }
}

static muster_state suggested(const mu_proc_result *res) {
  if (res->killed_for == MU_KILL_TIMEOUT) return MUSTER_STATE_TIMED_OUT;
  if (res->killed_for == MU_KILL_CANCEL) return MUSTER_STATE_CANCELLED;
  if (res->signal == 0 && res->exit_code == 0) return MUSTER_STATE_SUCCEEDED;
  return MUSTER_STATE_FAILED;
}

static void on_proc_exit(mu_proc *p, void *arg, const mu_proc_result *res) {
  (void)p;
  struct muster_proc *mp = arg;
  muster_task *t = mp->task;
  mp->proc = NULL;
  t->n_procs--;
  if (res->user_cpu_us >= 0) t->m.user_cpu_ms += res->user_cpu_us / 1000;
  if (res->sys_cpu_us >= 0) t->m.sys_cpu_ms += res->sys_cpu_us / 1000;
  if (res->max_rss_bytes > t->m.max_rss_bytes) t->m.max_rss_bytes = res->max_rss_bytes;
  if (res->cgroup_memory_peak_bytes > t->m.cgroup_memory_peak_bytes)
    t->m.cgroup_memory_peak_bytes = res->cgroup_memory_peak_bytes;
  if (res->io_read_bytes > 0) t->m.io_read_bytes += res->io_read_bytes;
  if (res->io_write_bytes > 0) t->m.io_write_bytes += res->io_write_bytes;
  t->oom = t->oom || res->oom_killed;
  muster_proc_exit x = {
      .exit_code = res->exit_code,
      .signal = res->signal,
      .timed_out = res->killed_for == MU_KILL_TIMEOUT,
      .cancelled = res->killed_for == MU_KILL_CANCEL,
      .oom_killed = res->oom_killed,
      .suggested_state = suggested(res),
      .message = res->message,
      .wall_ms = res->wall_ms,
      .user_cpu_us = res->user_cpu_us,
      .sys_cpu_us = res->sys_cpu_us,
      .max_rss_bytes = res->max_rss_bytes,
  };
  mp->on_exit(t, mp, &x, mp->user);
  for (struct muster_proc **pp = &t->procs; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == mp) {
      *pp = mp->next;
      break;
    }
  }
  free(mp);
  mu_task_schedule(t);
}

static int resolve_cwd(muster_task *t, const char *want, char *out, size_t cap) {
  if (want == NULL || *want == '\0') return snprintf(out, cap, "%s", t->cwd) < (int)cap ? 0 : -ENAMETOOLONG;
  if (want[0] == '/') return snprintf(out, cap, "%s", want) < (int)cap ? 0 : -ENAMETOOLONG;
  if (strstr(want, "..") != NULL) return -EINVAL;
  return snprintf(out, cap, "%s/%s", t->cwd, want) < (int)cap ? 0 : -ENAMETOOLONG;
}

static int h_spawn(muster_task *t, const muster_spawn_opts *o, muster_proc **ret, char *errbuf) {
  mu_runner *r = t->runner;
  /* After a cancel or timeout a plugin may still run its cleanup command (spark-submit --kill);
   * finish() kills whatever still runs. */
  if (t->finished) {
    set_errbuf(errbuf, "task is ending; no new processes");
    return -ECANCELED;
  }
  if (o == NULL || o->argv == NULL || o->argv[0] == NULL || o->on_exit == NULL) {
    set_errbuf(errbuf, "spawn: argv and on_exit are required");
    return -EINVAL;
  }
  if (r->helper_path == NULL) {
    set_errbuf(errbuf, "spawn: the agent has no muster-exec helper configured");
    return -EINVAL;
  }
  char cwd[PATH_MAX];
  if (resolve_cwd(t, o->cwd, cwd, sizeof cwd) != 0) {
    set_errbuf(errbuf, "spawn: bad cwd \"%s\" (relative to the task dir, no \"..\")", o->cwd);
    return -EINVAL;
  }
  const char *const *layers[] = {(const char *const *)t->spec->env, (const char *const *)t->secret_env, o->env};
  mu_env_context ctx = {t->job_id, t->task_id, t->attempt, r->agent_id, t->task_dir};
  char **env = NULL;
  mu_err err = {0};
  if (mu_env_build(r->cfg.inherit_env, layers, 3, &ctx, &env, &err) != 0) {
    set_errbuf(errbuf, "spawn: %s", err.msg);
    return err.code;
  }
  struct muster_proc *mp = calloc(1, sizeof *mp);
  if (mp == NULL) {
    mu_env_free(env);
    set_errbuf(errbuf, "spawn: out of memory");
    return -ENOMEM;
  }
  mp->task = t;
  mp->on_exit = o->on_exit;
  mp->user = o->user;
  if (o->size >= offsetof(muster_spawn_opts, on_output) + sizeof o->on_output) mp->on_output = o->on_output;
  char leaf[192], safe[128];
  size_t n = 0;
  for (const char *p = t->task_id; *p && n + 1 < sizeof safe; p++)
    safe[n++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
  safe[n] = '\0';
  snprintf(leaf, sizeof leaf, "%s.%u.%d", safe, t->attempt, ++t->proc_counter);
  mu_proc_opts po = {
      .helper_path = r->helper_path,
      .exec_server = r->exec_server,
      .argv = o->argv,
      .env = (const char *const *)env,
      .cwd = cwd,
      .stdin_data = o->stdin_data,
      .stdin_len = o->stdin_data ? o->stdin_len : 0,
      .run_as = t->run_as,
      .cgroup_root = r->cg_root.mode != MU_CGROUP_NONE ? &r->cg_root : NULL,
      .cgroup_leaf = leaf,
      .cgroup_pool = r->cg_pool,
      .limits = t->spec->limits,
      .limit_window_ms = t->spec->timeout_ms,
      .grace_ms = r->cfg.grace_ms,
      .control_max_line = r->cfg.control_max_line,
      .control_max_lines = r->cfg.control_max_lines,
      .cb = {on_proc_output, on_proc_control, on_proc_exit},
      .arg = mp,
  };
  char **sb_args = NULL;
  int rc = mu_sandbox_args(&t->spec->sandbox, t->spec->type, r->cfg.sandbox, r->spool_dir, t->task_dir, &sb_args, &err);
  po.helper_args = (const char *const *)sb_args;
  if (rc == 0) rc = mu_proc_spawn(r->loop, &po, &mp->proc, &err);
  mu_env_free(env);
  for (size_t i = 0; sb_args != NULL && sb_args[i] != NULL; i++) free(sb_args[i]);
  free(sb_args);
  if (rc != 0) {
    free(mp);
    set_errbuf(errbuf, "%s", err.msg);
    return rc;
  }
  mp->next = t->procs;
  t->procs = mp;
  t->n_procs++;
  if (ret != NULL) *ret = mp;
  return 0;
}

static int h_proc_kill(muster_task *t, muster_proc *mp) {
  (void)t;
  if (mp == NULL) return -EINVAL;
  if (mp->proc == NULL) return -EALREADY;
  mu_proc_kill(mp->proc, MU_KILL_REQUEST);
  return 0;
}

static uv_loop_t *h_loop(muster_task *t) { return t->runner->loop; }

/* ---- timers ---- */

static void on_timer_closed(uv_handle_t *h) {
  struct muster_timer *tm = h->data;
  muster_task *t = tm->task;
  for (struct muster_timer **pp = &t->timers; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == tm) {
      *pp = tm->next;
      break;
    }
  }
  free(tm);
  t->n_timers--;
  mu_task_schedule(t);
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

static int h_timer_start(muster_task *t, uint64_t timeout_ms, uint64_t repeat_ms, muster_timer_cb cb, void *user,
                         muster_timer **ret) {
  if (cb == NULL) return -EINVAL;
  if (t->finished) return -EALREADY;
  struct muster_timer *tm = calloc(1, sizeof *tm);
  if (tm == NULL) return -ENOMEM;
  tm->task = t;
  tm->cb = cb;
  tm->user = user;
  uv_timer_init(t->runner->loop, &tm->h);
  tm->h.data = tm;
  uv_timer_start(&tm->h, on_timer, timeout_ms, repeat_ms);
  tm->next = t->timers;
  t->timers = tm;
  t->n_timers++;
  if (ret != NULL) *ret = tm;
  return 0;
}

static void h_timer_stop(muster_task *t, muster_timer *tm) {
  (void)t;
  if (tm != NULL) timer_release(tm);
}

/* Used by the runner when a task finishes: no plugin timer outlives its task. */
void mu_task_release_timers(muster_task *t) {
  for (struct muster_timer *tm = t->timers; tm != NULL; tm = tm->next) timer_release(tm);
}

static const muster_task_context *h_context(muster_task *t) { return &t->ctx; }
static void h_set_user_data(muster_task *t, void *d) { t->user_data = d; }
static void *h_user_data(muster_task *t) { return t->user_data; }

static void h_log(muster_task *t, muster_log_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mu_log_level l = level <= MUSTER_LOG_DEBUG  ? MU_LOG_DEBUG
                   : level == MUSTER_LOG_INFO ? MU_LOG_INFO
                   : level == MUSTER_LOG_WARN ? MU_LOG_WARN
                                              : MU_LOG_ERROR;
  char *clean = t->redactor != NULL ? mu_redact_text(t->redactor, msg) : NULL; /* secrets */
  mu_log(l, "plugin", "%s %s#%u: %s", t->plugin->type, t->task_id, t->attempt, clean ? clean : msg);
  free(clean);
}

static const muster_host_api api = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .size = sizeof(muster_host_api),
    .emit_output = h_emit_output,
    .report_progress = h_report_progress,
    .set_param = h_set_param,
    .finish = h_finish,
    .spawn = h_spawn,
    .proc_kill = h_proc_kill,
    .loop = h_loop,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .context = h_context,
    .set_user_data = h_set_user_data,
    .user_data = h_user_data,
    .log = h_log,
    .cancel_extend = mu_task_cancel_extend,
    .cancel_withdraw = mu_task_cancel_withdraw,
    .detach = mu_task_detach,
    .set_action_handler = mu_task_set_action_handler,
    .hold_running = mu_task_hold_running,
    .report_running = mu_task_report_running,
};

const muster_host_api *mu_host_api(void) { return &api; }
