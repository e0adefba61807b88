/* JobSpec validation: collects every problem with its field path, fills defaults, parses the
 * rollout; and the one-task spec of an ad hoc run. Nothing here touches daemon state; the
 * caller stores a spec only when validation passes. */
#define _GNU_SOURCE /* qsort_r */
#include "controlplane/jobspec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "controlplane/jobspec_refs.h"
#include "lib/base/clock.h"
#include "lib/pbdup/pbdup.h"
#include "lib/plugpkg/plugin_check.h"
#include "lib/plugpkg/plugin_yaml.h"
#include "lib/selector/selector.h"

typedef struct problems {
  char buf[MU_ERR_MSG_MAX];
  size_t len;
  int n;
} problems;

static void add(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(problems *p, const char *fmt, ...) {
  if (p->len + 8 >= sizeof p->buf) {
    p->n++;
    return;
  }
  if (p->n > 0) p->len += (size_t)snprintf(p->buf + p->len, sizeof p->buf - p->len, "; ");
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(p->buf + p->len, sizeof p->buf - p->len, fmt, ap);
  va_end(ap);
  if (w > 0) p->len += (size_t)w;
  if (p->len >= sizeof p->buf) p->len = sizeof p->buf - 1;
  p->n++;
}

static void rollout_problem(void *ud, const char *msg) { add(ud, "%s", msg); }

static const char *const builtin_types[] = {"shell", "http", "python", "spark", "flink", "container"};

static const char *kind_type(const Muster__V1__TaskSpec *t) {
  switch (t->kind_case) {
    case MUSTER__V1__TASK_SPEC__KIND_SHELL: return "shell";
    case MUSTER__V1__TASK_SPEC__KIND_HTTP: return "http";
    case MUSTER__V1__TASK_SPEC__KIND_PYTHON: return "python";
    case MUSTER__V1__TASK_SPEC__KIND_SPARK: return "spark";
    case MUSTER__V1__TASK_SPEC__KIND_FLINK: return "flink";
    case MUSTER__V1__TASK_SPEC__KIND_CONTAINER: return "container";
    case MUSTER__V1__TASK_SPEC__KIND_PLUGIN: return t->plugin->type;
    default: return NULL;
  }
}

static void check_duration(problems *p, const char *path, const char *text, int64_t min_ms) {
  if (text == NULL || text[0] == '\0') return;
  int64_t ms;
  mu_err e = {0};
  if (mu_duration_parse(text, &ms, &e) != 0) add(p, "%s: %s", path, e.msg);
  else if (ms < min_ms) add(p, "%s: must be at least %lldms, got \"%s\"", path, (long long)min_ms, text);
}

static void check_size(problems *p, const char *path, const char *text) {
  if (text == NULL || text[0] == '\0') return;
  uint64_t v;
  mu_err e = {0};
  if (mu_size_parse(text, &v, &e) != 0) add(p, "%s: %s", path, e.msg);
}

/* --- secrets: only by reference, never inline (docs/job-spec.md#secrets) --- */

#define SECRET_FORM "secrets: [{name: %s, from: <stored secret>}] (store it with `muster secret set`)"

static int word_is(const char *w, size_t n, const char *word) {
  return strlen(word) == n && strncasecmp(w, word, n) == 0;
}

/* An env var name that says it holds a secret: a '_'-separated part PASSWORD, PASSWD, SECRET,
 * TOKEN or APIKEY, the parts API_KEY or PRIVATE_KEY, or a name ending in one of them
 * (DBPASSWORD). Names whose last part is FILE, PATH, DIR or NAME point at something instead. */
static int looks_secret(const char *key) {
  static const char *const words[] = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY"};
  const char *last = strrchr(key, '_');
  last = last ? last + 1 : key;
  size_t last_n = strlen(last);
  if (word_is(last, last_n, "FILE") || word_is(last, last_n, "PATH") || word_is(last, last_n, "DIR") ||
      word_is(last, last_n, "NAME"))
    return 0;
  size_t klen = strlen(key);
  for (size_t k = 0; k < sizeof words / sizeof *words; k++) {
    size_t wl = strlen(words[k]);
    if (klen >= wl && strcasecmp(key + klen - wl, words[k]) == 0) return 1;
  }
  const char *prev = NULL;
  size_t prev_n = 0;
  for (const char *w = key; *w;) {
    size_t n = strcspn(w, "_");
    for (size_t k = 0; k < sizeof words / sizeof *words; k++)
      if (word_is(w, n, words[k])) return 1;
    if (prev != NULL && word_is(w, n, "KEY") && (word_is(prev, prev_n, "API") || word_is(prev, prev_n, "PRIVATE")))
      return 1;
    prev = w;
    prev_n = n;
    w += n;
    while (*w == '_') w++;
  }
  return 0;
}

/* A value made only of ${...} references (output params) is not a literal. */
static int is_literal(const char *v) {
  while (*v != '\0') {
    const char *end = v[0] == '$' && v[1] == '{' ? strchr(v, '}') : NULL;
    if (end == NULL) return 1;
    v = end + 1;
  }
  return 0;
}

static int secret_named(const Muster__V1__TaskSpec *t, const char *name, size_t n) {
  for (size_t k = 0; k < t->n_secrets; k++)
    if (strlen(t->secrets[k]->name) == n && strncmp(t->secrets[k]->name, name, n) == 0) return 1;
  return 0;
}

/* Every ${secret.NAME} in text must name one of the task's secrets entries. */
static void check_secret_refs(problems *p, const Muster__V1__TaskSpec *t, const char *path, const char *field,
                              const char *text) {
  for (const char *r = strstr(text, "${secret."); r != NULL; r = strstr(r + 1, "${secret.")) {
    const char *name = r + 9, *end = strchr(name, '}');
    size_t n = end ? (size_t)(end - name) : strlen(name);
    if (end == NULL) add(p, "%s.%s: unterminated ${secret.NAME}", path, field);
    else if (!secret_named(t, name, n))
      add(p,
          "%s.%s: ${secret.%.*s} names no entry of the task's secrets; add secrets: "
          "[{name: %.*s, from: <stored secret>}]",
          path, field, (int)n, name, (int)n, name);
  }
}

/* A field that carries a credential takes ${secret.NAME} references, not the credential. */
static void check_credential(problems *p, const Muster__V1__TaskSpec *t, const char *path, const char *field,
                             const char *text) {
  if (text[0] != '\0' && strstr(text, "${secret.") == NULL)
    add(p,
        "%s.%s: a literal credential is refused (it would be stored in clear); use "
        "\"${secret.NAME}\" with " SECRET_FORM,
        path, field, "NAME");
  check_secret_refs(p, t, path, field, text);
}

static void check_http_secrets(problems *p, const Muster__V1__TaskSpec *t, const char *path) {
  const Muster__V1__HttpTask *h = t->http;
  char field[160];
  check_secret_refs(p, t, path, "http.url", h->url);
  check_secret_refs(p, t, path, "http.body", h->body);
  check_secret_refs(p, t, path, "http.body_json", h->body_json);
  check_secret_refs(p, t, path, "http.proxy", h->proxy);
  for (size_t k = 0; k < h->n_headers; k++) {
    snprintf(field, sizeof field, "http.headers.%.100s", h->headers[k]->key);
    check_secret_refs(p, t, path, field, h->headers[k]->value);
  }
  for (size_t k = 0; k < h->n_query; k++) {
    snprintf(field, sizeof field, "http.query.%.100s", h->query[k]->key);
    check_secret_refs(p, t, path, field, h->query[k]->value);
  }
  for (size_t k = 0; k < h->n_form; k++) {
    snprintf(field, sizeof field, "http.form.%.100s", h->form[k]->key);
    check_secret_refs(p, t, path, field, h->form[k]->value);
  }
  if (h->auth != NULL) {
    check_secret_refs(p, t, path, "http.auth.basic_user", h->auth->basic_user);
    check_credential(p, t, path, "http.auth.basic_password", h->auth->basic_password);
    check_credential(p, t, path, "http.auth.bearer_token", h->auth->bearer_token);
  }
}

static void check_secrets(problems *p, const Muster__V1__TaskSpec *t, const char *path) {
  for (size_t k = 0; k < t->n_secrets; k++) {
    const Muster__V1__SecretRef *s = t->secrets[k];
    const char *name = s->name[0] ? s->name : "NAME";
    int as_file = strcmp(s->as, "file") == 0 || s->as_file;
    if (s->value[0] != '\0')
      add(p,
          "%s '%s': secrets[%zu] '%s' has an inline value, which is refused (it would be "
          "stored in clear); use " SECRET_FORM,
          path, t->name, k, name, name);
    else if (s->from[0] == '\0')
      add(p, "%s.secrets[%zu] '%s': from (the stored secret's name) is required: " SECRET_FORM, path, k, name, name);
    if (s->as[0] != '\0' && strcmp(s->as, "env") != 0 && strcmp(s->as, "file") != 0)
      add(p, "%s.secrets[%zu].as: \"env\" or \"file\", got \"%s\"", path, k, s->as);
    else if (s->as_file && strcmp(s->as, "env") == 0) add(p, "%s.secrets[%zu]: as_file and as: env conflict", path, k);
    int ok = s->name[0] != '\0' && (as_file ? s->name[0] != '.' : !isdigit((unsigned char)s->name[0]));
    for (const char *c = s->name; *c && ok; c++)
      ok = isalnum((unsigned char)*c) || *c == '_' || (as_file && (*c == '.' || *c == '-'));
    if (!ok)
      add(p, "%s.secrets[%zu].name: '%s' is not %s", path, k, s->name,
          as_file ? "a file name ([A-Za-z0-9._-], not starting with '.')"
                  : "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    for (size_t j = 0; j < k; j++)
      if (strcmp(t->secrets[j]->name, s->name) == 0)
        add(p, "%s.secrets[%zu].name: '%s' is already secrets[%zu]", path, k, s->name, j);
  }
  for (size_t k = 0; k < t->n_env; k++)
    if (looks_secret(t->env[k]->key) && is_literal(t->env[k]->value))
      add(p,
          "%s '%s': env %s looks like a secret and has a literal value, which is refused (it "
          "would be stored in clear); use " SECRET_FORM,
          path, t->name, t->env[k]->key, t->env[k]->key);
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_HTTP) check_http_secrets(p, t, path);
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_CONTAINER)
    check_credential(p, t, path, "container.registry_auth", t->container->registry_auth);
}

