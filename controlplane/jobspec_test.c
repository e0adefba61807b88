/* Tests for jobspec.c: the limits an agent would hit are refused at submit, each naming the
 * field and the limit (env count, args, argument and script sizes, working_dir and script_file
 * outside the task dir, run_as syntax, a host named twice), and specs just inside them pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/jobspec.h"
#include "lib/pbjson/pbjson.h"

/* A one-task shell job on hosts [web-1]; task is merged into the task object. */
static Muster__V1__JobSpec *spec_with(json_t *task, json_t *target) {
  json_t *t = json_pack("{s:s, s:{s:s}}", "name", "t", "shell", "script", "true");
  if (task != NULL) {
    if (json_object_get(task, "python") != NULL || json_object_get(task, "http") != NULL ||
        json_object_get(task, "plugin") != NULL)
      json_object_del(t, "shell");
    json_object_update(t, task);
    json_decref(task);
  }
  json_t *root =
      json_pack("{s:o, s:[o]}", "target", target ? target : json_pack("{s:[s]}", "hosts", "web-1"), "tasks", t);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  int rc = mu_pbjson_from_json(&muster__v1__job_spec__descriptor, root, (ProtobufCMessage **)&spec, &err);
  if (rc != 0) fail_msg("bad test spec: %s", err.msg);
  json_decref(root);
  return spec;
}

/* Validates and frees spec; returns the error message ("" when it passed). */
static const char *check(Muster__V1__JobSpec *spec) {
  static mu_err err;
  mu_jobspec_limits limits = {.max_tasks = 64, .max_task_runs = 200000};
  mu_rollout r;
  memset(&err, 0, sizeof err);
  mu_jobspec_validate(spec, &limits, &r, &err);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  return err.msg;
}

static json_t *strings(size_t n, size_t len) {
  json_t *a = json_array();
  char *s = malloc(len + 1);
  memset(s, 'a', len);
  s[len] = '\0';
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(s));
  free(s);
  return a;
}

static json_t *env_of(size_t n, size_t value_len) {
  json_t *o = json_object();
  char *v = malloc(value_len + 1);
  memset(v, 'v', value_len);
  v[value_len] = '\0';
  for (size_t i = 0; i < n; i++) {
    char k[32];
    snprintf(k, sizeof k, "V%zu", i);
    json_object_set_new(o, k, json_string(v));
  }
  free(v);
  return o;
}

static void assert_has(const char *msg, const char *want) {
  if (strstr(msg, want) == NULL) fail_msg("want \"%s\" in \"%s\"", want, msg);
}

static void counts_over_the_agent_limits(void **state) {
  (void)state;
  assert_has(check(spec_with(json_pack("{s:o}", "env", env_of(1025, 1)), NULL)),
             "tasks[0].env: 1025 variables, the limit is 1024");
  assert_string_equal(check(spec_with(json_pack("{s:o}", "env", env_of(1024, 1)), NULL)), "");
  assert_has(check(spec_with(json_pack("{s:{s:s, s:o}}", "shell", "script", "true", "args", strings(4097, 1)), NULL)),
             "tasks[0].shell.args: 4097 entries, the limit is 4096");
  assert_has(check(spec_with(json_pack("{s:{s:o}}", "shell", "command", strings(4097, 1)), NULL)),
             "tasks[0].shell.command: 4097 entries, the limit is 4096");
  assert_has(check(spec_with(json_pack("{s:{s:s, s:o}}", "python", "code", "pass", "args", strings(4097, 1)), NULL)),
             "tasks[0].python.args: 4097 entries, the limit is 4096");
  assert_string_equal(
      check(spec_with(json_pack("{s:{s:s, s:o}}", "shell", "script", "true", "args", strings(4096, 1)), NULL)), "");
}

static void sizes_over_what_exec_takes(void **state) {
  (void)state;
  /* one argument or variable over MAX_ARG_STRLEN fails execve with E2BIG on every host */
  assert_has(check(spec_with(json_pack("{s:{s:s, s:o}}", "shell", "script", "true", "args", strings(1, 200000)), NULL)),
             "tasks[0].shell.args[0]: 200000 bytes, the limit for one argument is 131071");
  assert_has(check(spec_with(json_pack("{s:o}", "env", env_of(1, 140000)), NULL)),
             "tasks[0].env.V0: 140003 bytes as V0=VALUE, the limit for one variable is 131071");
  /* together: 10 args of 120,000 bytes */
  assert_has(
      check(spec_with(json_pack("{s:{s:s, s:o}}", "shell", "script", "true", "args", strings(10, 120000)), NULL)),
      "tasks[0]: arguments and environment together are 1200010 bytes, the limit is 1048576");
  /* a big script is not an argument any more (the agent hands it over in a file), up to 4 MiB */
  char *big = malloc((4u << 20) + 2);
  memset(big, '#', (4u << 20) + 1);
  big[(4u << 20) + 1] = '\0';
  assert_has(check(spec_with(json_pack("{s:{s:s}}", "shell", "script", big), NULL)),
             "tasks[0].shell.script: 4194305 bytes, the limit is 4194304 (4 MiB)");
  big[1u << 20] = '\0';
  assert_string_equal(check(spec_with(json_pack("{s:{s:s}}", "shell", "script", big), NULL)), "");
  free(big);
}

