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

#include "flink_cli.h"
#include "flink_digest.h"
#include "flink_json.h"
#include "flink_rest.h"
#include "flink_spec.h"
#include "muster_plugin.h"

#define FLINK_MAX_LOOKBACK 16         /* earlier attempts whose JobIDs are looked up */
#define FLINK_CHECKPOINT_EVERY 5      /* streaming: checkpoint statistics every N polls */
#define FLINK_CLI_OUT "flink-cli.out" /* the CLI's output, in the task dir */
#define FLINK_CLI_MAX_OUT (1024 * 1024)

typedef enum {
  PH_LOOKUP,      /* GET /jobs/{candidate}: is a job of ours already there? */
  PH_DIGEST,      /* the jar's SHA-256, on the thread pool */
  PH_JARS,        /* GET /jars: an upload of this jar (same digest) to reuse */
  PH_UPLOAD,      /* POST /jars/upload */
  PH_RUN,         /* POST /jars/{id}/run */
  PH_CLI,         /* the flink CLI submitting */
  PH_TRACK,       /* GET /jobs/{id} every poll */
  PH_EXCEPTIONS,  /* GET /jobs/{id}/exceptions after FAILED */
  PH_CHECKPOINTS, /* GET /jobs/{id}/checkpoints */
  PH_CANCEL,      /* PATCH /jobs/{id}?mode=cancel */
  PH_STOP,        /* POST /jobs/{id}/stop */
  PH_SAVEPOINT,   /* GET /jobs/{id}/savepoints/{trigger} */
  PH_WAIT_END,    /* GET /jobs/{id} until terminal, after a cancel or stop */
  PH_RM,          /* GET {rm}/ws/v1/cluster/apps/{app}: the JobManager is gone or silent */
  PH_RM_START,    /* the same at start: is an earlier attempt's application still there? */
  PH_UPG_LOOK,    /* upgrade: GET /jobs/{upgrade_from} */
  PH_UPG_CKPT,    /* upgrade last-state: GET /jobs/{upgrade_from}/checkpoints */
} phase;