/* --- what the agent and execve() take (MU_JOBSPEC_MAX_*) --- */

/* A list of arguments: its count, each one's size, and their sum (with NULs) into *total. */
static void check_args(problems *p, const char *path, const char *field, char *const *items, size_t n, size_t *total) {
  if (n > MU_JOBSPEC_MAX_ARGS) add(p, "%s.%s: %zu entries, the limit is %d", path, field, n, MU_JOBSPEC_MAX_ARGS);
  int reported = 0;
  for (size_t k = 0; k < n; k++) {
    size_t len = strlen(items[k]);
    *total += len + 1;
    if (len > MU_JOBSPEC_MAX_ARG_BYTES && !reported++)
      add(p, "%s.%s[%zu]: %zu bytes, the limit for one argument is %d", path, field, k, len, MU_JOBSPEC_MAX_ARG_BYTES);
  }
}

/* A path the agent resolves under the task dir: relative and without "..", as the agent
 * checks it (agent/exec/runner.c, plugins/shell). */
static int inside_task_dir(const char *path) { return path[0] != '/' && strstr(path, "..") == NULL; }

/* "user[:group]", as agent/exec/runas.c parses it; whether the user exists is the host's. */
static void check_run_as(problems *p, const char *path, const char *run_as) {
  size_t len = strlen(run_as);
  const char *colon = strchr(run_as, ':');
  if (len == 0) return;
  if (len > MU_JOBSPEC_MAX_RUN_AS)
    add(p, "%s.run_as: %zu characters, the limit is %d", path, len, MU_JOBSPEC_MAX_RUN_AS);
  else if (run_as[0] == ':') add(p, "%s.run_as: empty user in '%s' (expected user[:group])", path, run_as);
  else if (colon != NULL && colon[1] == '\0')
    add(p, "%s.run_as: empty group in '%s' (expected user[:group])", path, run_as);
}

