/* The job watcher behind run/submit/watch: applies WatchJob events to a small per-task table,
 * prints each task's result once, keeps a progress line fresh on a terminal, and ends with a
 * summary and the exit code. */
#include "cli/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "lib/base/clock.h"
#include "muster/v1/admin.pb-c.h"

#define MU_WATCH_OUTPUT_KEEP (64 * 1024)

typedef struct task_row {
  char *task_id;
  char *agent_id;
  Muster__V1__TaskState state;
  int printed;
  char *out;            /* output kept for first lines / grouping (bounded) */
  size_t out_len;
} task_row;

typedef struct watch_state {
  const mu_cli_opts *opts;
  const mu_watch_opts *wopts;
  const char *job_id;
  uint32_t targets;
  task_row *rows;
  size_t n_rows, cap_rows;
  Muster__V1__JobState job_state;
  int64_t t0;
  int tty;
  int progress_shown;
  int detached;
} watch_state;

static task_row *row_for(watch_state *w, const Muster__V1__TaskRun *t) {
  for (size_t i = 0; i < w->n_rows; i++)
    if (strcmp(w->rows[i].task_id, t->task_id) == 0) return &w->rows[i];
  if (w->n_rows == w->cap_rows) {
    size_t cap = w->cap_rows ? w->cap_rows * 2 : 64;
    task_row *g = realloc(w->rows, cap * sizeof *g);
    if (g == NULL) return NULL;
    w->rows = g;
    w->cap_rows = cap;
  }
  task_row *r = &w->rows[w->n_rows++];
  memset(r, 0, sizeof *r);
  r->task_id = strdup(t->task_id);
  r->agent_id = strdup(t->agent_id);
  return r;
}

static const char *state_text(Muster__V1__TaskState s) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&muster__v1__task_state__descriptor, (int)s);
  return v ? v->name : "?";
}

static void clear_progress(watch_state *w) {
  if (w->progress_shown) {
    fputs("\r\033[K", stderr);
    w->progress_shown = 0;
  }
}

static void show_progress(watch_state *w) {
  if (!w->tty || w->wopts->quiet) return;
  uint32_t done = 0, failed = 0, running = 0;
  for (size_t i = 0; i < w->n_rows; i++) {
    Muster__V1__TaskState s = w->rows[i].state;
    if (s == MUSTER__V1__TASK_STATE__SUCCEEDED) done++;
    else if (s >= MUSTER__V1__TASK_STATE__FAILED) failed++;
    else if (s >= MUSTER__V1__TASK_STATE__ASSIGNED) running++;
  }
  uint32_t pending = w->targets > done + failed + running ? w->targets - done - failed - running : 0;
  fprintf(stderr, "\r\033[K%s: %u done, %u running, %u failed, %u pending of %u  %.1fs",
          w->job_id, done, running, failed, pending, w->targets,
          (double)(mu_mono_ms() - w->t0) / 1000.0);
  fflush(stderr);
  w->progress_shown = 1;
}

static void print_result(watch_state *w, const Muster__V1__TaskRun *t, task_row *r) {
  if (w->wopts->quiet || r->printed) return;
  r->printed = 1;
  if (w->opts->json) {
    mu_cli_print_json(&t->base);
    return;
  }
  clear_progress(w);
  double secs = t->finished_at_ms > t->started_at_ms && t->started_at_ms > 0
                    ? (double)(t->finished_at_ms - t->started_at_ms) / 1000.0
                    : 0.0;
  char first[200] = "";
  const char *src = r->out_len ? r->out : t->output_tail;
  if (src != NULL) {
    size_t i = 0;
    for (; src[i] && src[i] != '\n' && i < sizeof first - 1; i++) first[i] = src[i];
    first[i] = '\0';
  }
  printf("%-24s %-10s exit %-4d %6.2fs  %s%s%s\n", t->agent_id[0] ? t->agent_id : t->task_id,
         state_text(t->state), t->exit_code, secs, first,
         t->message[0] && t->state != MUSTER__V1__TASK_STATE__SUCCEEDED ? "  # " : "",
         t->state != MUSTER__V1__TASK_STATE__SUCCEEDED ? t->message : "");
  fflush(stdout);
}

static int on_event(void *ud, const uint8_t *data, size_t len) {
  watch_state *w = ud;
  Muster__V1__JobEvent *ev = muster__v1__job_event__unpack(NULL, len, data);
  if (ev == NULL) return 0;
  if (ev->job_state != MUSTER__V1__JOB_STATE__JOB_STATE_UNSPECIFIED) w->job_state = ev->job_state;
  if (ev->task != NULL && ev->task->task_id[0]) {
    task_row *r = row_for(w, ev->task);
    if (r != NULL) {
      if (ev->output != NULL && r->out_len < MU_WATCH_OUTPUT_KEEP) {
        size_t n = ev->output->data.len;
        if (r->out_len + n > MU_WATCH_OUTPUT_KEEP) n = MU_WATCH_OUTPUT_KEEP - r->out_len;
        char *g = realloc(r->out, r->out_len + n + 1);
        if (g != NULL) {
          memcpy(g + r->out_len, ev->output->data.data, n);
          r->out_len += n;
          g[r->out_len] = '\0';
          r->out = g;
        }
      } else if (ev->output == NULL && ev->progress == NULL) {
        r->state = ev->task->state;
        if (ev->task->agent_id[0] && strcmp(r->agent_id, ev->task->agent_id) != 0) {
          free(r->agent_id);
          r->agent_id = strdup(ev->task->agent_id);
        }
        if (r->state >= MUSTER__V1__TASK_STATE__SUCCEEDED && ev->task->retry_pending) {
          if (!w->wopts->quiet && !w->opts->json) {
            clear_progress(w);
            printf("%-24s %-10s attempt %u: %s; retrying\n", r->agent_id,
                   state_text(ev->task->state), ev->task->attempt, ev->task->message);
          }
          free(r->out);
          r->out = NULL;
          r->out_len = 0;
        } else if (r->state >= MUSTER__V1__TASK_STATE__SUCCEEDED) {
          if (r->out_len == 0 && ev->task->output_tail[0]) {
            r->out = strdup(ev->task->output_tail);
            r->out_len = r->out ? strlen(r->out) : 0;
          }
          print_result(w, ev->task, r);
        }
      }
    }
  }
  show_progress(w);
  protobuf_c_message_free_unpacked(&ev->base, NULL);
  return 0;
}

