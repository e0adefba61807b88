/* Unit tests of the Spark plugin's parts that need no cluster: every validation refusal (each
 * naming its field), the spark-submit argv for each mode (golden command lines), secret masking
 * in the shown command, tags, output scanning (only this submission's own id lines), the
 * cluster managers' answers and their mapping to final states, and handle files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "muster_plugin.h"
#include "spark_argv.h"
#include "spark_handle.h"
#include "spark_k8s.h"
#include "spark_livy.h"
#include "spark_output.h"
#include "spark_proto.h"
#include "spark_spec.h"

static const mu_spark_defaults no_defaults = {0};

#define LIT(text) text, strlen(text) /* a literal and its length */

/* Parses {"type":"spark", <extra>} with spark section sec; returns rc and the message. */
static int parse(const char *extra, const char *sec, mu_spark_spec **ret, char *err) {
  char spec[4096];
  snprintf(spec, sizeof spec, "{\"type\":\"spark\"%s%s}", extra ? "," : "", extra ? extra : "");
  err[0] = '\0';
  return mu_spark_spec_parse(spec, sec, &no_defaults, ret, err);
}

static void refused(const char *sec, const char *want) {
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  int rc = parse(NULL, sec, &s, err);
  if (rc == 0 || strstr(err, want) == NULL) {
    fprintf(stderr, "spec %s\n  got rc %d \"%s\"\n  want \"%s\"\n", sec, rc, err, want);
    fail();
  }
  assert_null(s);
}

static void test_validation_names_the_field(void **state) {
  (void)state;
  refused("{\"master\":\"yarn\",\"program_type\":\"ruby\",\"app_resource\":\"a.jar\"}",
          "spark.program_type: unknown program type \"ruby\" (want java, scala, python or sql)");
  refused("{\"app_resource\":\"a.jar\"}", "spark.main_class: required for program_type java");
  refused("{\"program_type\":\"scala\",\"app_resource\":\"a.jar\"}",
          "spark.main_class: required for program_type scala");
  refused("{\"app_resource\":\"a.py\",\"main_class\":\"a.B\"}", "spark.main_class: not used by program_type python");
  refused("{\"main_class\":\"a..B\",\"app_resource\":\"a.jar\"}", "spark.main_class: \"a..B\" is not a class name");
  refused("{\"main_class\":\"a.B\"}", "spark.app_resource: required (a jar from the bundle");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"https://repo/x.jar\"}",
          "spark.app_resource_sha256: required when app_resource is a URL (\"https://repo/x.jar\")");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"https://repo/x.jar\",\"app_resource_sha256\":\"abc\"}",
          "spark.app_resource_sha256: want 64 hex digits");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"hdfs:///x.jar\"}",
          "spark.app_resource: scheme \"hdfs\" not supported");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"../x.jar\"}",
          "spark.app_resource: \"../x.jar\" must be a path inside");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"/opt/x.jar\"}",
          "spark.app_resource: \"/opt/x.jar\" must be a path inside");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"app_args\":\"--in /data --out /x\"}",
          "spark.app_args: must be a list of strings (an argv, never one shell string)");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"app_args\":[1]}",
          "spark.app_args[0]: must be a string");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"deploy_mode\":\"cluster\"}",
          "spark.deploy_mode: cluster conflicts with master \"local[*]\"");
  refused("{\"master\":\"local[4]\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"deploy_mode\":\"cluster\"}",
          "spark.deploy_mode: cluster conflicts with master \"local[4]\"");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"deploy_mode\":\"detached\"}",
          "spark.deploy_mode: \"detached\" is not client or cluster");
  refused("{\"master\":\"mesos://m:5050\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}",
          "spark.master: \"mesos://m:5050\" is not local[N], spark://host:port, yarn or k8s://https://host:port");
  refused("{\"master\":\"local[0]\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}",
          "spark.master: \"local[0]\" is not local");
  refused("{\"master\":\"spark://m1:7077,m2\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}",
          "spark.master: \"spark://m1:7077,m2\": each master must be host:port");
  refused("{\"master\":\"spark://m1:99999\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}", "port out of range");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"driver_memory\":\"2 gigs\"}",
          "spark.driver_memory: \"2 gigs\" is not a memory size");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"executor_memory\":\"4x\"}",
          "spark.executor_memory: \"4x\" is not a memory size");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"executor_cores\":-1}",
          "spark.executor_cores: must be a number from 0 to 1024");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"driver_memory\":\"2g\",\"conf\":{"
      "\"spark.driver.memory\":\"4g\"}}",
      "spark.conf.spark.driver.memory: conflicts with spark.driver_memory (set one of them)");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"conf\":{\"spark.master\":\"local\"}}",
      "spark.conf.spark.master: conflicts with spark.master");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"conf\":{\"spark.yarn.submit."
      "waitAppCompletion\":\"true\"}}",
      "spark.conf.spark.yarn.submit.waitAppCompletion: set by Muster");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"conf\":{\"hive.x\":\"1\"}}",
          "spark.conf.hive.x: not a Spark property");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"conf\":{\"spark.x\":\"${secret.NOPE}\"}"
      "}",
      "spark.conf.spark.x: unknown secret \"NOPE\"");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"jars\":[\"a,b.jar\"]}",
          "spark.jars[0]: \"a,b.jar\" must not contain ','");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"packages\":[\"org.x:y\"]}",
          "spark.packages[0]: \"org.x:y\" is not group:artifact:version");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"py_files\":[\"x.py\"]}",
          "spark.py_files: only for program_type python");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"dynamic_allocation\":{\"enabled\":true,"
      "\"min_executors\":5,\"max_executors\":2}}",
      "spark.dynamic_allocation: min_executors (5) is above max_executors (2)");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"dynamic_allocation\":{\"min_"
      "executors\":1}}",
      "spark.dynamic_allocation: executor bounds given but enabled is not true");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"num_executors\":3,\"dynamic_"
      "allocation\":{\"enabled\":true}}",
      "spark.num_executors: conflicts with dynamic_allocation");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"principal\":\"etl@X\"}",
          "spark.keytab: principal and keytab go together");
  refused("{\"master\":\"yarn\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}",
          "spark.yarn_rm_urls: required to track a yarn cluster-mode application");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"yarn_rm_urls\":[\"rm1:8088\"]}",
          "spark.yarn_rm_urls[0]: \"rm1:8088\" must be an http:// or https:// URL");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"via\":\"rest\"}",
          "spark.via: rest submits to a standalone master");
  refused("{\"master\":\"spark://m:7077\",\"main_class\":\"a.B\",\"app_resource\":\"hdfs:///a.jar\",\"via\":\"rest\"}",
          "spark.rest_url: required for via rest");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"via\":\"ssh\"}",
          "spark.via: \"ssh\" is not spark-submit, rest or livy");
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"hdfs:///"
      "a.jar\",\"via\":\"livy\",\"livy_url\":\"http://l:8998\"}",
      "spark.master: via livy: the Livy server's configuration");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"hdfs:///a.jar\",\"via\":\"livy\"}",
          "spark.livy_url: required for via livy");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"via\":\"livy\",\"livy_url\":\"http://l:8998\"}",
          "spark.app_resource: via livy sends no file");
  refused(
      "{\"main_class\":\"a.B\",\"app_resource\":\"hdfs:///a.jar\",\"via\":\"livy\",\"livy_url\":\"http://l:8998\","
      "\"principal\":\"p@R\",\"keytab\":\"/k\"}",
      "spark.principal: not with via livy");
  refused("{\"program_type\":\"sql\",\"sql\":\"select 1\",\"via\":\"livy\",\"livy_url\":\"http://l:8998\"}",
          "spark.via: program_type sql runs spark-sql");
  /* credentials: only as secret references, Basic xor bearer */
  refused(
      "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"auth_user\":\"u\",\"auth_password\":"
      "\"pw\"}",
      "spark.auth_password: must be a ${secret.NAME} reference");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"auth_token\":\"t\"}",
          "spark.auth_token: must be a ${secret.NAME} reference");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"auth_user\":\"u\"}",
          "spark.auth_password: auth_user and auth_password go together");
  refused("{\"program_type\":\"sql\"}",
          "spark.sql: program_type sql takes exactly one of sql (inline) and app_resource");
  refused("{\"program_type\":\"sql\",\"sql\":\"select 1\",\"app_resource\":\"q.sql\"}", "takes exactly one of");
  refused("{\"program_type\":\"java\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"sql\":\"select 1\"}",
          "spark.sql: only for program_type sql");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"queue\":\"a b\"}",
          "spark.queue: spaces");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"queue\":\"etl\"}", "spark.queue: only for master yarn");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"namespace\":\"ns\"}",
          "spark.namespace: only for k8s:// masters");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"poll_interval\":\"10ms\"}",
          "spark.poll_interval: 10ms is below the minimum of 200 ms");
  refused("{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"bogus\":1}", "spark.bogus: unknown field");
  refused("{\"master\":\"spark://m:7077\",\"deploy_mode\":\"cluster\",\"app_resource\":\"a.py\"}",
          "spark.deploy_mode: a standalone master runs python applications in client mode only");
  refused("[]", "spark: must be an object");
  refused("{", "spark: bad JSON");
}

