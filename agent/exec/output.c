/* The supervisor's readers: stdout and stderr as bounded chunks (output_limit, the rest read
 * and dropped so the task never blocks on a full pipe), the control channel through the line
 * parser in control.c, and muster-exec's one-line rusage report. */
#include <stdio.h>
#include <string.h>

#include "agent/exec/supervisor_int.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  mu_proc *p = h->data;
  (void)suggested;
  *buf = uv_buf_init(p->read_buf, sizeof p->read_buf);
}

static int pipe_index(mu_proc *p, uv_stream_t *s) { return (int)((uv_pipe_t *)s - p->pipes); }

void mu_proc_pipe_eof(mu_proc *p, int idx) {
  if (p->pipe_eof[idx]) return;
  p->pipe_eof[idx] = true;
  uv_read_stop((uv_stream_t *)&p->pipes[idx]);
}

static void deliver_output(mu_proc *p, int stream, const char *data, size_t len) {
  size_t keep = len;
  if (p->out_limit > 0) {
    uint64_t room = p->out_bytes >= p->out_limit ? 0 : p->out_limit - p->out_bytes;
    if (keep > room) keep = (size_t)room;
  }
  p->dropped += len - keep;
  p->out_bytes += keep;
  if (keep > 0 && p->cb.on_output != NULL) p->cb.on_output(p, p->arg, stream, data, keep);
}

static void on_ctl_line(void *arg, const mu_ctl_line *line) {
  mu_proc *p = arg;
  if (p->cb.on_control != NULL) p->cb.on_control(p, p->arg, line);
}

static void parse_report(mu_proc *p) {
  long long code, sig, u, s, rss, in = -1, out = -1;
  p->report[p->report_len] = '\0';
  if (sscanf(p->report, "exit %lld %lld %lld %lld %lld %lld %lld", &code, &sig, &u, &s, &rss, &in, &out) >= 5) {
    p->have_report = true;
    p->rep_user_us = u;
    p->rep_sys_us = s;
    p->rep_maxrss_kb = rss;
    p->rep_in_blocks = in;
    p->rep_out_blocks = out;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  mu_proc *p = s->data;
  int idx = pipe_index(p, s);
  if (nread < 0) {
    if (idx == MU_PIPE_CONTROL) mu_ctl_reader_finish(&p->ctl, on_ctl_line, p);
    if (idx == MU_PIPE_REPORT) parse_report(p);
    mu_proc_pipe_eof(p, idx);
    mu_proc_maybe_done(p);
    return;
  }
  if (nread == 0) return;
  switch (idx) {
    case MU_PIPE_STDOUT:
    case MU_PIPE_STDERR: deliver_output(p, idx, buf->base, (size_t)nread); break;
    case MU_PIPE_CONTROL: mu_ctl_reader_feed(&p->ctl, buf->base, (size_t)nread, on_ctl_line, p); break;
    case MU_PIPE_REPORT: {
      size_t room = sizeof p->report - 1 - p->report_len;
      size_t n = (size_t)nread < room ? (size_t)nread : room;
      memcpy(p->report + p->report_len, buf->base, n);
      p->report_len += n;
      break;
    }
    default: break;
  }
}

void mu_proc_start_reading(mu_proc *p) {
  for (int i = MU_PIPE_STDOUT; i < MU_PIPE_COUNT; i++) {
    if (uv_read_start((uv_stream_t *)&p->pipes[i], on_alloc, on_read) != 0) p->pipe_eof[i] = true;
  }
}
