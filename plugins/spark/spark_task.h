/* The Spark plugin's private state: one attempt (spark_task), its stages and call kinds, and the
 * helpers every part uses — masked output, params, the handle file, ending the task, the cluster
 * manager's kind and addresses. Not an API: the plugin's files only. */
#ifndef MU_SPARK_TASK_H
#define MU_SPARK_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "muster_plugin.h"
#include "spark_argv.h"
#include "spark_fetch.h"
#include "spark_handle.h"
#include "spark_http.h"
#include "spark_k8s.h"
#include "spark_livy.h"
#include "spark_output.h"
#include "spark_proto.h"
#include "spark_spec.h"

#define SPARK_CALL_TIMEOUT_MS 10000
#define SPARK_MAX_REDIRECTS 3
#define SPARK_PROGRESS_MS 5000
#define SPARK_KILL_RETRY_FIRST_MS 100 /* a kill is re-checked after 100 ms, doubling to 1 s */
#define SPARK_KILL_RETRY_MAX_MS 1000
#define SPARK_OP_OUT_MAX (64 * 1024) /* what spark-submit --status may print that is kept */
#define SPARK_LIVY_LOG_LINES 100     /* the driver log tail copied at a Livy batch's end */
#define SPARK_LIVY_LOG_BYTES (32 * 1024)
#define SPARK_LIVY_CREATE_TRIES 3 /* POST /batches without an answer, each followed by a lookup by tag */

typedef enum {
  ST_PREPARING,  /* deciding: submit, or re-attach to an earlier attempt's application */
  ST_SUBMITTING, /* spark-submit runs, or the REST create call is out */
  ST_TRACKING,   /* polling the cluster manager */
  ST_KILLING,    /* cancel: killing through the cluster manager, waiting for it to confirm */
  ST_ENDED,
} spark_stage;

typedef enum {
  CALL_NONE,
  CALL_STATUS,
  CALL_KILL,
  CALL_LOOKUP,
  CALL_CREATE,
  CALL_FINAL,
  CALL_PROGRESS,
  CALL_LOG
} call_kind;

typedef struct spark_task {
  const muster_host_api *host;
  muster_task *task;
  mu_spark_spec *spec;
  spark_stage stage;
  char task_tag[MU_SPARK_TAG_MAX + 1], attempt_tag[MU_SPARK_TAG_MAX + 1];
  char *app_name;
  char handle_path[4200];
  mu_spark_handle h; /* what is (being) written to handle_path */
  bool reattached;
  mu_spark_scan *scan;
  muster_proc *proc;
  bool proc_exited;
  int exit_code, exit_signal;
  char exit_message[256];
  mu_spark_call *call;
  call_kind call_kind;
  int redirects;
  muster_timer *timer;
  muster_timer *submit_timer; /* cluster mode: spark-submit has submit_timeout to name the id */
  bool submit_timed_out;
  size_t rm_index;       /* the ResourceManager answering last */
  char rm_redirect[512]; /* an active RM a standby pointed at, not in the list */
  unsigned poll_errors;
  char last_error[600];
  char app_state[64]; /* last state the cluster reported, as it said it */
  mu_spark_app_phase phase;
  bool have_phase;
  double last_progress;
  uint64_t last_progress_ms;
  bool params_sent_tracking, params_sent_ui;
  bool app_id_param_pending; /* the id is sent as a param once its handle is on disk */
  bool lookup_then_fail;     /* spark-submit failed without an id: find what it submitted, else fail */
  char fail_message[600];
  bool cancelling;
  muster_cancel_reason cancel_reason;
  uint64_t kill_deadline_ms;
  uint64_t submit_deadline_ms;
  bool kill_sent;
  uint64_t kill_retry_ms;
  int pending_saves; /* handle writes in flight: cleanup waits for them */
  bool cleaned;
  bool finished;
  bool log_fetched;    /* Livy: the batch's log tail was asked for at its end */
  char final_livy[32]; /* the final batch state, while its log is fetched */
  bool running_held;   /* cluster mode: RUNNING waits until the handle is persisted (hold_running) */
  unsigned create_tries;
  muster_proc *op_proc; /* Kubernetes: spark-submit --status / --kill running */
  bool op_kill;
  char *op_out;  /* its output (both streams), bounded by SPARK_OP_OUT_MAX */
  size_t op_len; /* Livy: POST /batches answered 5xx or not at all, then looked up by tag */
  char *sql_path;
  mu_spark_fetch *fetch; /* an app_resource URL being fetched */
  char *fetched_path;    /* where it was put, checked */
} spark_task;

/* Monotonic milliseconds. */
uint64_t spark_now_ms(void);
/* A line (masked) to the task's stderr. */
void spark_say(spark_task *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the attempt's state (once no handle write is in flight). */
void spark_free_task(spark_task *st);
/* Writes the handle in its new phase (a libuv worker); the app_id param follows once durable. */
void spark_save_handle(spark_task *st, mu_spark_h_phase phase);
/* Stops submit_timeout. */
void spark_stop_submit_timer(spark_task *st);
/* Stops every timer, call, fetch and spark-submit --status/--kill of the attempt. */
void spark_stop_work(spark_task *st);
/* Ends the task (once), the message masked; the handle is left as it is. */
void spark_end(spark_task *st, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The application is over (as the cluster says): the handle is done, the task ends. */
void spark_end_app(spark_task *st, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets an output param; for app_id also the control-plane handle, then the held RUNNING. */
void spark_set_param(spark_task *st, const char *key, const char *value);
/* The cluster manager the attempt talks to (its handle's kind). */
bool spark_is_yarn(const spark_task *st);
bool spark_is_standalone(const spark_task *st);
bool spark_is_livy(const spark_task *st);
bool spark_is_k8s(const spark_task *st);
/* The ResourceManagers (RM HA): how many, the one answering last, moving to the next. */
size_t spark_n_rms(const spark_task *st);
const char *spark_rm_base(const spark_task *st);
void spark_rm_rotate(spark_task *st);
/* scheme://host:port of a Location header */
void spark_origin_of(const char *url, char *buf, size_t size);
/* Whether the handle names an application the plugin can track (an address to ask). */
bool spark_trackable(const spark_task *st);
/* Whether the cluster can be asked for the task's application by its tag: YARN's
 * applicationTags, Livy's batch names, Kubernetes driver pods by label. */
bool spark_searchable(const spark_task *st);
/* The cluster REST endpoint the task talks to, for messages. */
const char *spark_api_base(const spark_task *st);
/* SPARK_HOME=… for spark-submit's environment, in buf; NULL when the spec names none. */
const char *spark_home_env(const spark_task *st, char *buf, size_t size);

#endif
