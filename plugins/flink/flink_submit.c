/* Getting a Flink job to run exactly once: look up the JobIDs this task may already own and
 * re-attach to one that is there; else submit over REST (jar digest, reuse or upload, run with
 * our JobID) or through the `flink` / `sql-client.sh` CLI as a supervised process, reading the
 * JobID and the YARN application from its output. The YARN RM answers for an application
 * cluster that is gone, and finds an earlier attempt's application after a failover. */
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

/* ---- submission ---- */

static void on_digest(void *arg, int rc, const char *hex);

void flink_lookup_next(flink_task *ft) {
  if (ft->cand >= ft->n_candidates) {
    flink_submit(ft);
    return;
  }
  char path[128];
  snprintf(path, sizeof path, "/jobs/%s", ft->candidates[ft->cand]);
  flink_call(ft, PH_LOOKUP, "GET", path, NULL, NULL);
}

static void attach(flink_task *ft, const char *id, const char *how) {
  memcpy(ft->job_id, id, sizeof ft->job_id);
  ft->host->set_param(ft->task, "job_id", ft->job_id);
  if (ft->base[0] != '\0') ft->host->set_param(ft->task, "jobmanager_url", ft->base);
  flink_say(ft, MUSTER_STDOUT, "flink: %s job %s", how, ft->job_id);
  ft->host->report_progress(ft->task, 10, "job submitted");
  ft->ph = PH_TRACK;
  flink_later(ft, 0);
}

void flink_on_lookup(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  const char *id = ft->candidates[ft->cand];
  if (flink_no_reply(r, ferr, sizeof ferr)) {
    if (flink_unreachable(ft, r, why, sizeof why)) flink_later(ft, (uint64_t)ft->spec->poll_ms);
    else
      flink_end(ft, MUSTER_STATE_FAILED, "flink: JobManager %s unreachable for %llds (%s); nothing was submitted",
                ft->base, (long long)(ft->spec->unreachable_ms / 1000), why);
    return;
  }
  flink_reachable(ft);
  if (r->status == 404) {
    ft->cand++;
    flink_lookup_next(ft);
    return;
  }
  mu_flink_job_info info;
  if (r->status != 200 || mu_flink_json_job(r->body, r->len, &info, err, sizeof err) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: looking up job %s: %s", id,
              r->status != 200 ? (ferr[0] ? ferr : "unexpected HTTP status") : err);
    return;
  }
  bool mine = strcmp(id, ft->own_id) == 0;
  if (!mine && (info.state == MU_FLINK_JOB_FAILED || info.state == MU_FLINK_JOB_CANCELED)) {
    flink_say(ft, MUSTER_STDOUT, "flink: job %s of an earlier attempt ended %s; submitting this attempt's job", id,
              info.state_name);
    flink_submit(ft);
    return;
  }
  char how[160];
  snprintf(how, sizeof how, "re-attached (found %s on the cluster, not submitting again) to", info.state_name);
  attach(ft, id, how);
}

static void run_body(flink_task *ft, char *out, size_t size) {
  json_t *b = json_object();
  const mu_flink_spec *s = ft->spec;
  if (s->entry_class) json_object_set_new(b, "entryClass", json_string(s->entry_class));
  json_t *args = json_array();
  for (size_t i = 0; i < s->n_args; i++) json_array_append_new(args, json_string(s->args[i]));
  json_object_set_new(b, "programArgsList", args);
  if (s->parallelism > 0) json_object_set_new(b, "parallelism", json_integer(s->parallelism));
  json_object_set_new(b, "jobId", json_string(ft->own_id));
  const char *restore = ft->restore_path[0] ? ft->restore_path : s->savepoint_path;
  if (restore) {
    json_object_set_new(b, "savepointPath", json_string(restore));
    json_object_set_new(b, "allowNonRestoredState", json_boolean(s->allow_non_restored_state));
    if (s->restore_mode) json_object_set_new(b, "restoreMode", json_string(s->restore_mode));
  }
  char *text = json_dumps(b, JSON_COMPACT);
  snprintf(out, size, "%s", text ? text : "{}");
  free(text);
  json_decref(b);
}

void flink_submit(flink_task *ft) {
  if (ft->spec->upgrade != MU_FLINK_UPGRADE_NONE && !ft->upgraded) {
    flink_start_upgrade(ft);
    return;
  }
  if (ft->spec->target != MU_FLINK_TARGET_SESSION || ft->spec->program != MU_FLINK_PROGRAM_JAR) {
    flink_start_cli(ft);
    return;
  }
  if (!ft->digested) {
    ft->ph = PH_DIGEST;
    if (mu_flink_digest_start(ft->host->loop(ft->task), ft->program_path, on_digest, ft, &ft->digest) != 0)
      flink_end(ft, MUSTER_STATE_FAILED, "flink: cannot hash %s", ft->spec->program_file);
    return;
  }
  flink_call(ft, PH_JARS, "GET", "/jars", NULL, NULL);
}

