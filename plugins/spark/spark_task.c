/* One Spark task attempt's state (spark_task, shared by the plugin's files) and what every part
 * of it does: output lines with secrets masked, params (the app id with the control-plane
 * handle, then RUNNING), the handle file, the task's end, and which cluster manager it talks to. */
#include "spark_task.h"

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

static void on_saved(void *arg, int rc, const char *msg);

uint64_t spark_now_ms(void) { return uv_hrtime() / 1000000u; }

void spark_say(spark_task *st, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  char *clean = st->spec ? mu_spark_mask(st->spec, line, (size_t)n, NULL) : NULL;
  st->host->emit_output(st->task, MUSTER_STDERR, clean ? clean : line, clean ? strlen(clean) : (size_t)n);
  free(clean);
}

void spark_free_task(spark_task *st) {
  free(st->op_out);
  free(st->fetched_path);
  mu_spark_spec_free(st->spec);
  mu_spark_scan_free(st->scan);
  free(st->app_name);
  free(st->sql_path);
  free(st);
}

void spark_save_handle(spark_task *st, mu_spark_h_phase phase) {
  st->h.phase = phase;
  if (st->handle_path[0] != '\0' &&
      mu_spark_handle_save(st->host->loop(st->task), st->handle_path, &st->h, on_saved, st) == 0) {
    st->pending_saves++;
    return;
  }
  if (st->app_id_param_pending) { /* nothing to wait for */
    st->app_id_param_pending = false;
    spark_set_param(st, "app_id", st->h.app_id);
  }
}

void spark_stop_submit_timer(spark_task *st) {
  if (st->submit_timer != NULL) st->host->timer_stop(st->task, st->submit_timer);
  st->submit_timer = NULL;
}

void spark_stop_work(spark_task *st) {
  spark_stop_submit_timer(st);
  mu_spark_fetch_cancel(st->fetch);
  st->fetch = NULL;
  if (st->call != NULL) mu_spark_call_cancel(st->call);
  st->call = NULL;
  if (st->op_proc != NULL) st->host->proc_kill(st->task, st->op_proc); /* its exit callback still runs */
  st->op_proc = NULL;
  st->call_kind = CALL_NONE;
  if (st->timer != NULL) st->host->timer_stop(st->task, st->timer);
  st->timer = NULL;
}

void spark_end(spark_task *st, muster_state state, const char *fmt, ...) {
  if (st->finished) return;
  st->finished = true;
  st->stage = ST_ENDED;
  spark_stop_work(st);
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char *clean = st->spec ? mu_spark_mask(st->spec, msg, strlen(msg), NULL) : NULL;
  muster_result r = {state, st->proc_exited ? st->exit_code : -1, st->proc_exited ? st->exit_signal : 0,
                     clean ? clean : msg};
  if (state != MUSTER_STATE_SUCCEEDED) st->host->log(st->task, MUSTER_LOG_INFO, "%s", r.message);
  st->host->finish(st->task, &r);
  free(clean);
}

void spark_end_app(spark_task *st, muster_state state, const char *fmt, ...) {
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (st->h.phase != 0) spark_save_handle(st, MU_SPARK_H_DONE);
  if (st->h.app_id[0] != '\0' && !st->finished) spark_set_param(st, "ended", st->h.app_id); /* a retry submits anew */
  spark_end(st, state, "%s", msg);
}

static void on_saved(void *arg, int rc, const char *msg) {
  spark_task *st = arg;
  st->pending_saves--;
  if (st->cleaned) {
    if (st->pending_saves == 0) spark_free_task(st);
    return;
  }
  if (st->app_id_param_pending && !st->finished) {
    st->app_id_param_pending = false;
    spark_set_param(st, "app_id", st->h.app_id);
  }
  if (rc != 0) {
    st->host->log(st->task, MUSTER_LOG_WARN, "application handle not saved: %s", msg);
    if (!st->finished && st->h.phase == MU_SPARK_H_SUBMITTING && st->spec->cluster)
      spark_end(st, MUSTER_STATE_FAILED,
                "spark: cannot persist the application handle (%s); not submitting an application that could not be "
                "re-attached",
                msg);
  }
}

