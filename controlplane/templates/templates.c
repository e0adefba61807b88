/* Job templates (see templates.h): the records in memory, and muster.v1.Templates. A create
 * is checked by dispatching the template once with its defaults ("x" for a required param)
 * through exactly what Dispatch does, so an undeclared ${param.KEY} or a job SubmitJob would
 * refuse is refused before anything is stored. */
#include "controlplane/templates/templates.h"

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
#include "controlplane/templates/params.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "muster/v1/schedule.pb-c.h"
#include "muster/v1/store.pb-c.h"

#define LOG "templates"
#define PREFIX "templates/"

typedef struct mu_templates {
  mu_daemon *d;
  Muster__V1__TemplateRecord **items; /* owned (unpacked), sorted by name */
  size_t n, cap, max;
} mu_templates;

static const char *name_of(const Muster__V1__TemplateRecord *r) {
  return r->info && r->info->template_ && r->info->template_->name ? r->info->template_->name : "";
}

int mu_templates_init(mu_daemon *d, size_t max_templates, mu_err *err) {
  mu_templates *ts = calloc(1, sizeof *ts);
  if (ts == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  ts->d = d;
  ts->max = max_templates ? max_templates : MU_TEMPLATES_DEFAULT_MAX;
  d->templates = ts;
  return 0;
}

static void reset(mu_templates *ts) {
  for (size_t i = 0; i < ts->n; i++) protobuf_c_message_free_unpacked(&ts->items[i]->base, NULL);
  ts->n = 0;
}

void mu_templates_free(mu_daemon *d) {
  mu_templates *ts = d->templates;
  if (ts == NULL) return;
  reset(ts);
  free(ts->items);
  free(ts);
  d->templates = NULL;
}

/* The index of name, or where it would go (*ret_found 0). */
static size_t find_index(const mu_templates *ts, const char *name, int *ret_found) {
  size_t lo = 0, hi = ts->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(name_of(ts->items[mid]), name);
    if (c == 0) {
      *ret_found = 1;
      return mid;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  *ret_found = 0;
  return lo;
}

static Muster__V1__TemplateRecord *find(const mu_templates *ts, const char *name) {
  int found = 0;
  size_t i = find_index(ts, name, &found);
  return found ? ts->items[i] : NULL;
}

static void remove_named(mu_templates *ts, const char *name) {
  int found = 0;
  size_t i = find_index(ts, name, &found);
  if (!found) return;
  protobuf_c_message_free_unpacked(&ts->items[i]->base, NULL);
  memmove(&ts->items[i], &ts->items[i + 1], (ts->n - i - 1) * sizeof *ts->items);
  ts->n--;
}

/* Takes rec (freed on error). */
static int put(mu_templates *ts, Muster__V1__TemplateRecord *rec, mu_err *err) {
  if (rec->info == NULL || rec->info->template_ == NULL || rec->info->template_->job == NULL) {
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return mu_err_set(err, MU_EINVAL, "template record without its template or job");
  }
  int found = 0;
  size_t i = find_index(ts, name_of(rec), &found);
  if (found) {
    protobuf_c_message_free_unpacked(&ts->items[i]->base, NULL);
    ts->items[i] = rec;
    return 0;
  }
  if (ts->n == ts->cap) {
    size_t cap = ts->cap ? ts->cap * 2 : 16;
    Muster__V1__TemplateRecord **items = realloc(ts->items, cap * sizeof *items);
    if (items == NULL) {
      protobuf_c_message_free_unpacked(&rec->base, NULL);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    ts->items = items;
    ts->cap = cap;
  }
  memmove(&ts->items[i + 1], &ts->items[i], (ts->n - i) * sizeof *ts->items);
  ts->items[i] = rec;
  ts->n++;
  return 0;
}

static int adopt(mu_templates *ts, const char *json, size_t len, mu_err *err) {
  ProtobufCMessage *m = NULL;
  int rc = mu_record_decode(&muster__v1__template_record__descriptor, json, len, &m, err);
  if (rc == 0) rc = put(ts, (Muster__V1__TemplateRecord *)m, err);
  return rc;
}

void mu_templates_on_snapshot_begin(mu_daemon *d) { reset(d->templates); }

void mu_templates_on_record(mu_daemon *d, const char *rel, const char *value, size_t len) {
  const char *name = mu_record_leaf(rel, PREFIX);
  if (name == NULL) return;
  if (value == NULL) {
    remove_named(d->templates, name);
    return;
  }
  mu_err err = {0};
  if (adopt(d->templates, value, len, &err) != 0) mu_warn(LOG, "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
}

/* --- dispatch: params resolved, replaced, the job made --- */

/* The job of t with args replaced into *ret_spec (owned by the caller). */
static int instantiate(const Muster__V1__JobTemplate *t, const char *const *args, size_t n_args,
                       Muster__V1__JobSpec **ret_spec, mu_err *err) {
  mu_template_param decls[MU_TEMPLATE_PARAMS_MAX];
  if (t->n_params > MU_TEMPLATE_PARAMS_MAX)
    return mu_err_set(err, MU_EINVAL, "params: %zu declared, at most %d", t->n_params, MU_TEMPLATE_PARAMS_MAX);
  for (size_t i = 0; i < t->n_params; i++) {
    const Muster__V1__TemplateParam *p = t->params[i];
    decls[i] = (mu_template_param){.name = p->name,
                                   .required = p->required,
                                   .default_value = p->required ? NULL : p->default_value,
                                   .description = p->description};
  }
  mu_template_values vals;
  int rc = mu_template_params_check(decls, t->n_params, err);
  if (rc == 0) rc = mu_template_values_resolve(decls, t->n_params, args, n_args, &vals, err);
  if (rc != 0) return rc;
  Muster__V1__JobSpec *spec = mu_jobspec_copy(t->job);
  if (spec == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc == 0) rc = mu_template_subst_spec(spec, &vals, err);
  mu_template_values_free(&vals);
  if (rc != 0) {
    if (spec != NULL) protobuf_c_message_free_unpacked(&spec->base, NULL);
    return rc;
  }
  *ret_spec = spec;
  return 0;
}

int mu_templates_instantiate(mu_daemon *d, const char *name, const char *const *args, size_t n_args,
                             Muster__V1__JobSpec **ret_spec, mu_err *err) {
  const Muster__V1__TemplateRecord *rec = find(d->templates, name);
  if (rec == NULL || rec->info == NULL || rec->info->template_ == NULL)
    return mu_err_set(err, MU_ENOENT, "no template '%.64s'", name);
  return instantiate(rec->info->template_, args, n_args, ret_spec, err);
}

/* Args that dispatch t with its defaults and "x" for each required param (create's check). */
static int check_template(mu_daemon *d, mu_rpc_call *call, const Muster__V1__JobTemplate *t, mu_err *err) {
  char args_buf[MU_TEMPLATE_PARAMS_MAX][MU_TEMPLATE_PARAM_NAME_MAX + 4];
  const char *args[MU_TEMPLATE_PARAMS_MAX];
  size_t n = 0;
  for (size_t i = 0; i < t->n_params && n < MU_TEMPLATE_PARAMS_MAX; i++) {
    if (!t->params[i]->required) continue;
    snprintf(args_buf[n], sizeof args_buf[n], "%.64s=x", t->params[i]->name);
    args[n] = args_buf[n];
    n++;
  }
  Muster__V1__JobSpec *spec = NULL;
  int rc = instantiate(t, args, n, &spec, err);
  if (rc != 0) return rc;
  mu_rollout ro;
  char **ids = NULL;
  size_t n_ids = 0;
  rc = mu_sched_admit(d->sched, spec, mu_authz_caller(call), &ro, &ids, &n_ids, err);
  if (rc != 0) return mu_err_prefix(err, "job"); /* admit freed spec */
  free(ids);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  return 0;
}

/* --- calls --- */

typedef struct admin_op {
  mu_daemon *d;
  mu_rpc_call *call;
  char name[MU_SCHEDULE_NAME_MAX + 1];
  char *json;
  const char *action;
} admin_op;

static admin_op *op_new(mu_daemon *d, mu_rpc_call *call, const char *name, const char *action) {
  admin_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->d = d;
  op->call = call;
  op->action = action;
  snprintf(op->name, sizeof op->name, "%s", name);
  return op;
}

static void op_free(admin_op *op) {
  free(op->json);
  free(op);
}

static void fail(mu_daemon *d, mu_rpc_call *call, const char *action, const char *name, int rc, const char *msg) {
  mu_audit_record(d, call, action, name, rc == MU_EPERM ? MU_AUDIT_DENIED : MU_AUDIT_REFUSED, msg, NULL);
  int code = rc == MU_ENOENT ? MU_RPC_NOT_FOUND : mu_rpc_code_from_err(rc);
  mu_pb_fail(call, code, "%s", msg);
}

static void on_created(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err) {
  admin_op *op = ud;
  mu_daemon *d = op->d;
  mu_err aerr = {0};
  (void)existing;
  if (err == NULL && !created) {
    fail(d, op->call, op->action, op->name, MU_EEXIST, "exists already");
  } else if (err == NULL && adopt(d->templates, op->json, strlen(op->json), &aerr) != 0) {
    fail(d, op->call, op->action, op->name, aerr.code, aerr.msg);
  } else if (err != NULL) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, err->msg, NULL);
    if (!(err->code == MU_EPERM && mu_cluster_check_write(d, op->call) != 0))
      mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "template '%s' not stored: %s", op->name, err->msg);
  } else {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_OK, NULL, NULL);
    Muster__V1__TemplateRecord *rec = find(d->templates, op->name);
    mu_pb_reply(op->call, &rec->info->base);
  }
  op_free(op);
}

