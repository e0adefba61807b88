/* The task runner (runner.h): assign with dedup, slots, per-type caps and the priority queue,
 * per-attempt set-up (spec, plugin, run-as, task dir, secrets), the attempt's life cycle on
 * the loop (start, timeout, cancel, finish, completion once every process and timer is gone),
 * the events it sends, and task dir retention. The plugin-facing table lives in host_api.c. */
#define _GNU_SOURCE
#include "agent/exec/runner.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/exec/adopt.h"
#include "agent/exec/control.h"
#include "agent/exec/task_int.h"
#include "agent/exec/workdir.h"
#include "lib/base/assert.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

static void emit_running(muster_task *t);

static void emit(muster_task *t, mu_task_event *ev) {
  /* RUNNING goes before the started task's first event, unless the plugin holds it */
  if (t->started && !t->running_sent && !t->running_held) emit_running(t);
  ev->job_id = t->job_id;
  ev->task_id = t->task_id;
  ev->attempt = t->attempt;
  ev->seq = ++t->seq;
  ev->at_ms = mu_now_ms();
  t->runner->sink.on_event(t->runner->sink.arg, ev);
}

static void emit_running(muster_task *t) {
  t->running_sent = true; /* before emit(), which would otherwise come back here */
  mu_task_emit_state(t, MU_TASK_RUNNING);
}

void mu_task_emit_state(muster_task *t, mu_task_state state) {
  mu_task_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = MU_EV_STATE;
  ev.state.state = state;
  ev.state.exit_code = -1;
  ev.state.message = "";
  emit(t, &ev);
}

/* Output passes the attempt's secret redaction first (task_secrets.c, redact.h). */
void mu_task_emit_output(muster_task *t, int stream, const void *data, size_t len) {
  if (t->final_sent || len == 0) return;
  const void *out = data;
  size_t n = len;
  mu_err err = {0};
  if (t->redactor != NULL && mu_redact_stream_feed(&t->redact[stream == 2], data, len, &out, &n, &err) != 0) {
    t->dropped += len; /* never let unredacted bytes through */
    return;
  }
  mu_task_emit_output_redacted(t, stream, out, n);
}

void mu_task_emit_output_redacted(muster_task *t, int stream, const void *data, size_t len) {
  if (t->final_sent || len == 0) return;
  size_t keep = len;
  uint64_t room = t->out_bytes >= t->output_limit ? 0 : t->output_limit - t->out_bytes;
  if (keep > room) keep = (size_t)room;
  t->dropped += len - keep;
  t->out_bytes += keep;
  if (keep == 0) return;
  mu_task_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = MU_EV_OUTPUT;
  ev.output.stream = stream;
  ev.output.data = data;
  ev.output.len = keep;
  ev.output.dropped_bytes = t->dropped;
  emit(t, &ev);
}

void mu_task_emit_progress(muster_task *t, double pct, const char *msg) {
  if (t->final_sent) return;
  mu_task_event ev;
  memset(&ev, 0, sizeof ev);
  char *clean = t->redactor != NULL && msg != NULL ? mu_redact_text(t->redactor, msg) : NULL;
  ev.kind = MU_EV_PROGRESS;
  ev.progress.percent = pct;
  ev.progress.message = clean ? clean : msg ? msg : "";
  emit(t, &ev);
  free(clean);
}

int mu_task_set_param(muster_task *t, const char *key, const char *value) {
  if (key == NULL || value == NULL || !mu_ctl_key_valid(key)) return -EINVAL;
  if (strlen(value) > MU_PARAM_VALUE_MAX || t->params_set >= t->runner->cfg.max_params) return -ENOSPC;
  t->params_set++;
  char *clean = t->redactor != NULL ? mu_redact_text(t->redactor, value) : NULL;
  mu_task_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = MU_EV_PARAM;
  ev.param.key = key;
  ev.param.value = clean ? clean : value;
  emit(t, &ev);
  free(clean);
  return 0;
}

static void on_defer(uv_timer_t *h);

void mu_task_schedule(muster_task *t) {
  if (!uv_is_closing((uv_handle_t *)&t->defer)) uv_timer_start(&t->defer, on_defer, 0, 0);
}

static void kill_procs(muster_task *t, mu_kill_reason why) {
  for (struct muster_proc *mp = t->procs; mp != NULL; mp = mp->next)
    if (mp->proc != NULL) mu_proc_kill(mp->proc, why);
}

int mu_task_finish(muster_task *t, muster_state state, int exit_code, int sig, const char *msg) {
  if (t->finished) return -EALREADY;
  if (state < MUSTER_STATE_SUCCEEDED || state > MUSTER_STATE_CANCELLED) state = MUSTER_STATE_FAILED;
  t->finished = true;
  t->result.state = state;
  t->result.exit_code = exit_code;
  t->result.signal = sig;
  snprintf(t->result_msg, sizeof t->result_msg, "%s", msg ? msg : "");
  uv_timer_stop(&t->deadline);
  uv_timer_stop(&t->force);
  kill_procs(t, MU_KILL_REQUEST);
  mu_task_release_timers(t);
  mu_task_schedule(t);
  return 0;
}

/* ---- dedup history ---- */

