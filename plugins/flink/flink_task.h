/* The Flink task's shared state and the seams between its files (internal to the plugin): one
 * flink_task per attempt, driven by one REST call or timer at a time through its phase. */
#ifndef MU_FLINK_TASK_H
#define MU_FLINK_TASK_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flink_cli.h"
#include "flink_digest.h"
#include "flink_json.h"
#include "flink_rest.h"
#include "flink_spec.h"
#include "muster_plugin.h"

#define FLINK_MAX_LOOKBACK 16         /* earlier attempts whose JobIDs are looked up */
#define FLINK_CHECKPOINT_EVERY 5      /* streaming: checkpoint statistics every N polls */
#define FLINK_CLI_OUT "flink-cli.out" /* the CLI's output, in the task dir */
#define FLINK_CLI_MAX_OUT (1024 * 1024)

typedef enum {
  PH_LOOKUP,       /* GET /jobs/{candidate}: is a job of ours already there? */
  PH_DIGEST,       /* the jar's SHA-256, on the thread pool */
  PH_JARS,         /* GET /jars: an upload of this jar (same digest) to reuse */
  PH_UPLOAD,       /* POST /jars/upload */
  PH_RUN,          /* POST /jars/{id}/run */
  PH_CLI,          /* the flink CLI submitting */
  PH_TRACK,        /* GET /jobs/{id} every poll */
  PH_EXCEPTIONS,   /* GET /jobs/{id}/exceptions after FAILED */
  PH_CHECKPOINTS,  /* GET /jobs/{id}/checkpoints */
  PH_CANCEL,       /* PATCH /jobs/{id}?mode=cancel */
  PH_STOP,         /* POST /jobs/{id}/stop */
  PH_SAVEPOINT,    /* GET /jobs/{id}/savepoints/{trigger} */
  PH_WAIT_END,     /* GET /jobs/{id} until terminal, after a cancel or stop */
  PH_RM,           /* GET {rm}/ws/v1/cluster/apps/{app}: the JobManager is gone or silent */
  PH_RM_START,     /* the same at start: is an earlier attempt's application still there? */
  PH_UPG_LOOK,     /* upgrade: GET /jobs/{upgrade_from} */
  PH_UPG_CKPT,     /* upgrade last-state: GET /jobs/{upgrade_from}/checkpoints */
  PH_TRIGGER,      /* POST /jobs/{id}/savepoints (muster flink savepoint) */
  PH_TRIGGER_POLL, /* GET /jobs/{id}/savepoints/{trigger} of that savepoint */
  PH_SHUTDOWN,     /* DELETE /cluster: a kept Kubernetes application cluster, after its job's end */
} phase;

typedef struct flink_task {
  const muster_host_api *host;
  muster_task *task;
  mu_flink_spec *spec;
  mu_http_multi *multi;
  mu_flink_rest rest;
  phase ph;
  char *program_path; /* resolved against the task dir */
  char base[512];     /* REST base URL ("" until known for CLI targets) */
  char candidates[FLINK_MAX_LOOKBACK][MU_FLINK_JOB_ID_LEN + 1];
  size_t n_candidates, cand;
  char own_id[MU_FLINK_JOB_ID_LEN + 1]; /* the JobID this attempt submits with */
  char job_id[MU_FLINK_JOB_ID_LEN + 1]; /* the job tracked ("" before) */
  char jar_id[512];
  char upload_name[256]; /* "<sha256 prefix>-<file name>" once digested */
  bool digested;
  mu_flink_digest *digest; /* under way, else NULL */
  char trigger[64];
  muster_timer *timer;
  mu_flink_job_state last_state;
  unsigned restarts, polls;
  uint64_t unreachable_since_ms; /* 0 while reachable */
  bool unreachable_noted;
  uint64_t savepoint_deadline_ms;
  bool cancelling; /* a cancel is being carried out */
  muster_cancel_reason cancel_reason;
  bool plain_fallback; /* savepoint failed on a timeout: cancel without one */
  char savepoint_location[MU_FLINK_TEXT_MAX];
  mu_flink_cli_facts cli;
  bool upgrading;                       /* job_id is the old version being stopped */
  bool upgraded;                        /* the old version has ended: submit this one */
  char restore_path[MU_FLINK_TEXT_MAX]; /* what the upgrade restores from, "" for empty state */
  char app_id[64];                      /* the YARN application, "" when none */
  phase rm_return;                      /* the phase to go on with after an RM check */
  muster_proc *proc;
  bool run_sent;          /* the run call went out with own_id */
  bool shutdown_sent;     /* DELETE /cluster sent; the end below is reported on its reply */
  muster_state end_state; /* the end held back for DELETE /cluster */
  char end_msg[1400];
  bool trigger_wanted; /* a savepoint was asked (TaskAction): triggered at the next poll */
  bool finished;
} flink_task;

