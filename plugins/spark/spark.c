/* The Spark task type. A task submits one Spark application — spark-submit as a supervised
 * process (local, client and cluster deploy modes; spark-sql for SQL) or the standalone
 * master's REST submission server — and owns it: the submission is tagged with the task and
 * attempt, the application id is read only from this submission's own output or answer, and
 * the handle is written to the agent's disk (spark_handle.h) before the task reports it. In
 * cluster mode spark-submit detaches and the plugin tracks the application through the cluster
 * manager (YARN ResourceManager REST, standalone REST status) to its real final state; a cancel
 * or timeout kills it there and waits for the cluster to confirm; a later attempt after an agent
 * restart re-attaches to the application instead of submitting another.
 * Built as a plugin .so against plugins/sdk/muster_plugin.h alone; configured through the
 * agent's environment (MUSTER_SPARK_*, docs/task-spark.md). */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "muster_plugin.h"
#include "spark_argv.h"
#include "spark_fetch.h"
#include "spark_handle.h"
#include "spark_http.h"
#include "spark_k8s.h"
#include "spark_livy.h"
#include "spark_output.h"
#include "spark_proto.h"
#include "spark_spec.h"

#define SPARK_DEFAULT_STATE_DIR "/var/lib/muster/spark"
#define SPARK_CALL_TIMEOUT_MS 10000
#define SPARK_MAX_REDIRECTS 3
#define SPARK_PROGRESS_MS 5000
#define SPARK_KILL_RETRY_FIRST_MS 100 /* a kill is re-checked after 100 ms, doubling to 1 s */
#define SPARK_KILL_RETRY_MAX_MS 1000
#define SPARK_OP_OUT_MAX (64 * 1024) /* what spark-submit --status may print that is kept */
#define SPARK_LIVY_LOG_LINES 100     /* the driver log tail copied at a Livy batch's end */
#define SPARK_LIVY_LOG_BYTES (32 * 1024)
#define SPARK_LIVY_CREATE_TRIES 3 /* POST /batches without an answer, each followed by a lookup by tag */

/* The agent's configuration, read once at load. */
static struct {
  mu_spark_defaults def;
  const char *state_dir;
} g;

typedef enum {
  ST_PREPARING,  /* deciding: submit, or re-attach to an earlier attempt's application */
  ST_SUBMITTING, /* spark-submit runs, or the REST create call is out */
  ST_TRACKING,   /* polling the cluster manager */
  ST_KILLING,    /* cancel: killing through the cluster manager, waiting for it to confirm */
  ST_ENDED,
} spark_stage;

typedef enum {
  CALL_NONE,
  CALL_STATUS,
  CALL_KILL,
  CALL_LOOKUP,
  CALL_CREATE,
  CALL_FINAL,
  CALL_PROGRESS,
  CALL_LOG
} call_kind;

typedef struct spark_task {
  const muster_host_api *host;
  muster_task *task;
  mu_spark_spec *spec;
  spark_stage stage;
  char task_tag[MU_SPARK_TAG_MAX + 1], attempt_tag[MU_SPARK_TAG_MAX + 1];
  char *app_name;
  char handle_path[4200];
  mu_spark_handle h; /* what is (being) written to handle_path */
  bool reattached;
  mu_spark_scan *scan;
  muster_proc *proc;
  bool proc_exited;
  int exit_code, exit_signal;
  char exit_message[256];
  mu_spark_call *call;
  call_kind call_kind;
  int redirects;
  muster_timer *timer;
  muster_timer *submit_timer; /* cluster mode: spark-submit has submit_timeout to name the id */
  bool submit_timed_out;
  size_t rm_index;       /* the ResourceManager answering last */
  char rm_redirect[512]; /* an active RM a standby pointed at, not in the list */
  unsigned poll_errors;
  char last_error[600];
  char app_state[64]; /* last state the cluster reported, as it said it */
  mu_spark_app_phase phase;
  bool have_phase;
  double last_progress;
  uint64_t last_progress_ms;
  bool params_sent_tracking, params_sent_ui;
  bool app_id_param_pending; /* the id is sent as a param once its handle is on disk */
  bool lookup_then_fail;     /* spark-submit failed without an id: find what it submitted, else fail */
  char fail_message[600];
  bool cancelling;
  muster_cancel_reason cancel_reason;
  uint64_t kill_deadline_ms;
  uint64_t submit_deadline_ms;
  bool kill_sent;
  uint64_t kill_retry_ms;
  int pending_saves; /* handle writes in flight: cleanup waits for them */
  bool cleaned;
  bool finished;
  bool log_fetched;    /* Livy: the batch's log tail was asked for at its end */
  char final_livy[32]; /* the final batch state, while its log is fetched */
  bool running_held;   /* cluster mode: RUNNING waits until the handle is persisted (hold_running) */
  unsigned create_tries;
  muster_proc *op_proc; /* Kubernetes: spark-submit --status / --kill running */
  bool op_kill;
  char *op_out;  /* its output (both streams), bounded by SPARK_OP_OUT_MAX */
  size_t op_len; /* Livy: POST /batches answered 5xx or not at all, then looked up by tag */
  char *sql_path;
  mu_spark_fetch *fetch; /* an app_resource URL being fetched */
  char *fetched_path;    /* where it was put, checked */
} spark_task;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static void track_next(spark_task *st, uint64_t delay_ms);

/* The next wait while a kill is under way: 100 ms, doubling to 1 s. */
static uint64_t kill_retry(spark_task *st) {
  uint64_t d = st->kill_retry_ms ? st->kill_retry_ms : SPARK_KILL_RETRY_FIRST_MS;
  st->kill_retry_ms = d * 2 > SPARK_KILL_RETRY_MAX_MS ? SPARK_KILL_RETRY_MAX_MS : d * 2;
  return d;
}
static void start_status_call(spark_task *st);
static void start_kill_call(spark_task *st);

/* ---- output and ending ---- */