static void on_digest(void *arg, int rc, const char *hex) {
  flink_task *ft = arg;
  ft->digest = NULL;
  if (ft->finished) return;
  if (rc != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink.jar: cannot read \"%s\": %s", ft->spec->program_file, strerror(-rc));
    return;
  }
  const char *slash = strrchr(ft->spec->program_file, '/');
  snprintf(ft->upload_name, sizeof ft->upload_name, "%.16s-%s", hex, slash ? slash + 1 : ft->spec->program_file);
  ft->digested = true;
  flink_submit(ft);
}

static void run_jar(flink_task *ft) {
  size_t size = 64 * 1024;
  char *body = malloc(size);
  char path[700];
  if (body == NULL) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: out of memory");
    return;
  }
  run_body(ft, body, size);
  snprintf(path, sizeof path, "/jars/%s/run", ft->jar_id);
  /* recorded before the job exists, so a retry looks it up whatever happens next */
  ft->host->set_param(ft->task, "job_id", ft->own_id);
  ft->run_sent = true;
  flink_say(ft, MUSTER_STDOUT, "flink: running %s on %s as job %s", ft->upload_name, ft->base, ft->own_id);
  flink_call(ft, PH_RUN, "POST", path, body, NULL);
  free(body);
}

void flink_on_jars(flink_task *ft, const mu_flink_reply *r) {
  char err[256];
  if (r->curl == CURLE_OK && r->status == 200 &&
      mu_flink_json_jar_find(r->body, r->len, ft->upload_name, ft->jar_id, sizeof ft->jar_id, err, sizeof err) == 0) {
    flink_say(ft, MUSTER_STDOUT, "flink: reusing uploaded jar %s", ft->jar_id);
    run_jar(ft);
    return;
  }
  flink_say(ft, MUSTER_STDOUT, "flink: uploading %s to %s", ft->spec->program_file, ft->base);
  flink_call(ft, PH_UPLOAD, "POST", "/jars/upload", NULL, ft->program_path);
}

void flink_on_upload(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  if (flink_no_reply(r, ferr, sizeof ferr)) {
    if (flink_unreachable(ft, r, why, sizeof why)) {
      ft->ph = PH_JARS;
      flink_later(ft, (uint64_t)ft->spec->poll_ms);
    } else {
      flink_end(ft, MUSTER_STATE_FAILED, "flink: uploading %s: JobManager %s unreachable for %llds (%s)",
                ft->spec->program_file, ft->base, (long long)(ft->spec->unreachable_ms / 1000), why);
    }
    return;
  }
  flink_reachable(ft);
  if (r->status != 200 || mu_flink_json_upload(r->body, r->len, ft->jar_id, sizeof ft->jar_id, err, sizeof err) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: uploading %s refused (HTTP %ld): %s", ft->spec->program_file, r->status,
              ferr[0] ? ferr : err);
    return;
  }
  run_jar(ft);
}

void flink_on_run(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  if (flink_no_reply(r, ferr, sizeof ferr)) {
    /* the run may have gone through: look our JobID up again before any new attempt */
    if (flink_unreachable(ft, r, why, sizeof why)) {
      memcpy(ft->candidates[0], ft->own_id, sizeof ft->own_id);
      ft->n_candidates = 1;
      ft->cand = 0;
      ft->ph = PH_LOOKUP;
      flink_later(ft, (uint64_t)ft->spec->poll_ms);
    } else {
      flink_end(ft, MUSTER_STATE_FAILED, "flink: running job %s: JobManager %s unreachable for %llds (%s)", ft->own_id,
                ft->base, (long long)(ft->spec->unreachable_ms / 1000), why);
    }
    return;
  }
  flink_reachable(ft);
  char id[MU_FLINK_JOB_ID_LEN + 1];
  if (r->status != 200 || mu_flink_json_run(r->body, r->len, id, err, sizeof err) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: the cluster refused the job (HTTP %ld): %s", r->status,
              ferr[0] ? ferr : err);
    return;
  }
  if (strcmp(id, ft->own_id) != 0)
    flink_say(ft, MUSTER_STDERR, "flink: the cluster ran the job as %s, not %s as asked", id, ft->own_id);
  attach(ft, id, "submitted");
}

/* ---- CLI targets ---- */

