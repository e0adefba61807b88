/* The run history (run_history.h): records in memory, judging a run that ended against its
 * task name's records (lib/anomaly), the etcd writes through the persist flush, the records
 * read back, and ListRunHistory. */
#include "controlplane/run_history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/meters.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"
#include "lib/anomaly/anomaly.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/jobcounts/jobcounts.h"
#include "lib/jobcounts/reason.h"
#include "lib/rpc/pb.h"

static void item_free(mu_run_record *r) {
  free(r->rel_key);
  if (r->run != NULL) protobuf_c_message_free_unpacked(&r->run->base, NULL);
  memset(r, 0, sizeof *r);
}

void mu_run_history_reset(mu_run_history *c) {
  for (size_t i = 0; i < c->n; i++) item_free(&c->items[i]);
  free(c->items);
  mu_key_queue_free(&c->deleted);
  mu_run_history keep = *c;
  memset(c, 0, sizeof *c);
  c->keep = keep.keep;
  c->max = keep.max;
  c->recorded = keep.recorded;
  c->trimmed = keep.trimmed;
  c->flagged = keep.flagged;
  c->loading = 1;
}

static size_t find_key(const mu_run_history *c, const char *rel_key) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->items[i].rel_key, rel_key) == 0) return i;
  return (size_t)-1;
}

/* Frees item i (its slot is left for the caller to fill), queueing its key's delete when this
 * member writes. */
static void forget(mu_run_history *c, size_t i, int queue_delete) {
  if (queue_delete) {
    mu_key_queue_push(&c->deleted, c->items[i].rel_key);
    c->items[i].rel_key = NULL;
  }
  item_free(&c->items[i]);
  c->trimmed++;
}

static void remove_at(mu_run_history *c, size_t i, int queue_delete) {
  forget(c, i, queue_delete);
  c->items[i] = c->items[--c->n];
}

/* The record of rel_key finished at at_ms: the time compared first, a string only on a match. */
static size_t find_run(const mu_run_history *c, int64_t at_ms, const char *rel_key) {
  for (size_t i = 0; i < c->n; i++)
    if (c->items[i].run->finished_at_ms == at_ms && strcmp(c->items[i].rel_key, rel_key) == 0) return i;
  return (size_t)-1;
}

static int older(const mu_run_record *a, const mu_run_record *b) {
  if (a->run->finished_at_ms != b->run->finished_at_ms) return a->run->finished_at_ms < b->run->finished_at_ms;
  return strcmp(a->rel_key, b->rel_key) < 0;
}

/* Keeps the newest `keep` of name, then the newest `max` in all. */
static void trim(mu_run_history *c, const char *name, int queue_delete) {
  uint32_t keep = c->keep ? c->keep : MU_RUN_HISTORY_KEEP_DEFAULT;
  uint32_t max = c->max ? c->max : MU_RUN_HISTORY_MAX_DEFAULT;
  for (;;) {
    size_t count = 0, oldest = (size_t)-1;
    for (size_t i = 0; i < c->n; i++) {
      if (strcmp(c->items[i].run->task_name, name) != 0) continue;
      count++;
      if (oldest == (size_t)-1 || older(&c->items[i], &c->items[oldest])) oldest = i;
    }
    if (count <= keep) break;
    remove_at(c, oldest, queue_delete);
  }
  while (c->n > max) {
    size_t oldest = 0;
    for (size_t i = 1; i < c->n; i++)
      if (older(&c->items[i], &c->items[oldest])) oldest = i;
    remove_at(c, oldest, queue_delete);
  }
}

/* An owned copy of run (packed and unpacked: one allocation tree, freed as one). */
static Muster__V1__RunHistoryEntry *copy_run(const Muster__V1__RunHistoryEntry *run) {
  size_t len = protobuf_c_message_get_packed_size(&run->base);
  uint8_t *buf = malloc(len + 1);
  if (buf == NULL) return NULL;
  protobuf_c_message_pack(&run->base, buf);
  Muster__V1__RunHistoryEntry *out = muster__v1__run_history_entry__unpack(NULL, len, buf);
  free(buf);
  return out;
}

static unsigned flags_of(const Muster__V1__RunHistoryEntry *run) {
  unsigned f = 0;
  for (size_t i = 0; i < run->n_anomalies; i++) f |= mu_anomaly_flag_of(run->anomalies[i]);
  return f;
}

