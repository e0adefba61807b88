/* musterd's records in etcd (persist.h): agents/<id> (presence/<id> is presence.c's, in the
 * same flush), jobs/<id> (spec, state, rollout, targets), jobs/<id>/ready (written last),
 * tasks/<job>/<host>.<task> (one task run with its host's progress). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controlplane/persist.h"

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/presence.h"
#include "controlplane/records.h"
#include "controlplane/run_history.h"
#include "controlplane/savepoints.h"
#include "controlplane/scheduler.h"
#include "controlplane/secrets.h"
#include "controlplane/tokens.h"
#include "lib/base/assert.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/pbjson/pbjson.h"
#include "lib/rpc/pb.h"

#define MU_PERSIST_FLUSH_MS 20       /* coalescing window */
#define MU_PERSIST_RETRY_MS 500      /* after a failed write */
#define MU_PERSIST_TAIL_BYTES 4096   /* output tail kept in a final task record */
#define MU_PERSIST_MAX_DELETES 10000 /* job deletions queued */

static int etcd_mode(const mu_daemon *d) { return d->cluster->role != MU_ROLE_SINGLE; }

static void key_of(const mu_daemon *d, char *buf, size_t size, const char *fmt, const char *a, size_t h, size_t t) {
  char rel[600];
  snprintf(rel, sizeof rel, fmt, a, h, t);
  snprintf(buf, size, "%s%s", d->cfg.etcd_prefix, rel);
}

/* --- marking --- */

void mu_persist_task(mu_daemon *d, mu_job *job, mu_host_run *h, size_t idx) {
  if (!etcd_mode(d)) return;
  if (!h->tasks[idx].dirty) {
    h->tasks[idx].dirty = 1;
    job->n_dirty_tasks++;
  }
  mu_persist_kick(d);
}

void mu_persist_job(mu_daemon *d, mu_job *job) {
  if (!etcd_mode(d)) return;
  job->dirty = 1;
  mu_persist_kick(d);
}

void mu_persist_agent(mu_daemon *d, mu_agent *a) {
  if (!etcd_mode(d)) return;
  a->persist_dirty = 1;
  a->presence_dirty = 1;
  mu_persist_kick(d);
}

void mu_persist_forget_job(mu_daemon *d, const char *job_id) {
  mu_persist *ha = d->persist;
  if (!etcd_mode(d) || ha->n_deleted >= MU_PERSIST_MAX_DELETES) return;
  if (ha->n_deleted == ha->cap_deleted) {
    size_t cap = ha->cap_deleted ? ha->cap_deleted * 2 : 16;
    char **grown = realloc(ha->deleted_jobs, cap * sizeof *grown);
    if (grown == NULL) return;
    ha->deleted_jobs = grown;
    ha->cap_deleted = cap;
  }
  ha->deleted_jobs[ha->n_deleted] = strdup(job_id);
  if (ha->deleted_jobs[ha->n_deleted] != NULL) ha->n_deleted++;
  mu_persist_kick(d);
}

/* --- encoding --- */

static char *job_json(const mu_job *job) {
  Muster__V1__JobRecord rec = MUSTER__V1__JOB_RECORD__INIT;
  Muster__V1__RolloutLimits ro = MUSTER__V1__ROLLOUT_LIMITS__INIT;
  char **hosts = calloc(job->n_hosts + 1, sizeof *hosts);
  if (hosts == NULL) return NULL;
  for (size_t i = 0; i < job->n_hosts; i++)
    hosts[i] = job->hosts[i].agent_id ? job->hosts[i].agent_id : ""; /* "": not placed */
  const mu_rollout *r = &job->rollout;
  ro.max_concurrency = r->max_concurrency;
  ro.max_concurrency_pct = r->max_concurrency_pct;
  ro.max_errors = r->max_errors;
  ro.max_errors_pct = r->max_errors_pct;
  ro.batch = r->batch;
  ro.disconnected_wait_ms = r->disconnected_wait_ms;
  ro.skip_unreachable = r->skip_unreachable != 0;
  rec.v = MU_RECORD_VERSION;
  rec.id = job->id;
  rec.spec = job->spec;
  rec.state = job->state;
  rec.created_at_ms = job->created_at_ms;
  rec.finished_at_ms = job->finished_at_ms;
  rec.user_cancelled = job->user_cancelled != 0;
  rec.held = job->held_by_user != 0;
  rec.end_reason = job->end_reason ? job->end_reason : "";
  rec.rollout = &ro;
  rec.concurrency = job->concurrency;
  rec.error_budget = job->error_budget;
  rec.n_hosts = job->n_hosts;
  rec.hosts = hosts;
  char *text = NULL;
  mu_record_encode(&rec.base, &text, NULL);
  free(hosts);
  return text;
}

/* 1 when the n bytes at s are valid UTF-8 (what a JSON string may hold). */
static int utf8_ok(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  json_decref(j);
  return j != NULL;
}

