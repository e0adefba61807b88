/* Apache Livy's batch REST API (apache/livy docs/rest-api.md; ../shared/notes §1.4), parsed
 * and built with no I/O: POST /batches (the request body), the Batch object it and
 * GET /batches/{id} answer, GET /batches/{id}/state ({id, state}), GET /batches
 * ({from, total, sessions: [Batch…]}) searched by the task's tag, and the batch states mapped
 * to what a task needs. */
#ifndef MU_SPARK_LIVY_H
#define MU_SPARK_LIVY_H

#include <stdbool.h>
#include <stddef.h>

#include "spark_proto.h"

typedef struct mu_spark_livy_batch {
  char id[24];    /* the batch id, decimal; "" when the answer has none */
  char state[32]; /* not_started starting recovering idle busy running shutting_down
                                * error dead killed success */
  char name[256];
  char app_id[128];         /* the YARN application id once Livy knows it */
  char spark_ui_url[512];   /* appInfo.sparkUiUrl */
  char driver_log_url[512]; /* appInfo.driverLogUrl */
} mu_spark_livy_batch;

/* A Batch or a {id, state} body → *ret. 0, or -1 with why (size MU_SPARK_TEXT_MAX): not JSON,
 * no "state", an id that is not a non-negative integer. */
int mu_spark_livy_batch_parse(const char *body, size_t len, mu_spark_livy_batch *ret, char *why);

/* GET /batches body → the newest batch whose name carries "[<tag>-a<N>]" (the names the plugin
 * gives, see docs/task-spark.md), in *ret. 1 found, 0 none, -1 with why. */
int mu_spark_livy_find(const char *body, size_t len, const char *tag, mu_spark_livy_batch *ret, char *why);

/* Batch state → phase: not_started/starting/recovering pending; idle/busy/running running;
 * shutting_down and unknown words transient; success succeeded; error/dead failed; killed. */
mu_spark_app_phase mu_spark_livy_phase(const char *state);

/* GET /batches/{id}/log?size=N ({id, from, total, log: [line…]}, Livy's last N lines when no
 * `from` is given) → the lines joined, each ending in '\n', at most max_bytes (the oldest lines
 * dropped first, a line cut to fit). Caller frees. NULL with why: not JSON, no "log" array. */
char *mu_spark_livy_log_text(const char *body, size_t len, size_t max_bytes, char *why);

/* The POST /batches request. Lists and conf are borrowed; NULL/0 fields are left out. */
typedef struct mu_spark_livy_create {
  const char *file, *class_name, *name, *queue, *driver_memory, *executor_memory, *proxy_user;
  unsigned driver_cores, executor_cores, num_executors;
  const char *const *args;
  size_t n_args;
  const char *const *jars, *const *py_files, *const *files, *const *archives;
  size_t n_jars, n_py_files, n_files, n_archives;
  const char *const *conf_keys, *const *conf_values;
  size_t n_conf;
} mu_spark_livy_create;

/* The request body (JSON). Caller frees; NULL when out of memory. */
char *mu_spark_livy_create_body(const mu_spark_livy_create *c);

#endif
