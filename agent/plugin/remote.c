/* The agent side of an out-of-process plugin (remote.h): the host process's life (spawn,
 * HELLO, crash, backoff, restart, stop), the proxy descriptor the runner calls, and the
 * messages the host sends, carried out on the runner's tasks through the real host API. */
#define _GNU_SOURCE
#include "agent/plugin/remote.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/exec/plugin_env.h"
#include "agent/exec/plugin_host.h"
#include "agent/exec/runner.h"
#include "agent/plugin/pchan.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

typedef enum { R_STARTING, R_UP, R_DOWN, R_CLOSING } r_state;

typedef struct rproc {
  struct rproc *next;
  struct rtask *rt;
  int64_t id; /* the host's number for it */
  muster_proc *mp;
} rproc;

typedef struct rtask {
  struct rtask *next;
  mu_plugin_remote *r;
  muster_task *task;
  uint64_t id;
  uint32_t gen; /* the host process it started in */
  bool finished;
  rproc *procs;
} rtask;

struct mu_plugin_remote {
  muster_plugin desc; /* first: the runner hands it back (mu_runner_task_plugin) */
  uv_loop_t *loop;
  char *host_path, *so_path;
  char *type, *version, *description;
  mu_plugin_remote_opts o;
  r_state state;
  uint32_t gen;
  uv_process_t proc;
  bool proc_live; /* proc handle initialised and not yet closed */
  int pid;
  mu_pchan *ch;          /* NULL when no host */
  uv_timer_t timer;      /* backoff before a restart; kill deadline when stopping */
  uv_timer_t watchdog;   /* PINGs a host with tasks; kills it when it does not answer */
  int64_t wd_sent_ms;    /* the unanswered watchdog PING's time, 0 = none out */
  char kill_reason[160]; /* why we killed the host, for its tasks' message ("" = crash) */
  int64_t backoff_ms, up_since_ms;
  rtask *tasks;
  uint64_t next_task;
  const muster_host_api *api;
  mu_plugin_remote_stats st;
  void (*ping_cb)(void *, int64_t);
  void *ping_arg;
  int64_t ping_sent_us;
  int open_handles;
  void (*close_cb)(void *);
  void *close_arg;
  /* SDK v2: the plugin-wide hooks, carried to the host process */
  muster_plugin_env *env; /* the agent's env of this plugin (from the first configure()) */
  char *schema;           /* describe() as the host said in HELLO */
  char *config;           /* the configuration last sent, sent again to a restarted host */
  int health;             /* as the host last answered HEALTH */
  char health_reason[MUSTER_ERRBUF_SIZE];
  int64_t next_call;
  muster_metric *metrics[MUSTER_METRIC_MAX_FAMILIES]; /* the host's metric ids -> the agent's */
  size_t metric_labels[MUSTER_METRIC_MAX_FAMILIES];
  bool metric_known[MUSTER_METRIC_MAX_FAMILIES];
};

static mu_plugin_remote *of_desc(const muster_plugin *d) {
  return (mu_plugin_remote *)((char *)d - offsetof(mu_plugin_remote, desc));
}

static mu_pstr S(const char *s) { return (mu_pstr){s ? s : "", s ? strlen(s) : 0}; }

static const char *sig_name(int sig, char *buf, size_t cap) {
  const char *abbr = sigabbrev_np(sig);
  if (abbr != NULL) snprintf(buf, cap, "SIG%s", abbr);
  else snprintf(buf, cap, "signal %d", sig);
  return buf;
}

static void send_msg(mu_plugin_remote *r, uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints,
                     const mu_pstr *strs, size_t n_strs) {
  if (r->ch == NULL || r->state != R_UP) return;
  mu_err e = {0};
  if (mu_pchan_send(r->ch, kind, task, ints, n_ints, strs, n_strs, &e) != 0)
    mu_warn("plugins", "plugin '%s': %s not sent: %s", r->type, mu_pm_kind_name(kind), e.msg);
}

static rtask *find_task(mu_plugin_remote *r, uint64_t id) {
  for (rtask *rt = r->tasks; rt != NULL; rt = rt->next)
    if (rt->id == id && rt->gen == r->gen) return rt;
  return NULL;
}

/* ---- the proxy descriptor ---- */

