/* Resource amounts for placement: requests from a job spec, capacity from a Hello, fit,
 * score and the words for a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/resources.h"
#include "lib/base/clock.h"

int64_t mu_res_device(const mu_res *r, const char *name) {
  for (size_t i = 0; i < r->n_dev; i++)
    if (strcmp(r->dev[i].name, name) == 0) return r->dev[i].n;
  return 0;
}

static int64_t *device_slot(mu_res *r, const char *name) {
  for (size_t i = 0; i < r->n_dev; i++)
    if (strcmp(r->dev[i].name, name) == 0) return &r->dev[i].n;
  if (r->n_dev == MU_RES_MAX_DEVICES || strlen(name) >= MU_RES_DEVICE_NAME) return NULL;
  snprintf(r->dev[r->n_dev].name, MU_RES_DEVICE_NAME, "%s", name);
  r->dev[r->n_dev].n = 0;
  return &r->dev[r->n_dev++].n;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int mu_res_request(const Muster__V1__JobSpec *spec, mu_res *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  ret->slots = 1;
  for (size_t t = 0; t < spec->n_tasks; t++) {
    const Muster__V1__TaskSpec *ts = spec->tasks[t];
    const Muster__V1__ResourceRequests *rq = ts->resources ? ts->resources->requests : NULL;
    if (rq == NULL) continue;
    ret->cpu = max64(ret->cpu, rq->cpu);
    ret->slots = max64(ret->slots, rq->slots);
    if (rq->memory[0] != '\0') {
      uint64_t mem = 0;
      mu_err e = {0};
      if (mu_size_parse(rq->memory, &mem, &e) != 0 || mem > (uint64_t)INT64_MAX)
        return mu_err_set(err, MU_EINVAL, "tasks[%zu].resources.requests.memory: %s", t,
                          e.msg[0] ? e.msg : "too large");
      ret->mem = max64(ret->mem, (int64_t)mem);
    }
    for (size_t d = 0; d < rq->n_devices; d++) {
      const char *name = rq->devices[d]->key;
      if (name[0] == '\0' || strlen(name) >= MU_RES_DEVICE_NAME)
        return mu_err_set(err, MU_EINVAL,
                          "tasks[%zu].resources.requests.devices: a name of 1..%d characters, "
                          "got \"%s\"",
                          t, MU_RES_DEVICE_NAME - 1, name);
      if (rq->devices[d]->value > (uint64_t)INT32_MAX)
        return mu_err_set(err, MU_EINVAL, "tasks[%zu].resources.requests.devices.%s: at most %d", t, name, INT32_MAX);
      int64_t *slot = device_slot(ret, name);
      if (slot == NULL)
        return mu_err_set(err, MU_EINVAL,
                          "tasks[%zu].resources.requests.devices: more than %d device kinds in "
                          "the job",
                          t, MU_RES_MAX_DEVICES);
      *slot = max64(*slot, (int64_t)rq->devices[d]->value);
    }
  }
  return 0;
}

void mu_res_capacity(const Muster__V1__Hello *h, mu_res *ret) {
  memset(ret, 0, sizeof *ret);
  ret->cpu = ret->mem = MU_RES_UNLIMITED;
  ret->slots = 1;
  if (h == NULL) return;
  const Muster__V1__Capacity *c = h->capacity;
  if (c != NULL && c->slots > 0) ret->slots = c->slots;
  if (c != NULL && c->cpu_millis > 0) ret->cpu = c->cpu_millis;
  else if (h->cpu_count > 0) ret->cpu = (int64_t)h->cpu_count * 1000;
  if (c != NULL && c->memory_bytes > 0 && c->memory_bytes <= (uint64_t)INT64_MAX) ret->mem = (int64_t)c->memory_bytes;
  else if (h->memory_bytes > 0 && h->memory_bytes <= (uint64_t)INT64_MAX) ret->mem = (int64_t)h->memory_bytes;
  for (size_t i = 0; i < h->n_labels; i++) { /* labels "devices.gpu=2" */
    if (strncmp(h->labels[i]->key, "devices.", 8) != 0) continue;
    char *end = NULL;
    long long n = strtoll(h->labels[i]->value, &end, 10);
    int64_t *slot = end && *end == '\0' && n >= 0 ? device_slot(ret, h->labels[i]->key + 8) : NULL;
    if (slot != NULL) *slot = n;
  }
  for (size_t i = 0; c != NULL && i < c->n_devices; i++) { /* config wins over a label */
    int64_t *slot = device_slot(ret, c->devices[i]->key);
    if (slot != NULL) *slot = c->devices[i]->value > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)c->devices[i]->value;
  }
}

