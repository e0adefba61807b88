/* The savepoint catalogue (savepoints.h): records in memory, their etcd writes through the
 * persist flush, the records read back, and ListSavepoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/savepoints.h"

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/records.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"

static void item_free(mu_savepoint *s) {
  free(s->rel_key);
  free(s->task_name);
  free(s->location);
  free(s->kind);
  free(s->flink_job_id);
  free(s->job_id);
  free(s->task_id);
  memset(s, 0, sizeof *s);
}

void mu_savepoints_reset(mu_savepoints *c) {
  for (size_t i = 0; i < c->n; i++) item_free(&c->items[i]);
  free(c->items);
  mu_key_queue_free(&c->deleted);
  uint32_t keep = c->keep;
  uint64_t recorded = c->recorded, dropped = c->dropped;
  memset(c, 0, sizeof *c);
  c->keep = keep;
  c->recorded = recorded;
  c->dropped = dropped;
}

static const char *param_of(const mu_task_run *tr, const char *key) {
  for (size_t i = 0; i < tr->n_params; i++)
    if (strcmp(tr->params[i].key, key) == 0) return tr->params[i].value;
  return NULL;
}

static size_t find_key(const mu_savepoints *c, const char *rel_key) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->items[i].rel_key, rel_key) == 0) return i;
  return (size_t)-1;
}

/* Drops item i, queueing its key's delete when this member writes (leading). */
static void remove_at(mu_savepoints *c, size_t i, int queue_delete) {
  if (queue_delete) {
    mu_key_queue_push(&c->deleted, c->items[i].rel_key);
    c->items[i].rel_key = NULL;
  }
  item_free(&c->items[i]);
  c->items[i] = c->items[--c->n];
}

/* Keeps the newest `keep` of name. */
static void trim(mu_savepoints *c, const char *name, int queue_delete) {
  uint32_t keep = c->keep ? c->keep : MU_SAVEPOINTS_KEEP_DEFAULT;
  for (;;) {
    size_t count = 0, oldest = (size_t)-1;
    for (size_t i = 0; i < c->n; i++) {
      if (strcmp(c->items[i].task_name, name) != 0) continue;
      count++;
      if (oldest == (size_t)-1 || c->items[i].at_ms < c->items[oldest].at_ms ||
          (c->items[i].at_ms == c->items[oldest].at_ms && strcmp(c->items[i].rel_key, c->items[oldest].rel_key) < 0))
        oldest = i;
    }
    if (count <= keep) return;
    remove_at(c, oldest, queue_delete);
  }
}

static char *dup0(const char *s) { return strdup(s != NULL ? s : ""); }

/* Adds a record (strings copied); replaces one of the same key. 0, or MU_ENOSPC / MU_ENOMEM. */
static int add(mu_savepoints *c, const Muster__V1__SavepointRecord *r, const char *rel_key, int dirty) {
  size_t at = find_key(c, rel_key);
  if (at != (size_t)-1) {
    item_free(&c->items[at]);
    c->items[at] = c->items[--c->n];
  }
  if (c->n >= MU_SAVEPOINTS_MAX) return MU_ENOSPC;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    mu_savepoint *grown = realloc(c->items, cap * sizeof *grown);
    if (grown == NULL) return MU_ENOMEM;
    c->items = grown;
    c->cap = cap;
  }
  mu_savepoint *s = &c->items[c->n];
  memset(s, 0, sizeof *s);
  s->rel_key = dup0(rel_key);
  s->task_name = dup0(r->task_name);
  s->location = dup0(r->location);
  s->kind = dup0(r->kind);
  s->flink_job_id = dup0(r->flink_job_id);
  s->job_id = dup0(r->job_id);
  s->task_id = dup0(r->task_id);
  s->attempt = r->attempt;
  s->at_ms = r->at_ms;
  s->dirty = dirty;
  if (!s->rel_key || !s->task_name || !s->location || !s->kind || !s->flink_job_id || !s->job_id || !s->task_id) {
    item_free(s);
    return MU_ENOMEM;
  }
  c->n++;
  return 0;
}

