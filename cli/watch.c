/* Follows a job on the WatchJob stream (watch.h): events go into the model (watch_model.c),
 * ended runs are printed as they come (output_text.c / output_json.c), and on a terminal a
 * timer redraws the panel (panel.c) ten times a second, printing the results queued since
 * the last redraw above it. Off a terminal: plain lines, no control codes. */
#include "cli/watch.h"

#include "cli/exit_codes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/output_json.h"
#include "cli/panel.h"
#include "lib/base/clock.h"
#include "lib/jobcounts/jobcounts.h"
#include "muster/v1/admin.pb-c.h"

#define MU_WATCH_OUTPUT_KEEP (64 * 1024) /* output kept per task run */
#define MU_PANEL_TICK_MS 100
#define MU_PANEL_MAX (16 * 1024)

typedef struct watch_state {
  const mu_cli_opts *opts;
  const mu_watch_opts *wopts;
  const char *job_id;
  mu_watch_model model;
  mu_text_opts text;
  int64_t t0;
  int panel;       /* draw the live panel on stderr */
  int panel_lines; /* lines of the panel on screen now */
  size_t *queued;  /* runs ended since the last redraw (panel mode) */
  size_t n_queued, cap_queued;
  int detached;
} watch_state;

int mu_watch_opts_apply(mu_watch_opts *w, int c, const char *arg, mu_err *err) {
  switch (c) {
    case 1001:
    case 1002: {
      char *end;
      unsigned long n = strtoul(arg, &end, 10);
      if (*end || arg[0] == '\0' || arg[0] == '-' || n > 1000000)
        return mu_err_set(err, MU_EINVAL, "--%s: expected a line count, got '%s'", c == 1001 ? "lines" : "tail", arg),
               -1;
      w->lines = n;
      w->tail = c == 1002;
      return 1;
    }
    case 1003: w->summary_only = 1; return 1;
    case 1004:
      if (mu_color_parse(arg, &w->color) != 0)
        return mu_err_set(err, MU_EINVAL, "--color: expected auto, always or never, got '%s'", arg), -1;
      return 1;
    case 1005: w->group = 1; return 1;
    case 1006: w->quiet = 1; return 1;
    case 1007: w->no_panel = 1; return 1;
    default: return 0;
  }
}

/* --- the panel on stderr --- */

static void panel_erase(watch_state *w) {
  if (w->panel_lines == 0) return;
  fprintf(stderr, "\r\033[%dA\033[J", w->panel_lines);
  w->panel_lines = 0;
}

static void panel_draw(watch_state *w) {
  char buf[MU_PANEL_MAX];
  mu_panel_opts po = {.job_id = w->job_id,
                      .color = mu_color_use(w->wopts->color, STDERR_FILENO),
                      .width = mu_panel_width(STDERR_FILENO)};
  int n = mu_panel_render(&po, &w->model, w->t0, mu_mono_ms(), buf, sizeof buf);
  fputs(buf, stderr);
  w->panel_lines = n;
}

/* Prints the queued results above the panel, then the panel again. */
static void panel_refresh(watch_state *w) {
  /* one write per refresh: the erase, the results and the panel leave together */
  panel_erase(w);
  fflush(stderr);
  for (size_t i = 0; i < w->n_queued; i++) {
    mu_text_print_run(stdout, &w->text, &w->model, &w->model.runs[w->queued[i]]);
    mu_watch_run_drop_output(&w->model.runs[w->queued[i]]);
  }
  w->n_queued = 0;
  fflush(stdout);
  panel_draw(w);
  fflush(stderr);
}

static void on_tick(void *ud) {
  watch_state *w = ud;
  if (w->panel) panel_refresh(w);
}

/* --- events --- */

static int per_host_output(const watch_state *w) {
  return !w->wopts->quiet && !w->wopts->group && !w->wopts->summary_only;
}

