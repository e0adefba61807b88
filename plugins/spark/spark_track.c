/* Tracking: the calls to the cluster manager (YARN RM with HA redirects, standalone REST, Livy)
 * and their answers, dispatched by kind; the application's state mapped to the task's end;
 * progress; the poll timer and the consecutive-error budget. */
#include "spark_track.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
#include "spark_task.h"
#include "spark_kill.h"
#include "spark_k8s_op.h"
#include "spark_reattach.h"
#include "spark_submit.h"

static void on_call(void *arg, const mu_spark_reply *r);

/* The next wait while a kill is under way: 100 ms, doubling to 1 s. */
uint64_t spark_kill_retry(spark_task *st) {
  uint64_t d = st->kill_retry_ms ? st->kill_retry_ms : SPARK_KILL_RETRY_FIRST_MS;
  st->kill_retry_ms = d * 2 > SPARK_KILL_RETRY_MAX_MS ? SPARK_KILL_RETRY_MAX_MS : d * 2;
  return d;
}

int spark_call(spark_task *st, call_kind kind, const char *method, const char *url, const char *body) {
  st->call_kind = kind;
  mu_spark_auth auth = {.user = st->spec->auth_user,
                        .password = st->spec->auth_password,
                        .token = st->spec->auth_token,
                        .negotiate = st->spec->auth_negotiate};
  if (spark_is_k8s(st)) { /* the only REST calls on Kubernetes go to its API server */
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

void spark_poll_error(spark_task *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->last_error, sizeof st->last_error, fmt, ap);
  va_end(ap);
  st->poll_errors++;
  st->host->log(st->task, MUSTER_LOG_WARN, "tracking %s: %s (%u/%u)", st->h.app_id, st->last_error, st->poll_errors,
                st->spec->max_poll_errors);
  if (st->stage == ST_KILLING) {
    spark_track_next(st, spark_kill_retry(st));
    return;
  }
  if (st->poll_errors >= st->spec->max_poll_errors) {
    spark_end(st, MUSTER_STATE_FAILED, "spark: lost track of %s after %u consecutive errors; last: %s", st->h.app_id,
              st->poll_errors, st->last_error);
    return;
  }
  spark_track_next(st, (uint64_t)st->spec->poll_ms);
}

/* Progress, at most every SPARK_PROGRESS_MS and only when the whole percent moved: each report
 * is a journaled event, and hundreds of tracked applications must not flood the control plane. */
static void report_progress(spark_task *st, double pct) {
  if (pct < 0 || (int)pct == (int)st->last_progress) return;
  uint64_t now = spark_now_ms();
  if (pct < 100 && st->last_progress >= 0 && now - st->last_progress_ms < SPARK_PROGRESS_MS) return;
  st->last_progress = pct;
  st->last_progress_ms = now;
  char msg[300];
  snprintf(msg, sizeof msg, "%s %s", st->h.app_id, st->app_state);
  st->host->report_progress(st->task, pct, msg);
}

/* A state the cluster reported for the application. */
void spark_on_app_state(spark_task *st, mu_spark_app_phase phase, const char *state_text, const char *detail,
                        const char *logs_url) {
  bool changed = !st->have_phase || strcmp(st->app_state, state_text) != 0;
  st->have_phase = true;
  st->phase = phase;
  snprintf(st->app_state, sizeof st->app_state, "%s", state_text);
  if (changed) spark_say(st, "spark: %s is %s", st->h.app_id, state_text);
  if (st->stage == ST_KILLING) {
    if (mu_spark_phase_final(phase)) {
      bool ours = phase == MU_SPARK_APP_KILLED;
      spark_set_param(st, "final_state", state_text);
      spark_say(st, "spark: %s %s", st->h.app_id,
                ours ? "killed (confirmed by the cluster manager)" : "had already ended");
      spark_end_app(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
                    "spark: %s: %s %s", st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled",
                    st->h.app_id, ours ? "killed (confirmed)" : state_text);
      return;
    }
    return;
  }
  if (!mu_spark_phase_final(phase)) return;
  if (detail != NULL && *detail != '\0') spark_say(st, "spark: diagnostics: %s", detail);
  if (logs_url != NULL && *logs_url != '\0') spark_say(st, "spark: driver logs: %s", logs_url);
  spark_set_param(st, "final_state", state_text);
  if (phase == MU_SPARK_APP_SUCCEEDED) spark_end_app(st, MUSTER_STATE_SUCCEEDED, "%s %s", st->h.app_id, state_text);
  else
    spark_end_app(st, MUSTER_STATE_FAILED, "spark: %s ended %s%s%.600s", st->h.app_id, state_text,
                  detail && *detail ? ": " : "", detail ? detail : "");
}

static void handle_status_reply(spark_task *st, const mu_spark_reply *r) {
  char why[MU_SPARK_TEXT_MAX];
  if (spark_is_yarn(st)) {
    mu_spark_yarn_app app;
    int rc = mu_spark_yarn_app_parse(r->body, r->len, &app, why);
    if (r->status != 200 || rc != 0) {
      char text[300];
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      if (r->status == 404)
        spark_poll_error(st, "GET %s/ws/v1/cluster/apps/%s: 404: %s", spark_rm_base(st), st->h.app_id, text);
      else if (r->status != 200)
        spark_poll_error(st, "GET %s/ws/v1/cluster/apps/%s: HTTP %ld: %s", spark_rm_base(st), st->h.app_id, r->status,
                         text);
      else spark_poll_error(st, "GET %s/ws/v1/cluster/apps/%s: %s", spark_rm_base(st), st->h.app_id, why);
      return;
    }
    st->poll_errors = 0;
    if (!mu_spark_tags_have(app.tags, st->h.tag)) {
      spark_end(
          st, MUSTER_STATE_FAILED,
          "spark: %s does not carry this task's tag %s (its tags: \"%s\"); not tracking an application that is not "
          "this task's",
          st->h.app_id, st->h.tag, app.tags);
      return;
    }
    if (!st->params_sent_tracking && app.tracking_url[0] != '\0') {
      st->params_sent_tracking = true;
      spark_set_param(st, "tracking_url", app.tracking_url);
    }
    char state_text[64];
    if (strcmp(app.state, "FINISHED") == 0 || strcmp(app.final_status, "UNDEFINED") != 0)
      snprintf(state_text, sizeof state_text, "%s/%s", app.state, app.final_status[0] ? app.final_status : "UNDEFINED");
    else snprintf(state_text, sizeof state_text, "%s", app.state);
    mu_spark_app_phase phase = mu_spark_yarn_phase(app.state, app.final_status);
    if (st->call_kind == CALL_FINAL) { /* client mode: the process ended, the RM says how */
      st->call_kind = CALL_NONE;
      if (!mu_spark_phase_final(phase)) {
        spark_end_app(st, st->exit_code == 0 ? MUSTER_STATE_SUCCEEDED : MUSTER_STATE_FAILED,
                      "%s: driver exited %d; %s still %s", st->h.app_id, st->exit_code, st->h.app_id, state_text);
        return;
      }
    }
    if (st->stage != ST_KILLING && st->spec->spark_ui_url == NULL) report_progress(st, app.progress);
    spark_on_app_state(st, phase, state_text, app.diagnostics, app.am_container_logs);
  } else if (spark_is_livy(st)) {
    mu_spark_livy_batch b;
    if (r->status == 404 && st->stage == ST_KILLING && st->kill_sent) {
      /* DELETE stops the batch and Livy forgets it: gone is the kill confirmed */
      spark_on_app_state(st, MU_SPARK_APP_KILLED, "killed", NULL, NULL);
      return;
    }
    if (r->status != 200 || mu_spark_livy_batch_parse(r->body, r->len, &b, why) != 0) {
      char text[300];
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      spark_poll_error(st, "GET %s/batches/%s/state: HTTP %ld: %s", st->spec->livy_url, st->h.app_id, r->status,
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
      if (spark_call(st, CALL_LOG, "GET", url, NULL) == 0) return;
    }
    spark_on_app_state(st, ph, b.state, NULL, NULL);
  } else {
    mu_spark_rest_reply rep;
    if (r->status != 200 || mu_spark_rest_parse(r->body, r->len, &rep, why) != 0) {
      char text[300];
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      spark_poll_error(st, "GET %s/v1/submissions/status/%s: HTTP %ld: %s", st->spec->rest_url, st->h.app_id, r->status,
                       r->status == 200 ? why : text);
      return;
    }
    if (rep.driver_state[0] == '\0') {
      spark_poll_error(st, "%s/v1/submissions/status/%s: no driverState%s%s", st->spec->rest_url, st->h.app_id,
                       rep.message[0] ? ": " : "", rep.message);
      return;
    }
    st->poll_errors = 0;
    spark_on_app_state(st, mu_spark_driver_phase(rep.driver_state), rep.driver_state, rep.message, NULL);
  }
  if (!st->finished && st->stage == ST_TRACKING && st->spec->spark_ui_url != NULL &&
      st->phase == MU_SPARK_APP_RUNNING && !spark_is_livy(st)) {
    /* progress from the Spark monitoring API: completed / total tasks of the jobs */
    char url[2048];
    snprintf(url, sizeof url, "%s/api/v1/applications/%s/jobs", st->spec->spark_ui_url, st->h.app_id);
    if (spark_call(st, CALL_PROGRESS, "GET", url, NULL) == 0) return;
  }
  if (!st->finished && st->stage != ST_ENDED)
    spark_track_next(st, st->stage == ST_KILLING ? spark_kill_retry(st) : (uint64_t)st->spec->poll_ms);
}

void spark_begin_tracking(spark_task *st) {
  st->stage = ST_TRACKING;
  spark_start_status_call(st);
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
    spark_track_next(st, (uint64_t)st->spec->poll_ms);
    return;
  }
  if (kind == CALL_LOG) { /* best effort too: the batch's end is known already */
    char why[MU_SPARK_TEXT_MAX];
    char *text = r->error == NULL && r->status == 200
                     ? mu_spark_livy_log_text(r->body, r->len, SPARK_LIVY_LOG_BYTES, why)
                     : NULL;
    if (text != NULL) {
      spark_say(st, "spark: the driver log (Livy batch %s, last lines):", st->h.app_id);
      char *clean = mu_spark_mask(st->spec, text, strlen(text), NULL);
      st->host->emit_output(st->task, MUSTER_STDOUT, clean ? clean : text, strlen(clean ? clean : text));
      free(clean);
      free(text);
    } else {
      spark_say(st, "spark: no driver log from %s/batches/%s/log: %s", st->spec->livy_url, st->h.app_id,
                r->error           ? r->error
                : r->status == 200 ? why
                                   : "not 200");
    }
    spark_on_app_state(st, mu_spark_livy_phase(st->final_livy), st->final_livy, NULL, NULL);
    return;
  }
  if (r->error != NULL) {
    char msg[700];
    snprintf(msg, sizeof msg, "%s: %s", spark_api_base(st), r->error);
    if (spark_is_yarn(st)) spark_rm_rotate(st);     /* try the next ResourceManager */
    if (kind == CALL_CREATE && spark_is_livy(st)) { /* the batch may exist (an answer lost): by tag, then decide */
      spark_handle_livy_create_reply(st, r);
      return;
    }
    if (kind == CALL_CREATE) {
      spark_end(st, MUSTER_STATE_FAILED, "spark: POST %s/v1/submissions/create: %s (nothing submitted)",
                st->spec->rest_url, r->error);
      return;
    }
    if (kind == CALL_LOOKUP && st->stage != ST_KILLING) {
      if (++st->poll_errors < st->spec->max_poll_errors) { /* the next RM, within the error budget */
        spark_track_next(st, st->poll_errors < spark_n_rms(st) ? 0 : (uint64_t)st->spec->poll_ms);
        return;
      }
      spark_end(st, MUSTER_STATE_FAILED,
                "spark: cannot tell whether an earlier attempt's application still runs (%s); not submitting another",
                msg);
      return;
    }
    st->call_kind = kind;
    spark_poll_error(st, "%s", msg);
    return;
  }
  if (r->status == 307 && r->location != NULL && spark_is_yarn(st)) { /* a standby ResourceManager */
    if (++st->redirects > SPARK_MAX_REDIRECTS) {
      st->redirects = 0;
      st->call_kind = kind;
      spark_poll_error(st, "%s: more than %d redirects between ResourceManagers", spark_rm_base(st),
                       SPARK_MAX_REDIRECTS);
      return;
    }
    char origin[512];
    spark_origin_of(r->location, origin, sizeof origin);
    st->rm_redirect[0] = '\0';
    for (size_t i = 0; i < spark_n_rms(st); i++)
      if (strcmp(st->spec->yarn_rm_urls.items[i], origin) == 0) st->rm_index = i;
    if (strcmp(spark_rm_base(st), origin) != 0) snprintf(st->rm_redirect, sizeof st->rm_redirect, "%s", origin);
    st->host->log(st->task, MUSTER_LOG_INFO, "standby ResourceManager: following to %s", origin);
    st->call_kind = kind;
    if (kind == CALL_KILL) spark_start_kill_call(st);
    else if (kind == CALL_LOOKUP) spark_track_next(st, 0);
    else spark_start_status_call(st);
    return;
  }
  st->redirects = 0;
  switch (kind) {
    case CALL_STATUS:
    case CALL_FINAL:
      st->call_kind = kind;
      handle_status_reply(st, r);
      break;
    case CALL_KILL: spark_handle_kill_reply(st, r); break;
    case CALL_LOOKUP: spark_handle_lookup_reply(st, r); break;
    case CALL_CREATE: spark_handle_create_reply(st, r); break;
    case CALL_PROGRESS:
    case CALL_LOG:
    case CALL_NONE: break;
  }
}

void spark_start_status_call(spark_task *st) {
  if (spark_is_k8s(st)) {
    spark_k8s_op(st, false);
    return;
  }
  char url[2048];
  call_kind kind = st->call_kind == CALL_FINAL ? CALL_FINAL : CALL_STATUS;
  if (spark_is_yarn(st)) snprintf(url, sizeof url, "%s/ws/v1/cluster/apps/%s", spark_rm_base(st), st->h.app_id);
  else if (spark_is_livy(st)) snprintf(url, sizeof url, "%s/batches/%s/state", st->spec->livy_url, st->h.app_id);
  else snprintf(url, sizeof url, "%s/v1/submissions/status/%s", st->spec->rest_url, st->h.app_id);
  if (spark_call(st, kind, "GET", url, NULL) != 0) spark_poll_error(st, "cannot start a call to %s", url);
}

static void on_timer(muster_task *task, muster_timer *timer, void *user) {
  (void)task;
  (void)timer;
  spark_task *st = user;
  st->timer = NULL; /* one-shot: released by the host */
  if (st->finished || st->call != NULL || st->op_proc != NULL) return;
  if (st->stage == ST_KILLING) {
    if (spark_now_ms() >= st->kill_deadline_ms) {
      spark_unconfirmed(st);
      return;
    }
    /* YARN: repeat the PUT until 200 KILLED; standalone: poll the status after the kill */
    if (st->h.app_id[0] == '\0') spark_start_lookup_call(st);
    else if (spark_is_yarn(st) || !st->kill_sent) spark_start_kill_call(st);
    else spark_start_status_call(st);
    return;
  }
  if (st->stage == ST_PREPARING) {
    spark_start_lookup_call(st);
    return;
  }
  spark_start_status_call(st);
}

void spark_track_next(spark_task *st, uint64_t delay_ms) {
  if (st->finished) return;
  if (st->timer != NULL) st->host->timer_stop(st->task, st->timer);
  st->timer = NULL;
  if (st->host->timer_start(st->task, delay_ms, 0, on_timer, st, &st->timer) != 0)
    spark_end(st, MUSTER_STATE_FAILED, "spark: cannot start a timer");
}