static int proxy_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  mu_plugin_remote *r = of_desc(mu_runner_task_plugin(task));
  r->api = host;
  if (r->state != R_UP || r->ch == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "plugin '%s' is not running (its host process is %s after %u crash%s)",
             r->type, r->state == R_STARTING ? "starting" : "down", r->st.crashes, r->st.crashes == 1 ? "" : "es");
    return -EAGAIN;
  }
  rtask *rt = calloc(1, sizeof *rt);
  const muster_task_context *c = host->context(task);
  size_t n = 6 + 2 * c->n_params;
  mu_pstr *strs = calloc(n, sizeof *strs);
  if (rt == NULL || strs == NULL) {
    free(rt);
    free(strs);
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "out of memory");
    return -ENOMEM;
  }
  rt->r = r;
  rt->task = task;
  rt->id = ++r->next_task;
  rt->gen = r->gen;
  host->set_user_data(task, rt); /* the plugin's own user data lives in the host process */
  rt->next = r->tasks;
  r->tasks = rt;
  r->st.live_tasks++;
  strs[0] = S(c->job_id);
  strs[1] = S(c->task_id);
  strs[2] = S(c->agent_id);
  strs[3] = S(c->task_dir);
  strs[4] = S(c->spec_json);
  strs[5] = S(c->config_json);
  for (size_t i = 0; i < c->n_params; i++) {
    strs[6 + 2 * i] = S(c->param_keys[i]);
    strs[7 + 2 * i] = S(c->param_values[i]);
  }
  int64_t ints[] = {c->attempt, (int64_t)c->n_params};
  mu_err e = {0};
  int rc = mu_pchan_send(r->ch, MU_PM_START, rt->id, ints, 2, strs, n, &e);
  free(strs);
  if (rc != 0) {
    rt->finished = true;
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "plugin '%s': %s", r->type, e.msg);
    return rc;
  }
  return 0;
}

static void proxy_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  rtask *rt = host->user_data(task);
  if (rt == NULL || rt->gen != rt->r->gen) return;
  int64_t ints[] = {reason};
  send_msg(rt->r, MU_PM_CANCEL, rt->id, ints, 1, NULL, 0);
}

static void proxy_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  rtask *rt = user_data;
  if (rt == NULL) return;
  mu_plugin_remote *r = rt->r;
  if (rt->gen == r->gen) send_msg(r, MU_PM_CLEANUP, rt->id, NULL, 0, NULL, 0);
  for (rtask **pp = &r->tasks; *pp != NULL; pp = &(*pp)->next)
    if (*pp == rt) {
      *pp = rt->next;
      break;
    }
  while (rt->procs != NULL) { /* none left by now; defensive */
    rproc *n = rt->procs->next;
    free(rt->procs);
    rt->procs = n;
  }
  r->st.live_tasks--;
  free(rt);
}

/* ---- SDK v2 hooks: configure and health go to the host process; their answers come later ---- */

static void send_config(mu_plugin_remote *r) {
  if (r->config == NULL) return;
  int64_t ints[] = {++r->next_call};
  mu_pstr strs[] = {S(r->config)};
  send_msg(r, MU_PM_CONFIGURE, 0, ints, 1, strs, 1);
}

/* Applied asynchronously: a refusal comes back as CONFIGURED with rc != 0 and is logged (the
 * host keeps its previous configuration). */
static int proxy_configure(muster_plugin_env *env, const muster_plugin_api *api, const char *config_json,
                           char *errbuf) {
  (void)api;
  mu_plugin_remote *r = of_desc(mu_plugin_env_desc(env));
  char *copy = strdup(config_json);
  if (copy == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "out of memory");
    return -ENOMEM;
  }
  r->env = env;
  free(r->config);
  r->config = copy;
  send_config(r);
  return 0;
}

/* What the host last said; asks again for the next caller (the agent asks once a second). */
static int proxy_health(muster_plugin_env *env, const muster_plugin_api *api, char *errbuf) {
  (void)api;
  mu_plugin_remote *r = of_desc(mu_plugin_env_desc(env));
  int64_t ints[] = {++r->next_call};
  send_msg(r, MU_PM_HEALTH, 0, ints, 1, NULL, 0);
  if (r->state != R_UP) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "host process down (%u crash%s)", r->st.crashes,
             r->st.crashes == 1 ? "" : "es");
    return MUSTER_HEALTH_FAIL;
  }
  snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s", r->health_reason);
  return r->health;
}

static const char *proxy_describe(muster_plugin_env *env, const muster_plugin_api *api) {
  (void)api;
  return of_desc(mu_plugin_env_desc(env))->schema;
}