static void result_ended(watch_state *w, const Muster__V1__TaskRun *t, mu_watch_run *r) {
  if (w->opts->json) { /* --group is a text form: JSON keeps its task lines */
    if (w->wopts->quiet || w->wopts->summary_only) return;
    json_t *o = mu_cli_json_of(&t->base);
    if (o != NULL) {
      json_object_set_new(o, "output", json_stringn(r->out ? r->out : "", r->out_len));
      json_object_set_new(o, "outputBytes", json_integer((json_int_t)r->out_seen));
      json_object_set_new(o, "outputComplete", json_boolean(r->out_seen == r->out_len && !r->out_from_tail));
    }
    mu_cli_json_emit("task", o);
    mu_watch_run_drop_output(r);
    return;
  }
  if (!per_host_output(w)) return;
  if (w->panel) {
    if (w->n_queued == w->cap_queued) {
      size_t cap = w->cap_queued ? w->cap_queued * 2 : 64;
      size_t *g = realloc(w->queued, cap * sizeof *g);
      if (g == NULL) return;
      w->queued = g;
      w->cap_queued = cap;
    }
    w->queued[w->n_queued++] = (size_t)(r - w->model.runs);
    return;
  }
  mu_text_print_run(stdout, &w->text, &w->model, r);
  fflush(stdout);
  mu_watch_run_drop_output(r);
}

/* A run flagged when it ended (RunAnomaly): one line, or a JSON "anomaly" object. */
static void print_anomaly(watch_state *w, const Muster__V1__RunAnomaly *an) {
  char flags[128];
  size_t o = 0;
  flags[0] = '\0';
  for (size_t i = 0; i < an->n_flags; i++)
    o += (size_t)snprintf(flags + o, o < sizeof flags ? sizeof flags - o : 0, "%s%s", i ? "," : "", an->flags[i]);
  if (w->opts->json) {
    mu_cli_json_emit("anomaly", json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "taskId", an->task_id, "agentId",
                                          an->agent_id, "taskName", an->task_name, "attempt", (int)an->attempt, "flags",
                                          flags, "detail", an->detail));
    return;
  }
  if (w->wopts->quiet) return;
  if (w->panel) {
    panel_erase(w);
    fflush(stderr);
  }
  printf("%s/%-24s FLAGGED %s: %s\n", an->agent_id, an->task_name, flags, an->detail);
  fflush(stdout);
  if (w->panel) panel_draw(w);
}

/* A stage of a job with stages started or ended: one line, or a JSON "stage" object. */
static void print_stage(watch_state *w, const Muster__V1__StageStatus *st) {
  if (w->opts->json) {
    mu_cli_json_message("stage", &st->base);
    return;
  }
  if (w->wopts->quiet) return;
  if (w->panel) {
    panel_erase(w);
    fflush(stderr);
  }
  char counts[256] = "";
  if (st->counts != NULL && st->counts->targets > 0) mu_job_counts_format(st->counts, counts, sizeof counts);
  printf("stage %-18s %-10s%s%s%s%s%s%s\n", st->name, st->state, st->job_id[0] ? " " : "", st->job_id,
         counts[0] ? "; " : "", counts, st->message[0] ? "; " : "", st->message);
  fflush(stdout);
  if (w->panel) panel_draw(w);
}

