/* Parsing and checking of the Flink task spec (flink_spec.h). Runs at validate() (result
 * thrown away) and at start() (result kept), so both apply the same rules. YARN and Kubernetes
 * options are folded into the -D conf map under Flink's own keys, refusing a conf entry that
 * says otherwise, so the CLI and the REST run see one configuration. Fields are looked up and
 * refused through the SDK's spec_fields.h; the readers below keep Flink's "want ..." wording. */
#include "flink_spec.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"
#include "spec_fields.h"

const char *mu_flink_target_name(mu_flink_target t) {
  switch (t) {
    case MU_FLINK_TARGET_SESSION: return "session";
    case MU_FLINK_TARGET_YARN_APPLICATION: return "yarn-application";
    case MU_FLINK_TARGET_K8S_APPLICATION: return "kubernetes-application";
    case MU_FLINK_TARGET_YARN_PER_JOB: return "yarn-per-job";
    case MU_FLINK_TARGET_LOCAL: return "local";
  }
  return "?";
}

const char *mu_flink_kind_name(mu_flink_kind k) { return k == MU_FLINK_STREAMING ? "streaming" : "batch"; }

bool mu_flink_job_id_valid(const char *id) {
  size_t i = 0;
  for (; id[i] != '\0'; i++)
    if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i])) return false;
  return i == MU_FLINK_JOB_ID_LEN;
}

/* Two FNV-1a 64-bit lanes with different offsets: stable across builds and hosts, which is all
 * an idempotency key needs (no secrecy). */
void mu_flink_job_id_derive(const char *task_run_id, uint32_t attempt, char *ret) {
  uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
  char suffix[16];
  snprintf(suffix, sizeof suffix, "#%u", attempt);
  for (int lane = 0; lane < 2; lane++) {
    for (const char *p = "muster-flink:"; *p; p++) h[lane] = (h[lane] ^ (uint8_t)*p) * 0x100000001b3ull;
    for (const char *p = task_run_id; *p; p++) h[lane] = (h[lane] ^ (uint8_t)*p) * 0x100000001b3ull;
    for (const char *p = suffix; *p; p++) h[lane] = (h[lane] ^ (uint8_t)*p) * 0x100000001b3ull;
    h[lane] ^= h[lane] >> 29;
  }
  snprintf(ret, MU_FLINK_JOB_ID_LEN + 1, "%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
}

/* ---- field readers: each names the field it refuses ---- */

static int get_str(json_t *o, const char *camel, const char *snake, char **ret, char *errbuf) {
  json_t *v = muster_field_get(o, camel, snake);
  *ret = NULL;
  if (v == NULL) return 0;
  if (!json_is_string(v)) return muster_field_fail(errbuf, "flink.%s: want a string", snake);
  const char *s = json_string_value(v);
  if (*s == '\0') return 0;
  if (strlen(s) != json_string_length(v)) return muster_field_fail(errbuf, "flink.%s: contains a NUL byte", snake);
  *ret = strdup(s);
  if (*ret == NULL) return -ENOMEM;
  return 0;
}

static int get_uint(json_t *o, const char *camel, const char *snake, unsigned max, unsigned *ret, char *errbuf) {
  json_t *v = muster_field_get(o, camel, snake);
  *ret = 0;
  if (v == NULL) return 0;
  long long n;
  if (json_is_integer(v)) {
    n = json_integer_value(v);
  } else if (json_is_string(v)) { /* proto3 JSON may quote integers */
    char *end;
    errno = 0;
    n = strtoll(json_string_value(v), &end, 10);
    if (errno != 0 || *end != '\0' || end == json_string_value(v))
      return muster_field_fail(errbuf, "flink.%s: want a whole number", snake);
  } else {
    return muster_field_fail(errbuf, "flink.%s: want a whole number", snake);
  }
  if (n < 0 || n > (long long)max)
    return muster_field_fail(errbuf, "flink.%s: %lld is out of range (0-%u)", snake, n, max);
  *ret = (unsigned)n;
  return 0;
}

static int get_bool(json_t *o, const char *camel, const char *snake, bool *ret, char *errbuf) {
  json_t *v = muster_field_get(o, camel, snake);
  *ret = false;
  if (v == NULL) return 0;
  if (!json_is_boolean(v)) return muster_field_fail(errbuf, "flink.%s: want true or false", snake);
  *ret = json_is_true(v);
  return 0;
}

static int get_duration(json_t *o, const char *camel, const char *snake, int64_t dflt, int64_t *ret, char *errbuf) {
  char *text = NULL;
  int rc = get_str(o, camel, snake, &text, errbuf);
  if (rc != 0) return rc;
  *ret = dflt;
  if (text != NULL && (muster_duration_parse(text, ret) != 0 || *ret <= 0))
    rc = muster_field_fail(errbuf, "flink.%s: bad duration \"%.64s\" (want e.g. 500ms, 30s, 5m)", snake, text);
  free(text);
  return rc;
}

/* A file from the bundle: relative without "..", or absolute (an agent-side path). */
static int check_file(const char *field, const char *path, const char *suffix, char *errbuf) {
  for (const char *p = path; *p; p++)
    if ((unsigned char)*p < 0x20) return muster_field_fail(errbuf, "flink.%s: control character in the path", field);
  const char *p = path;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.')
      return muster_field_fail(errbuf, "flink.%s: \"..\" is not allowed in \"%.128s\"", field, path);
    p += len;
    while (*p == '/') p++;
  }
  size_t n = strlen(path), sl = strlen(suffix);
  if (n <= sl || strcmp(path + n - sl, suffix) != 0)
    return muster_field_fail(errbuf, "flink.%s: \"%.128s\" is not a %s file", field, path, suffix);
  return 0;
}

