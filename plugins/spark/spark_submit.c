/* The submission surfaces: spark-submit / spark-sql as a supervised process (its own output names
 * the application id), the standalone REST create call and Livy's POST /batches; the "submitting"
 * handle is durable before any of them starts, the id's handle before it is reported. */
#define _GNU_SOURCE /* asprintf */
#include "spark_submit.h"

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
#include "spark_reattach.h"

static void on_submitting_saved(void *arg, int rc, const char *msg);

/* The id is the task's handle: durable before it is reported, then tracked (or killed when a
 * cancel came while the create call was out). */
static void submitted(spark_task *st, const char *id, const char *where) {
  snprintf(st->h.app_id, sizeof st->h.app_id, "%s", id);
  spark_say(st, "spark: submitted %s to %s", st->h.app_id, where);
  st->app_id_param_pending = true; /* reported once the handle is durable (on_saved) */
  spark_save_handle(st, MU_SPARK_H_SUBMITTED);
  if (st->cancelling) spark_begin_kill(st);
  else spark_begin_tracking(st);
}

/* POST /batches: 201 Created with the Batch (older servers 200). */
void spark_handle_livy_create_reply(spark_task *st, const mu_spark_reply *r) {
  mu_spark_livy_batch b;
  char why[MU_SPARK_TEXT_MAX], text[300];
  if (r->status >= 500 || r->error != NULL) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    if (++st->create_tries < SPARK_LIVY_CREATE_TRIES && !st->cancelling) {
      /* the batch may exist all the same: look for it by tag, then submit only if it does not */
      spark_say(st, "spark: POST %s/batches: %s%s; looking for the batch by tag %s before trying again",
                st->spec->livy_url, r->error ? "" : "HTTP 5xx: ", r->error ? r->error : text, st->task_tag);
      st->stage = ST_PREPARING;
      st->poll_errors = 0;
      spark_track_next(st, (uint64_t)st->spec->poll_ms);
      return;
    }
    if (r->error != NULL) snprintf(text, sizeof text, "%s", r->error);
    spark_end(st, MUSTER_STATE_FAILED,
              "spark: POST %s/batches: %s%s (after %u tries; a batch it may have created is tagged %s)",
              st->spec->livy_url, r->error ? "" : "HTTP 5xx: ", text, st->create_tries, st->task_tag);
    return;
  }
  if ((r->status != 201 && r->status != 200) || mu_spark_livy_batch_parse(r->body, r->len, &b, why) != 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    spark_end(st, MUSTER_STATE_FAILED, "spark: POST %s/batches: HTTP %ld: %s", st->spec->livy_url, r->status,
              r->status == 201 || r->status == 200 ? why : text);
    return;
  }
  if (b.app_id[0] != '\0') spark_set_param(st, "yarn_app_id", b.app_id);
  if (b.spark_ui_url[0] != '\0' && !st->params_sent_ui) {
    st->params_sent_ui = true;
    spark_set_param(st, "ui_url", b.spark_ui_url);
  }
  char where[1200];
  snprintf(where, sizeof where, "%s as batch %s (state %s)", st->spec->livy_url, b.id, b.state);
  submitted(st, b.id, where);
}

void spark_handle_create_reply(spark_task *st, const mu_spark_reply *r) {
  if (spark_is_livy(st)) {
    spark_handle_livy_create_reply(st, r);
    return;
  }
  mu_spark_rest_reply rep;
  char why[MU_SPARK_TEXT_MAX], text[300];
  if (r->status != 200 || mu_spark_rest_parse(r->body, r->len, &rep, why) != 0) {
    mu_spark_error_text(r->body, r->len, text, sizeof text);
    spark_end(st, MUSTER_STATE_FAILED, "spark: POST %s/v1/submissions/create: HTTP %ld: %s", st->spec->rest_url,
              r->status, r->status == 200 ? why : text);
    return;
  }
  if (!rep.success || strncmp(rep.submission_id, "driver-", 7) != 0) {
    spark_end(st, MUSTER_STATE_FAILED, "spark: the master refused the submission: %s",
              rep.message[0] ? rep.message : "success: false");
    return;
  }
  submitted(st, rep.submission_id, st->spec->rest_url);
}