static void check_exec_limits(problems *p, const Muster__V1__TaskSpec *t, const char *path) {
  size_t total = 0;
  if (t->n_env > MU_JOBSPEC_MAX_ENV)
    add(p, "%s.env: %zu variables, the limit is %d", path, t->n_env, MU_JOBSPEC_MAX_ENV);
  int reported = 0;
  for (size_t k = 0; k < t->n_env; k++) {
    size_t len = strlen(t->env[k]->key) + 1 + strlen(t->env[k]->value);
    total += len + 1;
    if (len > MU_JOBSPEC_MAX_ARG_BYTES && !reported++)
      add(p, "%s.env.%.100s: %zu bytes as %.100s=VALUE, the limit for one variable is %d", path, t->env[k]->key, len,
          t->env[k]->key, MU_JOBSPEC_MAX_ARG_BYTES);
  }
  if (t->n_secrets > MU_JOBSPEC_MAX_ENV)
    add(p, "%s.secrets: %zu entries, the limit is %d", path, t->n_secrets, MU_JOBSPEC_MAX_ENV);
  if (!inside_task_dir(t->working_dir))
    add(p, "%s.working_dir: '%.200s' must be relative to the task dir, without '..'", path, t->working_dir);
  check_run_as(p, path, t->run_as);
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_SHELL) {
    const Muster__V1__ShellTask *s = t->shell;
    check_args(p, path, "shell.args", s->args, s->n_args, &total);
    check_args(p, path, "shell.command", s->command, s->n_command, &total);
    size_t len = strlen(s->script);
    if (len > MU_JOBSPEC_MAX_SCRIPT_BYTES)
      add(p, "%s.shell.script: %zu bytes, the limit is %u (4 MiB)", path, len, MU_JOBSPEC_MAX_SCRIPT_BYTES);
    if (!inside_task_dir(s->script_file))
      add(p,
          "%s.shell.script_file: '%.200s' must be a path inside the task dir (the bundle), "
          "without '..'",
          path, s->script_file);
  }
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_PYTHON)
    check_args(p, path, "python.args", t->python->args, t->python->n_args, &total);
  if (total > MU_JOBSPEC_MAX_EXEC_BYTES)
    add(p, "%s: arguments and environment together are %zu bytes, the limit is %u", path, total,
        MU_JOBSPEC_MAX_EXEC_BYTES);
}

