/* Building the spark-submit / spark-sql argv (spark_argv.h). The option order follows
 * DolphinScheduler's SparkTask so its users recognise the command: master, deploy mode, class,
 * name, queue, resources as --conf, lists, Kerberos, user conf, Muster's tags, resource, args. */
#define _GNU_SOURCE /* asprintf, vasprintf */
#include "spark_argv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"
#include "spark_k8s.h"

#define TASK_TAG_MAX (MU_SPARK_TAG_MAX - 12) /* room for "-a<attempt>" */

static uint64_t fnv1a(const char *a, const char *b) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = a; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (const char *p = b; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

void mu_spark_task_tag(const char *job_id, const char *task_id, char *buf) {
  char raw[4 * TASK_TAG_MAX];
  size_t jl = strlen(job_id);
  if (strncmp(task_id, job_id, jl) == 0 && task_id[jl] == '/') /* task ids start with their job's */
    snprintf(raw, sizeof raw, "muster-%s", task_id);
  else snprintf(raw, sizeof raw, "muster-%s-%s", job_id, task_id);
  size_t n = 0;
  bool dash = false;
  for (const char *p = raw; *p && n < sizeof raw - 1; p++) {
    char c = (char)tolower((unsigned char)*p);
    if (!isalnum((unsigned char)c)) {
      if (dash) continue;
      c = '-';
    }
    dash = c == '-';
    raw[n++] = c;
  }
  raw[n] = '\0';
  while (n > 0 && raw[n - 1] == '-') raw[--n] = '\0';
  if (n <= TASK_TAG_MAX) {
    snprintf(buf, MU_SPARK_TAG_MAX + 1, "%s", raw);
  } else { /* keep ids apart that share a long prefix */
    snprintf(buf, MU_SPARK_TAG_MAX + 1, "%.*s-%016llx", TASK_TAG_MAX - 17, raw,
             (unsigned long long)fnv1a(job_id, task_id));
  }
}

void mu_spark_attempt_tag(const char *task_tag, unsigned attempt, char *buf) {
  snprintf(buf, MU_SPARK_TAG_MAX + 1, "%.*s-a%u", TASK_TAG_MAX, task_tag, attempt);
}

/* ---- argv ---- */

typedef struct builder {
  mu_spark_argv *a;
  size_t cap;
  int rc;
} builder;

static void push(builder *b, const char *v) {
  if (b->rc != 0) return;
  if (b->a->n + 2 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    char **g = realloc(b->a->argv, cap * sizeof *g);
    if (g == NULL) {
      b->rc = -ENOMEM;
      return;
    }
    b->a->argv = g;
    b->cap = cap;
  }
  b->a->argv[b->a->n] = strdup(v);
  if (b->a->argv[b->a->n] == NULL) {
    b->rc = -ENOMEM;
    return;
  }
  b->a->argv[++b->a->n] = NULL;
}

static void pushf(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pushf(builder *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  if (s == NULL) {
    if (b->rc == 0) b->rc = -ENOMEM;
    return;
  }
  push(b, s);
  free(s);
}

static void conf(builder *b, const char *key, const char *value) {
  push(b, "--conf");
  pushf(b, "%s=%s", key, value);
}

/* A bundle path made absolute against the task dir; URLs as they are. */
static char *resolve(const char *task_dir, const char *v) {
  char *out = NULL;
  if (strstr(v, "://") != NULL || v[0] == '/' || task_dir == NULL) out = strdup(v);
  else if (asprintf(&out, "%s/%s", task_dir, v) < 0) out = NULL;
  return out;
}

/* --opt a,b,c with bundle paths resolved. */
static void list_opt(builder *b, const char *opt, const mu_spark_list *l, const char *task_dir, bool paths) {
  if (l->n == 0 || b->rc != 0) return;
  size_t cap = 1, n = 0;
  char **parts = calloc(l->n, sizeof *parts);
  if (parts == NULL) {
    b->rc = -ENOMEM;
    return;
  }
  for (size_t i = 0; i < l->n; i++) {
    parts[i] = paths ? resolve(task_dir, l->items[i]) : strdup(l->items[i]);
    if (parts[i] == NULL) b->rc = -ENOMEM;
    else cap += strlen(parts[i]) + 1;
  }
  char *joined = b->rc == 0 ? malloc(cap) : NULL;
  if (joined != NULL) {
    for (size_t i = 0; i < l->n; i++) {
      if (i > 0) joined[n++] = ',';
      memcpy(joined + n, parts[i], strlen(parts[i]));
      n += strlen(parts[i]);
    }
    joined[n] = '\0';
    push(b, opt);
    push(b, joined);
  } else if (b->rc == 0) {
    b->rc = -ENOMEM;
  }
  free(joined);
  for (size_t i = 0; i < l->n; i++) free(parts[i]);
  free(parts);
}

static const char *conf_get(const mu_spark_spec *s, const char *key) {
  for (size_t i = 0; i < s->n_conf; i++)
    if (strcmp(s->conf[i].key, key) == 0) return s->conf[i].value;
  return NULL;
}

int mu_spark_k8s_op_argv(const mu_spark_spec *s, const char *op, const char *submission_id, mu_spark_argv *ret) {
  *ret = (mu_spark_argv){0};
  builder b = {.a = ret};
  if (s->spark_home != NULL) pushf(&b, "%s/bin/spark-submit", s->spark_home);
  else push(&b, "spark-submit");
  push(&b, op);
  push(&b, submission_id);
  push(&b, "--master");
  push(&b, s->master);
  const char *grace = conf_get(s, "spark.kubernetes.appKillPodDeletionGracePeriod");
  if (grace != NULL && strcmp(op, "--kill") == 0) conf(&b, "spark.kubernetes.appKillPodDeletionGracePeriod", grace);
  if (b.rc != 0) mu_spark_argv_free(ret);
  return b.rc;
}

int mu_spark_build_argv(const mu_spark_spec *s, const mu_spark_submit_ctx *c, mu_spark_argv *ret, char *errbuf) {
  *ret = (mu_spark_argv){0};
  builder b = {.a = ret};
  bool sql = s->program == MU_SPARK_SQL;
  const char *prog = sql ? "spark-sql" : "spark-submit";
  if (s->spark_home != NULL) pushf(&b, "%s/bin/%s", s->spark_home, prog);
  else push(&b, prog);

  push(&b, "--master");
  push(&b, s->master);
  if (s->master_kind != MU_SPARK_LOCAL) {
    push(&b, "--deploy-mode");
    push(&b, s->cluster ? "cluster" : "client");
  }
  if (s->main_class != NULL) {
    push(&b, "--class");
    push(&b, s->main_class);
  }
  push(&b, "--name");
  push(&b, c->app_name);
  if (s->queue != NULL) {
    push(&b, "--queue");
    push(&b, s->queue);
  }
  char num[32];
  if (s->driver_cores > 0) snprintf(num, sizeof num, "%u", s->driver_cores), conf(&b, "spark.driver.cores", num);
  if (s->driver_memory != NULL) conf(&b, "spark.driver.memory", s->driver_memory);
  if (s->num_executors > 0)
    snprintf(num, sizeof num, "%u", s->num_executors), conf(&b, "spark.executor.instances", num);
  if (s->executor_cores > 0) snprintf(num, sizeof num, "%u", s->executor_cores), conf(&b, "spark.executor.cores", num);
  if (s->executor_memory != NULL) conf(&b, "spark.executor.memory", s->executor_memory);
  if (s->dyn_enabled) {
    conf(&b, "spark.dynamicAllocation.enabled", "true");
    if (s->dyn_min > 0)
      snprintf(num, sizeof num, "%u", s->dyn_min), conf(&b, "spark.dynamicAllocation.minExecutors", num);
    if (s->dyn_max > 0)
      snprintf(num, sizeof num, "%u", s->dyn_max), conf(&b, "spark.dynamicAllocation.maxExecutors", num);
    if (s->dyn_initial > 0)
      snprintf(num, sizeof num, "%u", s->dyn_initial), conf(&b, "spark.dynamicAllocation.initialExecutors", num);
  }
  list_opt(&b, "--jars", &s->jars, c->task_dir, true);
  list_opt(&b, "--py-files", &s->py_files, c->task_dir, true);
  list_opt(&b, "--files", &s->files, c->task_dir, true);
  list_opt(&b, "--archives", &s->archives, c->task_dir, true);
  list_opt(&b, "--packages", &s->packages, c->task_dir, false);
  if (s->principal != NULL) {
    push(&b, "--principal");
    push(&b, s->principal);
    push(&b, "--keytab");
    char *kt = resolve(c->task_dir, s->keytab);
    if (kt == NULL) b.rc = b.rc ? b.rc : -ENOMEM;
    else push(&b, kt);
    free(kt);
  }
  for (size_t i = 0; i < s->n_conf; i++) {
    if (strcmp(s->conf[i].key, "spark.yarn.tags") == 0) continue; /* merged with ours below */
    conf(&b, s->conf[i].key, s->conf[i].value);
  }
  /* this task's own application: tags and labels to find it by, detach in cluster mode */
  const char *user_tags = conf_get(s, "spark.yarn.tags");
  if (s->master_kind == MU_SPARK_YARN) {
    push(&b, "--conf");
    pushf(&b, "spark.yarn.tags=%s%s%s,%s", user_tags ? user_tags : "", user_tags ? "," : "", c->task_tag,
          c->attempt_tag);
    if (s->cluster) conf(&b, "spark.yarn.submit.waitAppCompletion", "false");
  } else if (user_tags != NULL) {
    conf(&b, "spark.yarn.tags", user_tags);
  }
  if (s->master_kind == MU_SPARK_K8S) {
    if (s->namespace_ != NULL) conf(&b, "spark.kubernetes.namespace", s->namespace_);
    char tl[MU_SPARK_K8S_LABEL_MAX + 1], al[MU_SPARK_K8S_LABEL_MAX + 1]; /* label values: 63 bytes at most */
    mu_spark_k8s_label_value(c->task_tag, tl);
    mu_spark_k8s_label_value(c->attempt_tag, al);
    conf(&b, "spark.kubernetes.driver.label.muster-task", tl);
    conf(&b, "spark.kubernetes.driver.label.muster-attempt", al);
    if (s->cluster) conf(&b, "spark.kubernetes.submission.waitAppCompletion", "false");
  }
  if (s->master_kind == MU_SPARK_STANDALONE && s->cluster)
    conf(&b, "spark.standalone.submit.waitAppCompletion", "false");

  if (sql && c->sql_file == NULL && s->app_resource == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark.sql: the inline script was not written to a file");
    mu_spark_argv_free(ret);
    return -EINVAL;
  }
  if (sql) {
    push(&b, "-f");
    if (c->sql_file != NULL) {
      push(&b, c->sql_file);
    } else {
      char *f = resolve(c->task_dir, s->app_resource);
      if (f == NULL) b.rc = b.rc ? b.rc : -ENOMEM;
      else push(&b, f);
      free(f);
    }
  } else {
    char *res = c->app_resource ? strdup(c->app_resource) : resolve(c->task_dir, s->app_resource);
    if (res == NULL) b.rc = b.rc ? b.rc : -ENOMEM;
    else push(&b, res);
    free(res);
  }
  for (size_t i = 0; i < s->app_args.n; i++) push(&b, s->app_args.items[i]);
  if (b.rc != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark: out of memory building the command line");
    mu_spark_argv_free(ret);
    return b.rc;
  }
  return 0;
}

void mu_spark_argv_free(mu_spark_argv *a) {
  if (a == NULL) return;
  for (size_t i = 0; i < a->n; i++) free(a->argv[i]);
  free(a->argv);
  *a = (mu_spark_argv){0};
}

/* ---- display ---- */

static bool secret_key(const char *kv) {
  const char *eq = strchr(kv, '=');
  if (eq == NULL) return false;
  static const char *const words[] = {"password", "secret", "token", "credential", "key"};
  char key[256];
  size_t n = (size_t)(eq - kv) < sizeof key - 1 ? (size_t)(eq - kv) : sizeof key - 1;
  for (size_t i = 0; i < n; i++) key[i] = (char)tolower((unsigned char)kv[i]);
  key[n] = '\0';
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    const char *w = strstr(key, words[i]);
    /* "key" only as the last part (…access.key, …secret.key), not keytab or keystore paths */
    if (w != NULL && (strcmp(words[i], "key") != 0 || strcmp(w, "key") == 0)) return true;
  }
  return false;
}

static bool needs_quotes(const char *v) {
  if (*v == '\0') return true;
  for (const char *p = v; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("-_./:=,@%+[]*", *p) == NULL) return true;
  return false;
}

char *mu_spark_argv_display(const mu_spark_spec *s, const mu_spark_argv *a) {
  size_t cap = 1;
  for (size_t i = 0; i < a->n; i++) cap += strlen(a->argv[i]) * 4 + 3;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < a->n; i++) {
    const char *v = a->argv[i];
    bool hide = i > 0 && strcmp(a->argv[i - 1], "--conf") == 0 && secret_key(v);
    if (n > 0) out[n++] = ' ';
    if (hide) {
      const char *eq = strchr(v, '=');
      memcpy(out + n, v, (size_t)(eq - v) + 1);
      n += (size_t)(eq - v) + 1;
      memcpy(out + n, "***", 3);
      n += 3;
      continue;
    }
    if (!needs_quotes(v)) {
      memcpy(out + n, v, strlen(v));
      n += strlen(v);
      continue;
    }
    out[n++] = '\'';
    for (const char *p = v; *p; p++) {
      if (*p == '\'') {
        memcpy(out + n, "'\\''", 4);
        n += 4;
      } else {
        out[n++] = *p;
      }
    }
    out[n++] = '\'';
  }
  out[n] = '\0';
  char *masked = mu_spark_mask(s, out, n, NULL);
  free(out);
  return masked;
}
