/* Stages without daemon state (stages.h): shape rules, each stage's job spec, which stage runs
 * next, and the ${stages.*} values put into a stage's tasks when it starts. The substitution
 * walks a task through its protobuf-c descriptor, like jobspec_refs.c, so a field added to a
 * task type later takes ${stages.*} values without a change here. */
#include "controlplane/stages.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/jobspec_refs.h"
#include "lib/pbdup/pbdup.h"

#define MU_STAGES_TEXT_MAX (8u << 20) /* one field after substitution */
#define MU_STAGES_DEPTH_MAX 16

static const char *const state_names[] = {"pending", "running", "succeeded", "failed", "skipped", "cancelled"};

const char *mu_stage_state_name(mu_stage_state st) {
  return (size_t)st < sizeof state_names / sizeof *state_names ? state_names[st] : "unknown";
}

int mu_stage_state_parse(const char *name, mu_stage_state *ret) {
  for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++)
    if (strcmp(name, state_names[i]) == 0) {
      *ret = (mu_stage_state)i;
      return 0;
    }
  return -1;
}

static void report_f(mu_stages_report report, void *ud, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report_f(mu_stages_report report, void *ud, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  report(ud, msg);
}

static int known_when(const char *w) {
  return w[0] == '\0' || strcmp(w, "success") == 0 || strcmp(w, "always") == 0 || strcmp(w, "on_failure") == 0;
}

void mu_stages_check(Muster__V1__JobSpec *spec, mu_stages_report report, void *ud) {
  if (spec->target != NULL) report_f(report, ud, "target: a job with stages has its targets in each stage");
  if (spec->rollout != NULL) report_f(report, ud, "rollout: a job with stages has a rollout per stage");
  if (spec->n_tasks > 0)
    report_f(report, ud, "tasks: a job with stages has its tasks in each stage (got %zu tasks beside stages)",
             spec->n_tasks);
  if (spec->n_stages > MU_STAGES_MAX)
    report_f(report, ud, "stages: %zu stages, the limit is %d", spec->n_stages, MU_STAGES_MAX);
  for (size_t k = 0; k < spec->n_stages && k < MU_STAGES_MAX; k++) {
    Muster__V1__Stage *st = spec->stages[k];
    const char *name = st->name;
    if (name[0] == '\0') report_f(report, ud, "stages[%zu].name: required", k);
    else if (strlen(name) > MU_STAGE_NAME_MAX)
      report_f(report, ud, "stages[%zu].name: at most %d characters", k, MU_STAGE_NAME_MAX);
    for (const char *c = name; *c; c++)
      if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
        report_f(report, ud, "stages[%zu].name: '%.64s' may only hold letters, digits, '_' and '-'", k, name);
        break;
      }
    for (size_t j = 0; j < k && name[0] != '\0'; j++)
      if (strcmp(spec->stages[j]->name, name) == 0)
        report_f(report, ud, "stages[%zu].name: '%.64s' is already the name of stages[%zu]", k, name, j);
    if (!known_when(st->when))
      report_f(report, ud, "stages[%zu].when: expected success, always or on_failure, got '%.64s'", k, st->when);
    if (st->n_tasks == 0) report_f(report, ud, "stages[%zu].tasks: a stage needs at least one task", k);
    for (size_t t = 0; t < st->n_tasks; t++) {
      Muster__V1__TaskSpec *task = st->tasks[t];
      if (task->name[0] != '\0') continue;
      char dflt[32];
      snprintf(dflt, sizeof dflt, "task-%zu", t + 1);
      char *copy = strdup(dflt);
      if (copy == NULL) continue; /* stays "": validation of the stage names it */
      if (task->name != protobuf_c_empty_string) free(task->name);
      task->name = copy;
    }
  }
}

Muster__V1__JobSpec *mu_stages_spec(const Muster__V1__JobSpec *spec, size_t k) {
  if (k >= spec->n_stages) return NULL;
  const Muster__V1__Stage *st = spec->stages[k];
  char name[200];
  snprintf(name, sizeof name, "%.60s/%.64s", spec->name[0] ? spec->name : "job", st->name);
  /* borrowed from spec, then copied whole */
  Muster__V1__JobSpec view = MUSTER__V1__JOB_SPEC__INIT;
  view.name = name;
  view.target = st->target;
  view.rollout = st->rollout;
  view.n_tasks = st->n_tasks;
  view.tasks = st->tasks;
  view.priority = spec->priority;
  view.n_labels = spec->n_labels;
  view.labels = spec->labels;
  view.queue = spec->queue;
  return (Muster__V1__JobSpec *)mu_pb_dup(&view.base);
}

int mu_stage_job_id(const char *job_id, const char *stage, char *out, size_t size) {
  int n = snprintf(out, size, "%s.%s", job_id, stage);
  return n < 0 || (size_t)n >= size ? MU_EINVAL : 0;
}

size_t mu_stage_parent_len(const char *job_id) {
  const char *dot = strchr(job_id, '.');
  return dot != NULL && dot > job_id && dot[1] != '\0' ? (size_t)(dot - job_id) : 0;
}

static int any_failed(const mu_stage_state *ended, size_t k) {
  for (size_t i = 0; i < k; i++)
    if (ended[i] == MU_STAGE_FAILED || ended[i] == MU_STAGE_CANCELLED) return 1;
  return 0;
}

