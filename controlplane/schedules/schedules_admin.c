/* muster.v1.Schedules (schedules.h): create (checked like SubmitJob, stored create-only),
 * list and get (any member: from its copy), pause, resume, delete and trigger (the leader).
 * Nothing is stored when a check fails; every change is audited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/jobspec.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules_int.h"
#include "lib/base/clock.h"
#include "lib/rpc/pb.h"
#include "muster/v1/schedule.pb-c.h"

/* A pending write's call, and the record it writes (owned) when it is a create or update. */
typedef struct admin_op {
  mu_daemon *d;
  mu_rpc_call *call;
  char name[MU_SCHEDULE_NAME_MAX + 1];
  char *json;         /* the record written */
  const char *action; /* audit action */
  uint32_t slots;
} admin_op;

static admin_op *admin_op_new(mu_daemon *d, mu_rpc_call *call, const char *name, const char *action) {
  admin_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->d = d;
  op->call = call;
  op->action = action;
  snprintf(op->name, sizeof op->name, "%s", name);
  return op;
}

static void admin_op_free(admin_op *op) {
  free(op->json);
  free(op);
}

static void reply_view(mu_daemon *d, mu_rpc_call *call, const mu_schedule *sc, int recent) {
  Muster__V1__Schedule *v = mu_schedules_view(d->schedules, sc, recent);
  if (v == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  mu_pb_reply(call, &v->base);
  mu_schedules_view_free(v);
}

static mu_schedule *find_or_fail(mu_daemon *d, mu_rpc_call *call, const char *name) {
  mu_schedule *sc = name[0] ? mu_schedules_find(d->schedules, name) : NULL;
  if (sc == NULL) {
    if (name[0] == '\0') mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "name: required");
    else mu_pb_fail(call, MU_RPC_NOT_FOUND, "no schedule '%s'", name);
  }
  return sc;
}

/* The common start of a call on one schedule that writes: this member may write, the
 * schedule exists, an op for the answer. NULL when the call has been answered. */
static admin_op *begin_write(mu_daemon *d, mu_rpc_call *call, const ProtobufCMessage *req_msg, const char *action,
                             mu_schedule **ret_sc) {
  const Muster__V1__ScheduleNameRequest *req = (const Muster__V1__ScheduleNameRequest *)req_msg;
  if (mu_cluster_check_write(d, call) != 0) return NULL;
  mu_schedule *sc = find_or_fail(d, call, req->name);
  if (sc == NULL) return NULL;
  admin_op *op = admin_op_new(d, call, sc->name, action);
  if (op == NULL) mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
  *ret_sc = sc;
  return op;
}

/* The record's JSON, decoded back into an owned record, goes into memory: what etcd holds is
 * exactly what this member holds. */
static int adopt(mu_daemon *d, const char *json, mu_err *err) {
  ProtobufCMessage *m = NULL;
  int rc = mu_record_decode(&muster__v1__schedule_record__descriptor, json, strlen(json), &m, err);
  if (rc == 0) rc = mu_schedules_put_record(d->schedules, (Muster__V1__ScheduleRecord *)m, err);
  return rc;
}

/* A create or an update is stored: take it and answer with the view. */
static void on_record_written(admin_op *op, const mu_err *err) {
  mu_daemon *d = op->d;
  mu_err aerr = {0};
  if (err == NULL && adopt(d, op->json, &aerr) != 0) err = &aerr;
  if (err != NULL) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, err->msg, NULL);
    if (err->code == MU_EPERM && mu_cluster_check_write(d, op->call) != 0) {
      /* answered with the leader hint */
    } else {
      mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "schedule '%s' not stored: %s", op->name, err->msg);
    }
  } else {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_OK, NULL, NULL);
    reply_view(d, op->call, mu_schedules_find(d->schedules, op->name), 0);
  }
  admin_op_free(op);
}

static void on_put(void *ud, const mu_err *err) { on_record_written(ud, err); }

