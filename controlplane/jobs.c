/* Job bookkeeping: construction, lookups, read-only views for the admin API, bounded output
 * tails, and the bounded event history that late WatchJob callers replay. */
#define _GNU_SOURCE /* qsort_r */
#include "controlplane/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/jobcounts/jobcounts.h"

static int cmp_host_order(const void *a, const void *b, void *ud) {
  const mu_host_run *hosts = ud;
  return strcmp(hosts[*(const size_t *)a].agent_id, hosts[*(const size_t *)b].agent_id);
}

/* Sorts the hosts that have an agent id by it, for mu_job_host's binary search. */
static void index_hosts(mu_job *job) {
  free(job->host_order);
  job->n_host_order = 0;
  job->host_order = malloc((job->n_hosts + 1) * sizeof *job->host_order);
  if (job->host_order == NULL) return; /* lookups scan instead */
  for (size_t i = 0; i < job->n_hosts; i++)
    if (job->hosts[i].agent_id != NULL) job->host_order[job->n_host_order++] = i;
  qsort_r(job->host_order, job->n_host_order, sizeof *job->host_order, cmp_host_order, job->hosts);
}

mu_job *mu_job_new(const char *id, Muster__V1__JobSpec *spec, const mu_rollout *rollout, char **agent_ids,
                   size_t n_targets, size_t tail_cap) {
  mu_job *job = calloc(1, sizeof *job);
  if (job == NULL) return NULL;
  job->id = strdup(id);
  job->spec = spec;
  job->rollout = *rollout;
  /* a job with dependencies is PENDING until they allow it to start (job_deps.h) */
  job->state = spec->n_after > 0 ? MUSTER__V1__JOB_STATE__JOB_PENDING : MUSTER__V1__JOB_STATE__JOB_RUNNING;
  job->created_at_ms = mu_now_ms();
  job->hosts = calloc(n_targets ? n_targets : 1, sizeof *job->hosts);
  job->n_hosts = n_targets;
  job->concurrency = mu_rollout_concurrency(rollout, (uint32_t)n_targets);
  job->error_budget = mu_rollout_error_budget(rollout, (uint32_t)n_targets);
  for (size_t i = 0; i < n_targets; i++) {
    mu_host_run *h = &job->hosts[i];
    h->job = job;
    h->agent_id = agent_ids[i] ? strdup(agent_ids[i]) : NULL;
    h->tasks = calloc(spec->n_tasks, sizeof *h->tasks);
    h->batch = mu_rollout_batch_of(rollout, i);
    for (size_t t = 0; h->tasks && t < spec->n_tasks; t++) {
      mu_task_run *tr = &h->tasks[t];
      tr->state = MUSTER__V1__TASK_STATE__PENDING;
      muster__v1__task_metrics__init(&tr->metrics);
      tr->tail.cap = tail_cap;
      char tid[400], any[32] = "any";
      if (n_targets > 1) snprintf(any, sizeof any, "any-%zu", i); /* count: N unplaced hosts */
      snprintf(tid, sizeof tid, "%s/%s/%s", id, h->agent_id ? h->agent_id : any, spec->tasks[t]->name);
      tr->task_id = strdup(tid);
    }
  }
  if (spec->n_stages > 0) job->stage_runs = calloc(spec->n_stages, sizeof *job->stage_runs);
  index_hosts(job);
  if (spec->n_stages > 0 && job->stage_runs == NULL) {
    job->spec = NULL; /* the caller keeps spec on failure */
    mu_job_free(job);
    return NULL;
  }
  return job;
}

void mu_job_free(mu_job *job) {
  if (job == NULL) return;
  for (size_t i = 0; i < job->n_hosts; i++) {
    mu_host_run *h = &job->hosts[i];
    for (size_t t = 0; h->tasks && t < job->spec->n_tasks; t++) {
      mu_task_run *tr = &h->tasks[t];
      free(tr->task_id);
      free(tr->message);
      for (size_t p = 0; p < tr->n_params; p++) {
        free(tr->params[p].key);
        free(tr->params[p].value);
      }
      free(tr->params);
      free(tr->tail.buf);
    }
    free(h->tasks);
    free(h->agent_id);
  }
  free(job->hosts);
  free(job->host_order);
  for (size_t i = 0; i < job->n_history; i++) free(job->history[i]);
  free(job->history);
  free(job->history_len);
  mu_job_close_watchers(job, MU_RPC_UNAVAILABLE, "job dropped from memory");
  for (size_t k = 0; job->stage_runs != NULL && job->spec != NULL && k < job->spec->n_stages; k++)
    free(job->stage_runs[k].message);
  free(job->stage_runs);
  if (job->spec) protobuf_c_message_free_unpacked(&job->spec->base, NULL);
  free(job->end_reason);
  free(job->waiting_for);
  free(job->id);
  free(job);
}

