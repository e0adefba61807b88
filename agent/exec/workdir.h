/* Per-attempt task directories under the spool: created fresh (mkdtemp) for every attempt,
 * owned by the run-as user, removed afterwards on a libuv worker so a big tree never stalls
 * the loop. */
#ifndef MU_WORKDIR_H
#define MU_WORKDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/base/err.h"

/* Creates "<spool>/work/<task>.<attempt>.XXXXXX" (task id sanitised to [A-Za-z0-9._-]),
 * mode 0700, chowned to uid/gid when chown is true. *ret_path is the caller's (free()). */
int mu_workdir_create(const char *spool_dir, const char *task_id, uint32_t attempt, bool chown_to, uid_t uid, gid_t gid,
                      char **ret_path, mu_err *err);

/* Removes path recursively on a worker; cb(arg, 0 or -errno) on the loop (cb may be NULL).
 * Takes ownership of path. Returns 0 or the uv_queue_work error (path freed then). */
int mu_workdir_remove(uv_loop_t *loop, char *path, void (*cb)(void *arg, int status), void *arg);

#endif