void mu_savepoints_on_param(mu_daemon *d, const mu_job *job, const mu_host_run *h, size_t idx, const char *key,
                            const char *value) {
  mu_savepoints *c = d->savepoints;
  int upgrade = strcmp(key, "upgrade_savepoint_path") == 0;
  if (c == NULL || value == NULL || value[0] == '\0' || (!upgrade && strcmp(key, "savepoint_path") != 0)) return;
  const mu_task_run *tr = &h->tasks[idx];
  const char *kind = upgrade ? "upgrade" : param_of(tr, "savepoint_kind");
  const char *name = job->spec->tasks[idx]->name;
  for (size_t i = 0; i < c->n; i++) /* a param sent again (after a reconnect) is one savepoint */
    if (strcmp(c->items[i].task_name, name) == 0 && strcmp(c->items[i].location, value) == 0) return;
  Muster__V1__SavepointRecord r = MUSTER__V1__SAVEPOINT_RECORD__INIT;
  r.v = MU_RECORD_VERSION;
  r.task_name = (char *)name;
  r.location = (char *)value;
  r.kind = (char *)(kind != NULL ? kind : "stop");
  r.flink_job_id = (char *)(upgrade && param_of(tr, "upgraded_from") ? param_of(tr, "upgraded_from")
                            : param_of(tr, "job_id")                 ? param_of(tr, "job_id")
                                                                     : "");
  r.job_id = job->id;
  r.task_id = tr->task_id;
  r.attempt = tr->attempt;
  r.at_ms = mu_now_ms();
  char rel[900];
  do { /* two savepoints of one attempt in one millisecond: the later one a millisecond on */
    snprintf(rel, sizeof rel, "savepoints/%s/%013lld-%s-%zu-%u", name, (long long)r.at_ms, job->id,
             (size_t)(h - job->hosts), tr->attempt);
  } while (find_key(c, rel) != (size_t)-1 && ++r.at_ms);
  int rc = add(c, &r, rel, 1);
  if (rc != 0) {
    c->dropped++;
    mu_warn("savepoints", "task %s: savepoint %s not recorded: %s", tr->task_id, value,
            rc == MU_ENOSPC ? "the catalogue holds MU_SAVEPOINTS_MAX (100000) records" : "out of memory");
    return;
  }
  c->recorded++;
  mu_info("savepoints", "task %s attempt %u: %s savepoint %s recorded under %s", tr->task_id, tr->attempt, r.kind,
          value, name);
  trim(c, name, d->cluster->role != MU_ROLE_SINGLE);
  /* written by the flush the param's task record asks for (the scheduler marks it next) */
}

int mu_savepoints_add_ops(mu_daemon *d, mu_store_batch *b, mu_err *err) {
  mu_savepoints *c = d->savepoints;
  if (c == NULL) return 0;
  char key[1200];
  for (size_t i = 0; i < c->n; i++) {
    mu_savepoint *s = &c->items[i];
    if (!s->dirty) continue;
    Muster__V1__SavepointRecord r = MUSTER__V1__SAVEPOINT_RECORD__INIT;
    r.v = MU_RECORD_VERSION;
    r.task_name = s->task_name;
    r.location = s->location;
    r.kind = s->kind;
    r.flink_job_id = s->flink_job_id;
    r.job_id = s->job_id;
    r.task_id = s->task_id;
    r.attempt = s->attempt;
    r.at_ms = s->at_ms;
    char *text = NULL;
    int rc = mu_record_encode(&r.base, &text, err);
    if (rc != 0) return rc;
    snprintf(key, sizeof key, "%s%s", d->cfg.etcd_prefix, s->rel_key);
    rc = mu_store_batch_put(b, key, text, 0, err);
    free(text);
    if (rc != 0) return rc;
    s->dirty = 0;
  }
  return mu_store_batch_delete_queued(b, d->cfg.etcd_prefix, &c->deleted, err);
}

