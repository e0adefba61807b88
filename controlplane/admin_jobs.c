/* The job side of muster.v1.Admin: SubmitJob, RunAdhoc, GetJob, ListJobs, CancelJob (unary)
 * and the server stream WatchJob (history first, then live events). TaskLogs lives in
 * task_logs.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/persist.h"
#include "controlplane/scheduler.h"
#include "controlplane/stage_run.h"
#include "controlplane/task_logs.h"
#include "lib/base/log.h"
#include "lib/pbjson/pbjson.h"
#include "lib/rpc/pb.h"

static void reply_submitted(mu_rpc_call *call, mu_job *job) {
  Muster__V1__SubmitJobResponse resp = MUSTER__V1__SUBMIT_JOB_RESPONSE__INIT;
  resp.job_id = job->id;
  resp.targets = (uint32_t)job->n_hosts;
  mu_pb_reply(call, &resp.base);
}

/* A dry run: the plan, or the refusal a submit would get (from the leader, which knows which
 * agents are connected). */
static void plan_spec(mu_daemon *d, mu_rpc_call *call, Muster__V1__JobSpec *spec) {
  Muster__V1__JobPlan *plan = NULL;
  mu_err err = {0};
  if (mu_sched_plan(d, spec, mu_authz_caller(call), &plan, &err) != 0) {
    mu_pb_fail(call, mu_rpc_code_from_err(err.code), "%s", err.msg);
    return;
  }
  Muster__V1__SubmitJobResponse resp = MUSTER__V1__SUBMIT_JOB_RESPONSE__INIT;
  resp.targets = (uint32_t)plan->n_targets;
  resp.plan = plan;
  mu_pb_reply(call, &resp.base);
  protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void submit_spec(mu_daemon *d, mu_rpc_call *call, Muster__V1__JobSpec *spec, int dry_run) {
  mu_job *job = NULL;
  mu_err err = {0};
  if (spec == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (mu_cluster_check_write(d, call) != 0) {
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    return;
  }
  if (dry_run) {
    plan_spec(d, call, spec);
    return;
  }
  char name[128];
  snprintf(name, sizeof name, "%s", spec->name); /* the spec is taken in every case */
  if (mu_sched_submit(d->sched, spec, mu_authz_caller(call), &job, &err) != 0) {
    mu_audit_record(d, call, "job.submit", "", err.code == MU_EPERM ? MU_AUDIT_DENIED : MU_AUDIT_REFUSED, err.msg,
                    "name='%.120s'", name);
    mu_pb_fail(call, mu_rpc_code_from_err(err.code), "%s", err.msg);
    return;
  }
  mu_audit_record(d, call, "job.submit", job->id, MU_AUDIT_OK, NULL, "name='%.120s' targets=%zu tasks=%zu",
                  job->spec->name, job->n_hosts, job->spec->n_tasks);
  if (job->submit_pending) mu_persist_submit(d, job, call); /* answers once etcd holds the job */
  else reply_submitted(call, job);
}

void mu_admin_submit_spec(mu_daemon *d, mu_rpc_call *call, Muster__V1__JobSpec *spec, int dry_run) {
  submit_spec(d, call, spec, dry_run);
}

static void submit_job(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__SubmitJobRequest *req = (const Muster__V1__SubmitJobRequest *)req_msg;
  (void)md;
  if (req->spec == NULL) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "spec: required");
    return;
  }
  submit_spec(ud, call, mu_jobspec_copy(req->spec), req->dry_run); /* req is freed on return */
}

/* RunAdhoc is the one-task job: `muster run [--type T] -- CMD` (built by mu_jobspec_adhoc). */
static void run_adhoc(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__RunAdhocRequest *req = (const Muster__V1__RunAdhocRequest *)req_msg;
  (void)md;
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_jobspec_adhoc(req, &spec, &err) != 0) {
    mu_pb_fail(call, err.code == MU_ENOMEM ? MU_RPC_RESOURCE_EXHAUSTED : MU_RPC_INVALID_ARGUMENT, "%s", err.msg);
    return;
  }
  submit_spec(ud, call, spec, req->dry_run);
}

static mu_job *find_or_fail(mu_daemon *d, mu_rpc_call *call, const char *id) {
  mu_job *job = id[0] ? mu_sched_find(d->sched, id) : NULL;
  if (job != NULL && !job->ready) job = NULL; /* not stored yet (or an interrupted submit) */
  if (job == NULL) {
    if (id[0] == '\0') mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "job_id: required");
    else if (mu_cluster_redirect_unknown(d, call, id) == 0) mu_sched_fail_not_found(d->sched, call, id);
  }
  return job;
}