static int on_event(void *ud, const uint8_t *data, size_t len) {
  watch_state *w = ud;
  Muster__V1__JobEvent *ev = muster__v1__job_event__unpack(NULL, len, data);
  if (ev == NULL) return 0;
  mu_watch_run *r = NULL;
  mu_watch_change ch = mu_watch_model_apply(&w->model, ev, mu_mono_ms(), &r);
  if (ch == MU_EV_ENDED) {
    result_ended(w, ev->task, r);
  } else if (ch == MU_EV_RETRYING && !w->opts->json && !w->wopts->quiet) {
    char label[300];
    if (w->panel) {
      panel_erase(w);
      fflush(stderr);
    }
    const ProtobufCEnumValue *sv =
        protobuf_c_enum_descriptor_get_value(&muster__v1__task_state__descriptor, (int)ev->task->state);
    printf("%-24s %-10s attempt %u: %s; retrying\n", mu_run_label(&w->model, r, label, sizeof label),
           sv ? sv->name : "?", ev->task->attempt, ev->task->message);
    fflush(stdout);
    if (w->panel) panel_draw(w);
  } else if (ev->anomaly != NULL) {
    print_anomaly(w, ev->anomaly);
  } else if (ev->stage != NULL) {
    print_stage(w, ev->stage);
  }
  protobuf_c_message_free_unpacked(&ev->base, NULL);
  return 0;
}

static int on_interrupt(void *ud) {
  watch_state *w = ud;
  if (w->panel) {
    panel_refresh(w);
    panel_erase(w);
    fflush(stderr);
  }
  if (!w->wopts->interactive) {
    w->detached = 1;
    return 1;
  }
  FILE *tty = fopen("/dev/tty", "r+");
  if (tty == NULL) {
    w->detached = 1;
    return 1;
  }
  fprintf(tty, "\nJob %s is still running. [c]ancel it, [d]etach, or keep [w]atching? ", w->job_id);
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
    if (mu_cli_unary(w->opts, "/muster.v1.Admin/CancelJob", &req.base, &muster__v1__cancel_job_response__descriptor,
                     &reply, &err) != 0)
      fprintf(stderr, "muster: cancel: %s\n", err.msg);
    else protobuf_c_message_free_unpacked(reply, NULL);
    return 0; /* keep watching to see the cancellation land */
  }
  if (line[0] == 'w' || line[0] == 'W') return 0;
  w->detached = 1;
  return 1;
}

/* The final counts: musterd's from the stream, or asked for when the stream carried none. */
static void final_counts(watch_state *w) {
  if (w->model.have_counts && w->model.job_state >= MUSTER__V1__JOB_STATE__JOB_SUCCEEDED &&
      w->model.job_state != MUSTER__V1__JOB_STATE__JOB_HELD)
    return;
  Muster__V1__GetJobRequest req = MUSTER__V1__GET_JOB_REQUEST__INIT;
  req.job_id = (char *)w->job_id;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(w->opts, "/muster.v1.Admin/GetJob", &req.base, &muster__v1__job__descriptor, &reply, &err) != 0)
    return;
  Muster__V1__Job *job = (Muster__V1__Job *)reply;
  if (job->counts != NULL) {
    w->model.counts = *job->counts;
    w->model.counts.base.unknown_fields = NULL;
    w->model.counts.base.n_unknown_fields = 0;
    w->model.have_counts = 1;
  }
  w->model.job_state = job->state;
  protobuf_c_message_free_unpacked(reply, NULL);
}

static void print_json_summary(watch_state *w, int64_t elapsed) {
  json_t *o = json_object();
  const ProtobufCEnumValue *js =
      protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, (int)w->model.job_state);
  json_object_set_new(o, "jobId", json_string(w->job_id));
  json_object_set_new(o, "state", json_string(js ? js->name : "JOB_STATE_UNSPECIFIED"));
  json_object_set_new(o, "targets", json_integer(w->model.counts.targets));
  json_object_set_new(o, "counts", mu_cli_json_of(&w->model.counts.base));
  json_object_set_new(o, "elapsedMs", json_integer(elapsed));
  json_t *hosts = json_array();
  for (size_t i = 0; i < w->model.n_hosts; i++)
    if (w->model.hosts[i].done && w->model.hosts[i].failed)
      json_array_append_new(hosts, json_string(w->model.hosts[i].agent_id));
  json_object_set_new(o, "notSucceededHosts", hosts);
  json_t *skipped = json_array();
  for (size_t i = 0; i < w->model.n_hosts; i++)
    if (w->model.hosts[i].done && w->model.hosts[i].skipped)
      json_array_append_new(skipped, json_string(w->model.hosts[i].agent_id));
  json_object_set_new(o, "skippedHosts", skipped);
  mu_cli_json_emit("summary", o);
}

