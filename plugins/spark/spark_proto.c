/* Parsing the YARN RM and Spark standalone REST answers (spark_proto.h) with jansson. Every
 * string copied out is bounded by its field's buffer. */
#include "spark_proto.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

bool mu_spark_phase_final(mu_spark_app_phase p) {
  return p == MU_SPARK_APP_SUCCEEDED || p == MU_SPARK_APP_FAILED || p == MU_SPARK_APP_KILLED;
}

const char *mu_spark_phase_name(mu_spark_app_phase p) {
  switch (p) {
    case MU_SPARK_APP_PENDING: return "pending";
    case MU_SPARK_APP_RUNNING: return "running";
    case MU_SPARK_APP_TRANSIENT: return "unknown";
    case MU_SPARK_APP_SUCCEEDED: return "succeeded";
    case MU_SPARK_APP_FAILED: return "failed";
    case MU_SPARK_APP_KILLED: return "killed";
  }
  return "?";
}

static void copy_str(char *dst, size_t size, json_t *v) {
  const char *s = json_string_value(v);
  snprintf(dst, size, "%s", s ? s : "");
}

json_t *mu_spark_json_object(const char *body, size_t len, char *why) {
  json_error_t je;
  json_t *j = json_loadb(body ? body : "", len, 0, &je);
  if (j == NULL) {
    char head[80];
    size_t n = len < sizeof head - 1 ? len : sizeof head - 1;
    for (size_t i = 0; i < n; i++) head[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '.';
    head[n] = '\0';
    snprintf(why, MU_SPARK_TEXT_MAX, "not JSON (%s): \"%s%s\"", je.text, head, len > n ? "…" : "");
    return NULL;
  }
  if (!json_is_object(j)) {
    snprintf(why, MU_SPARK_TEXT_MAX, "not a JSON object");
    json_decref(j);
    return NULL;
  }
  return j;
}

void mu_spark_error_text(const char *body, size_t len, char *buf, size_t size) {
  json_t *j = json_loadb(body ? body : "", len, 0, NULL);
  json_t *re = json_object_get(json_object_get(j, "RemoteException"), "message");
  json_t *msg = json_object_get(j, "message");
  if (!json_is_string(msg)) msg = json_object_get(j, "msg"); /* Livy's errors */
  if (json_is_string(re)) {
    snprintf(buf, size, "%s", json_string_value(re));
  } else if (json_is_string(msg)) {
    snprintf(buf, size, "%s", json_string_value(msg));
  } else { /* text or an HTML error page: its text, tags dropped, spaces folded, at most 200 bytes */
    size_t n = 0, lim = size - 1 < 200 ? size - 1 : 200;
    bool tag = false, space = true;
    for (size_t i = 0; i < len && n < lim; i++) {
      char ch = body[i];
      if (ch == '<') tag = true;
      if (tag) {
        if (ch == '>') tag = false;
        ch = ' ';
      }
      if (ch < 0x20 || ch >= 0x7f) ch = ' ';
      if (ch == ' ' && space) continue;
      space = ch == ' ';
      buf[n++] = ch;
    }
    while (n > 0 && buf[n - 1] == ' ') n--;
    buf[n] = '\0';
  }
  json_decref(j);
}

static void fill_app(json_t *a, mu_spark_yarn_app *r) {
  memset(r, 0, sizeof *r);
  copy_str(r->id, sizeof r->id, json_object_get(a, "id"));
  copy_str(r->state, sizeof r->state, json_object_get(a, "state"));
  copy_str(r->final_status, sizeof r->final_status, json_object_get(a, "finalStatus"));
  copy_str(r->tracking_url, sizeof r->tracking_url, json_object_get(a, "trackingUrl"));
  copy_str(r->diagnostics, sizeof r->diagnostics, json_object_get(a, "diagnostics"));
  copy_str(r->tags, sizeof r->tags, json_object_get(a, "applicationTags"));
  copy_str(r->am_container_logs, sizeof r->am_container_logs, json_object_get(a, "amContainerLogs"));
  json_t *p = json_object_get(a, "progress");
  r->progress = json_is_number(p) ? json_number_value(p) : 0;
  if (!(r->progress >= 0)) r->progress = 0;
  if (r->progress > 100) r->progress = 100;
}

int mu_spark_yarn_app_parse(const char *body, size_t len, mu_spark_yarn_app *ret, char *why) {
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return -1;
  int rc = 0;
  json_t *re = json_object_get(j, "RemoteException");
  json_t *a = json_object_get(j, "app");
  if (json_is_object(re)) {
    const char *ex = json_string_value(json_object_get(re, "exception"));
    snprintf(
        why, MU_SPARK_TEXT_MAX, "%s: %s", ex ? ex : "RemoteException",
        json_string_value(json_object_get(re, "message")) ? json_string_value(json_object_get(re, "message")) : "");
    rc = ex != NULL && strcmp(ex, "NotFoundException") == 0 ? -2 : -1;
  } else if (!json_is_object(a)) {
    snprintf(why, MU_SPARK_TEXT_MAX, "no \"app\" object in the answer");
    rc = -1;
  } else {
    fill_app(a, ret);
    if (ret->state[0] == '\0') {
      snprintf(why, MU_SPARK_TEXT_MAX, "no \"app.state\" in the answer");
      rc = -1;
    }
  }
  json_decref(j);
  return rc;
}

bool mu_spark_tags_have(const char *tags, const char *tag) {
  size_t tl = strlen(tag);
  if (tl == 0) return false;
  for (const char *p = tags; p != NULL && *p;) {
    while (*p == ' ') p++;
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    while (n > 0 && p[n - 1] == ' ') n--;
    if (n == tl && strncasecmp(p, tag, tl) == 0) return true;
    p = c ? c + 1 : NULL;
  }
  return false;
}

int mu_spark_yarn_apps_parse(const char *body, size_t len, const char *tag, mu_spark_yarn_app *ret, int max,
                             char *why) {
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return -1;
  json_t *apps = json_object_get(j, "apps");
  int n = 0;
  if (json_is_null(apps) || (json_is_object(apps) && json_object_get(apps, "app") == NULL)) {
    n = 0; /* {"apps":null} or {"apps":{}}: none */
  } else if (!json_is_object(apps) || !json_is_array(json_object_get(apps, "app"))) {
    snprintf(why, MU_SPARK_TEXT_MAX, "no \"apps.app\" list in the answer");
    n = -1;
  } else {
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(apps, "app"), i, a) {
      if (n >= max) break;
      if (!json_is_object(a)) continue;
      fill_app(a, &ret[n]);
      if (ret[n].id[0] != '\0' && mu_spark_tags_have(ret[n].tags, tag)) n++;
    }
  }
  json_decref(j);
  return n;
}