static void on_cli_exit(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)proc;
  flink_task *ft = user;
  ft->proc = NULL;
  if (ft->finished) return;
  const muster_task_context *ctx = ft->host->context(ft->task);
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", ctx->task_dir, FLINK_CLI_OUT);
  /* a small file written by the process that just ended: read once, bounded */
  FILE *f = fopen(path, "rb");
  char *out = malloc(FLINK_CLI_MAX_OUT + 1);
  size_t n = 0;
  if (f != NULL && out != NULL) n = fread(out, 1, FLINK_CLI_MAX_OUT, f);
  if (f != NULL) fclose(f);
  if (out != NULL) {
    out[n] = '\0';
    ft->host->emit_output(ft->task, MUSTER_STDOUT, out, n);
    mu_flink_cli_scan(out, n, &ft->cli);
  }
  free(out);
  if (ft->cancelling) {
    flink_end(ft, ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
              "flink: the submission was stopped");
    return;
  }
  if (x->exit_code != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: the flink CLI failed (%s)%s%s",
              x->message ? x->message : "non-zero exit", ft->cli.job_id[0] ? "; job " : "", ft->cli.job_id);
    return;
  }
  bool application =
      ft->spec->target == MU_FLINK_TARGET_YARN_APPLICATION || ft->spec->target == MU_FLINK_TARGET_K8S_APPLICATION;
  if (ft->cli.job_id[0] == '\0' && application) /* run-application prints no JobID: it is the one we pinned */
    memcpy(ft->cli.job_id, ft->own_id, sizeof ft->own_id);
  if (ft->cli.job_id[0] == '\0') {
    flink_end(ft, MUSTER_STATE_FAILED,
              "flink: the flink CLI ended without printing \"Job has been submitted with JobID\"");
    return;
  }
  if (ft->cli.yarn_app_id[0] != '\0') {
    snprintf(ft->app_id, sizeof ft->app_id, "%s", ft->cli.yarn_app_id);
    ft->host->set_param(ft->task, "yarn_app_id", ft->app_id);
  }
  if (ft->base[0] == '\0' && ft->cli.web_url[0] != '\0') snprintf(ft->base, sizeof ft->base, "%s", ft->cli.web_url);
  if (ft->base[0] == '\0' && ft->cli.yarn_app_id[0] != '\0' && ft->spec->yarn_rm_url != NULL)
    snprintf(ft->base, sizeof ft->base, "%s/proxy/%s", ft->spec->yarn_rm_url, ft->cli.yarn_app_id);
  if (ft->base[0] == '\0') {
    if (ft->spec->target == MU_FLINK_TARGET_LOCAL) {
      ft->host->set_param(ft->task, "job_id", ft->cli.job_id);
      flink_end(ft, MUSTER_STATE_SUCCEEDED, "flink: local job %s ended with the CLI", ft->cli.job_id);
    } else {
      flink_end(ft, MUSTER_STATE_FAILED,
                "flink: job %s submitted, but no REST address to track it (set jobmanager_url%s)", ft->cli.job_id,
                ft->spec->target == MU_FLINK_TARGET_YARN_APPLICATION ? " or yarn_rm_url" : "");
    }
    return;
  }
  attach(ft, ft->cli.job_id, "submitted (flink CLI)");
}

void flink_start_cli(flink_task *ft) {
  const mu_flink_spec *s = ft->spec;
  char bin[4200];
  const char *home = s->flink_home ? s->flink_home : getenv("FLINK_HOME");
  if (home == NULL) {
    flink_end(ft, MUSTER_STATE_FAILED,
              "flink.flink_home: target %s submits with the flink CLI; set flink_home (no $FLINK_HOME on the agent)",
              mu_flink_target_name(s->target));
    return;
  }
  snprintf(bin, sizeof bin, "%s/bin/%s", home, s->program == MU_FLINK_PROGRAM_SQL ? "sql-client.sh" : "flink");
  if (access(bin, X_OK) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink.flink_home: %s is not an executable", bin);
    return;
  }
  char **argv = NULL;
  if (mu_flink_cli_argv(s, bin, ft->program_path, ft->own_id, &argv) != 0) {
    flink_end(ft, MUSTER_STATE_FAILED, "flink: out of memory");
    return;
  }
  /* the output goes to a file the plugin reads when the CLI ends (and then into the task's output) */
  size_t n = 0;
  while (argv[n] != NULL) n++;
  const char **full = calloc(n + 5, sizeof *full);
  if (full == NULL) {
    mu_flink_cli_argv_free(argv);
    flink_end(ft, MUSTER_STATE_FAILED, "flink: out of memory");
    return;
  }
  full[0] = "/bin/sh";
  full[1] = "-c";
  full[2] = "exec \"$@\" >" FLINK_CLI_OUT " 2>&1";
  full[3] = "flink-submit";
  for (size_t i = 0; i < n; i++) full[4 + i] = argv[i];
  char *env[2] = {NULL, NULL};
  char home_env[4200];
  snprintf(home_env, sizeof home_env, "FLINK_HOME=%s", home);
  env[0] = home_env;
  muster_spawn_opts o = {
      .size = sizeof o, .argv = full, .env = (const char *const *)env, .on_exit = on_cli_exit, .user = ft};
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  ft->ph = PH_CLI;
  ft->host->set_param(ft->task, "job_id", ft->own_id);
  flink_say(ft, MUSTER_STDOUT, "flink: submitting with %s (target %s) as job %s", bin, mu_flink_target_name(s->target),
            ft->own_id);
  int rc = ft->host->spawn(ft->task, &o, &ft->proc, errbuf);
  free(full);
  mu_flink_cli_argv_free(argv);
  if (rc != 0) flink_end(ft, MUSTER_STATE_FAILED, "flink: cannot start the flink CLI: %s", errbuf);
}