/* The exit code of a finished job (cli/exit_codes.h): 0 all succeeded, 4 cancelled, 1 a run
 * failed (or anything else went wrong), 3 only unreachable targets kept it from succeeding. */
static int job_exit_code(const mu_watch_model *m) {
  const Muster__V1__JobCounts *c = &m->counts;
  if (m->job_state == MUSTER__V1__JOB_STATE__JOB_SUCCEEDED) return MU_EXIT_OK;
  int cancelled = m->job_state == MUSTER__V1__JOB_STATE__JOB_CANCELLED;
  if (!cancelled && c->failed == 0 && (c->unreachable == 0 || c->cancelled > 0))
    return MU_EXIT_FAILED; /* not ok, and not only for unreachable hosts */
  return mu_exit_for_job(cancelled, c->failed, c->unreachable);
}

int mu_watch_job(const mu_cli_opts *opts, const mu_watch_opts *wopts, const char *job_id, uint32_t targets,
                 uint32_t n_tasks) {
  watch_state w;
  memset(&w, 0, sizeof w);
  w.opts = opts;
  w.wopts = wopts;
  w.job_id = job_id;
  w.t0 = mu_mono_ms();
  const char *np = getenv("MUSTER_NO_PANEL");
  w.panel = !opts->json && !wopts->quiet && !wopts->no_panel && isatty(STDERR_FILENO) &&
            !(np != NULL && np[0] != '\0' && strcmp(np, "0") != 0);
  mu_keep_mode keep = wopts->summary_only || wopts->quiet ? MU_KEEP_NONE : wopts->tail ? MU_KEEP_TAIL : MU_KEEP_HEAD;
  mu_watch_model_init(&w.model, targets, n_tasks, keep, MU_WATCH_OUTPUT_KEEP);
  w.text = (mu_text_opts){
      .job_id = job_id, .color = mu_color_use(wopts->color, STDOUT_FILENO), .lines = wopts->lines, .tail = wopts->tail};
  Muster__V1__WatchJobRequest req = MUSTER__V1__WATCH_JOB_REQUEST__INIT;
  req.job_id = (char *)job_id;
  mu_err err = {0};
  if (w.panel) {
    panel_draw(&w);
    fflush(stderr);
  }
  int rc = mu_cli_stream_ticking(opts, "/muster.v1.Admin/WatchJob", &req.base, on_event, on_interrupt,
                                 w.panel ? on_tick : NULL, MU_PANEL_TICK_MS, &w, &err);
  if (w.panel) { /* what is still queued, then the panel goes: the summary replaces it */
    panel_refresh(&w);
    panel_erase(&w);
    fflush(stderr);
  }
  int exit_code = 1;
  int64_t elapsed = mu_mono_ms() - w.t0;
  if (rc != 0) {
    fprintf(stderr, "muster: watch %s: %s\n", job_id, err.msg);
    /* The job runs on without us: say how to pick it up again (not for a job that isn't). */
    if (err.code != MU_ENOENT)
      fprintf(stderr,
              "muster: lost the stream of job %s; it keeps running: re-attach with "
              "'muster watch %s'\n",
              job_id, job_id);
  } else if (w.detached) {
    fprintf(stderr, "detached from %s; follow it with: muster watch %s\n", job_id, job_id);
  } else {
    final_counts(&w);
    if (opts->json) {
      print_json_summary(&w, elapsed);
    } else {
      if (wopts->group) mu_text_print_groups(stdout, &w.text, &w.model);
      mu_text_print_summary(stdout, &w.text, &w.model, elapsed);
    }
    exit_code = job_exit_code(&w.model);
  }
  free(w.queued);
  mu_watch_model_free(&w.model);
  return exit_code;
}