static char *task_json(const mu_job *job, const mu_host_run *h, size_t idx) {
  const mu_task_run *tr = &h->tasks[idx];
  Muster__V1__TaskRecord rec = MUSTER__V1__TASK_RECORD__INIT;
  Muster__V1__TaskRecord__ParamsEntry *entries = calloc(tr->n_params + 1, sizeof *entries);
  Muster__V1__TaskRecord__ParamsEntry **ptrs = calloc(tr->n_params + 1, sizeof *ptrs);
  char tail[MU_PERSIST_TAIL_BYTES + 1];
  char *text = NULL;
  (void)job;
  if (entries == NULL || ptrs == NULL) goto out;
  for (size_t p = 0; p < tr->n_params; p++) {
    muster__v1__task_record__params_entry__init(&entries[p]);
    entries[p].key = tr->params[p].key;
    entries[p].value = tr->params[p].value;
    ptrs[p] = &entries[p];
  }
  rec.v = MU_RECORD_VERSION;
  rec.task_id = tr->task_id;
  rec.attempt = tr->attempt;
  rec.state = tr->state;
  rec.exit_code = tr->exit_code;
  rec.signal = tr->signal;
  rec.message = tr->message ? tr->message : "";
  rec.started_at_ms = tr->started_at_ms;
  rec.finished_at_ms = tr->finished_at_ms;
  rec.retry = tr->retry_at_mono > 0;
  rec.n_params = tr->n_params;
  rec.params = ptrs;
  rec.host_state = (int32_t)h->state;
  rec.current = (uint32_t)h->current;
  rec.batch = (uint32_t)h->batch;
  rec.agent_id = h->agent_id ? h->agent_id : "";
  Muster__V1__TaskMetrics metrics;
  if (tr->has_metrics) {
    metrics = tr->metrics;
    metrics.base.descriptor = &muster__v1__task_metrics__descriptor;
    rec.metrics = &metrics;
  }
  if (tr->state >= MUSTER__V1__TASK_STATE__SUCCEEDED && tr->tail.len > 0) {
    size_t n = mu_tail_copy(&tr->tail, tail, sizeof tail);
    tail[n < sizeof tail ? n : sizeof tail - 1] = '\0';
    if (n < sizeof tail && utf8_ok(tail, n) && memchr(tail, '\0', n) == NULL)
      rec.tail = tail; /* else skipped, as a JSON string could not hold it */
  }
  mu_record_encode(&rec.base, &text, NULL);
out:
  free(entries);
  free(ptrs);
  return text;
}

static char *agent_json(const mu_agent *a) {
  if (a->hello_msg == NULL) return NULL;
  Muster__V1__AgentRecord rec = MUSTER__V1__AGENT_RECORD__INIT;
  rec.v = MU_RECORD_VERSION;
  rec.hello = a->hello_msg;
  rec.draining = a->draining != 0;
  rec.connected = a->session != NULL;
  rec.connected_at_ms = a->connected_at_ms;
  rec.last_seen_ms = a->last_heartbeat_ms;
  rec.peer = a->peer ? a->peer : "";
  rec.disconnect_reason = a->disconnect_reason ? a->disconnect_reason : "";
  char *text = NULL;
  mu_record_encode(&rec.base, &text, NULL);
  return text;
}

static int put_task(mu_daemon *d, mu_store_batch *b, mu_job *job, size_t h, size_t t, mu_err *err) {
  char key[700];
  char *v = task_json(job, &job->hosts[h], t);
  if (v == NULL) return mu_err_set(err, MU_ENOMEM, "encoding task %s", job->hosts[h].tasks[t].task_id);
  key_of(d, key, sizeof key, "tasks/%s/%zu.%zu", job->id, h, t);
  int rc = mu_store_batch_put(b, key, v, 0, err);
  free(v);
  return rc;
}

static int put_job(mu_daemon *d, mu_store_batch *b, mu_job *job, mu_err *err) {
  char key[700];
  char *v = job_json(job);
  if (v == NULL) return mu_err_set(err, MU_ENOMEM, "encoding job %s", job->id);
  key_of(d, key, sizeof key, "jobs/%s", job->id, 0, 0);
  int rc = mu_store_batch_put(b, key, v, 0, err);
  free(v);
  return rc;
}

void mu_persist_forget_agent(mu_daemon *d, const char *agent_id) {
  if (!etcd_mode(d) || d->cluster->role != MU_ROLE_LEADER) return;
  mu_err err = {0};
  if (mu_strlist_append(&d->persist->deleted_agents, agent_id, &err) != 0)
    mu_warn("persist", "agents/%s stays in etcd: %s", agent_id, err.msg);
  mu_persist_kick(d);
}

/* Deletes the records of forgotten agents (fc takes the list); one that is back in the
 * registry keeps them (its new records are written). */