static void say(spark_task *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(spark_task *st, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  char *clean = st->spec ? mu_spark_mask(st->spec, line, (size_t)n, NULL) : NULL;
  st->host->emit_output(st->task, MUSTER_STDERR, clean ? clean : line, clean ? strlen(clean) : (size_t)n);
  free(clean);
}

static void free_task(spark_task *st) {
  free(st->op_out);
  free(st->fetched_path);
  mu_spark_spec_free(st->spec);
  mu_spark_scan_free(st->scan);
  free(st->app_name);
  free(st->sql_path);
  free(st);
}

static void on_saved(void *arg, int rc, const char *msg);

static void set_param(spark_task *st, const char *key, const char *value);

static void save_handle(spark_task *st, mu_spark_h_phase phase) {
  st->h.phase = phase;
  if (st->handle_path[0] != '\0' &&
      mu_spark_handle_save(st->host->loop(st->task), st->handle_path, &st->h, on_saved, st) == 0) {
    st->pending_saves++;
    return;
  }
  if (st->app_id_param_pending) { /* nothing to wait for */
    st->app_id_param_pending = false;
    set_param(st, "app_id", st->h.app_id);
  }
}

static void stop_submit_timer(spark_task *st) {
  if (st->submit_timer != NULL) st->host->timer_stop(st->task, st->submit_timer);
  st->submit_timer = NULL;
}

static void stop_work(spark_task *st) {
  stop_submit_timer(st);
  mu_spark_fetch_cancel(st->fetch);
  st->fetch = NULL;
  if (st->call != NULL) mu_spark_call_cancel(st->call);
  st->call = NULL;
  if (st->op_proc != NULL) st->host->proc_kill(st->task, st->op_proc); /* its exit callback still runs */
  st->op_proc = NULL;
  st->call_kind = CALL_NONE;
  if (st->timer != NULL) st->host->timer_stop(st->task, st->timer);
  st->timer = NULL;
}

static void end(spark_task *st, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void end(spark_task *st, muster_state state, const char *fmt, ...) {
  if (st->finished) return;
  st->finished = true;
  st->stage = ST_ENDED;
  stop_work(st);
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char *clean = st->spec ? mu_spark_mask(st->spec, msg, strlen(msg), NULL) : NULL;
  muster_result r = {state, st->proc_exited ? st->exit_code : -1, st->proc_exited ? st->exit_signal : 0,
                     clean ? clean : msg};
  if (state != MUSTER_STATE_SUCCEEDED) st->host->log(st->task, MUSTER_LOG_INFO, "%s", r.message);
  st->host->finish(st->task, &r);
  free(clean);
}

/* The application is over (as the cluster says): the handle is done, the task ends. */
static void end_app(spark_task *st, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void end_app(spark_task *st, muster_state state, const char *fmt, ...) {
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (st->h.phase != 0) save_handle(st, MU_SPARK_H_DONE);
  if (st->h.app_id[0] != '\0' && !st->finished) set_param(st, "ended", st->h.app_id); /* a retry submits anew */
  end(st, state, "%s", msg);
}

static void on_saved(void *arg, int rc, const char *msg) {
  spark_task *st = arg;
  st->pending_saves--;
  if (st->cleaned) {
    if (st->pending_saves == 0) free_task(st);
    return;
  }
  if (st->app_id_param_pending && !st->finished) {
    st->app_id_param_pending = false;
    set_param(st, "app_id", st->h.app_id);
  }
  if (rc != 0) {
    st->host->log(st->task, MUSTER_LOG_WARN, "application handle not saved: %s", msg);
    if (!st->finished && st->h.phase == MU_SPARK_H_SUBMITTING && st->spec->cluster)
      end(st, MUSTER_STATE_FAILED,
          "spark: cannot persist the application handle (%s); not submitting an application that could not be "
          "re-attached",
          msg);
  }
}

static void set_param(spark_task *st, const char *key, const char *value) {
  if (value == NULL || *value == '\0') return;
  int rc = st->host->set_param(st->task, key, value);
  if (rc != 0) st->host->log(st->task, MUSTER_LOG_WARN, "param %s not set (%d)", key, rc);
  if (strcmp(key, "app_id") == 0) {
    /* the handle for the control plane: a retry, on this agent or another, gets its earlier
     * attempts' params and re-attaches by it (spark_handle_param) */
    char hv[600];
    snprintf(hv, sizeof hv, "%u %s %s %s", st->host->context(st->task)->attempt, st->h.kind, st->h.tag, value);
    rc = st->host->set_param(st->task, "handle", hv);
    if (rc != 0) st->host->log(st->task, MUSTER_LOG_WARN, "param handle not set (%d)", rc);
    /* RUNNING only now: the control plane persists the handle param before it acks it, and
     * the agent sends events in order, so no one sees the task running without its handle */
    if (st->running_held) {
      st->running_held = false;
      st->host->report_running(st->task);
    }
  }
}

/* ---- cluster manager addresses ---- */

static bool is_yarn(const spark_task *st) { return strcmp(st->h.kind, "yarn") == 0; }
static bool is_standalone(const spark_task *st) { return strcmp(st->h.kind, "standalone") == 0; }
static bool is_livy(const spark_task *st) { return strcmp(st->h.kind, "livy") == 0; }
static bool is_k8s(const spark_task *st) { return strcmp(st->h.kind, "k8s") == 0; }

/* A Livy batch id: decimal digits. */
static bool is_batch_id(const char *id) {
  if (*id == '\0') return false;
  for (; *id; id++)
    if (*id < '0' || *id > '9') return false;
  return true;
}

/* The cluster REST endpoint the task talks to, for messages. */
static const char *api_base(const spark_task *st);

static size_t n_rms(const spark_task *st) { return st->spec->yarn_rm_urls.n; }

static const char *rm_base(const spark_task *st) {
  if (st->rm_redirect[0] != '\0') return st->rm_redirect;
  return n_rms(st) > 0 ? st->spec->yarn_rm_urls.items[st->rm_index % n_rms(st)] : "";
}

static void rm_rotate(spark_task *st) {
  st->rm_redirect[0] = '\0';
  if (n_rms(st) > 0) st->rm_index = (st->rm_index + 1) % n_rms(st);
}

/* scheme://host:port of a Location header */
static void origin_of(const char *url, char *buf, size_t size) {
  const char *p = strstr(url, "://");
  const char *slash = p ? strchr(p + 3, '/') : NULL;
  size_t n = slash ? (size_t)(slash - url) : strlen(url);
  snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), url);
}

static bool trackable(const spark_task *st) {
  if (st->h.app_id[0] == '\0') return false;
  if (is_yarn(st)) return n_rms(st) > 0;
  if (is_standalone(st)) return st->spec->rest_url != NULL && strncmp(st->h.app_id, "driver-", 7) == 0;
  if (is_livy(st)) return st->spec->livy_url != NULL && is_batch_id(st->h.app_id);
  if (is_k8s(st)) return st->spec->cluster && strchr(st->h.app_id, ':') != NULL;
  return false;
}

/* Whether the cluster can be asked for the task's application by its tag: YARN's
 * applicationTags, Livy's batch names, Kubernetes driver pods by label. */
static bool searchable(const spark_task *st) {
  return (is_yarn(st) && n_rms(st) > 0) || is_livy(st) ||
         (is_k8s(st) && st->spec->cluster && st->spec->k8s_api_url != NULL);
}

static const char *api_base(const spark_task *st) {
  if (is_yarn(st)) return rm_base(st);
  if (is_livy(st)) return st->spec->livy_url;
  if (is_k8s(st)) return st->spec->k8s_api_url ? st->spec->k8s_api_url : st->spec->master;
  return st->spec->rest_url ? st->spec->rest_url : "";
}

/* ---- HTTP calls ---- */

static void on_call(void *arg, const mu_spark_reply *r);

static int call(spark_task *st, call_kind kind, const char *method, const char *url, const char *body) {
  st->call_kind = kind;
  mu_spark_auth auth = {
      .user = st->spec->auth_user, .password = st->spec->auth_password, .token = st->spec->auth_token};
  if (is_k8s(st)) { /* the only REST calls on Kubernetes go to its API server */
    auth = (mu_spark_auth){.token = st->spec->k8s_token, .ca_file = st->spec->k8s_ca_file};
  }
  int rc = mu_spark_call_start(st->host->loop(st->task), method, url, body, SPARK_CALL_TIMEOUT_MS, &auth, on_call, st,
                               &st->call);
  if (rc != 0) {
    st->call = NULL;
    st->call_kind = CALL_NONE;
  }
  return rc;
}

/* One failed poll: counted against the budget; the task fails when it is spent. */
static void poll_error(spark_task *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void poll_error(spark_task *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->last_error, sizeof st->last_error, fmt, ap);
  va_end(ap);
  st->poll_errors++;
  st->host->log(st->task, MUSTER_LOG_WARN, "tracking %s: %s (%u/%u)", st->h.app_id, st->last_error, st->poll_errors,
                st->spec->max_poll_errors);
  if (st->stage == ST_KILLING) {
    track_next(st, kill_retry(st));
    return;
  }
  if (st->poll_errors >= st->spec->max_poll_errors) {
    end(st, MUSTER_STATE_FAILED, "spark: lost track of %s after %u consecutive errors; last: %s", st->h.app_id,
        st->poll_errors, st->last_error);
    return;
  }
  track_next(st, (uint64_t)st->spec->poll_ms);
}

/* Progress, at most every SPARK_PROGRESS_MS and only when the whole percent moved: each report
 * is a journaled event, and hundreds of tracked applications must not flood the control plane. */
static void report_progress(spark_task *st, double pct) {
  if (pct < 0 || (int)pct == (int)st->last_progress) return;
  uint64_t now = now_ms();
  if (pct < 100 && st->last_progress >= 0 && now - st->last_progress_ms < SPARK_PROGRESS_MS) return;
  st->last_progress = pct;
  st->last_progress_ms = now;
  char msg[300];
  snprintf(msg, sizeof msg, "%s %s", st->h.app_id, st->app_state);
  st->host->report_progress(st->task, pct, msg);
}

/* A state the cluster reported for the application. */
static void on_app_state(spark_task *st, mu_spark_app_phase phase, const char *state_text, const char *detail,
                         const char *logs_url) {
  bool changed = !st->have_phase || strcmp(st->app_state, state_text) != 0;
  st->have_phase = true;
  st->phase = phase;
  snprintf(st->app_state, sizeof st->app_state, "%s", state_text);
  if (changed) say(st, "spark: %s is %s", st->h.app_id, state_text);
  if (st->stage == ST_KILLING) {
    if (mu_spark_phase_final(phase)) {
      bool ours = phase == MU_SPARK_APP_KILLED;
      set_param(st, "final_state", state_text);
      say(st, "spark: %s %s", st->h.app_id, ours ? "killed (confirmed by the cluster manager)" : "had already ended");
      end_app(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
              "spark: %s: %s %s", st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled", st->h.app_id,
              ours ? "killed (confirmed)" : state_text);
      return;
    }
    return;
  }
  if (!mu_spark_phase_final(phase)) return;
  if (detail != NULL && *detail != '\0') say(st, "spark: diagnostics: %s", detail);
  if (logs_url != NULL && *logs_url != '\0') say(st, "spark: driver logs: %s", logs_url);
  set_param(st, "final_state", state_text);
  if (phase == MU_SPARK_APP_SUCCEEDED) end_app(st, MUSTER_STATE_SUCCEEDED, "%s %s", st->h.app_id, state_text);
  else
    end_app(st, MUSTER_STATE_FAILED, "spark: %s ended %s%s%.600s", st->h.app_id, state_text,
            detail && *detail ? ": " : "", detail ? detail : "");
}

static void handle_status_reply(spark_task *st, const mu_spark_reply *r) {
  char why[MU_SPARK_TEXT_MAX];
  if (is_yarn(st)) {
    mu_spark_yarn_app app;
    int rc = mu_spark_yarn_app_parse(r->body, r->len, &app, why);
    if (r->status != 200 || rc != 0) {
      char text[300];
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      if (r->status == 404) poll_error(st, "GET %s/ws/v1/cluster/apps/%s: 404: %s", rm_base(st), st->h.app_id, text);
      else if (r->status != 200)
        poll_error(st, "GET %s/ws/v1/cluster/apps/%s: HTTP %ld: %s", rm_base(st), st->h.app_id, r->status, text);
      else poll_error(st, "GET %s/ws/v1/cluster/apps/%s: %s", rm_base(st), st->h.app_id, why);
      return;
    }
    st->poll_errors = 0;
    if (!mu_spark_tags_have(app.tags, st->h.tag)) {
      end(st, MUSTER_STATE_FAILED,
          "spark: %s does not carry this task's tag %s (its tags: \"%s\"); not tracking an application that is not "
          "this task's",
          st->h.app_id, st->h.tag, app.tags);
      return;
    }
    if (!st->params_sent_tracking && app.tracking_url[0] != '\0') {
      st->params_sent_tracking = true;
      set_param(st, "tracking_url", app.tracking_url);
    }
    char state_text[64];
    if (strcmp(app.state, "FINISHED") == 0 || strcmp(app.final_status, "UNDEFINED") != 0)
      snprintf(state_text, sizeof state_text, "%s/%s", app.state, app.final_status[0] ? app.final_status : "UNDEFINED");
    else snprintf(state_text, sizeof state_text, "%s", app.state);
    mu_spark_app_phase phase = mu_spark_yarn_phase(app.state, app.final_status);
    if (st->call_kind == CALL_FINAL) { /* client mode: the process ended, the RM says how */
      st->call_kind = CALL_NONE;
      if (!mu_spark_phase_final(phase)) {
        end_app(st, st->exit_code == 0 ? MUSTER_STATE_SUCCEEDED : MUSTER_STATE_FAILED,
                "%s: driver exited %d; %s still %s", st->h.app_id, st->exit_code, st->h.app_id, state_text);
        return;
      }
    }
    if (st->stage != ST_KILLING && st->spec->spark_ui_url == NULL) report_progress(st, app.progress);
    on_app_state(st, phase, state_text, app.diagnostics, app.am_container_logs);
  } else if (is_livy(st)) {
    mu_spark_livy_batch b;
    if (r->status == 404 && st->stage == ST_KILLING && st->kill_sent) {
      /* DELETE stops the batch and Livy forgets it: gone is the kill confirmed */
      on_app_state(st, MU_SPARK_APP_KILLED, "killed", NULL, NULL);
      return;
    }
    if (r->status != 200 || mu_spark_livy_batch_parse(r->body, r->len, &b, why) != 0) {
      char text[300];
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      poll_error(st, "GET %s/batches/%s/state: HTTP %ld: %s", st->spec->livy_url, st->h.app_id, r->status,
                 r->status == 200 ? why : text);
      return;
    }
    st->poll_errors = 0;
    mu_spark_app_phase ph = mu_spark_livy_phase(b.state);
    if (mu_spark_phase_final(ph) && st->stage == ST_TRACKING && !st->log_fetched) {
      /* the driver's log tail goes into the task's output before the end is reported */
      char url[2048];
      st->log_fetched = true;
      snprintf(st->final_livy, sizeof st->final_livy, "%s", b.state);
      snprintf(url, sizeof url, "%s/batches/%s/log?size=%d", st->spec->livy_url, st->h.app_id, SPARK_LIVY_LOG_LINES);
      if (call(st, CALL_LOG, "GET", url, NULL) == 0) return;
    }
    on_app_state(st, ph, b.state, NULL, NULL);
  } else {
    mu_spark_rest_reply rep;
    if (r->status != 200 || mu_spark_rest_parse(r->body, r->len, &rep, why) != 0) {
      char text[300];
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      poll_error(st, "GET %s/v1/submissions/status/%s: HTTP %ld: %s", st->spec->rest_url, st->h.app_id, r->status,
                 r->status == 200 ? why : text);
      return;
    }
    if (rep.driver_state[0] == '\0') {
      poll_error(st, "%s/v1/submissions/status/%s: no driverState%s%s", st->spec->rest_url, st->h.app_id,
                 rep.message[0] ? ": " : "", rep.message);
      return;
    }
    st->poll_errors = 0;
    on_app_state(st, mu_spark_driver_phase(rep.driver_state), rep.driver_state, rep.message, NULL);
  }
  if (!st->finished && st->stage == ST_TRACKING && st->spec->spark_ui_url != NULL &&
      st->phase == MU_SPARK_APP_RUNNING && !is_livy(st)) {
    /* progress from the Spark monitoring API: completed / total tasks of the jobs */
    char url[2048];
    snprintf(url, sizeof url, "%s/api/v1/applications/%s/jobs", st->spec->spark_ui_url, st->h.app_id);
    if (call(st, CALL_PROGRESS, "GET", url, NULL) == 0) return;
  }
  if (!st->finished && st->stage != ST_ENDED)
    track_next(st, st->stage == ST_KILLING ? kill_retry(st) : (uint64_t)st->spec->poll_ms);
}

/* PUT …/state {"state":"KILLED"}: 202 (accepted) or 200 KILLED; standalone: kill/<id>. */
static void handle_kill_reply(spark_task *st, const mu_spark_reply *r) {
  char text[300], state[32];
  if (is_yarn(st)) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if (r->status == 200 && mu_spark_yarn_state_parse(r->body, r->len, state) == 0 && strcmp(state, "KILLED") == 0) {
      st->poll_errors = 0;
      snprintf(st->app_state, sizeof st->app_state, "KILLED");
      on_app_state(st, MU_SPARK_APP_KILLED, "KILLED", NULL, NULL);
      return;
    }
    if (r->status == 200 && mu_spark_yarn_state_parse(r->body, r->len, state) == 0 &&
        (strcmp(state, "FINISHED") == 0 || strcmp(state, "FAILED") == 0)) {
      st->kill_sent = true; /* it had ended before the kill: ask how */
      start_status_call(st);
      return;
    }
    if (r->status == 202 || r->status == 200) {
      st->poll_errors = 0;
      if (mu_spark_yarn_state_parse(r->body, r->len, state) == 0 && state[0] != '\0')
        snprintf(st->app_state, sizeof st->app_state, "%s", state);
      st->kill_sent = true;
      track_next(st, kill_retry(st)); /* repeat the PUT until 200 KILLED */
      return;
    }
    if (r->status == 400 || r->status == 404 || r->status == 409) {
      /* a final application cannot be killed: ask how it ended */
      st->kill_sent = true;
      say(st, "spark: kill %s: HTTP %ld: %s", st->h.app_id, r->status, text);
      start_status_call(st);
      return;
    }
    poll_error(st, "PUT %s/ws/v1/cluster/apps/%s/state: HTTP %ld: %s", rm_base(st), st->h.app_id, r->status, text);
    return;
  }
  if (is_livy(st)) { /* DELETE /batches/{id}: 200 {"msg":"deleted"}; then the state must say so */
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if (r->status == 200 || r->status == 404) {
      st->kill_sent = true;
      st->poll_errors = 0;
      if (r->status == 404) say(st, "spark: kill batch %s: HTTP 404: %s", st->h.app_id, text);
      start_status_call(st);
      return;
    }
    poll_error(st, "DELETE %s/batches/%s: HTTP %ld: %s", st->spec->livy_url, st->h.app_id, r->status, text);
    return;
  }
  mu_spark_rest_reply rep;
  char why[MU_SPARK_TEXT_MAX];
  if (r->status != 200 || mu_spark_rest_parse(r->body, r->len, &rep, why) != 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    poll_error(st, "POST %s/v1/submissions/kill/%s: HTTP %ld: %s", st->spec->rest_url, st->h.app_id, r->status, text);
    return;
  }
  st->kill_sent = true;
  if (!rep.success) say(st, "spark: kill %s: %s", st->h.app_id, rep.message);
  start_status_call(st); /* the kill is asynchronous: poll until the driver is KILLED (or ended) */
}