static bool history_has(mu_runner *r, const char *task_id, uint32_t attempt) {
  char key[600];
  snprintf(key, sizeof key, "%s\n%u", task_id, attempt);
  for (uint32_t i = 0; i < r->cfg.dedup_history; i++)
    if (r->history[i] != NULL && strcmp(r->history[i], key) == 0) return true;
  return false;
}

static void history_add(mu_runner *r, const muster_task *t) {
  char key[600];
  snprintf(key, sizeof key, "%s\n%u", t->task_id, t->attempt);
  free(r->history[r->history_next]);
  r->history[r->history_next] = strdup(key);
  r->history_next = (r->history_next + 1) % r->cfg.dedup_history;
}

/* ---- completion ---- */

static void runner_free(mu_runner *r);

static void on_exec_server_closed(void *arg) {
  mu_runner *r = arg;
  void (*cb)(void *) = r->close_cb;
  void *arg2 = r->close_arg;
  runner_free(r);
  if (cb != NULL) cb(arg2);
}

static void check_closed(mu_runner *r) {
  if (!r->closing || r->tasks != NULL || r->queue_head != NULL || r->pending_removals > 0 || r->unfreed_tasks > 0)
    return;
  if (r->exec_server != NULL) {
    mu_exec_server *s = r->exec_server;
    r->exec_server = NULL; /* once */
    r->exec_server_closing = true;
    mu_exec_server_close(s, on_exec_server_closed, r);
    return;
  }
  if (r->exec_server_closing) return;
  on_exec_server_closed(r);
}

static void task_free(muster_task *t) {
  if (t->plugin != NULL && t->plugin != &mu_adopt_plugin) /* may unload a retired version */
    mu_plugin_host_release(t->runner->plugins, t->plugin);
  free(t->job_id);
  free(t->task_id);
  mu_task_secrets_release(t);
  if (t->spec_json != NULL) explicit_bzero(t->spec_json, strlen(t->spec_json)); /* has values */
  free(t->spec_json);
  mu_task_spec_free(t->spec);
  free(t->task_dir);
  free(t->cwd);
  for (size_t i = 0; i < t->ctx.n_params; i++) {
    free(t->param_keys[i]);
    free(t->param_values[i]);
  }
  free(t->param_keys);
  free(t->param_values);
  free(t);
}

static void on_own_closed(uv_handle_t *h) {
  muster_task *t = h->data;
  if (--t->own_handles > 0) return;
  mu_runner *r = t->runner;
  task_free(t);
  r->unfreed_tasks--;
  check_closed(r);
}

static void on_removed(void *arg, int status) {
  mu_runner *r = arg;
  if (status != 0) mu_warn("runner", "task dir removal failed: %s", strerror(-status));
  r->pending_removals--;
  check_closed(r);
}

static mu_task_state final_state(const muster_task *t) {
  muster_state s = t->result.state;
  if (s != MUSTER_STATE_SUCCEEDED && t->timed_out) return MU_TASK_TIMED_OUT;
  if (s != MUSTER_STATE_SUCCEEDED && t->cancelled) return MU_TASK_CANCELLED;
  return (mu_task_state)s;
}

static void dispatch(mu_runner *r);