static void create_template(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__CreateTemplateRequest *req = (const Muster__V1__CreateTemplateRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  const Muster__V1__JobTemplate *t = req->template_;
  const char *name = t && t->name ? t->name : "";
  mu_err err = {0};
  int rc = 0;
  char *json = NULL;
  if (t == NULL || t->job == NULL) rc = mu_err_set(&err, MU_EINVAL, "template.job: required (the job spec)");
  if (rc == 0) rc = mu_schedule_name_check(name, &err);
  if (rc == 0 && find(d->templates, name) != NULL)
    rc = mu_err_set(&err, MU_EEXIST, "template '%s' exists already", name);
  if (rc == 0 && d->templates->n >= d->templates->max)
    rc = mu_err_set(&err, MU_ENOSPC, "%zu templates exist, the most this control plane keeps", d->templates->n);
  if (rc == 0) rc = check_template(d, call, t, &err);
  if (rc == 0) {
    char who[200] = "";
    const mu_caller *c = mu_authz_caller(call);
    if (c != NULL) mu_caller_describe(c, who, sizeof who);
    Muster__V1__JobTemplateInfo info = MUSTER__V1__JOB_TEMPLATE_INFO__INIT;
    Muster__V1__TemplateRecord rec = MUSTER__V1__TEMPLATE_RECORD__INIT;
    info.template_ = (Muster__V1__JobTemplate *)t;
    info.created_at_ms = mu_now_ms();
    info.created_by = who;
    rec.v = MU_RECORD_VERSION;
    rec.info = &info;
    if (mu_record_encode(&rec.base, &json, &err) != 0) rc = err.code;
  }
  admin_op *op = rc == 0 ? op_new(d, call, name, "template.create") : NULL;
  if (rc == 0 && op == NULL) rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
  if (rc != 0) {
    free(json);
    fail(d, call, "template.create", name, rc == MU_ENOENT ? MU_EINVAL : rc, err.msg);
    return;
  }
  op->json = json;
  char rel[200];
  snprintf(rel, sizeof rel, PREFIX "%s", op->name);
  mu_schedules_write_create(d->schedules, rel, json, on_created, op);
}

static void list_templates(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListTemplatesRequest *req = (const Muster__V1__ListTemplatesRequest *)req_msg;
  (void)md;
  mu_templates *ts = d->templates;
  Muster__V1__ListTemplatesResponse resp = MUSTER__V1__LIST_TEMPLATES_RESPONSE__INIT;
  Muster__V1__JobTemplateInfo **views = calloc(ts->n + 1, sizeof *views);
  if (views == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t plen = strlen(req->name_prefix);
  for (size_t i = 0; i < ts->n; i++)
    if (strncmp(name_of(ts->items[i]), req->name_prefix, plen) == 0) views[resp.n_templates++] = ts->items[i]->info;
  resp.templates = views;
  mu_pb_reply(call, &resp.base);
  free(views);
}

static Muster__V1__TemplateRecord *find_or_fail(mu_daemon *d, mu_rpc_call *call, const char *name) {
  Muster__V1__TemplateRecord *rec = name[0] ? find(d->templates, name) : NULL;
  if (rec == NULL) {
    if (name[0] == '\0') mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "name: required");
    else mu_pb_fail(call, MU_RPC_NOT_FOUND, "no template '%.64s'", name);
  }
  return rec;
}

static void get_template(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__TemplateNameRequest *req = (const Muster__V1__TemplateNameRequest *)req_msg;
  (void)md;
  Muster__V1__TemplateRecord *rec = find_or_fail(ud, call, req->name);
  if (rec != NULL) mu_pb_reply(call, &rec->info->base);
}

static void on_deleted(void *ud, const mu_err *err) {
  admin_op *op = ud;
  mu_daemon *d = op->d;
  if (err != NULL) {
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_REFUSED, err->msg, NULL);
    mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "template '%s' not deleted: %s", op->name, err->msg);
  } else {
    Muster__V1__TemplateRecord *rec = find(d->templates, op->name);
    mu_audit_record(d, op->call, op->action, op->name, MU_AUDIT_OK, NULL, NULL);
    if (rec != NULL) {
      mu_pb_reply(op->call, &rec->info->base);
    } else { /* the delete's own record event came first */
      Muster__V1__JobTemplateInfo info = MUSTER__V1__JOB_TEMPLATE_INFO__INIT;
      mu_pb_reply(op->call, &info.base);
    }
    remove_named(d->templates, op->name);
  }
  op_free(op);
}