static void paths_outside_the_task_dir(void **state) {
  (void)state;
  assert_has(check(spec_with(json_pack("{s:s}", "working_dir", "../.."), NULL)),
             "tasks[0].working_dir: '../..' must be relative to the task dir, without '..'");
  assert_has(check(spec_with(json_pack("{s:s}", "working_dir", "/etc"), NULL)),
             "tasks[0].working_dir: '/etc' must be relative");
  assert_string_equal(check(spec_with(json_pack("{s:s}", "working_dir", "build/out"), NULL)), "");
  assert_has(check(spec_with(json_pack("{s:{s:s}}", "shell", "script_file", "/etc/passwd"), NULL)),
             "tasks[0].shell.script_file: '/etc/passwd' must be a path inside the task dir (the "
             "bundle), without '..'");
  assert_has(check(spec_with(json_pack("{s:{s:s}}", "shell", "script_file", "bin/../../x"), NULL)),
             "tasks[0].shell.script_file: 'bin/../../x' must be");
}

static void run_as_syntax(void **state) {
  (void)state;
  assert_string_equal(check(spec_with(json_pack("{s:s}", "run_as", "deploy:www-data"), NULL)), "");
  assert_has(check(spec_with(json_pack("{s:s}", "run_as", "deploy:"), NULL)),
             "tasks[0].run_as: empty group in 'deploy:'");
  assert_has(check(spec_with(json_pack("{s:s}", "run_as", ":wheel"), NULL)), "tasks[0].run_as: empty user in ':wheel'");
  char longname[80];
  memset(longname, 'u', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_has(check(spec_with(json_pack("{s:s}", "run_as", longname), NULL)),
             "tasks[0].run_as: 79 characters, the limit is 63");
}

static void host_named_twice(void **state) {
  (void)state;
  assert_has(check(spec_with(NULL, json_pack("{s:[s,s,s]}", "hosts", "web-1", "web-2", "web-1"))),
             "target.hosts[2]: duplicate host 'web-1' in target.hosts");
  assert_string_equal(check(spec_with(NULL, json_pack("{s:[s,s]}", "hosts", "web-1", "web-*"))), "");
}

/* A job of several tasks from JSON text; validated and freed by check(). */
static Muster__V1__JobSpec *job_of(const char *tasks_json) {
  json_error_t je;
  json_t *tasks = json_loads(tasks_json, 0, &je);
  if (tasks == NULL) fail_msg("bad test json: %s", je.text);
  json_t *root = json_pack("{s:{s:[s]}, s:o}", "target", "hosts", "web-1", "tasks", tasks);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(&muster__v1__job_spec__descriptor, root, (ProtobufCMessage **)&spec, &err) != 0)
    fail_msg("bad test spec: %s", err.msg);
  json_decref(root);
  return spec;
}

static void references_resolved_at_submit(void **state) {
  (void)state;
  /* an earlier task's param, in a script, an env value and an argv item: fine; so are shell
   * expansions, "$${" escapes and secrets in http fields */
  assert_string_equal(check(job_of("[{\"name\":\"probe.v2\",\"shell\":{\"script\":\"echo param v=1 >&3\"}},"
                                   " {\"name\":\"b\",\"env\":{\"V\":\"${probe.v2.v}\"},"
                                   "  \"shell\":{\"command\":[\"echo\",\"${probe.v2.v}\"]}},"
                                   " {\"shell\":{\"script\":\"echo ${HOME} ${V:-x} ${#V} $${literal.x} ${b.k}\"}},"
                                   " {\"secrets\":[{\"name\":\"T\",\"from\":\"t\"}],"
                                   "  \"http\":{\"url\":\"https://h/${secret.T}/${b.k}\"}}]")),
                      "");
  const char *msg =
      check(job_of("[{\"name\":\"a\",\"shell\":{\"script\":\"echo ${a.x} ${c.y} ${missing.z}\"}},"
                   " {\"name\":\"b\",\"env\":{\"K\":\"${job.id}\"},\"shell\":{\"script\":\"echo ${secret.S}\"}},"
                   " {\"name\":\"c\",\"shell\":{\"command\":[\"x\",\"${nope.k}\"]}}]"));
  assert_has(msg, "tasks[0].shell.script: ${a.x}: a task cannot use its own params");
  assert_has(msg, "tasks[0].shell.script: ${c.y}: task 'c' runs after this one (tasks[2])");
  assert_has(msg, "tasks[0].shell.script: ${missing.z}: no task 'missing' in this job");
  assert_has(msg, "tasks[1].env.K: ${job.id}: no task 'job'");
  assert_has(msg, "tasks[1].shell.script: ${secret.S} is not replaced in shell, python or env fields");
  assert_has(msg, "tasks[2].shell.command[1]: ${nope.k}: no task 'nope'");
  /* a template's param outside a dispatch; a task named "param" is an earlier task */
  msg = check(job_of("[{\"shell\":{\"script\":\"echo ${param.v} $${param.w}\"}}]"));
  assert_has(msg,
             "tasks[0].shell.script: ${param.v}: params are replaced only when a job "
             "template is dispatched (muster dispatch); $${param.v} is a literal");
  if (strstr(msg, "param.w") != NULL) fail_msg("escaped reference reported: %s", msg);
  assert_string_equal(check(job_of("[{\"name\":\"param\",\"shell\":{\"script\":\"true\"}},"
                                   " {\"shell\":{\"script\":\"echo ${param.v}\"}}]")),
                      "");
}