/* A plugin-wide message from the host (task 0). */
static void on_plugin_msg(mu_plugin_remote *r, const mu_pmsg *m) {
  const muster_plugin_api *pa = mu_plugin_api();
  switch (m->kind) {
    case MU_PM_CONFIGURED:
      if (m->ints[1] != 0) mu_warn("plugins", "plugin '%s': configuration refused: %s", r->type, m->strs[0].p);
      break;
    case MU_PM_HEALTH_IS:
      r->health =
          m->ints[1] >= MUSTER_HEALTH_OK && m->ints[1] <= MUSTER_HEALTH_FAIL ? (int)m->ints[1] : MUSTER_HEALTH_FAIL;
      snprintf(r->health_reason, sizeof r->health_reason, "%s", m->strs[0].p);
      break;
    case MU_PM_METRIC_DEF: {
      mu_pm_metric_def d;
      mu_err e = {0};
      char errbuf[MUSTER_ERRBUF_SIZE] = "";
      if (mu_pmsg_metric_def(m, &d, &e) != 0 || d.id < 0 || d.id >= MUSTER_METRIC_MAX_FAMILIES || r->env == NULL) {
        mu_warn("plugins", "plugin '%s': metric not registered: %s", r->type, e.msg[0] ? e.msg : "bad id");
        break;
      }
      muster_metric_desc md = {d.name, d.help, (muster_metric_type)d.type, d.labels, d.buckets, d.n_buckets};
      muster_metric *mm = NULL;
      if (pa->metric_register(r->env, &md, &mm, errbuf) != 0) {
        mu_warn("plugins", "plugin '%s': metric not registered: %s", r->type, errbuf);
        break;
      }
      r->metrics[d.id] = mm;
      r->metric_labels[d.id] = d.n_labels;
      r->metric_known[d.id] = true;
      break;
    }
    case MU_PM_METRIC: {
      int64_t id = m->ints[0];
      if (id < 0 || id >= MUSTER_METRIC_MAX_FAMILIES || !r->metric_known[id] || m->n_strs != r->metric_labels[id])
        break; /* unknown family or the wrong number of label values: dropped */
      const char *values[MUSTER_METRIC_MAX_LABELS + 1] = {0};
      for (size_t i = 0; i < m->n_strs; i++) values[i] = m->strs[i].p;
      double v = mu_pm_bits_double(m->ints[2]);
      if (m->ints[1] == 1) pa->metric_add(r->metrics[id], values, v);
      else if (m->ints[1] == 2) pa->metric_set(r->metrics[id], values, v);
      else if (m->ints[1] == 3) pa->metric_observe(r->metrics[id], values, v);
      break;
    }
    case MU_PM_LOG: mu_log(MU_LOG_INFO, "plugin", "%s: %s", r->type, m->strs[0].p); break;
    default: mu_warn("plugins", "plugin '%s': unexpected %s from its host", r->type, mu_pm_kind_name(m->kind));
  }
}

/* ---- processes the host asked for ---- */

static void unlink_proc(rproc *rp) {
  for (rproc **pp = &rp->rt->procs; *pp != NULL; pp = &(*pp)->next)
    if (*pp == rp) {
      *pp = rp->next;
      return;
    }
}

static void on_rproc_exit(muster_task *task, muster_proc *mp, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)mp;
  rproc *rp = user;
  rtask *rt = rp->rt;
  if (rt->gen == rt->r->gen) {
    int64_t ints[] = {rp->id,         x->exit_code,  x->signal,          x->timed_out,
                      x->cancelled,   x->oom_killed, x->suggested_state, x->wall_ms,
                      x->user_cpu_us, x->sys_cpu_us, x->max_rss_bytes};
    mu_pstr strs[] = {S(x->message)};
    send_msg(rt->r, MU_PM_PROC_EXIT, rt->id, ints, 11, strs, 1);
  }
  unlink_proc(rp);
  free(rp);
}

static void on_rproc_output(muster_task *task, muster_proc *mp, muster_stream stream, const void *data, size_t len,
                            void *user) {
  (void)task;
  (void)mp;
  rproc *rp = user;
  if (rp->rt->gen != rp->rt->r->gen) return;
  int64_t ints[] = {rp->id, stream};
  mu_pstr strs[] = {{data, len}};
  send_msg(rp->rt->r, MU_PM_PROC_OUTPUT, rp->rt->id, ints, 2, strs, 1);
}

