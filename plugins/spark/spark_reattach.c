/* Re-attach, never resubmit: an earlier attempt's handle (the agent's disk or the control
 * plane's params) is tracked again; an attempt that died mid-submission is looked up by tag (YARN
 * applicationTags, Livy batch names, Kubernetes driver pods by label) before anything is submitted
 * again, and the task fails when that cannot be told. */
#include "spark_reattach.h"

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
#include "spark_kill.h"
#include "spark_submit.h"

/* An earlier attempt's live application (or this attempt's own), found by tag: tracked. */
static void reattach_found(spark_task *st, const char *id, const char *state) {
  if (st->lookup_then_fail)
    spark_say(st, "spark: spark-submit failed after submitting %s (found by tag %s); tracking it", id, st->h.tag);
  else spark_say(st, "spark: re-attaching to %s (state %s, tag %s) instead of submitting again", id, state, st->h.tag);
  snprintf(st->h.app_id, sizeof st->h.app_id, "%s", id);
  st->reattached = true;
  spark_set_param(st, "app_id", st->h.app_id);
  spark_save_handle(st, MU_SPARK_H_SUBMITTED);
  spark_begin_tracking(st);
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
      spark_track_next(st, (uint64_t)st->spec->poll_ms);
      return;
    }
    spark_end(st, MUSTER_STATE_FAILED,
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
  spark_submit(st);
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
      spark_poll_error(st, "%s", what);
      return;
    }
    if ((r->status >= 500 || r->status == 200) && ++st->poll_errors < st->spec->max_poll_errors) {
      st->host->log(st->task, MUSTER_LOG_WARN, "looking up tag %s: %s (%u/%u)", st->h.tag, what, st->poll_errors,
                    st->spec->max_poll_errors);
      spark_track_next(st, (uint64_t)st->spec->poll_ms);
      return;
    }
    spark_end(st, MUSTER_STATE_FAILED,
              "spark: cannot tell whether an earlier attempt's driver pod still runs (%s); not submitting another",
              what);
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
      spark_end_app(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
                    "spark: %s; Kubernetes runs no driver pod labelled muster-task=%s",
                    st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled", st->h.tag);
      return;
    }
    snprintf(st->h.app_id, sizeof st->h.app_id, "%s:%s", pick->namespace_, pick->name);
    spark_save_handle(st, MU_SPARK_H_SUBMITTED);
    spark_begin_kill(st);
    return;
  }
  if (pick != NULL) {
    char id[400];
    snprintf(id, sizeof id, "%s:%s", pick->namespace_, pick->name);
    reattach_found(st, id, pick->phase[0] ? pick->phase : "Pending");
    return;
  }
  if (st->lookup_then_fail) { /* Kubernetes confirms no driver pod of this task runs */
    spark_end_app(st, MUSTER_STATE_FAILED, "%s", st->fail_message);
    return;
  }
  spark_submit(st);
}

