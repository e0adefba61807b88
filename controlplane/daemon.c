/* The daemon's modules: created here, and wired together (daemon.h). The scheduler reaches
 * the rest of musterd only through the hooks below, which is what lets it be a library with
 * its own tests (scheduler_test.c wires the same hooks to a table). */
#include <stdlib.h>

#include "controlplane/authz.h"
#include "controlplane/bundles.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/persist.h"
#include "controlplane/presence.h"
#include "controlplane/scheduler.h"
#include "controlplane/secrets.h"
#include "controlplane/task_logs.h"

int mu_daemon_modules_new(mu_daemon *d, int no_etcd, mu_err *err) {
  d->sched = calloc(1, sizeof *d->sched);
  d->persist = calloc(1, sizeof *d->persist);
  d->cluster = calloc(1, sizeof *d->cluster);
  d->presence = calloc(1, sizeof *d->presence);
  d->gateway = calloc(1, sizeof *d->gateway);
  d->logs = calloc(1, sizeof *d->logs);
  if (!d->sched || !d->persist || !d->cluster || !d->presence || !d->gateway || !d->logs) {
    mu_daemon_modules_free(d);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  d->cluster->role = no_etcd ? MU_ROLE_SINGLE : MU_ROLE_FOLLOWER;
  d->cluster->state_ready = no_etcd;
  /* what the scheduler's submit checks need before it starts (mu_daemon_start_scheduler) */
  d->sched->cfg.max_tasks = d->cfg.max_job_tasks;
  d->sched->cfg.max_task_runs = d->cfg.max_task_runs;
  return 0;
}

void mu_daemon_modules_free(mu_daemon *d) {
  if (d->sched != NULL) mu_sched_free(d->sched);
  free(d->sched);
  free(d->persist);
  free(d->cluster);
  free(d->presence);
  free(d->gateway);
  free(d->logs);
  d->sched = NULL;
  d->persist = NULL;
  d->cluster = NULL;
  d->presence = NULL;
  d->gateway = NULL;
  d->logs = NULL;
}

/* --- the scheduler's hooks (scheduler.h) --- */

static int hook_leading(void *ud) { return mu_cluster_leading(ud); }

static int hook_send(void *ud, mu_agent *agent, const Muster__V1__ControlMessage *msg,
                     mu_err *err) {
  (void)ud;
  return mu_gateway_send(agent, msg, err);
}

static void hook_bundle_digest(void *ud, const char *ref, char digest[MU_SCHED_DIGEST_SIZE]) {
  mu_bundles_digest_of(ud, ref, digest);
}

static int hook_secrets_resolve(void *ud, const Muster__V1__TaskSpec *task, const mu_agent *agent,
                                Muster__V1__ResolvedSecret ***ret, size_t *ret_n, mu_err *err) {
  return mu_secrets_resolve(ud, task, agent, ret, ret_n, err);
}

static int hook_check_targets(void *ud, const mu_caller *caller, char *const *ids, size_t n,
                              mu_err *err) {
  return mu_authz_check_targets(ud, caller, ids, n, err);
}

static int hook_check_secrets(void *ud, Muster__V1__JobSpec *spec, char *const *ids, size_t n,
                              mu_err *err) {
  return mu_secrets_check_job(ud, spec, ids, n, err);
}

static void hook_task_changed(void *ud, mu_job *job, mu_host_run *h, size_t idx) {
  mu_persist_task(ud, job, h, idx);
}

static void hook_job_changed(void *ud, mu_job *job) { mu_persist_job(ud, job); }

static void hook_job_forgotten(void *ud, const char *job_id) { mu_persist_forget_job(ud, job_id); }

static void hook_pass_done(void *ud) { mu_persist_kick(ud); }

void mu_daemon_start_scheduler(mu_daemon *d) {
  _Static_assert(MU_SCHED_DIGEST_SIZE == MU_BUNDLE_DIGEST_SIZE, "digest sizes differ");
  mu_sched_config cfg = {
      .loop = d->loop,
      .registry = &d->registry,
      .durable = d->cluster->role != MU_ROLE_SINGLE,
      .heartbeat_timeout_ms = d->cfg.heartbeat_timeout_ms,
      .tail_bytes = 64 * 1024,
      .history_bytes = 8u << 20,
      .max_tasks = d->cfg.max_job_tasks,
      .max_task_runs = d->cfg.max_task_runs,
      .retention = {.max_kept = d->cfg.max_jobs_kept,
                    .min_age_ms = d->cfg.jobs_kept_min_age_ms,
                    .hard_cap = d->cfg.max_jobs_kept_hard},
  };
  mu_sched_hooks hooks = {
      .ud = d,
      .leading = hook_leading,
      .send = hook_send,
      .bundle_digest = hook_bundle_digest,
      .secrets_resolve = hook_secrets_resolve,
      .secrets_free = mu_secrets_resolved_free,
      .bundle_resolve = mu_bundles_resolve_cb,
      .check_targets = hook_check_targets,
      .check_secrets = hook_check_secrets,
      .task_changed = hook_task_changed,
      .job_changed = hook_job_changed,
      .job_forgotten = hook_job_forgotten,
      .pass_done = hook_pass_done,
  };
  mu_sched_init(d->sched, &cfg, &hooks);
}