static void reply(mu_plugin_remote *r, rtask *rt, int64_t call, int rc, const char *errbuf) {
  int64_t ints[] = {call, rc};
  mu_pstr strs[] = {S(errbuf)};
  send_msg(r, MU_PM_REPLY, rt->id, ints, 2, strs, 1);
}

static void do_spawn(mu_plugin_remote *r, rtask *rt, const mu_pmsg *m) {
  int64_t n_argv = m->ints[5];
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  if (n_argv < 1 || (uint64_t)n_argv > m->n_strs - 2) {
    reply(r, rt, m->ints[0], -EINVAL, "spawn: bad argument count");
    return;
  }
  size_t n_env = m->n_strs - 2 - (size_t)n_argv;
  const char **argv = calloc((size_t)n_argv + 1, sizeof *argv);
  const char **env = calloc(n_env + 1, sizeof *env);
  rproc *rp = calloc(1, sizeof *rp);
  if (argv == NULL || env == NULL || rp == NULL) {
    reply(r, rt, m->ints[0], -ENOMEM, "spawn: out of memory");
    goto done;
  }
  for (int64_t i = 0; i < n_argv; i++) argv[i] = m->strs[2 + i].p;
  for (size_t i = 0; i < n_env; i++) env[i] = m->strs[2 + n_argv + i].p;
  rp->rt = rt;
  rp->id = m->ints[1];
  muster_spawn_opts o = {
      .size = sizeof o,
      .argv = argv,
      .env = env,
      .cwd = m->ints[4] ? m->strs[0].p : NULL,
      .stdin_data = m->ints[3] ? m->strs[1].p : NULL,
      .stdin_len = m->strs[1].len,
      .on_exit = on_rproc_exit,
      .user = rp,
      .on_output = m->ints[2] ? on_rproc_output : NULL,
  };
  int rc = r->api->spawn(rt->task, &o, &rp->mp, errbuf);
  if (rc == 0) {
    rp->next = rt->procs;
    rt->procs = rp;
    rp = NULL;
  }
  reply(r, rt, m->ints[0], rc, errbuf);
done:
  free(argv);
  free(env);
  free(rp);
}

/* ---- messages from the host process ---- */

static void on_task_msg(mu_plugin_remote *r, rtask *rt, const mu_pmsg *m) {
  const muster_host_api *api = r->api;
  muster_task *t = rt->task;
  switch (m->kind) {
    case MU_PM_START_FAILED: {
      char msg[MUSTER_ERRBUF_SIZE + 64];
      snprintf(msg, sizeof msg, "%s: %s", r->type, m->strs[0].p);
      rt->finished = true;
      muster_result res = {MUSTER_STATE_FAILED, -1, 0, msg};
      api->finish(t, &res);
      break;
    }
    case MU_PM_OUTPUT: api->emit_output(t, (muster_stream)m->ints[0], m->strs[0].p, m->strs[0].len); break;
    case MU_PM_PROGRESS: api->report_progress(t, (double)m->ints[0] / 1e6, m->strs[0].len ? m->strs[0].p : NULL); break;
    case MU_PM_PARAM: api->set_param(t, m->strs[0].p, m->strs[1].p); break;
    case MU_PM_FINISH: {
      rt->finished = true;
      muster_result res = {(muster_state)m->ints[0], (int)m->ints[1], (int)m->ints[2],
                           m->ints[3] ? m->strs[0].p : NULL};
      api->finish(t, &res);
      break;
    }
    case MU_PM_SPAWN: do_spawn(r, rt, m); break;
    case MU_PM_PROC_KILL:
      for (rproc *rp = rt->procs; rp != NULL; rp = rp->next)
        if (rp->id == m->ints[0]) {
          api->proc_kill(t, rp->mp);
          break;
        }
      break;
    case MU_PM_LOG: api->log(t, (muster_log_level)m->ints[0], "%s", m->strs[0].p); break;
    case MU_PM_CANCEL_EXTEND:
      reply(r, rt, m->ints[0], api->cancel_extend(t, (uint64_t)(m->ints[1] < 0 ? 0 : m->ints[1])), "");
      break;
    case MU_PM_CANCEL_WITHDRAW: reply(r, rt, m->ints[0], api->cancel_withdraw(t), ""); break;
    default: mu_warn("plugins", "plugin '%s': unexpected %s from its host", r->type, mu_pm_kind_name(m->kind));
  }
}

