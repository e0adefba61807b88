/* Resource-aware placement for one scheduler pass: capacity and allocation, `any` placement
 * by spread or binpack, the waiting reason, and the submit-time capacity check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/placement.h"
#include "controlplane/targets.h"
#include "lib/selector/selector.h"

static const Muster__V1__Hello *hello_of(const mu_agent *a) { return a->hello_msg ? a->hello_msg->hello : NULL; }

const mu_res *mu_place_need(mu_job *job) {
  if (!job->need_known) {
    /* validated at submit; a record from before requests existed reserves one slot */
    if (mu_res_request(job->spec, &job->need, NULL) != 0) {
      memset(&job->need, 0, sizeof job->need);
      job->need.slots = 1;
    }
    job->need_known = 1;
  }
  return &job->need;
}

void mu_place_begin(mu_placement *p, mu_registry *reg, mu_job *jobs) {
  memset(p, 0, sizeof *p);
  p->reg = reg;
  for (size_t i = 0; i < reg->n; i++) {
    mu_agent *a = reg->agents[i];
    if (a->cap_gen != a->hello_gen || a->hello_gen == 0) { /* a new Hello: its capacity */
      mu_res_capacity(hello_of(a), &a->cap);
      a->cap_gen = a->hello_gen;
    }
    a->alloc.cpu = a->alloc.mem = a->alloc.slots = 0; /* cheaper than a memset of devices */
    a->alloc.n_dev = 0;
  }
  for (mu_job *j = jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j)) continue;
    for (size_t i = 0; i < j->n_hosts; i++) {
      const mu_host_run *h = &j->hosts[i];
      if (h->state != MU_HOST_RUNNING || h->agent_id == NULL) continue;
      mu_agent *a = mu_registry_find(reg, h->agent_id);
      if (a != NULL) mu_res_add(&a->alloc, mu_place_need(j), 1);
    }
  }
}

void mu_place_end(mu_placement *p) {
  for (size_t i = 0; i < MU_PLACE_CACHE; i++) {
    free(p->cache[i].text);
    free(p->cache[i].agents);
  }
  memset(p->cache, 0, sizeof p->cache);
}

/* The connected, non-draining agents matching text (cached for the pass); NULL when the
 * selector does not parse or memory ran out. */
static const mu_place_sel *matching(mu_placement *p, const char *text) {
  for (size_t i = 0; i < MU_PLACE_CACHE; i++)
    if (p->cache[i].text != NULL && strcmp(p->cache[i].text, text) == 0) return &p->cache[i];
  mu_selector *sel = NULL;
  if (mu_selector_parse(text, &sel, NULL) != 0) return NULL;
  mu_place_sel *c = &p->cache[p->next_evict];
  p->next_evict = (p->next_evict + 1) % MU_PLACE_CACHE;
  free(c->text);
  free(c->agents);
  c->n = 0;
  c->text = strdup(text);
  c->agents = malloc((p->reg->n + 1) * sizeof *c->agents);
  if (c->text == NULL || c->agents == NULL) {
    free(c->text);
    free(c->agents);
    memset(c, 0, sizeof *c);
    mu_selector_free(sel);
    return NULL;
  }
  for (size_t i = 0; i < p->reg->n; i++) {
    mu_agent *a = p->reg->agents[i];
    if (a->session != NULL && !a->draining && mu_selector_matches(sel, mu_agent_label, a)) c->agents[c->n++] = a;
  }
  mu_selector_free(sel);
  return c;
}

/* "4 CPU" (with_unit) or "4": an amount as a message shows it. */
static void amount(const char *kind, int64_t v, int with_unit, char *buf, size_t size) {
  if (with_unit) {
    mu_res_amount(kind, v, buf, size);
    return;
  }
  char full[64];
  mu_res_amount(kind, v, full, sizeof full);
  char *sp = strchr(full, ' ');
  if (sp != NULL && v != MU_RES_UNLIMITED) *sp = '\0';
  snprintf(buf, size, "%s", full);
}

/* The kind need is short of on a, with its requested amount (for messages). */
static int64_t requested(const mu_res *need, const char *kind) {
  mu_res none = {0};
  int64_t all = mu_res_free(need, &none, kind);
  return all;
}