static int add_agent_deletes(mu_daemon *d, mu_store_batch *b, mu_strlist *gone, mu_err *err) {
  *gone = d->persist->deleted_agents;
  mu_strlist_init(&d->persist->deleted_agents);
  d->persist->deleted_agents.max = gone->max;
  for (size_t i = 0; i < gone->n; i++) {
    if (mu_registry_find(&d->registry, gone->items[i]) != NULL) continue;
    char key[400];
    key_of(d, key, sizeof key, "agents/%s", gone->items[i], 0, 0);
    int rc = mu_store_batch_delete(b, key, false, err);
    key_of(d, key, sizeof key, "presence/%s", gone->items[i], 0, 0);
    if (rc == 0) rc = mu_store_batch_delete(b, key, false, err);
    if (rc != 0) return rc;
  }
  return 0;
}

/* --- flushing --- */

typedef struct flush_ctx {
  mu_daemon *d;
  uint64_t gen;
  char **job_ids; /* jobs written (re-marked whole on failure) */
  size_t n_jobs;
  char **deleted;
  size_t n_deleted;
  mu_strlist deleted_agents;
} flush_ctx;

static void flush_ctx_free(flush_ctx *fc) {
  for (size_t i = 0; i < fc->n_jobs; i++) free(fc->job_ids[i]);
  free(fc->job_ids);
  for (size_t i = 0; i < fc->n_deleted; i++) free(fc->deleted[i]);
  free(fc->deleted);
  mu_strlist_free(&fc->deleted_agents);
  free(fc);
}

static void persist_flush(mu_daemon *d);

static void on_flush_timer(uv_timer_t *t) {
  mu_daemon *d = t->data;
  d->persist->flush_armed = 0;
  persist_flush(d);
}

void mu_persist_kick(mu_daemon *d) {
  if (!etcd_mode(d) || d->persist->flush_armed || d->stopping) return;
  d->persist->flush_armed = 1;
  uv_timer_start(&d->persist->flush_timer, on_flush_timer, MU_PERSIST_FLUSH_MS, 0);
}

static void on_flushed(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  flush_ctx *fc = ud;
  mu_daemon *d = fc->d;
  (void)res;
  d->persist->flush_in_flight = 0;
  if (d->stopping || fc->gen != d->cluster->gen) { /* role changed: state is rebuilt anyway */
    flush_ctx_free(fc);
    return;
  }
  mu_cluster_note_write(d, err);
  if (err == NULL) {
    d->persist->writes++;
    for (size_t i = 0; i < d->registry.n; i++) d->registry.agents[i]->durable_seq = d->registry.agents[i]->flush_seq;
    mu_sched_kick(d->sched); /* sends the acks */
  } else {
    mu_warn("persist", "write failed: %s", err->msg);
    /* re-mark what the batch held (whole jobs: rare, and records are idempotent puts) */
    for (size_t i = 0; i < fc->n_jobs; i++) {
      mu_job *job = mu_sched_find(d->sched, fc->job_ids[i]);
      if (job == NULL) continue;
      job->dirty = 1;
      job->n_dirty_tasks = 0;
      for (size_t h = 0; h < job->n_hosts; h++)
        for (size_t t = 0; t < job->spec->n_tasks; t++) {
          job->hosts[h].tasks[t].dirty = 1;
          job->n_dirty_tasks++;
        }
    }
    for (size_t i = 0; i < fc->n_deleted; i++) {
      d->persist->flush_armed++; /* forget without arming the quick flush */
      mu_persist_forget_job(d, fc->deleted[i]);
      d->persist->flush_armed--;
    }
    for (size_t i = 0; i < fc->deleted_agents.n; i++)
      mu_strlist_append(&d->persist->deleted_agents, fc->deleted_agents.items[i], NULL);
    for (size_t i = 0; i < d->registry.n; i++) d->registry.agents[i]->persist_dirty = 1;
    mu_presence_write_failed(d, err);
    mu_savepoints_write_failed(d);
    mu_run_history_write_failed(d);
  }
  flush_ctx_free(fc);
  if (err != NULL && err->code == MU_EPERM) return; /* deposed: the election says so too */
  if (err != NULL) {
    if (!d->persist->flush_armed) {
      d->persist->flush_armed = 1;
      uv_timer_start(&d->persist->flush_timer, on_flush_timer, MU_PERSIST_RETRY_MS, 0);
    }
    return;
  }
  mu_persist_kick(d); /* whatever changed meanwhile */
}

static int add_task_changes(mu_daemon *d, mu_store_batch *b, mu_job *job, mu_err *err) {
  for (size_t h = 0; h < job->n_hosts && job->n_dirty_tasks > 0; h++)
    for (size_t t = 0; t < job->spec->n_tasks; t++) {
      mu_task_run *tr = &job->hosts[h].tasks[t];
      if (!tr->dirty) continue;
      if (put_task(d, b, job, h, t, err) != 0) return err->code;
      tr->dirty = 0;
      /* the count gates this loop: one too few and a dirty task is never written */
      MU_ASSERT(job->n_dirty_tasks > 0);
      job->n_dirty_tasks--;
    }
  return 0;
}

