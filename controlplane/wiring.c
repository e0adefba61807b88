/* musterd's modules put together (wiring.h): the only file that includes every module. The
 * scheduler reaches the rest of musterd through the hooks below (which is what lets it be a
 * library with its own tests: scheduler_test.c wires the same hooks to a table); the gateway
 * and the cluster publish events (events.h) that the listeners below pass on, in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/agent_gc.h"
#include "controlplane/authz.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/events.h"
#include "controlplane/gateway.h"
#include "controlplane/meters.h"
#include "controlplane/persist.h"
#include "controlplane/run_history.h"
#include "controlplane/savepoints.h"
#include "controlplane/presence.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules.h"
#include "controlplane/templates/templates.h"
#include "controlplane/imagepolicy/imagepolicy.h"
#include "controlplane/pluginconfig/pluginconfig.h"
#include "controlplane/queues_admin.h"
#include "controlplane/secrets.h"
#include "controlplane/task_logs.h"
#include "controlplane/tokens.h"
#include "controlplane/wiring.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

static void subscribe(mu_daemon *d);

/* musterd's type_limits {spark: 4} into the scheduler's config; a bad entry names itself. */
static int type_limits(mu_daemon *d, mu_err *err) {
  const mu_labels *l = &d->cfg.type_limits;
  if (l->n > MU_SCHED_MAX_TYPE_LIMITS)
    return mu_err_set(err, MU_EINVAL, "type_limits: more than %d types", MU_SCHED_MAX_TYPE_LIMITS);
  for (size_t i = 0; i < l->n; i++) {
    char *end = NULL;
    long max = strtol(l->items[i].value, &end, 10);
    if (end == l->items[i].value || *end != '\0' || max < 0 || max > 1000000 ||
        strlen(l->items[i].key) >= MU_SCHED_TYPE_NAME)
      return mu_err_set(err, MU_EINVAL, "type_limits: %s: expected 0..1000000 tasks, got '%s'", l->items[i].key,
                        l->items[i].value);
    mu_sched_type_limit *t = &d->sched->cfg.type_limits[i];
    snprintf(t->type, sizeof t->type, "%s", l->items[i].key);
    t->max = (uint32_t)max;
  }
  d->sched->cfg.n_type_limits = l->n;
  return 0;
}

/* musterd's queues {etl: {weight: 3, max_running: 4}} into the scheduler's queue table. */
static int config_queues(mu_daemon *d, mu_err *err) {
  const mu_labels *l = &d->cfg.queues;
  for (size_t i = 0; i < l->n; i++)
    if (mu_queue_table_apply(&d->sched->cfg.queues, l->items[i].key, l->items[i].value, err) != 0) return err->code;
  return 0;
}