typedef struct flink_task {
  const muster_host_api *host;
  muster_task *task;
  mu_flink_spec *spec;
  mu_http_multi *multi;
  mu_flink_rest rest;
  phase ph;
  char *program_path;           /* resolved against the task dir */
  char base[512];               /* REST base URL ("" until known for CLI targets) */
  char candidates[FLINK_MAX_LOOKBACK][MU_FLINK_JOB_ID_LEN + 1];
  size_t n_candidates, cand;
  char own_id[MU_FLINK_JOB_ID_LEN + 1];   /* the JobID this attempt submits with */
  char job_id[MU_FLINK_JOB_ID_LEN + 1];   /* the job tracked ("" before) */
  char jar_id[512];
  char upload_name[256];          /* "<sha256 prefix>-<file name>" once digested */
  bool digested;
  mu_flink_digest *digest;         /* under way, else NULL */
  char trigger[64];
  muster_timer *timer;
  mu_flink_job_state last_state;
  unsigned restarts, polls;
  uint64_t unreachable_since_ms;   /* 0 while reachable */
  bool unreachable_noted;
  uint64_t savepoint_deadline_ms;
  bool cancelling;                 /* a cancel is being carried out */
  muster_cancel_reason cancel_reason;
  bool plain_fallback;             /* savepoint failed on a timeout: cancel without one */
  char savepoint_location[MU_FLINK_TEXT_MAX];
  mu_flink_cli_facts cli;
  bool upgrading;                  /* job_id is the old version being stopped */
  bool upgraded;                   /* the old version has ended: submit this one */
  char restore_path[MU_FLINK_TEXT_MAX]; /* what the upgrade restores from, "" for empty state */
  char app_id[64];                 /* the YARN application, "" when none */
  phase rm_return;                 /* the phase to go on with after an RM check */
  muster_proc *proc;
  bool finished;
} flink_task;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static void say(flink_task *ft, muster_stream stream, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(flink_task *ft, muster_stream stream, const char *fmt, ...) {
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

static void stop_timer(flink_task *ft) {
  if (ft->timer != NULL) ft->host->timer_stop(ft->task, ft->timer);
  ft->timer = NULL;
}

static void end(flink_task *ft, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void end(flink_task *ft, muster_state state, const char *fmt, ...) {
  if (ft->finished) return;
  ft->finished = true;
  stop_timer(ft);
  mu_flink_rest_abort(&ft->rest);
  char msg[1400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  muster_result r = {state, state == MUSTER_STATE_SUCCEEDED ? 0 : -1, 0, msg};
  ft->host->log(ft->task, state == MUSTER_STATE_FAILED || state == MUSTER_STATE_TIMED_OUT ? MUSTER_LOG_WARN
                                                                                           : MUSTER_LOG_INFO, "%s", msg);
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
    end(ft, MUSTER_STATE_FAILED, "flink: cannot start a REST call to %s (out of memory)", url);
}

static void call(flink_task *ft, phase ph, const char *method, const char *path, const char *json_body,
                 const char *upload) {
  char url[1600];
  snprintf(url, sizeof url, "%s%s", ft->base, path);
  call_url(ft, ph, method, url, json_body, upload);
}

/* Asks the YARN RM about the application (when there is one and an RM to ask). */
static bool ask_rm(flink_task *ft, phase ph, phase then) {
  if (ft->app_id[0] == '\0' || ft->spec->yarn_rm_url == NULL) return false;
  char url[1600];
  snprintf(url, sizeof url, "%s/ws/v1/cluster/apps/%s", ft->spec->yarn_rm_url, ft->app_id);
  ft->rm_return = then;
  call_url(ft, ph, "GET", url, NULL, NULL);
  return true;
}

static void call_job(flink_task *ft, phase ph, const char *method, const char *suffix, const char *json_body) {
  char path[700];
  snprintf(path, sizeof path, "/jobs/%s%s", ft->job_id, suffix);
  call(ft, ph, method, path, json_body, NULL);
}

/* Runs the next step of the current phase after ms (the poll interval, or a retry delay). */
static void later(flink_task *ft, uint64_t ms) {
  stop_timer(ft);
  if (ft->host->timer_start(ft->task, ms, 0, on_timer, ft, &ft->timer) != 0)
    end(ft, MUSTER_STATE_FAILED, "flink: cannot start a timer");
}

/* A reply that is no reply (connection refused, 5xx without a Flink error body): true when the
 * JobManager is to be tried again, false once unreachable_timeout has passed. */
static bool unreachable(flink_task *ft, const mu_flink_reply *r, char *why, size_t size) {
  if (r->curl != CURLE_OK) snprintf(why, size, "%s", r->error);
  else snprintf(why, size, "HTTP %ld", r->status);
  uint64_t t = now_ms();
  if (ft->unreachable_since_ms == 0) ft->unreachable_since_ms = t;
  if (!ft->unreachable_noted) {
    say(ft, MUSTER_STDERR, "flink: JobManager %s unreachable (%s); retrying for up to %llds", ft->base, why,
        (long long)(ft->spec->unreachable_ms / 1000));
    ft->unreachable_noted = true;
  }
  return t - ft->unreachable_since_ms < (uint64_t)ft->spec->unreachable_ms;
}

static bool no_reply(const mu_flink_reply *r, char *flink_err, size_t size) {
  if (r->curl != CURLE_OK) return true;
  bool has_errors = mu_flink_json_errors(r->body, r->len, flink_err, size);
  return r->status >= 500 && !has_errors;
}

static void reachable(flink_task *ft) {
  if (ft->unreachable_since_ms != 0 && ft->unreachable_noted)
    say(ft, MUSTER_STDERR, "flink: JobManager %s reachable again", ft->base);
  ft->unreachable_since_ms = 0;
  ft->unreachable_noted = false;
}

/* ---- submission ---- */

static void submit(flink_task *ft);
static void start_cli(flink_task *ft);
static void on_digest(void *arg, int rc, const char *hex);

static void lookup_next(flink_task *ft) {
  if (ft->cand >= ft->n_candidates) {
    submit(ft);
    return;
  }
  char path[128];
  snprintf(path, sizeof path, "/jobs/%s", ft->candidates[ft->cand]);
  call(ft, PH_LOOKUP, "GET", path, NULL, NULL);
}

static void attach(flink_task *ft, const char *id, const char *how) {
  memcpy(ft->job_id, id, sizeof ft->job_id);
  ft->host->set_param(ft->task, "job_id", ft->job_id);
  if (ft->base[0] != '\0') ft->host->set_param(ft->task, "jobmanager_url", ft->base);
  say(ft, MUSTER_STDOUT, "flink: %s job %s", how, ft->job_id);
  ft->host->report_progress(ft->task, 10, "job submitted");
  ft->ph = PH_TRACK;
  later(ft, 0);
}

static void on_lookup(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  const char *id = ft->candidates[ft->cand];
  if (no_reply(r, ferr, sizeof ferr)) {
    if (unreachable(ft, r, why, sizeof why)) later(ft, (uint64_t)ft->spec->poll_ms);
    else end(ft, MUSTER_STATE_FAILED, "flink: JobManager %s unreachable for %llds (%s); nothing was submitted", ft->base,
             (long long)(ft->spec->unreachable_ms / 1000), why);
    return;
  }
  reachable(ft);
  if (r->status == 404) {
    ft->cand++;
    lookup_next(ft);
    return;
  }
  mu_flink_job_info info;
  if (r->status != 200 || mu_flink_json_job(r->body, r->len, &info, err, sizeof err) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: looking up job %s: %s", id,
        r->status != 200 ? (ferr[0] ? ferr : "unexpected HTTP status") : err);
    return;
  }
  bool mine = strcmp(id, ft->own_id) == 0;
  if (!mine && (info.state == MU_FLINK_JOB_FAILED || info.state == MU_FLINK_JOB_CANCELED)) {
    say(ft, MUSTER_STDOUT, "flink: job %s of an earlier attempt ended %s; submitting this attempt's job", id,
        info.state_name);
    submit(ft);
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

static void start_upgrade(flink_task *ft);

static void submit(flink_task *ft) {
  if (ft->spec->upgrade != MU_FLINK_UPGRADE_NONE && !ft->upgraded) {
    start_upgrade(ft);
    return;
  }
  if (ft->spec->target != MU_FLINK_TARGET_SESSION || ft->spec->program != MU_FLINK_PROGRAM_JAR) {
    start_cli(ft);
    return;
  }
  if (!ft->digested) {
    ft->ph = PH_DIGEST;
    if (mu_flink_digest_start(ft->host->loop(ft->task), ft->program_path, on_digest, ft, &ft->digest) != 0)
      end(ft, MUSTER_STATE_FAILED, "flink: cannot hash %s", ft->spec->program_file);
    return;
  }
  call(ft, PH_JARS, "GET", "/jars", NULL, NULL);
}

static void on_digest(void *arg, int rc, const char *hex) {
  flink_task *ft = arg;
  ft->digest = NULL;
  if (ft->finished) return;
  if (rc != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink.jar: cannot read \"%s\": %s", ft->spec->program_file, strerror(-rc));
    return;
  }
  const char *slash = strrchr(ft->spec->program_file, '/');
  snprintf(ft->upload_name, sizeof ft->upload_name, "%.16s-%s", hex, slash ? slash + 1 : ft->spec->program_file);
  ft->digested = true;
  submit(ft);
}

static void run_jar(flink_task *ft) {
  size_t size = 64 * 1024;
  char *body = malloc(size);
  char path[700];
  if (body == NULL) {
    end(ft, MUSTER_STATE_FAILED, "flink: out of memory");
    return;
  }
  run_body(ft, body, size);
  snprintf(path, sizeof path, "/jars/%s/run", ft->jar_id);
  /* recorded before the job exists, so a retry looks it up whatever happens next */
  ft->host->set_param(ft->task, "job_id", ft->own_id);
  say(ft, MUSTER_STDOUT, "flink: running %s on %s as job %s", ft->upload_name, ft->base, ft->own_id);
  call(ft, PH_RUN, "POST", path, body, NULL);
  free(body);
}

static void on_jars(flink_task *ft, const mu_flink_reply *r) {
  char err[256];
  if (r->curl == CURLE_OK && r->status == 200 &&
      mu_flink_json_jar_find(r->body, r->len, ft->upload_name, ft->jar_id, sizeof ft->jar_id, err, sizeof err) == 0) {
    say(ft, MUSTER_STDOUT, "flink: reusing uploaded jar %s", ft->jar_id);
    run_jar(ft);
    return;
  }
  say(ft, MUSTER_STDOUT, "flink: uploading %s to %s", ft->spec->program_file, ft->base);
  call(ft, PH_UPLOAD, "POST", "/jars/upload", NULL, ft->program_path);
}

static void on_upload(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  if (no_reply(r, ferr, sizeof ferr)) {
    if (unreachable(ft, r, why, sizeof why)) {
      ft->ph = PH_JARS;
      later(ft, (uint64_t)ft->spec->poll_ms);
    } else {
      end(ft, MUSTER_STATE_FAILED, "flink: uploading %s: JobManager %s unreachable for %llds (%s)", ft->spec->program_file,
          ft->base, (long long)(ft->spec->unreachable_ms / 1000), why);
    }
    return;
  }
  reachable(ft);
  if (r->status != 200 || mu_flink_json_upload(r->body, r->len, ft->jar_id, sizeof ft->jar_id, err, sizeof err) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: uploading %s refused (HTTP %ld): %s", ft->spec->program_file, r->status,
        ferr[0] ? ferr : err);
    return;
  }
  run_jar(ft);
}

static void on_run(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  if (no_reply(r, ferr, sizeof ferr)) {
    /* the run may have gone through: look our JobID up again before any new attempt */
    if (unreachable(ft, r, why, sizeof why)) {
      memcpy(ft->candidates[0], ft->own_id, sizeof ft->own_id);
      ft->n_candidates = 1;
      ft->cand = 0;
      ft->ph = PH_LOOKUP;
      later(ft, (uint64_t)ft->spec->poll_ms);
    } else {
      end(ft, MUSTER_STATE_FAILED, "flink: running job %s: JobManager %s unreachable for %llds (%s)", ft->own_id,
          ft->base, (long long)(ft->spec->unreachable_ms / 1000), why);
    }
    return;
  }
  reachable(ft);
  char id[MU_FLINK_JOB_ID_LEN + 1];
  if (r->status != 200 || mu_flink_json_run(r->body, r->len, id, err, sizeof err) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: the cluster refused the job (HTTP %ld): %s", r->status, ferr[0] ? ferr : err);
    return;
  }
  if (strcmp(id, ft->own_id) != 0)
    say(ft, MUSTER_STDERR, "flink: the cluster ran the job as %s, not %s as asked", id, ft->own_id);
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
    end(ft, ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
        "flink: the submission was stopped");
    return;
  }
  if (x->exit_code != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: the flink CLI failed (%s)%s%s", x->message ? x->message : "non-zero exit",
        ft->cli.job_id[0] ? "; job " : "", ft->cli.job_id);
    return;
  }
  bool application = ft->spec->target == MU_FLINK_TARGET_YARN_APPLICATION ||
                     ft->spec->target == MU_FLINK_TARGET_K8S_APPLICATION;
  if (ft->cli.job_id[0] == '\0' && application) /* run-application prints no JobID: it is the one we pinned */
    memcpy(ft->cli.job_id, ft->own_id, sizeof ft->own_id);
  if (ft->cli.job_id[0] == '\0') {
    end(ft, MUSTER_STATE_FAILED, "flink: the flink CLI ended without printing \"Job has been submitted with JobID\"");
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
      end(ft, MUSTER_STATE_SUCCEEDED, "flink: local job %s ended with the CLI", ft->cli.job_id);
    } else {
      end(ft, MUSTER_STATE_FAILED, "flink: job %s submitted, but no REST address to track it (set jobmanager_url%s)",
          ft->cli.job_id, ft->spec->target == MU_FLINK_TARGET_YARN_APPLICATION ? " or yarn_rm_url" : "");
    }
    return;
  }
  attach(ft, ft->cli.job_id, "submitted (flink CLI)");
}