static bool class_name_ok(const char *s) {
  if (!isalpha((unsigned char)*s) && *s != '_' && *s != '$') return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '$' && *s != '.') return false;
  return true;
}

static int conf_set(mu_flink_spec *s, const char *field, const char *key, const char *value, char *errbuf) {
  for (size_t i = 0; i < s->n_conf; i++) {
    if (strcmp(s->conf[i].key, key) != 0) continue;
    if (strcmp(s->conf[i].value, value) == 0) return 0;
    return muster_field_fail(errbuf, "flink.%s: conflicts with conf %s=%.128s", field, key, s->conf[i].value);
  }
  if (s->n_conf >= MU_FLINK_MAX_ITEMS)
    return muster_field_fail(errbuf, "flink.conf: more than %d entries", MU_FLINK_MAX_ITEMS);
  mu_flink_kv *g = realloc(s->conf, (s->n_conf + 1) * sizeof *g);
  if (g == NULL) return -ENOMEM;
  s->conf = g;
  g[s->n_conf].key = strdup(key);
  g[s->n_conf].value = strdup(value);
  if (g[s->n_conf].key == NULL || g[s->n_conf].value == NULL) {
    free(g[s->n_conf].key);
    free(g[s->n_conf].value);
    return -ENOMEM;
  }
  s->n_conf++;
  return 0;
}

static const char *conf_get(const mu_flink_spec *s, const char *key) {
  for (size_t i = 0; i < s->n_conf; i++)
    if (strcmp(s->conf[i].key, key) == 0) return s->conf[i].value;
  return NULL;
}

static int parse_conf(json_t *f, mu_flink_spec *s, char *errbuf) {
  json_t *c = muster_field_get(f, "conf", "conf");
  if (c == NULL) return 0;
  if (!json_is_object(c)) return muster_field_fail(errbuf, "flink.conf: want a map of key: value");
  if (json_object_size(c) > MU_FLINK_MAX_ITEMS)
    return muster_field_fail(errbuf, "flink.conf: more than %d entries", MU_FLINK_MAX_ITEMS);
  const char *key;
  json_t *v;
  json_object_foreach(c, key, v) {
    if (*key == '\0' || strpbrk(key, "= \t\r\n") != NULL)
      return muster_field_fail(errbuf, "flink.conf: bad key \"%.64s\" (no '=', spaces or line breaks)", key);
    if (!json_is_string(v)) return muster_field_fail(errbuf, "flink.conf.%.64s: want a string", key);
    if (strpbrk(json_string_value(v), "\r\n") != NULL || strlen(json_string_value(v)) != json_string_length(v))
      return muster_field_fail(errbuf, "flink.conf.%.64s: line breaks or NUL in the value", key);
    int rc = conf_set(s, "conf", key, json_string_value(v), errbuf);
    if (rc != 0) return rc;
  }
  return 0;
}

