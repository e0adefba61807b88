/* The common part of a task spec, parsed from the proto3 JSON form of muster.v1.TaskSpec
 * (lowerCamel or snake_case field names): everything the runner and supervisor apply to any
 * task type (timeout, env, secrets, run-as, limits, stdin, priority), the resolved task type, and the
 * type's own section as JSON text for its plugin. */
#ifndef MU_SPEC_H
#define MU_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/exec/cgroup.h"
#include "agent/exec/sandbox.h"
#include "lib/base/err.h"

#define MU_SPEC_MAX_ENV 1024

typedef struct mu_spec_secret {
  char *name;
  char *value;
  bool as_file;
} mu_spec_secret;

typedef struct mu_task_spec {
  char *name;
  char *type;         /* resolved: "shell", or the plugin type */
  int64_t timeout_ms; /* 0 = none */
  char **env;         /* NULL-terminated "K=V" from spec.env */
  size_t n_env;
  mu_spec_secret *secrets;
  size_t n_secrets;
  char *working_dir; /* NULL = the task dir */
  char *run_as;      /* NULL = the runner's default */
  mu_cgroup_limits limits;
  uint64_t output_limit; /* 0 = the runner's default */
  int32_t priority;      /* higher runs first when the agent queues; default 0 */
  char *stdin_data;      /* NULL when none */
  size_t stdin_len;
  char *config_json;       /* the type's section, "{}" when absent */
  mu_sandbox_spec sandbox; /* .set false when the spec has none */
} mu_task_spec;

/* Parses and checks json. *ret is owned by the caller (mu_task_spec_free). MU_EINVAL with a
 * message naming the field ("resources.memory: bad size \"lots\"") on bad input. */
int mu_task_spec_parse(const char *json, mu_task_spec **ret, mu_err *err);
void mu_task_spec_free(mu_task_spec *s);

#endif