static void begin_tracking(spark_task *st) {
  st->stage = ST_TRACKING;
  start_status_call(st);
}

/* A previous attempt's application found by tag (YARN), or none. */
static void submit(spark_task *st);

static void start_lookup_call(spark_task *st);

/* Cancel or timeout: kill the application through the cluster manager and wait for it to say
 * so; without an id yet (YARN), find it by the task's tag first. */
static void begin_kill(spark_task *st) {
  st->stage = ST_KILLING;
  st->kill_deadline_ms = now_ms() + (uint64_t)st->spec->kill_ms;
  st->poll_errors = 0;
  st->last_error[0] = '\0';
  if (st->h.app_id[0] == '\0') {
    say(st, "spark: looking for this task's application by tag %s to kill it", st->h.tag);
    start_lookup_call(st);
    return;
  }
  say(st, "spark: killing %s through the %s", st->h.app_id,
      is_yarn(st)   ? "ResourceManager"
      : is_livy(st) ? "Livy server"
      : is_k8s(st)  ? "spark-submit --kill"
                    : "master's REST server");
  start_kill_call(st);
}

/* An earlier attempt's live application (or this attempt's own), found by tag: tracked. */
static void reattach_found(spark_task *st, const char *id, const char *state) {
  if (st->lookup_then_fail)
    say(st, "spark: spark-submit failed after submitting %s (found by tag %s); tracking it", id, st->h.tag);
  else say(st, "spark: re-attaching to %s (state %s, tag %s) instead of submitting again", id, state, st->h.tag);
  snprintf(st->h.app_id, sizeof st->h.app_id, "%s", id);
  st->reattached = true;
  set_param(st, "app_id", st->h.app_id);
  save_handle(st, MU_SPARK_H_SUBMITTED);
  begin_tracking(st);
}

/* GET /batches searched for the task's tag (Livy: an attempt that died while its create call
 * was out, or ran on another agent). */
static void handle_livy_lookup_reply(spark_task *st, const mu_spark_reply *r) {
  char why[MU_SPARK_TEXT_MAX], text[300];
  mu_spark_livy_batch b;
  int n = r->status == 200 ? mu_spark_livy_find(r->body, r->len, st->h.tag, &b, why) : -1;
  if (n < 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if ((r->status >= 500 || r->status == 200) && ++st->poll_errors < st->spec->max_poll_errors) {
      st->host->log(st->task, MUSTER_LOG_WARN, "looking up tag %s: HTTP %ld: %s (%u/%u)", st->h.tag, r->status,
                    r->status == 200 ? why : text, st->poll_errors, st->spec->max_poll_errors);
      track_next(st, (uint64_t)st->spec->poll_ms);
      return;
    }
    end(st, MUSTER_STATE_FAILED,
        "spark: cannot tell whether an earlier attempt's batch still runs (GET %s/batches: %s%s); not submitting "
        "another",
        st->spec->livy_url, r->status == 200 ? "" : "HTTP ", r->status == 200 ? why : text);
    return;
  }
  /* this attempt's own batch (a create whose answer was lost) counts whatever its state: its end
   * is the task's; an earlier attempt's only while it runs */
  char own[MU_SPARK_TAG_MAX + 3];
  snprintf(own, sizeof own, "[%s]", st->attempt_tag);
  size_t nl = strlen(b.name), ol = strlen(own);
  bool mine = n == 1 && nl >= ol && strcmp(b.name + nl - ol, own) == 0;
  if (n == 1 && (mine || !mu_spark_phase_final(mu_spark_livy_phase(b.state)))) {
    reattach_found(st, b.id, b.state);
    return;
  }
  submit(st);
}

/* GET …/pods?labelSelector=spark-role=driver,muster-task=<tag>: the driver pod of an attempt
 * whose spark-submit never printed its name (or ran on another agent). */