/* The YARN / Kubernetes options, each checked against the target and folded into conf. */
static int parse_cluster_options(json_t *f, mu_flink_spec *s, char *errbuf) {
  static const struct {
    const char *camel, *snake, *key;
    int yarn; /* 1 yarn, 2 kubernetes */
  } opts[] = {
      {"yarnQueue", "yarn_queue", "yarn.application.queue", 1},
      {"yarnAppName", "yarn_app_name", "yarn.application.name", 1},
      {"jobmanagerMemory", "jobmanager_memory", "jobmanager.memory.process.size", 0},
      {"taskmanagerMemory", "taskmanager_memory", "taskmanager.memory.process.size", 0},
      {"kubernetesNamespace", "kubernetes_namespace", "kubernetes.namespace", 2},
      {"kubernetesClusterId", "kubernetes_cluster_id", "kubernetes.cluster-id", 2},
  };
  bool yarn = s->target == MU_FLINK_TARGET_YARN_APPLICATION || s->target == MU_FLINK_TARGET_YARN_PER_JOB;
  bool k8s = s->target == MU_FLINK_TARGET_K8S_APPLICATION;
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    char *v = NULL;
    int rc = get_str(f, opts[i].camel, opts[i].snake, &v, errbuf);
    if (rc != 0) return rc;
    if (v == NULL) continue;
    if (strpbrk(v, "\r\n") != NULL) rc = muster_field_fail(errbuf, "flink.%s: line break in the value", opts[i].snake);
    else if (opts[i].yarn == 1 && !yarn)
      rc = muster_field_fail(errbuf, "flink.%s: a YARN option, but target is %s", opts[i].snake,
                             mu_flink_target_name(s->target));
    else if (opts[i].yarn == 2 && !k8s)
      rc = muster_field_fail(errbuf, "flink.%s: a Kubernetes option, but target is %s", opts[i].snake,
                             mu_flink_target_name(s->target));
    else if (opts[i].yarn == 0 && s->target == MU_FLINK_TARGET_SESSION)
      rc = muster_field_fail(errbuf, "flink.%s: a session cluster's memory is set where it was started, not per job",
                             opts[i].snake);
    else rc = conf_set(s, opts[i].snake, opts[i].key, v, errbuf);
    free(v);
    if (rc != 0) return rc;
  }
  unsigned slots = 0;
  int rc = get_uint(f, "slots", "slots", 100000, &slots, errbuf);
  if (rc != 0) return rc;
  if (slots > 0) {
    if (s->target == MU_FLINK_TARGET_SESSION)
      return muster_field_fail(errbuf,
                               "flink.slots: a session cluster's slots are set where it was started, not per job");
    char num[16];
    snprintf(num, sizeof num, "%u", slots);
    rc = conf_set(s, "slots", "taskmanager.numberOfTaskSlots", num, errbuf);
    if (rc != 0) return rc;
  }
  return 0;
}

static int parse_target(json_t *f, mu_flink_spec *s, char *errbuf) {
  char *t = NULL;
  int rc = get_str(f, "target", "target", &t, errbuf);
  if (rc != 0) return rc;
  static const char *const names[] = {"session", "yarn-application", "kubernetes-application", "yarn-per-job", "local"};
  s->target = MU_FLINK_TARGET_SESSION;
  if (t != NULL) {
    size_t i = 0;
    while (i < 5 && strcmp(t, names[i]) != 0) i++;
    if (i == 5)
      rc = muster_field_fail(errbuf,
                             "flink.target: unknown target \"%.64s\" (want session, yarn-application, "
                             "kubernetes-application, yarn-per-job or local)",
                             t);
    else s->target = (mu_flink_target)i;
  }
  free(t);
  return rc;
}

