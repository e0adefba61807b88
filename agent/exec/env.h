/* The environment a task process gets: nothing of the agent's own environment except a minimal
 * PATH (unless inherit_env), then the spec's env, env secrets, the plugin's extra variables,
 * and the MUSTER_* context variables, later entries replacing earlier ones with the same name.
 * MUSTER_CONTROL is added by the supervisor. */
#ifndef MU_ENV_H
#define MU_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_ENV_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MU_ENV_MAX 4096

typedef struct mu_env_context {
  const char *job_id;
  const char *task_id;
  uint32_t attempt;
  const char *agent_id;
  const char *task_dir;
} mu_env_context;

/* Builds the NULL-terminated "K=V" list. layers are NULL-terminated lists applied in order
 * (NULL entries in `layers` are skipped). The caller owns *ret (mu_env_free). MU_ENOSPC past
 * MU_ENV_MAX entries. */
int mu_env_build(bool inherit_env, const char *const *const *layers, size_t n_layers, const mu_env_context *ctx,
                 char ***ret, mu_err *err);
void mu_env_free(char **env);

#endif
