/* The container launcher: runs one process from an unpacked rootfs in new mount, pid, uts,
 * ipc, cgroup (and, for network "none", net) namespaces, as the `muster-container` helper's
 * child, after the helper was placed in the task's cgroup by muster-exec.
 *
 * Order in the child (pid 1 of the new pid namespace):
 *   all mounts private; the rootfs as an overlay (the store's rootfs read-only below, the
 *   task dir's upper/work above, so a task never changes the store); mount points created
 *   with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS) (an image's /dev or /proc symlink is
 *   replaced by a directory, never followed) and mounted by fd; /proc with kcore, sysrq-trigger,
 *   keys, timer_list, sched_debug masked and /proc/sys, /proc/irq, /proc/bus, /proc/fs
 *   read-only; a tmpfs /dev with null, zero, full, random, urandom, tty, pts, shm (null checked
 *   to be char 1:3); tmpfs /tmp and /run; bind volumes; pivot_root and the old root detached;
 *   the root read-only (default) with nosuid and nodev; hostname; lo up.
 *   Then credentials: the user resolved from the image's own /etc/passwd and /etc/group,
 *   supplementary groups dropped, capabilities dropped from the bounding, effective,
 *   permitted, inheritable and ambient sets except `cap_add`, no_new_privs, parent-death
 *   signal set after the uid switch, every fd above 2 closed, the default seccomp filter
 *   loaded last, then exec. */
#ifndef MU_LAUNCH_H
#define MU_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugins/container/shim.h"

typedef struct mu_volume {
  const char *source; /* host path (already checked against the allow-list) */
  const char *target; /* absolute path in the container */
  bool read_only;
} mu_volume;

/* A command run inside the running container (same namespaces, user, capabilities, seccomp)
 * every interval; `retries` failures in a row (non-zero exit or past the timeout) end the
 * container as unhealthy. */
typedef struct mu_health_check {
  const char *const *argv; /* NULL: no health check */
  int64_t interval_ms;     /* 0 = 30000 */
  int64_t timeout_ms;      /* 0 = 30000 */
  int64_t start_period_ms; /* before the first check; 0 = interval */
  int retries;             /* 0 = 3 */
} mu_health_check;

typedef struct mu_launch_spec {
  const char *rootfs;      /* the store's unpacked rootfs (never written) */
  const char *state_dir;   /* per-task dir for the overlay's upper/work and the mount point */
  const char *const *argv; /* NULL-terminated, argv[0] looked up in the container's PATH */
  const char *const *env;  /* NULL-terminated K=V, the whole environment */
  const char *cwd;         /* absolute, in the container */
  const char *user;        /* "name|uid[:group|gid]"; NULL/"" = 65534:65534 */
  bool allow_root;         /* uid 0 allowed (agent policy and the task asked) */
  bool host_network;
  bool read_only_root;
  const char *hostname;
  const char *const *cap_add; /* NULL-terminated names ("NET_BIND_SERVICE" or "CAP_..."); may be NULL */
  const mu_volume *volumes;
  size_t n_volumes;
  const char *volume_roots; /* colon list the resolved sources must be under; NULL = no check */
  const char *secrets_dir;  /* the task's file secrets on the host (a tmpfs); copied as 0400
                                 * files owned by the container's user to /run/secrets; NULL = none */
  const char *secrets_skip; /* a secret not given to the container (the registry credentials) */
  int stop_signal;          /* what a TERM to the helper becomes (the image's StopSignal); 0 = SIGTERM */
  int watch_pid;            /* the agent: when it dies, the container is killed at once (never
                                 * left running unseen) unless shim is set; 0 = none */
  mu_shim *shim;            /* opened by the caller, or NULL / dir "": the container's output goes
                                 * through it and it outlives the agent (shim.h) */
  mu_health_check health;
  char *report; /* out: why the helper ended the container ("unhealthy: ..."), or "" */
  size_t report_cap;
} mu_launch_spec;

/* "SIGINT", "INT" or "2" -> 2; -1 when unknown. */
int mu_signal_from_name(const char *name);

/* Runs the container (in its own process group) and waits for it, forwarding
 * TERM (as stop_signal)/INT/HUP/QUIT/USR1/USR2. Returns the
 * wait status of the container's pid 1, or -1 with a message on stderr when it could not be
 * started. Must run as root. */
int mu_launch_run(mu_launch_spec *spec);

/* Capability number for a name ("CHOWN", "cap_chown"), or -1. */
int mu_cap_from_name(const char *name);

#endif