static int parse_program(json_t *f, mu_flink_spec *s, char *errbuf) {
  char *jar = NULL, *py = NULL, *sql = NULL;
  int rc = get_str(f, "jar", "jar", &jar, errbuf);
  if (rc == 0) rc = get_str(f, "python", "python", &py, errbuf);
  if (rc == 0) rc = get_str(f, "sqlScript", "sql_script", &sql, errbuf);
  int n = (jar != NULL) + (py != NULL) + (sql != NULL);
  if (rc == 0 && n != 1)
    rc = muster_field_fail(errbuf, "flink: set exactly one program: jar, python (PyFlink) or sql_script (got %d)", n);
  if (rc == 0 && jar != NULL) {
    s->program = MU_FLINK_PROGRAM_JAR;
    rc = check_file("jar", jar, ".jar", errbuf);
  } else if (rc == 0 && py != NULL) {
    s->program = MU_FLINK_PROGRAM_PYTHON;
    rc = check_file("python", py, ".py", errbuf);
  } else if (rc == 0) {
    s->program = MU_FLINK_PROGRAM_SQL;
    rc = check_file("sql_script", sql, ".sql", errbuf);
  }
  if (rc == 0) {
    s->program_file = jar ? jar : py ? py : sql;
    jar = py = sql = NULL;
  }
  free(jar);
  free(py);
  free(sql);
  if (rc != 0) return rc;
  rc = get_str(f, "entryClass", "entry_class", &s->entry_class, errbuf);
  if (rc != 0) return rc;
  if (s->entry_class != NULL && !class_name_ok(s->entry_class))
    return muster_field_fail(errbuf, "flink.entry_class: \"%.128s\" is not a Java class name", s->entry_class);
  if (s->entry_class != NULL && s->program == MU_FLINK_PROGRAM_SQL)
    return muster_field_fail(errbuf, "flink.entry_class: a SQL script has no entry class");
  json_t *a = muster_field_get(f, "programArgs", "program_args");
  if (a != NULL) {
    if (!json_is_array(a)) return muster_field_fail(errbuf, "flink.program_args: want a list of strings");
    if (json_array_size(a) > MU_FLINK_MAX_ITEMS)
      return muster_field_fail(errbuf, "flink.program_args: more than %d", MU_FLINK_MAX_ITEMS);
    s->args = calloc(json_array_size(a) + 1, sizeof *s->args);
    if (s->args == NULL) return -ENOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
      if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return muster_field_fail(errbuf, "flink.program_args[%zu]: want a string", i);
      s->args[i] = strdup(json_string_value(v));
      if (s->args[i] == NULL) return -ENOMEM;
      s->n_args++;
    }
    if (s->n_args > 0 && s->program == MU_FLINK_PROGRAM_SQL)
      return muster_field_fail(errbuf, "flink.program_args: a SQL script takes no program arguments");
  }
  return get_uint(f, "parallelism", "parallelism", 1u << 15, &s->parallelism, errbuf);
}