int mu_run_history_add(mu_run_history *c, const char *rel_key, const Muster__V1__RunHistoryEntry *run, int dirty,
                       int queue_delete) {
  size_t at = c->loading ? (size_t)-1 : find_run(c, run->finished_at_ms, rel_key);
  if (at != (size_t)-1) {
    item_free(&c->items[at]);
    c->items[at] = c->items[--c->n];
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    mu_run_record *grown = realloc(c->items, cap * sizeof *grown);
    if (grown == NULL) return MU_ENOMEM;
    c->items = grown;
    c->cap = cap;
  }
  mu_run_record *r = &c->items[c->n];
  memset(r, 0, sizeof *r);
  r->rel_key = strdup(rel_key);
  r->run = copy_run(run);
  if (r->rel_key == NULL || r->run == NULL) {
    item_free(r);
    return MU_ENOMEM;
  }
  r->flags = flags_of(run);
  r->dirty = dirty;
  c->n++;
  if (!c->loading) trim(c, run->task_name, queue_delete);
  return 0;
}

static int by_name_then_age(const void *a, const void *b) {
  const mu_run_record *x = a, *y = b;
  int k = strcmp(x->run->task_name, y->run->task_name);
  return k != 0 ? k : older(x, y) ? -1 : older(y, x);
}

static int by_age(const void *a, const void *b) {
  const mu_run_record *x = a, *y = b;
  return older(x, y) ? -1 : older(y, x);
}

/* Drops the first `drop` items (sorted as wanted), keeping the order of the rest. */
static void drop_first(mu_run_history *c, size_t from, size_t drop, int queue_delete) {
  if (drop == 0) return;
  for (size_t i = from; i < from + drop; i++) forget(c, i, queue_delete);
  memmove(c->items + from, c->items + from + drop, (c->n - from - drop) * sizeof *c->items);
  c->n -= drop;
}

void mu_run_history_trim_all(mu_run_history *c, int queue_delete) {
  uint32_t keep = c->keep ? c->keep : MU_RUN_HISTORY_KEEP_DEFAULT;
  uint32_t max = c->max ? c->max : MU_RUN_HISTORY_MAX_DEFAULT;
  if (c->n == 0) return;
  qsort(c->items, c->n, sizeof *c->items, by_name_then_age);
  for (size_t i = 0; i < c->n;) { /* each task name's run of items: its oldest go */
    size_t j = i;
    while (j < c->n && strcmp(c->items[j].run->task_name, c->items[i].run->task_name) == 0) j++;
    size_t drop = j - i > keep ? j - i - keep : 0;
    drop_first(c, i, drop, queue_delete);
    i = j - drop;
  }
  if (c->n > max) {
    qsort(c->items, c->n, sizeof *c->items, by_age);
    drop_first(c, 0, c->n - max, queue_delete);
  }
}

static void ms_text(double ms, char *buf, size_t size) { mu_duration_format((int64_t)(ms + 0.5), buf, size); }

/* Whether a run's duration says how long the work takes: it ran to its end (succeeded, or
 * failed by itself). A timed-out, cancelled or lost run is reported as such; its duration is
 * neither judged SLOW nor counted in the durations others are judged against. */
static bool ran_to_end(Muster__V1__TaskState st) {
  return st == MUSTER__V1__TASK_STATE__SUCCEEDED || st == MUSTER__V1__TASK_STATE__FAILED;
}