int mu_res_strategy_parse(const char *text) {
  if (text == NULL || text[0] == '\0' || strcmp(text, "spread") == 0) return MU_RES_SPREAD;
  if (strcmp(text, "binpack") == 0) return MU_RES_BINPACK;
  return -1;
}

static int64_t sat_add(int64_t a, int64_t b) {
  if (a == MU_RES_UNLIMITED || b == MU_RES_UNLIMITED) return MU_RES_UNLIMITED;
  return a + b;
}

void mu_res_add(mu_res *a, const mu_res *b, int sign) {
  a->cpu += sign * b->cpu;
  a->mem += sign * b->mem;
  a->slots += sign * b->slots;
  for (size_t i = 0; i < b->n_dev; i++) {
    int64_t *slot = device_slot(a, b->dev[i].name);
    if (slot != NULL) *slot += sign * b->dev[i].n;
  }
}

static int kind_fits(int64_t cap, int64_t alloc, int64_t need) {
  if (need <= 0 || cap == MU_RES_UNLIMITED) return 1;
  return sat_add(alloc, need) <= cap;
}

int mu_res_fits(const mu_res *cap, const mu_res *alloc, const mu_res *need, char *short_of, size_t size) {
  const char *kind = NULL;
  if (!kind_fits(cap->cpu, alloc->cpu, need->cpu)) kind = "cpu";
  else if (!kind_fits(cap->mem, alloc->mem, need->mem)) kind = "memory";
  else if (!kind_fits(cap->slots, alloc->slots, need->slots)) kind = "slots";
  for (size_t i = 0; kind == NULL && i < need->n_dev; i++)
    if (!kind_fits(mu_res_device(cap, need->dev[i].name), mu_res_device(alloc, need->dev[i].name), need->dev[i].n)) {
      if (short_of != NULL) snprintf(short_of, size, "devices.%s", need->dev[i].name);
      return 0;
    }
  if (kind != NULL && short_of != NULL) snprintf(short_of, size, "%s", kind);
  return kind == NULL;
}

int64_t mu_res_free(const mu_res *cap, const mu_res *alloc, const char *kind) {
  int64_t c, a;
  if (strcmp(kind, "cpu") == 0) c = cap->cpu, a = alloc->cpu;
  else if (strcmp(kind, "memory") == 0) c = cap->mem, a = alloc->mem;
  else if (strcmp(kind, "slots") == 0) c = cap->slots, a = alloc->slots;
  else if (strncmp(kind, "devices.", 8) == 0) c = mu_res_device(cap, kind + 8), a = mu_res_device(alloc, kind + 8);
  else return 0;
  if (c == MU_RES_UNLIMITED) return c;
  return c > a ? c - a : 0;
}

/* The fraction of a declared kind left free after need; 1 when undeclared or empty. */
static double left(int64_t cap, int64_t alloc, int64_t need) {
  if (cap == MU_RES_UNLIMITED || cap <= 0) return 1.0;
  return (double)(cap - alloc - need) / (double)cap;
}

double mu_res_score(const mu_res *cap, const mu_res *alloc, const mu_res *need, mu_res_strategy strategy) {
  double m = left(cap->slots, alloc->slots, need->slots), v;
  v = left(cap->cpu, alloc->cpu, need->cpu);
  if (v < m) m = v;
  v = left(cap->mem, alloc->mem, need->mem);
  if (v < m) m = v;
  for (size_t i = 0; i < need->n_dev; i++) {
    v = left(mu_res_device(cap, need->dev[i].name), mu_res_device(alloc, need->dev[i].name), need->dev[i].n);
    if (v < m) m = v;
  }
  return strategy == MU_RES_BINPACK ? -m : m;
}

void mu_res_amount(const char *kind, int64_t amount, char *buf, size_t size) {
  if (amount == MU_RES_UNLIMITED) snprintf(buf, size, "unlimited %s", kind);
  else if (strcmp(kind, "cpu") == 0) snprintf(buf, size, "%g CPU", (double)amount / 1000.0);
  else if (strcmp(kind, "memory") == 0) snprintf(buf, size, "%.1f GiB memory", (double)amount / (1024.0 * 1024 * 1024));
  else snprintf(buf, size, "%lld %s", (long long)amount, kind);
}