int mu_wiring_new(mu_daemon *d, int no_etcd, mu_err *err) {
  d->sched = calloc(1, sizeof *d->sched);
  d->persist = calloc(1, sizeof *d->persist);
  d->cluster = calloc(1, sizeof *d->cluster);
  d->presence = calloc(1, sizeof *d->presence);
  d->gateway = calloc(1, sizeof *d->gateway);
  d->logs = calloc(1, sizeof *d->logs);
  d->agent_gc = calloc(1, sizeof *d->agent_gc);
  d->savepoints = calloc(1, sizeof *d->savepoints);
  d->run_history = calloc(1, sizeof *d->run_history);
  if (!d->sched || !d->persist || !d->cluster || !d->presence || !d->gateway || !d->logs || !d->agent_gc ||
      !d->savepoints || !d->run_history) {
    mu_wiring_free(d);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  d->cluster->role = no_etcd ? MU_ROLE_SINGLE : MU_ROLE_FOLLOWER;
  d->cluster->state_ready = no_etcd;
  d->savepoints->keep = d->cfg.savepoints_kept_per_task;
  d->run_history->keep = d->cfg.run_history_per_task;
  d->run_history->max = d->cfg.run_history_max;
  /* what the scheduler's submit checks need before it starts (mu_wiring_start_scheduler) */
  d->sched->cfg.max_tasks = d->cfg.max_job_tasks;
  d->sched->cfg.max_task_runs = d->cfg.max_task_runs;
  if (type_limits(d, err) != 0 || config_queues(d, err) != 0) {
    mu_wiring_free(d);
    return err->code;
  }
  if (d->cfg.metrics_listen[0] != '\0' && mu_meters_new(&d->meters, err) != 0) {
    mu_wiring_free(d);
    return err->code;
  }
  int rc = mu_schedules_init(d, d->cfg.schedule_slots_kept, d->cfg.max_schedules, err);
  if (rc == 0) rc = mu_templates_init(d, 0, err);
  if (rc == 0) d->schedules->instantiate = mu_templates_instantiate; /* schedules firing a template */
  if (rc == 0) rc = mu_queues_init(d, err);
  if (rc == 0) rc = mu_imagepolicy_init(d, err);
  if (rc == 0) rc = mu_pluginconfig_init(d, err);
  if (rc != 0) {
    mu_wiring_free(d);
    return rc;
  }
  subscribe(d);
  return 0;
}

void mu_wiring_free(mu_daemon *d) {
  mu_imagepolicy_free(d);
  mu_pluginconfig_free(d);
  mu_templates_free(d);
  mu_queues_free(d);
  mu_schedules_free(d);
  if (d->sched != NULL) mu_sched_free(d->sched);
  free(d->sched);
  free(d->persist);
  free(d->cluster);
  free(d->presence);
  free(d->gateway);
  free(d->logs);
  free(d->agent_gc);
  d->agent_gc = NULL;
  mu_meters_free(d->meters);
  d->meters = NULL;
  if (d->savepoints != NULL) mu_savepoints_reset(d->savepoints);
  free(d->savepoints);
  d->savepoints = NULL;
  if (d->run_history != NULL) mu_run_history_reset(d->run_history);
  free(d->run_history);
  d->run_history = NULL;
  d->sched = NULL;
  d->persist = NULL;
  d->cluster = NULL;
  d->presence = NULL;
  d->gateway = NULL;
  d->logs = NULL;
}

/* --- the scheduler's hooks (scheduler.h) --- */

static int hook_leading(void *ud) { return mu_cluster_leading(ud); }

static int hook_send(void *ud, mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err) {
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

static int hook_check_targets(void *ud, const mu_caller *caller, char *const *ids, size_t n, mu_err *err) {
  return mu_authz_check_targets(ud, caller, ids, n, err);
}

static int hook_schedule_latest_job(void *ud, const char *name, char *job_id, size_t size) {
  return mu_schedules_latest_job(ud, name, job_id, size);
}

static int hook_check_secrets(void *ud, Muster__V1__JobSpec *spec, char *const *ids, size_t n, mu_err *err) {
  return mu_secrets_check_job(ud, spec, ids, n, err);
}

static void hook_task_changed(void *ud, mu_job *job, mu_host_run *h, size_t idx) {
  mu_meters_task(((mu_daemon *)ud)->meters, job, h, idx);
  mu_run_history_on_task(ud, job, h, idx);
  mu_persist_task(ud, job, h, idx);
}

static void hook_job_changed(void *ud, mu_job *job) { mu_persist_job(ud, job); }

static void hook_param_set(void *ud, mu_job *job, mu_host_run *h, size_t idx, const char *key, const char *value) {
  mu_savepoints_on_param(ud, job, h, idx, key, value);
}

static void hook_job_forgotten(void *ud, const char *job_id) { mu_persist_forget_job(ud, job_id); }

static void hook_pass_done(void *ud) { mu_persist_kick(ud); }

static void on_stage_job_stored(void *ud, const char *job_id, const mu_err *err) {
  (void)ud;
  if (err != NULL) mu_warn("sched", "stage job %s not stored (started again by a later pass): %s", job_id, err->msg);
}

/* A stage's job (stage_run.h): stored like a submission, dispatched once etcd holds it. */
static void hook_job_submitted(void *ud, mu_job *job) {
  mu_daemon *d = ud;
  if (job->submit_pending) mu_persist_submit_then(d, job, on_stage_job_stored, NULL);
}

void mu_wiring_start_scheduler(mu_daemon *d) {
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
      .n_type_limits = d->sched->cfg.n_type_limits,
      .priority_aging_ms = d->cfg.priority_aging_ms,
      .hold_above = d->cfg.hold_above,
      .hold_priority_floor = (int32_t)d->cfg.hold_priority_floor,
  };
  memcpy(cfg.type_limits, d->sched->cfg.type_limits, sizeof cfg.type_limits);
  cfg.queues = d->sched->cfg.queues;
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
      .schedule_latest_job = hook_schedule_latest_job,
      .task_changed = hook_task_changed,
      .job_changed = hook_job_changed,
      .param_set = hook_param_set,
      .job_forgotten = hook_job_forgotten,
      .pass_done = hook_pass_done,
      .job_submitted = hook_job_submitted,
  };
  mu_sched_init(d->sched, &cfg, &hooks);
  if (d->cluster->role == MU_ROLE_SINGLE) mu_schedules_start(d); /* else on takeover */
}