static void get_job(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__GetJobRequest *req = (const Muster__V1__GetJobRequest *)req_msg;
  (void)md;
  mu_job *job = find_or_fail(ud, call, req->job_id);
  if (job == NULL) return;
  Muster__V1__Job *view = mu_job_view(job, req->include_tasks);
  if (view == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  mu_stage_run_view(((mu_daemon *)ud)->sched, job, view);
  mu_pb_reply(call, &view->base);
  mu_job_view_free(view);
}

static void list_jobs(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListJobsRequest *req = (const Muster__V1__ListJobsRequest *)req_msg;
  (void)md;
  size_t page = req->page_size ? req->page_size : 100;
  if (page > 1000) page = 1000;
  size_t skip = 0;
  if (req->page_token[0] != '\0') {
    char *end;
    skip = strtoul(req->page_token, &end, 10);
    if (*end != '\0') {
      mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "page_token: '%s' is not a token from ListJobs", req->page_token);
      return;
    }
  }
  Muster__V1__Job **views = calloc(page + 1, sizeof *views);
  Muster__V1__ListJobsResponse resp = MUSTER__V1__LIST_JOBS_RESPONSE__INIT;
  char token[32] = "";
  size_t matched = 0;
  for (mu_job *j = d->sched->jobs; j != NULL && views != NULL; j = j->next) {
    if (!j->ready) continue;
    if (req->state != MUSTER__V1__JOB_STATE__JOB_STATE_UNSPECIFIED && j->state != req->state) continue;
    if (strncmp(j->spec->name, req->name_prefix, strlen(req->name_prefix)) != 0) continue;
    if (matched++ < skip) continue;
    if (resp.n_jobs == page) {
      snprintf(token, sizeof token, "%zu", skip + page);
      break;
    }
    views[resp.n_jobs] = mu_job_view(j, 0);
    if (views[resp.n_jobs] != NULL) mu_stage_run_view(d->sched, j, views[resp.n_jobs]);
    if (views[resp.n_jobs] != NULL) resp.n_jobs++;
  }
  resp.jobs = views;
  resp.next_page_token = token;
  mu_pb_reply(call, &resp.base);
  for (size_t i = 0; i < resp.n_jobs; i++) mu_job_view_free(views[i]);
  free(views);
}

/* A scoped operator may cancel only jobs whose placed hosts are all inside its scope. */
static int check_job_scope(mu_daemon *d, mu_rpc_call *call, const mu_job *job, mu_err *err) {
  char **ids = calloc(job->n_hosts ? job->n_hosts : 1, sizeof *ids);
  if (ids == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; i < job->n_hosts; i++) ids[i] = job->hosts[i].agent_id;
  int rc = mu_authz_check_targets(d, mu_authz_caller(call), ids, job->n_hosts, err);
  free(ids);
  return rc;
}

static void cancel_job(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__CancelJobRequest *req = (const Muster__V1__CancelJobRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(ud, call) != 0) return;
  mu_job *job = find_or_fail(ud, call, req->job_id);
  if (job == NULL) return;
  uint32_t n = 0;
  mu_err err = {0};
  if (check_job_scope(ud, call, job, &err) != 0) {
    mu_audit_record(ud, call, "job.cancel", job->id, MU_AUDIT_DENIED, err.msg, NULL);
    mu_pb_fail(call, MU_RPC_PERMISSION_DENIED, "%s", err.msg);
    return;
  }
  if (mu_sched_cancel_ex(((mu_daemon *)ud)->sched, job, req->reason, req->force, &n, &err) != 0) {
    mu_audit_record(ud, call, "job.cancel", job->id, MU_AUDIT_REFUSED, err.msg, NULL);
    mu_pb_fail(call, MU_RPC_FAILED_PRECONDITION, "%s", err.msg);
    return;
  }
  mu_audit_record(ud, call, "job.cancel", job->id, MU_AUDIT_OK, NULL, "cancelling=%u%s reason='%.200s'", n,
                  req->force ? " force" : "", req->reason);
  Muster__V1__CancelJobResponse resp = MUSTER__V1__CANCEL_JOB_RESPONSE__INIT;
  resp.cancelled_tasks = n;
  mu_pb_reply(call, &resp.base);
}

