/* Admin/TaskAction: asks the running attempt of a task (by name, in one job or the newest
 * unfinished job running it) to act without ending: a ControlMessage.task_action to each agent
 * running it; the task type answers through its output params (a Flink savepoint lands in the
 * savepoint catalogue, savepoints.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/run_history.h"
#include "controlplane/savepoints.h"
#include "controlplane/scheduler.h"
#include "lib/rpc/pb.h"

#define MU_TASK_ACTION_MAX_HOSTS 1000 /* attempts asked by one call */

static int task_index(const mu_job *job, const char *name) {
  for (size_t i = 0; i < job->spec->n_tasks; i++)
    if (strcmp(job->spec->tasks[i]->name, name) == 0) return (int)i;
  return -1;
}

static int running_here(const mu_host_run *h, int idx) {
  return h->state == MU_HOST_RUNNING && h->current == (size_t)idx &&
         h->tasks[idx].state == MUSTER__V1__TASK_STATE__RUNNING && h->agent_id != NULL;
}

/* The job named by req, or the newest unfinished one with a running task of that name. */
static mu_job *pick_job(mu_daemon *d, const Muster__V1__TaskActionRequest *req, int *ret_idx) {
  for (mu_job *j = d->sched->jobs; j != NULL; j = j->next) {
    if (!j->ready || (req->job_id[0] != '\0' && strcmp(j->id, req->job_id) != 0)) continue;
    int idx = task_index(j, req->task_name);
    if (idx < 0) continue;
    for (size_t h = 0; h < j->n_hosts; h++)
      if (running_here(&j->hosts[h], idx)) {
        *ret_idx = idx;
        return j;
      }
  }
  return NULL;
}

static void task_action(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__TaskActionRequest *req = (const Muster__V1__TaskActionRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  if (strcmp(req->action, "savepoint") != 0) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "action: \"%.100s\" is not one of: savepoint", req->action);
    return;
  }
  if (req->task_name[0] == '\0') {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "task_name: required");
    return;
  }
  int idx = -1;
  mu_job *job = pick_job(d, req, &idx);
  if (job == NULL) {
    mu_pb_fail(call, MU_RPC_FAILED_PRECONDITION, "no RUNNING task named '%.128s'%s%.128s", req->task_name,
               req->job_id[0] ? " in job " : "", req->job_id);
    return;
  }
  char *ids[MU_TASK_ACTION_MAX_HOSTS];
  size_t n_ids = 0;
  char *agent_ids[MU_TASK_ACTION_MAX_HOSTS];
  for (size_t h = 0; h < job->n_hosts && n_ids < MU_TASK_ACTION_MAX_HOSTS; h++)
    if (running_here(&job->hosts[h], idx)) agent_ids[n_ids++] = job->hosts[h].agent_id;
  mu_err err = {0};
  if (mu_authz_check_targets(d, mu_authz_caller(call), agent_ids, n_ids, &err) != 0 ||
      mu_authz_check_type(mu_authz_caller(call), job->spec->tasks[idx]->type, &err) != 0) {
    mu_audit_record(d, call, "task.action", job->id, MU_AUDIT_DENIED, err.msg, NULL);
    mu_pb_fail(call, MU_RPC_PERMISSION_DENIED, "%s", err.msg);
    return;
  }
  size_t n_sent = 0;
  for (size_t h = 0; h < job->n_hosts; h++) {
    mu_host_run *hr = &job->hosts[h];
    if (!running_here(hr, idx)) continue;
    mu_agent *a = mu_registry_find(&d->registry, hr->agent_id);
    if (a == NULL || a->session == NULL) continue;
    Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
    Muster__V1__TaskAction ta = MUSTER__V1__TASK_ACTION__INIT;
    ta.task_id = hr->tasks[idx].task_id;
    ta.attempt = hr->tasks[idx].attempt;
    ta.action = req->action;
    msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_TASK_ACTION;
    msg.task_action = &ta;
    if (mu_gateway_send(a, &msg, NULL) == 0 && n_sent < MU_TASK_ACTION_MAX_HOSTS) ids[n_sent++] = ta.task_id;
  }
  if (n_sent == 0) {
    mu_audit_record(d, call, "task.action", job->id, MU_AUDIT_REFUSED, "no agent reachable", NULL);
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "task '%.128s' of job %s: its agents are not connected", req->task_name,
               job->id);
    return;
  }
  mu_audit_record(d, call, "task.action", job->id, MU_AUDIT_OK, NULL, "action=%s task=%.128s attempts=%zu", req->action,
                  req->task_name, n_sent);
  Muster__V1__TaskActionResponse resp = MUSTER__V1__TASK_ACTION_RESPONSE__INIT;
  resp.job_id = job->id;
  resp.task_ids = ids;
  resp.n_task_ids = n_sent;
  mu_pb_reply(call, &resp.base);
}

int mu_task_action_register(mu_daemon *d, mu_err *err) {
  int rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/TaskAction", &muster__v1__task_action_request__descriptor,
                           task_action, d, err);
  if (rc == 0) rc = mu_savepoints_register(d, err);
  if (rc == 0) rc = mu_run_history_register(d, err);
  return rc;
}
