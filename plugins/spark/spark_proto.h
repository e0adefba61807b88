/* The cluster managers' answers, parsed (pure functions, no I/O) and mapped to what a task
 * needs: is the application still going, and if not how did it end. YARN ResourceManager REST
 * (/ws/v1/cluster/apps...) and the Spark standalone REST submission server
 * (/v1/submissions/...), as docs/task-spark.md and ../shared/notes describe them. */
#ifndef MU_SPARK_PROTO_H
#define MU_SPARK_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MU_SPARK_TEXT_MAX 1024

/* Where an application is. */
typedef enum {
  MU_SPARK_APP_PENDING, /* not running yet (NEW…ACCEPTED, SUBMITTED) */
  MU_SPARK_APP_RUNNING,
  MU_SPARK_APP_TRANSIENT, /* not final, not known (UNKNOWN, RELAUNCHING): keep polling */
  MU_SPARK_APP_SUCCEEDED,
  MU_SPARK_APP_FAILED,
  MU_SPARK_APP_KILLED,
} mu_spark_app_phase;

bool mu_spark_phase_final(mu_spark_app_phase p);
const char *mu_spark_phase_name(mu_spark_app_phase p);

typedef struct mu_spark_yarn_app {
  char id[128];
  char state[32];        /* NEW NEW_SAVING SUBMITTED ACCEPTED RUNNING FINISHED FAILED KILLED */
  char final_status[32]; /* UNDEFINED SUCCEEDED FAILED KILLED */
  double progress;       /* 0..100 */
  char tracking_url[512];
  char diagnostics[MU_SPARK_TEXT_MAX];
  char tags[512]; /* applicationTags, comma-separated */
  char am_container_logs[512];
} mu_spark_yarn_app;

/* GET /ws/v1/cluster/apps/{id} body → *ret. 0, or -1 with why (size MU_SPARK_TEXT_MAX) saying
 * what is wrong with the body (not JSON, no "app", no "state", …). A 404 NotFoundException
 * body gives -2 (the application does not exist). */
int mu_spark_yarn_app_parse(const char *body, size_t len, mu_spark_yarn_app *ret, char *why);

/* GET /ws/v1/cluster/apps?applicationTags=… body → up to max apps (the ones carrying tag,
 * since older RMs ignore the filter). Returns how many (>= 0), or -1 with why. */
int mu_spark_yarn_apps_parse(const char *body, size_t len, const char *tag, mu_spark_yarn_app *ret, int max, char *why);

/* Whether tags (comma-separated, as the RM reports them) holds tag. */
bool mu_spark_tags_have(const char *tags, const char *tag);

/* state + finalStatus → phase; FINISHED with finalStatus FAILED is a failure. */
mu_spark_app_phase mu_spark_yarn_phase(const char *state, const char *final_status);

/* {"state":"…"} from PUT/GET …/state → state in buf (size 32). 0 or -1. */
int mu_spark_yarn_state_parse(const char *body, size_t len, char *buf);

/* body as a JSON object (caller decrefs), or NULL with why (size MU_SPARK_TEXT_MAX): not JSON
 * (with the start of what came instead), or not an object. */
json_t *mu_spark_json_object(const char *body, size_t len, char *why);

/* RemoteException message or the first part of a non-JSON body, for error messages. */
void mu_spark_error_text(const char *body, size_t len, char *buf, size_t size);

typedef struct mu_spark_rest_reply {
  char action[64];
  bool success;
  bool has_success;
  char submission_id[128];
  char driver_state[32]; /* status only */
  char message[MU_SPARK_TEXT_MAX];
  char worker_host_port[128];
} mu_spark_rest_reply;

/* CreateSubmissionResponse / SubmissionStatusResponse / KillSubmissionResponse / ErrorResponse
 * → *ret. 0, or -1 with why. */
int mu_spark_rest_parse(const char *body, size_t len, mu_spark_rest_reply *ret, char *why);

/* driverState → phase (SUBMITTED pending; RUNNING; FINISHED succeeded; FAILED/ERROR failed;
 * KILLED; RELAUNCHING/UNKNOWN transient). Unknown strings are transient. */
mu_spark_app_phase mu_spark_driver_phase(const char *driver_state);

/* Kubernetes pod phase → phase: Pending pending, Running running, Succeeded, Failed; Unknown
 * and anything else transient (keep polling within the error budget). */
mu_spark_app_phase mu_spark_k8s_phase(const char *pod_phase);

/* The CreateSubmissionRequest body for the standalone REST server. Caller frees. */
typedef struct mu_spark_rest_create {
  const char *app_resource, *main_class, *app_name, *spark_version;
  const char *const *app_args;
  size_t n_args;
  const char *const *prop_keys, *const *prop_values; /* sparkProperties besides spark.app.name / master */
  size_t n_props;
  const char *master;
} mu_spark_rest_create;
char *mu_spark_rest_create_body(const mu_spark_rest_create *c);

/* Progress from the monitoring API's /applications/<id>/jobs body: completed / total tasks
 * over all jobs, in percent; -1 when it says nothing. */
double mu_spark_jobs_progress(const char *body, size_t len);

#endif
