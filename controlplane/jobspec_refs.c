/* ${TASK.KEY} and ${secret.NAME} references in task specs (see jobspec_refs.h). The task's
 * message is walked through its protobuf-c descriptor, so a field added to a task type later
 * is checked without a change here. */
#include "controlplane/jobspec_refs.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MU_REFS_PATH_MAX 256
#define MU_REFS_DEPTH_MAX 16

typedef struct walk {
  const Muster__V1__JobSpec *spec;
  size_t index;
  const Muster__V1__JobSpec *parent; /* a stage's job: the job with stages, else NULL */
  size_t stage;
  mu_jobspec_refs_report report;
  void *ud;
  int problems;
} walk;

/* At most this many problems per task: one bad script could otherwise name thousands. */
#define MU_REFS_PROBLEMS_MAX 8

static int ref_char(int c) { return isalnum(c) || c == '.' || c == '_' || c == '-'; }

/* The task whose name followed by "." starts body, the longest such name; -1 when none. */
static long task_of(const Muster__V1__JobSpec *spec, const char *body, size_t n) {
  long best = -1;
  size_t best_len = 0;
  for (size_t j = 0; j < spec->n_tasks; j++) {
    const char *name = spec->tasks[j]->name;
    size_t len = strlen(name);
    if (len == 0 || len + 1 >= n || body[len] != '.' || strncmp(body, name, len) != 0) continue;
    if (len > best_len) {
      best = (long)j;
      best_len = len;
    }
  }
  return best;
}

static void problem(walk *w, const char *path, const char *what) {
  if (w->problems++ >= MU_REFS_PROBLEMS_MAX) return;
  char msg[900];
  snprintf(msg, sizeof msg, "%s: %s", path, what);
  w->report(w->ud, msg);
}

/* Fields whose plugin replaces ${secret.NAME} itself: the http, container, spark and flink
 * sections and a third-party plugin's config (shell and python tasks read secrets from their
 * environment instead). */
static int takes_secret_refs(const char *path) {
  static const char *const sections[] = {"].http.", "].container.", "].spark.", "].flink.", "].plugin."};
  for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
    if (strstr(path, sections[i]) != NULL) return 1;
  return 0;
}

int mu_stage_ref_parse(const Muster__V1__JobSpec *parent, const char *body, size_t n, mu_stage_ref *ret, char *why,
                       size_t why_size) {
  memset(ret, 0, sizeof *ret);
  if (n < 7 || strncmp(body, "stages.", 7) != 0) {
    snprintf(why, why_size, "not a ${stages.*} reference");
    return -1;
  }
  const char *rest = body + 7;
  size_t rn = n - 7, best_len = 0;
  long best = -1;
  for (size_t k = 0; k < parent->n_stages; k++) { /* the longest stage name followed by "." */
    size_t len = strlen(parent->stages[k]->name);
    if (len == 0 || len + 1 >= rn || rest[len] != '.' || strncmp(rest, parent->stages[k]->name, len) != 0) continue;
    if (len > best_len) {
      best = (long)k;
      best_len = len;
    }
  }
  if (best < 0) {
    const char *dot = memchr(rest, '.', rn);
    int sn = dot ? (int)(dot - rest) : (int)rn;
    snprintf(why, why_size, "no stage '%.*s' in this job", sn > 100 ? 100 : sn, rest);
    return -1;
  }
  ret->stage = (size_t)best;
  const Muster__V1__Stage *st = parent->stages[best];
  const char *what = rest + best_len + 1;
  size_t wn = rn - best_len - 1;
  static const struct {
    const char *name;
    mu_stage_ref_kind kind;
  } aggs[] = {
      {"ok_hosts", MU_STAGE_REF_OK_HOSTS}, {"failed_hosts", MU_STAGE_REF_FAILED_HOSTS}, {"hosts", MU_STAGE_REF_HOSTS}};
  for (size_t i = 0; i < sizeof aggs / sizeof *aggs; i++)
    if (wn == strlen(aggs[i].name) && strncmp(what, aggs[i].name, wn) == 0) {
      ret->kind = aggs[i].kind;
      return 0;
    }
  /* HOST.TASK.KEY: the key after the last ".", the longest task name of the stage before it */
  const char *last = NULL;
  for (const char *c = what; c < what + wn; c++)
    if (*c == '.') last = c;
  long task = -1;
  size_t task_len = 0;
  if (last != NULL && last + 1 < what + wn) {
    size_t mid = (size_t)(last - what);
    for (size_t t = 0; t < st->n_tasks; t++) {
      size_t len = strlen(st->tasks[t]->name);
      if (len == 0 || len + 2 > mid) continue; /* at least one character of host, and "." */
      if (what[mid - len - 1] != '.' || strncmp(what + mid - len, st->tasks[t]->name, len) != 0) continue;
      if (len > task_len) {
        task = (long)t;
        task_len = len;
      }
    }
    if (task >= 0) {
      ret->kind = MU_STAGE_REF_OUTPUT;
      ret->host = what;
      ret->host_len = mid - task_len - 1;
      ret->task = (size_t)task;
      ret->key = last + 1;
      ret->key_len = (size_t)(what + wn - last - 1);
      return 0;
    }
  }
  int qn = wn > 100 ? 100 : (int)wn;
  snprintf(why, why_size,
           "'%.*s' names no task of stage '%.64s' (expected ${stages.%.64s.HOST.TASK.KEY} or "
           "${stages.%.64s.ok_hosts|failed_hosts|hosts})",
           qn, what, st->name, st->name, st->name);
  return -1;
}

