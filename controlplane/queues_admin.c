/* Named queues on every member (queues_admin.h): the config table, the stored ones, the merged
 * table handed to the scheduler, and muster.v1.Queues. */
#include "controlplane/queues_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/queues.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules_int.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "muster/v1/schedule.pb-c.h"
#include "muster/v1/store.pb-c.h"

#define LOG "queues"
#define PREFIX "queues/"

typedef struct stored_queue {
  mu_queue_def def;
  char set_by[200];
  int64_t set_at_ms;
} stored_queue;

typedef struct mu_cp_queues {
  mu_daemon *d;
  mu_queue_table config; /* musterd's `queues:` */
  stored_queue stored[MU_QUEUE_MAX];
  size_t n_stored;
} mu_cp_queues;

int mu_queues_init(mu_daemon *d, mu_err *err) {
  mu_cp_queues *qs = calloc(1, sizeof *qs);
  if (qs == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  qs->d = d;
  qs->config = d->sched->cfg.queues;
  d->queues = qs;
  return 0;
}

void mu_queues_free(mu_daemon *d) {
  free(d->queues);
  d->queues = NULL;
}

static stored_queue *find_stored(mu_cp_queues *qs, const char *name) {
  for (size_t i = 0; i < qs->n_stored; i++)
    if (strcmp(qs->stored[i].def.name, name) == 0) return &qs->stored[i];
  return NULL;
}

static int in_config(const mu_cp_queues *qs, const char *name) {
  for (size_t i = 0; i < qs->config.n; i++)
    if (strcmp(qs->config.q[i].name, name) == 0) return 1;
  return 0;
}

/* The config table with the stored queues over it, into t. */
static void merged(const mu_cp_queues *qs, mu_queue_table *t) {
  *t = qs->config;
  for (size_t i = 0; i < qs->n_stored; i++) {
    mu_err err = {0};
    const mu_queue_def *q = &qs->stored[i].def;
    if (mu_queue_table_set(t, q->name, q->weight, q->max_running, &err) != 0)
      mu_warn(LOG, "queue '%s' not used: %s", q->name, err.msg);
  }
}

static void apply(mu_cp_queues *qs) {
  mu_queue_table t;
  merged(qs, &t);
  mu_sched_set_queues(qs->d->sched, &t);
}

/* Takes the record's info into the stored queues (replacing one of the same name). */
static int adopt(mu_cp_queues *qs, const char *json, size_t len, mu_err *err) {
  ProtobufCMessage *m = NULL;
  int rc = mu_record_decode(&muster__v1__queue_record__descriptor, json, len, &m, err);
  if (rc != 0) return rc;
  const Muster__V1__QueueRecord *rec = (const Muster__V1__QueueRecord *)m;
  const Muster__V1__QueueInfo *info = rec->info;
  if (info == NULL) rc = mu_err_set(err, MU_EINVAL, "queue record without its info");
  if (rc == 0) rc = mu_queue_name_check(info->name, err);
  if (rc == 0 && info->weight > MU_QUEUE_WEIGHT_MAX)
    rc = mu_err_set(err, MU_EINVAL, "queue '%s': weight %u past %d", info->name, info->weight, MU_QUEUE_WEIGHT_MAX);
  stored_queue *s = rc == 0 ? find_stored(qs, info->name) : NULL;
  if (rc == 0 && s == NULL) {
    if (qs->n_stored >= MU_QUEUE_MAX) rc = mu_err_set(err, MU_ENOSPC, "more than %d stored queues", MU_QUEUE_MAX);
    else s = &qs->stored[qs->n_stored++];
  }
  if (rc == 0) {
    memset(s, 0, sizeof *s);
    snprintf(s->def.name, sizeof s->def.name, "%s", info->name);
    s->def.weight = info->weight ? info->weight : 1;
    s->def.max_running = info->max_running;
    snprintf(s->set_by, sizeof s->set_by, "%s", info->set_by);
    s->set_at_ms = info->set_at_ms;
    apply(qs);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}

static void remove_stored(mu_cp_queues *qs, const char *name) {
  stored_queue *s = find_stored(qs, name);
  if (s == NULL) return;
  size_t i = (size_t)(s - qs->stored);
  memmove(&qs->stored[i], &qs->stored[i + 1], (qs->n_stored - i - 1) * sizeof qs->stored[0]);
  qs->n_stored--;
  apply(qs);
}

void mu_queues_on_snapshot_begin(mu_daemon *d) {
  d->queues->n_stored = 0;
  apply(d->queues);
}

void mu_queues_on_record(mu_daemon *d, const char *rel, const char *value, size_t len) {
  const char *name = mu_record_leaf(rel, PREFIX);
  if (name == NULL) return;
  if (value == NULL) {
    remove_stored(d->queues, name);
    return;
  }
  mu_err err = {0};
  if (adopt(d->queues, value, len, &err) != 0) mu_warn(LOG, "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
}

/* --- the calls --- */

size_t mu_queues_load(mu_daemon *d, mu_queue_load *ret) {
  const mu_cp_queues *qs = d->queues;
  if (qs == NULL) return 0;
  mu_queue_table t;
  merged(qs, &t);
  size_t n = 0;
  int named_default = 0;
  for (size_t i = 0; i < t.n; i++) named_default |= strcmp(t.q[i].name, MU_QUEUE_DEFAULT) == 0;
  if (!named_default) ret[n++] = (mu_queue_load){.def = *mu_queue_find(&t, ""), .source = "builtin"};
  for (size_t i = 0; i < t.n; i++, n++) {
    const stored_queue *s = find_stored((mu_cp_queues *)qs, t.q[i].name);
    ret[n] = (mu_queue_load){.def = t.q[i],
                             .source = s                            ? "cluster"
                                       : in_config(qs, t.q[i].name) ? "config"
                                                                    : "builtin"};
  }
  size_t dflt = 0; /* the entry a job of an unknown (removed) queue counts in */
  while (dflt < n && strcmp(ret[dflt].def.name, MU_QUEUE_DEFAULT) != 0) dflt++;
  for (const mu_job *j = d->sched->jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j)) continue;
    const char *name = j->spec->queue && j->spec->queue[0] ? j->spec->queue : MU_QUEUE_DEFAULT;
    size_t q = 0;
    while (q < n && strcmp(ret[q].def.name, name) != 0) q++;
    if (q == n) q = dflt;
    if (q == n) continue;
    ret[q].running += j->running;
    for (size_t i = 0; i < j->n_hosts; i++) ret[q].waiting += j->hosts[i].state == MU_HOST_PENDING;
  }
  return n;
}

/* One queue as the calls show it (its strings borrowed from l and the stored queues). */
static void view(const mu_cp_queues *qs, const mu_queue_load *l, Muster__V1__QueueInfo *ret) {
  muster__v1__queue_info__init(ret);
  ret->name = (char *)l->def.name;
  ret->weight = l->def.weight;
  ret->max_running = l->def.max_running;
  ret->source = (char *)l->source;
  ret->running = l->running;
  ret->waiting = l->waiting;
  const stored_queue *s = find_stored((mu_cp_queues *)qs, l->def.name);
  if (s != NULL) {
    ret->set_by = (char *)s->set_by;
    ret->set_at_ms = s->set_at_ms;
  }
}

typedef struct admin_op {
  mu_daemon *d;
  mu_rpc_call *call;
  char name[MU_QUEUE_NAME];
  char *json;
  const char *action;
} admin_op;

static void op_free(admin_op *op) {
  free(op->json);
  free(op);
}

static void reply_queue(mu_daemon *d, mu_rpc_call *call, const char *name) {
  mu_queue_load loads[MU_QUEUE_MAX + 1];
  size_t n = mu_queues_load(d, loads);
  mu_queue_load gone = {.source = "builtin"}; /* removed, and no config queue of that name */
  snprintf(gone.def.name, sizeof gone.def.name, "%s", name);
  const mu_queue_load *l = &gone;
  for (size_t i = 0; i < n; i++)
    if (strcmp(loads[i].def.name, name) == 0) l = &loads[i];
  Muster__V1__QueueInfo info;
  view(d->queues, l, &info);
  mu_pb_reply(call, &info.base);
}

static void on_written(void *ud, const mu_err *err) {
  admin_op *op = ud;
  mu_daemon *d = op->d;
  mu_err aerr = {0};
  if (err != NULL) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, err->msg, NULL);
    if (!(err->code == MU_EPERM && mu_cluster_check_write(d, op->call) != 0))
      mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "queue '%s' not stored: %s", op->name, err->msg);
  } else if (op->json != NULL && adopt(d->queues, op->json, strlen(op->json), &aerr) != 0) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, aerr.msg, NULL);
    mu_pb_fail(op->call, mu_rpc_code_from_err(aerr.code), "%s", aerr.msg);
  } else {
    if (op->json == NULL) remove_stored(d->queues, op->name);
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_OK, NULL, NULL);
    reply_queue(d, op->call, op->name);
  }
  op_free(op);
}

