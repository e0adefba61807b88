/* Following a Flink job by JobID: its state mapped to the task's (batch and streaming), root
 * exceptions into the failure message, restarts counted into events, checkpoint statistics
 * into output params; a job that vanishes from an application cluster is asked of the RM. */
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

/* ---- tracking ---- */

static void progress(flink_task *ft, const mu_flink_job_info *info) {
  char msg[300];
  long long up = info->duration_ms >= 0 ? info->duration_ms / 1000 : -1;
  snprintf(msg, sizeof msg, "job %s %s%s%lld s, %u restarts", ft->job_id, info->state_name, up >= 0 ? ", up " : "", up,
           ft->restarts);
  if (up < 0) snprintf(msg, sizeof msg, "job %s %s, %u restarts", ft->job_id, info->state_name, ft->restarts);
  ft->host->report_progress(ft->task, ft->spec->kind == MU_FLINK_STREAMING ? 50 : 30, msg);
}

void flink_on_track(flink_task *ft, const mu_flink_reply *r, bool waiting_end) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  if (flink_no_reply(r, ferr, sizeof ferr) || (r->status == 404 && ft->app_id[0] != '\0')) {
    /* an application cluster goes away with its job: the RM knows how it ended */
    if (flink_ask_rm(ft, PH_RM, waiting_end ? PH_WAIT_END : PH_TRACK)) return;
    if (flink_unreachable(ft, r, why, sizeof why)) {
      flink_later(ft, (uint64_t)ft->spec->poll_ms);
    } else {
      flink_end(ft, MUSTER_STATE_FAILED, "flink: JobManager %s unreachable for %llds (%s); job %s may still run there",
                ft->base, (long long)(ft->spec->unreachable_ms / 1000), why, ft->job_id);
    }
    return;
  }
  flink_reachable(ft);
  if (r->status == 404) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: job %s is not known to the cluster any more (%s)", ft->job_id,
              ferr[0] ? ferr : "HTTP 404");
    return;
  }
  mu_flink_job_info info;
  if (r->status != 200 || mu_flink_json_job(r->body, r->len, &info, err, sizeof err) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: reading job %s: %s", ft->job_id, r->status != 200 ? ferr : err);
    return;
  }
  ft->polls++;
  if (info.state == MU_FLINK_JOB_RESTARTING && ft->last_state != MU_FLINK_JOB_RESTARTING) {
    ft->restarts++;
    if (ft->restarts % ft->spec->restart_event_threshold == 0)
      flink_say(ft, MUSTER_STDERR, "flink: event: job %s has restarted %u times", ft->job_id, ft->restarts);
  }
  if (info.state != ft->last_state) {
    flink_say(ft, MUSTER_STDOUT, "flink: job %s %s", ft->job_id, info.state_name);
    ft->host->set_param(ft->task, "state", info.state_name);
  }
  ft->last_state = info.state;
  if (ft->upgrading && mu_flink_job_state_terminal(info.state)) {
    flink_upgrade_old_ended(ft, &info);
    return;
  }
  bool cancelled_by_us = waiting_end || ft->cancelling;
  switch (info.state) {
    case MU_FLINK_JOB_FINISHED:
      if (cancelled_by_us && ft->savepoint_location[0] != '\0')
        flink_end(ft, ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
                  "flink: job %s stopped with a savepoint at %s", ft->job_id, ft->savepoint_location);
      else flink_end(ft, MUSTER_STATE_SUCCEEDED, "flink: job %s FINISHED", ft->job_id);
      return;
    case MU_FLINK_JOB_FAILED: flink_call_job(ft, PH_EXCEPTIONS, "GET", "/exceptions", NULL); return;
    case MU_FLINK_JOB_CANCELED:
      if (ft->savepoint_location[0] != '\0')
        flink_end(ft, MUSTER_STATE_CANCELLED, "flink: job %s stopped with a savepoint at %s", ft->job_id,
                  ft->savepoint_location);
      else
        flink_end(ft, MUSTER_STATE_CANCELLED, "flink: job %s CANCELED%s", ft->job_id,
                  cancelled_by_us ? "" : " on the cluster");
      return;
    default: break;
  }
  if (!cancelled_by_us && ft->spec->detached && info.state == MU_FLINK_JOB_RUNNING) {
    flink_end(ft, MUSTER_STATE_SUCCEEDED, "flink: job %s RUNNING (detached: the task ends here, the job goes on)",
              ft->job_id);
    return;
  }
  if (!cancelled_by_us) progress(ft, &info);
  if (!cancelled_by_us && ft->spec->kind == MU_FLINK_STREAMING && info.state == MU_FLINK_JOB_RUNNING &&
      ft->polls % FLINK_CHECKPOINT_EVERY == 1) {
    flink_call_job(ft, PH_CHECKPOINTS, "GET", "/checkpoints", NULL);
    return;
  }
  ft->ph = waiting_end ? PH_WAIT_END : PH_TRACK;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}

void flink_on_exceptions(flink_task *ft, const mu_flink_reply *r) {
  char root[MU_FLINK_TEXT_MAX] = "", err[256];
  if (r->curl != CURLE_OK || r->status != 200 ||
      mu_flink_json_exceptions(r->body, r->len, root, sizeof root, err, sizeof err) != 0)
    snprintf(root, sizeof root, "no exception reported");
  flink_end(ft, MUSTER_STATE_FAILED, "flink: job %s FAILED: %s", ft->job_id, root);
}

void flink_on_checkpoints(flink_task *ft, const mu_flink_reply *r) {
  mu_flink_checkpoint_info ck;
  char err[256];
  if (r->curl == CURLE_OK && r->status == 200 &&
      mu_flink_json_checkpoints(r->body, r->len, &ck, err, sizeof err) == 0) {
    char v[64];
    snprintf(v, sizeof v, "%lld", (long long)ck.completed);
    ft->host->set_param(ft->task, "checkpoints_completed", v);
    snprintf(v, sizeof v, "%lld", (long long)ck.failed);
    ft->host->set_param(ft->task, "checkpoints_failed", v);
    if (ck.latest_path[0] != '\0') ft->host->set_param(ft->task, "last_checkpoint_path", ck.latest_path);
    if (ck.latest_duration_ms >= 0) {
      snprintf(v, sizeof v, "%lld", (long long)ck.latest_duration_ms);
      ft->host->set_param(ft->task, "last_checkpoint_duration_ms", v);
    }
  }
  ft->ph = ft->cancelling ? PH_WAIT_END : PH_TRACK;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}