static void kill_host(mu_plugin_remote *r) {
  if (r->proc_live && r->pid > 0) uv_process_kill(&r->proc, SIGKILL);
}

/* Kills the host for a reason of ours; its exit fails the tasks with it. */
static void kill_host_for(mu_plugin_remote *r, const char *why) {
  if (r->kill_reason[0] == '\0') snprintf(r->kill_reason, sizeof r->kill_reason, "%s", why);
  kill_host(r);
}

#define WATCHDOG_NONCE (-1)

static void on_watchdog(uv_timer_t *t) {
  mu_plugin_remote *r = t->data;
  if (r->state != R_UP || r->ch == NULL) return;
  int64_t now = mu_mono_ms();
  if (r->wd_sent_ms > 0) {
    if (now - r->wd_sent_ms >= r->o.hang_ms) {
      char why[160];
      snprintf(why, sizeof why, "stopped responding (no answer in %lld ms)", (long long)r->o.hang_ms);
      mu_warn("plugins", "plugin '%s' host (pid %d) %s; killing it", r->type, r->pid, why);
      kill_host_for(r, why);
    }
    return;
  }
  if (r->st.live_tasks == 0) return; /* an idle host may sleep as it likes */
  int64_t ints[] = {WATCHDOG_NONCE};
  mu_err e = {0};
  if (mu_pchan_send(r->ch, MU_PM_PING, 0, ints, 1, NULL, 0, &e) == 0) r->wd_sent_ms = now;
}

static void on_msg(mu_pchan *ch, mu_pmsg *m, void *arg) {
  (void)ch;
  mu_plugin_remote *r = arg;
  if (m->kind == MU_PM_HELLO) {
    if (r->state == R_STARTING && strcmp(m->strs[0].p, r->type) == 0) {
      r->state = R_UP;
      r->up_since_ms = mu_mono_ms();
      memset(r->metric_known, 0, sizeof r->metric_known); /* the new host registers again */
      send_config(r);
      mu_info("plugins", "plugin '%s' host up again (pid %d, restart %u)", r->type, r->pid, r->st.restarts);
    } else {
      mu_warn("plugins", "plugin '%s': unexpected HELLO for '%s' from pid %d; stopping it", r->type, m->strs[0].p,
              r->pid);
      kill_host_for(r, "serves another type after its restart");
    }
  } else if (m->kind == MU_PM_LOAD_FAILED) {
    mu_warn("plugins", "plugin '%s': host could not load %s: %s", r->type, r->so_path, m->strs[0].p);
  } else if (m->kind == MU_PM_PONG && m->ints[0] == WATCHDOG_NONCE) {
    r->wd_sent_ms = 0;
  } else if (m->kind == MU_PM_PONG) {
    if (r->ping_cb != NULL) {
      void (*cb)(void *, int64_t) = r->ping_cb;
      r->ping_cb = NULL;
      cb(r->ping_arg, (int64_t)(uv_hrtime() / 1000) - r->ping_sent_us);
    }
  } else if (r->state == R_UP && m->task == 0) {
    on_plugin_msg(r, m);
  } else if (r->state == R_UP) {
    rtask *rt = find_task(r, m->task);
    if (rt != NULL) on_task_msg(r, rt, m);
  }
  free(m);
}

static void on_chan_error(mu_pchan *ch, const mu_err *err, void *arg) {
  (void)ch;
  mu_plugin_remote *r = arg;
  if (r->state != R_CLOSING && err->code != MU_EIO) {
    mu_warn("plugins", "plugin '%s': host pid %d: %s; stopping it", r->type, r->pid, err->msg);
    char why[160];
    snprintf(why, sizeof why, "broke the protocol (%.120s)", err->msg);
    kill_host_for(r, why);
    return;
  }
  kill_host(r); /* its exit tells what happened */
}

static void start_host(mu_plugin_remote *r);

static void on_handle_closed(uv_handle_t *h) {
  mu_plugin_remote *r = h->data;
  if (h == (uv_handle_t *)&r->proc) r->proc_live = false;
  if (--r->open_handles > 0 || r->state != R_CLOSING) return;
  void (*cb)(void *) = r->close_cb;
  void *arg = r->close_arg;
  free(r->host_path);
  free(r->so_path);
  free(r->type);
  free(r->version);
  free(r->description);
  free(r->schema);
  free(r->config);
  free(r);
  if (cb != NULL) cb(arg);
}