static void handle_k8s_lookup_reply(spark_task *st, const mu_spark_reply *r) {
  char why[MU_SPARK_TEXT_MAX], text[300];
  mu_spark_k8s_pod pods[16];
  int n = r->status == 200 ? mu_spark_k8s_pods_parse(r->body, r->len, pods, 16, why) : -1;
  if (n < 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    char what[900];
    const char *ns = st->spec->namespace_ ? st->spec->namespace_ : "default";
    if (r->status == 200)
      snprintf(what, sizeof what, "GET %s/api/v1/namespaces/%s/pods (label muster-task=%s): %s", st->spec->k8s_api_url,
               ns, st->h.tag, why);
    else
      snprintf(what, sizeof what, "GET %s/api/v1/namespaces/%s/pods (label muster-task=%s): HTTP %ld: %s",
               st->spec->k8s_api_url, ns, st->h.tag, r->status, text);
    if (st->stage == ST_KILLING) {
      poll_error(st, "%s", what);
      return;
    }
    if ((r->status >= 500 || r->status == 200) && ++st->poll_errors < st->spec->max_poll_errors) {
      st->host->log(st->task, MUSTER_LOG_WARN, "looking up tag %s: %s (%u/%u)", st->h.tag, what, st->poll_errors,
                    st->spec->max_poll_errors);
      track_next(st, (uint64_t)st->spec->poll_ms);
      return;
    }
    end(st, MUSTER_STATE_FAILED,
        "spark: cannot tell whether an earlier attempt's driver pod still runs (%s); not submitting another", what);
    return;
  }
  char own[MU_SPARK_K8S_LABEL_MAX + 1];
  mu_spark_k8s_label_value(st->attempt_tag, own);
  const mu_spark_k8s_pod *pick = NULL;
  for (int i = 0; i < n; i++) {
    mu_spark_app_phase ph = mu_spark_k8s_phase(pods[i].phase);
    bool live = !pods[i].deleting && !mu_spark_phase_final(ph);
    /* this attempt's own pod counts whatever its state; an earlier attempt's only while it runs */
    bool mine = st->lookup_then_fail && strcmp(pods[i].attempt, own) == 0;
    if (st->stage == ST_KILLING ? live : (live || mine)) pick = &pods[i];
  }
  if (st->stage == ST_KILLING) { /* a cancel before spark-submit printed the pod's name */
    if (pick == NULL) {
      end_app(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
              "spark: %s; Kubernetes runs no driver pod labelled muster-task=%s",
              st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled", st->h.tag);
      return;
    }
    snprintf(st->h.app_id, sizeof st->h.app_id, "%s:%s", pick->namespace_, pick->name);
    save_handle(st, MU_SPARK_H_SUBMITTED);
    begin_kill(st);
    return;
  }
  if (pick != NULL) {
    char id[400];
    snprintf(id, sizeof id, "%s:%s", pick->namespace_, pick->name);
    reattach_found(st, id, pick->phase[0] ? pick->phase : "Pending");
    return;
  }
  if (st->lookup_then_fail) { /* Kubernetes confirms no driver pod of this task runs */
    end_app(st, MUSTER_STATE_FAILED, "%s", st->fail_message);
    return;
  }
  submit(st);
}

static void handle_lookup_reply(spark_task *st, const mu_spark_reply *r) {
  if (is_livy(st)) {
    handle_livy_lookup_reply(st, r);
    return;
  }
  if (is_k8s(st)) {
    handle_k8s_lookup_reply(st, r);
    return;
  }
  char why[MU_SPARK_TEXT_MAX], text[300];
  mu_spark_yarn_app apps[8];
  int n = r->status == 200 ? mu_spark_yarn_apps_parse(r->body, r->len, st->h.tag, apps, 8, why) : -1;
  if (n < 0 && st->stage != ST_KILLING && (r->status >= 500 || r->status == 200) &&
      ++st->poll_errors < st->spec->max_poll_errors) { /* a failing or confused RM: ask again */
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    st->host->log(st->task, MUSTER_LOG_WARN, "looking up tag %s: HTTP %ld: %s (%u/%u)", st->h.tag, r->status,
                  r->status == 200 ? why : text, st->poll_errors, st->spec->max_poll_errors);
    track_next(st, (uint64_t)st->spec->poll_ms);
    return;
  }
  if (st->stage == ST_KILLING) { /* a cancel before spark-submit printed the id */
    if (n < 0) {
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      poll_error(st, "GET %s/ws/v1/cluster/apps?applicationTags=%s: %s%s", rm_base(st), st->h.tag,
                 r->status == 200 ? "" : "HTTP ", r->status == 200 ? why : text);
      return;
    }
    for (int i = 0; i < n; i++)
      if (!mu_spark_phase_final(mu_spark_yarn_phase(apps[i].state, apps[i].final_status))) {
        snprintf(st->h.app_id, sizeof st->h.app_id, "%s", apps[i].id);
        save_handle(st, MU_SPARK_H_SUBMITTED);
        begin_kill(st);
        return;
      }
    end_app(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
            "spark: %s; the ResourceManager runs no application tagged %s",
            st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled", st->h.tag);
    return;
  }
  if (n < 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    end(st, MUSTER_STATE_FAILED,
        "spark: cannot tell whether an earlier attempt's application still runs (GET "
        "%s/ws/v1/cluster/apps?applicationTags=%s: %s%s); not submitting another",
        rm_base(st), st->h.tag, r->status == 200 ? "" : "HTTP ", r->status == 200 ? why : text);
    return;
  }
  for (int i = 0; i < n; i++) {
    mu_spark_app_phase ph = mu_spark_yarn_phase(apps[i].state, apps[i].final_status);
    /* this attempt's own application counts whatever its state (its end is the task's end);
     * an earlier attempt's only while it runs */
    bool own = st->lookup_then_fail && mu_spark_tags_have(apps[i].tags, st->attempt_tag);
    if (mu_spark_phase_final(ph) && !own) continue;
    reattach_found(st, apps[i].id, apps[i].state);
    return;
  }
  if (st->lookup_then_fail) { /* the RM confirms nothing of this task runs */
    end_app(st, MUSTER_STATE_FAILED, "%s", st->fail_message);
    return;
  }
  submit(st);
}

/* The id is the task's handle: durable before it is reported, then tracked (or killed when a
 * cancel came while the create call was out). */
static void submitted(spark_task *st, const char *id, const char *where) {
  snprintf(st->h.app_id, sizeof st->h.app_id, "%s", id);
  say(st, "spark: submitted %s to %s", st->h.app_id, where);
  st->app_id_param_pending = true; /* reported once the handle is durable (on_saved) */
  save_handle(st, MU_SPARK_H_SUBMITTED);
  if (st->cancelling) begin_kill(st);
  else begin_tracking(st);
}

/* POST /batches: 201 Created with the Batch (older servers 200). */
static void handle_livy_create_reply(spark_task *st, const mu_spark_reply *r) {
  mu_spark_livy_batch b;
  char why[MU_SPARK_TEXT_MAX], text[300];
  if (r->status >= 500 || r->error != NULL) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if (++st->create_tries < SPARK_LIVY_CREATE_TRIES && !st->cancelling) {
      /* the batch may exist all the same: look for it by tag, then submit only if it does not */
      say(st, "spark: POST %s/batches: %s%s; looking for the batch by tag %s before trying again", st->spec->livy_url,
          r->error ? "" : "HTTP 5xx: ", r->error ? r->error : text, st->task_tag);
      st->stage = ST_PREPARING;
      st->poll_errors = 0;
      track_next(st, (uint64_t)st->spec->poll_ms);
      return;
    }
    if (r->error != NULL) snprintf(text, sizeof text, "%s", r->error);
    end(st, MUSTER_STATE_FAILED,
        "spark: POST %s/batches: %s%s (after %u tries; a batch it may have created is tagged %s)", st->spec->livy_url,
        r->error ? "" : "HTTP 5xx: ", text, st->create_tries, st->task_tag);
    return;
  }
  if ((r->status != 201 && r->status != 200) || mu_spark_livy_batch_parse(r->body, r->len, &b, why) != 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    end(st, MUSTER_STATE_FAILED, "spark: POST %s/batches: HTTP %ld: %s", st->spec->livy_url, r->status,
        r->status == 201 || r->status == 200 ? why : text);
    return;
  }
  if (b.app_id[0] != '\0') set_param(st, "yarn_app_id", b.app_id);
  if (b.spark_ui_url[0] != '\0' && !st->params_sent_ui) {
    st->params_sent_ui = true;
    set_param(st, "ui_url", b.spark_ui_url);
  }
  char where[1200];
  snprintf(where, sizeof where, "%s as batch %s (state %s)", st->spec->livy_url, b.id, b.state);
  submitted(st, b.id, where);
}

static void handle_create_reply(spark_task *st, const mu_spark_reply *r) {
  if (is_livy(st)) {
    handle_livy_create_reply(st, r);
    return;
  }
  mu_spark_rest_reply rep;
  char why[MU_SPARK_TEXT_MAX], text[300];
  if (r->status != 200 || mu_spark_rest_parse(r->body, r->len, &rep, why) != 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    end(st, MUSTER_STATE_FAILED, "spark: POST %s/v1/submissions/create: HTTP %ld: %s", st->spec->rest_url, r->status,
        r->status == 200 ? why : text);
    return;
  }
  if (!rep.success || strncmp(rep.submission_id, "driver-", 7) != 0) {
    end(st, MUSTER_STATE_FAILED, "spark: the master refused the submission: %s",
        rep.message[0] ? rep.message : "success: false");
    return;
  }
  submitted(st, rep.submission_id, st->spec->rest_url);
}

static void on_call(void *arg, const mu_spark_reply *r) {
  spark_task *st = arg;
  call_kind kind = st->call_kind;
  st->call = NULL; /* freed by the caller after this returns */
  if (st->finished) return;
  if (kind == CALL_PROGRESS) { /* best effort: never counts against the error budget */
    double pct = r->error == NULL && r->status == 200 ? mu_spark_jobs_progress(r->body, r->len) : -1;
    if (pct >= 0) report_progress(st, pct);
    else
      st->host->log(st->task, MUSTER_LOG_DEBUG, "progress from %s: %s", st->spec->spark_ui_url,
                    r->error ? r->error : "no jobs yet");
    track_next(st, (uint64_t)st->spec->poll_ms);
    return;
  }
  if (kind == CALL_LOG) { /* best effort too: the batch's end is known already */
    char why[MU_SPARK_TEXT_MAX];
    char *text = r->error == NULL && r->status == 200
                     ? mu_spark_livy_log_text(r->body, r->len, SPARK_LIVY_LOG_BYTES, why)
                     : NULL;
    if (text != NULL) {
      say(st, "spark: the driver log (Livy batch %s, last lines):", st->h.app_id);
      char *clean = mu_spark_mask(st->spec, text, strlen(text), NULL);
      st->host->emit_output(st->task, MUSTER_STDOUT, clean ? clean : text, strlen(clean ? clean : text));
      free(clean);
      free(text);
    } else {
      say(st, "spark: no driver log from %s/batches/%s/log: %s", st->spec->livy_url, st->h.app_id,
          r->error           ? r->error
          : r->status == 200 ? why
                             : "not 200");
    }
    on_app_state(st, mu_spark_livy_phase(st->final_livy), st->final_livy, NULL, NULL);
    return;
  }
  if (r->error != NULL) {
    char msg[700];
    snprintf(msg, sizeof msg, "%s: %s", api_base(st), r->error);
    if (is_yarn(st)) rm_rotate(st);           /* try the next ResourceManager */
    if (kind == CALL_CREATE && is_livy(st)) { /* the batch may exist (an answer lost): by tag, then decide */
      handle_livy_create_reply(st, r);
      return;
    }
    if (kind == CALL_CREATE) {
      end(st, MUSTER_STATE_FAILED, "spark: POST %s/v1/submissions/create: %s (nothing submitted)", st->spec->rest_url,
          r->error);
      return;
    }
    if (kind == CALL_LOOKUP && st->stage != ST_KILLING) {
      if (++st->poll_errors < st->spec->max_poll_errors) { /* the next RM, within the error budget */
        track_next(st, st->poll_errors < n_rms(st) ? 0 : (uint64_t)st->spec->poll_ms);
        return;
      }
      end(st, MUSTER_STATE_FAILED,
          "spark: cannot tell whether an earlier attempt's application still runs (%s); not submitting another", msg);
      return;
    }
    st->call_kind = kind;
    poll_error(st, "%s", msg);
    return;
  }
  if (r->status == 307 && r->location != NULL && is_yarn(st)) { /* a standby ResourceManager */
    if (++st->redirects > SPARK_MAX_REDIRECTS) {
      st->redirects = 0;
      st->call_kind = kind;
      poll_error(st, "%s: more than %d redirects between ResourceManagers", rm_base(st), SPARK_MAX_REDIRECTS);
      return;
    }
    char origin[512];
    origin_of(r->location, origin, sizeof origin);
    st->rm_redirect[0] = '\0';
    for (size_t i = 0; i < n_rms(st); i++)
      if (strcmp(st->spec->yarn_rm_urls.items[i], origin) == 0) st->rm_index = i;
    if (strcmp(rm_base(st), origin) != 0) snprintf(st->rm_redirect, sizeof st->rm_redirect, "%s", origin);
    st->host->log(st->task, MUSTER_LOG_INFO, "standby ResourceManager: following to %s", origin);
    st->call_kind = kind;
    if (kind == CALL_KILL) start_kill_call(st);
    else if (kind == CALL_LOOKUP) track_next(st, 0);
    else start_status_call(st);
    return;
  }
  st->redirects = 0;
  switch (kind) {
    case CALL_STATUS:
    case CALL_FINAL:
      st->call_kind = kind;
      handle_status_reply(st, r);
      break;
    case CALL_KILL: handle_kill_reply(st, r); break;
    case CALL_LOOKUP: handle_lookup_reply(st, r); break;
    case CALL_CREATE: handle_create_reply(st, r); break;
    case CALL_PROGRESS:
    case CALL_LOG:
    case CALL_NONE: break;
  }
}

static void k8s_op(spark_task *st, bool kill);

static void start_status_call(spark_task *st) {
  if (is_k8s(st)) {
    k8s_op(st, false);
    return;
  }
  char url[2048];
  call_kind kind = st->call_kind == CALL_FINAL ? CALL_FINAL : CALL_STATUS;
  if (is_yarn(st)) snprintf(url, sizeof url, "%s/ws/v1/cluster/apps/%s", rm_base(st), st->h.app_id);
  else if (is_livy(st)) snprintf(url, sizeof url, "%s/batches/%s/state", st->spec->livy_url, st->h.app_id);
  else snprintf(url, sizeof url, "%s/v1/submissions/status/%s", st->spec->rest_url, st->h.app_id);
  if (call(st, kind, "GET", url, NULL) != 0) poll_error(st, "cannot start a call to %s", url);
}

static void start_kill_call(spark_task *st) {
  if (is_k8s(st)) {
    k8s_op(st, true);
    return;
  }
  char url[2048];
  if (is_yarn(st)) {
    snprintf(url, sizeof url, "%s/ws/v1/cluster/apps/%s/state", rm_base(st), st->h.app_id);
    if (call(st, CALL_KILL, "PUT", url, "{\"state\":\"KILLED\"}") != 0)
      poll_error(st, "cannot start a call to %s", url);
  } else if (is_livy(st)) {
    snprintf(url, sizeof url, "%s/batches/%s", st->spec->livy_url, st->h.app_id);
    if (call(st, CALL_KILL, "DELETE", url, NULL) != 0) poll_error(st, "cannot start a call to %s", url);
  } else {
    snprintf(url, sizeof url, "%s/v1/submissions/kill/%s", st->spec->rest_url, st->h.app_id);
    if (call(st, CALL_KILL, "POST", url, NULL) != 0) poll_error(st, "cannot start a call to %s", url);
  }
}

static void start_lookup_call(spark_task *st) {
  char url[2048];
  if (is_k8s(st)) {
    char label[MU_SPARK_K8S_LABEL_MAX + 1];
    mu_spark_k8s_label_value(st->h.tag, label);
    if (mu_spark_k8s_pods_url(st->spec->k8s_api_url, st->spec->namespace_, "muster-task", label, url, sizeof url) !=
        0) {
      end(st, MUSTER_STATE_FAILED, "spark: the Kubernetes API URL is too long");
      return;
    }
  } else if (is_livy(st)) snprintf(url, sizeof url, "%s/batches?from=0&size=1000", st->spec->livy_url);
  else snprintf(url, sizeof url, "%s/ws/v1/cluster/apps?applicationTags=%s", rm_base(st), st->h.tag);
  if (call(st, CALL_LOOKUP, "GET", url, NULL) != 0)
    end(st, MUSTER_STATE_FAILED, "spark: out of memory looking up %s", st->h.tag);
}

/* ---- the poll timer ---- */

static void unconfirmed(spark_task *st) {
  st->host->log(st->task, MUSTER_LOG_WARN, "kill unconfirmed: %s still %s (metric spark_kill_unconfirmed)",
                st->h.app_id, st->app_state[0] ? st->app_state : "in an unknown state");
  set_param(st, "kill_unconfirmed", st->h.app_id);
  char who[400];
  if (st->h.app_id[0] != '\0') snprintf(who, sizeof who, "%s", st->h.app_id);
  else snprintf(who, sizeof who, "the application tagged %s", st->h.tag);
  end(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
      "kill unconfirmed: %s still %s%s%s", who, st->app_state[0] ? st->app_state : "in an unknown state",
      st->last_error[0] ? "; last error: " : "", st->last_error);
}

static void on_timer(muster_task *task, muster_timer *timer, void *user) {
  (void)task;
  (void)timer;
  spark_task *st = user;
  st->timer = NULL; /* one-shot: released by the host */
  if (st->finished || st->call != NULL || st->op_proc != NULL) return;
  if (st->stage == ST_KILLING) {
    if (now_ms() >= st->kill_deadline_ms) {
      unconfirmed(st);
      return;
    }
    /* YARN: repeat the PUT until 200 KILLED; standalone: poll the status after the kill */
    if (st->h.app_id[0] == '\0') start_lookup_call(st);
    else if (is_yarn(st) || !st->kill_sent) start_kill_call(st);
    else start_status_call(st);
    return;
  }
  if (st->stage == ST_PREPARING) {
    start_lookup_call(st);
    return;
  }
  start_status_call(st);
}

static void track_next(spark_task *st, uint64_t delay_ms) {
  if (st->finished) return;
  if (st->timer != NULL) st->host->timer_stop(st->task, st->timer);
  st->timer = NULL;
  if (st->host->timer_start(st->task, delay_ms, 0, on_timer, st, &st->timer) != 0)
    end(st, MUSTER_STATE_FAILED, "spark: cannot start a timer");
}

/* SPARK_HOME=… for spark-submit's environment, in buf; NULL when the spec names none. */
static const char *spark_home_env(const spark_task *st, char *buf, size_t size) {
  if (st->spec->spark_home == NULL) return NULL;
  snprintf(buf, size, "SPARK_HOME=%s", st->spec->spark_home);
  return buf;
}

/* ---- Kubernetes: spark-submit --status / --kill <namespace:driver-pod> ---- */

static void on_op_output(muster_task *task, muster_proc *proc, muster_stream stream, const void *data, size_t len,
                         void *user) {
  (void)task;
  (void)stream;
  spark_task *st = user;
  if (proc != st->op_proc || st->op_out == NULL || st->op_len + len > SPARK_OP_OUT_MAX)
    return; /* the first 64 KiB say it */
  memcpy(st->op_out + st->op_len, data, len);
  st->op_len += len;
  st->op_out[st->op_len] = '\0';
}

/* The last non-empty line of what the op printed, for messages. */
static void op_last_line(const spark_task *st, char *buf, size_t size) {
  size_t e = st->op_len;
  while (e > 0 && (st->op_out[e - 1] == '\n' || st->op_out[e - 1] == '\r' || st->op_out[e - 1] == ' ')) e--;
  size_t b = e;
  while (b > 0 && st->op_out[b - 1] != '\n') b--;
  snprintf(buf, size, "%.*s", (int)(e - b), st->op_out + b);
}

static void on_op_exit(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  spark_task *st = user;
  if (proc != st->op_proc) return; /* one stop_work() abandoned */
  bool kill = st->op_kill;
  st->op_proc = NULL;
  if (st->finished || st->op_out == NULL) return;
  char last[300];
  op_last_line(st, last, sizeof last);
  const char *what = kill ? "--kill" : "--status";
  if (x->exit_code != 0) {
    poll_error(st, "spark-submit %s %s: %s%s%s", what, st->h.app_id, x->message && *x->message ? x->message : "failed",
               last[0] ? ": " : "", last);
    return;
  }
  mu_spark_k8s_status ks;
  mu_spark_k8s_status_parse(st->op_out, st->op_len, &ks);
  if (kill) { /* the pod is being deleted (or was gone): its status says when it is */
    st->kill_sent = true;
    st->poll_errors = 0;
    if (ks.not_found) say(st, "spark: kill %s: Application not found", st->h.app_id);
    start_status_call(st);
    return;
  }
  if (ks.not_found) {
    if (st->stage == ST_KILLING && st->kill_sent) { /* deleted: the kill is confirmed */
      on_app_state(st, MU_SPARK_APP_KILLED, "deleted", NULL, NULL);
      return;
    }
    poll_error(st, "spark-submit --status %s: the driver pod is gone (Application not found)", st->h.app_id);
    return;
  }
  if (!ks.found) {
    poll_error(st, "spark-submit --status %s: no pod phase in its output%s%s", st->h.app_id, last[0] ? ": " : "", last);
    return;
  }
  mu_spark_app_phase phase = mu_spark_k8s_phase(ks.phase);
  if (phase == MU_SPARK_APP_TRANSIENT) { /* Unknown: the node lost touch; it counts against the budget */
    snprintf(st->app_state, sizeof st->app_state, "%s", ks.phase);
    poll_error(st, "spark-submit --status %s: pod phase %s", st->h.app_id, ks.phase);
    return;
  }
  st->poll_errors = 0;
  char detail[64] = "";
  if (ks.exit_code >= 0) snprintf(detail, sizeof detail, "driver container exit code %d", ks.exit_code);
  on_app_state(st, phase, ks.phase, detail, NULL);
  if (!st->finished && st->stage != ST_ENDED)
    track_next(st, st->stage == ST_KILLING ? kill_retry(st) : (uint64_t)st->spec->poll_ms);
}

static void k8s_op(spark_task *st, bool kill) {
  mu_spark_argv av;
  char err[MUSTER_ERRBUF_SIZE] = "";
  if (st->op_out == NULL) st->op_out = malloc(SPARK_OP_OUT_MAX + 1);
  if (st->op_out == NULL) {
    poll_error(st, "out of memory");
    return;
  }
  st->op_len = 0;
  st->op_out[0] = '\0';
  if (mu_spark_k8s_op_argv(st->spec, kill ? "--kill" : "--status", st->h.app_id, &av) != 0) {
    poll_error(st, "out of memory");
    return;
  }
  char home_env[4200];
  const char *env[2] = {spark_home_env(st, home_env, sizeof home_env), NULL};
  if (kill) say(st, "$ %s --kill %s --master %s", av.argv[0], st->h.app_id, st->spec->master);
  st->op_kill = kill;
  muster_spawn_opts o = {.size = sizeof o,
                         .argv = (const char *const *)av.argv,
                         .env = env,
                         .on_exit = on_op_exit,
                         .user = st,
                         .on_output = on_op_output};
  if (st->host->spawn(st->task, &o, &st->op_proc, err) != 0) {
    st->op_proc = NULL;
    poll_error(st, "cannot start %s: %s", av.argv[0], err);
  }
  mu_spark_argv_free(&av);
}

/* ---- spark-submit ---- */

/* What spark-submit's own output has said so far: the id becomes the task's handle. */
static void apply_found(spark_task *st) {
  const mu_spark_found *f = mu_spark_scan_found(st->scan);
  const char *id = is_yarn(st)                      ? f->yarn_app_id
                   : is_standalone(st)              ? (st->spec->cluster ? f->driver_id : f->standalone_app_id)
                   : strcmp(st->h.kind, "k8s") == 0 ? f->k8s_submission
                                                    : "";
  if (id[0] != '\0' && st->h.app_id[0] == '\0') {
    stop_submit_timer(st);
    snprintf(st->h.app_id, sizeof st->h.app_id, "%s", id);
    st->host->log(st->task, MUSTER_LOG_INFO, "application %s (from spark-submit's own output)", id);
    st->app_id_param_pending = true; /* reported once the handle is durable (on_saved) */
    save_handle(st, MU_SPARK_H_SUBMITTED);
  }
  if (f->tracking_url[0] != '\0' && !st->params_sent_tracking) {
    st->params_sent_tracking = true;
    set_param(st, "tracking_url", f->tracking_url);
  }
  if (f->ui_url[0] != '\0' && !st->params_sent_ui) {
    st->params_sent_ui = true;
    set_param(st, "ui_url", f->ui_url);
  }
}

static void on_output(muster_task *task, muster_proc *proc, muster_stream stream, const void *data, size_t len,
                      void *user) {
  (void)task;
  (void)proc;
  spark_task *st = user;
  if (st->finished || st->scan == NULL || !mu_spark_scan_feed(st->scan, (int)stream, data, len)) return;
  apply_found(st);
}

static void on_proc_exit(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)proc;
  spark_task *st = user;
  st->proc = NULL;
  st->proc_exited = true;
  st->exit_code = x->exit_code;
  st->exit_signal = x->signal;
  snprintf(st->exit_message, sizeof st->exit_message, "%s", x->message ? x->message : "");
  if (st->finished) return;
  if (st->scan != NULL && mu_spark_scan_end(st->scan)) apply_found(st);
  mu_spark_scan_free(st->scan); /* 18 KiB of line buffers, not needed while tracking */
  st->scan = NULL;
  if (st->cancelling) {
    if (st->stage == ST_KILLING) return; /* the cluster kill decides */
    end(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, "spark: %s",
        st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled");
    return;
  }
  const char *why = x->message && *x->message ? x->message : "";
  if (st->spec->cluster) {
    if (st->h.app_id[0] == '\0') {
      snprintf(st->fail_message, sizeof st->fail_message, "spark: spark-submit printed no application id%s (%s)%s",
               st->submit_timed_out ? " within submit_timeout" : "", *why ? why : "exit 0",
               is_yarn(st) && n_rms(st) > 0 ? "; the ResourceManager has none with this task's tag"
               : searchable(st)             ? "; Kubernetes has no driver pod with this task's label"
               : is_standalone(st)
                   ? "; a standalone master lists its drivers without their application name or tags (its /json: id, "
                     "state, mainclass, worker), so whether this submission reached it cannot be told: not "
                     "submitting again"
                   : "");
      if (searchable(st)) {
        /* ambiguous: it may have submitted and died before printing the id; ask by tag */
        say(st, "spark: spark-submit printed no application id; looking for one by tag %s", st->task_tag);
        st->lookup_then_fail = true;
        st->stage = ST_PREPARING;
        start_lookup_call(st);
        return;
      }
      /* not end_app: the handle stays "submitting", so a retry cannot tell either and fails closed
       * rather than submitting a second application */
      end(st, MUSTER_STATE_FAILED, "%s", st->fail_message);
      return;
    }
    if (!trackable(st)) {
      end_app(st, x->suggested_state, "spark: %s submitted; no tracking address to follow it (spark-submit exited %d)",
              st->h.app_id, x->exit_code);
      return;
    }
    say(st, "spark: spark-submit detached; tracking %s", st->h.app_id);
    begin_tracking(st);
    return;
  }
  /* client and local mode: the driver was this process. YARN still says how the app ended. */
  if (is_yarn(st) && trackable(st)) {
    st->stage = ST_TRACKING;
    st->call_kind = CALL_FINAL;
    start_status_call(st);
    return;
  }
  if (x->suggested_state == MUSTER_STATE_SUCCEEDED)
    end_app(st, MUSTER_STATE_SUCCEEDED, "%s%sspark-submit exited 0", st->h.app_id, st->h.app_id[0] ? ": " : "");
  else
    end_app(st, MUSTER_STATE_FAILED, "spark: %s%sspark-submit %s", st->h.app_id, st->h.app_id[0] ? ": " : "",
            *why ? why : "failed");
}

static int write_sql(spark_task *st, const char *task_dir) {
  if (asprintf(&st->sql_path, "%s/.muster-spark.sql", task_dir) < 0) {
    st->sql_path = NULL;
    return -ENOMEM;
  }
  int fd = open(st->sql_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  size_t len = strlen(st->spec->sql);
  int rc = fd >= 0 && write(fd, st->spec->sql, len) == (ssize_t)len ? 0 : -errno;
  if (fd >= 0) close(fd);
  return rc;
}

/* spark-submit named no application within submit_timeout: stop it; its exit then asks the
 * cluster by tag (YARN) whether it submitted one anyway. */
static void on_submit_timeout(muster_task *task, muster_timer *timer, void *user) {
  (void)task;
  (void)timer;
  spark_task *st = user;
  st->submit_timer = NULL; /* one-shot: released by the host */
  if (st->finished || st->h.app_id[0] != '\0' || st->proc == NULL) return;
  st->submit_timed_out = true;
  say(st, "spark: no application id after submit_timeout (%lld ms); stopping spark-submit",
      (long long)st->spec->submit_ms);
  st->host->proc_kill(st->task, st->proc);
}

static void launch_submit(spark_task *st) {
  const muster_task_context *ctx = st->host->context(st->task);
  mu_spark_submit_ctx sc = {.task_dir = ctx->task_dir,
                            .app_resource = st->fetched_path,
                            .sql_file = st->sql_path,
                            .task_tag = st->task_tag,
                            .attempt_tag = st->attempt_tag,
                            .app_name = st->app_name};
  mu_spark_argv av;
  char err[MUSTER_ERRBUF_SIZE] = "";
  if (mu_spark_build_argv(st->spec, &sc, &av, err) != 0) {
    end(st, MUSTER_STATE_FAILED, "%s", err);
    return;
  }
  char *shown = mu_spark_argv_display(st->spec, &av);
  say(st, "$ %s", shown ? shown : av.argv[0]);
  st->host->log(st->task, MUSTER_LOG_INFO, "running %s", shown ? shown : av.argv[0]);
  free(shown);
  char home_env[4200];
  const char *env[2] = {spark_home_env(st, home_env, sizeof home_env), NULL};
  muster_spawn_opts o = {.size = sizeof o,
                         .argv = (const char *const *)av.argv,
                         .env = env,
                         .on_exit = on_proc_exit,
                         .user = st,
                         .on_output = on_output};
  if (st->host->spawn(st->task, &o, &st->proc, err) != 0) {
    end_app(st, MUSTER_STATE_FAILED, "spark: cannot start %s: %s", av.argv[0], err);
  } else if (st->spec->cluster && st->host->timer_start(st->task, (uint64_t)st->spec->submit_ms, 0, on_submit_timeout,
                                                        st, &st->submit_timer) != 0) {
    st->submit_timer = NULL;
    st->host->log(st->task, MUSTER_LOG_WARN, "submit_timeout not armed (no timer)");
  }
  mu_spark_argv_free(&av);
}

/* POST base+path with a create body (owned; NULL when it could not be built). */
static void post_create(spark_task *st, const char *base, const char *path, char *body) {
  if (body == NULL) {
    end(st, MUSTER_STATE_FAILED, "spark: out of memory");
    return;
  }
  const mu_spark_spec *s = st->spec;
  char url[2048];
  snprintf(url, sizeof url, "%s%s", base, path);
  say(st, "spark: POST %s (%s%s%s)", url, s->main_class ? s->main_class : "", s->main_class ? ", " : "",
      s->app_resource);
  if (call(st, CALL_CREATE, "POST", url, body) != 0) end(st, MUSTER_STATE_FAILED, "spark: cannot call %s", url);
  free(body);
}

static void launch_rest(spark_task *st) {
  const mu_spark_spec *s = st->spec;
  const char **keys = calloc(s->n_conf + 8, sizeof *keys), **vals = calloc(s->n_conf + 8, sizeof *vals);
  char *body = NULL;
  size_t n = 0;
  char num[5][32];
  if (keys != NULL && vals != NULL) {
    for (size_t i = 0; i < s->n_conf; i++) keys[n] = s->conf[i].key, vals[n++] = s->conf[i].value;
    if (s->driver_memory) keys[n] = "spark.driver.memory", vals[n++] = s->driver_memory;
    if (s->executor_memory) keys[n] = "spark.executor.memory", vals[n++] = s->executor_memory;
    if (s->driver_cores)
      snprintf(num[0], 32, "%u", s->driver_cores), keys[n] = "spark.driver.cores", vals[n++] = num[0];
    if (s->executor_cores)
      snprintf(num[1], 32, "%u", s->executor_cores), keys[n] = "spark.executor.cores", vals[n++] = num[1];
    if (s->num_executors) {
      /* a standalone master sizes an application by spark.cores.max */
      snprintf(num[2], 32, "%u", s->num_executors * (s->executor_cores ? s->executor_cores : 1));
      keys[n] = "spark.cores.max", vals[n++] = num[2];
    }
    mu_spark_rest_create c = {.app_resource = s->app_resource,
                              .main_class = s->main_class,
                              .app_name = st->app_name,
                              .app_args = (const char *const *)s->app_args.items,
                              .n_args = s->app_args.n,
                              .prop_keys = keys,
                              .prop_values = vals,
                              .n_props = n,
                              .master = s->master};
    body = mu_spark_rest_create_body(&c);
  }
  free(keys);
  free(vals);
  post_create(st, s->rest_url, "/v1/submissions/create", body);
}

/* POST {livy}/batches: the spec's fields as Livy's batch request; dynamic allocation and the
 * task's tags go in conf (spark.yarn.tags, so a YARN RM can be searched by them too). */
static void launch_livy(spark_task *st) {
  const mu_spark_spec *s = st->spec;
  const char **keys = calloc(s->n_conf + 8, sizeof *keys), **vals = calloc(s->n_conf + 8, sizeof *vals);
  char *body = NULL, num[3][32], tags[2 * MU_SPARK_TAG_MAX + 4];
  if (keys != NULL && vals != NULL) {
    size_t n = 0;
    bool have_tags = false;
    for (size_t i = 0; i < s->n_conf; i++) {
      if (strcmp(s->conf[i].key, "spark.yarn.tags") == 0) have_tags = true;
      keys[n] = s->conf[i].key, vals[n++] = s->conf[i].value;
    }
    if (!have_tags) {
      snprintf(tags, sizeof tags, "%s,%s", st->task_tag, st->attempt_tag);
      keys[n] = "spark.yarn.tags", vals[n++] = tags;
    }
    if (s->dyn_enabled) {
      keys[n] = "spark.dynamicAllocation.enabled", vals[n++] = "true";
      if (s->dyn_min)
        snprintf(num[0], 32, "%u", s->dyn_min), keys[n] = "spark.dynamicAllocation.minExecutors", vals[n++] = num[0];
      if (s->dyn_max)
        snprintf(num[1], 32, "%u", s->dyn_max), keys[n] = "spark.dynamicAllocation.maxExecutors", vals[n++] = num[1];
      if (s->dyn_initial)
        snprintf(num[2], 32, "%u", s->dyn_initial), keys[n] = "spark.dynamicAllocation.initialExecutors",
                                                    vals[n++] = num[2];
    }
    mu_spark_livy_create c = {.file = s->app_resource,
                              .class_name = s->main_class,
                              .name = st->app_name,
                              .queue = s->queue,
                              .driver_memory = s->driver_memory,
                              .executor_memory = s->executor_memory,
                              .driver_cores = s->driver_cores,
                              .executor_cores = s->executor_cores,
                              .num_executors = s->num_executors,
                              .args = (const char *const *)s->app_args.items,
                              .n_args = s->app_args.n,
                              .jars = (const char *const *)s->jars.items,
                              .n_jars = s->jars.n,
                              .py_files = (const char *const *)s->py_files.items,
                              .n_py_files = s->py_files.n,
                              .files = (const char *const *)s->files.items,
                              .n_files = s->files.n,
                              .archives = (const char *const *)s->archives.items,
                              .n_archives = s->archives.n,
                              .conf_keys = keys,
                              .conf_values = vals,
                              .n_conf = n,
                              .proxy_user = s->proxy_user};
    body = mu_spark_livy_create_body(&c);
  }
  free(keys);
  free(vals);
  post_create(st, s->livy_url, "/batches", body);
}

static void on_fetched(void *arg, int rc, const char *msg) {
  spark_task *st = arg;
  st->fetch = NULL; /* freed by the fetch after this returns */
  if (st->finished) return;
  if (rc != 0) {
    end_app(st, MUSTER_STATE_FAILED, "spark.app_resource: %s: %s", st->spec->app_resource, msg);
    return;
  }
  say(st, "spark: fetched %s (%s)", st->spec->app_resource, msg);
  launch_submit(st);
}

/* An app_resource URL: fetched into the task dir and checked against app_resource_sha256
 * before spark-submit sees it. The file keeps the URL's base name (spark-submit goes by the
 * extension). */
static void fetch_resource(spark_task *st) {
  const char *url = st->spec->app_resource;
  const char *stop = url + strcspn(url, "?#");
  const char *base = stop;
  while (base > url && base[-1] != '/') base--;
  char name[128];
  size_t n = 0;
  for (const char *p = base; p < stop && n + 1 < sizeof name; p++)
    name[n++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
  name[n] = '\0';
  if (n == 0 || name[0] == '.')
    snprintf(name, sizeof name, "app%s", st->spec->program == MU_SPARK_PYTHON ? ".py" : ".jar");
  if (asprintf(&st->fetched_path, "%s/.muster-spark-%s", st->host->context(st->task)->task_dir, name) < 0) {
    st->fetched_path = NULL;
    end(st, MUSTER_STATE_FAILED, "spark: out of memory");
    return;
  }
  long timeout = st->spec->timeout_ms > 0 ? (long)st->spec->timeout_ms : 30L * 60 * 1000;
  char msg[512];
  say(st, "spark: fetching %s", url);
  if (mu_spark_fetch_start(st->host->loop(st->task), url, st->fetched_path, st->spec->app_resource_sha256, 0, timeout,
                           on_fetched, st, &st->fetch, msg) != 0)
    end_app(st, MUSTER_STATE_FAILED, "spark.app_resource: %s: %s", url, msg);
}

static void on_submitting_saved(void *arg, int rc, const char *msg);

/* Writes the "submitting" handle (durably), then submits. */
static void submit(spark_task *st) {
  st->stage = ST_SUBMITTING;
  st->h.app_id[0] = '\0';
  snprintf(st->h.tag, sizeof st->h.tag, "%s", st->task_tag); /* a lookup may have used an earlier placement's */
  st->h.attempt = st->host->context(st->task)->attempt;
  st->h.phase = MU_SPARK_H_SUBMITTING;
  st->pending_saves++; /* balanced in on_submitting_saved */
  if (st->handle_path[0] == '\0') on_submitting_saved(st, 0, NULL);
  else if (mu_spark_handle_save(st->host->loop(st->task), st->handle_path, &st->h, on_submitting_saved, st) != 0)
    on_submitting_saved(st, -ENOMEM, "out of memory");
}

static void on_submitting_saved(void *arg, int rc, const char *msg) {
  spark_task *st = arg;
  st->pending_saves--;
  if (st->cleaned) {
    if (st->pending_saves == 0) free_task(st);
    return;
  }
  if (st->finished) return;
  if (rc != 0) {
    if (st->spec->cluster) {
      end(st, MUSTER_STATE_FAILED,
          "spark: cannot persist the application handle (%s); not submitting an application that could not be "
          "re-attached "
          "(set MUSTER_SPARK_STATE_DIR on the agent)",
          msg);
      return;
    }
    st->host->log(st->task, MUSTER_LOG_WARN, "application handle not saved (%s); submitting anyway (%s mode)", msg,
                  st->spec->master_kind == MU_SPARK_LOCAL ? "local" : "client");
  }
  if (st->spec->via == MU_SPARK_VIA_REST) launch_rest(st);
  else if (st->spec->via == MU_SPARK_VIA_LIVY) launch_livy(st);
  else if (st->spec->app_resource_is_url) fetch_resource(st);
  else launch_submit(st);
}

/* ---- plugin callbacks ---- */

static void load_defaults(void) {
  g.def.spark_home = getenv("MUSTER_SPARK_HOME");
  g.def.yarn_rm_urls = getenv("MUSTER_SPARK_YARN_RM_URLS");
  g.def.rest_url = getenv("MUSTER_SPARK_REST_URL");
  g.def.livy_url = getenv("MUSTER_SPARK_LIVY_URL");
  g.def.spark_ui_url = getenv("MUSTER_SPARK_UI_URL");
  g.def.k8s_api_url = getenv("MUSTER_SPARK_K8S_API_URL");
  g.def.k8s_ca_file = getenv("MUSTER_SPARK_K8S_CA_FILE");
  const char *d = getenv("MUSTER_SPARK_STATE_DIR");
  g.state_dir = d != NULL && d[0] == '/' ? d : SPARK_DEFAULT_STATE_DIR;
}

static int spark_validate(const char *spec_json, const char *config_json, char *errbuf) {
  mu_spark_spec *s = NULL;
  int rc = mu_spark_spec_parse(spec_json, config_json, &g.def, &s, errbuf);
  mu_spark_spec_free(s);
  return rc;
}

/* Bundle files the spec names must be there (URLs are the cluster's business). */
static int check_files(const mu_spark_spec *s, const char *task_dir, char *errbuf) {
  struct {
    const char *field;
    const mu_spark_list *l;
  } lists[] = {{"spark.jars", &s->jars},
               {"spark.py_files", &s->py_files},
               {"spark.files", &s->files},
               {"spark.archives", &s->archives}};
  char path[4200];
  struct stat sb;
  if (s->app_resource != NULL && !s->app_resource_is_url && s->via == MU_SPARK_VIA_SUBMIT) {
    snprintf(path, sizeof path, "%s/%s", task_dir, s->app_resource);
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark.app_resource: \"%s\" not found in the task's bundle",
               s->app_resource);
      return -ENOENT;
    }
  }
  for (size_t k = 0; k < sizeof lists / sizeof *lists; k++)
    for (size_t i = 0; i < lists[k].l->n; i++) {
      const char *v = lists[k].l->items[i];
      if (strstr(v, "://") != NULL) continue;
      snprintf(path, sizeof path, "%s/%s", task_dir, v);
      if (stat(path, &sb) != 0) {
        snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s[%zu]: \"%s\" not found in the task's bundle", lists[k].field, i, v);
        return -ENOENT;
      }
    }
  if (s->keytab != NULL && s->keytab[0] != '/') {
    snprintf(path, sizeof path, "%s/%s", task_dir, s->keytab);
    if (stat(path, &sb) != 0) {
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark.keytab: \"%s\" not found in the task's bundle", s->keytab);
      return -ENOENT;
    }
  }
  return 0;
}