static void start_cli(flink_task *ft) {
  const mu_flink_spec *s = ft->spec;
  char bin[4200];
  const char *home = s->flink_home ? s->flink_home : getenv("FLINK_HOME");
  if (home == NULL) {
    end(ft, MUSTER_STATE_FAILED, "flink.flink_home: target %s submits with the flink CLI; set flink_home (no $FLINK_HOME on the agent)",
        mu_flink_target_name(s->target));
    return;
  }
  snprintf(bin, sizeof bin, "%s/bin/%s", home, s->program == MU_FLINK_PROGRAM_SQL ? "sql-client.sh" : "flink");
  if (access(bin, X_OK) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink.flink_home: %s is not an executable", bin);
    return;
  }
  char **argv = NULL;
  if (mu_flink_cli_argv(s, bin, ft->program_path, ft->own_id, &argv) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: out of memory");
    return;
  }
  /* the output goes to a file the plugin reads when the CLI ends (and then into the task's output) */
  size_t n = 0;
  while (argv[n] != NULL) n++;
  const char **full = calloc(n + 5, sizeof *full);
  if (full == NULL) {
    mu_flink_cli_argv_free(argv);
    end(ft, MUSTER_STATE_FAILED, "flink: out of memory");
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
  muster_spawn_opts o = {.size = sizeof o, .argv = full, .env = (const char *const *)env, .on_exit = on_cli_exit,
                         .user = ft};
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  ft->ph = PH_CLI;
  ft->host->set_param(ft->task, "job_id", ft->own_id);
  say(ft, MUSTER_STDOUT, "flink: submitting with %s (target %s) as job %s", bin, mu_flink_target_name(s->target),
      ft->own_id);
  int rc = ft->host->spawn(ft->task, &o, &ft->proc, errbuf);
  free(full);
  mu_flink_cli_argv_free(argv);
  if (rc != 0) end(ft, MUSTER_STATE_FAILED, "flink: cannot start the flink CLI: %s", errbuf);
}

/* ---- tracking ---- */

static void progress(flink_task *ft, const mu_flink_job_info *info) {
  char msg[300];
  long long up = info->duration_ms >= 0 ? info->duration_ms / 1000 : -1;
  snprintf(msg, sizeof msg, "job %s %s%s%lld s, %u restarts", ft->job_id, info->state_name, up >= 0 ? ", up " : "",
           up, ft->restarts);
  if (up < 0) snprintf(msg, sizeof msg, "job %s %s, %u restarts", ft->job_id, info->state_name, ft->restarts);
  ft->host->report_progress(ft->task, ft->spec->kind == MU_FLINK_STREAMING ? 50 : 30, msg);
}

static void upgrade_old_ended(flink_task *ft, const mu_flink_job_info *info);

static void on_track(flink_task *ft, const mu_flink_reply *r, bool waiting_end) {
  char ferr[MU_FLINK_TEXT_MAX], why[600], err[256];
  if (no_reply(r, ferr, sizeof ferr) || (r->status == 404 && ft->app_id[0] != '\0')) {
    /* an application cluster goes away with its job: the RM knows how it ended */
    if (ask_rm(ft, PH_RM, waiting_end ? PH_WAIT_END : PH_TRACK)) return;
    if (unreachable(ft, r, why, sizeof why)) {
      later(ft, (uint64_t)ft->spec->poll_ms);
    } else {
      end(ft, MUSTER_STATE_FAILED, "flink: JobManager %s unreachable for %llds (%s); job %s may still run there",
          ft->base, (long long)(ft->spec->unreachable_ms / 1000), why, ft->job_id);
    }
    return;
  }
  reachable(ft);
  if (r->status == 404) {
    end(ft, MUSTER_STATE_FAILED, "flink: job %s is not known to the cluster any more (%s)", ft->job_id,
        ferr[0] ? ferr : "HTTP 404");
    return;
  }
  mu_flink_job_info info;
  if (r->status != 200 || mu_flink_json_job(r->body, r->len, &info, err, sizeof err) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: reading job %s: %s", ft->job_id, r->status != 200 ? ferr : err);
    return;
  }
  ft->polls++;
  if (info.state == MU_FLINK_JOB_RESTARTING && ft->last_state != MU_FLINK_JOB_RESTARTING) {
    ft->restarts++;
    if (ft->restarts % ft->spec->restart_event_threshold == 0)
      say(ft, MUSTER_STDERR, "flink: event: job %s has restarted %u times", ft->job_id, ft->restarts);
  }
  if (info.state != ft->last_state) {
    say(ft, MUSTER_STDOUT, "flink: job %s %s", ft->job_id, info.state_name);
    ft->host->set_param(ft->task, "state", info.state_name);
  }
  ft->last_state = info.state;
  if (ft->upgrading && mu_flink_job_state_terminal(info.state)) {
    upgrade_old_ended(ft, &info);
    return;
  }
  bool cancelled_by_us = waiting_end || ft->cancelling;
  switch (info.state) {
    case MU_FLINK_JOB_FINISHED:
      if (cancelled_by_us && ft->savepoint_location[0] != '\0')
        end(ft, ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
            "flink: job %s stopped with a savepoint at %s", ft->job_id, ft->savepoint_location);
      else
        end(ft, MUSTER_STATE_SUCCEEDED, "flink: job %s FINISHED", ft->job_id);
      return;
    case MU_FLINK_JOB_FAILED:
      call_job(ft, PH_EXCEPTIONS, "GET", "/exceptions", NULL);
      return;
    case MU_FLINK_JOB_CANCELED:
      if (ft->savepoint_location[0] != '\0')
        end(ft, MUSTER_STATE_CANCELLED, "flink: job %s stopped with a savepoint at %s", ft->job_id,
            ft->savepoint_location);
      else
        end(ft, MUSTER_STATE_CANCELLED, "flink: job %s CANCELED%s", ft->job_id, cancelled_by_us ? "" : " on the cluster");
      return;
    default: break;
  }
  if (!cancelled_by_us && ft->spec->detached && info.state == MU_FLINK_JOB_RUNNING) {
    end(ft, MUSTER_STATE_SUCCEEDED, "flink: job %s RUNNING (detached: the task ends here, the job goes on)", ft->job_id);
    return;
  }
  if (!cancelled_by_us) progress(ft, &info);
  if (!cancelled_by_us && ft->spec->kind == MU_FLINK_STREAMING && info.state == MU_FLINK_JOB_RUNNING &&
      ft->polls % FLINK_CHECKPOINT_EVERY == 1) {
    call_job(ft, PH_CHECKPOINTS, "GET", "/checkpoints", NULL);
    return;
  }
  ft->ph = waiting_end ? PH_WAIT_END : PH_TRACK;
  later(ft, (uint64_t)ft->spec->poll_ms);
}

static void on_exceptions(flink_task *ft, const mu_flink_reply *r) {
  char root[MU_FLINK_TEXT_MAX] = "", err[256];
  if (r->curl != CURLE_OK || r->status != 200 ||
      mu_flink_json_exceptions(r->body, r->len, root, sizeof root, err, sizeof err) != 0)
    snprintf(root, sizeof root, "no exception reported");
  end(ft, MUSTER_STATE_FAILED, "flink: job %s FAILED: %s", ft->job_id, root);
}

static void on_checkpoints(flink_task *ft, const mu_flink_reply *r) {
  mu_flink_checkpoint_info ck;
  char err[256];
  if (r->curl == CURLE_OK && r->status == 200 && mu_flink_json_checkpoints(r->body, r->len, &ck, err, sizeof err) == 0) {
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
  later(ft, (uint64_t)ft->spec->poll_ms);
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

static void on_rm(flink_task *ft, const mu_flink_reply *r, bool at_start) {
  char why[600], err[256];
  mu_flink_yarn_app app;
  bool ok = r->curl == CURLE_OK && r->status == 200 && mu_flink_json_yarn_app(r->body, r->len, &app, err, sizeof err) == 0;
  if (at_start) {
    if (ok && !app.ended) {
      snprintf(ft->base, sizeof ft->base, "%s/proxy/%s", ft->spec->yarn_rm_url, ft->app_id);
      say(ft, MUSTER_STDOUT, "flink: YARN application %s of an earlier attempt is %s; looking up its job there",
          ft->app_id, app.state);
      lookup_next(ft);
    } else if (ok) {
      const char *fs = "";
      muster_state st = rm_final_state(ft, &app, &fs);
      ft->host->set_param(ft->task, "state", fs);
      end(ft, st, "flink: re-attached: YARN application %s of an earlier attempt had ended %s (%s); job %s %s; not "
          "submitting again", ft->app_id, app.state, app.final_status, ft->candidates[0], fs);
    } else {
      say(ft, MUSTER_STDOUT, "flink: YARN application %s of an earlier attempt is not known to the RM; submitting",
          ft->app_id);
      ft->app_id[0] = '\0';
      start_cli(ft);
    }
    return;
  }
  if (ok && app.ended) {
    const char *fs = "";
    muster_state st = rm_final_state(ft, &app, &fs);
    ft->host->set_param(ft->task, "state", fs);
    if (st == MUSTER_STATE_CANCELLED && ft->savepoint_location[0] != '\0')
      end(ft, st, "flink: job %s stopped with a savepoint at %s (application %s %s)", ft->job_id,
          ft->savepoint_location, ft->app_id, app.final_status);
    else
      end(ft, st, "flink: job %s %s: its application cluster %s is gone; the RM reports %s/%s", ft->job_id, fs,
          ft->app_id, app.state, app.final_status);
    return;
  }
  mu_flink_reply fake = *r;
  if (ok) { /* the RM says it runs: the JobManager is only silent for now */
    fake.curl = CURLE_COULDNT_CONNECT;
    fake.error = "the JobManager does not answer (YARN says the application is RUNNING)";
  }
  ft->ph = ft->rm_return;
  if (unreachable(ft, &fake, why, sizeof why))
    later(ft, (uint64_t)ft->spec->poll_ms);
  else
    end(ft, MUSTER_STATE_FAILED, "flink: JobManager %s and the RM unreachable for %llds (%s); job %s may still run",
        ft->base, (long long)(ft->spec->unreachable_ms / 1000), why, ft->job_id);
}

/* ---- cancel ---- */

static void start_cancel_action(flink_task *ft);

/* The savepoint did not happen: the job runs on, and so does the task (StreamPark reports such
 * a job FAILED and starts a second copy; this never does). */
static void savepoint_failed(flink_task *ft, const char *why) {
  if (ft->upgrading) { /* nothing changed: the old version runs on, the new one never started */
    end(ft, MUSTER_STATE_FAILED, "flink: upgrade: the savepoint of job %s failed: %s; the old version is still "
        "RUNNING and the new one was not started", ft->job_id, why);
    return;
  }
  say(ft, MUSTER_STDERR, "flink: event: the savepoint of job %s failed: %s; the job is still RUNNING%s", ft->job_id, why,
      ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "; the task timed out, so the job is cancelled without a savepoint"
                                                  : " and so is this task (cancel again to retry)");
  ft->trigger[0] = '\0';
  if (ft->cancel_reason == MUSTER_CANCEL_TIMEOUT) {
    ft->plain_fallback = true;
    start_cancel_action(ft);
    return;
  }
  ft->cancelling = false;
  if (ft->host->size >= offsetof(muster_host_api, cancel_withdraw) + sizeof(void *) && ft->host->cancel_withdraw != NULL)
    ft->host->cancel_withdraw(ft->task);
  ft->ph = PH_TRACK;
  later(ft, (uint64_t)ft->spec->poll_ms);
}

static void on_stop(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX] = "", err[256];
  if (r->curl != CURLE_OK || (r->status != 200 && r->status != 202) ||
      mu_flink_json_trigger(r->body, r->len, ft->trigger, sizeof ft->trigger, err, sizeof err) != 0) {
    if (r->curl == CURLE_OK) mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    char why[MU_FLINK_TEXT_MAX + 64];
    snprintf(why, sizeof why, "stop refused (%s)",
             r->curl != CURLE_OK ? r->error : ferr[0] ? ferr : "no trigger id in the reply");
    savepoint_failed(ft, why);
    return;
  }
  say(ft, MUSTER_STDOUT, "flink: Suspending job \"%s\" with a savepoint (trigger %s)", ft->job_id, ft->trigger);
  ft->savepoint_deadline_ms = now_ms() + (uint64_t)ft->spec->savepoint_timeout_ms;
  ft->ph = PH_SAVEPOINT;
  later(ft, (uint64_t)ft->spec->poll_ms);
}

static void on_savepoint(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX] = "", err[256];
  mu_flink_savepoint_info sp;
  bool timed_out = now_ms() >= ft->savepoint_deadline_ms;
  if (r->curl != CURLE_OK || r->status >= 500) {
    if (!timed_out) {
      later(ft, (uint64_t)ft->spec->poll_ms);
      return;
    }
    savepoint_failed(ft, "timed out (the JobManager did not answer)");
    return;
  }
  if (r->status != 200 || mu_flink_json_savepoint(r->body, r->len, &sp, err, sizeof err) != 0) {
    mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    savepoint_failed(ft, ferr[0] ? ferr : err);
    return;
  }
  if (sp.status == MU_FLINK_OP_FAILED) {
    savepoint_failed(ft, sp.failure);
    return;
  }
  if (sp.status == MU_FLINK_OP_IN_PROGRESS) {
    if (timed_out) {
      char why[128];
      snprintf(why, sizeof why, "still IN_PROGRESS after savepoint_timeout (%llds)",
               (long long)(ft->spec->savepoint_timeout_ms / 1000));
      savepoint_failed(ft, why);
    } else {
      later(ft, (uint64_t)ft->spec->poll_ms);
    }
    return;
  }
  snprintf(ft->savepoint_location, sizeof ft->savepoint_location, "%s", sp.location);
  ft->host->set_param(ft->task, ft->upgrading ? "upgrade_savepoint_path" : "savepoint_path", sp.location);
  say(ft, MUSTER_STDOUT, "Savepoint completed. Path: %s", sp.location);
  /* a completed savepoint does not mean the job has ended: wait for its terminal state */
  ft->ph = PH_WAIT_END;
  later(ft, 0);
}

static void upgrade_old_ended(flink_task *ft, const mu_flink_job_info *info);

static void on_cancel_reply(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX] = "";
  if (r->curl == CURLE_OK && (r->status == 404 || r->status == 409) && ft->upgrading) {
    mu_flink_job_info gone = {.state = MU_FLINK_JOB_CANCELED};
    snprintf(gone.state_name, sizeof gone.state_name, "%s", r->status == 404 ? "gone" : "already ended");
    upgrade_old_ended(ft, &gone);
    return;
  }
  if (r->curl == CURLE_OK && r->status == 404) {
    end(ft, ft->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
        "flink: job %s is not on the cluster any more", ft->job_id);
    return;
  }
  if (r->curl != CURLE_OK || r->status >= 300) {
    if (r->curl == CURLE_OK) mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    say(ft, MUSTER_STDERR, "flink: cancel of job %s not accepted (%s); retrying", ft->job_id,
        r->curl != CURLE_OK ? r->error : ferr[0] ? ferr : "unexpected status");
    ft->ph = PH_CANCEL;
    later(ft, (uint64_t)ft->spec->poll_ms);
    return;
  }
  say(ft, MUSTER_STDOUT, "flink: Cancelling job %s.", ft->job_id);
  ft->ph = PH_WAIT_END;
  later(ft, (uint64_t)ft->spec->poll_ms);
}

