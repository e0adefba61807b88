/* Shell plugin tests against a fake host (no agent, no processes): interpreter choice and the
 * absolute-path allow-list, the command policy (deny, allow, segments, quotes, continuations,
 * commands, script files, a broken policy file), and the audit line with the script's sha256.
 * Each configuration loads its own copy of the .so, since the plugin reads its environment
 * once, when it is loaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "muster_plugin.h"

static char so_path[4096];
static char tmp[256];

/* ---- fake host ---- */

struct muster_task {
  muster_task_context ctx;
  void *ud;
  char log[4096];
  char argv[16][256];
  int argc;
  muster_proc_exit_cb on_exit;
  void *user;
  int finished;
  muster_result result;
};

static int f_spawn(muster_task *t, const muster_spawn_opts *o, muster_proc **ret, char *errbuf) {
  (void)errbuf;
  for (t->argc = 0; o->argv[t->argc] != NULL && t->argc < 16; t->argc++)
    snprintf(t->argv[t->argc], sizeof t->argv[t->argc], "%s", o->argv[t->argc]);
  t->on_exit = o->on_exit;
  t->user = o->user;
  if (ret != NULL) *ret = (muster_proc *)t;
  return 0;
}
static int f_finish(muster_task *t, const muster_result *r) {
  t->finished++;
  t->result = *r;
  return 0;
}
static const muster_task_context *f_context(muster_task *t) { return &t->ctx; }
static void f_set_user_data(muster_task *t, void *d) { t->ud = d; }
static void *f_user_data(muster_task *t) { return t->ud; }
static void f_log(muster_task *t, muster_log_level level, const char *fmt, ...) {
  size_t n = strlen(t->log);
  n += (size_t)snprintf(t->log + n, sizeof t->log - n, "%d ", (int)level);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->log + n, sizeof t->log - n, fmt, ap);
  va_end(ap);
}

static const muster_host_api host = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .size = sizeof(muster_host_api),
    .finish = f_finish,
    .spawn = f_spawn,
    .context = f_context,
    .set_user_data = f_set_user_data,
    .user_data = f_user_data,
    .log = f_log,
};

/* ---- loading a configured copy ---- */

typedef struct loaded {
  void *dl;
  const muster_plugin *p;
} loaded;

static loaded load(const char *interps, const char *policy_json) {
  static int n;
  char copy[512], policy_path[512], cmd[1200];
  snprintf(copy, sizeof copy, "%s/libshell_%d.so", tmp, ++n);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", so_path, copy);
  assert_int_equal(system(cmd), 0);
  if (interps != NULL) setenv("MUSTER_SHELL_INTERPRETERS", interps, 1);
  else unsetenv("MUSTER_SHELL_INTERPRETERS");
  if (policy_json != NULL) {
    snprintf(policy_path, sizeof policy_path, "%s/policy_%d.json", tmp, n);
    if (strcmp(policy_json, "MISSING") != 0) {
      FILE *f = fopen(policy_path, "w");
      assert_non_null(f);
      fputs(policy_json, f);
      fclose(f);
    }
    setenv("MUSTER_SHELL_POLICY", policy_path, 1);
  } else {
    unsetenv("MUSTER_SHELL_POLICY");
  }
  loaded l;
  l.dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
  if (l.dl == NULL) fail_msg("dlopen %s: %s", copy, dlerror());
  l.p = dlsym(l.dl, MUSTER_PLUGIN_SYMBOL);
  assert_non_null(l.p);
  unsetenv("MUSTER_SHELL_INTERPRETERS");
  unsetenv("MUSTER_SHELL_POLICY");
  return l;
}

static void unload(loaded *l) { dlclose(l->dl); }

static int validate(const loaded *l, const char *config, char *errbuf) {
  errbuf[0] = '\0';
  return l->p->validate("{}", config, errbuf);
}

/* Starts a task on the fake host; returns start()'s result. */
static int start(const loaded *l, muster_task *t, const char *spec, const char *config, char *errbuf) {
  memset(t, 0, sizeof *t);
  t->ctx = (muster_task_context){.job_id = "job-7",
                                 .task_id = "web1/t",
                                 .attempt = 2,
                                 .agent_id = "agent-9",
                                 .task_dir = tmp,
                                 .spec_json = spec,
                                 .config_json = config};
  errbuf[0] = '\0';
  return l->p->start(t, &host, errbuf);
}

