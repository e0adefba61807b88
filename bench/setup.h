/* Set-up helpers the benchmark programs share: finding the daemons to run, picking a free
 * loopback port, stopping them, and removing a work directory. */
#ifndef MU_BENCH_SETUP_H
#define MU_BENCH_SETUP_H

#include <sys/types.h>
#include <uv.h>

#include "lib/base/err.h"

/* The binary from flag (when non-NULL), else rel found in the runfiles (bazel run's working
 * directory, then RUNFILES_DIR, then argv0.runfiles), else in bazel-bin of a workspace
 * checkout. ret_path holds PATH_MAX bytes. MU_ENOENT names the flag to pass. */
int mu_bench_find_binary(const char *flag, const char *flag_name, const char *rel, const char *argv0, char *ret_path,
                         mu_err *err);

/* A loopback port that was free a moment ago (the child binds it right after). */
int mu_bench_free_port(int *ret_port, mu_err *err);

/* Removes dir and everything below it (best effort). */
void mu_bench_rm_tree(const char *dir);

/* Stops a child started by the bench: SIGTERM, up to 10 s for it to exit, then SIGKILL (with
 * a warning naming it). pid <= 0 does nothing. */
void mu_bench_stop_child(pid_t pid, const char *name);

/* Runs loop until *flag is set (or, with flag NULL, for timeout_ms): 0 when it was set (or
 * the time passed with flag NULL), MU_ETIMEDOUT past the timeout, MU_ECANCELED as soon as
 * *interrupted is set. Each uv_run(UV_RUN_ONCE) must be bounded by a repeating timer of the
 * caller's (a short tick), so the clock is checked often. */
int mu_bench_run_until(uv_loop_t *loop, const int *flag, const volatile int *interrupted, int64_t timeout_ms);

#endif