static void start_cancel_action_for(flink_task *ft, bool savepoint);

static void start_cancel_action(flink_task *ft) {
  start_cancel_action_for(ft, ft->spec->on_cancel != MU_FLINK_CANCEL_PLAIN && !ft->plain_fallback &&
                                  ft->spec->kind == MU_FLINK_STREAMING);
}

/* Stops the job with a savepoint, or cancels it. */
static void start_cancel_action_for(flink_task *ft, bool savepoint) {
  stop_timer(ft);
  mu_flink_rest_abort(&ft->rest);
  if (savepoint) {
    json_t *b = json_object();
    json_object_set_new(b, "targetDirectory", json_string(ft->spec->savepoint_dir));
    json_object_set_new(b, "drain", json_boolean(ft->spec->on_cancel == MU_FLINK_CANCEL_DRAIN && !ft->upgrading));
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    say(ft, MUSTER_STDOUT, "flink: stopping job %s with a savepoint into %s%s", ft->job_id, ft->spec->savepoint_dir,
        ft->spec->on_cancel == MU_FLINK_CANCEL_DRAIN ? " (drain)" : "");
    call_job(ft, PH_STOP, "POST", "/stop", text ? text : "{}");
    free(text);
  } else {
    call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL);
  }
}

/* ---- upgrade (like the flink-kubernetes-operator's upgradeMode) ---- */