static admin_op *op_new(mu_daemon *d, mu_rpc_call *call, const char *name, const char *action) {
  admin_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->d = d;
  op->call = call;
  op->action = action;
  snprintf(op->name, sizeof op->name, "%s", name);
  return op;
}

static void refuse(mu_daemon *d, mu_rpc_call *call, const char *action, const char *name, const mu_err *err) {
  mu_audit_record(d, call, action, name, MU_AUDIT_REFUSED, err->msg, NULL);
  int code = err->code == MU_ENOENT ? MU_RPC_NOT_FOUND : mu_rpc_code_from_err(err->code);
  mu_pb_fail(call, code, "%s", err->msg);
}

static void set_queue(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__SetQueueRequest *req = (const Muster__V1__SetQueueRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  mu_err err = {0};
  mu_queue_table t;
  merged(d->queues, &t);
  int rc = mu_queue_table_set(&t, req->name, req->weight, req->max_running, &err); /* checks it all */
  char *json = NULL;
  if (rc == 0) {
    char who[200] = "";
    const mu_caller *c = mu_authz_caller(call);
    if (c != NULL) mu_caller_describe(c, who, sizeof who);
    Muster__V1__QueueInfo info = MUSTER__V1__QUEUE_INFO__INIT;
    Muster__V1__QueueRecord rec = MUSTER__V1__QUEUE_RECORD__INIT;
    info.name = req->name;
    info.weight = req->weight ? req->weight : 1;
    info.max_running = req->max_running;
    info.set_by = who;
    info.set_at_ms = mu_now_ms();
    rec.v = MU_RECORD_VERSION;
    rec.info = &info;
    rc = mu_record_encode(&rec.base, &json, &err);
  }
  admin_op *op = rc == 0 ? op_new(d, call, req->name, "queue.set") : NULL;
  if (rc == 0 && op == NULL) rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
  if (rc != 0) {
    free(json);
    refuse(d, call, "queue.set", req->name, &err);
    return;
  }
  op->json = json;
  char rel[MU_QUEUE_NAME + 16];
  snprintf(rel, sizeof rel, PREFIX "%s", op->name);
  mu_schedules_write_put(d->schedules, rel, json, on_written, op);
}

static void delete_queue(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__QueueNameRequest *req = (const Muster__V1__QueueNameRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  mu_err err = {0};
  if (find_stored(d->queues, req->name) == NULL) {
    if (in_config(d->queues, req->name))
      mu_err_set(&err, MU_EINVAL, "queue '%s' comes from musterd's config (queues:); change it there", req->name);
    else mu_err_set(&err, MU_ENOENT, "no queue '%.64s' set with muster queue set", req->name);
    refuse(d, call, "queue.delete", req->name, &err);
    return;
  }
  admin_op *op = op_new(d, call, req->name, "queue.delete");
  if (op == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  char rel[MU_QUEUE_NAME + 16];
  snprintf(rel, sizeof rel, PREFIX "%s", op->name);
  mu_schedules_write_delete_tree(d->schedules, rel, on_written, op);
}

static void list_queues(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)req_msg, (void)md;
  mu_queue_load loads[MU_QUEUE_MAX + 1];
  Muster__V1__QueueInfo infos[MU_QUEUE_MAX + 1];
  Muster__V1__QueueInfo *ptrs[MU_QUEUE_MAX + 1];
  size_t n = mu_queues_load(d, loads);
  for (size_t i = 0; i < n; i++) {
    view(d->queues, &loads[i], &infos[i]);
    ptrs[i] = &infos[i];
  }
  Muster__V1__ListQueuesResponse resp = MUSTER__V1__LIST_QUEUES_RESPONSE__INIT;
  resp.queues = ptrs;
  resp.n_queues = n;
  mu_pb_reply(call, &resp.base);
}

int mu_queues_register(mu_daemon *d, mu_err *err) {
  static const mu_pb_method methods[] = {
      {"/muster.v1.Queues/SetQueue", &muster__v1__set_queue_request__descriptor, set_queue},
      {"/muster.v1.Queues/ListQueues", &muster__v1__list_queues_request__descriptor, list_queues},
      {"/muster.v1.Queues/DeleteQueue", &muster__v1__queue_name_request__descriptor, delete_queue},
  };
  return mu_pb_add_unaries(d->server, methods, sizeof methods / sizeof methods[0], d, err);
}
