/* Text output of a followed job (output_text.h): result blocks, groups and the summary. */
#include "cli/output_text.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/nodeset.h"
#include "lib/jobcounts/jobcounts.h"

int mu_color_parse(const char *text, mu_color_mode *ret) {
  if (strcmp(text, "auto") == 0) *ret = MU_COLOR_AUTO;
  else if (strcmp(text, "always") == 0) *ret = MU_COLOR_ALWAYS;
  else if (strcmp(text, "never") == 0) *ret = MU_COLOR_NEVER;
  else return -1;
  return 0;
}

int mu_color_use(mu_color_mode mode, int fd) {
  if (mode == MU_COLOR_ALWAYS) return 1;
  if (mode == MU_COLOR_NEVER) return 0;
  const char *nc = getenv("NO_COLOR"); /* no-color.org: set and not empty */
  const char *term = getenv("TERM");
  return isatty(fd) && (nc == NULL || nc[0] == '\0') && (term == NULL || strcmp(term, "dumb") != 0);
}

const char *mu_state_color(Muster__V1__TaskState s, int color) {
  if (!color) return "";
  switch (s) {
    case MUSTER__V1__TASK_STATE__SUCCEEDED: return "\033[32m";
    case MUSTER__V1__TASK_STATE__FAILED:
    case MUSTER__V1__TASK_STATE__TIMED_OUT:
    case MUSTER__V1__TASK_STATE__LOST: return "\033[31m";
    case MUSTER__V1__TASK_STATE__CANCELLED:
    case MUSTER__V1__TASK_STATE__UNREACHABLE: return "\033[33m";
    default: return "\033[36m";
  }
}

const char *mu_color_reset(int color) { return color ? "\033[0m" : ""; }

static const char *task_state_name(Muster__V1__TaskState s) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&muster__v1__task_state__descriptor, (int)s);
  return v ? v->name : "?";
}

const char *mu_job_state_word(Muster__V1__JobState s) {
  switch (s) {
    case MUSTER__V1__JOB_STATE__JOB_PENDING: return "pending";
    case MUSTER__V1__JOB_STATE__JOB_RUNNING: return "running";
    case MUSTER__V1__JOB_STATE__JOB_SUCCEEDED: return "succeeded";
    case MUSTER__V1__JOB_STATE__JOB_FAILED: return "failed";
    case MUSTER__V1__JOB_STATE__JOB_CANCELLED: return "cancelled";
    case MUSTER__V1__JOB_STATE__JOB_HELD: return "held";
    default: return "unknown";
  }
}

const char *mu_run_label(const mu_watch_model *m, const mu_watch_run *r, char *buf, size_t size) {
  const char *host = m->hosts[r->host].agent_id;
  if (m->n_tasks > 1) snprintf(buf, size, "%s/%s", host, r->task_name);
  else snprintf(buf, size, "%s", host);
  return buf;
}

/* "exit 3", "signal 9" or "-". */
static const char *exit_text(const mu_watch_run *r, char *buf, size_t size) {
  if (r->has_exit) snprintf(buf, size, "exit %d", r->exit_code);
  else if (r->signal != 0) snprintf(buf, size, "signal %d", r->signal);
  else snprintf(buf, size, "-");
  return buf;
}

static const char *duration_text(const mu_watch_run *r, char *buf, size_t size) {
  if (r->started_at_ms > 0 && r->finished_at_ms >= r->started_at_ms)
    return mu_duration_format(r->finished_at_ms - r->started_at_ms, buf, size);
  snprintf(buf, size, "-");
  return buf;
}

/* The message when it says more than the state and exit column ("exit code 3" does not). */
static const char *extra_message(const mu_watch_run *r) {
  if (r->message == NULL || r->message[0] == '\0') return "";
  if (r->state == MUSTER__V1__TASK_STATE__SUCCEEDED) return "";
  char want[32];
  snprintf(want, sizeof want, "exit code %d", r->exit_code);
  if (r->has_exit && strcmp(r->message, want) == 0) return "";
  return r->message;
}