static void end(const loaded *l, muster_task *t) {
  if (t->on_exit != NULL) {
    muster_proc_exit x = {.exit_code = 0, .suggested_state = MUSTER_STATE_SUCCEEDED, .message = ""};
    t->on_exit(t, (muster_proc *)t, &x, t->user);
    assert_int_equal(t->finished, 1);
    assert_int_equal(t->result.state, MUSTER_STATE_SUCCEEDED);
  }
  l->p->cleanup(t, &host, t->ud);
}

/* ---- tests ---- */

static void test_interpreters(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE];
  loaded l = load(NULL, NULL);
  const char *named[] = {"bash", "sh", "zsh", "dash"};
  for (size_t i = 0; i < 4; i++) {
    char cfg[128];
    snprintf(cfg, sizeof cfg, "{\"interpreter\":\"%s\",\"script\":\"echo hi\"}", named[i]);
    assert_int_equal(validate(&l, cfg, e), 0);
  }
  assert_int_not_equal(validate(&l, "{\"interpreter\":\"fish\",\"script\":\"x\"}", e), 0);
  assert_non_null(strstr(e, "shell.interpreter: unknown interpreter \"fish\""));
  assert_int_not_equal(validate(&l, "{\"interpreter\":\"/opt/x/bin/fish\",\"script\":\"x\"}", e), 0);
  assert_string_equal(e,
                      "shell.interpreter: \"/opt/x/bin/fish\" is not on the interpreter allow-list "
                      "(MUSTER_SHELL_INTERPRETERS=\"\")");
  unload(&l);

  l = load("/opt/x/bin/fish:/usr/bin/tcsh", NULL);
  assert_int_equal(validate(&l, "{\"interpreter\":\"/opt/x/bin/fish\",\"script\":\"x\"}", e), 0);
  assert_int_equal(validate(&l, "{\"interpreter\":\"/usr/bin/tcsh\",\"script\":\"x\"}", e), 0);
  assert_int_not_equal(validate(&l, "{\"interpreter\":\"/bin/bash\",\"script\":\"x\"}", e), 0);
  assert_non_null(strstr(e,
                         "\"/bin/bash\" is not on the interpreter allow-list "
                         "(MUSTER_SHELL_INTERPRETERS=\"/opt/x/bin/fish:/usr/bin/tcsh\")"));
  muster_task t;
  assert_int_equal(
      start(&l, &t, "{}", "{\"interpreter\":\"/opt/x/bin/fish\",\"script\":\"echo hi\",\"args\":[\"a\"]}", e), 0);
  assert_int_equal(t.argc, 5);
  assert_string_equal(t.argv[0], "/opt/x/bin/fish");
  assert_string_equal(t.argv[1], "-c");
  assert_string_equal(t.argv[2], "echo hi");
  assert_string_equal(t.argv[3], "web1/t");
  assert_string_equal(t.argv[4], "a");
  end(&l, &t);
  unload(&l);

  /* A broken setting refuses every task, naming the variable. */
  l = load("fish", NULL);
  assert_int_not_equal(validate(&l, "{\"script\":\"echo hi\"}", e), 0);
  assert_string_equal(e, "shell: MUSTER_SHELL_INTERPRETERS: \"fish\" is not an absolute path");
  unload(&l);
}

static void test_policy_deny(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE];
  loaded l = load(NULL, "{\"deny\": [\"rm -rf /*\", \"*mkfs*\", \"shutdown*\"]}");
  assert_int_not_equal(validate(&l, "{\"script\":\"echo formatting\\nmkfs.ext4 /dev/sda\\necho done\"}", e), 0);
  assert_string_equal(e, "shell policy: deny rule 2 \"*mkfs*\" matches line 2 \"mkfs.ext4 /dev/sda\"");
  /* a segment after `;` or `&&` is a command of its own */
  assert_int_not_equal(validate(&l, "{\"script\":\"echo bye && shutdown -h now\"}", e), 0);
  assert_string_equal(e, "shell policy: deny rule 3 \"shutdown*\" matches line 1 \"echo bye && shutdown -h now\"");
  /* comments and blank lines are skipped; continuation lines are joined */
  assert_int_not_equal(validate(&l, "{\"script\":\"# shutdown in a comment is fine\\n\\nrm -rf \\\\\\n  /\"}", e), 0);
  assert_string_equal(e, "shell policy: deny rule 1 \"rm -rf /*\" matches line 3 \"rm -rf /\"");
  assert_int_equal(validate(&l, "{\"script\":\"# shutdown\\necho 'shutdown' # quoted\\nrm -rf ./build\"}", e), 0);
  /* commands: argv joined by spaces, args included */
  assert_int_not_equal(validate(&l, "{\"command\":[\"rm\",\"-rf\"],\"args\":[\"/\"]}", e), 0);
  assert_string_equal(e, "shell policy: deny rule 1 \"rm -rf /*\" matches command \"rm -rf /\"");
  assert_int_equal(validate(&l, "{\"command\":[\"ls\",\"-l\"]}", e), 0);
  /* start refuses as well (it does not trust that validate ran) */
  muster_task t;
  assert_int_not_equal(start(&l, &t, "{}", "{\"command\":[\"shutdown\",\"now\"]}", e), 0);
  assert_non_null(strstr(e, "deny rule 3"));
  assert_int_equal(t.argc, 0);
  end(&l, &t);
  unload(&l);
}