static void persist_flush(mu_daemon *d) {
  mu_persist *ha = d->persist;
  if (d->stopping || d->cluster->role != MU_ROLE_LEADER || !d->cluster->state_ready || ha->flush_in_flight) return;
  for (size_t i = 0; i < d->registry.n; i++) d->registry.agents[i]->flush_seq = d->registry.agents[i]->ack_seq;
  mu_store_batch *b = mu_store_batch_new(d->cluster->store);
  flush_ctx *fc = calloc(1, sizeof *fc);
  size_t n_jobs = 0;
  for (mu_job *j = d->sched->jobs; j != NULL; j = j->next) n_jobs++;
  if (b != NULL && fc != NULL) fc->job_ids = calloc(n_jobs + 1, sizeof *fc->job_ids);
  if (b == NULL || fc == NULL || fc->job_ids == NULL) {
    mu_store_batch_free(b);
    if (fc) flush_ctx_free(fc);
    return;
  }
  fc->d = d;
  fc->gen = d->cluster->gen;
  mu_err err = {0};
  int rc = 0;
  for (size_t i = 0; i < d->registry.n && rc == 0; i++) {
    mu_agent *a = d->registry.agents[i];
    if (!a->persist_dirty) continue;
    char key[400];
    char *v = agent_json(a);
    a->persist_dirty = 0;
    if (v == NULL) continue;
    key_of(d, key, sizeof key, "agents/%s", a->id, 0, 0);
    rc = mu_store_batch_put(b, key, v, 0, &err);
    free(v);
  }
  mu_store_batch_barrier(b);
  if (rc == 0) rc = mu_presence_add_ops(d, b, &err); /* after agents/<id>: followers see both */
  if (rc == 0) rc = add_agent_deletes(d, b, &fc->deleted_agents, &err);
  if (rc == 0) rc = mu_savepoints_add_ops(d, b, &err);
  if (rc == 0) rc = mu_run_history_add_ops(d, b, &err);
  fc->deleted = ha->deleted_jobs;
  fc->n_deleted = ha->n_deleted;
  ha->deleted_jobs = NULL;
  ha->n_deleted = ha->cap_deleted = 0;
  for (size_t i = 0; i < fc->n_deleted && rc == 0; i++) {
    char key[700];
    key_of(d, key, sizeof key, "jobs/%s/", fc->deleted[i], 0, 0);
    rc = mu_store_batch_delete(b, key, true, &err);
    key_of(d, key, sizeof key, "jobs/%s", fc->deleted[i], 0, 0);
    if (rc == 0) rc = mu_store_batch_delete(b, key, false, &err);
    key_of(d, key, sizeof key, "tasks/%s/", fc->deleted[i], 0, 0);
    if (rc == 0) rc = mu_store_batch_delete(b, key, true, &err);
  }
  /* every task record first (in parallel transactions), then, after a barrier, the job
   * records: a job stored as finished always has its tasks' final records stored */
  for (mu_job *j = d->sched->jobs; j != NULL && rc == 0; j = j->next) {
    if (j->submit_pending || !j->ready || (!j->dirty && j->n_dirty_tasks == 0)) continue;
    fc->job_ids[fc->n_jobs++] = strdup(j->id);
    rc = add_task_changes(d, b, j, &err);
  }
  mu_store_batch_barrier(b);
  for (size_t i = 0; i < fc->n_jobs && rc == 0; i++) {
    mu_job *j = fc->job_ids[i] ? mu_sched_find(d->sched, fc->job_ids[i]) : NULL;
    if (j == NULL || !j->dirty) continue;
    rc = put_job(d, b, j, &err);
    j->dirty = 0;
  }
  if (rc != 0) mu_warn("persist", "building a write: %s", err.msg);
  if (mu_store_batch_ops(b) == 0) {
    mu_store_batch_free(b);
    flush_ctx_free(fc);
    int newer = 0;
    for (size_t i = 0; i < d->registry.n; i++) {
      mu_agent *a = d->registry.agents[i];
      newer |= a->flush_seq > a->durable_seq;
      a->durable_seq = a->flush_seq;
    }
    if (newer) mu_sched_kick(d->sched);
    return;
  }
  size_t ops = mu_store_batch_ops(b);
  ha->flush_in_flight = 1;
  if (mu_store_batch_commit(b, on_flushed, fc, &err) != 0) {
    ha->flush_in_flight = 0;
    /* re-mark through the failure path */
    mu_store_batch_result res = {0};
    on_flushed(fc, &res, &err);
    return;
  }
  ha->write_ops += ops;
}

/* --- a submission: the job, all its tasks, then the ready marker --- */

typedef struct submit_ctx {
  mu_daemon *d;
  mu_rpc_call *call; /* answered when set; else cb runs */
  mu_persist_submit_cb cb;
  void *ud;
  char *job_id;
  uint32_t targets;
} submit_ctx;

