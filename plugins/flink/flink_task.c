/* The Flink task's plumbing: output lines, the one end of a task, REST calls against the
 * JobManager (or the YARN RM) with their retry budget for an unreachable cluster, one-shot
 * timers, and the dispatch of each reply and timer to the handler of the task's phase. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flink_task.h"

void flink_say(flink_task *ft, muster_stream stream, const char *fmt, ...) {
  char line[1600];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ft->host->emit_output(ft->task, stream, line, (size_t)n);
}

void flink_stop_timer(flink_task *ft) {
  if (ft->timer != NULL) ft->host->timer_stop(ft->task, ft->timer);
  ft->timer = NULL;
}

static void end_now(flink_task *ft, muster_state state, char *msg, size_t msg_size);

void flink_end(flink_task *ft, muster_state state, const char *fmt, ...) {
  if (ft->finished || ft->ph == PH_SHUTDOWN) return;
  char msg[1400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!ft->shutdown_sent && ft->base[0] != '\0' && ft->job_id[0] != '\0' && mu_flink_keeps_cluster(ft->spec) &&
      mu_flink_job_state_terminal(ft->last_state) && !ft->upgrading) {
    /* a kept Kubernetes application cluster has told us how the job ended: now shut it down */
    ft->shutdown_sent = true;
    ft->end_state = state;
    snprintf(ft->end_msg, sizeof ft->end_msg, "%s", msg);
    flink_stop_timer(ft);
    mu_flink_rest_abort(&ft->rest);
    flink_call(ft, PH_SHUTDOWN, "DELETE", "/cluster", NULL, NULL);
    return;
  }
  end_now(ft, state, msg, sizeof msg);
}

static void on_shutdown(flink_task *ft, const mu_flink_reply *r) {
  if (r->curl == CURLE_OK && r->status < 300)
    flink_say(ft, MUSTER_STDOUT, "flink: application cluster at %s shut down (DELETE /cluster) after job %s ended",
              ft->base, ft->job_id);
  else
    flink_say(ft, MUSTER_STDERR,
              "flink: event: shutting down the application cluster at %s failed (%s); delete it "
              "yourself",
              ft->base, r->curl != CURLE_OK ? r->error : "unexpected HTTP status");
  ft->ph = PH_TRACK;
  end_now(ft, ft->end_state, ft->end_msg, sizeof ft->end_msg);
}

static void end_now(flink_task *ft, muster_state state, char *msg, size_t msg_size) {
  if (ft->finished) return;
  ft->finished = true;
  flink_stop_timer(ft);
  mu_flink_rest_abort(&ft->rest);
  if (state == MUSTER_STATE_FAILED && ft->upgraded && ft->restore_path[0] != '\0') {
    /* first, so that it survives the message's truncation: the old state is not lost */
    char note[1500];
    snprintf(note, sizeof note,
             "flink: upgrade: the new version did not restore; the old version is stopped and its %s "
             "stays recorded (%s, muster savepoints): %s",
             ft->spec->upgrade == MU_FLINK_UPGRADE_SAVEPOINT ? "savepoint" : "checkpoint",
             ft->spec->upgrade == MU_FLINK_UPGRADE_SAVEPOINT ? "upgrade_savepoint_path" : "upgrade_checkpoint_path",
             msg);
    snprintf(msg, msg_size, "%s", note);
  }
  muster_result r = {state, state == MUSTER_STATE_SUCCEEDED ? 0 : -1, 0, msg};
  ft->host->log(ft->task,
                state == MUSTER_STATE_FAILED || state == MUSTER_STATE_TIMED_OUT ? MUSTER_LOG_WARN : MUSTER_LOG_INFO,
                "%s", msg);
  ft->host->finish(ft->task, &r);
}

/* ---- calls ---- */

static void on_reply(void *arg, const mu_flink_reply *reply);
static void on_timer(muster_task *task, muster_timer *timer, void *user);

static void call_url(flink_task *ft, phase ph, const char *method, const char *url, const char *json_body,
                     const char *upload) {
  ft->ph = ph;
  if (mu_flink_rest_start(&ft->rest, ft->multi, method, url, json_body, upload, upload ? ft->upload_name : NULL,
                          on_reply, ft) != 0)
    flink_end(ft, MUSTER_STATE_FAILED, "flink: cannot start a REST call to %s (out of memory)", url);
}

void flink_call(flink_task *ft, phase ph, const char *method, const char *path, const char *json_body,
                const char *upload) {
  char url[1600];
  snprintf(url, sizeof url, "%s%s", ft->base, path);
  call_url(ft, ph, method, url, json_body, upload);
}

/* Asks the YARN RM about the application (when there is one and an RM to ask). */
bool flink_ask_rm(flink_task *ft, phase ph, phase then) {
  if (ft->app_id[0] == '\0' || ft->spec->yarn_rm_url == NULL) return false;
  char url[1600];
  snprintf(url, sizeof url, "%s/ws/v1/cluster/apps/%s", ft->spec->yarn_rm_url, ft->app_id);
  ft->rm_return = then;
  call_url(ft, ph, "GET", url, NULL, NULL);
  return true;
}

