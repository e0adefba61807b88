/* Unit tests of the Flink plugin's parts that need no cluster: every spec refusal (each naming
 * its field), defaults and folding of YARN/K8s options into conf, derived JobIDs, the readers
 * of the JobManager's replies (as the notes document them), CLI argv and CLI output lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flink_cli.h"
#include "flink_json.h"
#include "flink_spec.h"
#include "muster_plugin.h"

#define SESSION "\"jobmanagerUrl\":\"http://jm:8081/\",\"jar\":\"app.jar\""

static mu_flink_spec *parse_ok(const char *cfg) {
  char err[MUSTER_ERRBUF_SIZE] = "";
  mu_flink_spec *s = NULL;
  int rc = mu_flink_spec_parse("{\"name\":\"t\",\"timeout\":\"1h\"}", cfg, &s, err);
  if (rc != 0) fail_msg("refused %s: %s", cfg, err);
  return s;
}

static void refused(const char *cfg, const char *want) {
  char err[MUSTER_ERRBUF_SIZE] = "";
  mu_flink_spec *s = NULL;
  int rc = mu_flink_spec_parse("{}", cfg, &s, err);
  if (rc == 0) fail_msg("accepted %s", cfg);
  assert_null(s);
  if (strstr(err, want) == NULL) fail_msg("%s: error \"%s\" lacks \"%s\"", cfg, err, want);
}

static void test_spec_defaults(void **state) {
  (void)state;
  mu_flink_spec *s = parse_ok("{" SESSION
                              ",\"entry_class\":\"com.example.Wc\",\"programArgs\":[\"--in\",\"a b\"],"
                              "\"parallelism\":4}");
  assert_int_equal(s->target, MU_FLINK_TARGET_SESSION);
  assert_int_equal(s->kind, MU_FLINK_BATCH);
  assert_int_equal(s->program, MU_FLINK_PROGRAM_JAR);
  assert_string_equal(s->rest_url, "http://jm:8081");
  assert_string_equal(s->entry_class, "com.example.Wc");
  assert_int_equal(s->n_args, 2);
  assert_string_equal(s->args[1], "a b");
  assert_int_equal(s->parallelism, 4);
  assert_int_equal(s->on_cancel, MU_FLINK_CANCEL_PLAIN);
  assert_int_equal(s->poll_ms, MU_FLINK_DEFAULT_POLL_MS);
  assert_int_equal(s->timeout_ms, 3600000);
  assert_string_equal(s->job_id, "");
  mu_flink_spec_free(s);

  s = parse_ok("{" SESSION
               ",\"kind\":\"streaming\",\"on_cancel\":\"drain\",\"savepoint_dir\":\"s3://b/sp\","
               "\"job_id\":\"00000000000000000000000000ABCDEF\",\"savepoint_path\":\"file:/sp/1\","
               "\"restore_mode\":\"claim\",\"allow_non_restored_state\":true,\"poll_interval\":\"250ms\","
               "\"savepoint_timeout\":\"2s\"}");
  assert_int_equal(s->kind, MU_FLINK_STREAMING);
  assert_int_equal(s->on_cancel, MU_FLINK_CANCEL_DRAIN);
  assert_string_equal(s->job_id, "00000000000000000000000000abcdef");
  assert_string_equal(s->restore_mode, "CLAIM");
  assert_true(s->allow_non_restored_state);
  assert_int_equal(s->poll_ms, 250);
  assert_int_equal(s->savepoint_timeout_ms, 2000);
  mu_flink_spec_free(s);

  s = parse_ok("{" SESSION
               ",\"kind\":\"streaming\",\"upgrade_mode\":\"last-state\",\"max_checkpoint_age\":\"10m\","
               "\"upgrade_from\":\"0123456789ABCDEF0123456789abcdef\",\"force_upgrade\":true}");
  assert_int_equal(s->upgrade, MU_FLINK_UPGRADE_LAST_STATE);
  assert_string_equal(s->upgrade_from, "0123456789abcdef0123456789abcdef");
  assert_int_equal(s->max_checkpoint_age_ms, 600000);
  assert_true(s->force_upgrade);
  mu_flink_spec_free(s);

  /* the legacy flag, and the savepoint dir from conf */
  s = parse_ok("{" SESSION
               ",\"kind\":\"streaming\",\"savepointOnCancel\":true,"
               "\"conf\":{\"state.savepoints.dir\":\"file:/sp\"}}");
  assert_int_equal(s->on_cancel, MU_FLINK_CANCEL_SAVEPOINT);
  assert_string_equal(s->savepoint_dir, "file:/sp");
  mu_flink_spec_free(s);

  /* YARN options fold into conf */
  s = parse_ok(
      "{\"target\":\"yarn-application\",\"jar\":\"lib/app.jar\",\"flink_home\":\"/opt/flink\","
      "\"yarn_queue\":\"etl\",\"yarn_app_name\":\"wc\",\"jobmanager_memory\":\"1600m\",\"slots\":2,"
      "\"yarn_rm_url\":\"http://rm:8088\"}");
  assert_int_equal(s->target, MU_FLINK_TARGET_YARN_APPLICATION);
  assert_int_equal(s->n_conf, 4);
  assert_string_equal(s->conf[0].key, "yarn.application.queue");
  assert_string_equal(s->conf[3].key, "taskmanager.numberOfTaskSlots");
  assert_string_equal(s->conf[3].value, "2");
  mu_flink_spec_free(s);

  s = parse_ok("{\"target\":\"yarn-per-job\",\"python\":\"job.py\"}");
  assert_int_equal(s->program, MU_FLINK_PROGRAM_PYTHON);
  mu_flink_spec_free(s);
  s = parse_ok("{\"target\":\"local\",\"sql_script\":\"q.sql\"}");
  assert_int_equal(s->program, MU_FLINK_PROGRAM_SQL);
  mu_flink_spec_free(s);
}