static void on_restart_timer(uv_timer_t *t) { start_host(t->data); }
static void on_kill_timer(uv_timer_t *t) { kill_host(t->data); }

/* Every task of the dead host's generation ends FAILED now; their processes are killed by
 * finish() and their later exits are not forwarded anywhere. */
static uint32_t fail_tasks(mu_plugin_remote *r, const char *msg) {
  uint32_t n = 0;
  for (rtask *rt = r->tasks; rt != NULL; rt = rt->next) {
    if (rt->gen != r->gen || rt->finished) continue;
    rt->finished = true;
    muster_result res = {MUSTER_STATE_FAILED, -1, 0, msg};
    if (r->api->finish(rt->task, &res) == 0) n++;
  }
  return n;
}

static void on_host_exit(uv_process_t *p, int64_t status, int term_signal) {
  mu_plugin_remote *r = p->data;
  int pid = r->pid;
  r->pid = 0;
  r->st.pid = 0;
  if (r->ch != NULL) mu_pchan_close(r->ch, NULL, NULL);
  r->ch = NULL;
  char how[192], sig[32];
  r->wd_sent_ms = 0;
  if (r->kill_reason[0] != '\0') snprintf(how, sizeof how, "%s", r->kill_reason);
  else if (term_signal != 0) snprintf(how, sizeof how, "crashed (%s)", sig_name(term_signal, sig, sizeof sig));
  else snprintf(how, sizeof how, "exited with code %d", (int)status);
  r->kill_reason[0] = '\0';
  uv_close((uv_handle_t *)p, on_handle_closed);
  if (r->state == R_CLOSING) {
    if (term_signal != 0 && term_signal != SIGKILL)
      mu_warn("plugins", "plugin '%s' host (pid %d) %s while stopping (unloading the plugin)", r->type, pid, how);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->watchdog, on_handle_closed);
    return;
  }
  r->st.crashes++;
  char msg[320];
  snprintf(msg, sizeof msg, "plugin '%s' %s; restarted", r->type, how);
  uint32_t failed = r->api != NULL ? fail_tasks(r, msg) : 0;
  r->st.tasks_failed += failed;
  r->gen++; /* late messages and process exits of the old host go nowhere */
  if (r->up_since_ms > 0 && mu_mono_ms() - r->up_since_ms >= r->o.backoff_reset_ms) r->backoff_ms = 0;
  r->backoff_ms = r->backoff_ms == 0                        ? r->o.backoff_min_ms
                  : r->backoff_ms * 2 > r->o.backoff_max_ms ? r->o.backoff_max_ms
                                                            : r->backoff_ms * 2;
  r->up_since_ms = 0;
  r->state = R_DOWN;
  mu_warn("plugins", "plugin '%s' host (pid %d) %s; %u running task%s failed; restarting in %" PRId64 " ms", r->type,
          pid, how, failed, failed == 1 ? "" : "s", r->backoff_ms);
  uv_timer_start(&r->timer, on_restart_timer, (uint64_t)r->backoff_ms, 0);
}

/* Spawns the host with one end of a new socketpair as its fd 3. 0, or an error with nothing
 * left running. */
static int spawn_host(mu_plugin_remote *r, int *ret_fd, mu_err *err) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return mu_err_set(err, MU_EIO, "plugin %s: socketpair: %s", r->so_path, strerror(errno));
  char *args[] = {r->host_path, "--fd", "3", r->so_path, NULL};
  uv_stdio_container_t stdio[4] = {
      {.flags = UV_IGNORE},
      {.flags = UV_INHERIT_FD, .data.fd = 2}, /* the host's own complaints go to our log */
      {.flags = UV_INHERIT_FD, .data.fd = 2},
      {.flags = UV_INHERIT_FD, .data.fd = sv[1]},
  };
  uv_process_options_t po = {
      .exit_cb = on_host_exit,
      .file = r->host_path,
      .args = args,
      .stdio_count = 4,
      .stdio = stdio,
  };
  r->proc.data = r;
  int rc = uv_spawn(r->loop, &r->proc, &po);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    r->open_handles++;
    uv_close((uv_handle_t *)&r->proc, on_handle_closed); /* uv_spawn wants it closed anyway */
    r->open_handles--;
    return mu_err_set(err, MU_EIO, "plugin %s: cannot start %s: %s", r->so_path, r->host_path, uv_strerror(rc));
  }
  r->proc_live = true;
  r->open_handles++;
  r->pid = r->proc.pid;
  r->st.pid = r->pid;
  *ret_fd = sv[0];
  return 0;
}