static int parse_rest_url(json_t *f, mu_flink_spec *s, char *errbuf) {
  int rc = get_str(f, "jobmanagerUrl", "jobmanager_url", &s->rest_url, errbuf);
  if (rc == 0) rc = get_str(f, "yarnRmUrl", "yarn_rm_url", &s->yarn_rm_url, errbuf);
  if (rc != 0) return rc;
  char *const urls[] = {s->rest_url, s->yarn_rm_url};
  const char *const fields[] = {"jobmanager_url", "yarn_rm_url"};
  for (int i = 0; i < 2; i++) {
    char *u = urls[i];
    if (u == NULL) continue;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
      return muster_field_fail(errbuf, "flink.%s: \"%.128s\" is not an http(s) URL", fields[i], u);
    for (const char *p = u; *p; p++)
      if ((unsigned char)*p <= 0x20 || *p == '?' || *p == '#')
        return muster_field_fail(errbuf, "flink.%s: want a base URL without spaces, query or fragment", fields[i]);
    size_t n = strlen(u);
    while (n > 8 && u[n - 1] == '/') u[--n] = '\0';
  }
  if (s->yarn_rm_url != NULL && s->target != MU_FLINK_TARGET_YARN_APPLICATION &&
      s->target != MU_FLINK_TARGET_YARN_PER_JOB)
    return muster_field_fail(errbuf, "flink.yarn_rm_url: a YARN option, but target is %s",
                             mu_flink_target_name(s->target));
  return 0;
}

static int parse_job_id(json_t *f, mu_flink_spec *s, char *errbuf) {
  char *id = NULL;
  int rc = get_str(f, "jobId", "job_id", &id, errbuf);
  if (rc != 0 || id == NULL) return rc;
  for (char *p = id; *p; p++) *p = (char)tolower((unsigned char)*p);
  if (!mu_flink_job_id_valid(id))
    rc = muster_field_fail(errbuf, "flink.job_id: \"%.64s\" is not a JobID (32 hex characters)", id);
  else memcpy(s->job_id, id, MU_FLINK_JOB_ID_LEN + 1);
  free(id);
  return rc;
}

static int parse_lifecycle(json_t *f, mu_flink_spec *s, char *errbuf) {
  char *kind = NULL, *mode = NULL, *on_cancel = NULL;
  bool legacy_sp = false;
  int rc = get_str(f, "kind", "kind", &kind, errbuf);
  if (rc == 0 && kind != NULL) {
    if (strcmp(kind, "batch") == 0) s->kind = MU_FLINK_BATCH;
    else if (strcmp(kind, "streaming") == 0) s->kind = MU_FLINK_STREAMING;
    else rc = muster_field_fail(errbuf, "flink.kind: unknown kind \"%.64s\" (want batch or streaming)", kind);
  }
  if (rc == 0) rc = get_str(f, "savepointPath", "savepoint_path", &s->savepoint_path, errbuf);
  if (rc == 0)
    rc = get_bool(f, "allowNonRestoredState", "allow_non_restored_state", &s->allow_non_restored_state, errbuf);
  if (rc == 0) rc = get_str(f, "restoreMode", "restore_mode", &mode, errbuf);
  if (rc == 0 && mode != NULL) {
    if (strcasecmp(mode, "claim") == 0) s->restore_mode = "CLAIM";
    else if (strcasecmp(mode, "no_claim") == 0 || strcasecmp(mode, "no-claim") == 0) s->restore_mode = "NO_CLAIM";
    else if (strcasecmp(mode, "legacy") == 0) s->restore_mode = "LEGACY";
    else
      rc = muster_field_fail(errbuf, "flink.restore_mode: unknown mode \"%.64s\" (want claim, no_claim or legacy)",
                             mode);
  }
  if (rc == 0 && s->savepoint_path == NULL && (s->restore_mode != NULL || s->allow_non_restored_state))
    rc = muster_field_fail(errbuf, "flink.%s: needs savepoint_path (what to restore from)",
                           s->restore_mode != NULL ? "restore_mode" : "allow_non_restored_state");
  if (rc == 0 && s->savepoint_path != NULL && strpbrk(s->savepoint_path, "\r\n\t ") != NULL)
    rc = muster_field_fail(errbuf, "flink.savepoint_path: spaces or line breaks in the path");
  if (rc == 0) rc = get_str(f, "savepointDir", "savepoint_dir", &s->savepoint_dir, errbuf);
  if (rc == 0 && s->savepoint_dir != NULL && strpbrk(s->savepoint_dir, "\r\n\t ") != NULL)
    rc = muster_field_fail(errbuf, "flink.savepoint_dir: spaces or line breaks in the path");
  if (rc == 0) rc = get_bool(f, "savepointOnCancel", "savepoint_on_cancel", &legacy_sp, errbuf);
  if (rc == 0) rc = get_str(f, "onCancel", "on_cancel", &on_cancel, errbuf);
  if (rc == 0 && on_cancel != NULL) {
    if (strcmp(on_cancel, "cancel") == 0) s->on_cancel = MU_FLINK_CANCEL_PLAIN;
    else if (strcmp(on_cancel, "savepoint") == 0) s->on_cancel = MU_FLINK_CANCEL_SAVEPOINT;
    else if (strcmp(on_cancel, "drain") == 0) s->on_cancel = MU_FLINK_CANCEL_DRAIN;
    else
      rc = muster_field_fail(errbuf, "flink.on_cancel: unknown action \"%.64s\" (want cancel, savepoint or drain)",
                             on_cancel);
    if (rc == 0 && legacy_sp && s->on_cancel == MU_FLINK_CANCEL_PLAIN)
      rc = muster_field_fail(errbuf, "flink.savepoint_on_cancel: conflicts with on_cancel: cancel");
  } else if (rc == 0 && legacy_sp) {
    s->on_cancel = MU_FLINK_CANCEL_SAVEPOINT;
  }
  if (rc == 0 && s->on_cancel != MU_FLINK_CANCEL_PLAIN && s->savepoint_dir == NULL) {
    const char *dflt = conf_get(s, "state.savepoints.dir");
    if (dflt == NULL) {
      rc = muster_field_fail(errbuf, "flink.on_cancel: %s needs savepoint_dir (or conf state.savepoints.dir)",
                             s->on_cancel == MU_FLINK_CANCEL_DRAIN ? "drain" : "savepoint");
    } else {
      s->savepoint_dir = strdup(dflt);
      if (s->savepoint_dir == NULL) rc = -ENOMEM;
    }
  }
  if (rc == 0) rc = get_bool(f, "detached", "detached", &s->detached, errbuf);
  free(kind);
  free(mode);
  free(on_cancel);
  return rc;
}