static void finalize(muster_task *t) {
  mu_runner *r = t->runner;
  mu_task_state state = final_state(t);
  mu_task_secrets_flush(t); /* output held back by redaction goes before the final state */
  char msg[1024];
  size_t n = 0;
  if (state == MU_TASK_TIMED_OUT && strstr(t->result_msg, "timed out") == NULL)
    n += (size_t)snprintf(msg + n, sizeof msg - n, "timed out after %.3gs; ", (double)t->spec->timeout_ms / 1000.0);
  if (state == MU_TASK_CANCELLED) n += (size_t)snprintf(msg + n, sizeof msg - n, "cancelled: %s; ", t->cancel_msg);
  if (n < sizeof msg) n += (size_t)snprintf(msg + n, sizeof msg - n, "%s", t->result_msg);
  if (n < sizeof msg && t->oom && strstr(msg, "memory limit") == NULL)
    n += (size_t)snprintf(msg + n, sizeof msg - n, "; memory limit of %llu bytes exceeded",
                          (unsigned long long)t->spec->limits.memory_bytes);
  if (n < sizeof msg && t->dropped > 0)
    n += (size_t)snprintf(msg + n, sizeof msg - n, "; output limit of %llu bytes hit, %llu bytes dropped",
                          (unsigned long long)t->output_limit, (unsigned long long)t->dropped);
  if (n >= 2 && n < sizeof msg && strcmp(msg + n - 2, "; ") == 0) msg[n - 2] = '\0';
  char *clean = t->redactor != NULL ? mu_redact_text(t->redactor, msg) : NULL;

  t->m.wall_ms = mu_mono_ms() - t->start_mono_ms;
  t->m.output_bytes = (int64_t)t->out_bytes;
  t->m.output_dropped_bytes = (int64_t)t->dropped;
  mu_task_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = MU_EV_STATE;
  ev.state.state = state;
  ev.state.exit_code = t->result.exit_code;
  ev.state.signal = t->result.signal;
  ev.state.message = clean ? clean : msg;
  ev.state.metrics = &t->m;
  if (!t->detached) emit(t, &ev); /* detached: the next agent reports it LOST (its mark stays) */
  free(clean);
  t->final_sent = true;
  if (t->started && t->plugin->cleanup != NULL) t->plugin->cleanup(t, mu_host_api(), t->user_data);
  mu_task_secrets_release(t); /* files wiped before the task dir goes */

  for (muster_task **pp = &r->tasks; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  /* the slot counts decide what may start next: a count off by one runs too many or none */
  MU_ASSERT(r->running > 0 && (t->type_slot < 0 || r->type_running[t->type_slot] > 0));
  r->running--;
  if (t->type_slot >= 0) r->type_running[t->type_slot]--;
  history_add(r, t);
  bool keep =
      r->cfg.retention == MU_RETAIN_ALWAYS || (r->cfg.retention == MU_RETAIN_ON_FAILURE && state != MU_TASK_SUCCEEDED);
  if (!keep && t->task_dir != NULL) {
    char *dir = strdup(t->task_dir);
    if (dir != NULL && mu_workdir_remove(r->loop, dir, on_removed, r) == 0) r->pending_removals++;
  }
  uv_close((uv_handle_t *)&t->defer, on_own_closed);
  uv_close((uv_handle_t *)&t->deadline, on_own_closed);
  uv_close((uv_handle_t *)&t->force, on_own_closed);
  dispatch(r);
}

const muster_plugin *mu_runner_task_plugin(const muster_task *t) { return t->plugin; }

static void start_plugin(muster_task *t) {
  t->launched = true;
  if (t->cancelled || t->timed_out) {
    mu_task_finish(t, MUSTER_STATE_CANCELLED, -1, 0, "before it started");
    return;
  }
  t->started = true;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  t->in_start = true;
  int rc = t->plugin->start(t, mu_host_api(), errbuf);
  t->in_start = false;
  if (!t->running_sent && !t->running_held && !t->final_sent) emit_running(t);
  mu_runner *r = t->runner;
  if (rc == 0 && r->cfg.started != NULL) r->cfg.started(r->cfg.prepare_arg, t->task_id, t->attempt);
  if (rc != 0 && !t->finished) {
    char msg[MUSTER_ERRBUF_SIZE + 64];
    snprintf(msg, sizeof msg, "%s: %s", t->plugin->type, errbuf[0] ? errbuf : "start failed");
    mu_task_finish(t, MUSTER_STATE_FAILED, -1, 0, msg);
  }
}

static void on_defer(uv_timer_t *h) {
  muster_task *t = h->data;
  if (!t->launched) start_plugin(t);
  if (t->finished && !t->final_sent && t->n_procs == 0 && t->n_timers == 0) finalize(t);
}

static void begin_stop(muster_task *t, mu_kill_reason why, muster_cancel_reason reason);

static void on_force(uv_timer_t *h) {
  muster_task *t = h->data;
  if (!t->finished)
    mu_task_finish(t, t->timed_out ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, -1, 0,
                   "the plugin did not stop in time");
}

static void on_deadline(uv_timer_t *h) {
  muster_task *t = h->data;
  if (t->finished) return;
  t->timed_out = true;
  begin_stop(t, MU_KILL_TIMEOUT, MUSTER_CANCEL_TIMEOUT);
}

static void begin_stop(muster_task *t, mu_kill_reason why, muster_cancel_reason reason) {
  t->cancel_reason = reason;
  kill_procs(t, why);
  if (!t->launched) {
    mu_task_schedule(t); /* start_plugin sees the flag and finishes */
    return;
  }
  /* armed before the plugin hears of it, so the plugin can move it (cancel_extend) */
  if (!t->finished) uv_timer_start(&t->force, on_force, (uint64_t)t->runner->cfg.grace_ms + 2000, 0);
  if (t->plugin->cancel != NULL && !t->finished) t->plugin->cancel(t, mu_host_api(), reason);
}

int mu_task_cancel_extend(muster_task *t, uint64_t ms) {
  if (t->finished) return -EALREADY;
  if (!t->cancelled && !t->timed_out) return -EINVAL;
  uv_timer_start(&t->force, on_force, ms, 0);
  return 0;
}

int mu_task_detach(muster_task *t, const char *message) {
  if (t->finished) return -EALREADY;
  if (!t->cancelled || t->cancel_reason != MUSTER_CANCEL_SHUTDOWN) return -EINVAL;
  mu_info("runner", "task %s attempt %u detached at shutdown (reported LOST by the next agent, then re-attached): %s",
          t->task_id, t->attempt, message ? message : "");
  t->detached = true;
  return mu_task_finish(t, MUSTER_STATE_CANCELLED, -1, 0, message);
}

int mu_task_hold_running(muster_task *t) {
  if (t->finished) return -EALREADY;
  if (!t->in_start || t->running_sent) return -EINVAL;
  t->running_held = true;
  return 0;
}

int mu_task_report_running(muster_task *t) {
  if (t->finished) return -EALREADY;
  t->running_held = false;
  if (t->started && !t->running_sent) emit_running(t);
  return 0;
}

int mu_task_set_action_handler(muster_task *t, muster_action_cb cb) {
  if (t->finished) return -EALREADY;
  t->action_cb = cb;
  return 0;
}

int mu_task_cancel_withdraw(muster_task *t) {
  if (t->finished) return -EALREADY;
  if (!t->cancelled || t->timed_out || t->cancel_reason != MUSTER_CANCEL_REQUESTED) return -EINVAL;
  t->cancelled = false;
  t->cancel_msg[0] = '\0';
  uv_timer_stop(&t->force);
  return 0;
}

/* ---- public API ---- */

static char *dup_or_null(const char *s) { return s != NULL ? strdup(s) : NULL; }

static int copy_type_slots(mu_runner *r, const mu_runner_config *cfg, mu_err *err) {
  size_t n = cfg->type_slots != NULL ? cfg->n_type_slots : 0;
  if (n > MU_RUNNER_MAX_TYPE_SLOTS)
    return mu_err_set(err, MU_EINVAL, "runner: more than %d type_slots", MU_RUNNER_MAX_TYPE_SLOTS);
  if (n == 0) return 0;
  r->type_slots = calloc(n, sizeof *r->type_slots);
  r->type_running = calloc(n, sizeof *r->type_running);
  if (r->type_slots == NULL || r->type_running == NULL) return mu_err_set(err, MU_ENOMEM, "runner: out of memory");
  for (size_t i = 0; i < n; i++) {
    const mu_runner_type_slot *ts = &cfg->type_slots[i];
    if (ts->type == NULL || *ts->type == '\0')
      return mu_err_set(err, MU_EINVAL, "runner: type_slots[%zu]: type is required", i);
    if (ts->max == 0)
      return mu_err_set(err, MU_EINVAL, "runner: type_slots[%zu] (%s): max must be at least 1", i, ts->type);
    for (size_t j = 0; j < i; j++)
      if (strcmp(r->type_slots[j].type, ts->type) == 0)
        return mu_err_set(err, MU_EINVAL, "runner: type_slots[%zu]: type \"%s\" given twice", i, ts->type);
    r->type_slots[i].max = ts->max;
    r->type_slots[i].type = strdup(ts->type);
    if (r->type_slots[i].type == NULL) return mu_err_set(err, MU_ENOMEM, "runner: out of memory");
    r->cfg.n_type_slots = i + 1;
  }
  return 0;
}

int mu_runner_new(uv_loop_t *loop, mu_plugin_host *plugins, const mu_runner_config *cfg, const mu_runner_sink *sink,
                  mu_runner **ret, mu_err *err) {
  if (cfg == NULL || cfg->spool_dir == NULL || cfg->agent_id == NULL || sink == NULL || sink->on_event == NULL)
    return mu_err_set(err, MU_EINVAL, "runner: spool_dir, agent_id and a sink are required");
  mu_runner *r = calloc(1, sizeof *r);
  if (r == NULL) return mu_err_set(err, MU_ENOMEM, "runner: out of memory");
  r->loop = loop;
  r->plugins = plugins;
  r->cfg = *cfg;
  r->sink = *sink;
  if (r->cfg.slots == 0) r->cfg.slots = 4;
  if (r->cfg.output_limit == 0) r->cfg.output_limit = 16ull << 20;
  if (r->cfg.grace_ms <= 0) r->cfg.grace_ms = 5000;
  if (r->cfg.max_params == 0) r->cfg.max_params = 256;
  if (r->cfg.dedup_history == 0) r->cfg.dedup_history = 4096;
  if (r->cfg.queue_max == 0) r->cfg.queue_max = 1024;
  r->cfg.type_slots = NULL;
  r->cfg.n_type_slots = 0;
  r->spool_dir = strdup(cfg->spool_dir);
  r->agent_id = strdup(cfg->agent_id);
  r->helper_path = dup_or_null(cfg->helper_path);
  r->run_as_default = dup_or_null(cfg->run_as);
  r->cgroup_name = strdup(cfg->cgroup_name ? cfg->cgroup_name : "muster");
  r->history = calloc(r->cfg.dedup_history, sizeof *r->history);
  int rc;
  if (r->spool_dir == NULL || r->agent_id == NULL || r->cgroup_name == NULL || r->history == NULL ||
      (cfg->helper_path && !r->helper_path) || (cfg->run_as && !r->run_as_default)) {
    rc = mu_err_set(err, MU_ENOMEM, "runner: out of memory");
    goto fail;
  }
  rc = copy_type_slots(r, cfg, err);
  if (rc != 0) goto fail;
  /* The default run_as is resolved per task (mu_runner_assign), not here: a user missing at
   * start (created later by configuration management) fails only the tasks that need it,
   * and `muster doctor` reports it (agent/env_facts.c). */
  if (!cfg->no_cgroups) mu_cgroup_root_detect(NULL, r->cgroup_name, &r->cg_root);
  if (cfg->cgroup_name != NULL && r->cg_root.mode != MU_CGROUP_NONE) {
    /* a named sub-tree is this agent's alone: what a previous run left there is unseen */
    int groups = 0, procs = 0;
    int left =
        mu_cgroup_sweep_except(&r->cg_root, cfg->sweep_keep, cfg->sweep_keep ? cfg->n_sweep_keep : 0, &groups, &procs);
    if (groups > 0 || left != 0)
      mu_warn("runner", "swept %d task cgroup director%s left by a previous run (%d process%s killed)%s", groups,
              groups == 1 ? "y" : "ies", procs, procs == 1 ? "" : "es", left != 0 ? "; some could not be removed" : "");
  }
  if (r->cg_root.mode == MU_CGROUP_V1 && !cfg->no_cgroup_pool) {
    mu_err perr = {0};
    if (mu_cgroup_pool_new(&r->cg_root, r->cfg.slots + 8, &r->cg_pool, &perr) != 0)
      mu_warn("runner", "%s; a fresh cgroup per process", perr.msg);
  }
  if (r->helper_path != NULL && !cfg->no_exec_server) {
    mu_err xerr = {0};
    if (mu_exec_server_new(loop, r->helper_path, &r->exec_server, &xerr) != 0)
      mu_warn("runner", "%s; starting a one-shot helper per process instead", xerr.msg);
  }
  mu_secret_dir_sweep(r->spool_dir, r->agent_id);
  mu_info("runner", "limits via %s; %u slots, %zu type caps, queue of %u; spool %s; exec server %s",
          mu_runner_limits_mode(r), r->cfg.slots, r->cfg.n_type_slots, r->cfg.queue_max, r->spool_dir,
          r->exec_server != NULL ? "on" : "off");
  *ret = r;
  return 0;
fail:
  runner_free(r);
  return rc;
}

static void runner_free(mu_runner *r) {
  mu_cgroup_pool_free(r->cg_pool);
  for (size_t i = 0; i < r->cfg.n_type_slots; i++) free((char *)r->type_slots[i].type);
  free(r->type_slots);
  free(r->type_running);
  if (r->history != NULL)
    for (uint32_t i = 0; i < r->cfg.dedup_history; i++) free(r->history[i]);
  free(r->history);
  free(r->spool_dir);
  free(r->agent_id);
  free(r->helper_path);
  free(r->run_as_default);
  free(r->cgroup_name);
  free(r);
}

const char *mu_runner_limits_mode(const mu_runner *r) {
  return r->cg_root.mode == MU_CGROUP_V2 ? "cgroup-v2" : r->cg_root.mode == MU_CGROUP_V1 ? "cgroup-v1" : "rlimit";
}

uint32_t mu_runner_running_count(const mu_runner *r) { return r->running; }

uint32_t mu_runner_queued_count(const mu_runner *r) { return r->queued; }

static muster_task *find(mu_runner *r, const char *task_id, uint32_t attempt) {
  for (muster_task *t = r->tasks; t != NULL; t = t->next)
    if (t->attempt == attempt && strcmp(t->task_id, task_id) == 0) return t;
  return NULL;
}

static muster_task *find_queued(mu_runner *r, const char *task_id, uint32_t attempt) {
  for (muster_task *t = r->queue_head; t != NULL; t = t->qnext)
    if (t->attempt == attempt && strcmp(t->task_id, task_id) == 0) return t;
  return NULL;
}

/* Task dir, working dir, secrets: everything an attempt needs before it starts. */
static int prepare_dirs(mu_runner *r, muster_task *t, mu_err *err) {
  bool chown_to = t->run_as.set && geteuid() == 0;
  int rc = mu_workdir_create(r->spool_dir, t->task_id, t->attempt, chown_to, t->run_as.uid, t->run_as.gid, &t->task_dir,
                             err);
  if (rc != 0) return rc;
  if (r->cfg.prepare_dir != NULL) {
    rc = r->cfg.prepare_dir(r->cfg.prepare_arg, t->task_id, t->attempt, t->task_dir, err);
    if (rc != 0) return rc;
  }
  const char *wd = t->spec->working_dir;
  if (wd == NULL) {
    t->cwd = strdup(t->task_dir);
  } else {
    if (wd[0] == '/' || strstr(wd, "..") != NULL)
      return mu_err_set(err, MU_EINVAL, "workingDir: \"%s\" must be relative to the task dir, without \"..\"", wd);
    if (asprintf(&t->cwd, "%s/%s", t->task_dir, wd) < 0) t->cwd = NULL;
    if (t->cwd != NULL && mkdir(t->cwd, 0700) == 0 && chown_to && chown(t->cwd, t->run_as.uid, t->run_as.gid) != 0)
      return mu_err_set(err, MU_EIO, "workingDir: cannot chown %s: %s", t->cwd, strerror(errno));
  }
  if (t->cwd == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return mu_task_secrets_prepare(t, chown_to, err);
}

static int copy_params(muster_task *t, const mu_kv *params, size_t n) {
  t->param_keys = calloc(n + 1, sizeof(char *));
  t->param_values = calloc(n + 1, sizeof(char *));
  if (t->param_keys == NULL || t->param_values == NULL) return MU_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    t->param_keys[i] = strdup(params[i].key ? params[i].key : "");
    t->param_values[i] = strdup(params[i].value ? params[i].value : "");
    t->ctx.n_params = i + 1;
    if (t->param_keys[i] == NULL || t->param_values[i] == NULL) return MU_ENOMEM;
  }
  return 0;
}

/* ---- slots and the queue ---- */

static bool has_room(const mu_runner *r, const muster_task *t) {
  if (r->running >= r->cfg.slots) return false;
  return t->type_slot < 0 || r->type_running[t->type_slot] < r->type_slots[t->type_slot].max;
}

/* Inserts after the last attempt of the same or higher priority: FIFO within a priority. */
static void enqueue(mu_runner *r, muster_task *t) {
  muster_task *after = r->queue_tail;
  while (after != NULL && after->spec->priority < t->spec->priority) after = after->qprev;
  t->qprev = after;
  t->qnext = after != NULL ? after->qnext : r->queue_head;
  if (t->qnext != NULL) t->qnext->qprev = t;
  else r->queue_tail = t;
  if (after != NULL) after->qnext = t;
  else r->queue_head = t;
  t->queued = true;
  r->queued++;
  MU_ASSERT(r->queued <= r->cfg.queue_max); /* mu_runner_assign refuses past the bound */
}

static void dequeue(mu_runner *r, muster_task *t) {
  if (t->qprev != NULL) t->qprev->qnext = t->qnext;
  else r->queue_head = t->qnext;
  if (t->qnext != NULL) t->qnext->qprev = t->qprev;
  else r->queue_tail = t->qprev;
  t->qprev = t->qnext = NULL;
  t->queued = false;
  MU_ASSERT(r->queued > 0);
  r->queued--;
}

/* Removes what an attempt that never got a slot left on disk, and frees it. */
static void discard(mu_runner *r, muster_task *t) {
  mu_task_secrets_release(t);
  if (t->task_dir != NULL) {
    char *dir = strdup(t->task_dir);
    if (dir != NULL && mu_workdir_remove(r->loop, dir, on_removed, r) == 0) r->pending_removals++;
  }
  task_free(t);
}

/* The one final event of an attempt that ends without a slot (cancelled while queued, or its
 * set-up failed when its turn came). */
static void finish_unstarted(mu_runner *r, muster_task *t, mu_task_state state, const char *msg) {
  mu_task_metrics m = {.max_rss_bytes = -1, .cgroup_memory_peak_bytes = -1, .user_cpu_ms = -1, .sys_cpu_ms = -1};
  mu_task_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = MU_EV_STATE;
  ev.state.state = state;
  ev.state.exit_code = -1;
  ev.state.message = msg;
  ev.state.metrics = &m;
  emit(t, &ev);
  t->final_sent = true;
  history_add(r, t);
  discard(r, t);
}

/* An attempt with its task dir takes its slot: context, timers (the plugin starts on the next
 * loop turn; the spec's timeout counts from elapsed_ms ago), the runner's lists and counts. */
static void arm(mu_runner *r, muster_task *t, int64_t elapsed_ms) {
  t->ctx = (muster_task_context){.job_id = t->job_id,
                                 .task_id = t->task_id,
                                 .attempt = t->attempt,
                                 .agent_id = r->agent_id,
                                 .task_dir = t->task_dir,
                                 .spec_json = t->spec_json,
                                 .config_json = t->spec->config_json,
                                 .n_params = t->ctx.n_params,
                                 .param_keys = (const char *const *)t->param_keys,
                                 .param_values = (const char *const *)t->param_values};
  uv_timer_t *own[] = {&t->defer, &t->deadline, &t->force};
  for (size_t i = 0; i < 3; i++) {
    uv_timer_init(r->loop, own[i]);
    own[i]->data = t;
    t->own_handles++;
  }
  uv_timer_start(&t->defer, on_defer, 0, 0);
  if (t->spec->timeout_ms > 0) {
    int64_t left = t->spec->timeout_ms - elapsed_ms;
    uv_timer_start(&t->deadline, on_deadline, (uint64_t)(left > 0 ? left : 0), 0);
  }
  t->start_mono_ms = mu_mono_ms() - elapsed_ms;
  t->next = r->tasks;
  r->tasks = t;
  r->running++;
  if (t->type_slot >= 0) r->type_running[t->type_slot]++;
  r->unfreed_tasks++;
}

/* Gives an attempt its slot: task dir, timers, STARTING. On failure nothing is sent and the
 * caller discards t. */
static int admit(mu_runner *r, muster_task *t, mu_err *err) {
  int rc = prepare_dirs(r, t, err);
  if (rc != 0) {
    mu_err_prefix(err, "task %s", t->task_id);
    return rc;
  }
  arm(r, t, 0);
  mu_task_emit_state(t, MU_TASK_STARTING);
  return 0;
}

/* Starts queued attempts while there is room: the first in queue order whose type has room.
 * Rescans from the head after each start, since the sink may cancel queued attempts. */
static void dispatch(mu_runner *r) {
  while (!r->closing && r->running < r->cfg.slots) {
    muster_task *t = r->queue_head;
    while (t != NULL && !has_room(r, t)) t = t->qnext;
    if (t == NULL) return;
    dequeue(r, t);
    mu_err err = {0};
    if (admit(r, t, &err) != 0) {
      mu_warn("runner", "%s", err.msg);
      finish_unstarted(r, t, MU_TASK_FAILED, err.msg);
    }
  }
}

/* ---- public API (continued) ---- */

/* Everything that can refuse an assign without touching the disk: spec, plugin, validation,
 * run-as. On success *ret is owned by the caller (discard). */
static int build_task(mu_runner *r, const char *job_id, const char *task_id, uint32_t attempt, const char *spec_json,
                      const mu_kv *params, size_t n_params, muster_task **ret, mu_err *err) {
  mu_task_spec *spec = NULL;
  int rc = mu_task_spec_parse(spec_json, &spec, err);
  if (rc != 0) {
    mu_err_prefix(err, "task %s", task_id);
    return rc;
  }
  const muster_plugin *plugin = mu_plugin_host_acquire(r->plugins, spec->type); /* released in task_free */
  if (plugin == NULL) {
    char types[512];
    mu_plugin_host_types(r->plugins, types, sizeof types);
    rc = mu_err_set(err, MU_ENOTSUP, "task %s: no plugin serves task type \"%s\" (this agent has: %s)", task_id,
                    spec->type, types);
    mu_task_spec_free(spec);
    return rc;
  }
  if (plugin->validate != NULL) {
    char errbuf[MUSTER_ERRBUF_SIZE] = "";
    if (plugin->validate(spec_json, spec->config_json, errbuf) != 0) {
      rc = mu_err_set(err, MU_EINVAL, "task %s: %s", task_id, errbuf[0] ? errbuf : "invalid spec");
      mu_task_spec_free(spec);
      mu_plugin_host_release(r->plugins, plugin);
      return rc;
    }
  }
  muster_task *t = calloc(1, sizeof *t);
  if (t == NULL) {
    mu_task_spec_free(spec);
    mu_plugin_host_release(r->plugins, plugin);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  t->runner = r;
  t->plugin = plugin;
  t->spec = spec;
  t->attempt = attempt;
  t->type_slot = -1;
  for (size_t i = 0; i < r->cfg.n_type_slots; i++)
    if (strcmp(r->type_slots[i].type, spec->type) == 0) t->type_slot = (int)i;
  t->job_id = strdup(job_id);
  t->task_id = strdup(task_id);
  t->spec_json = strdup(spec_json);
  t->output_limit = spec->output_limit > 0 ? spec->output_limit : r->cfg.output_limit;
  t->m.max_rss_bytes = t->m.cgroup_memory_peak_bytes = -1;
  if (t->job_id == NULL || t->task_id == NULL || t->spec_json == NULL || copy_params(t, params, n_params) != 0) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  const char *user = spec->run_as != NULL && *spec->run_as ? spec->run_as : r->run_as_default;
  rc = mu_runas_resolve(user, r->agent_id, &t->run_as, err);
  if (rc == 0) rc = mu_runas_check(&t->run_as, err);
  if (rc != 0) {
    mu_err_prefix(err, "task %s", task_id);
    goto fail;
  }
  char **no_args = NULL; /* the policy's check; the options themselves are made per spawn */
  rc = mu_sandbox_args(&spec->sandbox, spec->type, r->cfg.sandbox, r->spool_dir, NULL, &no_args, err);
  if (rc != 0) {
    mu_err_prefix(err, "task %s", task_id);
    goto fail;
  }
  *ret = t;
  return 0;
fail:
  task_free(t);
  return rc;
}

int mu_runner_assign(mu_runner *r, const char *job_id, const char *task_id, uint32_t attempt, const char *spec_json,
                     const mu_kv *params, size_t n_params, mu_err *err) {
  if (r->closing) return mu_err_set(err, MU_EAGAIN, "agent is shutting down");
  if (job_id == NULL || task_id == NULL || *task_id == '\0' || spec_json == NULL)
    return mu_err_set(err, MU_EINVAL, "assign: job_id, task_id and spec are required");
  if (strlen(task_id) > 500) return mu_err_set(err, MU_EINVAL, "assign: task_id longer than 500 bytes");
  if (find(r, task_id, attempt) != NULL || find_queued(r, task_id, attempt) != NULL ||
      history_has(r, task_id, attempt)) {
    mu_info("runner", "task %s attempt %u already assigned; ignoring the repeat", task_id, attempt);
    return 0;
  }
  muster_task *t = NULL;
  int rc = build_task(r, job_id, task_id, attempt, spec_json, params, n_params, &t, err);
  if (rc != 0) return rc;
  if (has_room(r, t)) {
    rc = admit(r, t, err);
    if (rc != 0) discard(r, t);
    return rc;
  }
  if (r->queued >= r->cfg.queue_max) {
    rc =
        mu_err_set(err, MU_ENOSPC, "task %s: agent queue full: %u attempts waiting (queue_max %u), %u of %u slots busy",
                   task_id, r->queued, r->cfg.queue_max, r->running, r->cfg.slots);
    discard(r, t);
    return rc;
  }
  enqueue(r, t);
  mu_debug("runner", "task %s attempt %u queued (priority %d, %u waiting)", task_id, attempt, t->spec->priority,
           r->queued);
  return 0;
}

static void cancel_queued(mu_runner *r, muster_task *t, const char *reason) {
  dequeue(r, t);
  t->cancelled = true;
  char msg[300];
  snprintf(msg, sizeof msg, "cancelled: %s; while queued, before it started", reason);
  finish_unstarted(r, t, MU_TASK_CANCELLED, msg);
}

int mu_runner_cancel(mu_runner *r, const char *task_id, uint32_t attempt, const char *reason, mu_err *err) {
  const char *why = reason && *reason ? reason : "requested";
  muster_task *q = find_queued(r, task_id, attempt);
  if (q != NULL) {
    cancel_queued(r, q, why);
    return 0;
  }
  muster_task *t = find(r, task_id, attempt);
  if (t == NULL) return mu_err_set(err, MU_ENOENT, "task %s attempt %u is not running here", task_id, attempt);
  if (t->cancelled || t->finished) return 0;
  t->cancelled = true;
  snprintf(t->cancel_msg, sizeof t->cancel_msg, "%s", why);
  begin_stop(t, MU_KILL_CANCEL, r->closing ? MUSTER_CANCEL_SHUTDOWN : MUSTER_CANCEL_REQUESTED);
  return 0;
}

int mu_runner_cancel_force(mu_runner *r, const char *task_id, uint32_t attempt, const char *reason, mu_err *err) {
  muster_task *t = find(r, task_id, attempt);
  if (t == NULL || r->closing) return mu_runner_cancel(r, task_id, attempt, reason, err);
  if (t->finished || t->cancel_reason == MUSTER_CANCEL_FORCED || t->cancel_reason == MUSTER_CANCEL_SHUTDOWN) return 0;
  /* not cancelled yet, or a graceful cancel under way (a savepoint): the plugin hears FORCED */
  t->cancelled = true;
  snprintf(t->cancel_msg, sizeof t->cancel_msg, "%s (forced)", reason && *reason ? reason : "requested");
  begin_stop(t, MU_KILL_CANCEL, MUSTER_CANCEL_FORCED);
  return 0;
}

int mu_runner_action(mu_runner *r, const char *task_id, uint32_t attempt, const char *action, mu_err *err) {
  muster_task *t = find(r, task_id, attempt);
  if (t == NULL || t->finished || !t->started)
    return mu_err_set(err, MU_ENOENT, "task %s attempt %u is not running here", task_id, attempt);
  if (t->action_cb == NULL)
    return mu_err_set(err, MU_ENOTSUP, "task type %s takes no actions (asked: %s)", t->plugin->type, action);
  if (t->cancelled) return mu_err_set(err, MU_EINVAL, "task %s attempt %u is being cancelled", task_id, attempt);
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  if (t->action_cb(t, mu_host_api(), action, errbuf) == 0) return 0;
  mu_err_set(err, MU_EINVAL, "%s: %s", action, errbuf[0] ? errbuf : "refused by the task type");
  char line[MUSTER_ERRBUF_SIZE + 64];
  int n =
      snprintf(line, sizeof line, "muster: action %s refused: %s\n", action, errbuf[0] ? errbuf : "by the task type");
  if (!t->finished) mu_task_emit_output(t, 2, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : strlen(line));
  return err->code;
}

void mu_runner_close(mu_runner *r, void (*cb)(void *arg), void *arg) {
  r->closing = true;
  r->close_cb = cb;
  r->close_arg = arg;
  while (r->queue_head != NULL) cancel_queued(r, r->queue_head, "agent shutting down");
  for (muster_task *t = r->tasks; t != NULL; t = t->next) {
    if (t->cancelled || t->finished) continue;
    t->cancelled = true;
    snprintf(t->cancel_msg, sizeof t->cancel_msg, "agent shutting down");
    begin_stop(t, MU_KILL_CANCEL, MUSTER_CANCEL_SHUTDOWN);
  }
  check_closed(r);
}

/* A shim that is not taken back: its whole group killed and removed (the sweep spared it). */
static void drop_adoptee(mu_runner *r, const mu_adoptee *a) {
  mu_cgroup *cg = NULL;
  mu_err err = {0};
  if (r->cg_root.mode == MU_CGROUP_NONE || mu_cgroup_find(&r->cg_root, a->pid, &cg, &err) != 0) return;
  for (int tries = 0; tries < 100; tries++) {
    (void)mu_cgroup_kill_all(cg);
    if (mu_cgroup_remove(cg) == 0) break;
    usleep(10000);
  }
  mu_cgroup_free(cg);
}

int mu_runner_adopt(mu_runner *r, const char *job_id, const char *task_id, uint32_t attempt, const mu_adoptee *a,
                    mu_err *err) {
  if (r->closing) return mu_err_set(err, MU_EAGAIN, "agent is shutting down");
  if (find(r, task_id, attempt) != NULL)
    return mu_err_set(err, MU_EEXIST, "task %s attempt %u runs already", task_id, attempt);
  muster_task *t = NULL;
  int rc = build_task(r, job_id, task_id, attempt, a->spec_json, NULL, 0, &t, err);
  if (rc != 0) {
    drop_adoptee(r, a);
    return rc;
  }
  mu_cgroup *cg = NULL;
  mu_err cerr = {0};
  if (r->cg_root.mode != MU_CGROUP_NONE && mu_cgroup_find(&r->cg_root, a->pid, &cg, &cerr) != 0)
    mu_warn("runner", "task %s attempt %u: %s; its processes are stopped through its shim only", task_id, attempt,
            cerr.msg);
  mu_adopt_state *st = mu_adopt_state_new(a, cg, r->cfg.grace_ms);
  t->task_dir = strdup(a->task_dir);
  t->cwd = strdup(a->task_dir);
  if (st == NULL || t->task_dir == NULL || t->cwd == NULL) {
    mu_cgroup_free(cg); /* st only points at it */
    free(st);
    task_free(t);
    drop_adoptee(r, a);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  mu_plugin_host_release(r->plugins, t->plugin); /* the stand-in serves it, not the type's plugin */
  t->plugin = &mu_adopt_plugin;
  t->user_data = st;
  t->running_sent = true; /* RUNNING went out before the restart */
  arm(r, t, a->spec_age_ms);
  mu_info("runner", "task %s attempt %u re-adopted: its shim (pid %d) runs on in %s", task_id, attempt, (int)a->pid,
          a->task_dir);
  return 0;
}
