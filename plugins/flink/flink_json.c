/* Readers for the JobManager's REST replies (flink_json.h). Wire names follow the notes: the
 * dashed keys ("start-time", "request-id", "failure-cause") and the underscore keys of the
 * checkpoint statistics ("external_path", "end_to_end_duration"). Anything off the network is
 * treated as hostile: types are checked, copies are bounded, control characters are replaced. */
#include "flink_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flink_spec.h"

static const char *const state_names[] = {
    "UNKNOWN",    "INITIALIZING", "CREATED",  "RUNNING",    "FAILING",   "FAILED",
    "CANCELLING", "CANCELED",     "FINISHED", "RESTARTING", "SUSPENDED", "RECONCILING",
};

mu_flink_job_state mu_flink_job_state_parse(const char *name) {
  for (size_t i = 1; i < sizeof state_names / sizeof state_names[0]; i++)
    if (name != NULL && strcmp(name, state_names[i]) == 0) return (mu_flink_job_state)i;
  return MU_FLINK_JOB_UNKNOWN;
}

const char *mu_flink_job_state_name(mu_flink_job_state s) {
  return (size_t)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "UNKNOWN";
}

bool mu_flink_job_state_terminal(mu_flink_job_state s) {
  return s == MU_FLINK_JOB_FINISHED || s == MU_FLINK_JOB_FAILED || s == MU_FLINK_JOB_CANCELED;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

/* Copies a JSON string into a bounded buffer, control characters as '?'. */
static void copy_text(char *ret, size_t size, const char *s, size_t len) {
  if (size == 0) return;
  size_t n = len < size - 1 ? len : size - 1;
  for (size_t i = 0; i < n; i++) ret[i] = (unsigned char)s[i] < 0x20 && s[i] != '\t' ? '?' : s[i];
  ret[n] = '\0';
}

static json_t *load(const char *body, size_t len, const char *what, char *err, size_t errlen) {
  json_error_t jerr;
  json_t *j = json_loadb(body, len, 0, &jerr);
  if (j == NULL) {
    fail(err, errlen, "%s: not JSON (%s at byte %d)", what, jerr.text, jerr.position);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    fail(err, errlen, "%s: not a JSON object", what);
    return NULL;
  }
  return j;
}

static const char *str(json_t *o, const char *key, size_t *ret_len) {
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v)) return NULL;
  if (ret_len != NULL) *ret_len = json_string_length(v);
  return json_string_value(v);
}

static int64_t num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  if (json_is_real(v)) return (int64_t)json_real_value(v);
  return -1;
}

/* A jar id is a path segment of later URLs: printable, no spaces, nothing URL-special. */
static bool jar_id_ok(const char *id, size_t size) {
  if (*id == '\0' || strlen(id) >= size) return false;
  for (const char *p = id; *p; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("/?#%\\", *p) != NULL) return false;
  return true;
}

/* The first line of a (Java) text: "java.lang.X: message". */
static void first_line(char *ret, size_t size, const char *s, size_t len) {
  const char *nl = memchr(s, '\n', len);
  copy_text(ret, size, s, nl != NULL ? (size_t)(nl - s) : len);
  size_t n = strlen(ret);
  while (n > 0 && (ret[n - 1] == '\r' || ret[n - 1] == ' ')) ret[--n] = '\0';
}

bool mu_flink_json_errors(const char *body, size_t len, char *ret, size_t size) {
  json_error_t jerr;
  if (size > 0) ret[0] = '\0';
  json_t *j = json_loadb(body, len, 0, &jerr);
  json_t *errs = json_is_object(j) ? json_object_get(j, "errors") : NULL;
  if (!json_is_array(errs)) {
    json_decref(j);
    return false;
  }
  size_t i, used = 0;
  json_t *e;
  json_array_foreach(errs, i, e) {
    if (!json_is_string(e) || used + 3 >= size) continue;
    char line[MU_FLINK_TEXT_MAX];
    first_line(line, sizeof line, json_string_value(e), json_string_length(e));
    /* Flink puts the cause on later lines as "<Exception on server side:\n...>": keep the
     * first line that says something */
    if (strncmp(line, "<Exception on server side", 25) == 0) {
      const char *s = json_string_value(e), *nl = strchr(s, '\n');
      if (nl != NULL) first_line(line, sizeof line, nl + 1, strlen(nl + 1));
    }
    used += (size_t)snprintf(ret + used, size - used, "%s%s", used ? "; " : "", line);
    if (used >= size) used = size - 1;
  }
  json_decref(j);
  return true;
}