void mu_savepoints_write_failed(mu_daemon *d) {
  mu_savepoints *c = d->savepoints;
  if (c == NULL) return;
  for (size_t i = 0; i < c->n; i++) c->items[i].dirty = 1; /* rare; puts are idempotent */
}

void mu_savepoints_apply(mu_daemon *d, const char *rel, const char *value, size_t len) {
  mu_savepoints *c = d->savepoints;
  if (c == NULL) return;
  char rel_key[900];
  snprintf(rel_key, sizeof rel_key, "savepoints/%s", rel);
  if (value == NULL) {
    size_t at = find_key(c, rel_key);
    if (at != (size_t)-1) remove_at(c, at, 0);
    return;
  }
  ProtobufCMessage *msg = NULL;
  mu_err err = {0};
  if (mu_record_decode(&muster__v1__savepoint_record__descriptor, value, len, &msg, &err) != 0) {
    mu_warn("savepoints", "%s%s: %s; skipped", d->cfg.etcd_prefix, rel_key, err.msg);
    return;
  }
  Muster__V1__SavepointRecord *r = (Muster__V1__SavepointRecord *)msg;
  if (r->task_name[0] == '\0' || r->location[0] == '\0') {
    mu_warn("savepoints", "%s%s: no task_name or location; skipped", d->cfg.etcd_prefix, rel_key);
  } else if (add(c, r, rel_key, 0) == 0) {
    /* a leader trims what an older, larger bound kept */
    trim(c, r->task_name, d->cluster->role == MU_ROLE_LEADER);
  }
  protobuf_c_message_free_unpacked(msg, NULL);
}

static int newest_first(const void *a, const void *b) {
  const Muster__V1__Savepoint *x = *(Muster__V1__Savepoint *const *)a, *y = *(Muster__V1__Savepoint *const *)b;
  int c = strcmp(x->task_name, y->task_name);
  if (c != 0) return c;
  return x->at_ms < y->at_ms ? 1 : x->at_ms > y->at_ms ? -1 : 0;
}

int mu_savepoints_list(const mu_savepoints *c, const char *task_name, Muster__V1__Savepoint ***ret, size_t *ret_n,
                       mu_err *err) {
  Muster__V1__Savepoint **out = calloc(c->n + 1, sizeof *out);
  if (out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++) {
    const mu_savepoint *s = &c->items[i];
    if (task_name != NULL && task_name[0] != '\0' && strcmp(s->task_name, task_name) != 0) continue;
    Muster__V1__Savepoint *v = malloc(sizeof *v);
    if (v == NULL) {
      for (size_t k = 0; k < n; k++) free(out[k]);
      free(out);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    muster__v1__savepoint__init(v);
    v->task_name = s->task_name;
    v->location = s->location;
    v->kind = s->kind;
    v->flink_job_id = s->flink_job_id;
    v->job_id = s->job_id;
    v->task_id = s->task_id;
    v->attempt = s->attempt;
    v->at_ms = s->at_ms;
    out[n++] = v;
  }
  qsort(out, n, sizeof *out, newest_first);
  *ret = out;
  *ret_n = n;
  return 0;
}

static void list_savepoints(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListSavepointsRequest *req = (const Muster__V1__ListSavepointsRequest *)req_msg;
  (void)md;
  Muster__V1__ListSavepointsResponse resp = MUSTER__V1__LIST_SAVEPOINTS_RESPONSE__INIT;
  mu_err err = {0};
  if (mu_savepoints_list(d->savepoints, req->task_name, &resp.savepoints, &resp.n_savepoints, &err) != 0) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "%s", err.msg);
    return;
  }
  mu_pb_reply(call, &resp.base);
  for (size_t i = 0; i < resp.n_savepoints; i++) free(resp.savepoints[i]);
  free(resp.savepoints);
}

int mu_savepoints_register(mu_daemon *d, mu_err *err) {
  return mu_pb_add_unary(d->server, "/muster.v1.Admin/ListSavepoints", &muster__v1__list_savepoints_request__descriptor,
                         list_savepoints, d, err);
}
