/* Container task tests through the agent's real runner and supervisor (muster-exec, cgroups):
 * an image from a loopback docker-registry (regfixture.py serve) run to completion with its
 * output, params and progress; exit codes; the memory limit (OOM -> exit 137, reported as
 * such); the pids limit; every byte of a 10 ms container's output; a timeout killing a pid 1
 * that ignores TERM; and the agent policy refusing short names, host network, root, caps and
 * volumes outside the allow-list. Needs root. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/runner_testkit.h"

static char helper[4096], plugin_so[4096], container_helper[4096], fixture[4096];
static char base[256], spool[300], store[300], registry[64];
static pid_t fixture_pid;
static int fixture_stdin = -1;

typedef mu_tk_rec rec;
typedef mu_tk_world world;

static void world_init(world *w) {
  mu_runner_config cfg = {.slots = 8,
                          .spool_dir = spool,
                          .agent_id = "agent-1",
                          .helper_path = helper,
                          .grace_ms = 500,
                          .cgroup_name = "muster-ctrtest"};
  mu_tk_world_init(w, plugin_so, &cfg, 1 << 20, 65536);
}

static rec *run(world *w, const char *id, const char *spec) {
  rec *r = mu_tk_assign(w, id, spec, NULL, 0);
  mu_tk_run_until_final(w, r);
  return r;
}

static void expect_state(const rec *r, int state) {
  if (r->state != state)
    fail_msg("task %s: state %d (want %d), exit %d, message %s\nstdout: %.2000s\nstderr: %.2000s", r->task_id, r->state,
             state, r->exit_code, r->message, r->out, r->err);
}

static char *spec_of(const char *fmt, ...) {
  static char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

static void test_runs_image(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "hello", spec_of("{\"container\":{\"image\":\"%s/t/run:1\"}}", registry));
  expect_state(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "hello from the image\n");
  assert_non_null(strstr(r->params, "image_digest=sha256:"));
  assert_true(r->n_progress > 0);
  r = run(&w, "args",
          spec_of("{\"env\":{\"B\":\"2\"},\"container\":{\"image\":\"%s/t/run:1\",\"command\":[\"/bin/sh\",\"-c\","
                  "\"echo $A $B $(id -u); echo err >&2; exit 3\"]}}",
                  registry));
  expect_state(r, MU_TASK_FAILED);
  assert_int_equal(r->exit_code, 3);
  assert_string_equal(r->out, "1 2 1000\n");
  assert_non_null(strstr(r->err, "err"));
  /* secrets: env ones in the environment, file ones as 0400 files of the container's user in
   * /run/secrets (a tmpfs), the registry credentials in neither */
  r = run(
      &w, "secrets",
      spec_of(
          "{\"secrets\":[{\"name\":\"PW\",\"value\":\"pw-env-1\"},{\"name\":\"tok\",\"value\":\"tok-file-2\","
          "\"as\":\"file\"},{\"name\":\"REG\",\"value\":\"u:p\",\"as\":\"file\"}],"
          "\"container\":{\"image\":\"%s/t/run:1\",\"registryAuth\":\"${secret.REG}\",\"command\":[\"/bin/sh\",\"-c\","
          "\"echo $PW; cat $tok_FILE; echo; stat -c '%%a %%u' $tok_FILE; ls /run/secrets; echo reg=$REG_FILE\"]}}",
          registry));
  expect_state(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "***\n***\n400 1000\ntok\nreg=\n");
  r = run(&w, "stdin",
          spec_of("{\"stdin\":\"from stdin\",\"container\":{\"image\":\"%s/t/run:1\",\"args\":[\"-\"]}}", registry));
  expect_state(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "from stdin");
  mu_tk_world_free(&w);
}