/* sandbox: (agent/exec/sandbox.h checks the same at assign, and the agent's policy). */
static void check_sandbox_paths(problems *p, const char *path, const char *field, char **v, size_t n) {
  if (n > MU_JOBSPEC_MAX_SANDBOX_PATHS)
    add(p, "%s.sandbox.%s: %zu paths, the limit is %d", path, field, n, MU_JOBSPEC_MAX_SANDBOX_PATHS);
  for (size_t k = 0; k < n && k < MU_JOBSPEC_MAX_SANDBOX_PATHS; k++) {
    const char *s = v[k];
    if (s[0] != '/' || strstr(s, "/..") != NULL || strlen(s) > 1024)
      add(p, "%s.sandbox.%s[%zu]: '%.200s' must be an absolute host path without '..'", path, field, k, s);
    else if (strcmp(s, "/") == 0)
      add(p, "%s.sandbox.%s[%zu]: '/' is not allowed (name the paths under it)", path, field, k);
  }
}

static void check_sandbox(problems *p, const Muster__V1__TaskSpec *t, const char *path) {
  const Muster__V1__Sandbox *sb = t->sandbox;
  if (sb == NULL) return;
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_HTTP || t->kind_case == MUSTER__V1__TASK_SPEC__KIND_CONTAINER)
    add(p, "%s.sandbox: not for %s tasks (%s)", path, t->type,
        t->kind_case == MUSTER__V1__TASK_SPEC__KIND_HTTP ? "they run no process"
                                                         : "a container is isolated by its own fields");
  if (sb->network[0] != '\0' && strcmp(sb->network, "none") != 0 && strcmp(sb->network, "host") != 0)
    add(p, "%s.sandbox.network: expected none or host, got '%.100s'", path, sb->network);
  check_sandbox_paths(p, path, "writable", sb->writable, sb->n_writable);
  check_sandbox_paths(p, path, "hidden", sb->hidden, sb->n_hidden);
}

