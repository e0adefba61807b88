/* Building a task's environment from layers (see env.h): a small bounded list with
 * replace-by-name, so a spec can override PATH and nothing can override MUSTER_*. */
#include "agent/exec/env.h"

#include "lib/base/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct envl {
  char **v;
  size_t n;
} envl;

static int env_set(envl *e, const char *kv, mu_err *err) {
  const char *eq = strchr(kv, '=');
  if (eq == NULL || eq == kv) return 0; /* not a variable; ignore */
  size_t klen = (size_t)(eq - kv);
  char *copy = strdup(kv);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "env: out of memory");
  for (size_t i = 0; i < e->n; i++) {
    if (strncmp(e->v[i], kv, klen) == 0 && e->v[i][klen] == '=') {
      free(e->v[i]);
      e->v[i] = copy;
      return 0;
    }
  }
  if (e->n >= MU_ENV_MAX) {
    free(copy);
    return mu_err_set(err, MU_ENOSPC, "env: more than %d variables", MU_ENV_MAX);
  }
  e->v[e->n++] = copy;
  return 0;
}

int mu_env_build(bool inherit_env, const char *const *const *layers, size_t n_layers, const mu_env_context *ctx,
                 char ***ret, mu_err *err) {
  envl e = {calloc(MU_ENV_MAX + 1, sizeof(char *)), 0};
  if (e.v == NULL) return mu_err_set(err, MU_ENOMEM, "env: out of memory");
  int rc = 0;
  if (inherit_env) {
    for (char **p = environ; p != NULL && *p != NULL && rc == 0; p++) rc = env_set(&e, *p, err);
  } else {
    rc = env_set(&e, "PATH=" MU_ENV_DEFAULT_PATH, err);
  }
  for (size_t l = 0; l < n_layers && rc == 0; l++)
    for (const char *const *p = layers[l]; p != NULL && *p != NULL && rc == 0; p++) rc = env_set(&e, *p, err);
  if (rc == 0 && ctx != NULL) {
    char buf[4200];
    const struct {
      const char *k, *v;
    } vars[] = {{"MUSTER_JOB_ID", ctx->job_id},
                {"MUSTER_TASK_ID", ctx->task_id},
                {"MUSTER_AGENT_ID", ctx->agent_id},
                {"MUSTER_TASK_DIR", ctx->task_dir}};
    for (size_t i = 0; i < sizeof vars / sizeof *vars && rc == 0; i++) {
      snprintf(buf, sizeof buf, "%s=%s", vars[i].k, vars[i].v ? vars[i].v : "");
      rc = env_set(&e, buf, err);
    }
    snprintf(buf, sizeof buf, "MUSTER_ATTEMPT=%u", ctx->attempt);
    if (rc == 0) rc = env_set(&e, buf, err);
    /* the job's trace (lib/base/trace.h): HTTP calls a task makes can carry TRACEPARENT */
    char trace[MU_TRACE_ID_HEX], parent[MU_TRACEPARENT_LEN];
    mu_trace_id(ctx->job_id ? ctx->job_id : "", trace);
    mu_traceparent(ctx->job_id ? ctx->job_id : "", ctx->task_id ? ctx->task_id : "", ctx->attempt, parent);
    snprintf(buf, sizeof buf, "MUSTER_TRACE_ID=%s", trace);
    if (rc == 0) rc = env_set(&e, buf, err);
    snprintf(buf, sizeof buf, "TRACEPARENT=%s", parent);
    if (rc == 0) rc = env_set(&e, buf, err);
  }
  if (rc != 0) {
    mu_env_free(e.v);
    return rc;
  }
  *ret = e.v;
  return 0;
}

void mu_env_free(char **env) {
  if (env == NULL) return;
  for (size_t i = 0; env[i] != NULL; i++) {
    explicit_bzero(env[i], strlen(env[i])); /* env secrets are among them */
    free(env[i]);
  }
  free(env);
}