/* ---- the YARN RM, for application clusters ---- */

static muster_state rm_final_state(flink_task *ft, const mu_flink_yarn_app *app, const char **ret_flink_state) {
  const char *f = app->final_status;
  if (strcmp(f, "SUCCEEDED") == 0) {
    *ret_flink_state = "FINISHED";
    return ft->cancelling && ft->savepoint_location[0] == '\0' ? MUSTER_STATE_CANCELLED : MUSTER_STATE_SUCCEEDED;
  }
  if (strcmp(f, "KILLED") == 0 || strcmp(app->state, "KILLED") == 0) {
    *ret_flink_state = "CANCELED";
    return MUSTER_STATE_CANCELLED;
  }
  *ret_flink_state = "FAILED";
  return MUSTER_STATE_FAILED;
}

void flink_on_rm(flink_task *ft, const mu_flink_reply *r, bool at_start) {
  char why[600], err[256];
  mu_flink_yarn_app app;
  bool ok =
      r->curl == CURLE_OK && r->status == 200 && mu_flink_json_yarn_app(r->body, r->len, &app, err, sizeof err) == 0;
  if (at_start) {
    if (ok && !app.ended) {
      snprintf(ft->base, sizeof ft->base, "%s/proxy/%s", ft->spec->yarn_rm_url, ft->app_id);
      flink_say(ft, MUSTER_STDOUT, "flink: YARN application %s of an earlier attempt is %s; looking up its job there",
                ft->app_id, app.state);
      flink_lookup_next(ft);
    } else if (ok) {
      const char *fs = "";
      muster_state st = rm_final_state(ft, &app, &fs);
      ft->host->set_param(ft->task, "state", fs);
      flink_end(ft, st,
                "flink: re-attached: YARN application %s of an earlier attempt had ended %s (%s); job %s %s; not "
                "submitting again",
                ft->app_id, app.state, app.final_status, ft->candidates[0], fs);
    } else {
      flink_say(ft, MUSTER_STDOUT,
                "flink: YARN application %s of an earlier attempt is not known to the RM; submitting", ft->app_id);
      ft->app_id[0] = '\0';
      flink_start_cli(ft);
    }
    return;
  }
  if (ok && app.ended) {
    const char *fs = "";
    muster_state st = rm_final_state(ft, &app, &fs);
    ft->host->set_param(ft->task, "state", fs);
    if (st == MUSTER_STATE_CANCELLED && ft->savepoint_location[0] != '\0')
      flink_end(ft, st, "flink: job %s stopped with a savepoint at %s (application %s %s)", ft->job_id,
                ft->savepoint_location, ft->app_id, app.final_status);
    else
      flink_end(ft, st, "flink: job %s %s: its application cluster %s is gone; the RM reports %s/%s", ft->job_id, fs,
                ft->app_id, app.state, app.final_status);
    return;
  }
  mu_flink_reply fake = *r;
  if (ok) { /* the RM says it runs: the JobManager is only silent for now */
    fake.curl = CURLE_COULDNT_CONNECT;
    fake.error = "the JobManager does not answer (YARN says the application is RUNNING)";
  }
  ft->ph = ft->rm_return;
  if (flink_unreachable(ft, &fake, why, sizeof why)) flink_later(ft, (uint64_t)ft->spec->poll_ms);
  else
    flink_end(ft, MUSTER_STATE_FAILED,
              "flink: JobManager %s and the RM unreachable for %llds (%s); job %s may still run", ft->base,
              (long long)(ft->spec->unreachable_ms / 1000), why, ft->job_id);
}
