/* Reads spark-submit's own output, line by line, for what identifies the application this
 * submission started: the YARN application id, the standalone driver (submission) id or
 * application id, the Kubernetes submission id (namespace:driver-pod), the tracking URL and
 * the exit code of a Kubernetes driver. Only the lines Spark's own clients print are matched
 * (e.g. "Submitted application application_X_Y"), and only the first id of each kind is kept:
 * an id that merely appears in the log (a driver listing other applications) is never taken.
 * Bounded: lines longer than MU_SPARK_LINE_MAX are cut for matching. */
#ifndef MU_SPARK_OUTPUT_H
#define MU_SPARK_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#define MU_SPARK_LINE_MAX 8192
#define MU_SPARK_ID_MAX 256

typedef struct mu_spark_scan mu_spark_scan;

typedef struct mu_spark_found {
  char yarn_app_id[MU_SPARK_ID_MAX];       /* application_1700000000000_0001 */
  char driver_id[MU_SPARK_ID_MAX];         /* driver-20151008145126-0000 (standalone cluster) */
  char standalone_app_id[MU_SPARK_ID_MAX]; /* app-20151008145126-0000 (standalone client) */
  char k8s_submission[MU_SPARK_ID_MAX];    /* namespace:driver-pod */
  char tracking_url[MU_SPARK_ID_MAX];
  char ui_url[MU_SPARK_ID_MAX]; /* "Bound SparkUI to ..., and started at http://..." */
  char yarn_state[32];          /* last "Application report for ... (state: X)" */
  int k8s_exit_code;            /* -1 until "Exit code: N" */
  bool submission_failed;       /* the standalone REST client said it failed */
} mu_spark_found;

/* NULL when out of memory. */
mu_spark_scan *mu_spark_scan_new(void);
void mu_spark_scan_free(mu_spark_scan *s);

/* Feeds a chunk of one stream (stdout and stderr are scanned separately: stream 1 or 2).
 * Returns true when this chunk completed a line that set something new in *found. */
bool mu_spark_scan_feed(mu_spark_scan *s, int stream, const char *data, size_t len);

/* Ends both streams (a last line without '\n' is scanned). */
bool mu_spark_scan_end(mu_spark_scan *s);

const mu_spark_found *mu_spark_scan_found(const mu_spark_scan *s);

/* Scans one complete line (no '\n'); exposed for tests and the fuzzer. */
bool mu_spark_scan_line(mu_spark_scan *s, const char *line, size_t len);

/* What `spark-submit --status <ns:pod> --master k8s://…` printed (both streams, whole): the
 * driver pod's phase from its "phase: <Phase>" line (Pending, Running, Succeeded, Failed,
 * Unknown; the last one printed counts), the driver container's "exit code: N" once it has
 * ended, or that there is no such pod ("Application not found."). */
typedef struct mu_spark_k8s_status {
  bool found;     /* a pod was described */
  bool not_found; /* "Application not found." */
  char phase[32];
  int exit_code; /* -1 when none was printed */
} mu_spark_k8s_status;
void mu_spark_k8s_status_parse(const char *text, size_t len, mu_spark_k8s_status *ret);

#endif