static void test_spec_defaults(void **state) {
  (void)state;
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  assert_int_equal(parse(NULL, "{\"app_resource\":\"job.py\"}", &s, err), 0);
  assert_int_equal(s->program, MU_SPARK_PYTHON);
  assert_string_equal(s->master, "local[*]");
  assert_int_equal(s->master_kind, MU_SPARK_LOCAL);
  assert_false(s->cluster);
  assert_int_equal(s->poll_ms, MU_SPARK_DEFAULT_POLL_MS);
  assert_int_equal(s->max_poll_errors, MU_SPARK_DEFAULT_POLL_ERRORS);
  mu_spark_spec_free(s);

  /* agent defaults fill what the spec leaves out; the standalone REST URL comes from the master */
  mu_spark_defaults def = {.spark_home = "/opt/spark", .yarn_rm_urls = "http://rm1:8088/, http://rm2:8088"};
  assert_int_equal(
      mu_spark_spec_parse(
          "{\"timeout\":\"1m\"}",
          "{\"master\":\"yarn\",\"deployMode\":\"cluster\",\"mainClass\":\"a.B\",\"appResource\":\"a.jar\"}", &def, &s,
          err),
      0);
  assert_string_equal(s->spark_home, "/opt/spark");
  assert_int_equal(s->yarn_rm_urls.n, 2);
  assert_string_equal(s->yarn_rm_urls.items[0], "http://rm1:8088");
  assert_string_equal(s->yarn_rm_urls.items[1], "http://rm2:8088");
  assert_int_equal(s->timeout_ms, 60000);
  mu_spark_spec_free(s);
  assert_int_equal(
      parse(NULL,
            "{\"master\":\"spark://"
            "m1:7077,m2:7077\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}",
            &s, err),
      0);
  assert_string_equal(s->rest_url, "http://m1:6066");
  mu_spark_spec_free(s);
  assert_true(mu_spark_memory_ok("512m") && mu_spark_memory_ok("2G") && mu_spark_memory_ok("1024") &&
              mu_spark_memory_ok("4gb"));
  assert_false(mu_spark_memory_ok("") || mu_spark_memory_ok("m") || mu_spark_memory_ok("2q") ||
               mu_spark_memory_ok("1.5g"));
}

static char *joined(const mu_spark_argv *a) {
  size_t cap = 1;
  for (size_t i = 0; i < a->n; i++) cap += strlen(a->argv[i]) + 3;
  char *out = calloc(1, cap);
  for (size_t i = 0; i < a->n; i++) {
    if (i) strcat(out, "|");
    strcat(out, a->argv[i]);
  }
  return out;
}

static void golden(const char *extra, const char *sec, const char *want) {
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  if (parse(extra, sec, &s, err) != 0) {
    fprintf(stderr, "spec %s: %s\n", sec, err);
    fail();
  }
  mu_spark_submit_ctx c = {.task_dir = "/t",
                           .sql_file = s->sql ? "/t/.muster-spark.sql" : NULL,
                           .task_tag = "muster-j1-etl",
                           .attempt_tag = "muster-j1-etl-a2",
                           .app_name = "etl [muster-j1-etl-a2]"};
  mu_spark_argv a;
  assert_int_equal(mu_spark_build_argv(s, &c, &a, err), 0);
  char *got = joined(&a);
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "got  %s\nwant %s\n", got, want);
    fail();
  }
  free(got);
  mu_spark_argv_free(&a);
  mu_spark_spec_free(s);
}

