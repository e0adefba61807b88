/* Following a job as it runs: per-host results as they arrive, a live progress line on a
 * terminal, grouped output (--group, like clubak), JSON lines (-o json), and the final
 * summary. Shared by `muster run`, `muster submit` and `muster watch`. */
#ifndef MU_CLI_WATCH_H
#define MU_CLI_WATCH_H

#include "cli/client.h"

typedef struct mu_watch_opts {
  int quiet;        /* only the summary */
  int group;        /* group identical output by host at the end */
  int interactive;  /* Ctrl-C asks cancel/detach (a terminal is attached) */
} mu_watch_opts;

/* Watches job_id until it ends; returns the exit code (0 only when every target succeeded,
 * 1 otherwise or on errors). */
int mu_watch_job(const mu_cli_opts *opts, const mu_watch_opts *wopts, const char *job_id,
                 uint32_t targets);

#endif