static const char *kind_of(const mu_spark_spec *s) {
  if (s->via == MU_SPARK_VIA_LIVY) return "livy";
  switch (s->master_kind) {
    case MU_SPARK_YARN: return "yarn";
    case MU_SPARK_STANDALONE: return "standalone";
    case MU_SPARK_K8S: return "k8s";
    case MU_SPARK_LOCAL: return "local";
  }
  return "local";
}

/* An earlier attempt's handle: re-attach when it names an application the cluster can be
 * asked about; look it up by tag when the earlier attempt died mid-submission (YARN). Returns
 * true when the task is under way (re-attached, looking up, or ended), false to submit. */
static bool resume_earlier(spark_task *st, const mu_spark_handle *old, unsigned attempt) {
  if (strcmp(old->kind, st->h.kind) != 0) return false; /* the spec changed master: a new application */
  if (old->phase == MU_SPARK_H_DONE) {
    if (old->attempt == attempt) { /* this very attempt ended already (a re-sent assignment) */
      end(st, MUSTER_STATE_FAILED, "spark: attempt %u already ran %s to its end on this agent; not submitting it again",
          attempt, old->app_id[0] ? old->app_id : "its application");
      return true;
    }
    return false;
  }
  if (old->app_id[0] != '\0') {
    st->h.attempt = old->attempt;
    snprintf(st->h.app_id, sizeof st->h.app_id, "%s", old->app_id);
    snprintf(st->h.tag, sizeof st->h.tag, "%s", old->tag[0] ? old->tag : st->task_tag);
    if (trackable(st)) {
      st->reattached = true;
      say(st, "spark: re-attaching to %s, submitted by attempt %u (not submitting again)", old->app_id, old->attempt);
      set_param(st, "app_id", st->h.app_id);
      save_handle(st, MU_SPARK_H_SUBMITTED);
      begin_tracking(st);
      return true;
    }
    st->h.app_id[0] = '\0';
    snprintf(st->h.tag, sizeof st->h.tag, "%s", st->task_tag);
    if (strcmp(old->kind, "local") == 0 || !st->spec->cluster) {
      say(st, "spark: attempt %u's driver (%s) ran under the agent's previous process; submitting again", old->attempt,
          old->app_id);
      return false;
    }
    end(st, MUSTER_STATE_FAILED,
        "spark: attempt %u submitted %s, which this agent cannot track (no %s); not submitting a duplicate",
        old->attempt, old->app_id, is_yarn(st) ? "yarn_rm_urls" : "rest_url");
    return true;
  }
  /* submitting, no id: did the submission reach the cluster? */
  if (searchable(st)) {
    if (old->tag[0] != '\0') snprintf(st->h.tag, sizeof st->h.tag, "%s", old->tag); /* its placement's tag */
    say(st, "spark: attempt %u ended while submitting; looking for its application by tag %s", old->attempt, st->h.tag);
    st->stage = ST_PREPARING;
    start_lookup_call(st);
    return true;
  }
  if (strcmp(old->kind, "local") == 0 || !st->spec->cluster) return false;
  end(st, MUSTER_STATE_FAILED,
      "spark: attempt %u ended while submitting to %s and its fate cannot be determined (no application id, no search "
      "by tag%s); failing rather than risking a duplicate application",
      old->attempt, st->spec->master,
      is_standalone(st) ? ": a standalone master lists its drivers without their application name or tags"
      : is_k8s(st)      ? ": no k8s_api_url to find the driver pod by its label"
                        : "");
  return true;
}