static void test_argv_golden(void **state) {
  (void)state;
  /* yarn cluster: detached, tagged, resources as --conf, args as separate argv entries */
  golden(
      NULL,
      "{\"master\":\"yarn\",\"deploy_mode\":\"cluster\",\"main_class\":\"org.x.Etl\",\"app_resource\":\"lib/etl.jar\","
      "\"app_args\":[\"--day\",\"2024-01-01\",\"a b; rm -rf /\"],\"driver_memory\":\"2g\",\"driver_cores\":2,"
      "\"executor_memory\":\"4g\",\"executor_cores\":4,\"num_executors\":10,\"queue\":\"etl\",\"name\":\"etl\","
      "\"jars\":[\"lib/dep.jar\",\"https://repo/x.jar\"],\"files\":[\"conf/app.conf\"],\"packages\":[\"org.a:b:1.0\"],"
      "\"conf\":{\"spark.yarn.tags\":\"team-a\",\"spark.sql.shuffle.partitions\":\"64\"},\"yarn_rm_urls\":[\"http://"
      "rm:8088\"],"
      "\"spark_home\":\"/opt/spark\"}",
      "/opt/spark/bin/spark-submit|--master|yarn|--deploy-mode|cluster|--class|org.x.Etl|--name|etl [muster-j1-etl-a2]|"
      "--queue|etl|--conf|spark.driver.cores=2|--conf|spark.driver.memory=2g|--conf|spark.executor.instances=10|"
      "--conf|spark.executor.cores=4|--conf|spark.executor.memory=4g|--jars|/t/lib/dep.jar,https://repo/x.jar|"
      "--files|/t/conf/app.conf|--packages|org.a:b:1.0|--conf|spark.sql.shuffle.partitions=64|"
      "--conf|spark.yarn.tags=team-a,muster-j1-etl,muster-j1-etl-a2|--conf|spark.yarn.submit.waitAppCompletion=false|"
      "/t/lib/etl.jar|--day|2024-01-01|a b; rm -rf /");
  /* local python: no deploy mode, py files, dynamic allocation */
  golden(NULL,
         "{\"master\":\"local[2]\",\"app_resource\":\"job.py\",\"py_files\":[\"deps.zip\"],"
         "\"dynamic_allocation\":{\"enabled\":true,\"min_executors\":1,\"max_executors\":8,\"initial_executors\":2}}",
         "spark-submit|--master|local[2]|--name|etl [muster-j1-etl-a2]|--conf|spark.dynamicAllocation.enabled=true|"
         "--conf|spark.dynamicAllocation.minExecutors=1|--conf|spark.dynamicAllocation.maxExecutors=8|"
         "--conf|spark.dynamicAllocation.initialExecutors=2|--py-files|/t/deps.zip|/t/job.py");
  /* standalone cluster: detached; kerberos */
  golden(
      NULL,
      "{\"master\":\"spark://m1:7077\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\","
      "\"principal\":\"etl@EX.COM\",\"keytab\":\"etl.keytab\"}",
      "spark-submit|--master|spark://m1:7077|--deploy-mode|cluster|--class|a.B|--name|etl [muster-j1-etl-a2]|"
      "--principal|etl@EX.COM|--keytab|/t/etl.keytab|--conf|spark.standalone.submit.waitAppCompletion=false|/t/a.jar");
  /* k8s: namespace and driver labels */
  golden(
      NULL,
      "{\"master\":\"k8s://https://"
      "k8s:6443\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"namespace\":\"etl\"}",
      "spark-submit|--master|k8s://https://k8s:6443|--deploy-mode|cluster|--class|a.B|--name|etl [muster-j1-etl-a2]|"
      "--conf|spark.kubernetes.namespace=etl|--conf|spark.kubernetes.driver.label.muster-task=muster-j1-etl|"
      "--conf|spark.kubernetes.driver.label.muster-attempt=muster-j1-etl-a2|"
      "--conf|spark.kubernetes.submission.waitAppCompletion=false|/t/a.jar");
  /* sql: spark-sql -f with the inline script's file */
  golden(NULL,
         "{\"program_type\":\"SQL\",\"sql\":\"select 1\",\"master\":\"yarn\",\"app_args\":[\"--hiveconf\",\"x=1\"]}",
         "spark-sql|--master|yarn|--deploy-mode|client|--name|etl [muster-j1-etl-a2]|"
         "--conf|spark.yarn.tags=muster-j1-etl,muster-j1-etl-a2|-f|/t/.muster-spark.sql|--hiveconf|x=1");
}

static void test_display_masks_secrets(void **state) {
  (void)state;
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  assert_int_equal(
      parse("\"secrets\":[{\"name\":\"S3\",\"value\":\"AKIAsecretvalue\"},{\"name\":\"PW\",\"value\":"
            "\"hunter2hunter2\"}]",
            "{\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"app_args\":[\"--password=${secret.PW}\"],"
            "\"conf\":{\"spark.hadoop.fs.s3a.secret.key\":\"${secret.S3}\",\"spark.ssl.keyStorePassword\":\"plain-but-"
            "hidden\","
            "\"spark.ssl.keyStore\":\"/etc/ks.jks\"}}",
            &s, err),
      0);
  mu_spark_submit_ctx c = {.task_dir = "/t", .task_tag = "t", .attempt_tag = "t-a1", .app_name = "n"};
  mu_spark_argv a;
  assert_int_equal(mu_spark_build_argv(s, &c, &a, err), 0);
  char *all = joined(&a);
  assert_non_null(strstr(all, "spark.hadoop.fs.s3a.secret.key=AKIAsecretvalue")); /* the real argv has the value */
  assert_non_null(strstr(all, "--password=hunter2hunter2"));
  free(all);
  char *shown = mu_spark_argv_display(s, &a);
  assert_null(strstr(shown, "AKIAsecretvalue"));
  assert_null(strstr(shown, "hunter2"));
  assert_null(strstr(shown, "plain-but-hidden"));
  assert_non_null(strstr(shown, "spark.hadoop.fs.s3a.secret.key=***"));
  assert_non_null(strstr(shown, "spark.ssl.keyStorePassword=***"));
  assert_non_null(strstr(shown, "spark.ssl.keyStore=/etc/ks.jks"));
  assert_non_null(strstr(shown, "--password=***"));
  free(shown);
  mu_spark_argv_free(&a);
  mu_spark_spec_free(s);
}

