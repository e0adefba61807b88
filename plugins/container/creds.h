/* The launcher's credential and confinement steps, shared by the container's pid 1 and its
 * health checks (internal to plugins/container). Each ends the calling process on failure
 * with a "muster-container: ..." line on stderr and exit code 126 (127: no such program). */
#ifndef MU_CREDS_H
#define MU_CREDS_H

#include <stdbool.h>
#include <sys/types.h>

#include "plugins/container/launch.h"

__attribute__((noreturn, format(printf, 2, 3))) void mu_launch_die(int code, const char *fmt, ...);

/* "name|uid[:group|gid]" from the image's /etc/passwd and /etc/group (read where / is now);
 * NULL/"" = 65534 and its group. Root refused unless allow_root. */
void mu_creds_resolve_user(const char *spec, bool allow_root, uid_t *uid, gid_t *gid);

/* Bounding set down to s->cap_add, supplementary groups dropped, gid/uid switched, the kept
 * capabilities effective/permitted/inheritable (ambient for a non-root user). */
void mu_creds_drop(const mu_launch_spec *s, uid_t uid, gid_t gid);

/* The default seccomp profile (see launch.h); load it last, after no_new_privs. */
void mu_seccomp_load_default(void);

/* execve of args with s->env, argv[0] looked up in the env's PATH. */
__attribute__((noreturn)) void mu_exec_in_container(const mu_launch_spec *s, const char *const *args);

#endif