/* What spark-submit's own output has said so far: the id becomes the task's handle. */
static void apply_found(spark_task *st) {
  const mu_spark_found *f = mu_spark_scan_found(st->scan);
  const char *id = spark_is_yarn(st)                ? f->yarn_app_id
                   : spark_is_standalone(st)        ? (st->spec->cluster ? f->driver_id : f->standalone_app_id)
                   : strcmp(st->h.kind, "k8s") == 0 ? f->k8s_submission
                                                    : "";
  if (id[0] != '\0' && st->h.app_id[0] == '\0') {
    spark_stop_submit_timer(st);
    snprintf(st->h.app_id, sizeof st->h.app_id, "%s", id);
    st->host->log(st->task, MUSTER_LOG_INFO, "application %s (from spark-submit's own output)", id);
    st->app_id_param_pending = true; /* reported once the handle is durable (on_saved) */
    spark_save_handle(st, MU_SPARK_H_SUBMITTED);
  }
  if (f->tracking_url[0] != '\0' && !st->params_sent_tracking) {
    st->params_sent_tracking = true;
    spark_set_param(st, "tracking_url", f->tracking_url);
  }
  if (f->ui_url[0] != '\0' && !st->params_sent_ui) {
    st->params_sent_ui = true;
    spark_set_param(st, "ui_url", f->ui_url);
  }
}

static void on_output(muster_task *task, muster_proc *proc, muster_stream stream, const void *data, size_t len,
                      void *user) {
  (void)task;
  (void)proc;
  spark_task *st = user;
  if (st->finished || st->scan == NULL || !mu_spark_scan_feed(st->scan, (int)stream, data, len)) return;
  apply_found(st);
}

static void on_proc_exit(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)proc;
  spark_task *st = user;
  st->proc = NULL;
  st->proc_exited = true;
  st->exit_code = x->exit_code;
  st->exit_signal = x->signal;
  snprintf(st->exit_message, sizeof st->exit_message, "%s", x->message ? x->message : "");
  if (st->finished) return;
  if (st->scan != NULL && mu_spark_scan_end(st->scan)) apply_found(st);
  mu_spark_scan_free(st->scan); /* 18 KiB of line buffers, not needed while tracking */
  st->scan = NULL;
  if (st->cancelling) {
    if (st->stage == ST_KILLING) return; /* the cluster kill decides */
    spark_end(st, st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
              "spark: %s", st->cancel_reason == MUSTER_CANCEL_TIMEOUT ? "timed out" : "cancelled");
    return;
  }
  const char *why = x->message && *x->message ? x->message : "";
  if (st->spec->cluster) {
    if (st->h.app_id[0] == '\0') {
      snprintf(st->fail_message, sizeof st->fail_message, "spark: spark-submit printed no application id%s (%s)%s",
               st->submit_timed_out ? " within submit_timeout" : "", *why ? why : "exit 0",
               spark_is_yarn(st) && spark_n_rms(st) > 0 ? "; the ResourceManager has none with this task's tag"
               : spark_searchable(st)                   ? "; Kubernetes has no driver pod with this task's label"
               : spark_is_standalone(st)
                   ? "; a standalone master lists its drivers without their application name or tags (its /json: id, "
                     "state, mainclass, worker), so whether this submission reached it cannot be told: not "
                     "submitting again"
                   : "");
      if (spark_searchable(st)) {
        /* ambiguous: it may have submitted and died before printing the id; ask by tag */
        spark_say(st, "spark: spark-submit printed no application id; looking for one by tag %s", st->task_tag);
        st->lookup_then_fail = true;
        st->stage = ST_PREPARING;
        spark_start_lookup_call(st);
        return;
      }
      /* not end_app: the handle stays "submitting", so a retry cannot tell either and fails closed
       * rather than submitting a second application */
      spark_end(st, MUSTER_STATE_FAILED, "%s", st->fail_message);
      return;
    }
    if (!spark_trackable(st)) {
      spark_end_app(st, x->suggested_state,
                    "spark: %s submitted; no tracking address to follow it (spark-submit exited %d)", st->h.app_id,
                    x->exit_code);
      return;
    }
    spark_say(st, "spark: spark-submit detached; tracking %s", st->h.app_id);
    spark_begin_tracking(st);
    return;
  }
  /* client and local mode: the driver was this process. YARN still says how the app ended. */
  if (spark_is_yarn(st) && spark_trackable(st)) {
    st->stage = ST_TRACKING;
    st->call_kind = CALL_FINAL;
    spark_start_status_call(st);
    return;
  }
  if (x->suggested_state == MUSTER_STATE_SUCCEEDED)
    spark_end_app(st, MUSTER_STATE_SUCCEEDED, "%s%sspark-submit exited 0", st->h.app_id, st->h.app_id[0] ? ": " : "");
  else
    spark_end_app(st, MUSTER_STATE_FAILED, "spark: %s%sspark-submit %s", st->h.app_id, st->h.app_id[0] ? ": " : "",
                  *why ? why : "failed");
}