static int open_chan(mu_plugin_remote *r, int fd, mu_err *err) {
  mu_pchan_limits lim = {r->o.max_message, r->o.max_pending};
  mu_pchan_cb cb = {on_msg, on_chan_error, r};
  return mu_pchan_open(r->loop, fd, &lim, &cb, &r->ch, err);
}

static void start_host(mu_plugin_remote *r) {
  if (r->state == R_CLOSING) return;
  mu_err e = {0};
  int fd = -1;
  r->st.restarts++;
  r->state = R_STARTING;
  if (spawn_host(r, &fd, &e) != 0 || open_chan(r, fd, &e) != 0) {
    if (fd >= 0) {
      close(fd);
      kill_host(r); /* its exit schedules the next try */
    } else {
      r->state = R_DOWN;
      r->backoff_ms = r->backoff_ms * 2 > r->o.backoff_max_ms ? r->o.backoff_max_ms : r->backoff_ms * 2;
      uv_timer_start(&r->timer, on_restart_timer, (uint64_t)r->backoff_ms, 0);
    }
    mu_warn("plugins", "plugin '%s': restart failed: %s", r->type, e.msg);
  }
}

/* Reads the first message from a fresh host, blocking up to timeout_ms (agent start only). */
static int await_hello(int fd, int timeout_ms, size_t max_body, mu_pmsg **ret, mu_err *err) {
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  int64_t deadline = mu_mono_ms() + timeout_ms;
  int rc = 0;
  for (;;) {
    size_t flen = 0;
    rc = mu_pmsg_frame_len(buf, len, max_body, &flen, err);
    if (rc != 0) break;
    if (flen > 0) {
      rc = mu_pmsg_decode(buf, flen, max_body, ret, err);
      break;
    }
    int64_t left = deadline - mu_mono_ms();
    struct pollfd pfd = {fd, POLLIN, 0};
    if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
      rc = mu_err_set(err, MU_EIO, "no HELLO within %d ms", timeout_ms);
      break;
    }
    if (cap - len < 4096) {
      uint8_t *nb = realloc(buf, cap + 65536);
      if (nb == NULL) {
        rc = mu_err_set(err, MU_ENOMEM, "out of memory");
        break;
      }
      buf = nb;
      cap += 65536;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = mu_err_set(err, MU_EIO, "the host process exited before saying HELLO");
      break;
    }
    len += (size_t)n;
  }
  free(buf);
  return rc;
}