void spark_handle_lookup_reply(spark_task *st, const mu_spark_reply *r) {
  if (spark_is_livy(st)) {
    handle_livy_lookup_reply(st, r);
    return;
  }
  if (spark_is_k8s(st)) {
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
    spark_track_next(st, (uint64_t)st->spec->poll_ms);
    return;
  }
  if (st->stage == ST_KILLING) { /* a cancel before spark-submit printed the id */
    if (n < 0) {
      mu_spark_error_text(r->body, r->len, text, sizeof text);
      spark_poll_error(st, "GET %s/ws/v1/cluster/apps?applicationTags=%s: %s%s", spark_rm_base(st), st->h.tag,
                       r->status == 200 ? "" : "HTTP ", r->status == 200 ? why : text);
      return;
    }
    for (int i = 0; i < n; i++)
      if (!mu_spark_phase_final(mu_spark_yarn_phase(apps[i].state, apps[i].final_status))) {
        snprintf(st->h.app_id, sizeof st->h.app_id, "%s", apps[i].id);
        spark_save_handle(st, MU_SPARK_H_SUBMITTED);
        spark_begin_kill(st);
        return;
      }
    spark_end_app(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
                  "spark: %s; the ResourceManager runs no application tagged %s",
                  st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled", st->h.tag);
    return;
  }
  if (n < 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    spark_end(st, MUSTER_STATE_FAILED,
              "spark: cannot tell whether an earlier attempt's application still runs (GET "
              "%s/ws/v1/cluster/apps?applicationTags=%s: %s%s); not submitting another",
              spark_rm_base(st), st->h.tag, r->status == 200 ? "" : "HTTP ", r->status == 200 ? why : text);
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
    spark_end_app(st, MUSTER_STATE_FAILED, "%s", st->fail_message);
    return;
  }
  spark_submit(st);
}

void spark_start_lookup_call(spark_task *st) {
  char url[2048];
  if (spark_is_k8s(st)) {
    char label[MU_SPARK_K8S_LABEL_MAX + 1];
    mu_spark_k8s_label_value(st->h.tag, label);
    if (mu_spark_k8s_pods_url(st->spec->k8s_api_url, st->spec->namespace_, "muster-task", label, url, sizeof url) !=
        0) {
      spark_end(st, MUSTER_STATE_FAILED, "spark: the Kubernetes API URL is too long");
      return;
    }
  } else if (spark_is_livy(st)) snprintf(url, sizeof url, "%s/batches?from=0&size=1000", st->spec->livy_url);
  else snprintf(url, sizeof url, "%s/ws/v1/cluster/apps?applicationTags=%s", spark_rm_base(st), st->h.tag);
  if (spark_call(st, CALL_LOOKUP, "GET", url, NULL) != 0)
    spark_end(st, MUSTER_STATE_FAILED, "spark: out of memory looking up %s", st->h.tag);
}

/* An earlier attempt's handle: re-attach when it names an application the cluster can be
 * asked about; look it up by tag when the earlier attempt died mid-submission (YARN). Returns
 * true when the task is under way (re-attached, looking up, or ended), false to submit. */
bool spark_resume_earlier(spark_task *st, const mu_spark_handle *old, unsigned attempt) {
  if (strcmp(old->kind, st->h.kind) != 0) return false; /* the spec changed master: a new application */
  if (old->phase == MU_SPARK_H_DONE) {
    if (old->attempt == attempt) { /* this very attempt ended already (a re-sent assignment) */
      spark_end(st, MUSTER_STATE_FAILED,
                "spark: attempt %u already ran %s to its end on this agent; not submitting it again", attempt,
                old->app_id[0] ? old->app_id : "its application");
      return true;
    }
    return false;
  }
  if (old->app_id[0] != '\0') {
    st->h.attempt = old->attempt;
    snprintf(st->h.app_id, sizeof st->h.app_id, "%s", old->app_id);
    snprintf(st->h.tag, sizeof st->h.tag, "%s", old->tag[0] ? old->tag : st->task_tag);
    if (spark_trackable(st)) {
      st->reattached = true;
      spark_say(st, "spark: re-attaching to %s, submitted by attempt %u (not submitting again)", old->app_id,
                old->attempt);
      spark_set_param(st, "app_id", st->h.app_id);
      spark_save_handle(st, MU_SPARK_H_SUBMITTED);
      spark_begin_tracking(st);
      return true;
    }
    st->h.app_id[0] = '\0';
    snprintf(st->h.tag, sizeof st->h.tag, "%s", st->task_tag);
    if (strcmp(old->kind, "local") == 0 || !st->spec->cluster) {
      spark_say(st, "spark: attempt %u's driver (%s) ran under the agent's previous process; submitting again",
                old->attempt, old->app_id);
      return false;
    }
    spark_end(st, MUSTER_STATE_FAILED,
              "spark: attempt %u submitted %s, which this agent cannot track (no %s); not submitting a duplicate",
              old->attempt, old->app_id, spark_is_yarn(st) ? "yarn_rm_urls" : "rest_url");
    return true;
  }
  /* submitting, no id: did the submission reach the cluster? */
  if (spark_searchable(st)) {
    if (old->tag[0] != '\0') snprintf(st->h.tag, sizeof st->h.tag, "%s", old->tag); /* its placement's tag */
    spark_say(st, "spark: attempt %u ended while submitting; looking for its application by tag %s", old->attempt,
              st->h.tag);
    st->stage = ST_PREPARING;
    spark_start_lookup_call(st);
    return true;
  }
  if (strcmp(old->kind, "local") == 0 || !st->spec->cluster) return false;
  spark_end(
      st, MUSTER_STATE_FAILED,
      "spark: attempt %u ended while submitting to %s and its fate cannot be determined (no application id, no search "
      "by tag%s); failing rather than risking a duplicate application",
      old->attempt, st->spec->master,
      spark_is_standalone(st) ? ": a standalone master lists its drivers without their application name or tags"
      : spark_is_k8s(st)      ? ": no k8s_api_url to find the driver pod by its label"
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
int spark_cp_handle(const muster_task_context *ctx, mu_spark_handle *ret) {
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