static void test_tags(void **state) {
  (void)state;
  char t[MU_SPARK_TAG_MAX + 1], a[MU_SPARK_TAG_MAX + 1], t2[MU_SPARK_TAG_MAX + 1];
  mu_spark_task_tag("J-20240101-ABC", "Nightly ETL", t);
  assert_string_equal(t, "muster-j-20240101-abc-nightly-etl");
  mu_spark_task_tag("j-1", "j-1/web-1/etl", t2);
  assert_string_equal(t2, "muster-j-1-web-1-etl");
  mu_spark_attempt_tag(t, 3, a);
  assert_string_equal(a, "muster-j-20240101-abc-nightly-etl-a3");
  char long_id[300];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  mu_spark_task_tag("job", long_id, t);
  long_id[0] = 'y';
  mu_spark_task_tag("job", long_id, t2);
  assert_true(strlen(t) <= MU_SPARK_TAG_MAX);
  assert_string_not_equal(t, t2); /* a hash keeps long ids apart */
  mu_spark_attempt_tag(t, 100, a);
  assert_true(strlen(a) <= MU_SPARK_TAG_MAX);
}

static void feed(mu_spark_scan *s, const char *text) { mu_spark_scan_feed(s, 2, text, strlen(text)); }

static void test_output_scan(void **state) {
  (void)state;
  mu_spark_scan *s = mu_spark_scan_new();
  /* a driver (client mode) that lists other applications must not lend us their ids */
  feed(s, "app: found application_1700000000000_0099 in yarn application -list\n");
  feed(s, "Total number of applications: application_1700000000000_0098 RUNNING\n");
  assert_string_equal(mu_spark_scan_found(s)->yarn_app_id, "");
  feed(s, "24/01/01 10:00:00 INFO Client: Submitting application applic");
  feed(s, "ation_1700000000000_0001 to ResourceManager\n");
  assert_string_equal(mu_spark_scan_found(s)->yarn_app_id, "application_1700000000000_0001");
  feed(s, "24/01/01 10:00:00 INFO YarnClientImpl: Submitted application application_1700000000000_0002\n");
  assert_string_equal(mu_spark_scan_found(s)->yarn_app_id, "application_1700000000000_0001"); /* first one wins */
  feed(s, "INFO Client: Application report for application_1700000000000_0001 (state: ACCEPTED)\r\n");
  feed(s, "\t tracking URL: http://rm1:8088/proxy/application_1700000000000_0001/\n");
  const mu_spark_found *f = mu_spark_scan_found(s);
  assert_string_equal(f->yarn_state, "ACCEPTED");
  assert_string_equal(f->tracking_url, "http://rm1:8088/proxy/application_1700000000000_0001/");
  mu_spark_scan_free(s);

  s = mu_spark_scan_new();
  feed(s,
       "INFO RestSubmissionClient: Submission successfully created as driver-20151008145126-0000. Polling submission "
       "state...\n");
  feed(s, "INFO SparkUI: Bound SparkUI to 0.0.0.0, and started at http://10.0.0.5:4040\n");
  feed(s, "INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20151008145126-0001\n");
  mu_spark_scan_feed(
      s, 1,
      "Deployed Spark application pi with application ID spark-1 and submission ID etl:pi-1-driver into Kubernetes",
      103);
  mu_spark_scan_end(s);
  f = mu_spark_scan_found(s);
  assert_string_equal(f->driver_id, "driver-20151008145126-0000");
  assert_string_equal(f->ui_url, "http://10.0.0.5:4040");
  assert_string_equal(f->standalone_app_id, "app-20151008145126-0001");
  assert_string_equal(f->k8s_submission, "etl:pi-1-driver");
  feed(s, "\t Exit code: 137\n");
  assert_int_equal(f->k8s_exit_code, 137);
  mu_spark_scan_free(s);

  /* an overlong line is cut, never overflows */
  s = mu_spark_scan_new();
  char *big = malloc(3 * MU_SPARK_LINE_MAX);
  memset(big, 'a', 3 * MU_SPARK_LINE_MAX);
  big[3 * MU_SPARK_LINE_MAX - 1] = '\n';
  mu_spark_scan_feed(s, 1, big, 3 * MU_SPARK_LINE_MAX);
  free(big);
  feed(s, "Submitted application application_1_2\n");
  assert_string_equal(mu_spark_scan_found(s)->yarn_app_id, "application_1_2");
  mu_spark_scan_free(s);
}

