/* musterd's records in etcd (persist.c; DESIGN.md "State in etcd"): agents/<id>, jobs/<id>,
 * jobs/<id>/ready (written last) and tasks/<job>/<host>.<task>. Changes are marked and
 * written in one fenced batch per flush (coalesced, one batch in flight); agent events are
 * acked only once what they changed is in etcd. The same decoders rebuild jobs and agents on a
 * new leader and keep followers hot. Every call is a no-op in SINGLE mode. */
#ifndef MU_CP_PERSIST_H
#define MU_CP_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "controlplane/jobs.h"
#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "lib/config/strlist.h"
#include "lib/rpc/rpc.h"

struct mu_daemon;

typedef struct mu_persist {
  uv_timer_t flush_timer;
  int flush_armed, flush_in_flight, submits_in_flight;
  char **deleted_jobs; /* job ids whose keys must be deleted */
  size_t n_deleted, cap_deleted;
  uint64_t writes, write_ops; /* batches and ops committed */
  size_t flush_max_ops;       /* task records in one write at most (the rest go in the next;
                                 acks wait for a write that held everything); default 65536 */
  mu_strlist deleted_agents;  /* forgotten agents whose agents/ and presence/ keys go */
} mu_persist;

void mu_persist_init(struct mu_daemon *d);
void mu_persist_close(struct mu_daemon *d);
/* Mark records changed; written by the next (coalesced) flush. */
void mu_persist_task(struct mu_daemon *d, mu_job *job, mu_host_run *h, size_t idx);
void mu_persist_job(struct mu_daemon *d, mu_job *job);
void mu_persist_agent(struct mu_daemon *d, mu_agent *a);
void mu_persist_forget_job(struct mu_daemon *d, const char *job_id);
/* Leader: agents/<id> and presence/<id> are deleted by the next flush (unless the agent is in
 * the registry again by then: it came back). No-op elsewhere. */
void mu_persist_forget_agent(struct mu_daemon *d, const char *agent_id);
/* The agent record's listener (events.h): a changed agent is marked (not while stopping). */
void mu_persist_on_agent(struct mu_daemon *d, mu_agent *a, int stopping);
/* Cluster events (events.h) for persist.c: deposed drops the write in flight, a snapshot
 * resets jobs, presence and tokens, records are applied, and a takeover marks every agent. */
void mu_persist_on_deposed(struct mu_daemon *d);
void mu_persist_on_snapshot_begin(struct mu_daemon *d);
void mu_persist_on_record(struct mu_daemon *d, const char *rel_key, const char *value, size_t len, int leading);
void mu_persist_on_records_end(struct mu_daemon *d, int snapshot);
void mu_persist_on_takeover(struct mu_daemon *d);
/* Schedules a flush soon (also snapshots event sequences for durable acks). */
void mu_persist_kick(struct mu_daemon *d);
/* Writes a new job with all its task records and its ready marker; answers call with the
 * SubmitJobResponse (or UNAVAILABLE) once etcd has it. The job must be submit_pending. */
void mu_persist_submit(struct mu_daemon *d, mu_job *job, mu_rpc_call *call);
/* The same for a job created by the daemon itself (a schedule's slot): cb runs exactly once,
 * maybe from inside this call, with err NULL once etcd holds the job; on error the job has
 * been removed and freed. job_id is borrowed for the call. */
typedef void (*mu_persist_submit_cb)(void *ud, const char *job_id, const mu_err *err);
void mu_persist_submit_then(struct mu_daemon *d, mu_job *job, mu_persist_submit_cb cb, void *ud);
/* Applies one record read from etcd (key relative to the prefix). leading: this member is the
 * leader loading its state (no watcher events are published). Bad records are logged and
 * skipped. */
void mu_persist_apply(struct mu_daemon *d, const char *rel_key, const char *value, size_t len, int leading);
/* A deleted key (agents/<id> is agent_gc.c's: it listens to the records itself). */
void mu_persist_apply_delete(struct mu_daemon *d, const char *rel_key);
/* Recounts jobs whose host states changed through mu_persist_apply. */
void mu_persist_settle(struct mu_daemon *d);
/* Frees every job and forgets the secret records (a new snapshot follows). */
void mu_persist_reset_jobs(struct mu_daemon *d);

#endif
