/* The live panel's text (panel.h). Pure rendering: watch.c owns the timer and the terminal. */
#include "cli/panel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cli/nodeset.h"
#include "lib/jobcounts/jobcounts.h"

int mu_panel_width(int fd) {
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

typedef struct out {
  char *buf;
  size_t size, len;
  int lines;
} out;

static void addf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(out *o, const char *fmt, ...) {
  if (o->len + 1 >= o->size) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n < o->size - o->len ? (size_t)n : o->size - o->len - 1;
}

/* Ends a line of plain text that began at start: cut to width - 1 visible characters. */
static void end_line(out *o, size_t start, int width) {
  if (o->len - start > (size_t)(width - 1)) o->len = start + (size_t)(width - 1);
  o->buf[o->len] = '\0';
  addf(o, "\n");
  o->lines++;
}

static void bar(out *o, uint64_t done, uint64_t total, int cells, int color) {
  int fill = total ? (int)(done * (uint64_t)cells / total) : 0;
  addf(o, "[%s", color ? "\033[32m" : "");
  for (int i = 0; i < cells; i++) addf(o, "%s", i < fill ? "#" : (i == fill && color ? "\033[2m-" : "-"));
  addf(o, "%s]", color ? "\033[0m" : "");
}

int mu_panel_render(const mu_panel_opts *po, const mu_watch_model *m, int64_t t0_ms, int64_t now_ms, char *buf,
                    size_t size) {
  out o = {buf, size, 0, 0};
  buf[0] = '\0';
  const Muster__V1__JobCounts *c = &m->counts;
  uint32_t ended = mu_job_counts_ended(c);
  char el[32], eta[32], tmp[64];
  int width = po->width > 20 ? po->width : 80;
  int64_t eta_ms = mu_watch_model_eta_ms(m, now_ms);
  /* 1: job, bar over hosts, elapsed, ETA; the bar takes what the line has left (up to 30
   * cells), so the line never wraps and the panel's height stays what was drawn */
  char head[160], tail[160];
  snprintf(head, sizeof head, "job %s ", po->job_id);
  snprintf(tail, sizeof tail, " %u/%s %3u%%  %s  ETA %s", ended, mu_plural(c->targets, "host", tmp, sizeof tmp),
           c->targets ? (unsigned)((uint64_t)ended * 100 / c->targets) : 100u,
           mu_duration_format(now_ms - t0_ms, el, sizeof el),
           eta_ms < 0 ? "-" : mu_duration_format(eta_ms, eta, sizeof eta));
  int cells = width - 1 - (int)strlen(head) - (int)strlen(tail) - 2;
  if (cells > 30) cells = 30;
  size_t start = o.len;
  addf(&o, "%s", head);
  if (cells >= 5) bar(&o, ended, c->targets, cells, po->color);
  addf(&o, "%s", tail);
  if (cells < 5) end_line(&o, start, width);
  else {
    addf(&o, "\n");
    o.lines++;
  }
  /* 2: task runs, when there are several tasks */
  if (m->n_tasks > 1) {
    uint64_t total = (uint64_t)c->targets * m->n_tasks, done = mu_watch_model_runs_ended(m);
    snprintf(head, sizeof head, "%-*s", (int)strlen(head), "tasks");
    snprintf(tail, sizeof tail, " %llu/%llu task runs", (unsigned long long)done, (unsigned long long)total);
    start = o.len;
    addf(&o, "%s", head);
    if (cells >= 5) bar(&o, done, total, cells, po->color);
    addf(&o, "%s", tail);
    if (cells < 5) end_line(&o, start, width);
    else {
      addf(&o, "\n");
      o.lines++;
    }
  }
  /* 3: counts, as musterd counts them */
  start = o.len;
  char counts[256];
  addf(&o, "  %s", mu_job_counts_format(c, counts, sizeof counts));
  end_line(&o, start, width);
  /* 4: the longest-running hosts now */
  enum { SHOW = 4 };
  size_t top[SHOW];
  size_t n_top = 0, n_active = 0;
  for (size_t i = 0; i < m->n_hosts; i++) {
    const mu_watch_host *h = &m->hosts[i];
    /* running as musterd counts it: started, not ended (between two tasks, or retrying) */
    if (h->first_start_mono == 0 || h->done) continue;
    n_active++;
    size_t k = n_top < SHOW ? n_top++ : SHOW;
    /* insertion into the top list, oldest start first */
    while (k > 0 && m->hosts[top[k - 1]].first_start_mono > h->first_start_mono) {
      if (k < SHOW) top[k] = top[k - 1];
      k--;
    }
    if (k < SHOW) top[k] = i;
  }
  if (n_active > 0) {
    start = o.len;
    addf(&o, "  running:");
    for (size_t k = 0; k < n_top; k++)
      addf(&o, "%s %s %s", k ? "," : "", m->hosts[top[k]].agent_id,
           mu_duration_format(now_ms - m->hosts[top[k]].first_start_mono, tmp, sizeof tmp));
    if (n_active > n_top) addf(&o, " (+%zu more)", n_active - n_top);
    end_line(&o, start, width);
  }
  /* 5: the hosts that failed so far */
  const char **names = NULL;
  size_t n_failed = 0;
  for (size_t i = 0; i < m->n_hosts; i++) n_failed += m->hosts[i].failed;
  if (n_failed > 0) names = calloc(n_failed, sizeof *names);
  if (names != NULL) {
    size_t n = 0;
    for (size_t i = 0; i < m->n_hosts; i++)
      if (m->hosts[i].failed) names[n++] = m->hosts[i].agent_id;
    char *set = mu_nodeset_fold(names, n);
    start = o.len;
    addf(&o, "  %sfailed%s: %s (%zu)", po->color ? "\033[31m" : "", po->color ? "\033[0m" : "", set ? set : "?", n);
    end_line(&o, start, width + (po->color ? 9 : 0));
    free(set);
    free(names);
  }
  return o.lines;
}
