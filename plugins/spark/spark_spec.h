/* The Spark task's spec: the "spark" section of a muster.v1.TaskSpec (proto3 JSON, lowerCamel
 * or snake_case keys) plus the common `timeout` and `secrets`, parsed and checked into one
 * struct, and the agent's defaults for what the spec leaves out. Every refusal names the
 * field. Pure: no I/O, so validate() and the fuzzer run it as start() does. */
#ifndef MU_SPARK_SPEC_H
#define MU_SPARK_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MU_SPARK_MAX_ITEMS 256    /* entries per list or map */
#define MU_SPARK_MAX_STRING 65536 /* bytes per string (inline SQL up to 1 MiB) */
#define MU_SPARK_MAX_SQL (1024 * 1024)
#define MU_SPARK_DEFAULT_POLL_MS 2000
#define MU_SPARK_MIN_POLL_MS 200
#define MU_SPARK_DEFAULT_KILL_MS 60000
#define MU_SPARK_DEFAULT_SUBMIT_MS 300000
#define MU_SPARK_DEFAULT_POLL_ERRORS 10

typedef enum { MU_SPARK_JAVA, MU_SPARK_SCALA, MU_SPARK_PYTHON, MU_SPARK_SQL } mu_spark_program;
typedef enum { MU_SPARK_LOCAL, MU_SPARK_STANDALONE, MU_SPARK_YARN, MU_SPARK_K8S } mu_spark_master_kind;
typedef enum { MU_SPARK_VIA_SUBMIT, MU_SPARK_VIA_REST, MU_SPARK_VIA_LIVY } mu_spark_via;

typedef struct mu_spark_kv {
  char *key;
  char *value;
} mu_spark_kv;

typedef struct mu_spark_list {
  char **items;
  size_t n;
} mu_spark_list;

/* The agent's configuration for the type (environment of the agent, see docs/task-spark.md),
 * used where the spec says nothing. Borrowed strings; NULL when unset. */
typedef struct mu_spark_defaults {
  const char *spark_home;   /* MUSTER_SPARK_HOME */
  const char *yarn_rm_urls; /* MUSTER_SPARK_YARN_RM_URLS, comma-separated */
  const char *rest_url;     /* MUSTER_SPARK_REST_URL */
  const char *livy_url;     /* MUSTER_SPARK_LIVY_URL */
  const char *spark_ui_url; /* MUSTER_SPARK_UI_URL */
  const char *k8s_api_url;  /* MUSTER_SPARK_K8S_API_URL */
  const char *k8s_ca_file;  /* MUSTER_SPARK_K8S_CA_FILE */
} mu_spark_defaults;

typedef struct mu_spark_spec {
  mu_spark_program program;
  mu_spark_master_kind master_kind;
  mu_spark_via via;
  char *master;       /* as given: local[4], spark://h:p[,h2:p2], yarn, k8s://https://... */
  bool cluster;       /* deploy_mode cluster (local masters are always client) */
  char *main_class;   /* NULL for python/sql */
  char *app_resource; /* bundle path or URL; NULL for inline SQL */
  bool app_resource_is_url;
  char *app_resource_sha256; /* lowercase hex; required for http(s) URLs */
  char *sql;                 /* inline SQL (program sql) */
  mu_spark_list app_args;
  mu_spark_kv *conf; /* sorted by key */
  size_t n_conf;
  char *name; /* app name; NULL = the task id */
  uint32_t driver_cores, executor_cores, num_executors;
  char *driver_memory, *executor_memory;
  char *queue, *namespace_;
  mu_spark_list jars, py_files, files, archives, packages;
  bool dyn_enabled;
  uint32_t dyn_min, dyn_max, dyn_initial; /* 0 = unset */
  char *principal, *keytab;
  char *spark_home;           /* spec or agent default; may be NULL (then "spark-submit" on PATH) */
  mu_spark_list yarn_rm_urls; /* spec or agent default, no trailing '/' */
  char *rest_url, *livy_url, *spark_ui_url;
  char *auth_user, *auth_password, *auth_token; /* for every cluster REST call; secrets substituted */
  bool auth_negotiate;                          /* SPNEGO with the agent's Kerberos identity instead */
  char *proxy_user;                             /* Livy's proxyUser; NULL unless via livy */
  /* Kubernetes API (driver pods by label): the server (spec, agent default, else the k8s://
   * master's https address), a bearer token (secret substituted), a CA bundle path; NULL unset */
  char *k8s_api_url, *k8s_token, *k8s_ca_file;
  int64_t poll_ms, kill_ms, submit_ms;
  uint32_t max_poll_errors;
  int64_t timeout_ms; /* the task's timeout; 0 = none */
  char **secrets;     /* values to mask in what is logged, longest first */
  size_t n_secrets;
} mu_spark_spec;

/* Parses and checks the spec. On success *ret is the caller's (mu_spark_spec_free). On failure
 * -EINVAL (or -ENOMEM) with errbuf (MUSTER_ERRBUF_SIZE bytes) naming the field, e.g.
 * "spark.main_class: required for program_type java". defaults may be NULL. */
int mu_spark_spec_parse(const char *spec_json, const char *config_json, const mu_spark_defaults *defaults,
                        mu_spark_spec **ret, char *errbuf);
void mu_spark_spec_free(mu_spark_spec *s);

/* A Spark memory string: digits and a unit k|m|g|t (either case, optional trailing b). */
bool mu_spark_memory_ok(const char *text);

/* Copies data with every secret of s replaced by "***" (NUL-terminated; caller frees; *ret_len
 * may be NULL). NULL when out of memory. */
char *mu_spark_mask(const mu_spark_spec *s, const char *data, size_t len, size_t *ret_len);

const char *mu_spark_program_name(mu_spark_program p);

#endif
