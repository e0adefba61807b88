/* Where an attempt's file secrets (`as: file`) live, never on the spool disk: a tmpfs mounted on
 * <task dir>/.secrets (mode 0700, nosuid, nodev, noexec) when the agent may mount (root), else
 * a 0700 directory on /dev/shm (a tmpfs) or, failing that, $XDG_RUNTIME_DIR, under
 * "muster-secrets-<agent id>". Each secret is one 0400 file named after it, owned by the task's
 * user. When the attempt ends every file is overwritten with zeros and unlinked, and the
 * directory is removed (the tmpfs unmounted). A crashed agent's leftovers are removed at the
 * next start (mu_secret_dir_sweep). All of it is small and in memory; it runs on the loop. */
#ifndef MU_SECRET_DIR_H
#define MU_SECRET_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/base/err.h"

typedef struct mu_secret_dir mu_secret_dir;

/* Makes the directory for an attempt whose task dir is task_dir (fallback name from tag, the
 * agent id, and the task dir's last part). bytes: the secrets' total size, to size the tmpfs.
 * chown_to: owned by uid/gid. *ret is the caller's: release with mu_secret_dir_wipe. MU_EIO
 * naming the paths tried when there is nowhere in memory to put it. */
int mu_secret_dir_create(const char *task_dir, const char *tag, size_t bytes, bool chown_to, uid_t uid, gid_t gid,
                         mu_secret_dir **ret, mu_err *err);
const char *mu_secret_dir_path(const mu_secret_dir *sd);
/* Writes one secret as a 0400 file called name (a file name, checked at submit); *ret_path
 * (caller frees) is its path. MU_EINVAL for a bad name, MU_EIO. */
int mu_secret_dir_write(mu_secret_dir *sd, const char *name, const void *value, size_t len, char **ret_path,
                        mu_err *err);
/* Overwrites and unlinks every file, removes the directory (unmounts the tmpfs), frees sd.
 * NULL is fine. */
void mu_secret_dir_wipe(mu_secret_dir *sd);

/* At start: unmounts secret tmpfs mounts left under <spool_dir>/work and wipes the fallback
 * directory of tag (the agent id), both left by an agent that did not stop cleanly. */
void mu_secret_dir_sweep(const char *spool_dir, const char *tag);

#endif