static void test_limits(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r =
      run(&w, "oom",
          spec_of("{\"resources\":{\"memory\":\"32M\"},\"container\":{\"image\":\"%s/t/run:1\",\"command\":"
                  "[\"/bin/sh\",\"-c\",\"echo before; dd if=/dev/zero of=/dev/null bs=200M count=1; echo after $?\"]}}",
                  registry));
  expect_state(r, MU_TASK_FAILED);
  assert_int_equal(r->exit_code, 137);
  assert_non_null(strstr(r->message, "OOM"));
  assert_non_null(strstr(r->out, "before"));
  r = run(&w, "pids",
          spec_of("{\"resources\":{\"pids\":\"12\"},\"container\":{\"image\":\"%s/t/run:1\",\"command\":"
                  "[\"/bin/sh\",\"-c\",\"for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 3 & "
                  "done; wait\"]}}",
                  registry));
  assert_non_null(strstr(r->err, "fork"));
  /* A 10 ms container keeps all its output. */
  r = run(&w, "quick",
          spec_of("{\"container\":{\"image\":\"%s/t/run:1\",\"command\":[\"/bin/sh\",\"-c\","
                  "\"echo start; yes x | head -c 300000; echo; echo end\"]}}",
                  registry));
  expect_state(r, MU_TASK_SUCCEEDED);
  assert_int_equal(r->out_total, 6 + 300000 + 1 + 4);
  assert_non_null(strstr(r->out, "\nend\n"));
  /* a failing health check ends the container and names itself */
  r = run(&w, "unhealthy",
          spec_of("{\"container\":{\"image\":\"%s/t/run:1\",\"command\":[\"/bin/sleep\",\"30\"],"
                  "\"healthCheck\":{\"command\":[\"/bin/sh\",\"-c\",\"echo db down; exit 2\"],"
                  "\"interval\":\"200ms\",\"retries\":\"2\"}}}",
                  registry));
  expect_state(r, MU_TASK_FAILED);
  if (strstr(r->message, "unhealthy: the health check failed 2 times in a row (last: exit 2: db down)") == NULL)
    fail_msg("unhealthy message: %s", r->message);
  /* pid 1 without a TERM handler ignores TERM: the grace period ends in KILL. */
  r = run(&w, "slow",
          spec_of("{\"timeout\":\"1s\",\"container\":{\"image\":\"%s/t/run:1\",\"command\":[\"/bin/sleep\",\"60\"]}}",
                  registry));
  expect_state(r, MU_TASK_TIMED_OUT);
  mu_tk_world_free(&w);
}

static void test_policy_refusals(void **state) {
  (void)state;
  world w;
  world_init(&w);
  struct {
    const char *cfg, *want;
  } cases[] = {
      {"{\"image\":\"busybox\"}", "short names are refused"},
      {"{\"image\":\"%s/t/run:1\",\"network\":\"host\"}", "host is not allowed"},
      {"{\"image\":\"%s/t/run:1\",\"network\":\"bridge\"}", "not none or host"},
      {"{\"image\":\"%s/t/run:1\",\"user\":\"root\"}", "root is not allowed"},
      {"{\"image\":\"%s/t/run:1\",\"capAdd\":[\"SYS_ADMIN\"]}", "SYS_ADMIN is not allowed"},
      {"{\"image\":\"%s/t/run:1\",\"mounts\":[{\"source\":\"/etc\",\"target\":\"/x\"}]}", "MUSTER_CONTAINER_VOLUMES"},
      {"{\"image\":\"%s/t/run:1\",\"mounts\":[{\"source\":\"/tmp\",\"target\":\"/proc/x\"}]}", "not /, /proc or /dev"},
      {"{\"image\":\"%s/t/run:1\",\"workingDir\":\"/proc/self/fd/3\"}", "workingDir"},
      {"{\"image\":\"%s/t/run:1\",\"registryAuth\":\"user:pw\"}", "${secret.NAME}"},
      {"{\"image\":\"%s/t/run:1\",\"pullPolicy\":\"sometimes\"}", "pullPolicy"},
      /* the agent's registry credentials files (MUSTER_CONTAINER_REGISTRY_AUTH, set in main) */
      {"{\"image\":\"127.0.0.9:5000/t/x:1\"}",
       "must be a regular file readable by its owner only (mode 0600 or 0400; it is 0644)"},
      {"{\"image\":\"127.0.0.8:5000/t/x:1\"}", "creds-missing for 127.0.0.8:5000: No such file or directory"},
      {"{\"image\":\"127.0.0.7:5000/t/x:1\"}", "expected one line user:password"},
      {"{\"image\":\"%s/t/run:1\",\"bogus\":1}", "unknown field"},
      {"{\"image\":\"oci-layout:../../x:1\"}", "inside the task dir"},
      {"{\"image\":\"%s/t/run:1\",\"healthCheck\":{\"interval\":\"1s\"}}", "healthCheck.command"},
      {"{\"image\":\"%s/t/run:1\",\"healthCheck\":{\"command\":[\"true\"],\"interval\":\"soon\"}}", "bad duration"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char cfg[600], id[32];
    snprintf(cfg, sizeof cfg, cases[i].cfg, registry);
    snprintf(id, sizeof id, "bad%zu", i);
    /* refused at assign, by the plugin's validate(), before anything runs */
    mu_err err = {0};
    int rc = mu_runner_assign(w.runner, "job-1", id, 1, spec_of("{\"container\":%s}", cfg), NULL, 0, &err);
    assert_int_not_equal(rc, 0);
    if (strstr(err.msg, cases[i].want) == NULL)
      fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, cases[i].want);
  }
  /* allowed by policy: a volume under the allow-list, a listed capability */
  char vol[400];
  snprintf(vol, sizeof vol, "%s/vol", base);
  mkdir(vol, 0755);
  FILE *f = fopen(spec_of("%s/in", vol), "w");
  fputs("volume data\n", f);
  fclose(f);
  rec *r =
      run(&w, "vol",
          spec_of("{\"container\":{\"image\":\"%s/t/run:1\",\"args\":[\"/data/in\"],\"capAdd\":[\"NET_BIND_SERVICE\"],"
                  "\"mounts\":[{\"source\":\"%s\",\"target\":\"/data\",\"readOnly\":true}]}}",
                  registry, vol));
  expect_state(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "volume data\n");
  mu_tk_world_free(&w);
}