void flink_call_job(flink_task *ft, phase ph, const char *method, const char *suffix, const char *json_body) {
  char path[700];
  snprintf(path, sizeof path, "/jobs/%s%s", ft->job_id, suffix);
  flink_call(ft, ph, method, path, json_body, NULL);
}

/* Runs the next step of the current phase after ms (the poll interval, or a retry delay). */
void flink_later(flink_task *ft, uint64_t ms) {
  flink_stop_timer(ft);
  if (ft->host->timer_start(ft->task, ms, 0, on_timer, ft, &ft->timer) != 0)
    flink_end(ft, MUSTER_STATE_FAILED, "flink: cannot start a timer");
}

/* A reply that is no reply (connection refused, 5xx without a Flink error body): true when the
 * JobManager is to be tried again, false once unreachable_timeout has passed. */
bool flink_unreachable(flink_task *ft, const mu_flink_reply *r, char *why, size_t size) {
  if (r->curl != CURLE_OK) snprintf(why, size, "%s", r->error);
  else snprintf(why, size, "HTTP %ld", r->status);
  uint64_t t = now_ms();
  if (ft->unreachable_since_ms == 0) ft->unreachable_since_ms = t;
  if (!ft->unreachable_noted) {
    flink_say(ft, MUSTER_STDERR, "flink: JobManager %s unreachable (%s); retrying for up to %llds", ft->base, why,
              (long long)(ft->spec->unreachable_ms / 1000));
    ft->unreachable_noted = true;
  }
  return t - ft->unreachable_since_ms < (uint64_t)ft->spec->unreachable_ms;
}

bool flink_no_reply(const mu_flink_reply *r, char *flink_err, size_t size) {
  if (r->curl != CURLE_OK) return true;
  bool has_errors = mu_flink_json_errors(r->body, r->len, flink_err, size);
  return r->status >= 500 && !has_errors;
}

void flink_reachable(flink_task *ft) {
  if (ft->unreachable_since_ms != 0 && ft->unreachable_noted)
    flink_say(ft, MUSTER_STDERR, "flink: JobManager %s reachable again", ft->base);
  ft->unreachable_since_ms = 0;
  ft->unreachable_noted = false;
}

/* ---- dispatch ---- */

static void on_reply(void *arg, const mu_flink_reply *r) {
  flink_task *ft = arg;
  if (ft->finished) return;
  switch (ft->ph) {
    case PH_LOOKUP: flink_on_lookup(ft, r); break;
    case PH_JARS: flink_on_jars(ft, r); break;
    case PH_UPLOAD: flink_on_upload(ft, r); break;
    case PH_RUN: flink_on_run(ft, r); break;
    case PH_TRACK: flink_on_track(ft, r, false); break;
    case PH_WAIT_END: flink_on_track(ft, r, true); break;
    case PH_EXCEPTIONS: flink_on_exceptions(ft, r); break;
    case PH_CHECKPOINTS: flink_on_checkpoints(ft, r); break;
    case PH_CANCEL: flink_on_cancel_reply(ft, r); break;
    case PH_STOP: flink_on_stop(ft, r); break;
    case PH_SAVEPOINT: flink_on_savepoint(ft, r); break;
    case PH_RM: flink_on_rm(ft, r, false); break;
    case PH_RM_START: flink_on_rm(ft, r, true); break;
    case PH_UPG_LOOK: flink_on_upgrade_look(ft, r); break;
    case PH_UPG_CKPT: flink_on_upgrade_checkpoints(ft, r); break;
    case PH_TRIGGER: flink_on_trigger(ft, r); break;
    case PH_TRIGGER_POLL: flink_on_trigger_poll(ft, r); break;
    case PH_SHUTDOWN: on_shutdown(ft, r); break;
    case PH_DIGEST:
    case PH_CLI: break;
  }
}

static void on_timer(muster_task *task, muster_timer *timer, void *user) {
  (void)task;
  (void)timer;
  flink_task *ft = user;
  ft->timer = NULL; /* one-shot: released by the host */
  if (ft->finished) return;
  char path[200];
  switch (ft->ph) {
    case PH_LOOKUP: flink_lookup_next(ft); break;
    case PH_JARS: flink_submit(ft); break;
    case PH_TRACK:
      if (ft->trigger_wanted) flink_start_trigger(ft);
      else flink_call_job(ft, PH_TRACK, "GET", "", NULL);
      break;
    case PH_TRIGGER_POLL:
      snprintf(path, sizeof path, "/savepoints/%s", ft->trigger);
      flink_call_job(ft, PH_TRIGGER_POLL, "GET", path, NULL);
      break;
    case PH_WAIT_END: flink_call_job(ft, PH_WAIT_END, "GET", "", NULL); break;
    case PH_CANCEL: flink_call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL); break;
    case PH_SAVEPOINT:
      snprintf(path, sizeof path, "/savepoints/%s", ft->trigger);
      flink_call_job(ft, PH_SAVEPOINT, "GET", path, NULL);
      break;
    default: break;
  }
}