static void test_spec_refusals(void **state) {
  (void)state;
  refused("{\"jobmanagerUrl\":\"http://jm:8081\"}", "exactly one program");
  refused("{" SESSION ",\"python\":\"a.py\"}", "exactly one program");
  refused("{\"jobmanagerUrl\":\"http://jm\",\"jar\":\"../x.jar\"}", "flink.jar: \"..\"");
  refused("{\"jobmanagerUrl\":\"http://jm\",\"jar\":\"x.zip\"}", "flink.jar: \"x.zip\" is not a .jar");
  refused("{\"jar\":\"x.jar\"}", "flink.jobmanager_url: target session needs");
  refused("{\"jobmanagerUrl\":\"ftp://jm\",\"jar\":\"x.jar\"}", "flink.jobmanager_url: \"ftp://jm\" is not an http(s)");
  refused("{" SESSION ",\"target\":\"yarn-session\"}", "flink.target: unknown target \"yarn-session\"");
  refused("{" SESSION ",\"kind\":\"stream\"}", "flink.kind: unknown kind");
  refused("{" SESSION ",\"entryClass\":\"com.x;rm -rf\"}", "flink.entry_class");
  refused("{" SESSION ",\"job_id\":\"abc\"}", "flink.job_id: \"abc\" is not a JobID");
  refused("{" SESSION ",\"parallelism\":-1}", "flink.parallelism");
  refused("{" SESSION ",\"parallelism\":\"x\"}", "flink.parallelism: want a whole number");
  refused("{" SESSION ",\"kind\":\"streaming\",\"on_cancel\":\"savepoint\"}",
          "flink.on_cancel: savepoint needs savepoint_dir");
  refused("{" SESSION ",\"on_cancel\":\"stop\"}", "flink.on_cancel: unknown action");
  refused("{" SESSION ",\"on_cancel\":\"cancel\",\"savepoint_on_cancel\":true,\"savepoint_dir\":\"/s\"}",
          "flink.savepoint_on_cancel: conflicts");
  refused("{" SESSION ",\"restore_mode\":\"claim\"}", "flink.restore_mode: needs savepoint_path");
  refused("{" SESSION ",\"savepoint_path\":\"/s\",\"restore_mode\":\"copy\"}", "flink.restore_mode: unknown mode");
  refused("{" SESSION ",\"yarn_queue\":\"q\"}", "flink.yarn_queue: a YARN option, but target is session");
  refused("{\"target\":\"yarn-application\",\"jar\":\"a.jar\",\"kubernetes_namespace\":\"n\"}",
          "flink.kubernetes_namespace: a Kubernetes option, but target is yarn-application");
  refused("{\"target\":\"kubernetes-application\",\"jar\":\"local:///opt/a.jar\"}", "flink.kubernetes_cluster_id");
  refused("{" SESSION ",\"slots\":2}", "flink.slots");
  refused(
      "{\"target\":\"yarn-application\",\"jar\":\"a.jar\",\"yarn_queue\":\"a\",\"conf\":"
      "{\"yarn.application.queue\":\"b\"}}",
      "flink.yarn_queue: conflicts with conf yarn.application.queue=b");
  refused("{" SESSION ",\"conf\":{\"a=b\":\"c\"}}", "flink.conf: bad key");
  refused("{" SESSION ",\"conf\":{\"a\":1}}", "flink.conf.a: want a string");
  refused("{" SESSION ",\"poll_interval\":\"soon\"}", "flink.poll_interval: bad duration");
  refused("{" SESSION ",\"poll_interval\":\"10ms\"}", "flink.poll_interval: at least 50ms");
  refused("{\"jobmanagerUrl\":\"http://jm\",\"python\":\"a.py\"}", "flink.flink_home");
  refused("{" SESSION ",\"sql_script\":\"x\"}", "exactly one program");
  refused("{\"target\":\"local\",\"sql_script\":\"q.sql\",\"entry_class\":\"A\"}", "flink.entry_class: a SQL script");
  refused("{" SESSION ",\"kind\":\"streaming\",\"detached\":true,\"on_cancel\":\"savepoint\",\"savepoint_dir\":\"/s\"}",
          "flink.detached");
  refused("{" SESSION ",\"program_args\":[1]}", "flink.program_args[0]: want a string");
  refused("[1]", "not a JSON object");
  refused("{" SESSION ",\"kind\":\"batch\",\"kind\":\"streaming\"}", "not valid JSON: duplicate object key");
  refused("{" SESSION ",\"kind\":\"streaming\",\"upgrade_mode\":\"stateless\"}",
          "flink.upgrade_mode: needs upgrade_from");
  refused("{" SESSION ",\"kind\":\"streaming\",\"upgrade_from\":\"0123456789abcdef0123456789abcdef\"}",
          "flink.upgrade_from: needs upgrade_mode");
  refused("{" SESSION ",\"kind\":\"streaming\",\"upgrade_mode\":\"blue-green\"}", "flink.upgrade_mode: unknown mode");
  refused("{" SESSION ",\"upgrade_mode\":\"stateless\",\"upgrade_from\":\"0123456789abcdef0123456789abcdef\"}",
          "upgrades are for streaming jobs");
  refused("{" SESSION
          ",\"kind\":\"streaming\",\"upgrade_mode\":\"savepoint\","
          "\"upgrade_from\":\"0123456789abcdef0123456789abcdef\"}",
          "flink.upgrade_mode: savepoint needs savepoint_dir");
  refused("{" SESSION
          ",\"kind\":\"streaming\",\"upgrade_mode\":\"last-state\",\"savepoint_path\":\"/s\","
          "\"upgrade_from\":\"0123456789abcdef0123456789abcdef\"}",
          "flink.savepoint_path: conflicts with upgrade_mode");
  refused(
      "{\"target\":\"yarn-application\",\"jar\":\"a.jar\",\"kind\":\"streaming\",\"upgrade_mode\":\"stateless\","
      "\"upgrade_from\":\"0123456789abcdef0123456789abcdef\"}",
      "upgrades run over REST");
  refused("{" SESSION ",\"kind\":\"streaming\",\"upgrade_mode\":\"stateless\",\"upgrade_from\":\"xyz\"}",
          "flink.upgrade_from: \"xyz\" is not a JobID");
  refused("{" SESSION ",\"savepoint_dir\":\"/a b\",\"on_cancel\":\"savepoint\",\"kind\":\"streaming\"}",
          "flink.savepoint_dir: spaces");
}