/* The value of "<task name>.<key>" among the params the control plane sent with this attempt
 * (a retry gets its own earlier attempts' params), or NULL. */
static const char *own_param(const muster_task_context *ctx, const char *key) {
  const char *name = strrchr(ctx->task_id, '/');
  name = name ? name + 1 : ctx->task_id;
  size_t nl = strlen(name);
  for (size_t i = 0; i < ctx->n_params; i++) {
    const char *k = ctx->param_keys[i];
    if (strncmp(k, name, nl) == 0 && k[nl] == '.' && strcmp(k + nl + 1, key) == 0) return ctx->param_values[i];
  }
  return NULL;
}

/* The handle an earlier attempt sent to the control plane ("handle" param: "<attempt that
 * reported it> <kind> <task tag> <app id>"; "ended" names an application whose end that attempt saw; "tag" is the
 * latest attempt's tag, which tells an attempt that died before naming an id). 1 with *ret,
 * or 0. */
static int cp_handle(const muster_task_context *ctx, mu_spark_handle *ret) {
  if (ctx->attempt < 2) return 0;
  const char *hv = own_param(ctx, "handle"), *ended = own_param(ctx, "ended"), *tag = own_param(ctx, "tag");
  memset(ret, 0, sizeof *ret);
  unsigned a = 0;
  char kind[16], ttag[128], id[256];
  if (hv != NULL && sscanf(hv, "%u %15s %127s %255s", &a, kind, ttag, id) == 4 && a > 0 && a < ctx->attempt) {
    ret->attempt = a;
    snprintf(ret->kind, sizeof ret->kind, "%s", kind);
    snprintf(ret->tag, sizeof ret->tag, "%s", ttag);
    snprintf(ret->app_id, sizeof ret->app_id, "%s", id);
    ret->phase = ended != NULL && strcmp(ended, id) == 0 ? MU_SPARK_H_DONE : MU_SPARK_H_SUBMITTED;
  }
  /* a later attempt started (its tag) but named no id: it may have died mid-submission */
  const char *dash = tag ? strrchr(tag, '-') : NULL;
  unsigned ta = dash && dash[1] == 'a' ? (unsigned)strtoul(dash + 2, NULL, 10) : 0;
  if (ta > ret->attempt && ta < ctx->attempt && (size_t)(dash - tag) < sizeof ret->tag) {
    ret->attempt = ta;
    ret->phase = MU_SPARK_H_SUBMITTING;
    ret->app_id[0] = '\0';
    snprintf(ret->tag, sizeof ret->tag, "%.*s", (int)(dash - tag), tag);
  }
  return ret->attempt > 0;
}

