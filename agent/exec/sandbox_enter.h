/* muster-exec's side of a task sandbox (sandbox.h makes its options): called as root, after
 * the cgroup join and before the uid switch; the program forked afterwards inherits it.
 *
 * Order: new mount namespace (+ network namespace with `lo` up for net_none), every mount
 * private; the writable paths opened (O_PATH) while they are still reachable; with ro_root
 * every mount read-only (mount_setattr, recursive) but /proc, and fresh tmpfs /tmp and
 * /dev/shm; each hidden directory covered by an empty tmpfs (a file by /dev/null); each
 * writable path bound back from its fd onto its own path (made inside a covering tmpfs when
 * hidden) and made writable; the covering tmpfs mounts then read-only; the cwd entered again
 * so that it is the sandbox's view of it. */
#ifndef MU_SANDBOX_ENTER_H
#define MU_SANDBOX_ENTER_H

#include <stdbool.h>
#include <stddef.h>

#define MU_SB_MAX 160

typedef struct mu_sb_opts {
  bool on; /* any --sb-* option given */
  bool net_none;
  bool ro_root;
  const char *rw[MU_SB_MAX];
  size_t n_rw;
  const char *hide[MU_SB_MAX];
  size_t n_hide;
} mu_sb_opts;

/* 0, or -1 with msg ("sandbox: writable path /x: No such file or directory"). */
int mu_sandbox_enter(const mu_sb_opts *o, char *msg, size_t cap);

#endif