static void on_create(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err) {
  admin_op *op = ud;
  (void)existing;
  if (err == NULL && !created) {
    mu_audit_record(op->d, op->call, op->action, op->name, MU_AUDIT_REFUSED, "exists", NULL);
    mu_pb_fail(op->call, MU_RPC_ALREADY_EXISTS, "schedule '%s' exists already", op->name);
    admin_op_free(op);
    return;
  }
  on_record_written(op, err);
}

/* The job a schedule creates, checked now exactly as SubmitJob checks it (for this caller). */
static int check_job(mu_daemon *d, mu_rpc_call *call, const Muster__V1__JobSpec *job, mu_err *err) {
  Muster__V1__JobSpec *copy = mu_jobspec_copy(job);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  mu_rollout ro;
  char **ids = NULL;
  size_t n = 0;
  int rc = mu_sched_admit(d->sched, copy, mu_authz_caller(call), &ro, &ids, &n, err);
  if (rc != 0) return mu_err_prefix(err, "job");
  free(ids);
  protobuf_c_message_free_unpacked(&copy->base, NULL);
  return 0;
}

static void create_schedule(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__CreateScheduleRequest *req = (const Muster__V1__CreateScheduleRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  if (req->spec == NULL) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "spec: required");
    return;
  }
  /* shallow: the rules parse fills defaults into this copy (empty strings made the shared
   * empty string first, so that the request's own are never freed here) */
  Muster__V1__ScheduleSpec spec = *req->spec;
  char **fields[5] = {&spec.tz, &spec.jitter, &spec.overlap, &spec.catch_up, &spec.catch_up_window};
  char *defaults[5];
  for (int i = 0; i < 5; i++) {
    if ((*fields[i])[0] == '\0') *fields[i] = (char *)protobuf_c_empty_string;
    defaults[i] = *fields[i];
  }
  Muster__V1__JobSpec *adhoc = NULL;
  mu_schedule_rules rules = {0};
  mu_err err = {0};
  char who[200] = "";
  int rc = 0;
  char *json = NULL;
  Muster__V1__JobSpec *from_template = NULL; /* checked now, read again at each fire */
  int kinds = (req->run != NULL) + (spec.job != NULL) + (spec.template_[0] != '\0');
  if (kinds > 1) rc = mu_err_set(&err, MU_EINVAL, "give the job as one of spec.job, spec.template or run, not several");
  else if (kinds == 0)
    rc = mu_err_set(&err, MU_EINVAL, "spec.job: required (the job each slot creates, or spec.template)");
  else if (spec.n_template_params > 0 && spec.template_[0] == '\0')
    rc = mu_err_set(&err, MU_EINVAL, "spec.template_params: only with spec.template");
  else if (req->run != NULL) {
    rc = mu_jobspec_adhoc(req->run, &adhoc, &err);
    if (rc == 0) spec.job = adhoc;
  } else if (spec.template_[0] != '\0') {
    rc = mu_schedules_template_job(d->schedules, spec.template_, (const char *const *)spec.template_params,
                                   spec.n_template_params, &from_template, &err);
    if (rc != 0) mu_err_prefix(&err, "template");
    if (rc == MU_ENOENT) rc = MU_EINVAL;
  }
  if (rc == 0) rc = mu_schedule_rules_parse(&spec, d->schedules->tz_dir, &rules, &err);
  if (rc == 0 && mu_schedules_find(d->schedules, spec.name) != NULL)
    rc = mu_err_set(&err, MU_EEXIST, "schedule '%s' exists already", spec.name);
  if (rc == 0 && d->schedules->n >= d->schedules->max_schedules)
    rc = mu_err_set(&err, MU_ENOSPC, "%zu schedules exist, the most this control plane keeps", d->schedules->n);
  if (rc == 0) rc = check_job(d, call, from_template != NULL ? from_template : spec.job, &err);
  if (from_template != NULL) protobuf_c_message_free_unpacked(&from_template->base, NULL);
  if (rc == 0) {
    Muster__V1__ScheduleRecord rec = MUSTER__V1__SCHEDULE_RECORD__INIT;
    const mu_caller *c = mu_authz_caller(call);
    if (c != NULL) mu_caller_describe(c, who, sizeof who);
    rec.v = MU_RECORD_VERSION;
    rec.spec = &spec;
    rec.created_at_ms = rec.updated_at_ms = mu_now_ms();
    rec.created_by = who;
    rec.from_s = rec.created_at_ms / 1000;
    if (mu_record_encode(&rec.base, &json, &err) != 0) rc = err.code;
  }
  mu_schedule_rules_free(&rules);
  char name[MU_SCHEDULE_NAME_MAX + 1];
  snprintf(name, sizeof name, "%s", spec.name);
  /* the defaults the parse put in are this copy's (the request's strings are the request's) */
  for (int i = 0; i < 5; i++)
    if (*fields[i] != defaults[i]) free(*fields[i]);
  if (adhoc != NULL) protobuf_c_message_free_unpacked(&adhoc->base, NULL);
  admin_op *op = rc == 0 ? admin_op_new(d, call, name, "schedule.create") : NULL;
  if (rc == 0 && op == NULL) rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
  if (rc != 0) {
    free(json);
    mu_audit_record(d, call, "schedule.create", name, rc == MU_EPERM ? MU_AUDIT_DENIED : MU_AUDIT_REFUSED, err.msg,
                    NULL);
    int code = rc == MU_ENOENT ? MU_RPC_INVALID_ARGUMENT : mu_rpc_code_from_err(rc);
    mu_pb_fail(call, code, "%s", err.msg);
    return;
  }
  op->json = json;
  char rel[200];
  snprintf(rel, sizeof rel, "schedules/%s", name);
  mu_schedules_write_create(d->schedules, rel, json, on_create, op);
}