mu_agent *mu_place_any(mu_placement *p, mu_job *job, char *why, size_t size) {
  why[0] = '\0';
  const Muster__V1__Target *t = job->spec->target;
  const mu_place_sel *m = matching(p, t->any);
  if (m == NULL || m->n == 0) return NULL;
  const mu_res *need = mu_place_need(job);
  int strategy = mu_res_strategy_parse(t->strategy);
  if (strategy < 0) strategy = MU_RES_SPREAD;
  int exclusive = job->n_hosts > 1; /* count: N distinct agents */
  if (exclusive) {
    p->gen++;
    for (size_t i = 0; i < job->n_hosts; i++) {
      mu_agent *a = job->hosts[i].agent_id ? mu_registry_find(p->reg, job->hosts[i].agent_id) : NULL;
      if (a != NULL) a->place_gen = p->gen;
    }
  }
  mu_agent *best = NULL;
  double best_score = 0;
  size_t eligible = 0;
  const mu_agent *closest = NULL; /* unfit, most free of its short kind */
  char kind[MU_RES_DEVICE_NAME + 16] = "";
  int64_t closest_free = -1;
  for (size_t i = 0; i < m->n; i++) {
    mu_agent *a = m->agents[i];
    if (exclusive && a->place_gen == p->gen) continue;
    if (!mu_targets_agent_fits_pins(a, job->spec)) continue; /* plugin_version */
    eligible++;
    char short_of[MU_RES_DEVICE_NAME + 16];
    if (a->running >= (uint64_t)a->cap.slots) {
      snprintf(short_of, sizeof short_of, "slots");
    } else if (mu_res_fits(&a->cap, &a->alloc, need, short_of, sizeof short_of)) {
      double sc = mu_res_score(&a->cap, &a->alloc, need, (mu_res_strategy)strategy);
      if (best == NULL || sc > best_score) {
        best = a;
        best_score = sc;
      }
      continue;
    }
    if (best != NULL) continue; /* only needed for the reason */
    if (kind[0] == '\0') snprintf(kind, sizeof kind, "%s", short_of);
    if (strcmp(kind, short_of) != 0) continue;
    int64_t f = mu_res_free(&a->cap, &a->alloc, kind);
    if (strcmp(kind, "slots") == 0 && a->cap.slots > (int64_t)a->running) {
      int64_t by_running = a->cap.slots - (int64_t)a->running;
      if (by_running < f) f = by_running;
    } else if (strcmp(kind, "slots") == 0) {
      f = 0;
    }
    if (f > closest_free) {
      closest = a;
      closest_free = f;
    }
  }
  if (best != NULL) {
    p->decisions++;
    return best;
  }
  if (eligible == 0) {
    snprintf(why, size, "waiting: every agent matching '%s' (%zu) already runs this job", t->any, m->n);
    return NULL;
  }
  char want[64], have[64];
  amount(kind, requested(need, kind), 1, want, sizeof want);
  amount(kind, closest_free, 0, have, sizeof have);
  snprintf(why, size, "waiting: no agent with %s free among %zu matching (best: %s with %s)", want, eligible,
           closest ? closest->id : "?", have);
  return NULL;
}

int mu_place_fits(const mu_job *job, const mu_agent *a, char *why, size_t size) {
  char kind[MU_RES_DEVICE_NAME + 16];
  if (mu_res_fits(&a->cap, &a->alloc, &job->need, kind, sizeof kind)) return 1;
  char want[64], have[64];
  amount(kind, requested(&job->need, kind), 1, want, sizeof want);
  amount(kind, mu_res_free(&a->cap, &a->alloc, kind), 1, have, sizeof have);
  snprintf(why, size, "waiting: %s has %s free, a host of this job needs %s", a->id, have, want);
  return 0;
}

void mu_place_take(mu_job *job, mu_agent *a) { mu_res_add(&a->alloc, mu_place_need(job), 1); }

/* The first kind need asks for that cap lacks entirely ("" when none). */
static void lacks(const mu_res *cap, const mu_res *need, char *kind, size_t size) {
  mu_res none = {0};
  kind[0] = '\0';
  mu_res_fits(cap, &none, need, kind, size);
}

int mu_place_admit(const mu_registry *reg, const Muster__V1__JobSpec *spec, char *const *ids, size_t n, mu_err *err) {
  const Muster__V1__Target *t = spec->target;
  if (t != NULL && mu_res_strategy_parse(t->strategy) < 0)
    return mu_err_set(err, MU_EINVAL, "target.strategy: expected spread or binpack, got \"%s\"", t->strategy);
  mu_res need;
  int rc = mu_res_request(spec, &need, err);
  if (rc != 0) return rc;
  char kind[MU_RES_DEVICE_NAME + 16], want[64], have[64];
  if (n > 0 && ids[0] != NULL) { /* named targets: each must be able to hold a host */
    for (size_t i = 0; i < n; i++) {
      const mu_agent *a = mu_registry_find(reg, ids[i]);
      mu_res cap;
      mu_res_capacity(a ? hello_of(a) : NULL, &cap);
      lacks(&cap, &need, kind, sizeof kind);
      if (a == NULL || kind[0] == '\0') continue;
      mu_res none = {0};
      amount(kind, requested(&need, kind), 1, want, sizeof want);
      amount(kind, mu_res_free(&cap, &none, kind), 1, have, sizeof have);
      return mu_err_set(err, MU_EINVAL, "resources.requests: target %s has %s in all, a host of this job needs %s",
                        a->id, have, want);
    }
    return 0;
  }
  if (t == NULL || t->any[0] == '\0') return 0;
  mu_selector *sel = NULL;
  rc = mu_selector_parse(t->any, &sel, err);
  if (rc != 0) return rc;
  const mu_agent *largest = NULL;
  int64_t largest_n = -1;
  char first_kind[sizeof kind] = "";
  size_t fits = 0;
  for (size_t i = 0; i < reg->n; i++) {
    const mu_agent *a = reg->agents[i];
    if (a->draining || !mu_selector_matches(sel, mu_agent_label, a)) continue;
    mu_res cap;
    mu_res_capacity(hello_of(a), &cap);
    lacks(&cap, &need, kind, sizeof kind);
    if (kind[0] == '\0') {
      fits++;
      continue;
    }
    if (first_kind[0] == '\0') snprintf(first_kind, sizeof first_kind, "%s", kind);
    mu_res none = {0};
    int64_t f = mu_res_free(&cap, &none, first_kind);
    if (f > largest_n) {
      largest = a;
      largest_n = f;
    }
  }
  mu_selector_free(sel);
  uint32_t count = t->count ? t->count : 1;
  if (fits >= count || largest == NULL) return 0;
  amount(first_kind, requested(&need, first_kind), 1, want, sizeof want);
  amount(first_kind, largest_n, 1, have, sizeof have);
  if (fits > 0)
    return mu_err_set(err, MU_EINVAL,
                      "resources.requests: target.count is %u but only %zu agents matching '%s' "
                      "can hold %s",
                      count, fits, t->any, want);
  return mu_err_set(err, MU_EINVAL,
                    "resources.requests: %s is more than any agent matching '%s' has (largest: "
                    "%s with %s)",
                    want, t->any, largest->id, have);
}