/* The end of a submission: the call's answer, or the callback (err NULL: stored). */
static void submit_done(submit_ctx *sc, const mu_err *err) {
  mu_daemon *d = sc->d;
  if (sc->call == NULL) {
    if (sc->cb != NULL) sc->cb(sc->ud, sc->job_id, err);
  } else if (err == NULL) {
    Muster__V1__SubmitJobResponse resp = MUSTER__V1__SUBMIT_JOB_RESPONSE__INIT;
    resp.job_id = sc->job_id;
    resp.targets = sc->targets;
    mu_pb_reply(sc->call, &resp.base);
  } else if (err->code == MU_EPERM) {
    if (mu_cluster_check_write(d, sc->call) == 0) /* answers with the leader hint */
      mu_pb_fail(sc->call, MU_RPC_UNAVAILABLE, "job not stored: %s", err->msg);
  } else {
    mu_pb_fail(sc->call, MU_RPC_UNAVAILABLE, "etcd unavailable: %s (job not stored)", err->msg);
  }
}

static void on_submitted(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  submit_ctx *sc = ud;
  mu_daemon *d = sc->d;
  MU_ASSERT(d->persist->submits_in_flight > 0);
  d->persist->submits_in_flight--;
  mu_job *job = mu_sched_find(d->sched, sc->job_id);
  if (err == NULL) {
    mu_cluster_note_write(d, NULL);
    if (job != NULL) {
      job->submit_pending = 0;
      job->ready = 1;
      mu_sched_kick(d->sched);
    }
  } else {
    mu_cluster_note_write(d, err);
    mu_warn("persist", "job %s not stored: %s", sc->job_id, err->msg);
    if (job != NULL) {
      mu_sched_remove(d->sched, job);
      mu_job_free(job);
    }
    if (res != NULL && res->ops_committed > 0) mu_persist_forget_job(d, sc->job_id);
  }
  submit_done(sc, err);
  free(sc->job_id);
  free(sc);
}

static void submit_store(mu_daemon *d, mu_job *job, submit_ctx *sc) {
  mu_err err = {0};
  mu_store_batch *b = mu_store_batch_new(d->cluster->store);
  int rc = b ? 0 : mu_err_set(&err, MU_ENOMEM, "out of memory");
  if (rc == 0) rc = put_job(d, b, job, &err);
  /* A task still in the state mu_job_new gives it (PENDING, no attempt) needs no record: the
   * job record's hosts and rollout rebuild it exactly (apply_job). Only its first real change
   * is written, so a task that runs once costs about two keys, not three. */
  for (size_t h = 0; h < job->n_hosts && rc == 0; h++)
    for (size_t t = 0; t < job->spec->n_tasks && rc == 0; t++) {
      const mu_task_run *tr = &job->hosts[h].tasks[t];
      if (tr->state != MUSTER__V1__TASK_STATE__PENDING || tr->attempt != 0 || job->hosts[h].state != MU_HOST_PENDING)
        rc = put_task(d, b, job, h, t, &err);
      job->hosts[h].tasks[t].dirty = 0;
    }
  job->n_dirty_tasks = 0;
  job->dirty = 0;
  if (rc == 0) {
    char key[700];
    mu_store_batch_barrier(b); /* the marker only once the job and every task are stored */
    key_of(d, key, sizeof key, "jobs/%s/ready", job->id, 0, 0);
    rc = mu_store_batch_put(b, key, "1", 1, &err);
  }
  if (rc == 0) {
    d->persist->submits_in_flight++;
    rc = mu_store_batch_commit(b, on_submitted, sc, &err);
    b = NULL;
    if (rc == 0) return;
    d->persist->submits_in_flight--;
  }
  mu_store_batch_free(b);
  mu_sched_remove(d->sched, job);
  mu_job_free(job);
  if (rc == MU_EPERM && sc->call != NULL) {
    submit_done(sc, &err);
  } else if (sc->call != NULL) {
    mu_pb_fail(sc->call, mu_rpc_code_from_err(rc), "job not stored: %s", err.msg);
  } else {
    mu_err_prefix(&err, "job not stored");
    submit_done(sc, &err);
  }
  free(sc->job_id);
  free(sc);
}

static submit_ctx *submit_ctx_new(mu_daemon *d, mu_job *job) {
  submit_ctx *sc = calloc(1, sizeof *sc);
  if (sc != NULL) sc->job_id = strdup(job->id);
  if (sc == NULL || sc->job_id == NULL) {
    free(sc);
    return NULL;
  }
  sc->d = d;
  sc->targets = (uint32_t)job->n_hosts;
  return sc;
}

void mu_persist_submit(mu_daemon *d, mu_job *job, mu_rpc_call *call) {
  submit_ctx *sc = submit_ctx_new(d, job);
  if (sc == NULL) {
    mu_sched_remove(d->sched, job);
    mu_job_free(job);
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "job not stored: out of memory");
    return;
  }
  sc->call = call;
  submit_store(d, job, sc);
}

