/* Task sandboxes (TaskSpec.sandbox, docs/security.md#task-sandboxes): the `sandbox` section a
 * spec asks for, the agent's policy (defaults, and task types always sandboxed), and the
 * muster-exec options that set the sandbox up between fork and exec (sandbox_enter.h).
 *
 * A sandboxed process has its own mount namespace in which the host's files are read-only
 * (read_only_root) except the task dir and the writable paths, the hidden paths and the
 * agent's spool dir are empty, /tmp and /dev/shm are fresh tmpfs mounts, and, with network
 * none, its own network namespace with only `lo`. It also has its own pid namespace (it sees
 * only its own processes; hostPid: true opts out) and the container launcher's default
 * seccomp filter (lib/seccomp; seccompUnconfined: true opts out). A type the agent forces
 * into a sandbox cannot opt out of either. */
#ifndef MU_SANDBOX_H
#define MU_SANDBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"

#define MU_SANDBOX_MAX_PATHS 64 /* writable or hidden paths, per spec and per policy */

typedef struct mu_sandbox_spec {
  bool set;      /* the spec has a sandbox section */
  char *network; /* NULL (the agent's default), "none" or "host" */
  bool read_only_root;
  bool host_pid;           /* no pid namespace: the task sees the host's processes */
  bool seccomp_unconfined; /* no seccomp filter */
  char **writable;         /* absolute host paths */
  size_t n_writable;
  char **hidden;
  size_t n_hidden;
} mu_sandbox_spec;

/* The agent's side; all borrowed (they live as long as the agent's config). */
typedef struct mu_sandbox_policy {
  const char *const *force_types; /* types sandboxed whether or not the spec asks */
  size_t n_force_types;
  bool network_host;           /* default network "host"; false: "none", and forced
                                      * types may not ask for "host" */
  bool read_only_root;         /* every sandbox's host files read-only */
  const char *const *writable; /* writable in every sandbox; a forced type's own
                                      * writable paths must lie under one of these */
  size_t n_writable;
  const char *const *hidden; /* hidden in every sandbox */
  size_t n_hidden;
} mu_sandbox_policy;

/* Parses root's "sandbox" object (absent: out->set false). MU_EINVAL naming the field
 * ("sandbox.writable[0]: ...") for a bad network, a relative path or one with "..", "/", or
 * more than MU_SANDBOX_MAX_PATHS paths. out is the caller's (mu_sandbox_spec_free), also on
 * error. */
int mu_sandbox_spec_parse(json_t *root, mu_sandbox_spec *out, mu_err *err);
void mu_sandbox_spec_free(mu_sandbox_spec *s);

/* The muster-exec options ("--sb-net", "none", "--sb-ro-root", "--sb-rw", PATH, ...) for a
 * process of a task of type with spec s, under policy pol (NULL: no policy), whose task dir is
 * task_dir and whose agent keeps its state in spool_dir. *ret_argv is NULL-terminated and the
 * caller's (free each and the array), or NULL when no sandbox applies. task_dir NULL only
 * checks. MU_EPERM naming the field when the policy refuses what the spec asks (network host,
 * a writable path outside the policy's, for a forced type) or the agent cannot make a
 * sandbox (not root); MU_ENOMEM. */
int mu_sandbox_args(const mu_sandbox_spec *s, const char *type, const mu_sandbox_policy *pol, const char *spool_dir,
                    const char *task_dir, char ***ret_argv, mu_err *err);

#endif