static void test_yarn_answers(void **state) {
  (void)state;
  char why[MU_SPARK_TEXT_MAX];
  mu_spark_yarn_app app;
  const char *ok =
      "{\"app\":{\"id\":\"application_1_1\",\"state\":\"FINISHED\",\"finalStatus\":\"FAILED\",\"progress\":100.0,"
      "\"trackingUrl\":\"http://rm:8088/proxy/application_1_1/\",\"diagnostics\":\"User class threw exception\","
      "\"applicationTags\":\"team-a,muster-j-t,muster-j-t-a1\",\"amContainerLogs\":\"http://nm:8042/node/containerlogs/"
      "c1/u\"}}";
  assert_int_equal(mu_spark_yarn_app_parse(ok, strlen(ok), &app, why), 0);
  assert_string_equal(app.state, "FINISHED");
  assert_int_equal(mu_spark_yarn_phase(app.state, app.final_status), MU_SPARK_APP_FAILED); /* FINISHED+FAILED fails */
  assert_true(mu_spark_tags_have(app.tags, "muster-j-t"));
  assert_false(mu_spark_tags_have(app.tags, "muster-j"));
  assert_int_equal(mu_spark_yarn_phase("FINISHED", "SUCCEEDED"), MU_SPARK_APP_SUCCEEDED);
  assert_int_equal(mu_spark_yarn_phase("FINISHED", "UNDEFINED"), MU_SPARK_APP_FAILED);
  assert_int_equal(mu_spark_yarn_phase("KILLED", "KILLED"), MU_SPARK_APP_KILLED);
  assert_int_equal(mu_spark_yarn_phase("ACCEPTED", "UNDEFINED"), MU_SPARK_APP_PENDING);
  assert_int_equal(mu_spark_yarn_phase("RUNNING", "UNDEFINED"), MU_SPARK_APP_RUNNING);
  const char *nf =
      "{\"RemoteException\":{\"exception\":\"NotFoundException\",\"message\":\"java.lang.Exception: app with id: "
      "application_1_9 not found\",\"javaClassName\":\"org.apache.hadoop.yarn.webapp.NotFoundException\"}}";
  assert_int_equal(mu_spark_yarn_app_parse(nf, strlen(nf), &app, why), -2);
  assert_non_null(strstr(why, "app with id: application_1_9 not found"));
  assert_int_equal(mu_spark_yarn_app_parse("<html>proxy error</html>", 24, &app, why), -1);
  assert_non_null(strstr(why, "not JSON"));
  assert_int_equal(mu_spark_yarn_app_parse("{\"app\":{}}", 10, &app, why), -1);
  char text[200];
  mu_spark_error_text(nf, strlen(nf), text, sizeof text);
  assert_string_equal(text, "java.lang.Exception: app with id: application_1_9 not found");
  const char *html =
      "<html><head><title>Error 401 Authentication required</title></head>\n<body><h2>HTTP ERROR "
      "401</h2></body></html>";
  mu_spark_error_text(html, strlen(html), text, sizeof text);
  assert_string_equal(text, "Error 401 Authentication required HTTP ERROR 401");
  mu_spark_yarn_app apps[4];
  const char *list =
      "{\"apps\":{\"app\":[{\"id\":\"application_1_1\",\"state\":\"RUNNING\",\"applicationTags\":\"muster-j-t,muster-j-"
      "t-a1\"},"
      "{\"id\":\"application_1_2\",\"state\":\"RUNNING\",\"applicationTags\":\"other\"}]}}";
  assert_int_equal(mu_spark_yarn_apps_parse(list, strlen(list), "muster-j-t", apps, 4, why), 1);
  assert_string_equal(apps[0].id, "application_1_1");
  assert_int_equal(mu_spark_yarn_apps_parse("{\"apps\":null}", 13, "x", apps, 4, why), 0);
  char st[32];
  assert_int_equal(mu_spark_yarn_state_parse("{\"state\":\"KILLED\"}", 18, st), 0);
  assert_string_equal(st, "KILLED");
}

static void test_standalone_answers(void **state) {
  (void)state;
  char why[MU_SPARK_TEXT_MAX];
  mu_spark_rest_reply r;
  const char *create =
      "{\"action\":\"CreateSubmissionResponse\",\"message\":\"Driver successfully submitted as "
      "driver-20151008145126-0000\","
      "\"serverSparkVersion\":\"3.5.0\",\"submissionId\":\"driver-20151008145126-0000\",\"success\":true}";
  assert_int_equal(mu_spark_rest_parse(create, strlen(create), &r, why), 0);
  assert_true(r.success);
  assert_string_equal(r.submission_id, "driver-20151008145126-0000");
  const char *standby =
      "{\"action\":\"CreateSubmissionResponse\",\"success\":false,\"message\":\"Current state is not alive: STANDBY. "
      "Can only accept driver submissions in ALIVE state.\"}";
  assert_int_equal(mu_spark_rest_parse(standby, strlen(standby), &r, why), 0);
  assert_false(r.success);
  assert_non_null(strstr(r.message, "STANDBY"));
  assert_int_equal(mu_spark_driver_phase("FINISHED"), MU_SPARK_APP_SUCCEEDED);
  assert_int_equal(mu_spark_driver_phase("ERROR"), MU_SPARK_APP_FAILED);
  assert_int_equal(mu_spark_driver_phase("FAILED"), MU_SPARK_APP_FAILED);
  assert_int_equal(mu_spark_driver_phase("KILLED"), MU_SPARK_APP_KILLED);
  assert_int_equal(mu_spark_driver_phase("UNKNOWN"), MU_SPARK_APP_TRANSIENT);
  assert_int_equal(mu_spark_driver_phase("RELAUNCHING"), MU_SPARK_APP_TRANSIENT);
  assert_int_equal(mu_spark_driver_phase("SUBMITTED"), MU_SPARK_APP_PENDING);
  assert_int_equal(mu_spark_rest_parse("{\"success\":true}", 16, &r, why), -1);
  const char *args[] = {"a", "b c"};
  const char *k[] = {"spark.executor.memory"}, *v[] = {"2g"};
  mu_spark_rest_create c = {.app_resource = "hdfs:///a.jar",
                            .main_class = "a.B",
                            .app_name = "n",
                            .app_args = args,
                            .n_args = 2,
                            .prop_keys = k,
                            .prop_values = v,
                            .n_props = 1,
                            .master = "spark://m:7077"};
  char *body = mu_spark_rest_create_body(&c);
  assert_non_null(strstr(body, "\"action\":\"CreateSubmissionRequest\""));
  assert_non_null(strstr(body, "\"appArgs\":[\"a\",\"b c\"]"));
  assert_non_null(strstr(body, "\"spark.app.name\":\"n\""));
  assert_non_null(strstr(body, "\"clientSparkVersion\""));
  free(body);
  assert_true(mu_spark_jobs_progress(
                  "[{\"numTasks\":10,\"numCompletedTasks\":5},{\"numTasks\":30,\"numCompletedTasks\":5}]", 77) == 25.0);
  assert_true(mu_spark_jobs_progress("[]", 2) == -1);
}

