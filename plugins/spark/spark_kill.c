/* The verified kill: cancel and timeout kill the application through its cluster manager (YARN
 * PUT state KILLED until 200, standalone kill then status, Livy DELETE until gone, Kubernetes
 * spark-submit --kill) and wait for it to confirm, or end "kill unconfirmed". */
#include "spark_kill.h"

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
#include "spark_track.h"
#include "spark_k8s_op.h"
#include "spark_reattach.h"

/* PUT …/state {"state":"KILLED"}: 202 (accepted) or 200 KILLED; standalone: kill/<id>. */
void spark_handle_kill_reply(spark_task *st, const mu_spark_reply *r) {
  char text[300], state[32];
  if (spark_is_yarn(st)) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if (r->status == 200 && mu_spark_yarn_state_parse(r->body, r->len, state) == 0 && strcmp(state, "KILLED") == 0) {
      st->poll_errors = 0;
      snprintf(st->app_state, sizeof st->app_state, "KILLED");
      spark_on_app_state(st, MU_SPARK_APP_KILLED, "KILLED", NULL, NULL);
      return;
    }
    if (r->status == 200 && mu_spark_yarn_state_parse(r->body, r->len, state) == 0 &&
        (strcmp(state, "FINISHED") == 0 || strcmp(state, "FAILED") == 0)) {
      st->kill_sent = true; /* it had ended before the kill: ask how */
      spark_start_status_call(st);
      return;
    }
    if (r->status == 202 || r->status == 200) {
      st->poll_errors = 0;
      if (mu_spark_yarn_state_parse(r->body, r->len, state) == 0 && state[0] != '\0')
        snprintf(st->app_state, sizeof st->app_state, "%s", state);
      st->kill_sent = true;
      spark_track_next(st, spark_kill_retry(st)); /* repeat the PUT until 200 KILLED */
      return;
    }
    if (r->status == 400 || r->status == 404 || r->status == 409) {
      /* a final application cannot be killed: ask how it ended */
      st->kill_sent = true;
      spark_say(st, "spark: kill %s: HTTP %ld: %s", st->h.app_id, r->status, text);
      spark_start_status_call(st);
      return;
    }
    spark_poll_error(st, "PUT %s/ws/v1/cluster/apps/%s/state: HTTP %ld: %s", spark_rm_base(st), st->h.app_id, r->status,
                     text);
    return;
  }
  if (spark_is_livy(st)) { /* DELETE /batches/{id}: 200 {"msg":"deleted"}; then the state must say so */
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if (r->status == 200 || r->status == 404) {
      st->kill_sent = true;
      st->poll_errors = 0;
      if (r->status == 404) spark_say(st, "spark: kill batch %s: HTTP 404: %s", st->h.app_id, text);
      spark_start_status_call(st);
      return;
    }
    spark_poll_error(st, "DELETE %s/batches/%s: HTTP %ld: %s", st->spec->livy_url, st->h.app_id, r->status, text);
    return;
  }
  mu_spark_rest_reply rep;
  char why[MU_SPARK_TEXT_MAX];
  if (r->status != 200 || mu_spark_rest_parse(r->body, r->len, &rep, why) != 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    spark_poll_error(st, "POST %s/v1/submissions/kill/%s: HTTP %ld: %s", st->spec->rest_url, st->h.app_id, r->status,
                     text);
    return;
  }
  st->kill_sent = true;
  if (!rep.success) spark_say(st, "spark: kill %s: %s", st->h.app_id, rep.message);
  spark_start_status_call(st); /* the kill is asynchronous: poll until the driver is KILLED (or ended) */
}

/* Cancel or timeout: kill the application through the cluster manager and wait for it to say
 * so; without an id yet (YARN), find it by the task's tag first. */
void spark_begin_kill(spark_task *st) {
  st->stage = ST_KILLING;
  st->kill_deadline_ms = spark_now_ms() + (uint64_t)st->spec->kill_ms;
  st->poll_errors = 0;
  st->last_error[0] = '\0';
  if (st->h.app_id[0] == '\0') {
    spark_say(st, "spark: looking for this task's application by tag %s to kill it", st->h.tag);
    spark_start_lookup_call(st);
    return;
  }
  spark_say(st, "spark: killing %s through the %s", st->h.app_id,
            spark_is_yarn(st)   ? "ResourceManager"
            : spark_is_livy(st) ? "Livy server"
            : spark_is_k8s(st)  ? "spark-submit --kill"
                                : "master's REST server");
  spark_start_kill_call(st);
}

void spark_start_kill_call(spark_task *st) {
  if (spark_is_k8s(st)) {
    spark_k8s_op(st, true);
    return;
  }
  char url[2048];
  if (spark_is_yarn(st)) {
    snprintf(url, sizeof url, "%s/ws/v1/cluster/apps/%s/state", spark_rm_base(st), st->h.app_id);
    if (spark_call(st, CALL_KILL, "PUT", url, "{\"state\":\"KILLED\"}") != 0)
      spark_poll_error(st, "cannot start a call to %s", url);
  } else if (spark_is_livy(st)) {
    snprintf(url, sizeof url, "%s/batches/%s", st->spec->livy_url, st->h.app_id);
    if (spark_call(st, CALL_KILL, "DELETE", url, NULL) != 0) spark_poll_error(st, "cannot start a call to %s", url);
  } else {
    snprintf(url, sizeof url, "%s/v1/submissions/kill/%s", st->spec->rest_url, st->h.app_id);
    if (spark_call(st, CALL_KILL, "POST", url, NULL) != 0) spark_poll_error(st, "cannot start a call to %s", url);
  }
}

void spark_unconfirmed(spark_task *st) {
  st->host->log(st->task, MUSTER_LOG_WARN, "kill unconfirmed: %s still %s (metric spark_kill_unconfirmed)",
                st->h.app_id, st->app_state[0] ? st->app_state : "in an unknown state");
  spark_set_param(st, "kill_unconfirmed", st->h.app_id);
  char who[400];
  if (st->h.app_id[0] != '\0') snprintf(who, sizeof who, "%s", st->h.app_id);
  else snprintf(who, sizeof who, "the application tagged %s", st->h.tag);
  spark_end(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
            "kill unconfirmed: %s still %s%s%s", who, st->app_state[0] ? st->app_state : "in an unknown state",
            st->last_error[0] ? "; last error: " : "", st->last_error);
}