int mu_stages_should_run(const mu_stage_state *ended, size_t k, const char *when, int job_cancelled) {
  if (job_cancelled) return 0;
  if (strcmp(when, "always") == 0) return 1;
  if (strcmp(when, "on_failure") == 0) return any_failed(ended, k);
  return !any_failed(ended, k);
}

Muster__V1__JobState mu_stages_final(const mu_stage_state *ended, size_t n, int job_cancelled) {
  if (job_cancelled) return MUSTER__V1__JOB_STATE__JOB_CANCELLED;
  return any_failed(ended, n) ? MUSTER__V1__JOB_STATE__JOB_FAILED : MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
}

/* --- substitution --- */

typedef struct subst {
  const Muster__V1__JobSpec *parent;
  size_t stage;
  mu_stage_lookup lookup;
  void *ud;
  mu_err *err;
  int rc;
} subst;

static int ref_char(int c) { return isalnum(c) || c == '.' || c == '_' || c == '-'; }

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > MU_STAGES_TEXT_MAX) return MU_EINVAL;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *grown = realloc(b->p, cap);
    if (grown == NULL) return MU_ENOMEM;
    b->p = grown;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

/* The text with its ${stages.*} references replaced: NULL (nothing to replace, or an error
 * in x->rc), else an owned string. */
static char *subst_text(subst *x, const char *path, const char *text) {
  if (text == NULL || strstr(text, "${stages.") == NULL) return NULL;
  buf b = {0};
  const char *from = text;
  for (const char *p = strstr(text, "${"); p != NULL && x->rc == 0; p = strstr(p + 2, "${")) {
    if (p > text && p[-1] == '$') continue; /* "$${": a literal "${" */
    const char *body = p + 2, *e = body;
    while (ref_char((unsigned char)*e)) e++;
    size_t n = (size_t)(e - body);
    if (*e != '}' || n < 8 || strncmp(body, "stages.", 7) != 0) continue;
    mu_stage_ref ref;
    char why[400], *value = NULL;
    int bn = n > 200 ? 200 : (int)n;
    int bad = mu_stage_ref_parse(x->parent, body, n, &ref, why, sizeof why) != 0;
    if (!bad && ref.stage >= x->stage) {
      snprintf(why, sizeof why, "not an earlier stage");
      bad = 1;
    }
    if (bad) {
      x->rc = mu_err_set(x->err, MU_EINVAL, "%s: ${%.*s}: %s", path, bn, body, why);
      break;
    }
    if (x->lookup(x->ud, &ref, &value, why, sizeof why) != 0) {
      x->rc = mu_err_set(x->err, MU_EINVAL, "%s: ${%.*s}: %s", path, bn, body, why);
      break;
    }
    int rc = buf_add(&b, from, (size_t)(p - from));
    if (rc == 0) rc = buf_add(&b, value, strlen(value));
    free(value);
    if (rc != 0) {
      x->rc = mu_err_set(x->err, rc, "%s: %s", path, rc == MU_ENOMEM ? "out of memory" : "too long with its values");
      break;
    }
    from = e + 1;
    p = e - 1; /* the next search starts past this reference */
  }
  if (x->rc == 0 && b.p != NULL) {
    int rc = buf_add(&b, from, strlen(from));
    if (rc != 0) x->rc = mu_err_set(x->err, rc, "%s: %s", path, rc == MU_ENOMEM ? "out of memory" : "too long");
  }
  if (x->rc != 0) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

static void subst_slot(subst *x, const char *path, char **slot) {
  char *next = subst_text(x, path, *slot);
  if (next == NULL) return;
  if (*slot != protobuf_c_empty_string) free(*slot);
  *slot = next;
}

static void subst_message(subst *x, ProtobufCMessage *m, char *path, size_t plen, int depth);

static void subst_value(subst *x, const ProtobufCFieldDescriptor *f, void *slot, char *path, size_t plen, int depth) {
  if (f->type == PROTOBUF_C_TYPE_STRING) subst_slot(x, path, (char **)slot);
  else if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage **)slot != NULL)
    subst_message(x, *(ProtobufCMessage **)slot, path, plen, depth + 1);
}

static void subst_message(subst *x, ProtobufCMessage *m, char *path, size_t plen, int depth) {
  if (depth > MU_STAGES_DEPTH_MAX) return;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  char *base = (char *)m;
  for (unsigned k = 0; k < d->n_fields && x->rc == 0; k++) {
    const ProtobufCFieldDescriptor *f = &d->fields[k];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
    size_t n = (size_t)snprintf(path + plen, 256 - plen, ".%s", f->name);
    if (plen + n >= 256) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = *(const size_t *)(base + f->quantifier_offset);
      char *items = *(char **)(base + f->offset);
      for (size_t i = 0; i < count && items != NULL && x->rc == 0; i++)
        subst_value(x, f, items + i * sizeof(void *), path, plen + n, depth);
    } else {
      subst_value(x, f, base + f->offset, path, plen + n, depth);
    }
    path[plen] = '\0';
  }
}

int mu_stages_substitute(Muster__V1__JobSpec *child, const Muster__V1__JobSpec *parent, size_t k,
                         mu_stage_lookup lookup, void *ud, mu_err *err) {
  subst x = {.parent = parent, .stage = k, .lookup = lookup, .ud = ud, .err = err};
  char path[256];
  for (size_t t = 0; t < child->n_tasks && x.rc == 0; t++) {
    size_t plen = (size_t)snprintf(path, sizeof path, "stages[%zu].tasks[%zu]", k, t);
    subst_message(&x, &child->tasks[t]->base, path, plen, 0);
  }
  return x.rc;
}
