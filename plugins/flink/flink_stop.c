/* Stopping a Flink job as the spec asks: PATCH ?mode=cancel, or stop-with-savepoint (drain or
 * not) with the trigger polled to COMPLETED and the job to its end. A savepoint that fails or
 * times out changes nothing: the job and the task go on RUNNING. Upgrades reuse the same steps
 * on the running version: stateless, savepoint, last-state (latest checkpoint, bounded age). */
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

/* ---- cancel ---- */

/* The savepoint did not happen: the job runs on, and so does the task (StreamPark reports such
 * a job FAILED and starts a second copy; this never does). */
static void savepoint_failed(flink_task *ft, const char *why) {
  if (ft->upgrading) { /* nothing changed: the old version runs on, the new one never started */
    flink_end(ft, MUSTER_STATE_FAILED,
              "flink: upgrade: the savepoint of job %s failed: %s; the old version is still "
              "RUNNING and the new one was not started",
              ft->job_id, why);
    return;
  }
  flink_say(ft, MUSTER_STDERR, "flink: event: the savepoint of job %s failed: %s; the job is still RUNNING%s",
            ft->job_id, why,
            ft->cancel_reason == MUSTER_CANCEL_TIMEOUT
                ? "; the task timed out, so the job is cancelled without a savepoint"
                : " and so is this task (cancel again to retry)");
  ft->trigger[0] = '\0';
  if (ft->cancel_reason == MUSTER_CANCEL_TIMEOUT) {
    ft->plain_fallback = true;
    flink_start_cancel_action(ft);
    return;
  }
  ft->cancelling = false;
  if (ft->host->size >= offsetof(muster_host_api, cancel_withdraw) + sizeof(void *) &&
      ft->host->cancel_withdraw != NULL)
    ft->host->cancel_withdraw(ft->task);
  ft->ph = PH_TRACK;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}

bool flink_trigger_reply(flink_task *ft, const mu_flink_reply *r, const char *what, char *why, size_t size) {
  char ferr[MU_FLINK_TEXT_MAX] = "", err[256];
  if (r->curl == CURLE_OK && (r->status == 200 || r->status == 202) &&
      mu_flink_json_trigger(r->body, r->len, ft->trigger, sizeof ft->trigger, err, sizeof err) == 0) {
    ft->savepoint_deadline_ms = now_ms() + (uint64_t)ft->spec->savepoint_timeout_ms;
    return true;
  }
  if (r->curl == CURLE_OK) mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
  snprintf(why, size, "%s refused (%s)", what,
           r->curl != CURLE_OK ? r->error
           : ferr[0]           ? ferr
                               : "no trigger id in the reply");
  return false;
}

flink_sp_result flink_savepoint_reply(flink_task *ft, const mu_flink_reply *r, char *location, size_t location_size,
                                      char *why, size_t size) {
  char ferr[MU_FLINK_TEXT_MAX] = "", err[256];
  mu_flink_savepoint_info sp;
  bool timed_out = now_ms() >= ft->savepoint_deadline_ms;
  if (r->curl != CURLE_OK || r->status >= 500) {
    if (!timed_out) return FLINK_SP_AGAIN;
    snprintf(why, size, "timed out (the JobManager did not answer)");
    return FLINK_SP_FAILED;
  }
  if (r->status != 200 || mu_flink_json_savepoint(r->body, r->len, &sp, err, sizeof err) != 0) {
    mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    snprintf(why, size, "%s", ferr[0] ? ferr : err);
    return FLINK_SP_FAILED;
  }
  if (sp.status == MU_FLINK_OP_FAILED) {
    snprintf(why, size, "%s", sp.failure);
    return FLINK_SP_FAILED;
  }
  if (sp.status == MU_FLINK_OP_IN_PROGRESS) {
    if (!timed_out) return FLINK_SP_AGAIN;
    snprintf(why, size, "still IN_PROGRESS after savepoint_timeout (%llds)",
             (long long)(ft->spec->savepoint_timeout_ms / 1000));
    return FLINK_SP_FAILED;
  }
  snprintf(location, location_size, "%s", sp.location);
  return FLINK_SP_DONE;
}

void flink_on_stop(flink_task *ft, const mu_flink_reply *r) {
  char why[MU_FLINK_TEXT_MAX + 64];
  if (!flink_trigger_reply(ft, r, "stop", why, sizeof why)) {
    savepoint_failed(ft, why);
    return;
  }
  flink_say(ft, MUSTER_STDOUT, "flink: Suspending job \"%s\" with a savepoint (trigger %s)", ft->job_id, ft->trigger);
  ft->ph = PH_SAVEPOINT;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}