static size_t count_lines(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += s[i] == '\n';
  if (len > 0 && s[len - 1] != '\n') n++;
  return n;
}

/* Prints the kept output of r, each line prefixed, within o->lines; then a note for what is
 * not shown. */
static void print_output(FILE *out, const mu_text_opts *o, const char *prefix, const mu_watch_run *r,
                         const char *logs_name) {
  const char *s = r->out ? r->out : "";
  size_t len = r->out_len, total = count_lines(s, len);
  size_t from = 0, upto = total;
  if (o->lines > 0 && total > o->lines) {
    if (o->tail) from = total - o->lines;
    else upto = o->lines;
  }
  size_t line = 0;
  const char *p = s, *end = s + len;
  while (p < end && line < upto) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (line >= from) fprintf(out, "%s: %.*s\n", prefix, (int)n, p);
    line++;
    p += n + (nl != NULL);
  }
  size_t hidden = total - (upto - from);
  char why[96] = "";
  if (hidden > 0)
    snprintf(why, sizeof why, "%zu %s line%s", hidden, o->tail ? "earlier" : "more", hidden == 1 ? "" : "s");
  else if (r->out_from_tail) snprintf(why, sizeof why, "only the last output reached this view");
  else if (r->out_seen > r->out_len)
    snprintf(why, sizeof why, "%llu more bytes", (unsigned long long)(r->out_seen - r->out_len));
  if (why[0]) fprintf(out, "%s: ... %s; see all: muster logs %s %s\n", prefix, why, o->job_id, logs_name);
}

void mu_text_print_run(FILE *out, const mu_text_opts *o, const mu_watch_model *m, const mu_watch_run *r) {
  char label[300], ex[32], dur[32];
  mu_run_label(m, r, label, sizeof label);
  const char *msg = extra_message(r);
  fprintf(out, "%-24s %s%-10s%s %-9s %7s%s%s\n", label, mu_state_color(r->state, o->color), task_state_name(r->state),
          mu_color_reset(o->color), exit_text(r, ex, sizeof ex), duration_text(r, dur, sizeof dur), msg[0] ? "  " : "",
          msg);
  /* muster logs names a task AGENT/NAME */
  char logs_name[300];
  snprintf(logs_name, sizeof logs_name, "%s/%s", m->hosts[r->host].agent_id, r->task_name);
  print_output(out, o, label, r, logs_name);
}

/* --- groups --- */

static int same_result(const mu_watch_run *a, const mu_watch_run *b) {
  const char *ao = a->out ? a->out : "", *bo = b->out ? b->out : "";
  return a->state == b->state && a->has_exit == b->has_exit && (!a->has_exit || a->exit_code == b->exit_code) &&
         a->signal == b->signal && strcmp(a->task_name, b->task_name) == 0 && a->out_len == b->out_len &&
         memcmp(ao, bo, a->out_len) == 0 && strcmp(extra_message(a), extra_message(b)) == 0;
}

typedef struct group {
  size_t first; /* a run of the group */
  size_t n;
} group;

static int cmp_group(const void *a, const void *b) {
  const group *x = a, *y = b;
  if (x->n != y->n) return x->n > y->n ? -1 : 1;
  return x->first < y->first ? -1 : x->first > y->first;
}