static int parse_timing(json_t *root, json_t *f, mu_flink_spec *s, char *errbuf) {
  int rc = get_duration(f, "pollInterval", "poll_interval", MU_FLINK_DEFAULT_POLL_MS, &s->poll_ms, errbuf);
  if (rc == 0)
    rc = get_duration(f, "savepointTimeout", "savepoint_timeout", MU_FLINK_DEFAULT_SAVEPOINT_MS,
                      &s->savepoint_timeout_ms, errbuf);
  if (rc == 0)
    rc = get_duration(f, "unreachableTimeout", "unreachable_timeout", MU_FLINK_DEFAULT_UNREACHABLE_MS,
                      &s->unreachable_ms, errbuf);
  if (rc == 0)
    rc = get_uint(f, "restartEventThreshold", "restart_event_threshold", 1000000, &s->restart_event_threshold, errbuf);
  if (rc != 0) return rc;
  if (s->restart_event_threshold == 0) s->restart_event_threshold = MU_FLINK_DEFAULT_RESTART_EVENTS;
  if (s->poll_ms < 50) return muster_field_fail(errbuf, "flink.poll_interval: at least 50ms");
  json_t *t = muster_field_get(root, "timeout", "timeout");
  if (json_is_string(t) && *json_string_value(t) != '\0' &&
      muster_duration_parse(json_string_value(t), &s->timeout_ms) != 0)
    return muster_field_fail(errbuf, "timeout: bad duration \"%.64s\"", json_string_value(t));
  return 0;
}