void mu_persist_submit_then(mu_daemon *d, mu_job *job, mu_persist_submit_cb cb, void *ud) {
  submit_ctx *sc = submit_ctx_new(d, job);
  if (sc == NULL) {
    char id[128];
    snprintf(id, sizeof id, "%s", job->id);
    mu_sched_remove(d->sched, job);
    mu_job_free(job);
    mu_err err = {0};
    mu_err_set(&err, MU_ENOMEM, "job not stored: out of memory");
    cb(ud, id, &err);
    return;
  }
  sc->cb = cb;
  sc->ud = ud;
  submit_store(d, job, sc);
}

/* --- decoding --- */

static void set_str(char **dst, const char *s) {
  free(*dst);
  *dst = s && s[0] ? strdup(s) : NULL;
}

static void apply_job(mu_daemon *d, const char *id, Muster__V1__JobRecord *rec, int leading) {
  mu_job *job = mu_sched_find(d->sched, id);
  if (job == NULL) {
    size_t n = rec->n_hosts;
    Muster__V1__JobSpec *spec = rec->spec;
    if (spec == NULL || spec->n_tasks == 0 || n > d->sched->cfg.max_task_runs ||
        n * spec->n_tasks > d->sched->cfg.max_task_runs || spec->target == NULL) {
      mu_warn("persist", "jobs/%s: %zu targets x %zu tasks does not fit; skipped", id, n, spec ? spec->n_tasks : 0);
      return;
    }
    char **ids = calloc(n + 1, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) ids[i] = rec->hosts[i][0] ? rec->hosts[i] : NULL;
    const Muster__V1__RolloutLimits *r = rec->rollout;
    mu_rollout ro = {.max_errors = -1};
    if (r != NULL)
      ro = (mu_rollout){.max_concurrency = r->max_concurrency,
                        .max_concurrency_pct = r->max_concurrency_pct,
                        .max_errors = r->max_errors,
                        .max_errors_pct = r->max_errors_pct,
                        .batch = r->batch,
                        .disconnected_wait_ms = r->disconnected_wait_ms,
                        .skip_unreachable = r->skip_unreachable};
    rec->spec = NULL; /* the job takes it, in every case */
    job = ids ? mu_job_new(id, spec, &ro, ids, n, d->sched->cfg.tail_bytes) : NULL;
    free(ids);
    if (job == NULL) {
      protobuf_c_message_free_unpacked(&spec->base, NULL);
      mu_warn("persist", "jobs/%s: out of memory; skipped", id);
      return;
    }
    job->created_at_ms = rec->created_at_ms;
    job->concurrency = rec->concurrency;
    job->error_budget = rec->error_budget;
    mu_sched_insert(d->sched, job);
  }
  int was_finished = mu_job_finished(job);
  job->state = rec->state;
  job->finished_at_ms = rec->finished_at_ms;
  job->user_cancelled = rec->user_cancelled;
  job->held_by_user = rec->held;
  set_str(&job->end_reason, rec->end_reason);
  if (!leading && job->ready && !was_finished && mu_job_finished(job)) mu_sched_publish_job_end(d->sched, job);
}

static void apply_task(mu_daemon *d, mu_job *job, size_t h, size_t t, const Muster__V1__TaskRecord *rec, int leading) {
  mu_host_run *hr = &job->hosts[h];
  mu_task_run *tr = &hr->tasks[t];
  if (rec->task_id[0] != '\0' && strcmp(rec->task_id, tr->task_id) != 0) set_str(&tr->task_id, rec->task_id);
  tr->attempt = rec->attempt;
  tr->state = rec->state;
  tr->exit_code = rec->exit_code;
  tr->signal = rec->signal;
  set_str(&tr->message, rec->message);
  tr->started_at_ms = rec->started_at_ms;
  tr->finished_at_ms = rec->finished_at_ms;
  tr->retry_at_mono = rec->retry ? mu_mono_ms() : 0;
  tr->lost_at_mono = 0;
  tr->has_metrics = 0;
  if (rec->metrics != NULL) {
    tr->metrics = *rec->metrics; /* TaskMetrics holds only scalars */
    tr->metrics.base.unknown_fields = NULL;
    tr->metrics.base.n_unknown_fields = 0;
    tr->has_metrics = 1;
  }
  for (size_t p = 0; p < tr->n_params; p++) {
    free(tr->params[p].key);
    free(tr->params[p].value);
  }
  free(tr->params);
  tr->params = NULL;
  tr->n_params = 0;
  size_t np = rec->n_params;
  if (np > 0 && np <= 256) tr->params = calloc(np, sizeof *tr->params);
  if (tr->params != NULL) {
    for (size_t p = 0; p < np; p++) {
      tr->params[tr->n_params].key = strdup(rec->params[p]->key);
      tr->params[tr->n_params].value = strdup(rec->params[p]->value);
      tr->n_params++;
    }
  }
  tr->tail.len = tr->tail.start = 0;
  if (rec->tail[0] != '\0') mu_tail_append(&tr->tail, rec->tail, strlen(rec->tail));
  /* the host's progress as of this record; records are applied in revision order */
  hr->state = (mu_host_state)rec->host_state;
  hr->current = rec->current;
  if (hr->current > job->spec->n_tasks) hr->current = job->spec->n_tasks;
  if (hr->current == job->spec->n_tasks && hr->state == MU_HOST_RUNNING) hr->state = MU_HOST_SUCCEEDED;
  hr->batch = rec->batch;
  const char *agent = rec->agent_id;
  if (agent[0] != '\0' && (hr->agent_id == NULL || strcmp(agent, hr->agent_id) != 0)) set_str(&hr->agent_id, agent);
  hr->waiting_since_mono = 0;
  job->needs_recount = 1;
  if (!leading && job->ready) mu_sched_publish_task(d->sched, job, hr, t);
}