static const char *earlier_param(const muster_task_context *ctx, const char *param);

static void start_upgrade(flink_task *ft) {
  char path[128];
  snprintf(path, sizeof path, "/jobs/%s", ft->spec->upgrade_from);
  call(ft, PH_UPG_LOOK, "GET", path, NULL, NULL);
}

/* The old version is stopped, cancelled or gone: this one starts from what the upgrade kept. */
static void upgrade_old_ended(flink_task *ft, const mu_flink_job_info *info) {
  if (ft->spec->upgrade == MU_FLINK_UPGRADE_SAVEPOINT && ft->savepoint_location[0] == '\0') {
    end(ft, MUSTER_STATE_FAILED, "flink: upgrade: job %s ended %s before its savepoint completed; nothing was started",
        ft->job_id, info->state_name);
    return;
  }
  if (ft->spec->upgrade == MU_FLINK_UPGRADE_SAVEPOINT)
    snprintf(ft->restore_path, sizeof ft->restore_path, "%s", ft->savepoint_location);
  say(ft, MUSTER_STDOUT, "flink: upgrade: old job %s %s; starting the new version %s%s", ft->job_id, info->state_name,
      ft->restore_path[0] ? "from " : "with empty state", ft->restore_path);
  ft->upgrading = false;
  ft->upgraded = true;
  ft->job_id[0] = '\0';
  ft->savepoint_location[0] = '\0';
  ft->last_state = MU_FLINK_JOB_UNKNOWN;
  submit(ft);
}