static void test_spec_livy_and_auth(void **state) {
  (void)state;
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  const char *extra = "\"secrets\":[{\"name\":\"PW\",\"value\":\"s3cr3t\"}]";
  assert_int_equal(
      parse(
          extra,
          "{\"via\":\"livy\",\"livy_url\":\"http://l:8998/\",\"main_class\":\"a.B\",\"app_resource\":\"hdfs:///a.jar\","
          "\"queue\":\"etl\",\"auth_user\":\"muster\",\"auth_password\":\"${secret.PW}\"}",
          &s, err),
      0);
  assert_int_equal(s->via, MU_SPARK_VIA_LIVY);
  assert_true(s->cluster);
  assert_string_equal(s->auth_user, "muster");
  assert_string_equal(s->auth_password, "s3cr3t");
  char *m = mu_spark_mask(s, "pw=s3cr3t", 9, NULL);
  assert_string_equal(m, "pw=***");
  free(m);
  mu_spark_spec_free(s);
  assert_int_not_equal(
      parse(extra,
            "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"auth_token\":\"${secret.PW}\","
            "\"auth_user\":\"u\",\"auth_password\":\"${secret.PW}\"}",
            &s, err),
      0);
  assert_non_null(strstr(err, "spark.auth_token: conflicts with auth_user/auth_password"));
  assert_int_not_equal(
      parse(extra,
            "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"auth_token\":\"${secret.PW}\","
            "\"auth_negotiate\":true}",
            &s, err),
      0);
  assert_non_null(strstr(err, "spark.auth_negotiate: conflicts with auth_token"));
  assert_int_equal(parse(NULL,
                         "{\"master\":\"yarn\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\",\"app_resource\":"
                         "\"a.jar\",\"yarn_rm_urls\":[\"http://rm:8088\"],\"authNegotiate\":true}",
                         &s, err),
                   0);
  assert_true(s->auth_negotiate);
  mu_spark_spec_free(s);
}

static void test_livy_answers(void **state) {
  (void)state;
  char why[MU_SPARK_TEXT_MAX];
  mu_spark_livy_batch b;
  const char *created =
      "{\"id\":7,\"name\":\"etl [muster-j1-etl-a2]\",\"owner\":null,\"proxyUser\":null,\"state\":\"starting\","
      "\"appId\":null,\"appInfo\":{\"driverLogUrl\":null,\"sparkUiUrl\":null},\"log\":[\"stdout: \"]}";
  assert_int_equal(mu_spark_livy_batch_parse(created, strlen(created), &b, why), 0);
  assert_string_equal(b.id, "7");
  assert_string_equal(b.state, "starting");
  assert_string_equal(b.app_id, "");
  assert_int_equal(mu_spark_livy_batch_parse(LIT("{\"id\":7,\"state\":\"dead\"}"), &b, why), 0);
  assert_int_equal(mu_spark_livy_phase(b.state), MU_SPARK_APP_FAILED);
  assert_int_equal(mu_spark_livy_batch_parse(LIT("{\"msg\":\"Session '7' not found.\"}"), &b, why), -1);
  assert_int_equal(mu_spark_livy_batch_parse(LIT("{\"id\":-1,\"state\":\"dead\"}"), &b, why), -1);
  assert_int_equal(mu_spark_livy_batch_parse(LIT("<html>"), &b, why), -1);
  assert_non_null(strstr(why, "not JSON"));
  assert_int_equal(mu_spark_livy_phase("starting"), MU_SPARK_APP_PENDING);
  assert_int_equal(mu_spark_livy_phase("running"), MU_SPARK_APP_RUNNING);
  assert_int_equal(mu_spark_livy_phase("success"), MU_SPARK_APP_SUCCEEDED);
  assert_int_equal(mu_spark_livy_phase("killed"), MU_SPARK_APP_KILLED);
  assert_int_equal(mu_spark_livy_phase("shutting_down"), MU_SPARK_APP_TRANSIENT);
  /* GET /batches: the newest batch of the task's attempts; another task's or a look-alike is not taken */
  const char *list =
      "{\"from\":0,\"total\":4,\"sessions\":["
      "{\"id\":1,\"name\":\"etl [muster-j1-etl-a1]\",\"state\":\"dead\"},"
      "{\"id\":2,\"name\":\"etl [muster-j1-etl-a2]\",\"state\":\"running\"},"
      "{\"id\":3,\"name\":\"etl [muster-j1-etl-other-a1]\",\"state\":\"running\"},"
      "{\"id\":4,\"name\":\"etl [muster-j1-etl-ax]\",\"state\":\"running\"}]}";
  assert_int_equal(mu_spark_livy_find(list, strlen(list), "muster-j1-etl", &b, why), 1);
  assert_string_equal(b.id, "2");
  assert_int_equal(mu_spark_livy_find(list, strlen(list), "muster-j9-x", &b, why), 0);
  assert_int_equal(mu_spark_livy_find(LIT("{\"from\":0}"), "muster-j1-etl", &b, why), -1);
  const char *args[] = {"--day", "x y"}, *jars[] = {"hdfs:///d.jar"}, *k[] = {"spark.yarn.tags"}, *v[] = {"t1,t2"};
  mu_spark_livy_create c = {.file = "hdfs:///a.jar",
                            .class_name = "a.B",
                            .name = "etl [t]",
                            .queue = "q",
                            .executor_memory = "2g",
                            .num_executors = 3,
                            .args = args,
                            .n_args = 2,
                            .jars = jars,
                            .n_jars = 1,
                            .conf_keys = k,
                            .conf_values = v,
                            .n_conf = 1};
  char *body = mu_spark_livy_create_body(&c);
  assert_non_null(body);
  assert_non_null(strstr(body, "\"file\":\"hdfs:///a.jar\""));
  assert_non_null(strstr(body, "\"className\":\"a.B\""));
  assert_non_null(strstr(body, "\"args\":[\"--day\",\"x y\"]"));
  assert_non_null(strstr(body, "\"numExecutors\":3"));
  assert_non_null(strstr(body, "\"jars\":[\"hdfs:///d.jar\"]"));
  assert_non_null(strstr(body, "\"conf\":{\"spark.yarn.tags\":\"t1,t2\"}"));
  assert_null(strstr(body, "driverCores"));
  free(body);
}

