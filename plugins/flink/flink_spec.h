/* The Flink task's spec: the "flink" section of a muster.v1.TaskSpec (proto3 JSON, lowerCamel or
 * snake_case keys) plus the common `timeout`, parsed and checked into one struct the rest of
 * the plugin reads. Every refusal names the field ("flink.on_cancel: savepoint needs
 * savepoint_dir"). No I/O: files named by the spec are resolved against the task dir at start. */
#ifndef MU_FLINK_SPEC_H
#define MU_FLINK_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MU_FLINK_MAX_ITEMS 256 /* program args, conf entries */
#define MU_FLINK_DEFAULT_POLL_MS 2000
#define MU_FLINK_DEFAULT_SAVEPOINT_MS 600000 /* 10m */
#define MU_FLINK_DEFAULT_UNREACHABLE_MS 60000
#define MU_FLINK_DEFAULT_RESTART_EVENTS 3
#define MU_FLINK_JOB_ID_LEN 32 /* lowercase hex */
#define MU_FLINK_DEFAULT_CHECKPOINT_AGE_MS 3600000

typedef enum {
  MU_FLINK_TARGET_SESSION = 0, /* an existing cluster's REST API */
  MU_FLINK_TARGET_YARN_APPLICATION,
  MU_FLINK_TARGET_K8S_APPLICATION,
  MU_FLINK_TARGET_YARN_PER_JOB, /* deprecated by Flink; accepted */
  MU_FLINK_TARGET_LOCAL,
} mu_flink_target;

typedef enum { MU_FLINK_BATCH = 0, MU_FLINK_STREAMING } mu_flink_kind;

typedef enum { MU_FLINK_PROGRAM_JAR = 0, MU_FLINK_PROGRAM_PYTHON, MU_FLINK_PROGRAM_SQL } mu_flink_program;

typedef enum { MU_FLINK_CANCEL_PLAIN = 0, MU_FLINK_CANCEL_SAVEPOINT, MU_FLINK_CANCEL_DRAIN } mu_flink_on_cancel;

typedef enum {
  MU_FLINK_UPGRADE_NONE = 0,
  MU_FLINK_UPGRADE_STATELESS,  /* cancel the old job, start empty */
  MU_FLINK_UPGRADE_SAVEPOINT,  /* stop the old job with a savepoint, start from it */
  MU_FLINK_UPGRADE_LAST_STATE, /* cancel the old job, start from its latest completed checkpoint */
} mu_flink_upgrade;

typedef struct mu_flink_kv {
  char *key;
  char *value;
} mu_flink_kv;

typedef struct mu_flink_spec {
  mu_flink_target target;
  mu_flink_kind kind;
  mu_flink_program program;
  char *program_file; /* jar, .py or .sql: bundle-relative (or absolute) */
  char *entry_class;  /* NULL when none */
  char **args;        /* program_args */
  size_t n_args;
  unsigned parallelism;                 /* 0 = the cluster's default */
  char job_id[MU_FLINK_JOB_ID_LEN + 1]; /* fixed JobID, "" when derived */
  char *rest_url;                       /* jobmanager_url without a trailing '/'; NULL for CLI-only targets */
  char *flink_home;                     /* NULL = $FLINK_HOME */
  mu_flink_kv *conf;                    /* -D entries, YARN/K8s options folded in */
  size_t n_conf;
  char *savepoint_path; /* restore from; NULL when none */
  bool allow_non_restored_state;
  const char *restore_mode; /* static "CLAIM" | "NO_CLAIM" | "LEGACY"; NULL = Flink's default */
  mu_flink_on_cancel on_cancel;
  char *savepoint_dir; /* NULL when none */
  bool detached;       /* succeed once the job runs */
  char *yarn_rm_url;   /* NULL when none */
  int64_t poll_ms;
  int64_t savepoint_timeout_ms;
  int64_t unreachable_ms;
  unsigned restart_event_threshold;
  int64_t timeout_ms; /* the task's timeout; 0 = none */
  mu_flink_upgrade upgrade;
  char upgrade_from[MU_FLINK_JOB_ID_LEN + 1]; /* "" without an upgrade */
  int64_t max_checkpoint_age_ms;
  bool force_upgrade;
} mu_flink_spec;

/* Parses and checks the spec. On success *ret is owned by the caller (mu_flink_spec_free). On
 * failure returns -EINVAL (or -ENOMEM) with errbuf (MUSTER_ERRBUF_SIZE bytes) naming the field.
 * No I/O. */
int mu_flink_spec_parse(const char *spec_json, const char *config_json, mu_flink_spec **ret, char *errbuf);
void mu_flink_spec_free(mu_flink_spec *s);

/* The names the spec and the docs use. */
const char *mu_flink_target_name(mu_flink_target t);
const char *mu_flink_kind_name(mu_flink_kind k);

/* A JobID: 32 lowercase hex characters. */
bool mu_flink_job_id_valid(const char *id);

/* The JobID this task owns for an attempt: a stable 32-hex digest of the task run id
 * ("<job>/<agent>/<task>") and the attempt, so a retry (after an agent restart) can look up
 * the JobIDs of earlier attempts before it submits anything. ret has 33 bytes. */
void mu_flink_job_id_derive(const char *task_run_id, uint32_t attempt, char *ret);

#endif