static void test_job_ids(void **state) {
  (void)state;
  char a[33], b[33], c[33];
  mu_flink_job_id_derive("j1/web-1/stream", 1, a);
  mu_flink_job_id_derive("j1/web-1/stream", 1, b);
  mu_flink_job_id_derive("j1/web-1/stream", 2, c);
  assert_string_equal(a, b);
  assert_string_not_equal(a, c);
  assert_true(mu_flink_job_id_valid(a) && mu_flink_job_id_valid(c));
  assert_false(mu_flink_job_id_valid("ABCDEF00000000000000000000000000"));
  assert_false(mu_flink_job_id_valid("abc"));
  assert_true(mu_flink_job_state_terminal(MU_FLINK_JOB_CANCELED));
  assert_false(mu_flink_job_state_terminal(MU_FLINK_JOB_SUSPENDED));
  assert_int_equal(mu_flink_job_state_parse("RESTARTING"), MU_FLINK_JOB_RESTARTING);
  assert_int_equal(mu_flink_job_state_parse("running"), MU_FLINK_JOB_UNKNOWN);
}

#define B(s) s, strlen(s)

static void test_replies(void **state) {
  (void)state;
  char id[256], err[256], text[1024];
  assert_int_equal(mu_flink_json_upload(B("{\"filename\":\"/tmp/flink-web-1/flink-web-upload/"
                                          "5a1c_app.jar\",\"status\":\"success\"}"),
                                        id, sizeof id, err, sizeof err),
                   0);
  assert_string_equal(id, "5a1c_app.jar");
  assert_int_not_equal(mu_flink_json_upload(B("{\"status\":\"success\"}"), id, sizeof id, err, sizeof err), 0);
  assert_non_null(strstr(err, "filename"));
  assert_int_equal(mu_flink_json_jar_find(B("{\"address\":\"x\",\"files\":[{\"id\":\"1_a.jar\",\"name\":\"a.jar\"},"
                                            "{\"id\":\"2_b.jar\",\"name\":\"b.jar\"}]}"),
                                          "b.jar", id, sizeof id, err, sizeof err),
                   0);
  assert_string_equal(id, "2_b.jar");
  assert_int_equal(mu_flink_json_jar_find(B("{\"files\":[]}"), "b.jar", id, sizeof id, err, sizeof err), -ENOENT);

  char jid[33];
  assert_int_equal(mu_flink_json_run(B("{\"jobid\":\"a5ee0f9c2d4b4c8a9e1f000000000001\"}"), jid, err, sizeof err), 0);
  assert_string_equal(jid, "a5ee0f9c2d4b4c8a9e1f000000000001");
  assert_int_not_equal(mu_flink_json_run(B("{\"jobid\":\"nope\"}"), jid, err, sizeof err), 0);

  mu_flink_job_info ji;
  assert_int_equal(mu_flink_json_job(B("{\"jid\":\"x\",\"name\":\"wc\",\"isStoppable\":false,\"state\":\"RUNNING\","
                                       "\"start-time\":1700000000000,\"end-time\":-1,\"duration\":4200,"
                                       "\"now\":1700000004200,\"timestamps\":{},\"vertices\":[],"
                                       "\"status-counts\":{}}"),
                                     &ji, err, sizeof err),
                   0);
  assert_int_equal(ji.state, MU_FLINK_JOB_RUNNING);
  assert_int_equal(ji.duration_ms, 4200);
  assert_string_equal(ji.name, "wc");
  assert_int_equal(mu_flink_json_job(B("{\"state\":\"DREAMING\"}"), &ji, err, sizeof err), 0);
  assert_int_equal(ji.state, MU_FLINK_JOB_UNKNOWN);
  assert_string_equal(ji.state_name, "DREAMING");
  assert_int_not_equal(mu_flink_json_job(B("garbage{"), &ji, err, sizeof err), 0);
  assert_non_null(strstr(err, "not JSON"));

  assert_int_equal(
      mu_flink_json_trigger(B("{\"request-id\":\"0123456789abcdef0123456789abcdef\"}"), id, sizeof id, err, sizeof err),
      0);
  assert_string_equal(id, "0123456789abcdef0123456789abcdef");

  mu_flink_savepoint_info sp;
  assert_int_equal(mu_flink_json_savepoint(B("{\"status\":{\"id\":\"IN_PROGRESS\"}}"), &sp, err, sizeof err), 0);
  assert_int_equal(sp.status, MU_FLINK_OP_IN_PROGRESS);
  assert_int_equal(mu_flink_json_savepoint(B("{\"status\":{\"id\":\"COMPLETED\"},\"operation\":{\"location\":"
                                             "\"file:/sp/savepoint-cca7bc-bb1e257f0dab\"}}"),
                                           &sp, err, sizeof err),
                   0);
  assert_int_equal(sp.status, MU_FLINK_OP_COMPLETED);
  assert_string_equal(sp.location, "file:/sp/savepoint-cca7bc-bb1e257f0dab");
  assert_int_equal(mu_flink_json_savepoint(B("{\"status\":{\"id\":\"COMPLETED\"},\"operation\":{\"failure-cause\":"
                                             "{\"class\":\"java.util.concurrent.CompletionException\",\"stack-trace\":"
                                             "\"java.util.concurrent.CompletionException: Checkpoint expired\\n\\tat "
                                             "x\"}}}"),
                                           &sp, err, sizeof err),
                   0);
  assert_int_equal(sp.status, MU_FLINK_OP_FAILED);
  assert_string_equal(sp.failure, "java.util.concurrent.CompletionException: Checkpoint expired");
  assert_int_not_equal(mu_flink_json_savepoint(B("{\"status\":{\"id\":\"COMPLETED\"}}"), &sp, err, sizeof err), 0);

  mu_flink_checkpoint_info ck;
  assert_int_equal(mu_flink_json_checkpoints(B("{\"counts\":{\"restored\":0,\"total\":7,\"in_progress\":1,"
                                               "\"completed\":5,\"failed\":1},\"latest\":{\"completed\":{\"id\":6,"
                                               "\"external_path\":\"file:/ck/chk-6\",\"end_to_end_duration\":35},"
                                               "\"savepoint\":null,\"failed\":{\"failure_message\":\"timeout\"},"
                                               "\"restored\":null},\"history\":[],\"summary\":{}}"),
                                             &ck, err, sizeof err),
                   0);
  assert_int_equal(ck.completed, 5);
  assert_int_equal(ck.latest_id, 6);
  assert_string_equal(ck.latest_path, "file:/ck/chk-6");
  assert_int_equal(ck.latest_duration_ms, 35);
  assert_string_equal(ck.latest_failure, "timeout");

  assert_int_equal(mu_flink_json_exceptions(B("{\"root-exception\":\"java.lang.RuntimeException: boom\\n\\tat a\","
                                              "\"all-exceptions\":[]}"),
                                            text, sizeof text, err, sizeof err),
                   0);
  assert_string_equal(text, "java.lang.RuntimeException: boom");
  assert_int_equal(mu_flink_json_exceptions(B("{\"exceptionHistory\":{\"entries\":[{\"exceptionName\":\"X\","
                                              "\"stacktrace\":\"X: y\\nat\"}]}}"),
                                            text, sizeof text, err, sizeof err),
                   0);
  assert_string_equal(text, "X: y");

  assert_true(mu_flink_json_errors(B("{\"errors\":[\"org.apache.flink.runtime.rest.handler.RestHandlerException: "
                                     "Could not find Flink job (0000)\",\"second\"]}"),
                                   text, sizeof text));
  assert_string_equal(text,
                      "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not find Flink job "
                      "(0000); second");
  assert_true(mu_flink_json_errors(B("{\"errors\":[\"Internal server error.\",\"<Exception on server side:\\n"
                                     "org.apache.flink.client.program.ProgramInvocationException: no class\\n>\"]}"),
                                   text, sizeof text));
  assert_non_null(strstr(text, "ProgramInvocationException: no class"));
  assert_false(mu_flink_json_errors(B("{\"jobid\":\"x\"}"), text, sizeof text));

  mu_flink_yarn_app app;
  assert_int_equal(mu_flink_json_yarn_app(B("{\"app\":{\"id\":\"application_1_0001\",\"state\":\"KILLED\","
                                            "\"finalStatus\":\"KILLED\",\"trackingUrl\":\"x\"}}"),
                                          &app, err, sizeof err),
                   0);
  assert_true(app.ended);
  assert_string_equal(app.final_status, "KILLED");
  assert_int_equal(mu_flink_json_yarn_app(B("{\"app\":{\"state\":\"RUNNING\",\"finalStatus\":\"UNDEFINED\"}}"), &app,
                                          err, sizeof err),
                   0);
  assert_false(app.ended);
  assert_int_not_equal(
      mu_flink_json_yarn_app(B("{\"RemoteException\":{\"exception\":\"NotFoundException\"}}"), &app, err, sizeof err),
      0);
}