/* --- agent events: task logs first (reads fall back), then the agent record, then the
 * scheduler (the order the gateway called them in before events existed) --- */

static void logs_down(void *ud, mu_agent *a, int stopping) {
  (void)stopping;
  mu_task_logs_on_agent_down(ud, a);
}

static void logs_reply(void *ud, mu_agent *a, const Muster__V1__LogRequestReply *rep) {
  mu_task_logs_on_reply(ud, a, rep);
}

static void persist_up(void *ud, mu_agent *a) { mu_persist_on_agent(ud, a, 0); }

static void persist_down(void *ud, mu_agent *a, int stopping) { mu_persist_on_agent(ud, a, stopping); }

static void sched_up(void *ud, mu_agent *a) { mu_sched_on_agent_up(((mu_daemon *)ud)->sched, a); }

static void sched_down(void *ud, mu_agent *a, int stopping) {
  if (!stopping) mu_sched_on_agent_down(((mu_daemon *)ud)->sched, a);
}

static void sched_heartbeat(void *ud, mu_agent *a, const Muster__V1__Heartbeat *hb) {
  if (a->lost_check) mu_sched_on_heartbeat(((mu_daemon *)ud)->sched, a, hb->metrics->running_tasks);
}

static void sched_task_event(void *ud, mu_agent *a, const Muster__V1__TaskEvent *ev) {
  mu_sched_on_event(((mu_daemon *)ud)->sched, a, ev);
}

static void bundles_request(void *ud, mu_agent *a, const Muster__V1__BundleRequest *req) {
  mu_bundles_on_request(ud, a, req);
}

static void bundles_forgotten(void *ud, mu_agent *a) { mu_bundles_on_agent_forgotten(ud, a); }

/* --- cluster events --- */

static void sched_elected(void *ud, uint64_t term) { ((mu_daemon *)ud)->sched->term = term; }

static void sched_deposed(void *ud, const char *reason, const char *redirect_to) {
  (void)reason, (void)redirect_to;
  mu_sched_pause(((mu_daemon *)ud)->sched);
}

static void sched_takeover(void *ud, uint64_t term, int64_t grace_ms) {
  mu_daemon *d = ud;
  size_t jobs = 0, running = 0, dropped = 0;
  mu_sched_takeover(d->sched, grace_ms, &jobs, &running, &dropped);
  mu_info("cluster",
          "leading term %lld: %zu jobs loaded (%zu tasks in flight), %zu agents known, %zu "
          "interrupted submissions dropped; agents have %.1fs to reconnect",
          (long long)term, jobs, running, d->registry.n, dropped, (double)grace_ms / 1000.0);
  mu_sched_kick(d->sched);
}