int mu_plugin_remote_open(uv_loop_t *loop, const mu_plugin_remote_opts *opts, mu_plugin_remote **ret, mu_err *err) {
  if (opts == NULL || opts->host_path == NULL || opts->so_path == NULL)
    return mu_err_set(err, MU_EINVAL, "plugin: host_path and so_path are required");
  mu_plugin_remote *r = calloc(1, sizeof *r);
  if (r == NULL) return mu_err_set(err, MU_ENOMEM, "plugin: out of memory");
  r->loop = loop;
  r->o = *opts;
  if (r->o.hello_timeout_ms <= 0) r->o.hello_timeout_ms = 5000;
  if (r->o.backoff_min_ms <= 0) r->o.backoff_min_ms = 100;
  if (r->o.backoff_max_ms <= 0) r->o.backoff_max_ms = 30000;
  if (r->o.backoff_max_ms < r->o.backoff_min_ms) r->o.backoff_max_ms = r->o.backoff_min_ms;
  if (r->o.backoff_reset_ms <= 0) r->o.backoff_reset_ms = 60000;
  if (r->o.max_message == 0) r->o.max_message = MU_PM_DEFAULT_MAX_BODY;
  r->host_path = strdup(opts->host_path);
  r->so_path = strdup(opts->so_path);
  r->type = strdup("?");
  if (r->o.hang_ms <= 0) r->o.hang_ms = 10000;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_init(loop, &r->watchdog);
  r->watchdog.data = r;
  uv_unref((uv_handle_t *)&r->watchdog);
  uint64_t every = (uint64_t)(r->o.hang_ms / 4 > 0 ? r->o.hang_ms / 4 : 1);
  uv_timer_start(&r->watchdog, on_watchdog, every, every);
  r->open_handles = 2;
  r->state = R_STARTING;
  int fd = -1;
  mu_pmsg *hello = NULL;
  int rc;
  if (r->host_path == NULL || r->so_path == NULL || r->type == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "plugin: out of memory");
    goto fail;
  }
  rc = spawn_host(r, &fd, err);
  if (rc != 0) goto fail;
  rc = await_hello(fd, r->o.hello_timeout_ms, r->o.max_message, &hello, err);
  if (rc != 0) {
    mu_err_prefix(err, "plugin %s: host %s", r->so_path, r->host_path);
    goto fail;
  }
  if (hello->kind == MU_PM_LOAD_FAILED) {
    rc = mu_err_set(err, MU_EINVAL, "plugin %s: %s; not loaded", r->so_path, hello->strs[0].p);
    goto fail;
  }
  if (hello->kind != MU_PM_HELLO) {
    rc = mu_err_set(err, MU_EIO, "plugin %s: host said %s before HELLO", r->so_path, mu_pm_kind_name(hello->kind));
    goto fail;
  }
  free(r->type);
  r->type = strdup(hello->strs[0].p);
  r->version = strdup(hello->strs[1].p);
  r->description = strdup(hello->strs[2].p);
  r->schema = strdup(hello->n_strs > 3 ? hello->strs[3].p : "");
  bool has_configure = hello->n_ints > 5 && hello->ints[5] != 0;
  bool has_health = hello->n_ints > 6 && hello->ints[6] != 0;
  if (r->type == NULL || r->version == NULL || r->description == NULL || r->schema == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "plugin: out of memory");
    goto fail;
  }
  r->desc = (muster_plugin){
      .abi_version = (uint32_t)hello->ints[0],
      .type = r->type,
      .version = r->version,
      .description = r->description,
      .validate = NULL, /* runs in the host at start */
      .start = proxy_start,
      .cancel = proxy_cancel,
      .cleanup = proxy_cleanup,
      /* SDK v2: configure always (the proxy learns its env there and keeps the config for a
       * restarted host), health when the plugin has one */
      .configure = proxy_configure,
      .health = has_health ? proxy_health : NULL,
      .describe = proxy_describe,
  };
  (void)has_configure; /* an ABI 1 plugin (abi_version 1 here too) is never configured */
  free(hello);
  hello = NULL;
  rc = open_chan(r, fd, err);
  if (rc != 0) goto fail;
  fd = -1;
  r->state = R_UP;
  r->up_since_ms = mu_mono_ms();
  *ret = r;
  return 0;
fail:
  free(hello);
  if (fd >= 0) close(fd);
  r->state = R_CLOSING;
  if (r->proc_live) {
    kill_host(r); /* its exit callback closes the handles and frees r */
  } else {
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->watchdog, on_handle_closed);
  }
  return rc;
}

const muster_plugin *mu_plugin_remote_descriptor(const mu_plugin_remote *r) { return &r->desc; }

void mu_plugin_remote_stats_get(const mu_plugin_remote *r, mu_plugin_remote_stats *ret) { *ret = r->st; }

int mu_plugin_remote_ping(mu_plugin_remote *r, void (*cb)(void *arg, int64_t rtt_us), void *arg) {
  if (r->state != R_UP || r->ch == NULL) return MU_EAGAIN;
  if (r->ping_cb != NULL) return MU_EEXIST;
  r->ping_cb = cb;
  r->ping_arg = arg;
  r->ping_sent_us = (int64_t)(uv_hrtime() / 1000);
  int64_t ints[] = {r->ping_sent_us};
  mu_err e = {0};
  if (mu_pchan_send(r->ch, MU_PM_PING, 0, ints, 1, NULL, 0, &e) != 0) {
    r->ping_cb = NULL;
    return e.code;
  }
  return 0;
}

void mu_plugin_remote_close(mu_plugin_remote *r, void (*cb)(void *arg), void *arg) {
  if (r == NULL || r->state == R_CLOSING) return;
  r->state = R_CLOSING;
  r->close_cb = cb;
  r->close_arg = arg;
  if (r->ping_cb != NULL) {
    void (*pcb)(void *, int64_t) = r->ping_cb;
    r->ping_cb = NULL;
    pcb(r->ping_arg, -1);
  }
  uv_timer_stop(&r->timer);
  if (r->ch != NULL) mu_pchan_close(r->ch, NULL, NULL); /* EOF: the host unloads and exits */
  r->ch = NULL;
  if (r->proc_live) {
    uv_timer_start(&r->timer, on_kill_timer, 2000, 0);
  } else {
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->watchdog, on_handle_closed);
  }
}
