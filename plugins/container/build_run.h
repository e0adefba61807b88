/* A RUN step of `muster image build`: the command in the container runtime (launch.h) over
 * the build's rootfs as the overlay's lower layer, so every change lands in the step's
 * overlay upper directory (the layer's diff). Internal to plugins/container's builder.
 *
 * The launcher runs it with the step's Env, WorkingDir and User (root allowed: builds run as
 * the image's user, root unless USER says otherwise), a writable root, network none unless
 * host_network, Docker's default capability set for builds (CHOWN, DAC_OVERRIDE, FOWNER,
 * FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, MKNOD, AUDIT_WRITE,
 * SETFCAP), no_new_privs and the default seccomp filter. Its stdout and stderr go to out
 * line by line with a prefix, and the last bytes are kept for the error message. A step
 * past timeout_ms is killed (the container's pid 1 has a parent-death signal, the pid
 * namespace takes every process with it). */
#ifndef MU_BUILD_RUN_H
#define MU_BUILD_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/base/err.h"

typedef struct mu_build_run {
  const char *rootfs;    /* read-only lower layer */
  const char *state_dir; /* created; upper/ holds the diff afterwards */
  const char *const *argv;
  const char *const *env;
  const char *cwd;
  const char *user;
  bool host_network;
  int64_t timeout_ms; /* 0 = 30 minutes */
  FILE *out;          /* the step's output, NULL = stdout */
  char tail[2048];    /* out: the last output, NUL-terminated */
} mu_build_run;

/* 0 when the command exited 0. MU_EIO with "exit N" / "killed by signal N" in err when it
 * failed, MU_ETIMEDOUT past the limit; the output tail is in r->tail either way. */
int mu_build_run_step(mu_build_run *r, mu_err *err);

#endif
