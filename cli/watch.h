/* Following a job as it runs: each host's result and output as it ends (text, or JSON lines
 * with -o json), the live panel on a terminal, grouped output (--group, like clubak), and the
 * closing summary. Shared by `muster run`, `muster submit` and `muster watch`; the forms are
 * in output_text.h, output_json.h and panel.h. */
#ifndef MU_CLI_WATCH_H
#define MU_CLI_WATCH_H

#include <getopt.h>

#include "cli/client.h"
#include "cli/output_text.h"

typedef struct mu_watch_opts {
  int quiet;        /* only the summary line */
  int group;        /* only the groups of identical results, at the end */
  int summary_only; /* no per-host output: the summary and the hosts that did not succeed */
  size_t lines;     /* output lines shown per task run (0: every line kept) */
  int tail;         /* the last `lines` lines instead of the first */
  mu_color_mode color;
  int interactive; /* Ctrl-C asks cancel/detach (a terminal is attached) */
  int no_panel;    /* never draw the live panel (MUSTER_NO_PANEL=1 too) */
} mu_watch_opts;

/* The output options every following command takes, for getopt_long (codes from 1000 up). */
#define MU_WATCH_LONG_OPTIONS                                                              \
  {"lines", required_argument, NULL, 1001}, {"tail", required_argument, NULL, 1002},       \
      {"summary-only", no_argument, NULL, 1003}, {"color", required_argument, NULL, 1004}, \
      {"group", no_argument, NULL, 1005}, {"quiet", no_argument, NULL, 1006}, {            \
    "no-panel", no_argument, NULL, 1007                                                    \
  }
#define MU_WATCH_USAGE                                                      \
  "  output: [--lines N | --tail N] [--group | --summary-only | --quiet]\n" \
  "          [--color auto|always|never] [--no-panel]\n"

/* Applies getopt code c (with optarg arg) to w: 1 when it was one of MU_WATCH_LONG_OPTIONS,
 * 0 when not, -1 with err set for a bad value. */
int mu_watch_opts_apply(mu_watch_opts *w, int c, const char *arg, mu_err *err);

/* Watches job_id (targets targets, n_tasks tasks each) until it ends; returns the exit code
 * (0 only when every target succeeded, 1 otherwise or on errors). */
int mu_watch_job(const mu_cli_opts *opts, const mu_watch_opts *wopts, const char *job_id, uint32_t targets,
                 uint32_t n_tasks);

#endif