/* HoldJob / ReleaseJob: scoped like CancelJob, audited as job.hold / job.release. */
static void hold_or_release(mu_rpc_call *call, const ProtobufCMessage *req_msg, void *ud, int hold) {
  const Muster__V1__HoldJobRequest *req = (const Muster__V1__HoldJobRequest *)req_msg;
  const char *action = hold ? "job.hold" : "job.release";
  if (mu_cluster_check_write(ud, call) != 0) return;
  mu_job *job = find_or_fail(ud, call, req->job_id);
  if (job == NULL) return;
  mu_err err = {0};
  if (check_job_scope(ud, call, job, &err) != 0) {
    mu_audit_record(ud, call, action, job->id, MU_AUDIT_DENIED, err.msg, NULL);
    mu_pb_fail(call, MU_RPC_PERMISSION_DENIED, "%s", err.msg);
    return;
  }
  if (mu_sched_hold(((mu_daemon *)ud)->sched, job, hold, &err) != 0) {
    mu_audit_record(ud, call, action, job->id, MU_AUDIT_REFUSED, err.msg, NULL);
    mu_pb_fail(call, MU_RPC_FAILED_PRECONDITION, "%s", err.msg);
    return;
  }
  mu_audit_record(ud, call, action, job->id, MU_AUDIT_OK, NULL, "reason='%.200s'", req->reason);
  Muster__V1__HoldJobResponse resp = MUSTER__V1__HOLD_JOB_RESPONSE__INIT;
  resp.state = job->state;
  mu_pb_reply(call, &resp.base);
}

static void hold_job(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  hold_or_release(call, req_msg, ud, 1);
}

static void release_job(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  hold_or_release(call, req_msg, ud, 0);
}

/* --- server streams --- */

typedef struct stream_ctx {
  mu_daemon *daemon;
  int got_request;
  mu_watcher *watcher;
} stream_ctx;

static void start_watch(stream_ctx *sc, mu_rpc_call *call, const char *job_id) {
  mu_job *job = find_or_fail(sc->daemon, call, job_id);
  if (job == NULL) return;
  for (size_t i = 0; i < job->n_history; i++)
    if (mu_rpc_call_send(call, job->history[i], job->history_len[i], NULL) != 0) {
      mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "history too large to send");
      return;
    }
  if (mu_job_finished(job)) {
    mu_rpc_call_finish(call, MU_RPC_OK, "", NULL);
    return;
  }
  sc->watcher = calloc(1, sizeof *sc->watcher);
  if (sc->watcher == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  sc->watcher->call = call;
  mu_job_add_watcher(job, sc->watcher);
}

static int stream_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  stream_ctx *sc = ud;
  if (sc->got_request) return 1;
  sc->got_request = 1;
  Muster__V1__WatchJobRequest *req = muster__v1__watch_job_request__unpack(NULL, len, data);
  mu_err err = {0};
  if (req == NULL || mu_pbjson_proto3_check(&req->base, &err) != 0) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "malformed WatchJobRequest%s%s", req ? ": " : "", err.msg);
    if (req != NULL) protobuf_c_message_free_unpacked(&req->base, NULL);
    return 1;
  }
  start_watch(sc, call, req->job_id);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  return 1;
}

static void stream_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  stream_ctx *sc = ud;
  (void)call;
  (void)st;
  if (sc->watcher != NULL) {
    mu_watcher_unlink(sc->watcher);
    free(sc->watcher->task_id);
    free(sc->watcher);
  }
  free(sc);
}

static void on_watch(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)md;
  stream_ctx *sc = calloc(1, sizeof *sc);
  if (sc == NULL) {
    mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  sc->daemon = d;
  mu_rpc_call_handlers h = {.on_message = stream_on_message, .on_done = stream_on_done};
  mu_rpc_call_start(call, &h, sc);
}

int mu_admin_jobs_register(mu_daemon *d, mu_err *err) {
  static const mu_pb_method unary[] = {
      {"/muster.v1.Admin/SubmitJob", &muster__v1__submit_job_request__descriptor, submit_job},
      {"/muster.v1.Admin/RunAdhoc", &muster__v1__run_adhoc_request__descriptor, run_adhoc},
      {"/muster.v1.Admin/GetJob", &muster__v1__get_job_request__descriptor, get_job},
      {"/muster.v1.Admin/ListJobs", &muster__v1__list_jobs_request__descriptor, list_jobs},
      {"/muster.v1.Admin/CancelJob", &muster__v1__cancel_job_request__descriptor, cancel_job},
      {"/muster.v1.Admin/HoldJob", &muster__v1__hold_job_request__descriptor, hold_job},
      {"/muster.v1.Admin/ReleaseJob", &muster__v1__hold_job_request__descriptor, release_job},
  };
  int rc = mu_pb_add_unaries(d->server, unary, sizeof unary / sizeof unary[0], d, err);
  if (rc == 0) rc = mu_rpc_server_add_method(d->server, "/muster.v1.Admin/WatchJob", on_watch, d, err);
  if (rc == 0) rc = mu_task_logs_register(d, err); /* task_logs.c */
  return rc;
}
