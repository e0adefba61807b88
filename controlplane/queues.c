/* Named queues: the table (config and cluster-set entries), a job's queue checked at submit,
 * and the fair share of one dispatch pass across queues by weight with each queue's
 * max_running (queues.h). No scheduler state: the pass works on indices and a callback. */
#include "controlplane/queues.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mu_queue_def builtin_default = {.name = MU_QUEUE_DEFAULT, .weight = 1, .max_running = 0};

int mu_queue_name_check(const char *name, mu_err *err) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n >= MU_QUEUE_NAME)
    return mu_err_set(err, MU_EINVAL, "queue name must be 1-%d characters", MU_QUEUE_NAME - 1);
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return mu_err_set(err, MU_EINVAL, "queue name '%s': only letters, digits, '_' and '-'", name);
  }
  return 0;
}

static mu_queue_def *table_find(mu_queue_table *t, const char *name) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->q[i].name, name) == 0) return &t->q[i];
  return NULL;
}

int mu_queue_table_set(mu_queue_table *t, const char *name, uint32_t weight, uint32_t max_running, mu_err *err) {
  if (mu_queue_name_check(name, err) != 0) return MU_EINVAL;
  if (weight > MU_QUEUE_WEIGHT_MAX)
    return mu_err_set(err, MU_EINVAL, "queue '%s': weight must be 1..%d, got %u", name, MU_QUEUE_WEIGHT_MAX, weight);
  mu_queue_def *q = table_find(t, name);
  if (q == NULL) {
    if (t->n >= MU_QUEUE_MAX) return mu_err_set(err, MU_ENOSPC, "more than %d queues", MU_QUEUE_MAX);
    q = &t->q[t->n++];
    snprintf(q->name, sizeof q->name, "%s", name);
  }
  q->weight = weight ? weight : 1;
  q->max_running = max_running;
  return 0;
}

int mu_queue_table_apply(mu_queue_table *t, const char *key, const char *value, mu_err *err) {
  const char *dot = strrchr(key, '.');
  char name[MU_QUEUE_NAME];
  if (dot == NULL || (size_t)(dot - key) >= sizeof name)
    return mu_err_set(err, MU_EINVAL, "queues: '%s': expected NAME.weight or NAME.max_running", key);
  snprintf(name, sizeof name, "%.*s", (int)(dot - key), key);
  char *end = NULL;
  unsigned long v = strtoul(value, &end, 10);
  if (value[0] < '0' || value[0] > '9' || *end != '\0' || v > 1000000)
    return mu_err_set(err, MU_EINVAL, "queues: %s: expected a number, got '%s'", key, value);
  const mu_queue_def *q = mu_queue_find(t, name);
  uint32_t weight = q ? q->weight : 1, max_running = q ? q->max_running : 0;
  if (strcmp(dot + 1, "weight") == 0) {
    if (v == 0) return mu_err_set(err, MU_EINVAL, "queues: %s: weight must be 1..%d", key, MU_QUEUE_WEIGHT_MAX);
    weight = (uint32_t)v;
  } else if (strcmp(dot + 1, "max_running") == 0) {
    max_running = (uint32_t)v;
  } else {
    return mu_err_set(err, MU_EINVAL, "queues: %s: unknown setting (known: weight, max_running)", key);
  }
  return mu_queue_table_set(t, name, weight, max_running, err);
}

int mu_queue_table_rm(mu_queue_table *t, const char *name) {
  mu_queue_def *q = table_find(t, name);
  if (q == NULL) return MU_ENOENT;
  size_t i = (size_t)(q - t->q);
  memmove(&t->q[i], &t->q[i + 1], (t->n - i - 1) * sizeof t->q[0]);
  t->n--;
  return 0;
}

const mu_queue_def *mu_queue_find(const mu_queue_table *t, const char *name) {
  if (name == NULL || name[0] == '\0') name = MU_QUEUE_DEFAULT;
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->q[i].name, name) == 0) return &t->q[i];
  return strcmp(name, MU_QUEUE_DEFAULT) == 0 ? &builtin_default : NULL;
}

int mu_queue_check(const mu_queue_table *t, const char *name, mu_err *err) {
  if (mu_queue_find(t, name) != NULL) return 0;
  char known[512];
  size_t off =
      (size_t)snprintf(known, sizeof known, "%s", mu_queue_find(t, "") == &builtin_default ? MU_QUEUE_DEFAULT : "");
  for (size_t i = 0; i < t->n && off < sizeof known; i++)
    off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", off ? ", " : "", t->q[i].name);
  return mu_err_set(err, MU_EINVAL, "queue: no queue '%s' (known: %s)", name, known);
}

static int at_limit(const mu_queue_def *q, uint32_t running) { return q->max_running > 0 && running >= q->max_running; }

int mu_queue_pass(const mu_queue_def *const *queues, size_t nq, const size_t *queue, size_t n, uint32_t *running,
                  mu_queue_dispatch_fn dispatch, void *ud) {
  /* each queue's jobs, in the order given: a counting sort by queue */
  size_t *order = malloc((n + 1) * sizeof *order);
  size_t *first = calloc(nq + 1, sizeof *first), *cur = calloc(nq + 1, sizeof *cur);
  if (order == NULL || first == NULL || cur == NULL) {
    free(order), free(first), free(cur);
    return MU_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) first[queue[i] + 1]++;
  for (size_t q = 0; q < nq; q++) first[q + 1] += first[q];
  for (size_t i = 0; i < n; i++) order[first[queue[i]] + cur[queue[i]]++] = i;
  memset(cur, 0, (nq + 1) * sizeof *cur);
  for (;;) {
    size_t best = nq, eligible = 0;
    for (size_t q = 0; q < nq; q++) {
      if (first[q] + cur[q] >= first[q + 1] || at_limit(queues[q], running[q])) continue;
      eligible++;
      /* fewest running per unit of weight: running[q]/w[q] < running[best]/w[best] */
      if (best == nq || (uint64_t)running[q] * queues[best]->weight < (uint64_t)running[best] * queues[q]->weight)
        best = q;
    }
    if (best == nq) break;
    const mu_queue_def *d = queues[best];
    size_t budget = eligible == 1 ? (size_t)-1 : d->weight;
    if (d->max_running > 0 && budget > d->max_running - running[best]) budget = d->max_running - running[best];
    size_t started = dispatch(ud, order[first[best] + cur[best]], budget, NULL);
    running[best] += (uint32_t)started;
    if (started < budget) cur[best]++;
  }
  /* queues at their limit: what is left waits, saying so */
  for (size_t q = 0; q < nq; q++) {
    char why[160];
    snprintf(why, sizeof why, "waiting: queue '%s' at its limit of %u running", queues[q]->name,
             queues[q]->max_running);
    for (; first[q] + cur[q] < first[q + 1]; cur[q]++) (void)dispatch(ud, order[first[q] + cur[q]], 0, why);
  }
  free(order), free(first), free(cur);
  return 0;
}