static void delete_template(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__TemplateNameRequest *req = (const Muster__V1__TemplateNameRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  if (find_or_fail(d, call, req->name) == NULL) return;
  admin_op *op = op_new(d, call, req->name, "template.delete");
  if (op == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  char rel[200];
  snprintf(rel, sizeof rel, PREFIX "%s", op->name);
  mu_schedules_write_delete_tree(d->schedules, rel, on_deleted, op);
}

static void dispatch(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__DispatchRequest *req = (const Muster__V1__DispatchRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  Muster__V1__TemplateRecord *rec = find_or_fail(d, call, req->name);
  if (rec == NULL) return;
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  int rc = instantiate(rec->info->template_, (const char *const *)req->params, req->n_params, &spec, &err);
  if (rc != 0) {
    fail(d, call, "template.dispatch", req->name, rc, err.msg);
    return;
  }
  mu_audit_record(d, call, "template.dispatch", req->name, MU_AUDIT_OK, NULL, "params=%zu", req->n_params);
  mu_admin_submit_spec(d, call, spec, req->dry_run);
}

int mu_templates_register(mu_daemon *d, mu_err *err) {
  static const mu_pb_method methods[] = {
      {"/muster.v1.Templates/CreateTemplate", &muster__v1__create_template_request__descriptor, create_template},
      {"/muster.v1.Templates/ListTemplates", &muster__v1__list_templates_request__descriptor, list_templates},
      {"/muster.v1.Templates/GetTemplate", &muster__v1__template_name_request__descriptor, get_template},
      {"/muster.v1.Templates/DeleteTemplate", &muster__v1__template_name_request__descriptor, delete_template},
      {"/muster.v1.Templates/Dispatch", &muster__v1__dispatch_request__descriptor, dispatch},
  };
  return mu_pb_add_unaries(d->server, methods, sizeof methods / sizeof methods[0], d, err);
}
