/* What `muster` exits with: one meaning per code, for scripts (documented in docs/cli.md,
 * "Exit codes", and in `muster --help`). The first that applies wins, in this order: usage
 * (2) before anything ran; cancelled (4) when the job was cancelled (Ctrl-C then cancel, or
 * `muster cancel`; a rollout stopped by max_errors is a failure); failures (1) when a task run
 * failed, timed out or was lost, or a command failed (the control plane refused it or could
 * not be reached); unreachable (3) when some targets could not be reached and every other one
 * succeeded. */
#ifndef MU_CLI_EXIT_CODES_H
#define MU_CLI_EXIT_CODES_H

enum {
  MU_EXIT_OK = 0,          /* everything asked for was done and every task run succeeded */
  MU_EXIT_FAILED = 1,      /* a task run failed, or the command itself failed */
  MU_EXIT_USAGE = 2,       /* bad flags, arguments, job file or configuration; nothing ran */
  MU_EXIT_UNREACHABLE = 3, /* the rest succeeded but some targets were unreachable */
  MU_EXIT_CANCELLED = 4,   /* the job was cancelled before it finished */
};

/* The exit code of a job followed to its end (run, submit, watch), from its final state and
 * counts (one definition of the counts: cancelled, failed, unreachable). */
static inline int mu_exit_for_job(int cancelled, unsigned failed, unsigned unreachable) {
  if (cancelled) return MU_EXIT_CANCELLED;
  if (failed > 0) return MU_EXIT_FAILED;
  if (unreachable > 0) return MU_EXIT_UNREACHABLE;
  return MU_EXIT_OK;
}

#endif