static void check_task(problems *p, Muster__V1__TaskSpec *t, size_t i, const mu_jobspec_limits *limits) {
  char path[64];
  snprintf(path, sizeof path, "tasks[%zu]", i);
  const char *kt = kind_type(t);
  if (t->type[0] == '\0' && kt == NULL) {
    add(p, "%s: no task type (set type and one of shell/http/python/spark/flink/container/plugin)", path);
    return;
  }
  if (t->type[0] == '\0') {
    free(t->type == protobuf_c_empty_string ? NULL : t->type);
    t->type = strdup(kt);
  } else if (kt != NULL && strcmp(kt, t->type) != 0 && t->kind_case != MUSTER__V1__TASK_SPEC__KIND_PLUGIN) {
    add(p, "%s.type: '%s' does not match the '%s' section", path, t->type, kt);
  }
  int builtin = 0;
  for (size_t k = 0; k < 6; k++) builtin |= strcmp(t->type, builtin_types[k]) == 0;
  int internal = strcmp(t->type, MU_PLUGIN_INSTALL_TYPE) == 0; /* every agent serves it */
  if (!builtin && !internal && (limits->type_known == NULL || !limits->type_known(limits->ud, t->type)))
    add(p, "%s.type: unknown task type '%s' (no agent serves it)", path, t->type);
  else if (builtin && kt == NULL) add(p, "%s: type '%s' needs its '%s' section", path, t->type, t->type);
  mu_err pv = {0};
  if (t->plugin_version != NULL && t->plugin_version[0] != '\0' && mu_version_range_check(t->plugin_version, &pv) != 0)
    add(p, "%s.%s", path, pv.msg);
  char sub[96];
  snprintf(sub, sizeof sub, "%s.timeout", path);
  check_duration(p, sub, t->timeout, 1);
  if (t->retries > 100) add(p, "%s.retries: at most 100, got %u", path, t->retries);
  if (t->backoff != NULL) {
    snprintf(sub, sizeof sub, "%s.backoff.initial", path);
    check_duration(p, sub, t->backoff->initial, 0);
    snprintf(sub, sizeof sub, "%s.backoff.max", path);
    check_duration(p, sub, t->backoff->max, 0);
    if (t->backoff->multiplier < 0 || t->backoff->multiplier > 100)
      add(p, "%s.backoff.multiplier: must be 0..100", path);
  }
  if (t->resources != NULL) {
    snprintf(sub, sizeof sub, "%s.resources.memory", path);
    check_size(p, sub, t->resources->memory);
    snprintf(sub, sizeof sub, "%s.resources.output_limit", path);
    check_size(p, sub, t->resources->output_limit);
    if (t->resources->cpu[0] != '\0') {
      char *end;
      double cpu = strtod(t->resources->cpu, &end);
      if (*end != '\0' || cpu <= 0 || cpu > 1024)
        add(p, "%s.resources.cpu: expected cores like \"0.5\" or \"2\", got \"%s\"", path, t->resources->cpu);
    }
  }
  for (size_t k = 0; k < t->n_env; k++) {
    const char *key = t->env[k]->key;
    int ok = key[0] != '\0' && !isdigit((unsigned char)key[0]);
    for (const char *c = key; *c && ok; c++) ok = isalnum((unsigned char)*c) || *c == '_';
    if (!ok) add(p, "%s.env: bad variable name '%s'", path, key);
  }
  char why[300];
  if (t->bundle[0] != '\0' && limits->bundle_resolve == NULL)
    add(p, "%s.bundle: bundle '%s' not found (no bundle is stored on this control plane)", path, t->bundle);
  else if (t->bundle[0] != '\0' && limits->bundle_resolve(limits->ud, t->bundle, why, sizeof why) != 0)
    add(p, "%s.bundle: %s", path, why);
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_SHELL) {
    const Muster__V1__ShellTask *s = t->shell;
    int forms = (s->script[0] != '\0') + (s->script_file[0] != '\0') + (s->n_command > 0);
    if (forms != 1) add(p, "%s.shell: set exactly one of script, script_file or command (got %d)", path, forms);
  }
  if (t->kind_case == MUSTER__V1__TASK_SPEC__KIND_HTTP && t->http->url[0] == '\0')
    add(p, "%s.http.url: required", path);
  check_exec_limits(p, t, path);
  check_secrets(p, t, path);
  check_sandbox(p, t, path);
}

static void add_ref_problem(void *ud, const char *problem) { add(ud, "%s", problem); }

static int host_order(const void *pa, const void *pb, void *ud) {
  char *const *hosts = ud;
  size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
  int c = strcmp(hosts[a], hosts[b]);
  return c != 0 ? c : (a > b) - (a < b);
}

/* The same entry twice in hosts: sorted by name (then position) so a long list costs
 * n log n; each later copy is reported at its own index. */
