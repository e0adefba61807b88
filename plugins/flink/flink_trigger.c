/* `muster flink savepoint`: a savepoint of the running job without stopping it (TaskAction
 * "savepoint"): POST /jobs/{id}/savepoints {"target-directory", "cancel-job": false} at the next
 * poll, then the trigger polled like a stop's; COMPLETED → the output params savepoint_kind
 * (trigger) and savepoint_path, which the control plane records in the savepoint catalogue. A
 * failed or timed-out trigger is an event line; the job and the task run on either way. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flink_task.h"

int flink_action(muster_task *task, const muster_host_api *host, const char *action, char *errbuf) {
  flink_task *ft = host->user_data(task);
  if (ft == NULL || ft->finished) return snprintf(errbuf, MUSTER_ERRBUF_SIZE, "the task has ended"), -1;
  if (strcmp(action, "savepoint") != 0)
    return snprintf(errbuf, MUSTER_ERRBUF_SIZE, "unknown action \"%s\" (flink takes: savepoint)", action), -1;
  if (ft->spec->kind != MU_FLINK_STREAMING)
    return snprintf(errbuf, MUSTER_ERRBUF_SIZE, "job %s is a batch job: no savepoints", ft->job_id), -1;
  if (ft->job_id[0] == '\0' || ft->cancelling || ft->upgrading || ft->last_state != MU_FLINK_JOB_RUNNING)
    return snprintf(errbuf, MUSTER_ERRBUF_SIZE, "job %s is not RUNNING and tracked (%s%s)",
                    ft->job_id[0] ? ft->job_id : "(not submitted yet)", mu_flink_job_state_name(ft->last_state),
                    ft->cancelling  ? ", being stopped"
                    : ft->upgrading ? ", being upgraded"
                                    : ""),
           -1;
  if (ft->trigger_wanted || ft->ph == PH_TRIGGER || ft->ph == PH_TRIGGER_POLL)
    return snprintf(errbuf, MUSTER_ERRBUF_SIZE, "a savepoint of job %s is already under way", ft->job_id), -1;
  ft->trigger_wanted = true;
  flink_say(ft, MUSTER_STDOUT, "flink: savepoint of job %s asked; triggering at the next poll", ft->job_id);
  if (ft->ph == PH_TRACK && ft->timer != NULL) flink_later(ft, 0); /* not while a poll is in flight */
  return 0;
}

void flink_start_trigger(flink_task *ft) {
  ft->trigger_wanted = false;
  json_t *b = json_object();
  if (ft->spec->savepoint_dir != NULL) json_object_set_new(b, "target-directory", json_string(ft->spec->savepoint_dir));
  json_object_set_new(b, "cancel-job", json_false());
  char *text = json_dumps(b, JSON_COMPACT);
  json_decref(b);
  flink_call_job(ft, PH_TRIGGER, "POST", "/savepoints", text ? text : "{}");
  free(text);
}

static void trigger_done(flink_task *ft, const char *why) {
  if (why != NULL)
    flink_say(ft, MUSTER_STDERR, "flink: event: the savepoint of job %s failed: %s; the job is still RUNNING",
              ft->job_id, why);
  ft->trigger[0] = '\0';
  ft->ph = PH_TRACK;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}

void flink_on_trigger(flink_task *ft, const mu_flink_reply *r) {
  char why[MU_FLINK_TEXT_MAX + 64];
  if (!flink_trigger_reply(ft, r, "trigger", why, sizeof why)) {
    trigger_done(ft, why);
    return;
  }
  flink_say(ft, MUSTER_STDOUT, "flink: Triggering savepoint for job %s (trigger %s)", ft->job_id, ft->trigger);
  ft->ph = PH_TRIGGER_POLL;
  flink_later(ft, (uint64_t)ft->spec->poll_ms);
}

void flink_on_trigger_poll(flink_task *ft, const mu_flink_reply *r) {
  char why[MU_FLINK_TEXT_MAX + 64], location[MU_FLINK_TEXT_MAX];
  switch (flink_savepoint_reply(ft, r, location, sizeof location, why, sizeof why)) {
    case FLINK_SP_AGAIN: flink_later(ft, (uint64_t)ft->spec->poll_ms); return;
    case FLINK_SP_FAILED: trigger_done(ft, why); return;
    case FLINK_SP_DONE: break;
  }
  ft->host->set_param(ft->task, "savepoint_kind", "trigger");
  ft->host->set_param(ft->task, "savepoint_path", location);
  flink_say(ft, MUSTER_STDOUT, "Savepoint completed. Path: %s", location);
  trigger_done(ft, NULL);
}