int mu_flink_json_upload(const char *body, size_t len, char *ret_id, size_t size, char *err, size_t errlen) {
  json_t *j = load(body, len, "jar upload reply", err, errlen);
  if (j == NULL) return -EINVAL;
  size_t n = 0;
  const char *fn = str(j, "filename", &n);
  const char *status = str(j, "status", NULL);
  int rc = 0;
  if (fn == NULL || n == 0 || strlen(fn) != n) {
    rc = fail(err, errlen, "jar upload reply: no \"filename\"");
  } else if (status != NULL && strcmp(status, "success") != 0) {
    rc = fail(err, errlen, "jar upload reply: status \"%.64s\"", status);
  } else {
    const char *base = strrchr(fn, '/');
    base = base != NULL ? base + 1 : fn;
    if (!jar_id_ok(base, size)) rc = fail(err, errlen, "jar upload reply: bad jar id in \"%.128s\"", fn);
    else copy_text(ret_id, size, base, strlen(base));
  }
  json_decref(j);
  return rc;
}

int mu_flink_json_jar_find(const char *body, size_t len, const char *name, char *ret_id, size_t size, char *err,
                           size_t errlen) {
  json_t *j = load(body, len, "jar list", err, errlen);
  if (j == NULL) return -EINVAL;
  json_t *files = json_object_get(j, "files");
  int rc = -ENOENT;
  if (!json_is_array(files)) {
    rc = fail(err, errlen, "jar list: no \"files\"");
  } else {
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
      const char *id = json_is_object(f) ? str(f, "id", NULL) : NULL;
      const char *nm = json_is_object(f) ? str(f, "name", NULL) : NULL;
      if (id == NULL || nm == NULL || strcmp(nm, name) != 0) continue;
      if (!jar_id_ok(id, size)) continue;
      copy_text(ret_id, size, id, strlen(id));
      rc = 0;
      break;
    }
  }
  json_decref(j);
  return rc;
}

int mu_flink_json_run(const char *body, size_t len, char *ret_job_id, char *err, size_t errlen) {
  json_t *j = load(body, len, "jar run reply", err, errlen);
  if (j == NULL) return -EINVAL;
  const char *id = str(j, "jobid", NULL);
  int rc = 0;
  if (id == NULL || !mu_flink_job_id_valid(id)) rc = fail(err, errlen, "jar run reply: no valid \"jobid\"");
  else memcpy(ret_job_id, id, MU_FLINK_JOB_ID_LEN + 1);
  json_decref(j);
  return rc;
}

int mu_flink_json_job(const char *body, size_t len, mu_flink_job_info *ret, char *err, size_t errlen) {
  memset(ret, 0, sizeof *ret);
  json_t *j = load(body, len, "job details", err, errlen);
  if (j == NULL) return -EINVAL;
  size_t n = 0;
  const char *state = str(j, "state", &n);
  int rc = 0;
  if (state == NULL) {
    rc = fail(err, errlen, "job details: no \"state\"");
  } else {
    copy_text(ret->state_name, sizeof ret->state_name, state, n);
    ret->state = mu_flink_job_state_parse(ret->state_name);
    ret->start_time_ms = num(j, "start-time");
    ret->duration_ms = num(j, "duration");
    const char *name = str(j, "name", &n);
    if (name != NULL) copy_text(ret->name, sizeof ret->name, name, n);
  }
  json_decref(j);
  return rc;
}

int mu_flink_json_trigger(const char *body, size_t len, char *ret_id, size_t size, char *err, size_t errlen) {
  json_t *j = load(body, len, "savepoint trigger reply", err, errlen);
  if (j == NULL) return -EINVAL;
  const char *id = str(j, "request-id", NULL);
  int rc = 0;
  if (id == NULL || !mu_flink_job_id_valid(id) || strlen(id) >= size)
    rc = fail(err, errlen, "savepoint trigger reply: no valid \"request-id\"");
  else copy_text(ret_id, size, id, strlen(id));
  json_decref(j);
  return rc;
}

/* failure-cause {class, stack-trace, serialized-throwable}: the class and the first line of the
 * trace (which repeats the class with its message). */
static void failure_text(json_t *cause, char *ret, size_t size) {
  size_t n = 0;
  const char *trace = json_is_object(cause) ? str(cause, "stack-trace", &n) : NULL;
  const char *cls = json_is_object(cause) ? str(cause, "class", NULL) : NULL;
  ret[0] = '\0';
  if (trace != NULL && n > 0) first_line(ret, size, trace, n);
  if (ret[0] == '\0' && cls != NULL) copy_text(ret, size, cls, strlen(cls));
  if (ret[0] == '\0') snprintf(ret, size, "the savepoint failed (no cause given)");
}