static void persist_deposed(void *ud, const char *reason, const char *redirect_to) {
  (void)reason, (void)redirect_to;
  mu_persist_on_deposed(ud);
}

static void persist_snapshot_begin(void *ud) { mu_persist_on_snapshot_begin(ud); }

static void persist_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  mu_persist_on_record(ud, rel, value, len, leading);
}

static void persist_records_end(void *ud, int snapshot) { mu_persist_on_records_end(ud, snapshot); }

static void persist_takeover(void *ud, uint64_t term, int64_t grace_ms) {
  (void)term, (void)grace_ms;
  mu_persist_on_takeover(ud);
}

static void presence_elected(void *ud, uint64_t term) {
  (void)term;
  mu_presence_on_elected(ud);
}

static void presence_deposed(void *ud, const char *reason, const char *redirect_to) {
  (void)reason, (void)redirect_to;
  mu_presence_on_deposed(ud);
}

static void presence_leader_changed(void *ud, const char *address, int64_t term) {
  (void)address, (void)term;
  mu_presence_on_leader_changed(ud);
}

static void gateway_elected(void *ud, uint64_t term) {
  (void)term;
  mu_gateway_on_elected(ud);
}

static void gateway_deposed(void *ud, const char *reason, const char *redirect_to) {
  mu_gateway_on_deposed(ud, reason, redirect_to);
}

static void gateway_elsewhere(void *ud, const char *address) { mu_gateway_on_leader_elsewhere(ud, address); }

static void agent_gc_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)len, (void)leading;
  mu_agent_gc_on_record(ud, rel, value);
}

static void meters_leader_changed(void *ud, const char *address, int64_t term) {
  (void)address, (void)term;
  mu_meters_leader_changed(((mu_daemon *)ud)->meters);
}

static void bundles_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)leading;
  if (strncmp(rel, "bundles/", 8) == 0) mu_bundles_apply_event(ud, rel, value, len, value != NULL);
}

/* schedules: their records on every member; firing on the loaded leader, after the
 * scheduler's takeover dropped interrupted submissions (a claim's job among them) */
static void schedules_deposed(void *ud, const char *reason, const char *redirect_to) {
  (void)reason, (void)redirect_to;
  mu_schedules_on_deposed(ud);
}

static void schedules_snapshot_begin(void *ud) { mu_schedules_on_snapshot_begin(ud); }

static void schedules_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)leading;
  mu_schedules_on_record(ud, rel, value, len);
}

/* templates: their records on every member */
static void templates_snapshot_begin(void *ud) { mu_templates_on_snapshot_begin(ud); }

static void templates_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)leading;
  mu_templates_on_record(ud, rel, value, len);
}

/* queues: their records on every member, merged into the scheduler's table */
static void queues_snapshot_begin(void *ud) { mu_queues_on_snapshot_begin(ud); }

static void queues_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)leading;
  mu_queues_on_record(ud, rel, value, len);
}

/* the image policy: its record on every member; pushed to an agent as its stream comes up,
 * before the scheduler can assign it anything */
static void imagepolicy_snapshot_begin(void *ud) { mu_imagepolicy_on_snapshot_begin(ud); }

static void imagepolicy_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)leading;
  mu_imagepolicy_on_record(ud, rel, value, len);
}

static void imagepolicy_up(void *ud, mu_agent *a) { mu_imagepolicy_on_agent_up(ud, a); }

static void imagepolicy_takeover(void *ud, uint64_t term, int64_t grace_ms) {
  (void)term, (void)grace_ms;
  mu_imagepolicy_on_takeover(ud);
}

/* central plugin configs (SDK v2): like the image policy */
static void pluginconfig_snapshot_begin(void *ud) { mu_pluginconfig_on_snapshot_begin(ud); }

static void pluginconfig_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)leading;
  mu_pluginconfig_on_record(ud, rel, value, len);
}

static void pluginconfig_up(void *ud, mu_agent *a) { mu_pluginconfig_on_agent_up(ud, a); }

