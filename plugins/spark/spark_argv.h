/* The spark-submit (or spark-sql) command line for a checked spec: an argv array, never a
 * shell string, with the task's tags added so the application it starts is this task's own,
 * and the same command for showing, with secrets masked. Pure: no I/O. */
#ifndef MU_SPARK_ARGV_H
#define MU_SPARK_ARGV_H

#include <stddef.h>

#include "spark_spec.h"

#define MU_SPARK_TAG_MAX 100 /* YARN's limit on one application tag */

/* What the command needs beyond the spec. Borrowed strings. */
typedef struct mu_spark_submit_ctx {
  const char *task_dir;     /* bundle paths are made absolute against it */
  const char *app_resource; /* local path to use instead of spec->app_resource (a fetched URL); may be NULL */
  const char *sql_file;     /* for inline SQL: the file it was written to */
  const char *task_tag;     /* mu_spark_task_tag() */
  const char *attempt_tag;  /* mu_spark_attempt_tag() */
  const char *app_name;     /* the name with the attempt suffix */
} mu_spark_submit_ctx;

typedef struct mu_spark_argv {
  char **argv; /* NULL-terminated */
  size_t n;
} mu_spark_argv;

/* Builds the argv. 0, or -ENOMEM / -EINVAL with errbuf (MUSTER_ERRBUF_SIZE bytes). */
int mu_spark_build_argv(const mu_spark_spec *s, const mu_spark_submit_ctx *c, mu_spark_argv *ret, char *errbuf);
void mu_spark_argv_free(mu_spark_argv *a);

/* `spark-submit <op> <submission id> --master <k8s master>` for a Kubernetes driver pod: op
 * is "--status" or "--kill" (a kill passes spark.kubernetes.appKillPodDeletionGracePeriod when
 * the spec's conf sets it). 0 or -ENOMEM. */
int mu_spark_k8s_op_argv(const mu_spark_spec *s, const char *op, const char *submission_id, mu_spark_argv *ret);

/* The command as one line for logs and output: arguments shell-quoted where needed, the
 * values of conf keys that look secret (password, secret, token, credential, key) and every
 * secret of s replaced by "***". Caller frees; NULL when out of memory. */
char *mu_spark_argv_display(const mu_spark_spec *s, const mu_spark_argv *a);

/* The tags: "muster-<job>-<task>" (every attempt of the task; a task id that starts with
 * "<job>/" is used alone) and "<that>-a<attempt>",
 * lower case, [a-z0-9-] only, at most MU_SPARK_TAG_MAX bytes (a hash keeps long ids apart).
 * buf must hold MU_SPARK_TAG_MAX + 1 bytes. */
void mu_spark_task_tag(const char *job_id, const char *task_id, char *buf);
void mu_spark_attempt_tag(const char *task_tag, unsigned attempt, char *buf);

#endif
