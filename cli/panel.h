/* The live panel of `muster run`/`submit`/`watch` on a terminal (docs/cli.md "Live view"):
 * a few lines at the bottom of the screen, redrawn by a timer (watch.c, ~10 Hz) whether or
 * not events arrive, so the elapsed time ticks: a bar over the hosts (and one over the task
 * runs when the job has several tasks), musterd's counts, elapsed time and an ETA, the
 * hosts running now with how long, and the hosts that failed so far. */
#ifndef MU_CLI_PANEL_H
#define MU_CLI_PANEL_H

#include <stddef.h>
#include <stdint.h>

#include "cli/watch_model.h"

typedef struct mu_panel_opts {
  const char *job_id;
  int color;
  int width; /* columns; lines are cut to width - 1 */
} mu_panel_opts;

/* Renders the panel for m at monotonic now_ms, t0_ms being when following began, into buf
 * (NUL-terminated, each line ending in "\n", no cursor movement). Returns the number of lines. */
int mu_panel_render(const mu_panel_opts *o, const mu_watch_model *m, int64_t t0_ms, int64_t now_ms, char *buf,
                    size_t size);

/* The terminal's width on fd, or 80. */
int mu_panel_width(int fd);

#endif