static void on_upgrade_look(flink_task *ft, const mu_flink_reply *r) {
  char ferr[MU_FLINK_TEXT_MAX] = "", err[256];
  mu_flink_job_info info;
  if (r->curl != CURLE_OK || r->status != 200 || mu_flink_json_job(r->body, r->len, &info, err, sizeof err) != 0) {
    if (r->curl == CURLE_OK) mu_flink_json_errors(r->body, r->len, ferr, sizeof ferr);
    end(ft, MUSTER_STATE_FAILED, "flink.upgrade_from: job %s: %s", ft->spec->upgrade_from,
        r->curl != CURLE_OK ? r->error : r->status == 404 ? "not found on the cluster" : ferr[0] ? ferr : err);
    return;
  }
  memcpy(ft->job_id, ft->spec->upgrade_from, sizeof ft->job_id);
  ft->upgrading = true;
  ft->host->set_param(ft->task, "upgraded_from", ft->job_id);
  bool running = !mu_flink_job_state_terminal(info.state);
  switch (ft->spec->upgrade) {
    case MU_FLINK_UPGRADE_STATELESS:
      say(ft, MUSTER_STDOUT, "flink: upgrade (stateless): cancelling job %s (%s)", ft->job_id, info.state_name);
      if (!running) upgrade_old_ended(ft, &info);
      else call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL);
      return;
    case MU_FLINK_UPGRADE_SAVEPOINT:
      if (!running && earlier_param(ft->host->context(ft->task), "upgrade_savepoint_path") != NULL) {
        /* an earlier attempt stopped it with a savepoint, then was lost: start from that */
        snprintf(ft->savepoint_location, sizeof ft->savepoint_location, "%s",
                 earlier_param(ft->host->context(ft->task), "upgrade_savepoint_path"));
        upgrade_old_ended(ft, &info);
        return;
      }
      if (info.state != MU_FLINK_JOB_RUNNING) {
        end(ft, MUSTER_STATE_FAILED, "flink: upgrade (savepoint): job %s is %s, not RUNNING, so it cannot take a "
            "savepoint; use upgrade_mode last-state", ft->job_id, info.state_name);
        return;
      }
      ft->plain_fallback = false;
      start_cancel_action_for(ft, true);
      return;
    case MU_FLINK_UPGRADE_LAST_STATE:
      call_job(ft, PH_UPG_CKPT, "GET", "/checkpoints", NULL);
      return;
    case MU_FLINK_UPGRADE_NONE: break;
  }
}