void flink_on_savepoint(flink_task *ft, const mu_flink_reply *r) {
  char why[MU_FLINK_TEXT_MAX + 64];
  switch (flink_savepoint_reply(ft, r, ft->savepoint_location, sizeof ft->savepoint_location, why, sizeof why)) {
    case FLINK_SP_AGAIN: flink_later(ft, (uint64_t)ft->spec->poll_ms); return;
    case FLINK_SP_FAILED: savepoint_failed(ft, why); return;
    case FLINK_SP_DONE: break;
  }
  if (!ft->upgrading) /* the savepoint catalogue's kind (upgrade_savepoint_path says its own) */
    ft->host->set_param(ft->task, "savepoint_kind", ft->spec->on_cancel == MU_FLINK_CANCEL_DRAIN ? "drain" : "stop");
  ft->host->set_param(ft->task, ft->upgrading ? "upgrade_savepoint_path" : "savepoint_path", ft->savepoint_location);
  flink_say(ft, MUSTER_STDOUT, "Savepoint completed. Path: %s", ft->savepoint_location);
  /* a completed savepoint does not mean the job has ended: wait for its terminal state */
  ft->ph = PH_WAIT_END;
  flink_later(ft, 0);
}

void flink_on_cancel_reply(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX] = "";
  if (r->curl == CURLE_OK && (r->status == 404 || r->status == 409) && ft->upgrading) {
    mu_flink_job_info gone = {.state = MU_FLINK_JOB_CANCELED};
    snprintf(gone.state_name, sizeof gone.state_name, "%s", r->status == 404 ? "gone" : "already ended");
    flink_upgrade_old_ended(ft, &gone);
    return;
  }
  if (r->curl == CURLE_OK && r->status == 404) {
    flink_end(ft, ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
              "flink: job %s is not on the cluster any more", ft->job_id);
    return;
  }
  if (r->curl != CURLE_OK || r->status >= 300) {
    if (r->curl == CURLE_OK) mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    flink_say(ft, MUSTER_STDERR, "flink: cancel of job %s not accepted (%s); retrying", ft->job_id,
              r->curl != CURLE_OK ? r->error
              : ferr[0]           ? ferr
                                  : "unexpected status");
    ft->ph = PH_CANCEL;
    flink_later(ft, (uint64_t)ft->spec->poll_ms);
    return;
  }
  flink_say(ft, MUSTER_STDOUT, "flink: Cancelling job %s.", ft->job_id);
  ft->ph = PH_WAIT_END;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}

static void start_cancel_action_for(flink_task *ft, bool savepoint);

void flink_start_cancel_action(flink_task *ft) {
  start_cancel_action_for(
      ft, ft->spec->on_cancel != MU_FLINK_CANCEL_PLAIN && !ft->plain_fallback && ft->spec->kind == MU_FLINK_STREAMING);
}

/* Stops the job with a savepoint, or cancels it. */
static void start_cancel_action_for(flink_task *ft, bool savepoint) {
  flink_stop_timer(ft);
  mu_flink_rest_abort(&ft->rest);
  if (savepoint) {
    json_t *b = json_object();
    json_object_set_new(b, "targetDirectory", json_string(ft->spec->savepoint_dir));
    json_object_set_new(b, "drain", json_boolean(ft->spec->on_cancel == MU_FLINK_CANCEL_DRAIN && !ft->upgrading));
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    flink_say(ft, MUSTER_STDOUT, "flink: stopping job %s with a savepoint into %s%s", ft->job_id,
              ft->spec->savepoint_dir, ft->spec->on_cancel == MU_FLINK_CANCEL_DRAIN ? " (drain)" : "");
    flink_call_job(ft, PH_STOP, "POST", "/stop", text ? text : "{}");
    free(text);
  } else {
    flink_call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL);
  }
}

/* ---- upgrade (like the flink-kubernetes-operator's upgradeMode) ---- */

void flink_start_upgrade(flink_task *ft) {
  char path[128];
  snprintf(path, sizeof path, "/jobs/%s", ft->spec->upgrade_from);
  flink_call(ft, PH_UPG_LOOK, "GET", path, NULL, NULL);
}

/* The old version is stopped, cancelled or gone: this one starts from what the upgrade kept. */
void flink_upgrade_old_ended(flink_task *ft, const mu_flink_job_info *info) {
  if (ft->spec->upgrade == MU_FLINK_UPGRADE_SAVEPOINT && ft->savepoint_location[0] == '\0') {
    flink_end(ft, MUSTER_STATE_FAILED,
              "flink: upgrade: job %s ended %s before its savepoint completed; nothing was started", ft->job_id,
              info->state_name);
    return;
  }
  if (ft->spec->upgrade == MU_FLINK_UPGRADE_SAVEPOINT)
    snprintf(ft->restore_path, sizeof ft->restore_path, "%s", ft->savepoint_location);
  flink_say(ft, MUSTER_STDOUT, "flink: upgrade: old job %s %s; starting the new version %s%s", ft->job_id,
            info->state_name, ft->restore_path[0] ? "from " : "with empty state", ft->restore_path);
  ft->upgrading = false;
  ft->upgraded = true;
  ft->job_id[0] = '\0';
  ft->savepoint_location[0] = '\0';
  ft->last_state = MU_FLINK_JOB_UNKNOWN;
  flink_submit(ft);
}