static void test_policy_allow(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE];
  loaded l = load(NULL, "{\"allow\": [\"echo *\", \"systemctl reload *\", \"true\"], \"deny\": [\"*nginx-evil*\"]}");
  assert_int_equal(
      validate(&l, "{\"script\":\"echo start >&3\\nsystemctl reload nginx 2>&1; true\\necho 'a|b;c' \\\"x && y\\\"\"}",
               e),
      0);
  assert_int_not_equal(validate(&l, "{\"script\":\"echo a\\necho a | grep a\"}", e), 0);
  assert_string_equal(e, "shell policy: line 2 \"echo a | grep a\" matches no allow rule (at \"grep a\")");
  assert_int_not_equal(validate(&l, "{\"script\":\"curl http://x\"}", e), 0);
  assert_string_equal(e, "shell policy: line 1 \"curl http://x\" matches no allow rule");
  assert_int_not_equal(validate(&l, "{\"script\":\"systemctl reload nginx-evil\"}", e), 0); /* deny wins */
  assert_non_null(strstr(e, "deny rule 1"));
  assert_int_not_equal(validate(&l, "{\"script\":\"echo ok & sleep 10\"}", e), 0); /* background & splits */
  assert_non_null(strstr(e, "(at \"sleep 10\")"));
  assert_int_equal(validate(&l, "{\"command\":[\"echo\",\"a;b\"]}", e), 0); /* argv is not split */
  assert_int_not_equal(validate(&l, "{\"command\":[\"ls\"]}", e), 0);
  assert_string_equal(e, "shell policy: command \"ls\" matches no allow rule");
  unload(&l);
}

static void test_policy_file_errors(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE];
  loaded l = load(NULL, "MISSING");
  assert_int_not_equal(validate(&l, "{\"script\":\"echo hi\"}", e), 0);
  assert_non_null(strstr(e, "shell: MUSTER_SHELL_POLICY: shell policy "));
  assert_non_null(strstr(e, "cannot open"));
  unload(&l);
  l = load(NULL, "{\"deny\": [\"x\"], \"alow\": []}");
  assert_int_not_equal(validate(&l, "{\"script\":\"echo hi\"}", e), 0);
  assert_non_null(strstr(e, "unknown key \"alow\""));
  unload(&l);
  l = load(NULL, "{\"deny\": [\"ok\", 3]}");
  assert_int_not_equal(validate(&l, "{\"script\":\"echo hi\"}", e), 0);
  assert_non_null(strstr(e, "deny rule 2 must be a non-empty string"));
  unload(&l);
  l = load(NULL, "{\"deny\": [");
  assert_int_not_equal(validate(&l, "{\"script\":\"echo hi\"}", e), 0);
  assert_non_null(strstr(e, "bad JSON"));
  unload(&l);
}

static void test_script_file_policy_and_audit(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE], path[512];
  snprintf(path, sizeof path, "%s/ok.sh", tmp);
  FILE *f = fopen(path, "w");
  fputs("#!/bin/sh\necho from file\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/bad.sh", tmp);
  f = fopen(path, "w");
  fputs("echo one\n\nmkfs -t xfs /dev/sdb\n", f);
  fclose(f);
  loaded l = load(NULL, "{\"deny\": [\"*mkfs*\"]}");
  muster_task t;
  assert_int_not_equal(start(&l, &t, "{}", "{\"scriptFile\":\"bad.sh\"}", e), 0);
  assert_string_equal(e, "shell policy: deny rule 1 \"*mkfs*\" matches line 3 \"mkfs -t xfs /dev/sdb\"");
  assert_int_equal(t.argc, 0);
  assert_string_equal(t.log, ""); /* refused before the audit line: nothing ran */
  end(&l, &t);
  assert_int_not_equal(start(&l, &t, "{}", "{\"scriptFile\":\"missing.sh\"}", e), 0);
  assert_non_null(strstr(e, "shell.scriptFile: cannot open"));
  end(&l, &t);
  assert_int_equal(start(&l, &t, "{\"runAs\":\"nobody\",\"workingDir\":\"sub\"}",
                         "{\"interpreter\":\"bash\",\"scriptFile\":\"ok.sh\"}", e),
                   0);
  assert_int_equal(t.argc, 2);
  assert_string_equal(t.argv[0], "bash");
  char want[2048];
  snprintf(want, sizeof want,
           "1 audit: user=nobody job=job-7 task=web1/t attempt=2 agent=agent-9 form=scriptFile interpreter=bash "
           "program=bash sha256=4923d284456f2b9164d67263ddf53538d337efaaa1c17494f847766564da2b24 bytes=25 "
           "task_dir=%s cwd=%s/sub policy=on",
           tmp, tmp);
  assert_string_equal(t.log, want);
  end(&l, &t);
  unload(&l);
}

