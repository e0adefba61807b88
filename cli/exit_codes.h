/* What `muster` exits with: one meaning per code, for scripts (documented in docs/cli.md,
 * "Exit codes", and in `muster --help`). The first that applies wins, in this order: usage
 * (2) before anything ran; cancelled (4) when the job was cancelled (by Ctrl-C, `muster
 * cancel` or max_errors); unreachable (3) when some targets could not be reached and nothing
 * else failed; task failures (1) when a task run failed, timed out or was lost, or a command
 * failed (the control plane refused it or could not be reached). */
#ifndef MU_CLI_EXIT_CODES_H
#define MU_CLI_EXIT_CODES_H

enum {
  MU_EXIT_OK = 0,          /* everything asked for was done and every task run succeeded */
  MU_EXIT_FAILED = 1,      /* a task run failed, or the command itself failed */
  MU_EXIT_USAGE = 2,       /* bad flags, arguments, job file or configuration; nothing ran */
  MU_EXIT_UNREACHABLE = 3, /* the rest succeeded but some targets were unreachable */
  MU_EXIT_CANCELLED = 4,   /* the job was cancelled before it finished */
};

#endif