static void apply_agent(mu_daemon *d, const char *id, Muster__V1__AgentRecord *rec) {
  mu_agent *a = NULL;
  mu_err err = {0};
  if (mu_registry_upsert(&d->registry, id, &a, &err) != 0) {
    mu_warn("persist", "agents/%s: %s; skipped", id, err.msg);
    return;
  }
  a->draining = rec->draining;
  if (a->session != NULL) return; /* connected here: the live stream knows better */
  Muster__V1__AgentMessage *msg = rec->hello;
  if (msg == NULL || msg->msg_case != MUSTER__V1__AGENT_MESSAGE__MSG_HELLO) {
    mu_warn("persist", "agents/%s: bad hello (%s); skipped", id, msg ? "not a Hello" : "none");
    return;
  }
  rec->hello = NULL; /* the registry takes it */
  mu_agent_set_hello(a, msg);
  /* connected or not: presence/<id> says (followers); a leader's own streams otherwise */
  a->state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
  mu_presence_refresh_agent(d, a);
  if (a->presence_term == 0) a->connected_at_ms = rec->connected_at_ms;
  a->last_heartbeat_ms = a->last_seen_ms = rec->last_seen_ms;
  set_str(&a->peer, rec->peer);
  set_str(&a->disconnect_reason, rec->disconnect_reason);
}