static void on_upgrade_checkpoints(flink_task *ft, const mu_flink_reply *r) {
  mu_flink_checkpoint_info ck;
  char err[256];
  if (r->curl != CURLE_OK || r->status != 200 || mu_flink_json_checkpoints(r->body, r->len, &ck, err, sizeof err) != 0) {
    end(ft, MUSTER_STATE_FAILED, "flink: upgrade (last-state): cannot read the checkpoints of job %s: %s", ft->job_id,
        r->curl != CURLE_OK ? r->error : err);
    return;
  }
  if (ck.latest_path[0] == '\0') {
    end(ft, MUSTER_STATE_FAILED, "flink: upgrade (last-state): job %s has no completed checkpoint; nothing was changed",
        ft->job_id);
    return;
  }
  int64_t age = ck.latest_timestamp_ms > 0 ? (int64_t)time(NULL) * 1000 - ck.latest_timestamp_ms : -1;
  if (age > ft->spec->max_checkpoint_age_ms && !ft->spec->force_upgrade) {
    end(ft, MUSTER_STATE_FAILED, "flink: upgrade (last-state) refused: the latest checkpoint of job %s (%s) is %llds "
        "old, over max_checkpoint_age (%llds); set force_upgrade, or use upgrade_mode savepoint; nothing was changed",
        ft->job_id, ck.latest_path, (long long)(age / 1000), (long long)(ft->spec->max_checkpoint_age_ms / 1000));
    return;
  }
  snprintf(ft->restore_path, sizeof ft->restore_path, "%s", ck.latest_path);
  ft->host->set_param(ft->task, "upgrade_checkpoint_path", ck.latest_path);
  say(ft, MUSTER_STDOUT, "flink: upgrade (last-state): job %s's latest checkpoint is %s (%llds old); cancelling it",
      ft->job_id, ck.latest_path, (long long)(age >= 0 ? age / 1000 : -1));
  call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL);
}

