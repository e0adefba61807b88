/* Reading what a Flink JobManager's REST API answers (notes/spark-flink-protocols.md §2.1):
 * jar uploads and runs, job details, savepoint triggers and their status, checkpoints,
 * exceptions and `{"errors":[...]}` bodies. Each reader takes the raw body (any bytes: it comes
 * off the network), fills a caller-owned struct, and returns 0, or -EINVAL with a message
 * saying what was missing. No allocation escapes; strings are copied into bounded buffers. */
#ifndef MU_FLINK_JSON_H
#define MU_FLINK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MU_FLINK_TEXT_MAX 1024 /* bound on a message, path or id copied out of a reply */

typedef enum {
  MU_FLINK_JOB_UNKNOWN = 0,
  MU_FLINK_JOB_INITIALIZING,
  MU_FLINK_JOB_CREATED,
  MU_FLINK_JOB_RUNNING,
  MU_FLINK_JOB_FAILING,
  MU_FLINK_JOB_FAILED,
  MU_FLINK_JOB_CANCELLING,
  MU_FLINK_JOB_CANCELED,
  MU_FLINK_JOB_FINISHED,
  MU_FLINK_JOB_RESTARTING,
  MU_FLINK_JOB_SUSPENDED,
  MU_FLINK_JOB_RECONCILING,
} mu_flink_job_state;

/* "RUNNING" -> MU_FLINK_JOB_RUNNING; MU_FLINK_JOB_UNKNOWN for anything else. */
mu_flink_job_state mu_flink_job_state_parse(const char *name);
const char *mu_flink_job_state_name(mu_flink_job_state s);
/* FINISHED, FAILED, CANCELED: globally terminal (SUSPENDED is not: the job comes back). */
bool mu_flink_job_state_terminal(mu_flink_job_state s);

typedef struct mu_flink_job_info {
  mu_flink_job_state state;
  char state_name[32];   /* as sent, for messages about a state we do not know */
  int64_t start_time_ms; /* -1 when absent */
  int64_t duration_ms;   /* -1 when absent */
  char name[256];
} mu_flink_job_info;

typedef enum { MU_FLINK_OP_IN_PROGRESS = 0, MU_FLINK_OP_COMPLETED, MU_FLINK_OP_FAILED } mu_flink_op_status;

typedef struct mu_flink_savepoint_info {
  mu_flink_op_status status;
  char location[MU_FLINK_TEXT_MAX]; /* COMPLETED with a location */
  char failure[MU_FLINK_TEXT_MAX];  /* failure-cause: class and the first stack-trace line */
} mu_flink_savepoint_info;

typedef struct mu_flink_checkpoint_info {
  int64_t completed, failed, in_progress, restored, total;
  char latest_path[MU_FLINK_TEXT_MAX];    /* latest.completed.external_path, "" when none */
  int64_t latest_id;                      /* -1 when none */
  int64_t latest_duration_ms;             /* end_to_end_duration, -1 when absent */
  int64_t latest_timestamp_ms;            /* latest_ack_timestamp, -1 when absent */
  char latest_failure[MU_FLINK_TEXT_MAX]; /* latest.failed.failure_message */
} mu_flink_checkpoint_info;

/* The errors of an `{"errors":[...]}` body joined with "; " into ret. Returns true when the
 * body was one. */
bool mu_flink_json_errors(const char *body, size_t len, char *ret, size_t size);

/* POST /jars/upload: the jar id (basename of "filename"). */
int mu_flink_json_upload(const char *body, size_t len, char *ret_id, size_t size, char *err, size_t errlen);
/* GET /jars: the id of the uploaded jar whose name is `name`; -ENOENT when none. */
int mu_flink_json_jar_find(const char *body, size_t len, const char *name, char *ret_id, size_t size, char *err,
                           size_t errlen);
/* POST /jars/{id}/run: the JobID (33 bytes). */
int mu_flink_json_run(const char *body, size_t len, char *ret_job_id, char *err, size_t errlen);
/* GET /jobs/{id}. */
int mu_flink_json_job(const char *body, size_t len, mu_flink_job_info *ret, char *err, size_t errlen);
/* POST /jobs/{id}/stop or /savepoints: the trigger id ("request-id"). */
int mu_flink_json_trigger(const char *body, size_t len, char *ret_id, size_t size, char *err, size_t errlen);
/* GET /jobs/{id}/savepoints/{trigger}. */
int mu_flink_json_savepoint(const char *body, size_t len, mu_flink_savepoint_info *ret, char *err, size_t errlen);
/* GET /jobs/{id}/checkpoints. */
int mu_flink_json_checkpoints(const char *body, size_t len, mu_flink_checkpoint_info *ret, char *err, size_t errlen);
/* GET /jobs/{id}/exceptions: the root exception's first line (root-exception, else the newest
 * exceptionHistory entry). */
int mu_flink_json_exceptions(const char *body, size_t len, char *ret, size_t size, char *err, size_t errlen);

/* YARN RM GET /ws/v1/cluster/apps/{id}: {"app": {"state", "finalStatus", ...}}. state is one
 * of NEW .. RUNNING, FINISHED, FAILED, KILLED; final_status UNDEFINED, SUCCEEDED, FAILED, KILLED. */
typedef struct mu_flink_yarn_app {
  char state[32];
  char final_status[32];
  bool ended; /* state FINISHED, FAILED or KILLED */
} mu_flink_yarn_app;
int mu_flink_json_yarn_app(const char *body, size_t len, mu_flink_yarn_app *ret, char *err, size_t errlen);

#endif