void mu_text_print_groups(FILE *out, const mu_text_opts *o, const mu_watch_model *m) {
  size_t *group_of = malloc((m->n_runs + 1) * sizeof *group_of);
  group *groups = calloc(m->n_runs + 1, sizeof *groups);
  const char **names = calloc(m->n_runs + 1, sizeof *names);
  size_t n_groups = 0;
  if (group_of == NULL || groups == NULL || names == NULL) goto out;
  /* groups by a hash of the result would be faster; the fleet sizes here keep this cheap
   * because runs compare on their length first */
  for (size_t i = 0; i < m->n_runs; i++) {
    group_of[i] = (size_t)-1;
    if (!m->runs[i].ended) continue;
    for (size_t g = 0; g < n_groups; g++)
      if (same_result(&m->runs[groups[g].first], &m->runs[i])) {
        group_of[i] = g;
        groups[g].n++;
        break;
      }
    if (group_of[i] == (size_t)-1) {
      groups[n_groups] = (group){i, 1};
      group_of[i] = n_groups++;
    }
  }
  group *sorted = malloc((n_groups + 1) * sizeof *sorted);
  if (sorted == NULL) goto out;
  memcpy(sorted, groups, n_groups * sizeof *groups);
  qsort(sorted, n_groups, sizeof *sorted, cmp_group);
  for (size_t k = 0; k < n_groups; k++) {
    const mu_watch_run *r = &m->runs[sorted[k].first];
    size_t g = group_of[sorted[k].first], nn = 0;
    for (size_t i = 0; i < m->n_runs; i++)
      if (group_of[i] == g) names[nn++] = m->hosts[m->runs[i].host].agent_id;
    char *set = mu_nodeset_fold(names, nn);
    char ex[32];
    const char *msg = extra_message(r);
    fprintf(out, "---------------\n%s (%zu)%s%s: %s%s%s %s%s%s\n---------------\n", set ? set : "?", nn,
            m->n_tasks > 1 ? " " : "", m->n_tasks > 1 ? r->task_name : "", mu_state_color(r->state, o->color),
            task_state_name(r->state), mu_color_reset(o->color), exit_text(r, ex, sizeof ex), msg[0] ? "  " : "", msg);
    /* the output once, unprefixed, like clubak */
    mu_text_opts go = *o;
    const char *s = r->out ? r->out : "";
    size_t total = count_lines(s, r->out_len), shown = total;
    if (go.lines > 0 && total > go.lines) shown = go.lines;
    const char *p = s, *end = s + r->out_len;
    size_t skip = go.tail ? total - shown : 0, line = 0;
    while (p < end && line < skip + shown) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      if (line >= skip) fprintf(out, "%.*s\n", (int)n, p);
      line++;
      p += n + (nl != NULL);
    }
    if (shown < total || r->out_seen > r->out_len)
      fprintf(out, "... %zu more line%s; all of it: muster logs %s HOST/%s\n", total - shown,
              total - shown == 1 ? "" : "s", o->job_id, r->task_name);
    free(set);
  }
  free(sorted);
out:
  free(group_of);
  free(groups);
  free(names);
}

/* --- summary --- */

void mu_text_print_summary(FILE *out, const mu_text_opts *o, const mu_watch_model *m, int64_t elapsed_ms) {
  char counts[256], dur[32];
  const Muster__V1__JobCounts *c = &m->counts;
  Muster__V1__TaskState color_as =
      m->job_state == MUSTER__V1__JOB_STATE__JOB_SUCCEEDED   ? MUSTER__V1__TASK_STATE__SUCCEEDED
      : m->job_state == MUSTER__V1__JOB_STATE__JOB_CANCELLED ? MUSTER__V1__TASK_STATE__CANCELLED
                                                             : MUSTER__V1__TASK_STATE__FAILED;
  fprintf(out, "job %s %s%s%s: %s (%s)\n", o->job_id, mu_state_color(color_as, o->color),
          mu_job_state_word(m->job_state), mu_color_reset(o->color), mu_job_counts_format(c, counts, sizeof counts),
          mu_duration_format(elapsed_ms, dur, sizeof dur));
  /* the hosts of each problem (a failed host ended with a run that did not succeed), and the
   * hosts skip_unreachable skipped */
  if (mu_job_counts_problems(c) == 0 && c->skipped == 0) return;
  const char **names = calloc(m->n_hosts + 1, sizeof *names);
  if (names == NULL) return;
  for (int skipped = 0; skipped <= 1; skipped++) {
    size_t n = 0;
    for (size_t i = 0; i < m->n_hosts; i++)
      if (m->hosts[i].done && (skipped ? m->hosts[i].skipped : m->hosts[i].failed)) names[n++] = m->hosts[i].agent_id;
    if (n > 0) {
      char *set = mu_nodeset_fold(names, n);
      fprintf(out, "  %s: %s\n", skipped ? "skipped" : "not succeeded", set ? set : "?");
      free(set);
    }
  }
  free(names);
}