/* Decodes value as a record of desc; logs and returns NULL when it is not one. */
static ProtobufCMessage *decode(mu_daemon *d, const char *rel, const ProtobufCMessageDescriptor *desc,
                                const char *value, size_t len) {
  ProtobufCMessage *rec = NULL;
  mu_err err = {0};
  if (mu_record_decode(desc, value, len, &rec, &err) != 0) {
    mu_warn("persist", "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
    return NULL;
  }
  return rec;
}

void mu_persist_apply(mu_daemon *d, const char *rel, const char *value, size_t len, int leading) {
  char id[300];
  size_t h, t;
  int n = 0;
  if (strcmp(rel, "leader") == 0) return;
  if (strncmp(rel, "presence/", 9) == 0) {
    mu_presence_apply(d, rel + 9, value, len);
    return;
  }
  if (strncmp(rel, "tokens/", 7) == 0) {
    mu_tokens_apply(d, rel + 7, value, len);
    return;
  }
  if (strncmp(rel, "savepoints/", 11) == 0) {
    mu_savepoints_apply(d, rel + 11, value, len);
    return;
  }
  if (strncmp(rel, "runhistory/", 11) == 0) {
    mu_run_history_apply(d, rel + 11, value, len);
    return;
  }
  if (strncmp(rel, "secrets/", 8) == 0) { /* sealed records: secrets.c */
    mu_secrets_apply(d, rel + 8, value, len);
    return;
  }
  if (strncmp(rel, "jobs/", 5) == 0 && strchr(rel + 5, '/') != NULL) {
    const char *slash = strchr(rel + 5, '/');
    snprintf(id, sizeof id, "%.*s", (int)(slash - rel - 5), rel + 5);
    mu_job *job = strcmp(slash, "/ready") == 0 ? mu_sched_find(d->sched, id) : NULL;
    if (job != NULL && !job->ready) {
      job->ready = 1;
      job->needs_recount = 1;
      if (!leading && mu_job_finished(job)) mu_sched_publish_job_end(d->sched, job);
    }
    return;
  }
  const ProtobufCMessageDescriptor *desc = NULL;
  mu_job *job = NULL;
  if (sscanf(rel, "agents/%299[^/]%n", id, &n) == 1 && rel[n] == '\0') {
    desc = &muster__v1__agent_record__descriptor;
  } else if (sscanf(rel, "jobs/%299[^/]%n", id, &n) == 1 && rel[n] == '\0') {
    desc = &muster__v1__job_record__descriptor;
  } else if (sscanf(rel, "tasks/%299[^/]/%zu.%zu%n", id, &h, &t, &n) == 3 && rel[n] == '\0') {
    job = mu_sched_find(d->sched, id);
    if (job == NULL || h >= job->n_hosts || t >= job->spec->n_tasks) {
      mu_debug("persist", "%s: no such job or task here; skipped", rel);
      return;
    }
    desc = &muster__v1__task_record__descriptor;
  } else {
    mu_debug("persist", "%s%s: not a musterd key; ignored", d->cfg.etcd_prefix, rel);
    return;
  }
  ProtobufCMessage *rec = decode(d, rel, desc, value, len);
  if (rec == NULL) return;
  if (desc == &muster__v1__agent_record__descriptor) apply_agent(d, id, (Muster__V1__AgentRecord *)rec);
  else if (desc == &muster__v1__job_record__descriptor) apply_job(d, id, (Muster__V1__JobRecord *)rec, leading);
  else apply_task(d, job, h, t, (Muster__V1__TaskRecord *)rec, leading);
  protobuf_c_message_free_unpacked(rec, NULL);
}

void mu_persist_apply_delete(mu_daemon *d, const char *rel) {
  char id[300];
  int n = 0;
  if (strncmp(rel, "presence/", 9) == 0) {
    mu_presence_apply(d, rel + 9, NULL, 0);
    return;
  }
  if (strncmp(rel, "tokens/", 7) == 0) {
    mu_tokens_apply(d, rel + 7, NULL, 0);
    return;
  }
  if (strncmp(rel, "savepoints/", 11) == 0) {
    mu_savepoints_apply(d, rel + 11, NULL, 0);
    return;
  }
  if (strncmp(rel, "runhistory/", 11) == 0) {
    mu_run_history_apply(d, rel + 11, NULL, 0);
    return;
  }
  if (strncmp(rel, "secrets/", 8) == 0) {
    mu_secrets_apply(d, rel + 8, NULL, 0);
    return;
  }
  if (sscanf(rel, "jobs/%299[^/]%n", id, &n) != 1 || rel[n] != '\0') return;
  mu_job *job = mu_sched_find(d->sched, id);
  if (job == NULL) return;
  mu_sched_remove(d->sched, job);
  mu_sched_note_evicted(d->sched, job); /* the leader's retention forgot it: say so here too */
  mu_job_free(job);
}

void mu_persist_settle(mu_daemon *d) {
  for (mu_job *j = d->sched->jobs; j != NULL; j = j->next)
    if (j->needs_recount) {
      mu_sched_recount(j);
      j->needs_recount = 0;
    }
}

void mu_persist_reset_jobs(mu_daemon *d) {
  mu_sched_reset(d->sched);
  for (size_t i = 0; i < d->persist->n_deleted; i++) free(d->persist->deleted_jobs[i]);
  d->persist->n_deleted = 0;
  mu_secrets_reset(d); /* the snapshot brings the secret records too */
  if (d->savepoints != NULL) mu_savepoints_reset(d->savepoints);
  if (d->run_history != NULL) mu_run_history_reset(d->run_history);
}

void mu_persist_init(mu_daemon *d) {
  mu_strlist_init(&d->persist->deleted_agents);
  d->persist->deleted_agents.max = MU_PERSIST_MAX_DELETES;
  uv_timer_init(d->loop, &d->persist->flush_timer);
  d->persist->flush_timer.data = d;
}

void mu_persist_close(mu_daemon *d) {
  uv_timer_stop(&d->persist->flush_timer);
  uv_close((uv_handle_t *)&d->persist->flush_timer, NULL);
  for (size_t i = 0; i < d->persist->n_deleted; i++) free(d->persist->deleted_jobs[i]);
  free(d->persist->deleted_jobs);
  d->persist->deleted_jobs = NULL;
  d->persist->n_deleted = d->persist->cap_deleted = 0;
  mu_strlist_free(&d->persist->deleted_agents);
}

/* --- events (events.h) --- */

void mu_persist_on_agent(mu_daemon *d, mu_agent *a, int stopping) {
  if (!stopping) mu_persist_agent(d, a);
}

void mu_persist_on_deposed(mu_daemon *d) { d->persist->flush_in_flight = 0; }

void mu_persist_on_snapshot_begin(mu_daemon *d) {
  mu_persist_reset_jobs(d);
  mu_presence_reset(d);
  mu_tokens_load_begin(d);
}

void mu_persist_on_record(mu_daemon *d, const char *rel, const char *value, size_t len, int leading) {
  if (strncmp(rel, "bundles/", 8) == 0) return; /* bundles.c's */
  if (value != NULL) mu_persist_apply(d, rel, value, len, leading);
  else mu_persist_apply_delete(d, rel);
}

void mu_persist_on_records_end(mu_daemon *d, int snapshot) {
  if (snapshot) mu_tokens_load_end(d);
  mu_persist_settle(d);
  if (snapshot) mu_run_history_settle(d);
  if (snapshot) mu_presence_refresh(d);
}

void mu_persist_on_takeover(mu_daemon *d) {
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    if (a->session == NULL) a->state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
    a->persist_dirty = a->hello_msg != NULL;
    a->presence_dirty = a->session != NULL;
  }
  mu_persist_kick(d);
}
