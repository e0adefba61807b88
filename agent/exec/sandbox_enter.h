/* muster-exec's side of a task sandbox (sandbox.h makes its options): called as root, after
 * the cgroup join and before the uid switch; the program forked afterwards inherits it.
 *
 * Order: new mount namespace (+ network namespace with `lo` up for net_none), every mount
 * private; the writable paths opened (O_PATH) while they are still reachable; with ro_root
 * every mount read-only (mount_setattr, recursive) but /proc, and fresh tmpfs /tmp and
 * /dev/shm; each hidden directory covered by an empty tmpfs (a file by /dev/null); each
 * writable path bound back from its fd onto its own path (made inside a covering tmpfs when
 * hidden) and made writable; the covering tmpfs mounts then read-only; the cwd entered again
 * so that it is the sandbox's view of it.
 *
 * With pid_ns (the default of every sandbox; sandbox.hostPid opts out) the unshare adds a pid
 * namespace, and muster-exec calls mu_sandbox_pid_init next: its child is the namespace's
 * pid 1, mounts a fresh /proc (the task's processes only: `ps` and /proc show no host
 * process) and goes on as muster-exec (run-as user, the program's fork, wait4, report); the
 * parent waits for it and exits as the program did. When the program ends, pid 1 does, and
 * the kernel kills whatever the task left in the namespace. With seccomp (also the default;
 * sandbox.seccompUnconfined opts out), muster-exec loads lib/seccomp's default filter (the
 * container launcher's) as root before the uid switch, so it binds the program and all it
 * starts, setuid programs included, without no_new_privs. */
#ifndef MU_SANDBOX_ENTER_H
#define MU_SANDBOX_ENTER_H

#include <stdbool.h>
#include <stddef.h>

#define MU_SB_MAX 160

typedef struct mu_sb_opts {
  bool on; /* any --sb-* option given */
  bool net_none;
  bool ro_root;
  bool pid_ns;  /* --sb-pid: a pid namespace (mu_sandbox_pid_init) */
  bool seccomp; /* --sb-seccomp: the default seccomp filter */
  const char *rw[MU_SB_MAX];
  size_t n_rw;
  const char *hide[MU_SB_MAX];
  size_t n_hide;
} mu_sb_opts;

/* 0, or -1 with msg ("sandbox: writable path /x: No such file or directory"). */
int mu_sandbox_enter(const mu_sb_opts *o, char *msg, size_t cap);

/* After mu_sandbox_enter with pid_ns: forks the namespace's pid 1. Returns only in that child,
 * with /proc mounted for the namespace and *ret_status_fd set: the child writes the program's
 * wait status (an int) there before it exits (mu_sandbox_pid_status). The parent holds nothing
 * of the task (stdio to /dev/null, other fds closed), waits for the child and exits with the
 * program's status (its code, or the signal that killed it), or 126 when the child could not
 * say. Ends the process with 126 and a message on stderr when the fork or mount fails. */
void mu_sandbox_pid_init(int *ret_status_fd);

/* Ends the process the way a child with wait status `status` ended: the same exit code, or
 * the same signal (no core dump), so muster-exec's parent sees the program's end (also used
 * by muster-exec itself). */
__attribute__((noreturn)) void mu_exit_as(int status);

/* The pid 1 child's last word to its parent: the program's wait status. Closes fd. */
void mu_sandbox_pid_status(int fd, int status);

#endif
