/* The Spark task type's plugin callbacks (validate, start, cancel, cleanup) and descriptor. A task
 * submits one Spark application — spark-submit as a supervised process, the standalone master's
 * REST server, or a Livy batch (spark_submit.c) — and owns it: tagged with the task and attempt,
 * its id read only from this submission's own output or answer, its handle durable on the agent's
 * disk and in the control plane before the task reports RUNNING (spark_task.c); tracked through
 * the cluster manager (spark_track.c, spark_k8s_op.c), killed there and confirmed (spark_kill.c),
 * and re-attached instead of resubmitted (spark_reattach.c). Built as a plugin .so against
 * plugins/sdk/muster_plugin.h alone; configured through the agent's environment (MUSTER_SPARK_*,
 * docs/task-spark.md). */
#define _GNU_SOURCE /* asprintf */
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
#include "spark_reattach.h"
#include "spark_submit.h"

#define SPARK_DEFAULT_STATE_DIR "/var/lib/muster/spark"

/* The agent's configuration, read once at load. */
static struct {
  mu_spark_defaults def;
  const char *state_dir;
} g;

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
  if (st->spec->sql != NULL && spark_write_sql(st, ctx->task_dir) != 0) {
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
  if (spark_is_yarn(st)) {
    size_t n = 0;
    for (size_t i = 0; i < spark_n_rms(st) && n + 2 < sizeof st->h.cluster; i++)
      n += (size_t)snprintf(st->h.cluster + n, sizeof st->h.cluster - n, "%s%s", i ? "," : "",
                            st->spec->yarn_rm_urls.items[i]);
  } else if (spark_is_livy(st)) {
    snprintf(st->h.cluster, sizeof st->h.cluster, "%s", st->spec->livy_url);
  } else if (st->spec->rest_url != NULL) {
    snprintf(st->h.cluster, sizeof st->h.cluster, "%s", st->spec->rest_url);
  }
  spark_set_param(st, "tag", st->attempt_tag);
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
  if (spark_cp_handle(ctx, &cp) && (found <= 0 || cp.attempt > old.attempt)) {
    /* the control plane knows a later attempt than this agent's disk (it ran elsewhere, or the
     * disk was lost) */
    if (cp.kind[0] == '\0') snprintf(cp.kind, sizeof cp.kind, "%s", st->h.kind);
    if (cp.phase != MU_SPARK_H_DONE)
      spark_say(st, "spark: attempt %u's handle from the control plane: %s%s(tag %s)", cp.attempt, cp.app_id,
                cp.app_id[0] ? " " : "no application id ", cp.tag);
    old = cp;
    found = 1;
  }
  if (found > 0 && old.attempt <= ctx->attempt && spark_resume_earlier(st, &old, ctx->attempt)) return 0;
  if ((found == 0 || old.phase == MU_SPARK_H_DONE) && ctx->attempt > 1 && spark_searchable(st)) {
    /* an earlier attempt may have run on another agent: ask the RM by tag */
    st->stage = ST_PREPARING;
    spark_start_lookup_call(st);
    return 0;
  }
  spark_submit(st);
  return 0;
}

static void spark_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  spark_task *st = host->user_data(task);
  if (st == NULL || st->finished) return;
  st->cancelling = true;
  st->cancel_reason = reason;
  if (reason == MUSTER_CANCEL_SHUTDOWN) { /* the application keeps running; the next attempt re-attaches */
    spark_stop_work(st);
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
    spark_end(st, MUSTER_STATE_CANCELLED,
              "spark: the agent is stopping; %s%sleft running for the next attempt to re-attach", st->h.app_id,
              st->h.app_id[0] ? " " : "");
    return;
  }
  /* the verified kill takes up to kill_timeout: keep the agent from ending the task after its
   * short grace period meanwhile */
  if (host->size >= offsetof(muster_host_api, cancel_extend) + sizeof(void *) && host->cancel_extend != NULL)
    host->cancel_extend(task, (uint64_t)st->spec->kill_ms + SPARK_CALL_TIMEOUT_MS + 2000);
  if (st->call != NULL && st->call_kind == CALL_CREATE) return; /* killed once the master names the driver */
  spark_stop_work(st);
  if (st->h.app_id[0] != '\0' && spark_trackable(st)) {
    spark_begin_kill(st);
    return;
  }
  if (st->h.app_id[0] == '\0' && (spark_is_yarn(st) || spark_is_k8s(st)) && spark_searchable(st) && st->spec->cluster &&
      st->stage == ST_SUBMITTING) {
    /* spark-submit may have submitted before printing the id: find the application by tag */
    spark_begin_kill(st);
    return;
  }
  if (st->proc != NULL) return; /* the agent signalled spark-submit; its exit ends the task */
  if (st->h.app_id[0] != '\0')
    spark_say(st, "spark: %s cannot be killed from here (no tracking address); it may still run", st->h.app_id);
  spark_end(st, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, "spark: %s",
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
  spark_stop_work(st);
  if (st->pending_saves > 0) {
    st->cleaned = true; /* freed by the last write's callback */
    return;
  }
  spark_free_task(st);
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