/* A ${stages.*} reference in the job of stage w->stage. */
static void check_stage_ref(walk *w, const char *path, const char *body, size_t n) {
  int bn = n > 200 ? 200 : (int)n;
  char what[700], why[400];
  mu_stage_ref ref;
  if (w->parent == NULL) {
    snprintf(what, sizeof what, "${%.*s}: only a job with stages: has ${stages.*} values", bn, body);
  } else if (mu_stage_ref_parse(w->parent, body, n, &ref, why, sizeof why) != 0) {
    snprintf(what, sizeof what, "${%.*s}: %s", bn, body, why);
  } else if (ref.stage == w->stage) {
    snprintf(what, sizeof what, "${%.*s}: a stage cannot use its own outputs (use ${TASK.KEY} within a stage)", bn,
             body);
  } else if (ref.stage > w->stage) {
    snprintf(what, sizeof what, "${%.*s}: stage '%.64s' runs after this one (stages[%zu])", bn, body,
             w->parent->stages[ref.stage]->name, ref.stage);
  } else {
    return;
  }
  problem(w, path, what);
}

static void check_ref(walk *w, const char *path, const char *body, size_t n) {
  int bn = n > 200 ? 200 : (int)n;
  char what[512];
  if (n > 7 && strncmp(body, "secret.", 7) == 0) {
    if (takes_secret_refs(path)) return; /* jobspec.c checks it names a secrets entry */
    snprintf(what, sizeof what,
             "${%.*s} is not replaced in shell, python or env fields (read the secret "
             "from the task's environment)",
             bn, body);
    problem(w, path, what);
    return;
  }
  long j = task_of(w->spec, body, n);
  if (j < 0 && n > 7 && strncmp(body, "stages.", 7) == 0) {
    check_stage_ref(w, path, body, n);
    return;
  }
  if (j < 0 && n > 6 && strncmp(body, "param.", 6) == 0) {
    snprintf(what, sizeof what,
             "${%.*s}: params are replaced only when a job template is dispatched (muster "
             "dispatch); $${%.*s} is a literal",
             bn, body, bn, body);
  } else if (j < 0) {
    const char *dot = memchr(body, '.', n);
    int ns = dot ? (int)(dot - body) : bn;
    snprintf(what, sizeof what, "${%.*s}: no task '%.*s' in this job", bn, body, ns > 100 ? 100 : ns, body);
  } else if ((size_t)j == w->index) {
    snprintf(what, sizeof what, "${%.*s}: a task cannot use its own params", bn, body);
  } else if ((size_t)j > w->index) {
    snprintf(what, sizeof what, "${%.*s}: task '%.128s' runs after this one (tasks[%ld])", bn, body,
             w->spec->tasks[j]->name, j);
  } else {
    return;
  }
  problem(w, path, what);
}