static int spark_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  spark_task *st = calloc(1, sizeof *st);
  if (st == NULL) return -ENOMEM;
  st->host = host;
  st->task = task;
  st->last_progress = -1;
  host->set_user_data(task, st); /* freed in cleanup, whatever happens next */
  const muster_task_context *ctx = host->context(task);
  int rc = mu_spark_spec_parse(ctx->spec_json, ctx->config_json, &g.def, &st->spec, errbuf);
  if (rc != 0) return rc;
  rc = check_files(st->spec, ctx->task_dir, errbuf);
  if (rc != 0) return rc;
  if (st->spec->sql != NULL && write_sql(st, ctx->task_dir) != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark.sql: cannot write the script to the task dir: %s", strerror(errno));
    return -EIO;
  }
  st->scan = mu_spark_scan_new();
  if (st->scan == NULL) return -ENOMEM;
  mu_spark_task_tag(ctx->job_id, ctx->task_id, st->task_tag);
  mu_spark_attempt_tag(st->task_tag, ctx->attempt, st->attempt_tag);
  if (asprintf(&st->app_name, "%s [%s]", st->spec->name ? st->spec->name : ctx->task_id, st->attempt_tag) < 0) {
    st->app_name = NULL;
    return -ENOMEM;
  }
  /* cluster mode: the task stays STARTING until the application's handle is on the agent's disk
   * and sent to the control plane (an agent older than hold_running reports RUNNING now) */
  if (st->spec->cluster && host->size >= offsetof(muster_host_api, report_running) + sizeof(void *) &&
      host->hold_running != NULL && host->report_running != NULL && host->hold_running(task) == 0)
    st->running_held = true;
  snprintf(st->h.kind, sizeof st->h.kind, "%s", kind_of(st->spec));
  snprintf(st->h.tag, sizeof st->h.tag, "%s", st->task_tag);
  st->h.attempt = ctx->attempt; /* a handle found again keeps the attempt that submitted it */
  if (is_yarn(st)) {
    size_t n = 0;
    for (size_t i = 0; i < n_rms(st) && n + 2 < sizeof st->h.cluster; i++)
      n += (size_t)snprintf(st->h.cluster + n, sizeof st->h.cluster - n, "%s%s", i ? "," : "",
                            st->spec->yarn_rm_urls.items[i]);
  } else if (is_livy(st)) {
    snprintf(st->h.cluster, sizeof st->h.cluster, "%s", st->spec->livy_url);
  } else if (st->spec->rest_url != NULL) {
    snprintf(st->h.cluster, sizeof st->h.cluster, "%s", st->spec->rest_url);
  }
  set_param(st, "tag", st->attempt_tag);
  mu_spark_handle_path(g.state_dir, ctx->agent_id ? ctx->agent_id : "agent", ctx->job_id, ctx->task_id, st->handle_path,
                       sizeof st->handle_path);
  mu_spark_handle old;
  char why[256];
  int found = mu_spark_handle_load(st->handle_path, &old, why);
  if (found < 0) {
    if (st->spec->cluster && ctx->attempt > 1) {
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark: %s; cannot tell whether an earlier attempt's application runs", why);
      return -EIO;
    }
    host->log(task, MUSTER_LOG_WARN, "%s (ignored)", why);
    found = 0;
  }
  mu_spark_handle cp;
  if (cp_handle(ctx, &cp) && (found <= 0 || cp.attempt > old.attempt)) {
    /* the control plane knows a later attempt than this agent's disk (it ran elsewhere, or the
     * disk was lost) */
    if (cp.kind[0] == '\0') snprintf(cp.kind, sizeof cp.kind, "%s", st->h.kind);
    if (cp.phase != MU_SPARK_H_DONE)
      say(st, "spark: attempt %u's handle from the control plane: %s%s(tag %s)", cp.attempt, cp.app_id,
          cp.app_id[0] ? " " : "no application id ", cp.tag);
    old = cp;
    found = 1;
  }
  if (found > 0 && old.attempt <= ctx->attempt && resume_earlier(st, &old, ctx->attempt)) return 0;
  if ((found == 0 || old.phase == MU_SPARK_H_DONE) && ctx->attempt > 1 && searchable(st)) {
    /* an earlier attempt may have run on another agent: ask the RM by tag */
    st->stage = ST_PREPARING;
    start_lookup_call(st);
    return 0;
  }
  submit(st);
  return 0;
}

