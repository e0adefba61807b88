/* The Flink task type. A task owns one Flink JobID: the spec's fixed job_id, or one derived
 * from the task run id and the attempt (flink_spec.h), so before anything is submitted the
 * JobIDs of this and earlier attempts are looked up on the cluster and a job still there is
 * re-attached instead of started twice. Session targets are driven over the JobManager's REST
 * API (flink_rest.c on the agent loop's curl multi); the other targets submit through the
 * `flink` CLI as a supervised process and are then tracked over REST. Cancel follows the
 * spec's on_cancel: PATCH ?mode=cancel, or stop-with-savepoint (drain or not) with the trigger
 * polled to its end; a savepoint that fails or times out leaves the job, and the task, RUNNING. */
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

/* ---- plugin callbacks ---- */

static int flink_validate(const char *spec_json, const char *config_json, char *errbuf) {
  mu_flink_spec *s = NULL;
  int rc = mu_flink_spec_parse(spec_json, config_json, &s, errbuf);
  mu_flink_spec_free(s);
  return rc;
}

/* The program from the bundle (or an absolute agent path); must exist, except a K8s
 * application's local:// path, which lives in the image. */
static int resolve_program(flink_task *ft, const char *task_dir, char *errbuf) {
  const char *name = ft->spec->program_file;
  const char *field = ft->spec->program == MU_FLINK_PROGRAM_JAR      ? "jar"
                      : ft->spec->program == MU_FLINK_PROGRAM_PYTHON ? "python"
                                                                     : "sql_script";
  size_t len = strlen(task_dir) + strlen(name) + 2;
  ft->program_path = malloc(len);
  if (ft->program_path == NULL) return -ENOMEM;
  if (name[0] == '/' || strncmp(name, "local://", 8) == 0) snprintf(ft->program_path, len, "%s", name);
  else snprintf(ft->program_path, len, "%s/%s", task_dir, name);
  if (strncmp(name, "local://", 8) == 0) return 0;
  struct stat sb;
  if (stat(ft->program_path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "flink.%s: \"%s\" not found%s", field, name,
             name[0] == '/' ? " on the agent" : " in the task's bundle");
    return -ENOENT;
  }
  const char *base = strrchr(name, '/');
  snprintf(ft->upload_name, sizeof ft->upload_name, "%s", base ? base + 1 : name);
  return 0;
}

static void add_candidate(flink_task *ft, const char *id) {
  if (id == NULL || !mu_flink_job_id_valid(id) || ft->n_candidates >= FLINK_MAX_LOOKBACK) return;
  for (size_t i = 0; i < ft->n_candidates; i++)
    if (strcmp(ft->candidates[i], id) == 0) return;
  memcpy(ft->candidates[ft->n_candidates++], id, MU_FLINK_JOB_ID_LEN + 1);
}

/* What an earlier attempt of this task recorded (its output param "<task>.<param>", e.g. job_id,
 * which the control plane hands a retry wherever it is placed), or NULL. */
const char *flink_earlier_param(const muster_task_context *ctx, const char *param) {
  json_error_t jerr;
  json_t *spec = json_loads(ctx->spec_json, 0, &jerr);
  const char *name = json_string_value(json_object_get(spec, "name"));
  const char *found = NULL;
  char key[300];
  if (name != NULL) {
    snprintf(key, sizeof key, "%s.%s", name, param);
    for (size_t i = 0; i < ctx->n_params && found == NULL; i++)
      if (strcmp(ctx->param_keys[i], key) == 0) found = ctx->param_values[i];
  }
  json_decref(spec);
  return found;
}

static int flink_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  flink_task *ft = calloc(1, sizeof *ft);
  if (ft == NULL) return -ENOMEM;
  ft->host = host;
  ft->task = task;
  host->set_user_data(task, ft); /* freed in cleanup, whatever happens next */
  if (host->size >= offsetof(muster_host_api, set_action_handler) + sizeof(void *) && host->set_action_handler != NULL)
    host->set_action_handler(task, flink_action); /* muster flink savepoint */
  const muster_task_context *ctx = host->context(task);
  int rc = mu_flink_spec_parse(ctx->spec_json, ctx->config_json, &ft->spec, errbuf);
  if (rc != 0) return rc;
  rc = resolve_program(ft, ctx->task_dir, errbuf);
  if (rc != 0) return rc;
  if (ft->spec->rest_url != NULL) snprintf(ft->base, sizeof ft->base, "%s", ft->spec->rest_url);
  if (mu_http_multi_acquire(host->loop(task), &ft->multi) != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "out of memory");
    return -ENOMEM;
  }
  /* the JobIDs this task may already own, newest first */
  if (ft->spec->job_id[0] != '\0') {
    memcpy(ft->own_id, ft->spec->job_id, sizeof ft->own_id);
    add_candidate(ft, ft->own_id);
  } else {
    mu_flink_job_id_derive(ctx->task_id, ctx->attempt, ft->own_id);
    add_candidate(ft, ft->own_id);
    add_candidate(ft, flink_earlier_param(ctx, "job_id"));
    for (uint32_t a = ctx->attempt - 1; a >= 1 && ft->n_candidates < FLINK_MAX_LOOKBACK; a--) {
      char id[MU_FLINK_JOB_ID_LEN + 1];
      mu_flink_job_id_derive(ctx->task_id, a, id);
      add_candidate(ft, id);
    }
  }
  const char *kept_jm = mu_flink_keeps_cluster(ft->spec) ? flink_earlier_param(ctx, "jobmanager_url") : NULL;
  if (ft->base[0] == '\0' && kept_jm != NULL && strlen(kept_jm) < sizeof ft->base) {
    /* a retry on Kubernetes: the earlier attempt's application cluster stays until we shut it
     * down, so it says whether its job still runs (or how it ended) before anything is submitted */
    snprintf(ft->base, sizeof ft->base, "%s", kept_jm);
    flink_lookup_next(ft);
    return 0;
  }
  if (ft->base[0] == '\0') { /* no REST yet: a CLI target submits, then tracks where the CLI says */
    const char *app = flink_earlier_param(ctx, "yarn_app_id");
    if (app != NULL && strlen(app) < sizeof ft->app_id && ft->spec->yarn_rm_url != NULL) {
      snprintf(ft->app_id, sizeof ft->app_id, "%s", app);
      if (flink_ask_rm(ft, PH_RM_START, PH_LOOKUP)) return 0;
    }
    flink_start_cli(ft);
    return 0;
  }
  flink_lookup_next(ft);
  return 0;
}