static int parse_upgrade(json_t *f, mu_flink_spec *s, char *errbuf) {
  char *mode = NULL, *from = NULL;
  int rc = get_str(f, "upgradeMode", "upgrade_mode", &mode, errbuf);
  if (rc == 0) rc = get_str(f, "upgradeFrom", "upgrade_from", &from, errbuf);
  if (rc == 0)
    rc = get_duration(f, "maxCheckpointAge", "max_checkpoint_age", MU_FLINK_DEFAULT_CHECKPOINT_AGE_MS,
                      &s->max_checkpoint_age_ms, errbuf);
  if (rc == 0) rc = get_bool(f, "forceUpgrade", "force_upgrade", &s->force_upgrade, errbuf);
  if (rc == 0 && mode != NULL) {
    if (strcmp(mode, "stateless") == 0) s->upgrade = MU_FLINK_UPGRADE_STATELESS;
    else if (strcmp(mode, "savepoint") == 0) s->upgrade = MU_FLINK_UPGRADE_SAVEPOINT;
    else if (strcmp(mode, "last-state") == 0 || strcmp(mode, "last_state") == 0)
      s->upgrade = MU_FLINK_UPGRADE_LAST_STATE;
    else
      rc = muster_field_fail(
          errbuf, "flink.upgrade_mode: unknown mode \"%.64s\" (want stateless, savepoint or last-state)", mode);
  }
  if (rc == 0 && from != NULL) {
    for (char *p = from; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (!mu_flink_job_id_valid(from))
      rc = muster_field_fail(errbuf, "flink.upgrade_from: \"%.64s\" is not a JobID (32 hex characters)", from);
    else memcpy(s->upgrade_from, from, MU_FLINK_JOB_ID_LEN + 1);
  }
  if (rc == 0 && (s->upgrade != MU_FLINK_UPGRADE_NONE) != (s->upgrade_from[0] != '\0'))
    rc = muster_field_fail(errbuf, s->upgrade_from[0]
                                       ? "flink.upgrade_from: needs upgrade_mode (stateless, savepoint or last-state)"
                                       : "flink.upgrade_mode: needs upgrade_from (the JobID of the running version)");
  if (rc == 0 && s->upgrade != MU_FLINK_UPGRADE_NONE) {
    if (s->kind != MU_FLINK_STREAMING)
      rc = muster_field_fail(errbuf, "flink.upgrade_mode: upgrades are for streaming jobs (kind: streaming)");
    else if (s->target != MU_FLINK_TARGET_SESSION || s->program != MU_FLINK_PROGRAM_JAR)
      rc = muster_field_fail(errbuf, "flink.upgrade_mode: upgrades run over REST: target session with a jar");
    else if (s->savepoint_path != NULL)
      rc = muster_field_fail(
          errbuf, "flink.savepoint_path: conflicts with upgrade_mode (the upgrade decides what to restore from)");
    else if (s->upgrade == MU_FLINK_UPGRADE_SAVEPOINT && s->savepoint_dir == NULL &&
             conf_get(s, "state.savepoints.dir") == NULL)
      rc =
          muster_field_fail(errbuf, "flink.upgrade_mode: savepoint needs savepoint_dir (or conf state.savepoints.dir)");
    else {
      bool need_dir = s->upgrade == MU_FLINK_UPGRADE_SAVEPOINT && s->savepoint_dir == NULL;
      if (need_dir) s->savepoint_dir = strdup(conf_get(s, "state.savepoints.dir"));
      if (need_dir && s->savepoint_dir == NULL) rc = -ENOMEM;
      else if (s->job_id[0] != '\0' && strcmp(s->job_id, s->upgrade_from) == 0)
        rc = muster_field_fail(errbuf, "flink.job_id: the new version needs its own JobID, not upgrade_from's");
    }
  }
  free(mode);
  free(from);
  return rc;
}

/* Which targets need what: the REST URL for session, a CLI for the others. */
static int check_target(const mu_flink_spec *s, char *errbuf) {
  if (s->target == MU_FLINK_TARGET_SESSION && s->rest_url == NULL)
    return muster_field_fail(errbuf, "flink.jobmanager_url: target session needs the JobManager's REST URL");
  if (s->target == MU_FLINK_TARGET_SESSION && s->program != MU_FLINK_PROGRAM_JAR && s->flink_home == NULL)
    return muster_field_fail(
        errbuf, "flink.flink_home: a %s program on a session cluster is submitted with the flink CLI; set flink_home",
        s->program == MU_FLINK_PROGRAM_SQL ? "SQL" : "PyFlink");
  if (s->target == MU_FLINK_TARGET_K8S_APPLICATION && conf_get(s, "kubernetes.cluster-id") == NULL)
    return muster_field_fail(errbuf,
                             "flink.kubernetes_cluster_id: target kubernetes-application needs a cluster id "
                             "(the handle the task re-attaches by)");
  if (s->target == MU_FLINK_TARGET_LOCAL && s->yarn_rm_url != NULL)
    return muster_field_fail(errbuf, "flink.yarn_rm_url: target local runs no YARN application");
  if (s->detached && s->kind == MU_FLINK_STREAMING && s->on_cancel != MU_FLINK_CANCEL_PLAIN)
    return muster_field_fail(errbuf,
                             "flink.detached: a detached task ends once the job runs, so on_cancel %s would never run",
                             s->on_cancel == MU_FLINK_CANCEL_DRAIN ? "drain" : "savepoint");
  if (s->flink_home != NULL && (s->flink_home[0] != '/' || strpbrk(s->flink_home, "\r\n") != NULL))
    return muster_field_fail(errbuf, "flink.flink_home: want an absolute path on the agent");
  return 0;
}

int mu_flink_spec_parse(const char *spec_json, const char *config_json, mu_flink_spec **ret, char *errbuf) {
  *ret = NULL;
  json_error_t jerr_root, jerr;
  json_t *root = json_loads(spec_json ? spec_json : "{}", JSON_REJECT_DUPLICATES, &jerr_root);
  json_t *f = json_loads(config_json ? config_json : "{}", JSON_REJECT_DUPLICATES, &jerr);
  mu_flink_spec *s = calloc(1, sizeof *s);
  int rc;
  if (s == NULL) {
    rc = -ENOMEM;
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "out of memory");
    goto fail;
  }
  if (root == NULL || f == NULL) {
    rc = muster_field_fail(errbuf, "flink: the spec is not valid JSON: %s", root == NULL ? jerr_root.text : jerr.text);
    goto fail;
  }
  if (!json_is_object(root) || !json_is_object(f)) {
    rc = muster_field_fail(errbuf, "flink: the spec is not a JSON object");
    goto fail;
  }
  rc = parse_target(f, s, errbuf);
  if (rc == 0) rc = parse_program(f, s, errbuf);
  if (rc == 0) rc = parse_job_id(f, s, errbuf);
  if (rc == 0) rc = parse_rest_url(f, s, errbuf);
  if (rc == 0) rc = get_str(f, "flinkHome", "flink_home", &s->flink_home, errbuf);
  if (rc == 0) rc = parse_conf(f, s, errbuf);
  if (rc == 0) rc = parse_cluster_options(f, s, errbuf);
  if (rc == 0) rc = parse_lifecycle(f, s, errbuf);
  if (rc == 0) rc = parse_timing(root, f, s, errbuf);
  if (rc == 0) rc = parse_upgrade(f, s, errbuf);
  if (rc == 0) rc = check_target(s, errbuf);
  if (rc != 0) goto fail;
  json_decref(root);
  json_decref(f);
  *ret = s;
  return 0;
fail:
  if (rc == -ENOMEM) snprintf(errbuf, MUSTER_ERRBUF_SIZE, "out of memory");
  json_decref(root);
  json_decref(f);
  mu_flink_spec_free(s);
  return rc;
}

void mu_flink_spec_free(mu_flink_spec *s) {
  if (s == NULL) return;
  free(s->program_file);
  free(s->entry_class);
  for (size_t i = 0; i < s->n_args; i++) free(s->args[i]);
  free(s->args);
  free(s->rest_url);
  free(s->flink_home);
  for (size_t i = 0; i < s->n_conf; i++) {
    free(s->conf[i].key);
    free(s->conf[i].value);
  }
  free(s->conf);
  free(s->savepoint_path);
  free(s->savepoint_dir);
  free(s->yarn_rm_url);
  free(s);
}
