/* The text forms of a followed job (docs/cli.md "Output"): each task run's result as it
 * ends, a header line and its output lines prefixed "HOST: " (clush style; "HOST/TASK: " when
 * the job has several tasks), bounded by a line count with a note on how to see the rest;
 * the --group form (runs with the same result and output together, hosts folded into a node
 * set); and the closing summary, whose counts are musterd's (lib/jobcounts). */
#ifndef MU_CLI_OUTPUT_TEXT_H
#define MU_CLI_OUTPUT_TEXT_H

#include <stdio.h>

#include "cli/watch_model.h"

/* --color: auto (colour when the stream is a terminal and NO_COLOR is unset), always, never. */
typedef enum { MU_COLOR_AUTO = 0, MU_COLOR_ALWAYS, MU_COLOR_NEVER } mu_color_mode;

/* Parses "auto", "always" or "never"; 0, or -1 for anything else. */
int mu_color_parse(const char *text, mu_color_mode *ret);
/* Whether to colour what goes to the stream fd under mode (NO_COLOR honoured for auto). */
int mu_color_use(mu_color_mode mode, int fd);

typedef struct mu_text_opts {
  const char *job_id;
  int color;    /* ANSI colours on */
  size_t lines; /* at most this many output lines per run; 0: all that was kept */
  int tail;     /* the last lines instead of the first */
} mu_text_opts;

/* The escape that colours a task or job state's word ("" without colour), and the reset. */
const char *mu_state_color(Muster__V1__TaskState s, int color);
const char *mu_color_reset(int color);

/* A run's name for people: "web-1", or "web-1/build" when the job has several tasks. */
const char *mu_run_label(const mu_watch_model *m, const mu_watch_run *r, char *buf, size_t size);

/* Prints r's result to out: "HOST  STATE  exit 3  1.25s  message" then its output lines. */
void mu_text_print_run(FILE *out, const mu_text_opts *o, const mu_watch_model *m, const mu_watch_run *r);

/* Prints the runs grouped by identical (task, result, output), hosts as node sets, largest
 * group first. */
void mu_text_print_groups(FILE *out, const mu_text_opts *o, const mu_watch_model *m);

/* The closing lines: "job J failed: 3 targets: 2 succeeded, 1 failed (1.25s)" and, for each
 * state a target ended in other than succeeded, its hosts as a node set ("  failed: db-1"). */
void mu_text_print_summary(FILE *out, const mu_text_opts *o, const mu_watch_model *m, int64_t elapsed_ms);

/* The job state as a word: "running", "succeeded", "failed", ... */
const char *mu_job_state_word(Muster__V1__JobState s);

#endif