static void test_cli(void **state) {
  (void)state;
  mu_flink_spec *s = parse_ok(
      "{\"target\":\"yarn-application\",\"jar\":\"app.jar\",\"entry_class\":\"a.B\","
      "\"program_args\":[\"x\"],\"yarn_queue\":\"etl\",\"parallelism\":3,"
      "\"savepoint_path\":\"hdfs:///sp/1\",\"allow_non_restored_state\":true}");
  char **argv = NULL;
  assert_int_equal(
      mu_flink_cli_argv(s, "/opt/flink/bin/flink", "/t/app.jar", "0123456789abcdef0123456789abcdef", &argv), 0);
  char joined[2048] = "";
  for (size_t i = 0; argv[i] != NULL; i++) {
    strcat(joined, argv[i]);
    strcat(joined, " ");
  }
  assert_string_equal(joined,
                      "/opt/flink/bin/flink run-application -t yarn-application "
                      "-D$internal.pipeline.job-id=0123456789abcdef0123456789abcdef "
                      "-Dyarn.application.queue=etl -Dparallelism.default=3 "
                      "-Dexecution.savepoint.path=hdfs:///sp/1 "
                      "-Dexecution.savepoint.ignore-unclaimed-state=true -c a.B /t/app.jar x ");
  mu_flink_cli_argv_free(argv);
  mu_flink_spec_free(s);

  s = parse_ok(
      "{\"target\":\"kubernetes-application\",\"jar\":\"local:///opt/a.jar\",\"kubernetes_cluster_id\":\"c1\"}");
  assert_int_equal(mu_flink_keeps_cluster(s), 1);
  assert_int_equal(mu_flink_cli_argv(s, "flink", "local:///opt/a.jar", "0123456789abcdef0123456789abcdef", &argv), 0);
  bool keep = false;
  for (size_t i = 0; argv[i] != NULL; i++)
    keep |= strcmp(argv[i], "-Dexecution.shutdown-on-application-finish=false") == 0;
  assert_true(keep);
  mu_flink_cli_argv_free(argv);
  mu_flink_spec_free(s);
  s = parse_ok(
      "{\"target\":\"kubernetes-application\",\"jar\":\"local:///opt/a.jar\",\"kubernetes_cluster_id\":\"c1\","
      "\"conf\":{\"execution.shutdown-on-application-finish\":\"true\"}}");
  assert_int_equal(mu_flink_keeps_cluster(s), 0); /* the user's choice: no end known once it is gone */
  mu_flink_spec_free(s);

  s = parse_ok("{\"target\":\"yarn-per-job\",\"python\":\"j.py\"}");
  assert_int_equal(mu_flink_cli_argv(s, "flink", "/t/j.py", "0123456789abcdef0123456789abcdef", &argv), 0);
  assert_string_equal(argv[1], "run");
  assert_string_equal(argv[2], "--detached");
  assert_string_equal(argv[5], "-D$internal.pipeline.job-id=0123456789abcdef0123456789abcdef");
  assert_string_equal(argv[6], "-py");
  mu_flink_cli_argv_free(argv);
  mu_flink_spec_free(s);

  const char out[] =
      "2026-12-02 08:00:00,001 INFO  org.apache.hadoop.yarn.client.api.impl.YarnClientImpl "
      "[] - Submitted application application_1700000000000_0042\n"
      "2026-12-02 08:00:01,002 INFO  org.apache.flink.yarn.YarnClusterDescriptor [] - Found Web "
      "Interface rm-node:40123 of application 'application_1700000000000_0042'.\n"
      "Job has been submitted with JobID 0123456789ABCDEF0123456789ABCDEF\n"
      "Savepoint completed. Path: file:/sp/savepoint-1-2\n";
  mu_flink_cli_facts f = {0};
  mu_flink_cli_scan(out, sizeof out - 1, &f);
  assert_string_equal(f.job_id, "0123456789abcdef0123456789abcdef");
  assert_string_equal(f.yarn_app_id, "application_1700000000000_0042");
  assert_string_equal(f.web_url, "http://rm-node:40123");
  assert_string_equal(f.savepoint_path, "file:/sp/savepoint-1-2");
  mu_flink_cli_facts q = {0};
  mu_flink_cli_scan(B("[INFO] SQL update statement has been successfully submitted to the cluster:\n"
                      "Job ID: 6b1af540c0c0bb3fcfcad50ac037c862\n"),
                    &q);
  assert_string_equal(q.job_id, "6b1af540c0c0bb3fcfcad50ac037c862");
  mu_flink_cli_facts g = {0};
  mu_flink_cli_scan(B("Job has been submitted with JobID nothex\napplication_x_1\n"), &g);
  assert_string_equal(g.job_id, "");
  assert_string_equal(g.yarn_app_id, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_defaults), cmocka_unit_test(test_spec_refusals), cmocka_unit_test(test_job_ids),
      cmocka_unit_test(test_replies),       cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