/* A script without shell syntax runs as its words, without sh; anything else keeps sh -c. */
static void test_plain_script_skips_the_shell(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE];
  loaded l = load(NULL, NULL);
  muster_task t;
  assert_int_equal(start(&l, &t, "{}", "{\"script\":\" hostname  -f \"}", e), 0);
  assert_int_equal(t.argc, 2);
  assert_string_equal(t.argv[0], "hostname");
  assert_string_equal(t.argv[1], "-f");
  assert_non_null(strstr(t.log, "form=script interpreter=sh program=hostname "));
  end(&l, &t);
  assert_int_equal(start(&l, &t, "{}", "{\"script\":\"true\",\"interpreter\":\"sh\"}", e), 0);
  assert_int_equal(t.argc, 1);
  assert_string_equal(t.argv[0], "true");
  end(&l, &t);
  const char *keep_sh[] = {"{\"script\":\"echo hi\"}", "{\"script\":\"ls $HOME\"}",
                           "{\"script\":\"true\",\"interpreter\":\"bash\"}", "{\"script\":\"true\",\"args\":[\"a\"]}"};
  for (size_t i = 0; i < sizeof keep_sh / sizeof *keep_sh; i++) {
    assert_int_equal(start(&l, &t, "{}", keep_sh[i], e), 0);
    assert_string_equal(t.argv[1], "-c");
    assert_string_equal(t.argv[3], "web1/t");
    end(&l, &t);
  }
  unload(&l);
}

static void test_audit_line(void **state) {
  (void)state;
  char e[MUSTER_ERRBUF_SIZE], want[2048];
  loaded l = load(NULL, NULL);
  muster_task t;
  assert_int_equal(start(&l, &t, "{}", "{\"script\":\"echo hi\"}", e), 0);
  snprintf(want, sizeof want,
           "1 audit: user=(agent-default) job=job-7 task=web1/t attempt=2 agent=agent-9 form=script interpreter=sh "
           "program=sh sha256=56a79f3b115448072387c2480044bfa2cf8f90e4f5fddd8c943b4e051b81f80b bytes=7 "
           "task_dir=%s cwd=%s policy=off",
           tmp, tmp);
  assert_string_equal(t.log, want);
  end(&l, &t);
  assert_int_equal(start(&l, &t, "{\"run_as\":\"svc:svc\"}", "{\"command\":[\"ls\",\"-l\"],\"args\":[\"/tmp\"]}", e),
                   0);
  assert_string_equal(t.argv[0], "ls");
  assert_string_equal(t.argv[2], "/tmp");
  assert_non_null(strstr(t.log, "user=svc:svc "));
  assert_non_null(strstr(t.log,
                         "form=command interpreter=- program=ls "
                         "sha256=498d017a815da7cc8e4295a8eacb3255855b9c8682b7752790183e3dad42f399 bytes=10 "));
  end(&l, &t);
  unload(&l);
}

int main(int argc, char **argv) {
  if (argc < 2 || realpath(argv[1], so_path) == NULL) {
    fprintf(stderr, "usage: shell_test LIBMUSTER_SHELL.so\n");
    return 2;
  }
  snprintf(tmp, sizeof tmp, "/tmp/shell_test.XXXXXX");
  if (mkdtemp(tmp) == NULL) return 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interpreters),
      cmocka_unit_test(test_policy_deny),
      cmocka_unit_test(test_policy_allow),
      cmocka_unit_test(test_policy_file_errors),
      cmocka_unit_test(test_script_file_policy_and_audit),
      cmocka_unit_test(test_audit_line),
      cmocka_unit_test(test_plain_script_skips_the_shell),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", tmp);
  return rc;
}