void flink_on_upgrade_look(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX] = "", err[256];
  mu_flink_job_info info;
  if (r->curl != CURLE_OK || r->status != 200 || mu_flink_json_job(r->body, r->len, &info, err, sizeof err) != 0) {
    if (r->curl == CURLE_OK) mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    flink_end(ft, MUSTER_STATE_FAILED, "flink.upgrade_from: job %s: %s", ft->spec->upgrade_from,
              r->curl != CURLE_OK ? r->error
              : r->status == 404  ? "not found on the cluster"
              : ferr[0]           ? ferr
                                  : err);
    return;
  }
  memcpy(ft->job_id, ft->spec->upgrade_from, sizeof ft->job_id);
  ft->upgrading = true;
  ft->host->set_param(ft->task, "upgraded_from", ft->job_id);
  bool running = !mu_flink_job_state_terminal(info.state);
  switch (ft->spec->upgrade) {
    case MU_FLINK_UPGRADE_STATELESS:
      flink_say(ft, MUSTER_STDOUT, "flink: upgrade (stateless): cancelling job %s (%s)", ft->job_id, info.state_name);
      if (!running) flink_upgrade_old_ended(ft, &info);
      else flink_call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL);
      return;
    case MU_FLINK_UPGRADE_SAVEPOINT:
      if (!running && flink_earlier_param(ft->host->context(ft->task), "upgrade_savepoint_path") != NULL) {
        /* an earlier attempt stopped it with a savepoint, then was lost: start from that */
        snprintf(ft->savepoint_location, sizeof ft->savepoint_location, "%s",
                 flink_earlier_param(ft->host->context(ft->task), "upgrade_savepoint_path"));
        flink_upgrade_old_ended(ft, &info);
        return;
      }
      if (info.state != MU_FLINK_JOB_RUNNING) {
        flink_end(ft, MUSTER_STATE_FAILED,
                  "flink: upgrade (savepoint): job %s is %s, not RUNNING, so it cannot take a "
                  "savepoint; use upgrade_mode last-state",
                  ft->job_id, info.state_name);
        return;
      }
      ft->plain_fallback = false;
      start_cancel_action_for(ft, true);
      return;
    case MU_FLINK_UPGRADE_LAST_STATE: flink_call_job(ft, PH_UPG_CKPT, "GET", "/checkpoints", NULL); return;
    case MU_FLINK_UPGRADE_NONE: break;
  }
}

void flink_on_upgrade_checkpoints(flink_task *ft, const mu_flink_reply *r) {
  mu_flink_checkpoint_info ck;
  char err[256];
  if (r->curl != CURLE_OK || r->status != 200 ||
      mu_flink_json_checkpoints(r->body, r->len, &ck, err, sizeof err) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: upgrade (last-state): cannot read the checkpoints of job %s: %s",
              ft->job_id, r->curl != CURLE_OK ? r->error : err);
    return;
  }
  if (ck.latest_path[0] == '\0') {
    flink_end(ft, MUSTER_STATE_FAILED,
              "flink: upgrade (last-state): job %s has no completed checkpoint; nothing was changed", ft->job_id);
    return;
  }
  int64_t age = ck.latest_timestamp_ms > 0 ? (int64_t)time(NULL) * 1000 - ck.latest_timestamp_ms : -1;
  if (age > ft->spec->max_checkpoint_age_ms && !ft->spec->force_upgrade) {
    flink_end(
        ft, MUSTER_STATE_FAILED,
        "flink: upgrade (last-state) refused: the latest checkpoint of job %s (%s) is %llds "
        "old, over max_checkpoint_age (%llds); set force_upgrade, or use upgrade_mode savepoint; nothing was changed",
        ft->job_id, ck.latest_path, (long long)(age / 1000), (long long)(ft->spec->max_checkpoint_age_ms / 1000));
    return;
  }
  snprintf(ft->restore_path, sizeof ft->restore_path, "%s", ck.latest_path);
  ft->host->set_param(ft->task, "upgrade_checkpoint_path", ck.latest_path);
  flink_say(ft, MUSTER_STDOUT,
            "flink: upgrade (last-state): job %s's latest checkpoint is %s (%llds old); cancelling it", ft->job_id,
            ck.latest_path, (long long)(age >= 0 ? age / 1000 : -1));
  flink_call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL);
}