static void check_text(walk *w, const char *path, const char *text) {
  if (text == NULL) return;
  for (const char *p = strstr(text, "${"); p != NULL; p = strstr(p + 2, "${")) {
    if (p > text && p[-1] == '$') continue; /* "$${": a literal "${" */
    const char *body = p + 2, *e = body;
    while (ref_char((unsigned char)*e)) e++;
    if (*e != '}' || memchr(body, '.', (size_t)(e - body)) == NULL) continue;
    check_ref(w, path, body, (size_t)(e - body));
  }
}

static void walk_message(walk *w, const ProtobufCMessage *m, char *path, size_t plen, int depth);

/* A map entry (key/value message) adds ".KEY" to the path rather than "[i]". */
static int is_map_entry(const ProtobufCMessageDescriptor *d) {
  return d->n_fields == 2 && strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0 &&
         d->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

static void walk_value(walk *w, const ProtobufCFieldDescriptor *f, const void *slot, char *path, size_t plen,
                       int depth) {
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    check_text(w, path, *(char *const *)slot);
  } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
    if (sub == NULL) return;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    if (is_map_entry(d)) {
      const char *key = *(char *const *)((const char *)sub + d->fields[0].offset);
      size_t n = (size_t)snprintf(path + plen, MU_REFS_PATH_MAX - plen, ".%s", key ? key : "");
      if (plen + n >= MU_REFS_PATH_MAX) n = MU_REFS_PATH_MAX - 1 - plen;
      if (d->fields[1].type == PROTOBUF_C_TYPE_STRING)
        check_text(w, path, *(char *const *)((const char *)sub + d->fields[1].offset));
      else walk_value(w, &d->fields[1], (const char *)sub + d->fields[1].offset, path, plen + n, depth + 1);
      path[plen] = '\0';
      return;
    }
    walk_message(w, sub, path, plen, depth + 1);
  }
}

static void walk_message(walk *w, const ProtobufCMessage *m, char *path, size_t plen, int depth) {
  if (depth > MU_REFS_DEPTH_MAX) return;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned k = 0; k < d->n_fields; k++) {
    const ProtobufCFieldDescriptor *f = &d->fields[k];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const char *base = (const char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
      if (which != f->id) continue;
    }
    size_t n = (size_t)snprintf(path + plen, MU_REFS_PATH_MAX - plen, ".%s", f->name);
    if (plen + n >= MU_REFS_PATH_MAX) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = *(const size_t *)(base + f->quantifier_offset);
      const char *items = *(const char *const *)(base + f->offset);
      size_t step = f->type == PROTOBUF_C_TYPE_STRING ? sizeof(char *) : sizeof(void *);
      int entries = f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor);
      for (size_t i = 0; i < count && items != NULL; i++) {
        size_t in = entries ? 0 : (size_t)snprintf(path + plen + n, MU_REFS_PATH_MAX - plen - n, "[%zu]", i);
        if (plen + n + in >= MU_REFS_PATH_MAX) break;
        walk_value(w, f, items + i * step, path, plen + n + in, depth);
        path[plen + n] = '\0';
      }
    } else {
      walk_value(w, f, base + f->offset, path, plen + n, depth);
    }
    path[plen] = '\0';
  }
}

void mu_jobspec_refs_check(const Muster__V1__JobSpec *spec, size_t index, mu_jobspec_refs_report report, void *ud) {
  mu_jobspec_refs_check_stage(spec, index, NULL, 0, report, ud);
}

void mu_jobspec_refs_check_stage(const Muster__V1__JobSpec *spec, size_t index, const Muster__V1__JobSpec *parent,
                                 size_t stage, mu_jobspec_refs_report report, void *ud) {
  if (index >= spec->n_tasks) return;
  walk w = {.spec = spec, .index = index, .parent = parent, .stage = stage, .report = report, .ud = ud};
  char path[MU_REFS_PATH_MAX];
  size_t plen = (size_t)snprintf(path, sizeof path, "tasks[%zu]", index);
  walk_message(&w, &spec->tasks[index]->base, path, plen, 0);
  if (w.problems > MU_REFS_PROBLEMS_MAX) {
    char msg[128];
    snprintf(msg, sizeof msg, "tasks[%zu]: %d more bad ${...} references not listed", index,
             w.problems - MU_REFS_PROBLEMS_MAX);
    report(ud, msg);
  }
}