static void spark_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  spark_task *st = host->user_data(task);
  if (st == NULL || st->finished) return;
  st->cancelling = true;
  st->cancel_reason = reason;
  if (reason == MUSTER_CANCEL_SHUTDOWN) { /* the application keeps running; the next attempt re-attaches */
    stop_work(st);
    char msg[400];
    snprintf(msg, sizeof msg, "spark: the agent is stopping; %s%sleft running for the next attempt to re-attach",
             st->h.app_id, st->h.app_id[0] ? " " : "");
    /* detached: not reported ended; the next agent process reports the attempt LOST and the
     * retry re-attaches (an older agent: CANCELLED below, the application goes on) */
    if (host->size >= offsetof(muster_host_api, detach) + sizeof(void *) && host->detach != NULL &&
        host->detach(task, msg) == 0) {
      st->finished = true;
      st->stage = ST_ENDED;
      return;
    }
    end(st, MUSTER_STATE_CANCELLED, "spark: the agent is stopping; %s%sleft running for the next attempt to re-attach",
        st->h.app_id, st->h.app_id[0] ? " " : "");
    return;
  }
  /* the verified kill takes up to kill_timeout: keep the agent from ending the task after its
   * short grace period meanwhile */
  if (host->size >= offsetof(muster_host_api, cancel_extend) + sizeof(void *) && host->cancel_extend != NULL)
    host->cancel_extend(task, (uint64_t)st->spec->kill_ms + SPARK_CALL_TIMEOUT_MS + 2000);
  if (st->call != NULL && st->call_kind == CALL_CREATE) return; /* killed once the master names the driver */
  stop_work(st);
  if (st->h.app_id[0] != '\0' && trackable(st)) {
    begin_kill(st);
    return;
  }
  if (st->h.app_id[0] == '\0' && (is_yarn(st) || is_k8s(st)) && searchable(st) && st->spec->cluster &&
      st->stage == ST_SUBMITTING) {
    /* spark-submit may have submitted before printing the id: find the application by tag */
    begin_kill(st);
    return;
  }
  if (st->proc != NULL) return; /* the agent signalled spark-submit; its exit ends the task */
  if (st->h.app_id[0] != '\0')
    say(st, "spark: %s cannot be killed from here (no tracking address); it may still run", st->h.app_id);
  end(st, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, "spark: %s",
      reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled");
}

static void spark_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  spark_task *st = user_data;
  if (st == NULL) return;
  /* the agent has released every timer and process of the task by now: only our own calls remain */
  st->timer = NULL;
  st->submit_timer = NULL;
  st->op_proc = NULL;
  stop_work(st);
  if (st->pending_saves > 0) {
    st->cleaned = true; /* freed by the last write's callback */
    return;
  }
  free_task(st);
}

__attribute__((constructor)) static void spark_load(void) { load_defaults(); }

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "spark",
    .version = "1.0.0",
    .description = "submits Spark applications (spark-submit, standalone REST), tracks, kills and re-attaches to them",
    .validate = spark_validate,
    .start = spark_start,
    .cancel = spark_cancel,
    .cleanup = spark_cleanup,
};