static void test_k8s_status(void **state) {
  (void)state;
  mu_spark_k8s_status ks;
  const char *running =
      "Application status (driver): \n\t pod name: etl-1a2b-driver\n\t namespace: etl\n\t phase: Running\n";
  mu_spark_k8s_status_parse(running, strlen(running), &ks);
  assert_true(ks.found);
  assert_string_equal(ks.phase, "Running");
  assert_int_equal(ks.exit_code, -1);
  const char *failed =
      "Application status (driver): \n\t pod name: x-driver\n\t phase: Failed\n\t container status: \n"
      "\t\t exit code: 137\n";
  mu_spark_k8s_status_parse(failed, strlen(failed), &ks);
  assert_string_equal(ks.phase, "Failed");
  assert_int_equal(ks.exit_code, 137);
  assert_int_equal(mu_spark_k8s_phase(ks.phase), MU_SPARK_APP_FAILED);
  mu_spark_k8s_status_parse(LIT("Application not found.\n"), &ks);
  assert_true(ks.not_found);
  assert_false(ks.found);
  mu_spark_k8s_status_parse(LIT("24/01/01 WARN something\n"), &ks);
  assert_false(ks.found || ks.not_found);
  assert_int_equal(mu_spark_k8s_phase("Pending"), MU_SPARK_APP_PENDING);
  assert_int_equal(mu_spark_k8s_phase("Succeeded"), MU_SPARK_APP_SUCCEEDED);
  assert_int_equal(mu_spark_k8s_phase("Unknown"), MU_SPARK_APP_TRANSIENT);
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  assert_int_equal(
      parse(NULL,
            "{\"master\":\"k8s://https://"
            "k:6443\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\","
            "\"spark_home\":\"/opt/spark\",\"conf\":{\"spark.kubernetes.appKillPodDeletionGracePeriod\":\"5\"}}",
            &s, err),
      0);
  mu_spark_argv a;
  assert_int_equal(mu_spark_k8s_op_argv(s, "--kill", "etl:x-driver", &a), 0);
  assert_int_equal(a.n, 7);
  assert_string_equal(a.argv[0], "/opt/spark/bin/spark-submit");
  assert_string_equal(a.argv[1], "--kill");
  assert_string_equal(a.argv[2], "etl:x-driver");
  assert_string_equal(a.argv[4], "k8s://https://k:6443");
  assert_string_equal(a.argv[6], "spark.kubernetes.appKillPodDeletionGracePeriod=5");
  mu_spark_argv_free(&a);
  assert_int_equal(mu_spark_k8s_op_argv(s, "--status", "etl:x-driver", &a), 0);
  assert_int_equal(a.n, 5);
  mu_spark_argv_free(&a);
  mu_spark_spec_free(s);
}

static void on_saved(void *arg, int rc, const char *msg) {
  (void)msg;
  *(int *)arg = rc;
}

/* proxy_user (Livy only) and the Kubernetes API fields (k8s:// masters only; the API server
 * defaults to the master's address, the token is a secret reference). */
static void test_spec_proxy_user_and_k8s_api(void **state) {
  (void)state;
  mu_spark_spec *s = NULL;
  char err[MUSTER_ERRBUF_SIZE];
  assert_int_equal(parse(NULL,
                         "{\"via\":\"livy\",\"livy_url\":\"http://l:8998\",\"main_class\":\"a.B\","
                         "\"app_resource\":\"hdfs:///a.jar\",\"proxy_user\":\"etl-svc\"}",
                         &s, err),
                   0);
  assert_string_equal(s->proxy_user, "etl-svc");
  mu_spark_spec_free(s);
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"proxy_user\":\"bob\"}",
          "spark.proxy_user: only with via livy");
  refused("{\"master\":\"yarn\",\"main_class\":\"a.B\",\"app_resource\":\"a.jar\",\"k8s_api_url\":\"https://k:6443\"}",
          "spark.k8s_api_url: only with a k8s:// master");
  refused(
      "{\"master\":\"k8s://https://k:6443\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\","
      "\"app_resource\":\"a.jar\",\"k8s_token\":\"plain\"}",
      "spark.k8s_token: must be a ${secret.NAME} reference");
  refused(
      "{\"master\":\"k8s://https://k:6443\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\","
      "\"app_resource\":\"a.jar\",\"k8s_ca_file\":\"ca.pem\"}",
      "spark.k8s_ca_file: \"ca.pem\" must be an absolute path");
  refused(
      "{\"master\":\"k8s://https://k:6443\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\","
      "\"app_resource\":\"a.jar\",\"k8s_api_url\":\"k:6443\"}",
      "spark.k8s_api_url: \"k:6443\" must be an http:// or https:// URL");
  const char *extra = "\"secrets\":[{\"name\":\"T\",\"value\":\"tok\"}]";
  assert_int_equal(parse(extra,
                         "{\"master\":\"k8s://k8s-api:6443\",\"deploy_mode\":\"cluster\",\"main_class\":\"a.B\","
                         "\"app_resource\":\"a.jar\",\"k8s_token\":\"${secret.T}\",\"k8s_ca_file\":\"/etc/k/ca.pem\"}",
                         &s, err),
                   0);
  assert_string_equal(s->k8s_api_url, "https://k8s-api:6443"); /* k8s://host:port is https */
  assert_string_equal(s->k8s_token, "tok");
  assert_string_equal(s->k8s_ca_file, "/etc/k/ca.pem");
  mu_spark_spec_free(s);
  mu_spark_defaults def = {.k8s_api_url = "https://api.internal:443/", .k8s_ca_file = "/ca.pem"};
  assert_int_equal(mu_spark_spec_parse("{\"type\":\"spark\"}",
                                       "{\"master\":\"k8s://https://k:6443\",\"deploy_mode\":\"cluster\","
                                       "\"main_class\":\"a.B\",\"app_resource\":\"a.jar\"}",
                                       &def, &s, err),
                   0);
  assert_string_equal(s->k8s_api_url, "https://api.internal:443");
  assert_string_equal(s->k8s_ca_file, "/ca.pem");
  mu_spark_spec_free(s);
}

/* The API server's PodList and Status bodies; the label selector URL; label values of at most
 * 63 bytes. */