unsigned mu_run_history_judge(const mu_run_history *c, const Muster__V1__RunHistoryEntry *run, char *detail,
                              size_t detail_size) {
  size_t m = 0;
  for (size_t i = 0; i < c->n; i++) m += strcmp(c->items[i].run->task_name, run->task_name) == 0;
  double *buf = malloc((4 * m + 4) * sizeof *buf);
  mu_anomaly_history h = {0};
  if (buf != NULL) {
    h.dur = buf;
    h.mem = buf + m + 1;
    h.host_dur = buf + 2 * (m + 1);
    for (size_t i = 0; i < c->n; i++) {
      const Muster__V1__RunHistoryEntry *e = c->items[i].run;
      if (strcmp(e->task_name, run->task_name) != 0) continue;
      if (e->peak_memory_bytes > 0) h.mem[h.n_mem++] = (double)e->peak_memory_bytes;
      if (!ran_to_end(e->state)) continue;
      h.dur[h.n_dur++] = (double)e->duration_ms;
      if (strcmp(e->agent_id, run->agent_id) == 0) h.host_dur[h.n_host_dur++] = (double)e->duration_ms;
    }
  }
  size_t n_runs = h.n_dur;
  mu_anomaly_run a = {run->duration_ms, run->peak_memory_bytes, run->memory_limit_bytes, run->output_dropped_bytes};
  double *scratch = buf != NULL ? buf + 3 * (m + 1) : NULL;
  unsigned flags = mu_anomaly_flags(&a, buf != NULL ? &h : NULL, scratch);
  if (!ran_to_end(run->state)) flags &= ~(unsigned)(MU_ANOMALY_SLOW | MU_ANOMALY_SLOW_HOST);
  if (detail != NULL && detail_size > 0) {
    char took[32], lim[32];
    detail[0] = '\0';
    size_t o = 0;
    if (flags & (MU_ANOMALY_SLOW | MU_ANOMALY_SLOW_HOST)) {
      /* h.dur is sorted now: recompute the threshold for the message */
      double t = mu_anomaly_threshold(h.dur, h.n_dur, scratch, 10.0);
      ms_text((double)run->duration_ms, took, sizeof took);
      ms_text(t, lim, sizeof lim);
      o += (size_t)snprintf(detail + o, o < detail_size ? detail_size - o : 0,
                            "took %s, over %s (median + 4 MAD of %zu earlier runs)%s", took, lim, n_runs,
                            flags & MU_ANOMALY_SLOW_HOST ? "; host slow for this task" : "");
    }
    if (flags & (MU_ANOMALY_NEAR_OOM | MU_ANOMALY_MEM_HIGH))
      o += (size_t)snprintf(detail + o, o < detail_size ? detail_size - o : 0, "%speak memory %lld bytes (limit %llu)",
                            o ? "; " : "", (long long)run->peak_memory_bytes,
                            (unsigned long long)run->memory_limit_bytes);
    if (flags & MU_ANOMALY_TRUNCATED)
      snprintf(detail + o, o < detail_size ? detail_size - o : 0, "%s%lld output bytes dropped", o ? "; " : "",
               (long long)run->output_dropped_bytes);
  }
  free(buf);
  return flags;
}

/* The run's record as the history keeps it (strings borrowed from job). */
static void entry_of(const mu_job *job, const mu_host_run *h, size_t idx, Muster__V1__RunHistoryEntry *e) {
  const mu_task_run *tr = &h->tasks[idx];
  const Muster__V1__TaskSpec *spec = job->spec->tasks[idx];
  const Muster__V1__TaskMetrics *m = tr->has_metrics ? &tr->metrics : NULL;
  muster__v1__run_history_entry__init(e);
  e->task_name = spec->name;
  e->job_id = job->id;
  e->task_id = tr->task_id;
  e->agent_id = h->agent_id != NULL ? h->agent_id : "";
  e->attempt = tr->attempt;
  e->state = tr->state;
  e->exit_code = tr->exit_code;
  e->finished_at_ms = tr->finished_at_ms;
  e->duration_ms = tr->finished_at_ms - tr->started_at_ms;
  e->cpu_ms = m && m->user_cpu_ms >= 0 && m->sys_cpu_ms >= 0 ? m->user_cpu_ms + m->sys_cpu_ms : -1;
  e->peak_memory_bytes = !m ? -1 : m->cgroup_memory_peak_bytes > 0 ? m->cgroup_memory_peak_bytes : m->max_rss_bytes;
  e->output_bytes = m ? m->output_bytes : 0;
  e->output_dropped_bytes = m ? m->output_dropped_bytes : 0;
  if (spec->resources != NULL && spec->resources->memory != NULL && spec->resources->memory[0])
    mu_size_parse(spec->resources->memory, &e->memory_limit_bytes, NULL);
  mu_run_end end = {
      .state = tr->state,
      .exit_code = tr->exit_code,
      .signal = tr->signal,
      .message = tr->message,
      .memory_peak_bytes = m && m->cgroup_memory_peak_bytes > 0 ? (uint64_t)m->cgroup_memory_peak_bytes : 0,
      .memory_limit_bytes = e->memory_limit_bytes};
  e->reason = (char *)mu_run_reason(&end);
}