static inline uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

/* flink_task.c: replies, errors, timers and the phase dispatch */
bool flink_ask_rm(flink_task *ft, phase ph, phase then);
bool flink_no_reply(const mu_flink_reply *r, char *flink_err, size_t size);
bool flink_unreachable(flink_task *ft, const mu_flink_reply *r, char *why, size_t size);
void flink_call(flink_task *ft, phase ph, const char *method, const char *path, const char *json_body,
                const char *upload);
void flink_call_job(flink_task *ft, phase ph, const char *method, const char *suffix, const char *json_body);
void flink_end(flink_task *ft, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void flink_later(flink_task *ft, uint64_t ms);
void flink_reachable(flink_task *ft);
void flink_say(flink_task *ft, muster_stream stream, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void flink_stop_timer(flink_task *ft);

/* flink_submit.c: finding our job (lookup by JobID), submitting it (REST or the flink CLI), the YARN RM */
void flink_lookup_next(flink_task *ft);
void flink_on_jars(flink_task *ft, const mu_flink_reply *r);
void flink_on_lookup(flink_task *ft, const mu_flink_reply *r);
void flink_on_rm(flink_task *ft, const mu_flink_reply *r, bool at_start);
void flink_on_run(flink_task *ft, const mu_flink_reply *r);
void flink_on_upload(flink_task *ft, const mu_flink_reply *r);
void flink_start_cli(flink_task *ft);
void flink_submit(flink_task *ft);

/* flink_track.c: following the job to its end */
void flink_on_checkpoints(flink_task *ft, const mu_flink_reply *r);
void flink_on_exceptions(flink_task *ft, const mu_flink_reply *r);
void flink_on_track(flink_task *ft, const mu_flink_reply *r, bool waiting_end);

/* flink_stop.c: cancel, stop with a savepoint, upgrade; the replies a stop and a trigger share */
typedef enum { FLINK_SP_AGAIN, FLINK_SP_FAILED, FLINK_SP_DONE } flink_sp_result;
/* A stop's or trigger's 202 {"request-id"}: true with ft->trigger and the deadline set, else why. */
bool flink_trigger_reply(flink_task *ft, const mu_flink_reply *r, const char *what, char *why, size_t size);
/* A trigger's status: poll again, failed (why), or completed (location). */
flink_sp_result flink_savepoint_reply(flink_task *ft, const mu_flink_reply *r, char *location, size_t location_size,
                                      char *why, size_t size);
void flink_on_cancel_reply(flink_task *ft, const mu_flink_reply *r);
void flink_on_savepoint(flink_task *ft, const mu_flink_reply *r);
void flink_on_stop(flink_task *ft, const mu_flink_reply *r);
void flink_on_upgrade_checkpoints(flink_task *ft, const mu_flink_reply *r);
void flink_on_upgrade_look(flink_task *ft, const mu_flink_reply *r);
void flink_start_cancel_action(flink_task *ft);
void flink_start_upgrade(flink_task *ft);
void flink_upgrade_old_ended(flink_task *ft, const mu_flink_job_info *info);

/* flink_trigger.c: a savepoint without stopping (TaskAction "savepoint") */
int flink_action(muster_task *task, const muster_host_api *host, const char *action, char *errbuf);
void flink_start_trigger(flink_task *ft);
void flink_on_trigger(flink_task *ft, const mu_flink_reply *r);
void flink_on_trigger_poll(flink_task *ft, const mu_flink_reply *r);

/* flink.c: the plugin callbacks and the JobIDs a task may own */
const char *flink_earlier_param(const muster_task_context *ctx, const char *param);

#endif