mu_spark_app_phase mu_spark_yarn_phase(const char *state, const char *fs) {
  if (strcmp(state, "RUNNING") == 0) return MU_SPARK_APP_RUNNING;
  if (strcmp(state, "KILLED") == 0) return MU_SPARK_APP_KILLED;
  if (strcmp(state, "FAILED") == 0) return MU_SPARK_APP_FAILED;
  if (strcmp(state, "FINISHED") == 0) {
    if (strcmp(fs, "SUCCEEDED") == 0) return MU_SPARK_APP_SUCCEEDED;
    if (strcmp(fs, "KILLED") == 0) return MU_SPARK_APP_KILLED;
    return MU_SPARK_APP_FAILED; /* FAILED, or UNDEFINED on a finished app: not a success */
  }
  if (strcmp(state, "NEW") == 0 || strcmp(state, "NEW_SAVING") == 0 || strcmp(state, "SUBMITTED") == 0 ||
      strcmp(state, "ACCEPTED") == 0)
    return MU_SPARK_APP_PENDING;
  return MU_SPARK_APP_TRANSIENT;
}

int mu_spark_yarn_state_parse(const char *body, size_t len, char *buf) {
  json_t *j = json_loadb(body ? body : "", len, 0, NULL);
  json_t *s = json_object_get(j, "state");
  int rc = json_is_string(s) ? 0 : -1;
  snprintf(buf, 32, "%s", rc == 0 ? json_string_value(s) : "");
  json_decref(j);
  return rc;
}