int mu_job_finished(const mu_job *job) {
  return job->state != MUSTER__V1__JOB_STATE__JOB_RUNNING && job->state != MUSTER__V1__JOB_STATE__JOB_PENDING &&
         job->state != MUSTER__V1__JOB_STATE__JOB_HELD;
}

static mu_host_run *scan_host(mu_job *job, const char *agent_id) {
  for (size_t i = 0; i < job->n_hosts; i++)
    if (job->hosts[i].agent_id && strcmp(job->hosts[i].agent_id, agent_id) == 0) return &job->hosts[i];
  return NULL;
}

mu_host_run *mu_job_host(mu_job *job, const char *agent_id) {
  if (job->host_order == NULL || job->spec->target == NULL || job->spec->target->any[0] != '\0')
    return scan_host(job, agent_id);
  size_t lo = 0, hi = job->n_host_order;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *id = job->hosts[job->host_order[mid]].agent_id;
    int c = id ? strcmp(id, agent_id) : -1;
    if (c == 0) return &job->hosts[job->host_order[mid]];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

int mu_task_id_matches(const mu_job *job, const char *full, const char *given) {
  if (strcmp(full, given) == 0) return 1;
  /* "<agent>/<task>" within the job is enough */
  size_t idlen = strlen(job->id);
  return strncmp(full, job->id, idlen) == 0 && full[idlen] == '/' && strcmp(full + idlen + 1, given) == 0;
}

mu_task_run *mu_job_task(mu_job *job, const char *task_id, mu_host_run **ret_host) {
  /* "<job>/<agent>/<task>" or "<agent>/<task>": task names hold no '/', agent ids may */
  size_t idlen = strlen(job->id);
  const char *rest = strncmp(task_id, job->id, idlen) == 0 && task_id[idlen] == '/' ? task_id + idlen + 1 : task_id;
  const char *slash = strrchr(rest, '/');
  char agent[400];
  if (slash != NULL && (size_t)(slash - rest) < sizeof agent) {
    memcpy(agent, rest, (size_t)(slash - rest));
    agent[slash - rest] = '\0';
    mu_host_run *h = mu_job_host(job, agent);
    for (size_t t = 0; h != NULL && t < job->spec->n_tasks; t++)
      if (strcmp(job->spec->tasks[t]->name, slash + 1) == 0 && mu_task_id_matches(job, h->tasks[t].task_id, task_id)) {
        if (ret_host) *ret_host = h;
        return &h->tasks[t];
      }
  }
  for (size_t i = 0; i < job->n_hosts; i++) /* e.g. an "any" host not placed yet */
    for (size_t t = 0; t < job->spec->n_tasks; t++)
      if (mu_task_id_matches(job, job->hosts[i].tasks[t].task_id, task_id)) {
        if (ret_host) *ret_host = &job->hosts[i];
        return &job->hosts[i].tasks[t];
      }
  return NULL;
}

/* Makes buf hold at least want bytes (at most cap); 0 or -1 when out of memory. Before the
 * ring wraps start is 0, so the bytes kept stay where they are. */
static int tail_reserve(mu_tail *t, size_t want) {
  if (want <= t->alloc) return 0;
  size_t size = t->alloc ? t->alloc : 256;
  while (size < want) size *= 2;
  if (size > t->cap) size = t->cap;
  char *grown = realloc(t->buf, size);
  if (grown == NULL) return -1;
  t->buf = grown;
  t->alloc = size;
  return 0;
}

void mu_tail_append(mu_tail *t, const void *data, size_t len) {
  t->total += len;
  if (t->cap == 0 || len == 0) return;
  if (t->buf == NULL) t->alloc = 0;
  const char *p = data;
  if (len >= t->cap) {
    if (tail_reserve(t, t->cap) != 0) return;
    memcpy(t->buf, p + len - t->cap, t->cap);
    t->start = 0;
    t->len = t->cap;
    return;
  }
  if (t->len + len <= t->cap && t->start == 0) { /* not wrapping: append in place */
    if (tail_reserve(t, t->len + len) != 0) return;
    memcpy(t->buf + t->len, p, len);
    t->len += len;
    return;
  }
  if (tail_reserve(t, t->cap) != 0) return;
  for (size_t i = 0; i < len; i++) {
    size_t pos = (t->start + t->len) % t->cap;
    t->buf[pos] = p[i];
    if (t->len < t->cap) t->len++;
    else t->start = (t->start + 1) % t->cap;
  }
}

size_t mu_tail_copy(const mu_tail *t, char *out, size_t size) {
  if (size == 0) return 0;
  size_t n = t->len < size - 1 ? t->len : size - 1;
  size_t skip = t->len - n;
  for (size_t i = 0; i < n; i++) out[i] = t->buf[(t->start + skip + i) % t->cap];
  out[n] = '\0';
  return n;
}

void mu_task_run_view(const mu_job *job, const mu_host_run *h, size_t index, Muster__V1__TaskRun *out,
                      Muster__V1__TaskRun__OutputParamsEntry *storage, Muster__V1__TaskRun__OutputParamsEntry **ptrs,
                      char *tail_buf, size_t tail_size) {
  const mu_task_run *tr = &h->tasks[index];
  muster__v1__task_run__init(out);
  out->job_id = job->id;
  out->task_id = tr->task_id;
  out->task_name = job->spec->tasks[index]->name;
  out->agent_id = h->agent_id ? h->agent_id : "";
  out->attempt = tr->attempt;
  out->state = tr->state;
  out->exit_code = tr->exit_code;
  out->signal = tr->signal;
  out->message = tr->message ? tr->message : "";
  out->started_at_ms = tr->started_at_ms;
  out->finished_at_ms = tr->finished_at_ms;
  out->retry_pending = tr->retry_at_mono > 0;
  if (tr->history_attempt == tr->attempt && tr->n_anomalies > 0) {
    out->n_anomalies = tr->n_anomalies;
    out->anomalies = (char **)tr->anomalies;
  }
  if (tr->has_metrics) out->metrics = (Muster__V1__TaskMetrics *)&tr->metrics;
  for (size_t p = 0; storage && p < tr->n_params; p++) {
    muster__v1__task_run__output_params_entry__init(&storage[p]);
    storage[p].key = tr->params[p].key;
    storage[p].value = tr->params[p].value;
    ptrs[p] = &storage[p];
  }
  out->n_output_params = storage ? tr->n_params : 0;
  out->output_params = storage ? ptrs : NULL;
  if (tail_buf != NULL) {
    mu_tail_copy(&tr->tail, tail_buf, tail_size);
    out->output_tail = tail_buf;
  }
}

/* A view owns its arrays (not the strings, which it borrows from the job). */
void mu_job_counts_of(const mu_job *job, Muster__V1__JobCounts *ret_counts) {
  uint32_t by_state[MU_COUNT_STATES] = {0};
  by_state[MU_COUNT_RUNNING] = job->running;
  by_state[MU_COUNT_SUCCEEDED] = job->succeeded;
  by_state[MU_COUNT_FAILED] = job->failed;
  by_state[MU_COUNT_CANCELLED] = job->cancelled;
  by_state[MU_COUNT_UNREACHABLE] = job->unreachable;
  by_state[MU_COUNT_SKIPPED] = job->skipped;
  mu_job_counts_fill(ret_counts, (uint32_t)job->n_hosts, by_state);
}

typedef struct view_block {
  Muster__V1__Job job;
  Muster__V1__JobCounts counts;
  Muster__V1__TaskRun *runs;
  Muster__V1__TaskRun **run_ptrs;
  Muster__V1__TaskRun__OutputParamsEntry *params;
  Muster__V1__TaskRun__OutputParamsEntry **param_ptrs;
  char *tails;
  char **unreachable;
  Muster__V1__StageStatus *stages; /* a job with stages */
  Muster__V1__StageStatus **stage_ptrs;
  Muster__V1__JobCounts *stage_counts;
  char *stage_ids; /* MU_VIEW_STAGE_ID bytes per stage: "<job>.<stage>" */
  char parent[128];
} view_block;

#define MU_VIEW_STAGE_ID 200

/* A job with stages: its stages' states (counts zero until the scheduler fills them). */
static int view_stages(view_block *b, const mu_job *job) {
  size_t n = job->spec->n_stages;
  b->stages = calloc(n, sizeof *b->stages);
  b->stage_ptrs = calloc(n, sizeof *b->stage_ptrs);
  b->stage_counts = calloc(n, sizeof *b->stage_counts);
  b->stage_ids = calloc(n, MU_VIEW_STAGE_ID);
  if (!b->stages || !b->stage_ptrs || !b->stage_counts || !b->stage_ids) return -1;
  for (size_t k = 0; k < n; k++) {
    Muster__V1__StageStatus *st = &b->stages[k];
    muster__v1__stage_status__init(st);
    muster__v1__job_counts__init(&b->stage_counts[k]);
    const mu_stage_run *r = &job->stage_runs[k];
    st->name = job->spec->stages[k]->name;
    st->state = (char *)mu_stage_state_name(r->state);
    st->message = r->message ? r->message : "";
    char *id = b->stage_ids + k * MU_VIEW_STAGE_ID;
    if (r->state != MU_STAGE_PENDING && r->state != MU_STAGE_SKIPPED &&
        mu_stage_job_id(job->id, st->name, id, MU_VIEW_STAGE_ID) == 0)
      st->job_id = id;
    st->counts = &b->stage_counts[k];
    b->stage_ptrs[k] = st;
  }
  b->job.n_stages = n;
  b->job.stages = b->stage_ptrs;
  return 0;
}

#define MU_VIEW_TAIL 2048

Muster__V1__Job *mu_job_view(const mu_job *job, int with_tasks) {
  view_block *b = calloc(1, sizeof *b);
  if (b == NULL) return NULL;
  Muster__V1__Job *v = &b->job;
  muster__v1__job__init(v);
  v->id = job->id;
  v->spec = job->spec;
  v->state = job->state;
  if (job->waiting_for != NULL && !mu_job_finished(job)) v->waiting_for = job->waiting_for;
  v->created_at_ms = job->created_at_ms;
  v->finished_at_ms = job->finished_at_ms;
  v->targets = (uint32_t)job->n_hosts;
  mu_job_counts_of(job, &b->counts);
  v->counts = &b->counts;
  v->pending = b->counts.pending;
  v->running = b->counts.running;
  v->succeeded = b->counts.succeeded;
  v->failed = b->counts.failed;
  b->unreachable = calloc(job->n_hosts + 1, sizeof *b->unreachable);
  for (size_t i = 0; b->unreachable && i < job->n_hosts; i++)
    if (job->hosts[i].state == MU_HOST_UNREACHABLE || job->hosts[i].state == MU_HOST_SKIPPED)
      b->unreachable[v->n_unreachable++] = /* an "any" host never placed has no agent */
          job->hosts[i].agent_id ? job->hosts[i].agent_id : "(any: no matching agent)";
  v->unreachable = b->unreachable;
  if (job->stage_runs != NULL && view_stages(b, job) != 0) {
    mu_job_view_free(v);
    return NULL;
  }
  size_t plen = mu_stage_parent_len(job->id);
  if (plen > 0 && plen < sizeof b->parent) {
    memcpy(b->parent, job->id, plen);
    v->parent_job = b->parent;
    v->stage = job->id + plen + 1;
  }
  if (!with_tasks) return v;
  size_t n_runs = job->n_hosts * job->spec->n_tasks, n_params = 0;
  for (size_t i = 0; i < job->n_hosts; i++)
    for (size_t t = 0; t < job->spec->n_tasks; t++) n_params += job->hosts[i].tasks[t].n_params;
  b->runs = calloc(n_runs + 1, sizeof *b->runs);
  b->run_ptrs = calloc(n_runs + 1, sizeof *b->run_ptrs);
  b->params = calloc(n_params + 1, sizeof *b->params);
  b->param_ptrs = calloc(n_params + 1, sizeof *b->param_ptrs);
  b->tails = calloc(n_runs + 1, MU_VIEW_TAIL);
  if (!b->runs || !b->run_ptrs || !b->params || !b->param_ptrs || !b->tails) {
    mu_job_view_free(v);
    return NULL;
  }
  size_t r = 0, p = 0;
  for (size_t i = 0; i < job->n_hosts; i++)
    for (size_t t = 0; t < job->spec->n_tasks; t++) {
      mu_task_run_view(job, &job->hosts[i], t, &b->runs[r], &b->params[p], &b->param_ptrs[p],
                       b->tails + r * MU_VIEW_TAIL, MU_VIEW_TAIL);
      p += job->hosts[i].tasks[t].n_params;
      b->run_ptrs[r] = &b->runs[r];
      r++;
    }
  v->n_tasks = n_runs;
  v->tasks = b->run_ptrs;
  return v;
}

void mu_job_view_free(Muster__V1__Job *view) {
  view_block *b = (view_block *)view;
  if (b == NULL) return;
  free(b->runs);
  free(b->run_ptrs);
  free(b->params);
  free(b->param_ptrs);
  free(b->tails);
  free(b->unreachable);
  free(b->stages);
  free(b->stage_ptrs);
  free(b->stage_counts);
  free(b->stage_ids);
  free(b);
}

void mu_job_add_watcher(mu_job *job, mu_watcher *w) {
  w->job = job;
  w->next = job->watchers;
  job->watchers = w;
}

void mu_watcher_unlink(mu_watcher *w) {
  if (w->job == NULL) return;
  for (mu_watcher **pp = &w->job->watchers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  w->job = NULL;
  w->next = NULL;
}

void mu_job_publish(mu_job *job, const Muster__V1__JobEvent *ev, const char *task_id, size_t max_history_bytes) {
  size_t len = muster__v1__job_event__get_packed_size(ev);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return;
  muster__v1__job_event__pack(ev, buf);
  int is_output = ev->output != NULL;
  /* Output is dropped from the history first once the bound is hit; state changes are small
   * and always kept so a late watcher sees every result. */
  if (is_output && job->history_bytes + len > max_history_bytes) {
    job->history_dropped += len;
  } else {
    if (job->n_history == job->cap_history) {
      size_t cap = job->cap_history ? job->cap_history * 2 : 64;
      uint8_t **h = realloc(job->history, cap * sizeof *h);
      size_t *hl = h ? realloc(job->history_len, cap * sizeof *hl) : NULL;
      if (h) job->history = h;
      if (hl) job->history_len = hl;
      if (h && hl) job->cap_history = cap;
    }
    if (job->n_history < job->cap_history) {
      job->history[job->n_history] = malloc(len ? len : 1);
      if (job->history[job->n_history] != NULL) {
        memcpy(job->history[job->n_history], buf, len);
        job->history_len[job->n_history++] = len;
        job->history_bytes += len;
      }
    }
  }
  /* TaskLogs followers get LogChunk messages for their task's output only. */
  uint8_t *chunk = NULL;
  size_t chunk_len = 0;
  if (is_output && task_id != NULL) {
    Muster__V1__LogChunk lc = MUSTER__V1__LOG_CHUNK__INIT;
    lc.task_id = (char *)task_id;
    lc.output = ev->output;
    chunk_len = muster__v1__log_chunk__get_packed_size(&lc);
    chunk = malloc(chunk_len ? chunk_len : 1);
    if (chunk != NULL) muster__v1__log_chunk__pack(&lc, chunk);
  }
  for (mu_watcher *w = job->watchers; w != NULL;) {
    mu_watcher *next = w->next;
    int rc = 0;
    if (w->on_event != NULL) {
      if (w->on_event(w, buf, len) != 0) {
        mu_watcher_unlink(w);
        if (w->on_end != NULL) w->on_end(w, MU_RPC_RESOURCE_EXHAUSTED, "watcher cut off");
      }
      w = next;
      continue;
    }
    if (w->task_id == NULL) rc = mu_rpc_call_send(w->call, buf, len, NULL);
    else if (chunk != NULL && (w->task_id[0] == '\0' || mu_task_id_matches(job, task_id, w->task_id)))
      rc = mu_rpc_call_send(w->call, chunk, chunk_len, NULL);
    if (rc != 0) {
      /* A watcher too slow to keep up is ended rather than buffered without bound. */
      mu_rpc_call_finish(w->call, MU_RPC_RESOURCE_EXHAUSTED, "watcher too slow: send queue full; watch again to resume",
                         NULL);
      mu_watcher_unlink(w);
    }
    w = next;
  }
  free(chunk);
  free(buf);
}

void mu_job_close_watchers(mu_job *job, int code, const char *message) {
  while (job->watchers != NULL) {
    mu_watcher *w = job->watchers;
    mu_watcher_unlink(w);
    if (w->call == NULL) {
      if (w->on_end != NULL) w->on_end(w, code, message);
      continue;
    }
    mu_rpc_call_finish(w->call, code, message, NULL);
  }
}
