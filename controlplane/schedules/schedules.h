/* Schedules on the leader (docs/scheduling.md): job specs fired at the times of a cron
 * expression in a time zone, each slot exactly once across failovers. A slot is claimed with a
 * fenced create-only etcd transaction (schedules/<name>/slots/<time>) BEFORE its job is
 * created; the claim names the job id it will create, and the record is updated once the job
 * is stored. A new leader finds claims without a stored job and creates it (under a new id
 * written into the claim first, so a third leader cannot create a second job). Records live
 * under schedules/ (store.proto ScheduleRecord, SlotRecord), read back by every member from
 * the cluster's record events; only the leader's timer fires. Loop thread only. */
#ifndef MU_CP_SCHEDULES_H
#define MU_CP_SCHEDULES_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/base/err.h"
#include "lib/metrics/httpd.h"

struct mu_daemon;
struct mu_schedule;
struct Muster__V1__JobSpec;

/* How a schedule with a job template makes its job: templates.h mu_templates_instantiate,
 * wired in by wiring.c (schedules do not include the templates module, which stores its
 * records through this one). NULL: template schedules are refused. */
typedef int (*mu_schedules_template_fn)(struct mu_daemon *d, const char *name, const char *const *args, size_t n_args,
                                        struct Muster__V1__JobSpec **ret_spec, mu_err *err);

#define MU_SCHEDULES_DEFAULT_KEEP_SLOTS 100
#define MU_SCHEDULES_DEFAULT_MAX 10000
#define MU_SCHEDULES_ON_TIME_MS 2000 /* a slot due longer ago than this was missed */
/* Test hook (docs/scheduling.md): the leader exits right after claiming a slot of this
 * schedule, before creating its job, to prove the next leader creates it. */
#define MU_SCHEDULES_TEST_EXIT_ENV "MUSTER_TEST_SCHEDULE_EXIT_AFTER_CLAIM"

typedef struct mu_schedules {
  struct mu_daemon *d;
  struct mu_schedule **items; /* sorted by name */
  size_t n, cap;
  size_t keep_slots; /* slot records kept per schedule (oldest deleted) */
  size_t max_schedules;
  int64_t on_time_ms;
  const char *tz_dir; /* NULL: the system's */
  uv_timer_t timer;
  int timer_ready, running;  /* running: this member fires (SINGLE or loaded leader) */
  uint64_t gen;              /* bumps on every role change: late replies are dropped */
  char exit_after_claim[80]; /* the test hook's schedule name, "" = off */
  /* counters (since start) */
  uint64_t fired, skipped_overlap, missed, failed, claim_conflicts;
  int64_t last_delay_ms;                /* slot (+ jitter) to job stored, of the last fire */
  mu_schedules_template_fn instantiate; /* set by wiring.c; NULL: no templates */
} mu_schedules;

/* Creates the module's state (d->schedules); keep_slots / max 0: defaults. Its timer is
 * made by the first mu_schedules_start. */
int mu_schedules_init(struct mu_daemon *d, size_t keep_slots, size_t max_schedules, mu_err *err);
/* Stops the timer and frees every schedule (the handle closes on the loop). */
void mu_schedules_close(struct mu_daemon *d);
void mu_schedules_free(struct mu_daemon *d);
/* Starts firing (SINGLE mode at start; a leader on takeover, once its state is loaded). */
void mu_schedules_start(struct mu_daemon *d);

/* Cluster events (events.h). */
void mu_schedules_on_deposed(struct mu_daemon *d);
void mu_schedules_on_snapshot_begin(struct mu_daemon *d);
void mu_schedules_on_record(struct mu_daemon *d, const char *rel_key, const char *value, size_t len);

/* The schedules' figures for /metrics: schedules held, slots fired, skipped by overlap,
 * missed (catch-up), failed, claims found taken, the last fire's delay. */
void mu_schedules_metrics(const struct mu_daemon *d, mu_prom *p);

/* The job the schedule `name` made last (job_deps.h: `after` may name a schedule) into
 * job_id: 1 found, 0 the schedule has made no job yet, -1 no such schedule. */
int mu_schedules_latest_job(const struct mu_daemon *d, const char *name, char *job_id, size_t size);

/* muster.v1.Schedules (schedules_admin.c). */
int mu_schedules_register(struct mu_daemon *d, mu_err *err);

#endif