void spark_set_param(spark_task *st, const char *key, const char *value) {
  if (value == NULL || *value == '\0') return;
  int rc = st->host->set_param(st->task, key, value);
  if (rc != 0) st->host->log(st->task, MUSTER_LOG_WARN, "param %s not set (%d)", key, rc);
  if (strcmp(key, "app_id") == 0) {
    /* the handle for the control plane: a retry, on this agent or another, gets its earlier
     * attempts' params and re-attaches by it (spark_handle_param) */
    char hv[600];
    snprintf(hv, sizeof hv, "%u %s %s %s", st->host->context(st->task)->attempt, st->h.kind, st->h.tag, value);
    rc = st->host->set_param(st->task, "handle", hv);
    if (rc != 0) st->host->log(st->task, MUSTER_LOG_WARN, "param handle not set (%d)", rc);
    /* RUNNING only now: the control plane persists the handle param before it acks it, and
     * the agent sends events in order, so no one sees the task running without its handle */
    if (st->running_held) {
      st->running_held = false;
      st->host->report_running(st->task);
    }
  }
}

bool spark_is_yarn(const spark_task *st) { return strcmp(st->h.kind, "yarn") == 0; }

bool spark_is_standalone(const spark_task *st) { return strcmp(st->h.kind, "standalone") == 0; }

bool spark_is_livy(const spark_task *st) { return strcmp(st->h.kind, "livy") == 0; }

bool spark_is_k8s(const spark_task *st) { return strcmp(st->h.kind, "k8s") == 0; }

/* A Livy batch id: decimal digits. */
static bool is_batch_id(const char *id) {
  if (*id == '\0') return false;
  for (; *id; id++)
    if (*id < '0' || *id > '9') return false;
  return true;
}

size_t spark_n_rms(const spark_task *st) { return st->spec->yarn_rm_urls.n; }

const char *spark_rm_base(const spark_task *st) {
  if (st->rm_redirect[0] != '\0') return st->rm_redirect;
  return spark_n_rms(st) > 0 ? st->spec->yarn_rm_urls.items[st->rm_index % spark_n_rms(st)] : "";
}

void spark_rm_rotate(spark_task *st) {
  st->rm_redirect[0] = '\0';
  if (spark_n_rms(st) > 0) st->rm_index = (st->rm_index + 1) % spark_n_rms(st);
}

/* scheme://host:port of a Location header */
void spark_origin_of(const char *url, char *buf, size_t size) {
  const char *p = strstr(url, "://");
  const char *slash = p ? strchr(p + 3, '/') : NULL;
  size_t n = slash ? (size_t)(slash - url) : strlen(url);
  snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), url);
}

bool spark_trackable(const spark_task *st) {
  if (st->h.app_id[0] == '\0') return false;
  if (spark_is_yarn(st)) return spark_n_rms(st) > 0;
  if (spark_is_standalone(st)) return st->spec->rest_url != NULL && strncmp(st->h.app_id, "driver-", 7) == 0;
  if (spark_is_livy(st)) return st->spec->livy_url != NULL && is_batch_id(st->h.app_id);
  if (spark_is_k8s(st)) return st->spec->cluster && strchr(st->h.app_id, ':') != NULL;
  return false;
}

/* Whether the cluster can be asked for the task's application by its tag: YARN's
 * applicationTags, Livy's batch names, Kubernetes driver pods by label. */
bool spark_searchable(const spark_task *st) {
  return (spark_is_yarn(st) && spark_n_rms(st) > 0) || spark_is_livy(st) ||
         (spark_is_k8s(st) && st->spec->cluster && st->spec->k8s_api_url != NULL);
}

const char *spark_api_base(const spark_task *st) {
  if (spark_is_yarn(st)) return spark_rm_base(st);
  if (spark_is_livy(st)) return st->spec->livy_url;
  if (spark_is_k8s(st)) return st->spec->k8s_api_url ? st->spec->k8s_api_url : st->spec->master;
  return st->spec->rest_url ? st->spec->rest_url : "";
}

/* SPARK_HOME=… for spark-submit's environment, in buf; NULL when the spec names none. */
const char *spark_home_env(const spark_task *st, char *buf, size_t size) {
  if (st->spec->spark_home == NULL) return NULL;
  snprintf(buf, size, "SPARK_HOME=%s", st->spec->spark_home);
  return buf;
}