int mu_spark_rest_parse(const char *body, size_t len, mu_spark_rest_reply *ret, char *why) {
  memset(ret, 0, sizeof *ret);
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return -1;
  copy_str(ret->action, sizeof ret->action, json_object_get(j, "action"));
  copy_str(ret->submission_id, sizeof ret->submission_id, json_object_get(j, "submissionId"));
  copy_str(ret->driver_state, sizeof ret->driver_state, json_object_get(j, "driverState"));
  copy_str(ret->message, sizeof ret->message, json_object_get(j, "message"));
  copy_str(ret->worker_host_port, sizeof ret->worker_host_port, json_object_get(j, "workerHostPort"));
  json_t *ok = json_object_get(j, "success");
  ret->has_success = json_is_boolean(ok);
  ret->success = json_is_true(ok);
  int rc = 0;
  if (ret->action[0] == '\0') {
    snprintf(why, MU_SPARK_TEXT_MAX, "no \"action\" in the answer");
    rc = -1;
  }
  json_decref(j);
  return rc;
}

mu_spark_app_phase mu_spark_driver_phase(const char *s) {
  if (strcmp(s, "SUBMITTED") == 0) return MU_SPARK_APP_PENDING;
  if (strcmp(s, "RUNNING") == 0) return MU_SPARK_APP_RUNNING;
  if (strcmp(s, "FINISHED") == 0) return MU_SPARK_APP_SUCCEEDED;
  if (strcmp(s, "FAILED") == 0 || strcmp(s, "ERROR") == 0) return MU_SPARK_APP_FAILED;
  if (strcmp(s, "KILLED") == 0) return MU_SPARK_APP_KILLED;
  return MU_SPARK_APP_TRANSIENT; /* RELAUNCHING, UNKNOWN (master recovering), anything new */
}

char *mu_spark_rest_create_body(const mu_spark_rest_create *c) {
  json_t *args = json_array(), *props = json_object(), *env = json_object();
  for (size_t i = 0; i < c->n_args; i++) json_array_append_new(args, json_string(c->app_args[i]));
  for (size_t i = 0; i < c->n_props; i++) json_object_set_new(props, c->prop_keys[i], json_string(c->prop_values[i]));
  json_object_set_new(props, "spark.app.name", json_string(c->app_name));
  json_object_set_new(props, "spark.master", json_string(c->master));
  json_object_set_new(props, "spark.submit.deployMode", json_string("cluster"));
  if (json_object_get(props, "spark.jars") == NULL)
    json_object_set_new(props, "spark.jars", json_string(c->app_resource));
  json_t *o =
      json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "action", "CreateSubmissionRequest", "appResource",
                c->app_resource, "mainClass", c->main_class, "appArgs", args, "sparkProperties", props,
                "environmentVariables", env, "clientSparkVersion", c->spark_version ? c->spark_version : "3.5.0");
  char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return out;
}

double mu_spark_jobs_progress(const char *body, size_t len) {
  json_t *j = json_loadb(body ? body : "", len, 0, NULL);
  if (!json_is_array(j)) {
    json_decref(j);
    return -1;
  }
  double done = 0, total = 0;
  size_t i;
  json_t *job;
  json_array_foreach(j, i, job) {
    json_t *t = json_object_get(job, "numTasks"), *c = json_object_get(job, "numCompletedTasks");
    if (json_is_integer(t) && json_is_integer(c) && json_integer_value(t) > 0 && json_integer_value(c) >= 0) {
      total += (double)json_integer_value(t);
      double cc = (double)json_integer_value(c);
      done += cc < (double)json_integer_value(t) ? cc : (double)json_integer_value(t);
    }
  }
  json_decref(j);
  return total > 0 ? 100.0 * done / total : -1;
}

mu_spark_app_phase mu_spark_k8s_phase(const char *pod_phase) {
  if (strcmp(pod_phase, "Pending") == 0) return MU_SPARK_APP_PENDING;
  if (strcmp(pod_phase, "Running") == 0) return MU_SPARK_APP_RUNNING;
  if (strcmp(pod_phase, "Succeeded") == 0) return MU_SPARK_APP_SUCCEEDED;
  if (strcmp(pod_phase, "Failed") == 0) return MU_SPARK_APP_FAILED;
  return MU_SPARK_APP_TRANSIENT;
}