static void check_duplicate_hosts(problems *p, const Muster__V1__Target *t) {
  if (t->n_hosts < 2) return;
  size_t *idx = malloc(t->n_hosts * sizeof *idx);
  if (idx == NULL) {
    add(p, "target.hosts: out of memory checking %zu hosts", t->n_hosts);
    return;
  }
  for (size_t i = 0; i < t->n_hosts; i++) idx[i] = i;
  qsort_r(idx, t->n_hosts, sizeof *idx, host_order, t->hosts);
  for (size_t i = 1; i < t->n_hosts; i++)
    if (strcmp(t->hosts[idx[i]], t->hosts[idx[i - 1]]) == 0)
      add(p, "target.hosts[%zu]: duplicate host '%.200s' in target.hosts", idx[i], t->hosts[idx[i]]);
  free(idx);
}

int mu_jobspec_validate(Muster__V1__JobSpec *spec, const mu_jobspec_limits *limits, mu_rollout *ret_rollout,
                        mu_err *err) {
  problems p;
  memset(&p, 0, sizeof p);
  mu_rollout r;
  if (strlen(spec->name) > 128) add(&p, "name: at most 128 characters");

  const Muster__V1__Target *t = spec->target;
  if (t == NULL) {
    add(&p, "target: required (all, selector, hosts or any)");
  } else {
    int kinds = (t->all != 0) + (t->selector[0] != '\0') + (t->n_hosts > 0) + (t->any[0] != '\0');
    if (kinds != 1) add(&p, "target: set exactly one of all, selector, hosts or any (got %d)", kinds);
    const char *sel_text = t->selector[0] ? t->selector : t->any;
    if (sel_text[0] != '\0') {
      mu_selector *sel = NULL;
      mu_err e = {0};
      if (mu_selector_parse(sel_text, &sel, &e) != 0)
        add(&p, "target.%s: %s", t->selector[0] ? "selector" : "any", e.msg);
      mu_selector_free(sel);
    }
    for (size_t i = 0; i < t->n_hosts; i++)
      if (t->hosts[i][0] == '\0') add(&p, "target.hosts[%zu]: empty host name", i);
    check_duplicate_hosts(&p, t);
  }

  mu_rollout_parse(spec->rollout, &r, rollout_problem, &p);

  if (spec->n_tasks == 0) add(&p, "tasks: at least one task is required");
  if (spec->n_tasks > limits->max_tasks) add(&p, "tasks: %zu tasks, the limit is %u", spec->n_tasks, limits->max_tasks);
  for (size_t i = 0; i < spec->n_tasks && i < 1000; i++) {
    Muster__V1__TaskSpec *task = spec->tasks[i];
    if (task->name[0] == '\0') {
      char name[32];
      snprintf(name, sizeof name, "task-%zu", i + 1);
      /* an empty name sent on the wire is an allocated "" (unpack, mu_pb_dup of one) */
      if (task->name != protobuf_c_empty_string) free(task->name);
      task->name = strdup(name);
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(spec->tasks[j]->name, task->name) == 0)
        add(&p, "tasks[%zu].name: '%s' is already the name of tasks[%zu]", i, task->name, j);
    for (const char *c = task->name; *c; c++)
      if (!isalnum((unsigned char)*c) && strchr("._-", *c) == NULL) {
        add(&p, "tasks[%zu].name: '%s' may only hold letters, digits, '.', '_' and '-'", i, task->name);
        break;
      }
    check_task(&p, task, i, limits);
  }
  /* after the loop above: references may name any task, defaults filled in */
  for (size_t i = 0; i < spec->n_tasks && i < 1000; i++) mu_jobspec_refs_check(spec, i, add_ref_problem, &p);
  if (p.n > 0) return mu_err_set(err, MU_EINVAL, "%s", p.buf);
  *ret_rollout = r;
  return 0;
}

Muster__V1__JobSpec *mu_jobspec_copy(const Muster__V1__JobSpec *spec) {
  return (Muster__V1__JobSpec *)mu_pb_dup(&spec->base);
}

/* The command of an ad hoc run as a task of its type. shell: one string is a command line,
 * several an argv. python: `-c CODE [ARGS]`, `-m MODULE [ARGS]` or `SCRIPT [ARGS]` (a file
 * from the bundle or on the host). http: `[METHOD] URL`. Returns NULL after filling why. */