static void pluginconfig_takeover(void *ud, uint64_t term, int64_t grace_ms) {
  (void)term, (void)grace_ms;
  mu_pluginconfig_on_takeover(ud);
}

static void schedules_takeover(void *ud, uint64_t term, int64_t grace_ms) {
  (void)term, (void)grace_ms;
  mu_schedules_start(ud);
}

static void subscribe(mu_daemon *d) {
  mu_err err = {0};
  const mu_agent_listener agent[] = {
      {.ud = d, .up = imagepolicy_up},
      {.ud = d, .up = pluginconfig_up},
      {.ud = d, .down = logs_down, .log_reply = logs_reply},
      {.ud = d, .up = persist_up, .down = persist_down},
      {.ud = d, .up = sched_up, .down = sched_down, .heartbeat = sched_heartbeat, .task_event = sched_task_event},
      {.ud = d, .bundle_request = bundles_request, .forgotten = bundles_forgotten},
  };
  const mu_cluster_listener cluster[] = {
      {.ud = d, .elected = sched_elected, .deposed = sched_deposed, .takeover = sched_takeover},
      {.ud = d,
       .deposed = persist_deposed,
       .snapshot_begin = persist_snapshot_begin,
       .record = persist_record,
       .records_end = persist_records_end,
       .takeover = persist_takeover},
      {.ud = d, .elected = presence_elected, .deposed = presence_deposed, .leader_changed = presence_leader_changed},
      {.ud = d, .elected = gateway_elected, .deposed = gateway_deposed, .leader_elsewhere = gateway_elsewhere},
      {.ud = d, .record = bundles_record},
      {.ud = d, .record = agent_gc_record},
      {.ud = d, .leader_changed = meters_leader_changed},
      {.ud = d,
       .deposed = schedules_deposed,
       .snapshot_begin = schedules_snapshot_begin,
       .record = schedules_record,
       .takeover = schedules_takeover},
      {.ud = d, .snapshot_begin = templates_snapshot_begin, .record = templates_record},
      {.ud = d, .snapshot_begin = queues_snapshot_begin, .record = queues_record},
      {.ud = d,
       .snapshot_begin = imagepolicy_snapshot_begin,
       .record = imagepolicy_record,
       .takeover = imagepolicy_takeover},
      {.ud = d,
       .snapshot_begin = pluginconfig_snapshot_begin,
       .record = pluginconfig_record,
       .takeover = pluginconfig_takeover},
  };
  _Static_assert(sizeof agent / sizeof agent[0] <= MU_EVENTS_MAX_LISTENERS, "raise MU_EVENTS_MAX_LISTENERS");
  _Static_assert(sizeof cluster / sizeof cluster[0] <= MU_EVENTS_MAX_LISTENERS, "raise MU_EVENTS_MAX_LISTENERS");
  for (size_t i = 0; i < sizeof agent / sizeof agent[0]; i++)
    mu_events_on_agent(&d->events, &agent[i], &err); /* a fixed number: cannot overflow */
  for (size_t i = 0; i < sizeof cluster / sizeof cluster[0]; i++) mu_events_on_cluster(&d->events, &cluster[i], &err);
}

/* --- the cluster's hooks (cluster.h) --- */

static void cluster_reload(mu_daemon *d, void (*cb)(void *ctx, int rc, const char *msg), void *ctx) {
  mu_bundles_reload(d, cb, ctx);
}

static void cluster_before_close(mu_daemon *d, void (*then)(mu_daemon *d)) {
  mu_persist_close(d);
  /* presence first: revoking its lease removes this member's presence keys at once */
  mu_presence_stop(d, then);
}

static void presence_granted(mu_daemon *d) { mu_persist_kick(d); }

int mu_wiring_start_cluster(mu_daemon *d, mu_err *err) {
  d->cluster->reload = cluster_reload;
  d->cluster->before_close = cluster_before_close;
  d->presence->granted = presence_granted;
  mu_presence_init(d);
  mu_persist_init(d);
  return mu_cluster_start(d, err);
}