int spark_write_sql(spark_task *st, const char *task_dir) {
  if (asprintf(&st->sql_path, "%s/.muster-spark.sql", task_dir) < 0) {
    st->sql_path = NULL;
    return -ENOMEM;
  }
  int fd = open(st->sql_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  size_t len = strlen(st->spec->sql);
  int rc = fd >= 0 && write(fd, st->spec->sql, len) == (ssize_t)len ? 0 : -errno;
  if (fd >= 0) close(fd);
  return rc;
}

/* spark-submit named no application within submit_timeout: stop it; its exit then asks the
 * cluster by tag (YARN) whether it submitted one anyway. */
static void on_submit_timeout(muster_task *task, muster_timer *timer, void *user) {
  (void)task;
  (void)timer;
  spark_task *st = user;
  st->submit_timer = NULL; /* one-shot: released by the host */
  if (st->finished || st->h.app_id[0] != '\0' || st->proc == NULL) return;
  st->submit_timed_out = true;
  spark_say(st, "spark: no application id after submit_timeout (%lld ms); stopping spark-submit",
            (long long)st->spec->submit_ms);
  st->host->proc_kill(st->task, st->proc);
}

static void launch_submit(spark_task *st) {
  const muster_task_context *ctx = st->host->context(st->task);
  mu_spark_submit_ctx sc = {.task_dir = ctx->task_dir,
                            .app_resource = st->fetched_path,
                            .sql_file = st->sql_path,
                            .task_tag = st->task_tag,
                            .attempt_tag = st->attempt_tag,
                            .app_name = st->app_name};
  mu_spark_argv av;
  char err[MUSTER_ERRBUF_SIZE] = "";
  if (mu_spark_build_argv(st->spec, &sc, &av, err) != 0) {
    spark_end(st, MUSTER_STATE_FAILED, "%s", err);
    return;
  }
  char *shown = mu_spark_argv_display(st->spec, &av);
  spark_say(st, "$ %s", shown ? shown : av.argv[0]);
  st->host->log(st->task, MUSTER_LOG_INFO, "running %s", shown ? shown : av.argv[0]);
  free(shown);
  char home_env[4200];
  const char *env[2] = {spark_home_env(st, home_env, sizeof home_env), NULL};
  muster_spawn_opts o = {.size = sizeof o,
                         .argv = (const char *const *)av.argv,
                         .env = env,
                         .on_exit = on_proc_exit,
                         .user = st,
                         .on_output = on_output};
  if (st->host->spawn(st->task, &o, &st->proc, err) != 0) {
    spark_end_app(st, MUSTER_STATE_FAILED, "spark: cannot start %s: %s", av.argv[0], err);
  } else if (st->spec->cluster && st->host->timer_start(st->task, (uint64_t)st->spec->submit_ms, 0, on_submit_timeout,
                                                        st, &st->submit_timer) != 0) {
    st->submit_timer = NULL;
    st->host->log(st->task, MUSTER_LOG_WARN, "submit_timeout not armed (no timer)");
  }
  mu_spark_argv_free(&av);
}

/* POST base+path with a create body (owned; NULL when it could not be built). */
static void post_create(spark_task *st, const char *base, const char *path, char *body) {
  if (body == NULL) {
    spark_end(st, MUSTER_STATE_FAILED, "spark: out of memory");
    return;
  }
  const mu_spark_spec *s = st->spec;
  char url[2048];
  snprintf(url, sizeof url, "%s%s", base, path);
  spark_say(st, "spark: POST %s (%s%s%s)", url, s->main_class ? s->main_class : "", s->main_class ? ", " : "",
            s->app_resource);
  if (spark_call(st, CALL_CREATE, "POST", url, body) != 0)
    spark_end(st, MUSTER_STATE_FAILED, "spark: cannot call %s", url);
  free(body);
}

static void launch_rest(spark_task *st) {
  const mu_spark_spec *s = st->spec;
  const char **keys = calloc(s->n_conf + 8, sizeof *keys), **vals = calloc(s->n_conf + 8, sizeof *vals);
  char *body = NULL;
  size_t n = 0;
  char num[5][32];
  if (keys != NULL && vals != NULL) {
    for (size_t i = 0; i < s->n_conf; i++) keys[n] = s->conf[i].key, vals[n++] = s->conf[i].value;
    if (s->driver_memory) keys[n] = "spark.driver.memory", vals[n++] = s->driver_memory;
    if (s->executor_memory) keys[n] = "spark.executor.memory", vals[n++] = s->executor_memory;
    if (s->driver_cores)
      snprintf(num[0], 32, "%u", s->driver_cores), keys[n] = "spark.driver.cores", vals[n++] = num[0];
    if (s->executor_cores)
      snprintf(num[1], 32, "%u", s->executor_cores), keys[n] = "spark.executor.cores", vals[n++] = num[1];
    if (s->num_executors) {
      /* a standalone master sizes an application by spark.cores.max */
      snprintf(num[2], 32, "%u", s->num_executors * (s->executor_cores ? s->executor_cores : 1));
      keys[n] = "spark.cores.max", vals[n++] = num[2];
    }
    mu_spark_rest_create c = {.app_resource = s->app_resource,
                              .main_class = s->main_class,
                              .app_name = st->app_name,
                              .app_args = (const char *const *)s->app_args.items,
                              .n_args = s->app_args.n,
                              .prop_keys = keys,
                              .prop_values = vals,
                              .n_props = n,
                              .master = s->master};
    body = mu_spark_rest_create_body(&c);
  }
  free(keys);
  free(vals);
  post_create(st, s->rest_url, "/v1/submissions/create", body);
}

/* POST {livy}/batches: the spec's fields as Livy's batch request; dynamic allocation and the
 * task's tags go in conf (spark.yarn.tags, so a YARN RM can be searched by them too). */
static void launch_livy(spark_task *st) {
  const mu_spark_spec *s = st->spec;
  const char **keys = calloc(s->n_conf + 8, sizeof *keys), **vals = calloc(s->n_conf + 8, sizeof *vals);
  char *body = NULL, num[3][32], tags[2 * MU_SPARK_TAG_MAX + 4];
  if (keys != NULL && vals != NULL) {
    size_t n = 0;
    bool have_tags = false;
    for (size_t i = 0; i < s->n_conf; i++) {
      if (strcmp(s->conf[i].key, "spark.yarn.tags") == 0) have_tags = true;
      keys[n] = s->conf[i].key, vals[n++] = s->conf[i].value;
    }
    if (!have_tags) {
      snprintf(tags, sizeof tags, "%s,%s", st->task_tag, st->attempt_tag);
      keys[n] = "spark.yarn.tags", vals[n++] = tags;
    }
    if (s->dyn_enabled) {
      keys[n] = "spark.dynamicAllocation.enabled", vals[n++] = "true";
      if (s->dyn_min)
        snprintf(num[0], 32, "%u", s->dyn_min), keys[n] = "spark.dynamicAllocation.minExecutors", vals[n++] = num[0];
      if (s->dyn_max)
        snprintf(num[1], 32, "%u", s->dyn_max), keys[n] = "spark.dynamicAllocation.maxExecutors", vals[n++] = num[1];
      if (s->dyn_initial)
        snprintf(num[2], 32, "%u", s->dyn_initial), keys[n] = "spark.dynamicAllocation.initialExecutors",
                                                    vals[n++] = num[2];
    }
    mu_spark_livy_create c = {.file = s->app_resource,
                              .class_name = s->main_class,
                              .name = st->app_name,
                              .queue = s->queue,
                              .driver_memory = s->driver_memory,
                              .executor_memory = s->executor_memory,
                              .driver_cores = s->driver_cores,
                              .executor_cores = s->executor_cores,
                              .num_executors = s->num_executors,
                              .args = (const char *const *)s->app_args.items,
                              .n_args = s->app_args.n,
                              .jars = (const char *const *)s->jars.items,
                              .n_jars = s->jars.n,
                              .py_files = (const char *const *)s->py_files.items,
                              .n_py_files = s->py_files.n,
                              .files = (const char *const *)s->files.items,
                              .n_files = s->files.n,
                              .archives = (const char *const *)s->archives.items,
                              .n_archives = s->archives.n,
                              .conf_keys = keys,
                              .conf_values = vals,
                              .n_conf = n,
                              .proxy_user = s->proxy_user};
    body = mu_spark_livy_create_body(&c);
  }
  free(keys);
  free(vals);
  post_create(st, s->livy_url, "/batches", body);
}

static void on_fetched(void *arg, int rc, const char *msg) {
  spark_task *st = arg;
  st->fetch = NULL; /* freed by the fetch after this returns */
  if (st->finished) return;
  if (rc != 0) {
    spark_end_app(st, MUSTER_STATE_FAILED, "spark.app_resource: %s: %s", st->spec->app_resource, msg);
    return;
  }
  spark_say(st, "spark: fetched %s (%s)", st->spec->app_resource, msg);
  launch_submit(st);
}

/* An app_resource URL: fetched into the task dir and checked against app_resource_sha256
 * before spark-submit sees it. The file keeps the URL's base name (spark-submit goes by the
 * extension). */
static void fetch_resource(spark_task *st) {
  const char *url = st->spec->app_resource;
  const char *stop = url + strcspn(url, "?#");
  const char *base = stop;
  while (base > url && base[-1] != '/') base--;
  char name[128];
  size_t n = 0;
  for (const char *p = base; p < stop && n + 1 < sizeof name; p++)
    name[n++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
  name[n] = '\0';
  if (n == 0 || name[0] == '.')
    snprintf(name, sizeof name, "app%s", st->spec->program == MU_SPARK_PYTHON ? ".py" : ".jar");
  if (asprintf(&st->fetched_path, "%s/.muster-spark-%s", st->host->context(st->task)->task_dir, name) < 0) {
    st->fetched_path = NULL;
    spark_end(st, MUSTER_STATE_FAILED, "spark: out of memory");
    return;
  }
  long timeout = st->spec->timeout_ms > 0 ? (long)st->spec->timeout_ms : 30L * 60 * 1000;
  char msg[512];
  spark_say(st, "spark: fetching %s", url);
  if (mu_spark_fetch_start(st->host->loop(st->task), url, st->fetched_path, st->spec->app_resource_sha256, 0, timeout,
                           on_fetched, st, &st->fetch, msg) != 0)
    spark_end_app(st, MUSTER_STATE_FAILED, "spark.app_resource: %s: %s", url, msg);
}

/* Writes the "submitting" handle (durably), then submits. */
void spark_submit(spark_task *st) {
  st->stage = ST_SUBMITTING;
  st->h.app_id[0] = '\0';
  snprintf(st->h.tag, sizeof st->h.tag, "%s", st->task_tag); /* a lookup may have used an earlier placement's */
  st->h.attempt = st->host->context(st->task)->attempt;
  st->h.phase = MU_SPARK_H_SUBMITTING;
  st->pending_saves++; /* balanced in on_submitting_saved */
  if (st->handle_path[0] == '\0') on_submitting_saved(st, 0, NULL);
  else if (mu_spark_handle_save(st->host->loop(st->task), st->handle_path, &st->h, on_submitting_saved, st) != 0)
    on_submitting_saved(st, -ENOMEM, "out of memory");
}

static void on_submitting_saved(void *arg, int rc, const char *msg) {
  spark_task *st = arg;
  st->pending_saves--;
  if (st->cleaned) {
    if (st->pending_saves == 0) spark_free_task(st);
    return;
  }
  if (st->finished) return;
  if (rc != 0) {
    if (st->spec->cluster) {
      spark_end(st, MUSTER_STATE_FAILED,
                "spark: cannot persist the application handle (%s); not submitting an application that could not be "
                "re-attached "
                "(set MUSTER_SPARK_STATE_DIR on the agent)",
                msg);
      return;
    }
    st->host->log(st->task, MUSTER_LOG_WARN, "application handle not saved (%s); submitting anyway (%s mode)", msg,
                  st->spec->master_kind == MU_SPARK_LOCAL ? "local" : "client");
  }
  if (st->spec->via == MU_SPARK_VIA_REST) launch_rest(st);
  else if (st->spec->via == MU_SPARK_VIA_LIVY) launch_livy(st);
  else if (st->spec->app_resource_is_url) fetch_resource(st);
  else launch_submit(st);
}