/* ---- dispatch ---- */

static void on_reply(void *arg, const mu_flink_reply *r) {
  flink_task *ft = arg;
  if (ft->finished) return;
  switch (ft->ph) {
    case PH_LOOKUP: on_lookup(ft, r); break;
    case PH_JARS: on_jars(ft, r); break;
    case PH_UPLOAD: on_upload(ft, r); break;
    case PH_RUN: on_run(ft, r); break;
    case PH_TRACK: on_track(ft, r, false); break;
    case PH_WAIT_END: on_track(ft, r, true); break;
    case PH_EXCEPTIONS: on_exceptions(ft, r); break;
    case PH_CHECKPOINTS: on_checkpoints(ft, r); break;
    case PH_CANCEL: on_cancel_reply(ft, r); break;
    case PH_STOP: on_stop(ft, r); break;
    case PH_SAVEPOINT: on_savepoint(ft, r); break;
    case PH_RM: on_rm(ft, r, false); break;
    case PH_RM_START: on_rm(ft, r, true); break;
    case PH_UPG_LOOK: on_upgrade_look(ft, r); break;
    case PH_UPG_CKPT: on_upgrade_checkpoints(ft, r); break;
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
    case PH_LOOKUP: lookup_next(ft); break;
    case PH_JARS: submit(ft); break;
    case PH_TRACK: call_job(ft, PH_TRACK, "GET", "", NULL); break;
    case PH_WAIT_END: call_job(ft, PH_WAIT_END, "GET", "", NULL); break;
    case PH_CANCEL: call_job(ft, PH_CANCEL, "PATCH", "?mode=cancel", NULL); break;
    case PH_SAVEPOINT:
      snprintf(path, sizeof path, "/savepoints/%s", ft->trigger);
      call_job(ft, PH_SAVEPOINT, "GET", path, NULL);
      break;
    default: break;
  }
}

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
  const char *field = ft->spec->program == MU_FLINK_PROGRAM_JAR ? "jar"
                      : ft->spec->program == MU_FLINK_PROGRAM_PYTHON ? "python" : "sql_script";
  size_t len = strlen(task_dir) + strlen(name) + 2;
  if ((ft->program_path = malloc(len)) == NULL) return -ENOMEM;
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
static const char *earlier_param(const muster_task_context *ctx, const char *param) {
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
  const muster_task_context *ctx = host->context(task);
  int rc = mu_flink_spec_parse(ctx->spec_json, ctx->config_json, &ft->spec, errbuf);
  if (rc != 0) return rc;
  if ((rc = resolve_program(ft, ctx->task_dir, errbuf)) != 0) return rc;
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
    add_candidate(ft, earlier_param(ctx, "job_id"));
    for (uint32_t a = ctx->attempt - 1; a >= 1 && ft->n_candidates < FLINK_MAX_LOOKBACK; a--) {
      char id[MU_FLINK_JOB_ID_LEN + 1];
      mu_flink_job_id_derive(ctx->task_id, a, id);
      add_candidate(ft, id);
    }
  }
  if (ft->base[0] == '\0') { /* no REST yet: a CLI target submits, then tracks where the CLI says */
    const char *app = earlier_param(ctx, "yarn_app_id");
    if (app != NULL && strlen(app) < sizeof ft->app_id && ft->spec->yarn_rm_url != NULL) {
      snprintf(ft->app_id, sizeof ft->app_id, "%s", app);
      if (ask_rm(ft, PH_RM_START, PH_LOOKUP)) return 0;
    }
    start_cli(ft);
    return 0;
  }
  lookup_next(ft);
  return 0;
}

static void flink_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  flink_task *ft = host->user_data(task);
  if (ft == NULL || ft->finished) return;
  if (reason == MUSTER_CANCEL_SHUTDOWN) {
    /* an agent restart never stops a Flink job: the next attempt re-attaches by JobID */
    end(ft, MUSTER_STATE_CANCELLED, "flink: agent stopping; job %s left %s on the cluster",
        ft->job_id[0] ? ft->job_id : ft->own_id, ft->job_id[0] ? mu_flink_job_state_name(ft->last_state) : "as submitted");
    return;
  }
  if (ft->job_id[0] == '\0') {
    if (ft->proc != NULL) { /* the CLI was killed by the agent; its exit ends the task */
      ft->cancelling = true;
      ft->cancel_reason = reason;
      return;
    }
    bool run_in_flight = ft->ph == PH_RUN;
    end(ft, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
        "flink: cancelled before the job was submitted%s", run_in_flight ? " (the run call was aborted)" : "");
    return;
  }
  if (ft->upgrading) {
    end(ft, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
        "flink: cancelled during the upgrade: the old job %s was being stopped (last seen %s); the new version was "
        "not started", ft->job_id, mu_flink_job_state_name(ft->last_state));
    return;
  }
  if (ft->cancelling) return;
  ft->cancelling = true;
  ft->cancel_reason = reason;
  ft->plain_fallback = false;
  if (host->size >= offsetof(muster_host_api, cancel_extend) + sizeof(void *) && host->cancel_extend != NULL) {
    uint64_t budget = (uint64_t)ft->spec->savepoint_timeout_ms + 2 * (uint64_t)ft->spec->unreachable_ms + 10000;
    host->cancel_extend(task, budget);
  }
  start_cancel_action(ft);
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