static void list_schedules(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListSchedulesRequest *req = (const Muster__V1__ListSchedulesRequest *)req_msg;
  (void)md;
  mu_schedules *ss = d->schedules;
  Muster__V1__ListSchedulesResponse resp = MUSTER__V1__LIST_SCHEDULES_RESPONSE__INIT;
  Muster__V1__Schedule **views = calloc(ss->n + 1, sizeof *views);
  if (views == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t plen = strlen(req->name_prefix);
  for (size_t i = 0; i < ss->n; i++) {
    if (strncmp(ss->items[i]->name, req->name_prefix, plen) != 0) continue;
    views[resp.n_schedules] = mu_schedules_view(ss, ss->items[i], 0);
    if (views[resp.n_schedules] != NULL) resp.n_schedules++;
  }
  resp.schedules = views;
  mu_pb_reply(call, &resp.base);
  for (size_t i = 0; i < resp.n_schedules; i++) mu_schedules_view_free(views[i]);
  free(views);
}

static void get_schedule(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__GetScheduleRequest *req = (const Muster__V1__GetScheduleRequest *)req_msg;
  (void)md;
  mu_schedule *sc = find_or_fail(ud, call, req->name);
  if (sc != NULL) reply_view(ud, call, sc, 1);
}

/* Pause or resume: the record with paused changed (resume also moves from_s to now: the
 * slots of the paused time are not caught up). */
static void set_paused(mu_rpc_call *call, const ProtobufCMessage *req_msg, void *ud, int paused) {
  mu_daemon *d = ud;
  mu_schedule *sc = NULL;
  admin_op *op = begin_write(d, call, req_msg, paused ? "schedule.pause" : "schedule.resume", &sc);
  if (op == NULL) return;
  Muster__V1__ScheduleRecord rec = *sc->rec;
  Muster__V1__ScheduleSpec spec = *sc->rec->spec;
  rec.spec = &spec;
  spec.paused = paused != 0;
  rec.updated_at_ms = mu_now_ms();
  if (!paused && sc->rec->spec->paused) rec.from_s = rec.updated_at_ms / 1000;
  op->json = mu_schedules_record_json(&rec);
  if (op->json == NULL) {
    admin_op_free(op);
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  char rel[200];
  snprintf(rel, sizeof rel, "schedules/%s", sc->name);
  mu_schedules_write_put(d->schedules, rel, op->json, on_put, op);
}

static void pause_schedule(mu_rpc_call *call, const ProtobufCMessage *req, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  set_paused(call, req, ud, 1);
}

static void resume_schedule(mu_rpc_call *call, const ProtobufCMessage *req, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  set_paused(call, req, ud, 0);
}

static void on_deleted(void *ud, const mu_err *err) {
  admin_op *op = ud;
  mu_daemon *d = op->d;
  if (err != NULL) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, err->msg, NULL);
    mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "schedule '%s' not deleted: %s", op->name, err->msg);
  } else {
    mu_schedules_remove(d->schedules, op->name);
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_OK, NULL, "slots=%u", op->slots);
    Muster__V1__DeleteScheduleResponse resp = MUSTER__V1__DELETE_SCHEDULE_RESPONSE__INIT;
    resp.name = op->name;
    resp.slots_deleted = op->slots;
    mu_pb_reply(op->call, &resp.base);
  }
  admin_op_free(op);
}

