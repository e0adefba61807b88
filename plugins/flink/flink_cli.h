/* The `flink` CLI side of the Flink task: the argv for the application, per-job and local
 * targets (and `sql-client.sh -f` for SQL scripts), and what the CLI's own output says about
 * the submission (notes/spark-flink-protocols.md §2.2): the JobID from "Job has been submitted
 * with JobID <id>" (or sql-client.sh's "Job ID: <id>"), the YARN application id, the
 * JobManager's web interface, a savepoint path. */
#ifndef MU_FLINK_CLI_H
#define MU_FLINK_CLI_H

#include <stddef.h>

#include "flink_spec.h"

#define MU_FLINK_CLI_MAX_ARGV (2 * MU_FLINK_MAX_ITEMS + 48)

typedef struct mu_flink_cli_facts {
  char job_id[MU_FLINK_JOB_ID_LEN + 1]; /* "" until seen */
  char yarn_app_id[64];                 /* application_<ts>_<n>, "" until seen */
  char web_url[256];                    /* the JobManager's REST/web base URL, "" until seen */
  char savepoint_path[1024];            /* "Savepoint completed. Path: ..." */
} mu_flink_cli_facts;

/* Builds the argv (NULL-terminated, strings owned by *ret_argv: free with mu_flink_cli_argv_free)
 * for submitting s with JobID job_id. program is the resolved program path, flink_bin the
 * `flink` (or `sql-client.sh`) executable. Returns 0 or -ENOMEM. */
int mu_flink_cli_argv(const mu_flink_spec *s, const char *flink_bin, const char *program, const char *job_id,
                      char ***ret_argv);
void mu_flink_cli_argv_free(char **argv);

/* A kubernetes-application cluster we keep after its job ends: 1 unless conf sets
 * execution.shutdown-on-application-finish (to anything but "false"). The CLI then passes
 * -Dexecution.shutdown-on-application-finish=false, so the JobManager stays to say how the job
 * ended (there is no RM to ask on Kubernetes), and the task shuts it down with DELETE /cluster
 * once it has read the end. */
int mu_flink_keeps_cluster(const mu_flink_spec *s);

/* Reads CLI output (any bytes) and fills what it finds into *facts (later lines win). */
void mu_flink_cli_scan(const char *out, size_t len, mu_flink_cli_facts *facts);

#endif
