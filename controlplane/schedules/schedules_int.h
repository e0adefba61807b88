/* Inside the schedules module (schedules.c, schedules_admin.c): one schedule's state, its
 * slot records, the record writes (fenced through the cluster's store; in memory alone in
 * SINGLE mode) and the views the admin calls answer with. */
#ifndef MU_CP_SCHEDULES_INT_H
#define MU_CP_SCHEDULES_INT_H

#include "controlplane/schedules/plan.h"
#include "controlplane/schedules/schedules.h"
#include "lib/etcd/etcd.h"
#include "lib/rpc/rpc.h"
#include "muster/v1/store.pb-c.h"

#define MU_SLOT_SUFFIX_SIZE 32

/* One slot record as held in memory (store.proto SlotRecord). */
typedef struct mu_slot {
  char suffix[MU_SLOT_SUFFIX_SIZE]; /* the key's last part: "%012lld", or "%012lld.m%03d" manual */
  int64_t slot_s;
  int manual;
  char state[12];        /* claimed | created | skipped | queued | failed */
  char *job_id, *reason; /* owned; NULL = none */
  int64_t claimed_at_ms, created_at_ms;
} mu_slot;

typedef struct mu_schedule {
  char *name;
  Muster__V1__ScheduleRecord *rec; /* owned (unpacked); rec->spec has its defaults filled */
  mu_schedule_rules rules;
  mu_slot *slots; /* sorted by suffix, i.e. by time */
  size_t n_slots, cap_slots;
  int64_t cursor_s;    /* cron slots up to it are decided */
  int64_t next_due_ms; /* cached: when the next slot is due (-1 none, -2 unknown) */
  int busy;            /* ops in flight (the timer's, a trigger's): the timer
                                       leaves the schedule alone meanwhile */
  int64_t retry_at_ms; /* after a failed write */
} mu_schedule;

mu_schedule *mu_schedules_find(mu_schedules *ss, const char *name);
/* A schedule from its record (taken in every case): MU_EINVAL when its rules do not parse
 * here. Inserted into ss (replacing one of that name, whose slots it keeps). */
int mu_schedules_put_record(mu_schedules *ss, Muster__V1__ScheduleRecord *rec, mu_err *err);
void mu_schedules_remove(mu_schedules *ss, const char *name);
/* The record's JSON for etcd; the caller frees. */
char *mu_schedules_record_json(const Muster__V1__ScheduleRecord *rec);

/* Record writes under the prefix ("schedules/..." relative keys). cb runs exactly once (from
 * inside the call in SINGLE mode, where nothing is written) with err NULL on success. */
typedef void (*mu_schedules_write_cb)(void *ud, const mu_err *err);
void mu_schedules_write_put(mu_schedules *ss, const char *rel_key, const char *value, mu_schedules_write_cb cb,
                            void *ud);
/* Deletes rel_key and everything under rel_key + "/". */
void mu_schedules_write_delete_tree(mu_schedules *ss, const char *rel_key, mu_schedules_write_cb cb, void *ud);
/* Create-only: created 0 when the key existed (existing: its value, borrowed; NULL in
 * SINGLE mode). */
typedef void (*mu_schedules_create_cb)(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err);
void mu_schedules_write_create(mu_schedules *ss, const char *rel_key, const char *value, mu_schedules_create_cb cb,
                               void *ud);

/* Fires sc now as a manual slot, whatever its overlap and pause; done gets the job id (err
 * NULL) once the job is stored. */
typedef void (*mu_schedules_fired_cb)(void *ud, const char *job_id, int64_t slot_s, const mu_err *err);
void mu_schedules_trigger(mu_schedules *ss, mu_schedule *sc, mu_schedules_fired_cb done, void *ud);

/* The job of the job template `name` with args (ss->instantiate): 0 with *ret_spec owned by
 * the caller, or an error naming the template or param (MU_EINVAL also when no template
 * module is wired in). */
int mu_schedules_template_job(mu_schedules *ss, const char *name, const char *const *args, size_t n_args,
                              Muster__V1__JobSpec **ret_spec, mu_err *err);

/* The view of sc (next fire times from now, the last slot; every kept slot when recent).
 * Free with mu_schedules_view_free. NULL when out of memory. */
Muster__V1__Schedule *mu_schedules_view(mu_schedules *ss, const mu_schedule *sc, int recent);
void mu_schedules_view_free(Muster__V1__Schedule *v);

#endif