int mu_flink_json_savepoint(const char *body, size_t len, mu_flink_savepoint_info *ret, char *err, size_t errlen) {
  memset(ret, 0, sizeof *ret);
  json_t *j = load(body, len, "savepoint status", err, errlen);
  if (j == NULL) return -EINVAL;
  json_t *status = json_object_get(j, "status");
  const char *id = json_is_object(status) ? str(status, "id", NULL) : NULL;
  json_t *op = json_object_get(j, "operation");
  int rc = 0;
  if (id == NULL) {
    rc = fail(err, errlen, "savepoint status: no \"status\".\"id\"");
  } else if (strcmp(id, "IN_PROGRESS") == 0) {
    ret->status = MU_FLINK_OP_IN_PROGRESS;
  } else if (strcmp(id, "COMPLETED") != 0) {
    rc = fail(err, errlen, "savepoint status: unknown status \"%.32s\"", id);
  } else if (json_is_object(op) && json_object_get(op, "failure-cause") != NULL) {
    ret->status = MU_FLINK_OP_FAILED;
    failure_text(json_object_get(op, "failure-cause"), ret->failure, sizeof ret->failure);
  } else {
    size_t n = 0;
    const char *loc = json_is_object(op) ? str(op, "location", &n) : NULL;
    if (loc == NULL || n == 0) {
      rc = fail(err, errlen, "savepoint status: COMPLETED without a location or a failure-cause");
    } else {
      ret->status = MU_FLINK_OP_COMPLETED;
      copy_text(ret->location, sizeof ret->location, loc, n);
    }
  }
  json_decref(j);
  return rc;
}

int mu_flink_json_checkpoints(const char *body, size_t len, mu_flink_checkpoint_info *ret, char *err, size_t errlen) {
  memset(ret, 0, sizeof *ret);
  ret->latest_id = ret->latest_duration_ms = ret->latest_timestamp_ms = -1;
  json_t *j = load(body, len, "checkpoint statistics", err, errlen);
  if (j == NULL) return -EINVAL;
  json_t *counts = json_object_get(j, "counts");
  int rc = 0;
  if (!json_is_object(counts)) {
    rc = fail(err, errlen, "checkpoint statistics: no \"counts\"");
  } else {
    ret->completed = num(counts, "completed");
    ret->failed = num(counts, "failed");
    ret->in_progress = num(counts, "in_progress");
    ret->restored = num(counts, "restored");
    ret->total = num(counts, "total");
    json_t *latest = json_object_get(j, "latest");
    json_t *done = json_is_object(latest) ? json_object_get(latest, "completed") : NULL;
    if (json_is_object(done)) {
      size_t n = 0;
      const char *path = str(done, "external_path", &n);
      if (path != NULL) copy_text(ret->latest_path, sizeof ret->latest_path, path, n);
      ret->latest_id = num(done, "id");
      ret->latest_duration_ms = num(done, "end_to_end_duration");
      ret->latest_timestamp_ms = num(done, "latest_ack_timestamp");
    }
    json_t *failed = json_is_object(latest) ? json_object_get(latest, "failed") : NULL;
    size_t n = 0;
    const char *msg = json_is_object(failed) ? str(failed, "failure_message", &n) : NULL;
    if (msg != NULL) first_line(ret->latest_failure, sizeof ret->latest_failure, msg, n);
  }
  json_decref(j);
  return rc;
}

int mu_flink_json_exceptions(const char *body, size_t len, char *ret, size_t size, char *err, size_t errlen) {
  if (size > 0) ret[0] = '\0';
  json_t *j = load(body, len, "job exceptions", err, errlen);
  if (j == NULL) return -EINVAL;
  size_t n = 0;
  const char *root = str(j, "root-exception", &n);
  int rc = 0;
  if (root != NULL && n > 0) {
    first_line(ret, size, root, n);
  } else {
    json_t *hist = json_object_get(j, "exceptionHistory");
    json_t *entries = json_is_object(hist) ? json_object_get(hist, "entries") : NULL;
    json_t *e = json_is_array(entries) ? json_array_get(entries, 0) : NULL;
    const char *trace = json_is_object(e) ? str(e, "stacktrace", &n) : NULL;
    const char *name = json_is_object(e) ? str(e, "exceptionName", NULL) : NULL;
    if (trace != NULL && n > 0) first_line(ret, size, trace, n);
    else if (name != NULL) copy_text(ret, size, name, strlen(name));
    else rc = fail(err, errlen, "job exceptions: none reported");
  }
  json_decref(j);
  return rc;
}

int mu_flink_json_yarn_app(const char *body, size_t len, mu_flink_yarn_app *ret, char *err, size_t errlen) {
  memset(ret, 0, sizeof *ret);
  json_t *j = load(body, len, "YARN application report", err, errlen);
  if (j == NULL) return -EINVAL;
  json_t *app = json_object_get(j, "app");
  size_t n = 0, m = 0;
  const char *state = json_is_object(app) ? str(app, "state", &n) : NULL;
  const char *final = json_is_object(app) ? str(app, "finalStatus", &m) : NULL;
  int rc = 0;
  if (state == NULL) {
    rc = fail(err, errlen, "YARN application report: no \"app\".\"state\"");
  } else {
    copy_text(ret->state, sizeof ret->state, state, n);
    if (final != NULL) copy_text(ret->final_status, sizeof ret->final_status, final, m);
    ret->ended =
        strcmp(ret->state, "FINISHED") == 0 || strcmp(ret->state, "FAILED") == 0 || strcmp(ret->state, "KILLED") == 0;
  }
  json_decref(j);
  return rc;
}