/* Sets the run's flag names (static strings) for its attempt. */
static void set_flags(mu_task_run *tr, unsigned flags) {
  tr->history_attempt = tr->attempt;
  tr->n_anomalies = 0;
  for (int i = 0; i < MU_ANOMALY_N_FLAGS && i < 8; i++)
    if (flags & (1u << i)) tr->anomalies[tr->n_anomalies++] = (char *)mu_anomaly_flag_name(i);
}

void mu_run_history_on_task(mu_daemon *d, mu_job *job, mu_host_run *h, size_t idx) {
  mu_run_history *c = d->run_history;
  mu_task_run *tr = &h->tasks[idx];
  if (c == NULL || tr->attempt == 0 || tr->history_attempt == tr->attempt ||
      tr->state < MUSTER__V1__TASK_STATE__SUCCEEDED || !mu_cluster_leading(d))
    return;
  if (tr->started_at_ms <= 0 || tr->finished_at_ms < tr->started_at_ms) {
    tr->history_attempt = tr->attempt; /* never ran: nothing to measure */
    tr->n_anomalies = 0;
    return;
  }
  Muster__V1__RunHistoryEntry e;
  entry_of(job, h, idx, &e);
  char rel[1024];
  snprintf(rel, sizeof rel, "runhistory/%s/%013lld-%s-%zu-%u", e.task_name, (long long)e.finished_at_ms, job->id,
           (size_t)(h - job->hosts), tr->attempt);
  if (find_key(c, rel) != (size_t)-1) { /* recorded by an earlier leader: take its flags */
    set_flags(tr, c->items[find_key(c, rel)].flags);
    return;
  }
  char detail[512];
  unsigned flags = mu_run_history_judge(c, &e, detail, sizeof detail);
  set_flags(tr, flags);
  e.n_anomalies = tr->n_anomalies;
  e.anomalies = tr->anomalies;
  int durable = d->cluster->role != MU_ROLE_SINGLE;
  if (mu_run_history_add(c, rel, &e, durable, durable) != 0) {
    mu_warn("run_history", "task %s attempt %u: not recorded: out of memory", tr->task_id, tr->attempt);
  } else {
    c->recorded++;
  }
  if (flags == 0) return;
  c->flagged++;
  char names[64];
  mu_anomaly_flag_names(flags, names, sizeof names);
  mu_info("run_history", "task %s attempt %u flagged %s: %s", tr->task_id, tr->attempt, names, detail);
  mu_meters_anomalies(d->meters, job, idx, flags);
  Muster__V1__RunAnomaly an = MUSTER__V1__RUN_ANOMALY__INIT;
  an.task_id = tr->task_id;
  an.task_name = e.task_name;
  an.agent_id = e.agent_id;
  an.attempt = tr->attempt;
  an.n_flags = tr->n_anomalies;
  an.flags = tr->anomalies;
  an.detail = detail;
  Muster__V1__JobEvent ev = MUSTER__V1__JOB_EVENT__INIT;
  ev.job_id = job->id;
  ev.at_ms = mu_now_ms();
  ev.anomaly = &an;
  mu_job_publish(job, &ev, NULL, d->sched->cfg.history_bytes);
}

int mu_run_history_add_ops(mu_daemon *d, mu_store_batch *b, mu_err *err) {
  mu_run_history *c = d->run_history;
  if (c == NULL) return 0;
  char key[1400];
  for (size_t i = 0; i < c->n; i++) {
    mu_run_record *r = &c->items[i];
    if (!r->dirty) continue;
    Muster__V1__RunHistoryRecord rec = MUSTER__V1__RUN_HISTORY_RECORD__INIT;
    rec.v = MU_RECORD_VERSION;
    rec.run = r->run;
    char *text = NULL;
    int rc = mu_record_encode(&rec.base, &text, err);
    if (rc != 0) return rc;
    snprintf(key, sizeof key, "%s%s", d->cfg.etcd_prefix, r->rel_key);
    rc = mu_store_batch_put(b, key, text, 0, err);
    free(text);
    if (rc != 0) return rc;
    r->dirty = 0;
  }
  return mu_store_batch_delete_queued(b, d->cfg.etcd_prefix, &c->deleted, err);
}

void mu_run_history_write_failed(mu_daemon *d) {
  mu_run_history *c = d->run_history;
  if (c == NULL) return;
  for (size_t i = 0; i < c->n; i++) c->items[i].dirty = 1; /* rare; puts are idempotent */
}