static void flink_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  flink_task *ft = host->user_data(task);
  if (ft == NULL || ft->finished || ft->ph == PH_SHUTDOWN) return; /* the job has ended already */
  if (reason == MUSTER_CANCEL_SHUTDOWN) {
    /* an agent restart never stops a Flink job: the attempt is detached (not reported ended),
     * the next agent process reports it LOST and the retry re-attaches by JobID */
    char msg[400];
    snprintf(msg, sizeof msg, "flink: agent stopping; job %s left %s on the cluster",
             ft->job_id[0] ? ft->job_id : ft->own_id,
             ft->job_id[0] ? mu_flink_job_state_name(ft->last_state) : "as submitted");
    if (host->size >= offsetof(muster_host_api, detach) + sizeof(void *) && host->detach != NULL) {
      flink_stop_timer(ft);
      mu_flink_rest_abort(&ft->rest);
      if (host->detach(task, msg) == 0) {
        ft->finished = true;
        return;
      }
    }
    flink_end(ft, MUSTER_STATE_CANCELLED, "%s", msg); /* an older agent: CANCELLED, the job goes on */
    return;
  }
  ft->trigger_wanted = false;
  if (reason == MUSTER_CANCEL_FORCED && ft->cancelling && !ft->upgrading) {
    if (!ft->plain_fallback)
      flink_say(ft, MUSTER_STDERR, "flink: cancel --force: job %s is cancelled without a savepoint%s", ft->job_id,
                ft->trigger[0] ? " (the savepoint under way is abandoned)" : "");
    ft->cancel_reason = reason;
    ft->plain_fallback = true;
    ft->trigger[0] = '\0';
    flink_start_cancel_action(ft);
    return;
  }
  if (ft->job_id[0] == '\0') {
    if (ft->proc != NULL) { /* the CLI was killed by the agent; its exit ends the task */
      ft->cancelling = true;
      ft->cancel_reason = reason;
      return;
    }
    if (!ft->run_sent) {
      flink_end(ft, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
                "flink: cancelled before the job was submitted");
      return;
    }
    /* the run call went out: the job may exist even without its reply; cancel it by our JobID */
    memcpy(ft->job_id, ft->own_id, sizeof ft->job_id);
    ft->cancelling = true;
    ft->cancel_reason = reason;
    ft->plain_fallback = true;
    flink_start_cancel_action(ft);
    return;
  }
  if (ft->upgrading) {
    flink_end(
        ft, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
        "flink: cancelled during the upgrade: the old job %s was being stopped (last seen %s); the new version was "
        "not started",
        ft->job_id, mu_flink_job_state_name(ft->last_state));
    return;
  }
  if (ft->cancelling) return;
  ft->cancelling = true;
  ft->cancel_reason = reason;
  ft->plain_fallback = reason == MUSTER_CANCEL_FORCED; /* --force: no savepoint, whatever on_cancel says */
  if (host->size >= offsetof(muster_host_api, cancel_extend) + sizeof(void *) && host->cancel_extend != NULL) {
    uint64_t budget = (uint64_t)ft->spec->savepoint_timeout_ms + 2 * (uint64_t)ft->spec->unreachable_ms + 10000;
    host->cancel_extend(task, budget);
  }
  flink_start_cancel_action(ft);
}

static void flink_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  flink_task *ft = user_data;
  if (ft == NULL) return;
  mu_flink_rest_abort(&ft->rest);
  mu_flink_digest_orphan(ft->digest);
  mu_http_multi_release(ft->multi);
  mu_flink_spec_free(ft->spec);
  free(ft->program_path);
  free(ft);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "flink",
    .version = "1.0.0",
    .description = "runs Flink jobs (session REST, application and per-job targets) by JobID",
    .validate = flink_validate,
    .start = flink_start,
    .cancel = flink_cancel,
    .cleanup = flink_cleanup,
};