static int start_fixture(void **state) {
  (void)state;
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return -1;
  fixture_pid = fork();
  if (fixture_pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl("/usr/bin/python3", "python3", fixture, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  fixture_stdin = in[1];
  FILE *f = fdopen(out[0], "r");
  if (f == NULL || fgets(registry, sizeof registry, f) == NULL) return -1;
  registry[strcspn(registry, "\n")] = '\0';
  fclose(f);
  return 0;
}

static int stop_fixture(void **state) {
  (void)state;
  if (fixture_stdin >= 0) close(fixture_stdin);
  if (fixture_pid > 0) waitpid(fixture_pid, NULL, 0);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", base);
  return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: plugin_test MUSTER_EXEC PLUGIN_SO MUSTER_CONTAINER REGFIXTURE_PY\n");
    return 2;
  }
  if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0 || system("command -v docker-registry >/dev/null") != 0) {
    printf("SKIP: needs root, busybox-static and docker-registry (scripts/setup)\n");
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  if (realpath(argv[1], helper) == NULL || realpath(argv[2], plugin_so) == NULL ||
      realpath(argv[3], container_helper) == NULL || realpath(argv[4], fixture) == NULL) {
    perror("realpath");
    return 1;
  }
  snprintf(base, sizeof base, "/tmp/ctr-plugin-test.XXXXXX");
  if (mkdtemp(base) == NULL) return 1;
  snprintf(spool, sizeof spool, "%s/spool", base);
  snprintf(store, sizeof store, "%s/store", base);
  mkdir(spool, 0700);
  setenv("MUSTER_CONTAINER_HELPER", container_helper, 1);
  setenv("MUSTER_CONTAINER_STORE", store, 1);
  setenv("MUSTER_CONTAINER_VOLUMES", base, 1);
  setenv("MUSTER_CONTAINER_CAPS", "NET_BIND_SERVICE,CHOWN", 1);
  char auth_env[1400], path[400];
  const struct {
    const char *name, *text;
    mode_t mode;
  } creds[] = {{"creds-open", "u:p\n", 0644}, {"creds-bad", "no colon\n", 0600}};
  for (size_t i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", base, creds[i].name);
    FILE *cf = fopen(path, "w");
    if (cf == NULL) return 1;
    fputs(creds[i].text, cf);
    fclose(cf);
    chmod(path, creds[i].mode);
  }
  snprintf(auth_env, sizeof auth_env,
           "127.0.0.9:5000=%s/creds-open,127.0.0.8:5000=%s/creds-missing,127.0.0.7:5000=%s/creds-bad", base, base,
           base);
  setenv("MUSTER_CONTAINER_REGISTRY_AUTH", auth_env, 1);
  setenv("MUSTER_CONTAINER_INSECURE_REGISTRIES", "127.0.0.1:1,localhost", 1);
  /* The registry's port is known only once the fixture runs: the plugin reads the policy at
   * load (in world_init), after start_fixture has set it below. */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runs_image),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_policy_refusals),
  };
  if (start_fixture(NULL) != 0) {
    fprintf(stderr, "cannot start the registry fixture\n");
    return 1;
  }
  setenv("MUSTER_CONTAINER_INSECURE_REGISTRIES", registry, 1);
  return cmocka_run_group_tests(tests, NULL, stop_fixture);
}