static const char *adhoc_kind(const Muster__V1__RunAdhocRequest *req, const char *type, Muster__V1__TaskSpec *task,
                              Muster__V1__ShellTask *shell, Muster__V1__PythonTask *py, Muster__V1__HttpTask *http,
                              char *why, size_t why_size) {
  char **cmd = req->command;
  size_t n = req->n_command;
  if (strcmp(type, "shell") == 0) {
    task->kind_case = MUSTER__V1__TASK_SPEC__KIND_SHELL;
    task->shell = shell;
    if (n == 1) {
      shell->script = cmd[0];
    } else {
      shell->n_command = n;
      shell->command = cmd;
    }
    return "shell";
  }
  if (strcmp(type, "python") == 0) {
    task->kind_case = MUSTER__V1__TASK_SPEC__KIND_PYTHON;
    task->python = py;
    size_t first_arg = 1;
    if ((strcmp(cmd[0], "-c") == 0 || strcmp(cmd[0], "-m") == 0) && n < 2) {
      snprintf(why, why_size, "command: python %s needs a value", cmd[0]);
      return NULL;
    }
    if (strcmp(cmd[0], "-c") == 0) {
      py->code = cmd[1];
      first_arg = 2;
    } else if (strcmp(cmd[0], "-m") == 0) {
      py->module = cmd[1];
      first_arg = 2;
    } else {
      py->script = cmd[0];
    }
    py->n_args = n - first_arg;
    py->args = cmd + first_arg;
    return "python";
  }
  if (strcmp(type, "http") == 0) {
    if (n > 2) {
      snprintf(why, why_size, "command: an http run takes [METHOD] URL, got %zu words", n);
      return NULL;
    }
    task->kind_case = MUSTER__V1__TASK_SPEC__KIND_HTTP;
    task->http = http;
    http->method = n == 2 ? cmd[0] : "GET";
    http->url = cmd[n - 1];
    return "http";
  }
  snprintf(why, why_size,
           "type: ad hoc runs take shell, python or http (got '%s'); submit a "
           "job file for other task types",
           type);
  return NULL;
}

int mu_jobspec_adhoc(const Muster__V1__RunAdhocRequest *req, Muster__V1__JobSpec **ret_spec, mu_err *err) {
  if (req->n_command == 0) return mu_err_set(err, MU_EINVAL, "command: required (the command to run)");
  Muster__V1__JobSpec spec = MUSTER__V1__JOB_SPEC__INIT;
  Muster__V1__TaskSpec task = MUSTER__V1__TASK_SPEC__INIT;
  Muster__V1__ShellTask shell = MUSTER__V1__SHELL_TASK__INIT;
  Muster__V1__PythonTask py = MUSTER__V1__PYTHON_TASK__INIT;
  Muster__V1__HttpTask http = MUSTER__V1__HTTP_TASK__INIT;
  char why[300];
  const char *type = adhoc_kind(req, req->type[0] ? req->type : "shell", &task, &shell, &py, &http, why, sizeof why);
  if (type == NULL) return mu_err_set(err, MU_EINVAL, "%s", why);
  Muster__V1__TaskSpec *tasks[1] = {&task};
  Muster__V1__Target empty_target = MUSTER__V1__TARGET__INIT;
  Muster__V1__TaskSpec__EnvEntry *env = calloc(req->n_env + 1, sizeof *env);
  Muster__V1__TaskSpec__EnvEntry **env_ptrs = calloc(req->n_env + 1, sizeof *env_ptrs);
  if (env == NULL || env_ptrs == NULL) {
    free(env);
    free(env_ptrs);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  char name[200];
  snprintf(name, sizeof name, "run: %.120s", req->command[0]); /* names are at most 128 */
  spec.name = name;
  spec.target = req->target ? req->target : &empty_target;
  spec.rollout = req->rollout;
  spec.n_tasks = 1;
  spec.tasks = tasks;
  task.name = "run";
  task.type = (char *)type;
  task.timeout = req->timeout;
  task.retries = req->retries;
  task.bundle = req->bundle;
  task.resources = req->resources;
  task.run_as = req->run_as;
  for (size_t i = 0; i < req->n_env; i++) {
    muster__v1__task_spec__env_entry__init(&env[i]);
    env[i].key = req->env[i]->key;
    env[i].value = req->env[i]->value;
    env_ptrs[i] = &env[i];
  }
  task.n_env = req->n_env;
  task.env = env_ptrs;
  /* built once over the request's strings; the one copy is what the job keeps */
  Muster__V1__JobSpec *copy = mu_jobspec_copy(&spec);
  free(env);
  free(env_ptrs);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  *ret_spec = copy;
  return 0;
}
