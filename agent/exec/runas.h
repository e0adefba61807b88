/* Run-as users: "user[:group]" (names or numbers) resolved to uid/gid, and the policy check
 * that only a root agent may switch users. */
#ifndef MU_RUNAS_H
#define MU_RUNAS_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/base/err.h"

typedef struct mu_runas {
  bool set; /* false: run as the agent's own user */
  uid_t uid;
  gid_t gid;
  char name[64]; /* as given, for messages */
} mu_runas;

/* Resolves spec ("nobody", "nobody:nogroup", "65534:65534"); NULL or "" gives set=false.
 * The group defaults to the user's primary group. MU_EINVAL names an unknown user/group and
 * host (the agent's id, for "user 'x' does not exist on web-3"; NULL: "this host").
 * Uses getpwnam_r/getgrnam_r: call at assign time, not in a hot path. */
int mu_runas_resolve(const char *spec, const char *host, mu_runas *ret, mu_err *err);

/* MU_EPERM when ra asks for a different user and the agent is not root. */
int mu_runas_check(const mu_runas *ra, mu_err *err);

#endif