static void sandbox_fields(void **state) {
  (void)state;
  assert_string_equal(check(spec_with(json_pack("{s:{s:s, s:b, s:[s], s:[s]}}", "sandbox", "network", "none",
                                                "read_only_root", 1, "writable", "/srv/out", "hidden", "/etc/ssh"),
                                      NULL)),
                      "");
  const char *msg = check(spec_with(
      json_pack("{s:{s:s, s:[s], s:[s]}}", "sandbox", "network", "bridge", "writable", "srv/out", "hidden", "/"),
      NULL));
  assert_has(msg, "tasks[0].sandbox.network: expected none or host, got 'bridge'");
  assert_has(msg, "tasks[0].sandbox.writable[0]: 'srv/out' must be an absolute host path");
  assert_has(msg, "tasks[0].sandbox.hidden[0]: '/' is not allowed");
  assert_has(
      check(spec_with(json_pack("{s:{s:s}, s:{s:s}}", "sandbox", "network", "none", "http", "url", "http://x/"), NULL)),
      "tasks[0].sandbox: not for http tasks (they run no process)");
  assert_has(check(spec_with(json_pack("{s:{s:[s]}}", "sandbox", "hidden", "/a/../etc"), NULL)),
             "tasks[0].sandbox.hidden[0]: '/a/../etc' must be an absolute host path without '..'");
}

/* plugin_version is a version range checked at submit; the internal deploy type needs no agent
 * to report it (every agent serves it). */
static void plugin_version_and_deploy_type(void **state) {
  (void)state;
  assert_string_equal(check(spec_with(json_pack("{s:s}", "plugin_version", ">=1.2 <2"), NULL)), "");
  assert_has(check(spec_with(json_pack("{s:s}", "plugin_version", ">>1"), NULL)),
             "tasks[0].plugin_version: bad comparison '>>1'");
  json_t *deploy = json_pack("{s:s, s:{s:s, s:s}}", "type", "muster-plugin-install", "plugin", "type",
                             "muster-plugin-install", "config_json", "{\"type\":\"x\",\"version\":\"1.0.0\"}");
  Muster__V1__JobSpec *spec = spec_with(deploy, NULL);
  assert_string_equal(check(spec), "");
}

/* RunAdhoc builds its one-task job once, over the request's strings, and keeps one copy: the
 * job outlives the request (freed first here), and the spec validates as a submitted one. */
static void adhoc_job_outlives_its_request(void **state) {
  (void)state;
  json_error_t je;
  json_t *j = json_loads(
      "{\"command\": [\"ls\", \"-l\"], \"timeout\": \"30s\", \"env\": {\"A\": \"1\"},"
      " \"target\": {\"any\": \"web-*\"}, \"resources\": {\"memory\": \"64M\"}}",
      0, &je);
  assert_non_null(j);
  ProtobufCMessage *m = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pbjson_from_json(&muster__v1__run_adhoc_request__descriptor, j, &m, &err), 0);
  json_decref(j);
  Muster__V1__JobSpec *spec = NULL;
  assert_int_equal(mu_jobspec_adhoc((Muster__V1__RunAdhocRequest *)m, &spec, &err), 0);
  protobuf_c_message_free_unpacked(m, NULL);
  assert_string_equal(spec->name, "run: ls");
  assert_string_equal(spec->target->any, "web-*");
  assert_int_equal(spec->n_tasks, 1);
  Muster__V1__TaskSpec *t = spec->tasks[0];
  assert_string_equal(t->type, "shell");
  assert_int_equal(t->kind_case, MUSTER__V1__TASK_SPEC__KIND_SHELL);
  assert_int_equal(t->shell->n_command, 2);
  assert_string_equal(t->shell->command[1], "-l");
  assert_string_equal(t->timeout, "30s");
  assert_string_equal(t->resources->memory, "64M");
  assert_string_equal(t->env[0]->key, "A");
  assert_string_equal(t->env[0]->value, "1");
  protobuf_c_message_free_unpacked(&spec->base, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counts_over_the_agent_limits),
      cmocka_unit_test(sizes_over_what_exec_takes),
      cmocka_unit_test(paths_outside_the_task_dir),
      cmocka_unit_test(run_as_syntax),
      cmocka_unit_test(host_named_twice),
      cmocka_unit_test(references_resolved_at_submit),
      cmocka_unit_test(sandbox_fields),
      cmocka_unit_test(plugin_version_and_deploy_type),
      cmocka_unit_test(adhoc_job_outlives_its_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