static void test_k8s_api(void **state) {
  (void)state;
  char why[MU_SPARK_TEXT_MAX], url[1024];
  assert_int_equal(mu_spark_k8s_pods_url("https://k:6443", "etl", "muster-task", "muster-j1-etl", url, sizeof url), 0);
  assert_string_equal(url,
                      "https://k:6443/api/v1/namespaces/etl/pods?labelSelector=spark-role%3Ddriver%2Cmuster-task%3D"
                      "muster-j1-etl");
  assert_int_equal(mu_spark_k8s_pods_url("https://k:6443", NULL, "k", "v", url, 20), -1);
  const char *list =
      "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"9\"},\"items\":["
      "{\"metadata\":{\"name\":\"etl-1-driver\",\"namespace\":\"etl\",\"labels\":{\"muster-attempt\":\"muster-j1-etl-"
      "a1\"},"
      "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},\"status\":{\"phase\":\"Running\"}},"
      "{\"metadata\":{\"name\":\"etl-2-driver\",\"namespace\":\"etl\",\"labels\":{\"muster-attempt\":\"muster-j1-etl-"
      "a2\"}},"
      "\"status\":{\"phase\":\"Pending\"}},"
      "{\"metadata\":{\"namespace\":\"etl\"}}]}";
  mu_spark_k8s_pod pods[4];
  assert_int_equal(mu_spark_k8s_pods_parse(list, strlen(list), pods, 4, why), 2);
  assert_string_equal(pods[0].name, "etl-1-driver");
  assert_true(pods[0].deleting);
  assert_string_equal(pods[1].phase, "Pending");
  assert_string_equal(pods[1].attempt, "muster-j1-etl-a2");
  assert_false(pods[1].deleting);
  assert_int_equal(mu_spark_k8s_pods_parse(list, strlen(list), pods, 1, why), 1);
  const char *unauth =
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
      "\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}";
  assert_int_equal(mu_spark_k8s_pods_parse(unauth, strlen(unauth), pods, 4, why), -1);
  assert_string_equal(why, "Unauthorized: Unauthorized");
  assert_int_equal(mu_spark_k8s_pods_parse(LIT("{\"kind\":\"Pod\"}"), pods, 4, why), -1);
  assert_non_null(strstr(why, "no \"items\" array"));
  assert_int_equal(mu_spark_k8s_pods_parse(LIT("<html>"), pods, 4, why), -1);
  char label[MU_SPARK_K8S_LABEL_MAX + 1], long_tag[120];
  mu_spark_k8s_label_value("muster-j1-etl-a1", label);
  assert_string_equal(label, "muster-j1-etl-a1");
  memset(long_tag, 'x', sizeof long_tag - 1);
  long_tag[sizeof long_tag - 1] = '\0';
  mu_spark_k8s_label_value(long_tag, label);
  assert_int_equal(strlen(label), 63);
  char other[MU_SPARK_K8S_LABEL_MAX + 1];
  long_tag[100] = 'y';
  mu_spark_k8s_label_value(long_tag, other);
  assert_string_not_equal(label, other); /* a hash keeps long tags apart */
}

/* GET /batches/{id}/log: the lines, newest kept when they do not all fit. */
static void test_livy_log(void **state) {
  (void)state;
  char why[MU_SPARK_TEXT_MAX];
  const char *body = "{\"id\":3,\"from\":0,\"total\":3,\"log\":[\"stdout: \",\"line two\",\"Exception in main\"]}";
  char *t = mu_spark_livy_log_text(body, strlen(body), 4096, why);
  assert_string_equal(t, "stdout: \nline two\nException in main\n");
  free(t);
  t = mu_spark_livy_log_text(body, strlen(body), 30, why);
  assert_string_equal(t, "line two\nException in main\n");
  free(t);
  assert_null(mu_spark_livy_log_text(LIT("{\"msg\":\"Session '3' not found.\"}"), 100, why));
  assert_non_null(strstr(why, "no \"log\" array"));
}

static void test_handle_file(void **state) {
  (void)state;
  char dir[] = "/tmp/spark_handle_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[4200];
  mu_spark_handle_path(dir, "agent/1", "j-1", "etl task", path, sizeof path);
  assert_null(strstr(path + strlen(dir) + 1, "/"));
  mu_spark_handle h = {.phase = MU_SPARK_H_SUBMITTED, .attempt = 2}, got;
  snprintf(h.kind, sizeof h.kind, "yarn");
  snprintf(h.app_id, sizeof h.app_id, "application_1_1");
  snprintf(h.tag, sizeof h.tag, "muster-j-1-etl-task");
  char why[256];
  assert_int_equal(mu_spark_handle_load(path, &got, why), 0); /* none yet */
  uv_loop_t loop;
  uv_loop_init(&loop);
  int done = 99;
  assert_int_equal(mu_spark_handle_save(&loop, path, &h, on_saved, &done), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(done, 0);
  assert_int_equal(mu_spark_handle_load(path, &got, why), 1);
  assert_int_equal(got.phase, MU_SPARK_H_SUBMITTED);
  assert_int_equal(got.attempt, 2);
  assert_string_equal(got.kind, "yarn");
  assert_string_equal(got.app_id, "application_1_1");
  assert_string_equal(got.tag, "muster-j-1-etl-task");
  h.phase = MU_SPARK_H_DONE;
  assert_int_equal(mu_spark_handle_save(&loop, path, &h, on_saved, &done), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(mu_spark_handle_load(path, &got, why), 1);
  assert_int_equal(got.phase, MU_SPARK_H_DONE);
  /* a corrupt file is an error, not "none" */
  FILE *fp = fopen(path, "w");
  fputs("{\"phase\":", fp);
  fclose(fp);
  assert_int_equal(mu_spark_handle_load(path, &got, why), -1);
  assert_non_null(strstr(why, "not a handle"));
  uv_loop_close(&loop);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validation_names_the_field),
      cmocka_unit_test(test_spec_defaults),
      cmocka_unit_test(test_argv_golden),
      cmocka_unit_test(test_display_masks_secrets),
      cmocka_unit_test(test_tags),
      cmocka_unit_test(test_output_scan),
      cmocka_unit_test(test_yarn_answers),
      cmocka_unit_test(test_standalone_answers),
      cmocka_unit_test(test_handle_file),
      cmocka_unit_test(test_spec_livy_and_auth),
      cmocka_unit_test(test_livy_answers),
      cmocka_unit_test(test_k8s_status),
      cmocka_unit_test(test_spec_proxy_user_and_k8s_api),
      cmocka_unit_test(test_k8s_api),
      cmocka_unit_test(test_livy_log),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