void mu_run_history_apply(mu_daemon *d, const char *rel, const char *value, size_t len) {
  mu_run_history *c = d->run_history;
  if (c == NULL) return;
  char rel_key[1024];
  snprintf(rel_key, sizeof rel_key, "runhistory/%s", rel);
  if (value == NULL) {
    size_t at = find_key(c, rel_key);
    if (at != (size_t)-1) {
      item_free(&c->items[at]);
      c->items[at] = c->items[--c->n];
    }
    return;
  }
  ProtobufCMessage *msg = NULL;
  mu_err err = {0};
  if (mu_record_decode(&muster__v1__run_history_record__descriptor, value, len, &msg, &err) != 0) {
    mu_warn("run_history", "%s%s: %s; skipped", d->cfg.etcd_prefix, rel_key, err.msg);
    return;
  }
  const Muster__V1__RunHistoryRecord *r = (const Muster__V1__RunHistoryRecord *)msg;
  if (r->run == NULL || r->run->task_name == NULL || r->run->task_name[0] == '\0')
    mu_warn("run_history", "%s%s: no run or task_name; skipped", d->cfg.etcd_prefix, rel_key);
  else if (mu_run_history_add(c, rel_key, r->run, 0, d->cluster->role == MU_ROLE_LEADER) != 0)
    mu_warn("run_history", "%s%s: out of memory; skipped", d->cfg.etcd_prefix, rel_key);
  protobuf_c_message_free_unpacked(msg, NULL);
}

void mu_run_history_settle(mu_daemon *d) {
  mu_run_history *c = d->run_history;
  if (c == NULL || d->sched == NULL) return;
  c->loading = 0;
  mu_run_history_trim_all(c, d->cluster->role == MU_ROLE_LEADER);
  for (size_t i = 0; i < c->n; i++) {
    const mu_run_record *r = &c->items[i];
    mu_job *job = mu_sched_find(d->sched, r->run->job_id);
    mu_host_run *h = NULL;
    mu_task_run *tr = job != NULL ? mu_job_task(job, r->run->task_id, &h) : NULL;
    if (tr != NULL && tr->attempt == r->run->attempt) set_flags(tr, r->flags);
  }
}

static int oldest_first(const void *a, const void *b) {
  const Muster__V1__RunHistoryEntry *x = *(Muster__V1__RunHistoryEntry *const *)a;
  const Muster__V1__RunHistoryEntry *y = *(Muster__V1__RunHistoryEntry *const *)b;
  return x->finished_at_ms < y->finished_at_ms ? -1 : x->finished_at_ms > y->finished_at_ms;
}

int mu_run_history_list(const mu_run_history *c, const char *task_name, const char *job_id,
                        Muster__V1__RunHistoryEntry ***ret, size_t *ret_n, mu_err *err) {
  Muster__V1__RunHistoryEntry **out = calloc(c->n + 1, sizeof *out);
  if (out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++) {
    const Muster__V1__RunHistoryEntry *e = c->items[i].run;
    if (strcmp(e->task_name, task_name) != 0) continue;
    if (job_id != NULL && job_id[0] != '\0' && strcmp(e->job_id, job_id) != 0) continue;
    out[n++] = c->items[i].run;
  }
  qsort(out, n, sizeof *out, oldest_first);
  *ret = out;
  *ret_n = n;
  return 0;
}

static void list_run_history(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListRunHistoryRequest *req = (const Muster__V1__ListRunHistoryRequest *)req_msg;
  (void)md;
  if (req->task_name == NULL || req->task_name[0] == '\0') {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "task_name is required");
    return;
  }
  Muster__V1__ListRunHistoryResponse resp = MUSTER__V1__LIST_RUN_HISTORY_RESPONSE__INIT;
  mu_err err = {0};
  if (mu_run_history_list(d->run_history, req->task_name, req->job_id, &resp.runs, &resp.n_runs, &err) != 0) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "%s", err.msg);
    return;
  }
  mu_pb_reply(call, &resp.base);
  free(resp.runs);
}

int mu_run_history_register(mu_daemon *d, mu_err *err) {
  return mu_pb_add_unary(d->server, "/muster.v1.Admin/ListRunHistory",
                         &muster__v1__list_run_history_request__descriptor, list_run_history, d, err);
}