static int on_interrupt(void *ud) {
  watch_state *w = ud;
  clear_progress(w);
  if (!w->wopts->interactive) {
    w->detached = 1;
    return 1;
  }
  FILE *tty = fopen("/dev/tty", "r+");
  if (tty == NULL) {
    w->detached = 1;
    return 1;
  }
  fprintf(tty, "\nJob %s is still running. [c]ancel it, [d]etach, or keep [w]atching? ",
          w->job_id);
  fflush(tty);
  char line[32] = "";
  if (fgets(line, sizeof line, tty) == NULL) line[0] = 'd';
  fclose(tty);
  if (line[0] == 'c' || line[0] == 'C' || line[0] == 'y') {
    Muster__V1__CancelJobRequest req = MUSTER__V1__CANCEL_JOB_REQUEST__INIT;
    req.job_id = (char *)w->job_id;
    req.reason = "interrupted from muster run";
    ProtobufCMessage *reply = NULL;
    mu_err err = {0};
    if (mu_cli_unary(w->opts, "/muster.v1.Admin/CancelJob", &req.base,
                     &muster__v1__cancel_job_response__descriptor, &reply, &err) != 0)
      fprintf(stderr, "muster: cancel: %s\n", err.msg);
    else
      protobuf_c_message_free_unpacked(reply, NULL);
    return 0; /* keep watching to see the cancellation land */
  }
  if (line[0] == 'w' || line[0] == 'W') return 0;
  w->detached = 1;
  return 1;
}

/* Prints hosts grouped by identical output (clubak style). */
static void print_groups(watch_state *w) {
  int *done = calloc(w->n_rows + 1, sizeof *done);
  if (done == NULL) return;
  for (size_t i = 0; i < w->n_rows; i++) {
    if (done[i]) continue;
    const char *out = w->rows[i].out ? w->rows[i].out : "";
    printf("---------------\n");
    size_t count = 0;
    for (size_t j = i; j < w->n_rows; j++) {
      const char *o = w->rows[j].out ? w->rows[j].out : "";
      if (!done[j] && strcmp(o, out) == 0) {
        printf("%s%s", count ? "," : "", w->rows[j].agent_id);
        done[j] = 1;
        count++;
      }
    }
    printf(" (%zu)\n---------------\n%s%s", count, out,
           out[0] && out[strlen(out) - 1] != '\n' ? "\n" : "");
  }
  free(done);
}

int mu_watch_job(const mu_cli_opts *opts, const mu_watch_opts *wopts, const char *job_id,
                 uint32_t targets) {
  watch_state w;
  memset(&w, 0, sizeof w);
  w.opts = opts;
  w.wopts = wopts;
  w.job_id = job_id;
  w.targets = targets;
  w.t0 = mu_mono_ms();
  w.tty = isatty(STDERR_FILENO) && !opts->json;
  Muster__V1__WatchJobRequest req = MUSTER__V1__WATCH_JOB_REQUEST__INIT;
  req.job_id = (char *)job_id;
  mu_err err = {0};
  int rc = mu_cli_stream(opts, "/muster.v1.Admin/WatchJob", &req.base, on_event, on_interrupt,
                         &w, &err);
  clear_progress(&w);
  int exit_code = 1;
  if (rc != 0) {
    fprintf(stderr, "muster: watch %s: %s\n", job_id, err.msg);
    /* The job runs on without us: say how to pick it up again (not for a job that isn't). */
    if (err.code != MU_ENOENT)
      fprintf(stderr, "muster: lost the stream of job %s; it keeps running: re-attach with "
              "'muster watch %s'\n", job_id, job_id);
  } else if (w.detached) {
    fprintf(stderr, "detached from %s; follow it with: muster watch %s\n", job_id, job_id);
  } else {
    if (wopts->group && !opts->json) print_groups(&w);
    uint32_t ok = 0, failed = 0;
    for (size_t i = 0; i < w.n_rows; i++) {
      if (w.rows[i].state == MUSTER__V1__TASK_STATE__SUCCEEDED) ok++;
      else failed++;
    }
    const ProtobufCEnumValue *js =
        protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, (int)w.job_state);
    if (opts->json) {
      printf("{\"jobId\":\"%s\",\"state\":\"%s\",\"targets\":%u,\"succeeded\":%u,\"failed\":%u,"
             "\"elapsedMs\":%lld}\n", job_id, js ? js->name : "?", targets, ok, failed,
             (long long)(mu_mono_ms() - w.t0));
    } else {
      printf("%s %s: %u targets, %u task runs ok, %u failed (%.1fs)\n", job_id,
             js ? js->name : "?",
             targets, ok, failed, (double)(mu_mono_ms() - w.t0) / 1000.0);
    }
    exit_code = w.job_state == MUSTER__V1__JOB_STATE__JOB_SUCCEEDED ? 0 : 1;
  }
  for (size_t i = 0; i < w.n_rows; i++) {
    free(w.rows[i].task_id);
    free(w.rows[i].agent_id);
    free(w.rows[i].out);
  }
  free(w.rows);
  return exit_code;
}