static void delete_schedule(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  mu_schedule *sc = NULL;
  (void)md;
  admin_op *op = begin_write(d, call, req_msg, "schedule.delete", &sc);
  if (op == NULL) return;
  op->slots = (uint32_t)sc->n_slots;
  char rel[200];
  snprintf(rel, sizeof rel, "schedules/%s", sc->name);
  mu_schedules_write_delete_tree(d->schedules, rel, on_deleted, op);
}

static void on_triggered(void *ud, const char *job_id, int64_t slot_s, const mu_err *err) {
  admin_op *op = ud;
  mu_daemon *d = op->d;
  if (err != NULL) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, err->msg, NULL);
    mu_pb_fail(op->call, err->code == MU_EINVAL ? MU_RPC_FAILED_PRECONDITION : MU_RPC_UNAVAILABLE,
               "schedule '%s' not fired: %s", op->name, err->msg);
  } else {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_OK, NULL, "job=%s", job_id);
    Muster__V1__TriggerScheduleResponse resp = MUSTER__V1__TRIGGER_SCHEDULE_RESPONSE__INIT;
    resp.name = op->name;
    resp.job_id = (char *)job_id;
    resp.slot_s = slot_s;
    mu_pb_reply(op->call, &resp.base);
  }
  admin_op_free(op);
}

static void trigger_schedule(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  mu_schedule *sc = NULL;
  (void)md;
  admin_op *op = begin_write(d, call, req_msg, "schedule.trigger", &sc);
  if (op == NULL) return;
  mu_schedules_trigger(d->schedules, sc, on_triggered, op);
}

int mu_schedules_register(mu_daemon *d, mu_err *err) {
  static const mu_pb_method methods[] = {
      {"/muster.v1.Schedules/CreateSchedule", &muster__v1__create_schedule_request__descriptor, create_schedule},
      {"/muster.v1.Schedules/ListSchedules", &muster__v1__list_schedules_request__descriptor, list_schedules},
      {"/muster.v1.Schedules/GetSchedule", &muster__v1__get_schedule_request__descriptor, get_schedule},
      {"/muster.v1.Schedules/PauseSchedule", &muster__v1__schedule_name_request__descriptor, pause_schedule},
      {"/muster.v1.Schedules/ResumeSchedule", &muster__v1__schedule_name_request__descriptor, resume_schedule},
      {"/muster.v1.Schedules/DeleteSchedule", &muster__v1__schedule_name_request__descriptor, delete_schedule},
      {"/muster.v1.Schedules/TriggerSchedule", &muster__v1__schedule_name_request__descriptor, trigger_schedule},
  };
  return mu_pb_add_unaries(d->server, methods, sizeof methods / sizeof methods[0], d, err);
}
