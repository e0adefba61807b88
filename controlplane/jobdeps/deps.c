/* Dependency decisions (see deps.h): the after-list checks, the wait/run/skip verdict with
 * its reason, and the cycle search, all on what the caller gives. */
#include "controlplane/jobdeps/deps.h"

#include <stdio.h>
#include <string.h>

int mu_dep_on_parse(const char *s, mu_dep_on *ret_on, mu_err *err) {
  if (s == NULL || *s == '\0' || strcmp(s, "success") == 0) {
    *ret_on = MU_DEP_ON_SUCCESS;
    return 0;
  }
  if (strcmp(s, "completion") == 0) {
    *ret_on = MU_DEP_ON_COMPLETION;
    return 0;
  }
  return mu_err_set(err, MU_EINVAL, "on: '%.64s' is not success or completion", s);
}

const char *mu_dep_on_name(mu_dep_on on) { return on == MU_DEP_ON_COMPLETION ? "completion" : "success"; }

int mu_dep_after_check(const char *const *after, size_t n, mu_err *err) {
  if (n > MU_DEP_AFTER_MAX) return mu_err_set(err, MU_EINVAL, "after: %zu entries, at most %d", n, MU_DEP_AFTER_MAX);
  for (size_t i = 0; i < n; i++) {
    if (after[i] == NULL || after[i][0] == '\0')
      return mu_err_set(err, MU_EINVAL, "after[%zu]: empty (a job id or a schedule name)", i);
    for (size_t j = 0; j < i; j++)
      if (strcmp(after[i], after[j]) == 0)
        return mu_err_set(err, MU_EINVAL, "after[%zu]: '%.128s' listed twice", i, after[i]);
  }
  return 0;
}

static const char *state_name(Muster__V1__JobState s) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, (int)s);
  return v ? v->name : "UNKNOWN";
}

static int ended(Muster__V1__JobState s) {
  return s == MUSTER__V1__JOB_STATE__JOB_SUCCEEDED || s == MUSTER__V1__JOB_STATE__JOB_FAILED ||
         s == MUSTER__V1__JOB_STATE__JOB_CANCELLED;
}

/* "job J" or "schedule S (job J)": how a dependency is named in a reason. */
static void dep_label(const mu_dep_state *d, char *buf, size_t cap) {
  const char *id = d->job_id ? d->job_id : "";
  if (d->name != NULL && strcmp(d->name, id) != 0) snprintf(buf, cap, "'%.64s' (job %.64s)", d->name, id);
  else snprintf(buf, cap, "job %.64s", id);
}

mu_dep_verdict mu_dep_decide(const mu_dep_state *deps, size_t n, mu_dep_on on, char *reason, size_t cap) {
  char label[160];
  long waiting = -1;
  size_t n_waiting = 0;
  for (size_t i = 0; i < n; i++) {
    const mu_dep_state *d = &deps[i];
    if (d->forgotten) {
      if (on == MU_DEP_ON_SUCCESS) {
        dep_label(d, label, sizeof label);
        snprintf(reason, cap,
                 "not run: dependency %s was forgotten, its outcome is unknown "
                 "(on: success)",
                 label);
        return MU_DEP_SKIP;
      }
      continue;
    }
    if (!ended(d->state)) {
      if (waiting < 0) waiting = (long)i;
      n_waiting++;
      continue;
    }
    if (on == MU_DEP_ON_SUCCESS && d->state != MUSTER__V1__JOB_STATE__JOB_SUCCEEDED) {
      dep_label(d, label, sizeof label);
      snprintf(reason, cap, "not run: dependency %s ended %s (on: success)", label, state_name(d->state));
      return MU_DEP_SKIP;
    }
  }
  if (waiting >= 0) {
    dep_label(&deps[waiting], label, sizeof label);
    if (n_waiting > 1)
      snprintf(reason, cap, "waiting for %s (%s) and %zu more", label, state_name(deps[waiting].state), n_waiting - 1);
    else snprintf(reason, cap, "waiting for %s (%s)", label, state_name(deps[waiting].state));
    return MU_DEP_WAIT;
  }
  snprintf(reason, cap, n ? "dependencies done (on: %s)" : "no dependencies", mu_dep_on_name(on));
  return MU_DEP_RUN;
}

typedef struct cycle_search {
  const char *self;
  mu_dep_edges_fn edges;
  void *ud;
  const char *path[MU_DEP_DEPTH_MAX + 1];
  size_t visits; /* bounds the search of a wide graph (no visited set: names are borrowed) */
  mu_err *err;
} cycle_search;

static int cycle_report(cycle_search *s, size_t depth, const char *closing) {
  char msg[MU_ERR_MSG_MAX - 32];
  size_t used = 0;
  msg[0] = '\0';
  for (size_t i = 0; i <= depth && used + 1 < sizeof msg; i++) {
    int w = snprintf(msg + used, sizeof msg - used, "%s%.64s", i ? " -> " : "", s->path[i]);
    if (w > 0) used += (size_t)w;
  }
  if (used + 1 < sizeof msg) snprintf(msg + used, sizeof msg - used, " -> %.64s", closing);
  return mu_err_set(s->err, MU_EINVAL, "dependency cycle: %s", msg);
}

/* Depth-first from path[depth]; a node already on the path (or self) closes a cycle. */
static int cycle_visit(cycle_search *s, size_t depth) {
  const char *const *after = NULL;
  if (++s->visits > MU_DEP_VISITS_MAX)
    return mu_err_set(s->err, MU_EINVAL,
                      "after: more than %d dependencies to follow from "
                      "'%.64s'",
                      MU_DEP_VISITS_MAX, s->path[0]);
  size_t n = s->edges(s->ud, s->path[depth], &after);
  for (size_t i = 0; i < n; i++) {
    const char *next = after[i];
    if (s->self != NULL && strcmp(next, s->self) == 0) return cycle_report(s, depth, next);
    for (size_t k = 0; k <= depth; k++)
      if (strcmp(next, s->path[k]) == 0) return cycle_report(s, depth, next);
    if (depth + 1 >= MU_DEP_DEPTH_MAX)
      return mu_err_set(s->err, MU_EINVAL,
                        "after: a dependency chain from '%.64s' is longer "
                        "than %d",
                        s->path[0], MU_DEP_DEPTH_MAX);
    s->path[depth + 1] = next;
    int rc = cycle_visit(s, depth + 1);
    if (rc != 0) return rc;
  }
  return 0;
}

int mu_dep_cycle_check(const char *self, const char *const *after, size_t n, mu_dep_edges_fn edges, void *ud,
                       mu_err *err) {
  cycle_search s = {.self = self, .edges = edges, .ud = ud, .err = err};
  for (size_t i = 0; i < n; i++) {
    size_t depth = 0;
    if (self != NULL) {
      s.path[0] = self;
      if (strcmp(after[i], self) == 0) return cycle_report(&s, 0, self);
      depth = 1;
    }
    s.path[depth] = after[i];
    int rc = cycle_visit(&s, depth);
    if (rc != 0) return rc;
  }
  return 0;
}
