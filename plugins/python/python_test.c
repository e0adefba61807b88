/* Python task type tests, end to end through the agent's runner and real interpreters: script,
 * module and code runs with args, stdin and env; interpreter choice (Debian's python3, a pyenv
 * 3.11.7 and 2.7 when present); environments from a wheelhouse built here from a tiny local
 * package, cache hits, two tasks building one environment once; progress and params through
 * muster_task; every bad input; a raising script; timeout; run-as nobody on a read-only cache. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/testing/skip.h"

#include "agent/exec/plugin_env.h"
#include "agent/exec/runner_testkit.h"

static char helper[4096], python_so[4096];
static char base[256], spool[300], cache[300], wheelhouse[300], wheel_sha[80];
static const char *pyenv_311 = "/root/.pyenv/versions/3.11.7/bin/python3.11";
static const char *pyenv_27 = "/root/.pyenv/versions/2.7.18/bin/python2.7";
static int have_311, have_27;
static void *keep_loaded; /* one plugin instance for the whole run, so its counters persist */

typedef mu_tk_rec rec;
typedef mu_tk_world world;

static void world_init(world *w, bool no_cgroups) {
  mu_runner_config cfg = {.slots = 12,
                          .spool_dir = spool,
                          .agent_id = "agent-1",
                          .helper_path = helper,
                          .grace_ms = 500,
                          .cgroup_name = "muster-pytest",
                          .no_cgroups = no_cgroups};
  mu_tk_world_init(w, python_so, &cfg, 16384, 32768);
}

static void world_free(world *w) { mu_tk_world_free(w); }

static void write_file(const char *dir, const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
    *p = '\0';
    mkdir(path, 0755);
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Assigns a task, then puts files in its fresh task dir the way a bundle would be unpacked
 * (the plugin starts on the next loop turn). files: name, text, name, text, ..., NULL. */
static rec *assignp(world *w, const char *task_id, const char *spec, const mu_kv *params, size_t n_params, ...) {
  mu_err err = {0};
  int rc = mu_runner_assign(w->runner, "job-1", task_id, 1, spec, params, n_params, &err);
  if (rc != 0) fail_msg("assign %s: %s", task_id, err.msg);
  char pattern[600];
  snprintf(pattern, sizeof pattern, "%s/work/%s.1.*", spool, task_id);
  glob_t g;
  assert_int_equal(glob(pattern, 0, NULL, &g), 0);
  assert_int_equal(g.gl_pathc, 1);
  va_list ap;
  va_start(ap, n_params);
  for (const char *name; (name = va_arg(ap, const char *)) != NULL;)
    write_file(g.gl_pathv[0], name, va_arg(ap, const char *));
  va_end(ap);
  globfree(&g);
  return mu_tk_rec_for(w, task_id);
}
#define assign(w, id, spec, ...) assignp(w, id, spec, NULL, 0, __VA_ARGS__)

static void run_until_final(world *w, rec *r) { mu_tk_run_until_final(w, r); }

static int last_state(const rec *r) { return r->states[r->n_states - 1]; }

static void expect_ok(const rec *r) {
  if (last_state(r) != MU_TASK_SUCCEEDED)
    fail_msg("task %s: state %d, message %s\nstdout: %s\nstderr: %s", r->task_id, last_state(r), r->message, r->out,
             r->err);
}

static long long stat_of(const char *name) {
  int (*fn)(char *, size_t) = (int (*)(char *, size_t))dlsym(keep_loaded, "muster_python_cache_stats");
  assert_non_null(fn);
  char buf[512], key[64];
  fn(buf, sizeof buf);
  snprintf(key, sizeof key, "\"%s\":", name);
  const char *p = strstr(buf, key);
  assert_non_null(p);
  return atoll(p + strlen(key));
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* ---- tests ---- */

static void test_script_args_stdin_env(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  rec *r = assign(
      &w, "script",
      "{\"env\":{\"A\":\"1\"},\"stdin\":\"hello\",\"python\":{\"script\":\"bin/main.py\",\"args\":[\"x\",\"y z\"]}}",
      "bin/main.py",
      "import os, sys\n"
      "print('args', sys.argv[1:])\n"
      "print('stdin', sys.stdin.read().strip())\n"
      "print('env', os.environ['A'], os.environ['MUSTER_TASK_ID'])\n"
      "print('unbuffered', sys.stdout.write_through, os.environ['PYTHONUNBUFFERED'])\n"
      "sys.stderr.write('to-stderr\\n')\n",
      NULL);
  run_until_final(&w, r);
  expect_ok(r);
  assert_non_null(strstr(r->out, "args ['x', 'y z']"));
  assert_non_null(strstr(r->out, "stdin hello"));
  assert_non_null(strstr(r->out, "env 1 script"));
  assert_non_null(strstr(r->out, "unbuffered True 1"));
  assert_non_null(strstr(r->err, "to-stderr"));
  world_free(&w);
}

static void test_module_and_code(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  rec *r = assign(&w, "module", "{\"python\":{\"module\":\"pkg.mod\",\"args\":[\"m\"]}}", "pkg/__init__.py", "",
                  "pkg/mod.py", "import sys\nprint('mod', __name__, sys.argv[1:])\n", NULL);
  rec *c =
      assign(&w, "code", "{\"python\":{\"code\":\"import sys; print('code', sys.argv[1:])\",\"args\":[\"a\"]}}", NULL);
  run_until_final(&w, r);
  run_until_final(&w, c);
  expect_ok(r);
  expect_ok(c);
  assert_non_null(strstr(r->out, "mod __main__ ['m']"));
  assert_non_null(strstr(c->out, "code ['a']"));
  world_free(&w);
}

static void test_interpreters(void **state) {
  (void)state;
  const char *(*list)(void) = (const char *(*)(void))dlsym(keep_loaded, "muster_python_interpreters");
  assert_non_null(list);
  printf("interpreters: %s\n", list());
  assert_non_null(strstr(list(), "\"path\":\"/usr/bin/python3.11\""));
  assert_non_null(strstr(list(), "/usr/bin/python3\""));
  world w;
  world_init(&w, false);
  const char *code = "\"code\":\"import sys; print('ver', '%d.%d.%d' % sys.version_info[:3], sys.executable)\"";
  char spec[512];
  snprintf(spec, sizeof spec, "{\"python\":{\"interpreter\":\"3\",%s}}", code);
  rec *r = assign(&w, "v3", spec, NULL);
  run_until_final(&w, r);
  expect_ok(r);
  assert_non_null(strstr(r->out, "ver 3.11."));
  assert_non_null(strstr(r->out, "/usr/bin/python3.11"));
  if (have_311) {
    snprintf(spec, sizeof spec, "{\"python\":{\"interpreter\":\"%s\",%s}}", pyenv_311, code);
    r = assign(&w, "pyenv-path", spec, NULL);
    snprintf(spec, sizeof spec, "{\"python\":{\"interpreter\":\"3.11.7\",%s}}", code);
    rec *r2 = assign(&w, "pyenv-ver", spec, NULL);
    run_until_final(&w, r);
    run_until_final(&w, r2);
    expect_ok(r);
    expect_ok(r2);
    assert_non_null(strstr(r->out, "ver 3.11.7 /root/.pyenv/versions/3.11.7/bin/python3.11"));
    assert_non_null(strstr(r2->out, "ver 3.11.7"));
  } else {
    printf("skipping the pyenv 3.11.7 runs: %s is not there\n", pyenv_311);
  }
  if (have_27) {
    r = assign(
        &w, "py2",
        "{\"python\":{\"interpreter\":\"2.7\",\"code\":\"import sys; print('py2 %d.%d' % sys.version_info[:2])\"}}",
        NULL);
    run_until_final(&w, r);
    expect_ok(r);
    assert_non_null(strstr(r->out, "py2 2.7"));
  } else {
    printf("skipping the python 2.7 run: %s is not there\n", pyenv_27);
  }
  mu_err err = {0};
  struct {
    const char *spec, *want;
  } bad[] = {
      {"{\"python\":{\"interpreter\":\"3.99\",\"code\":\"pass\"}}", "unknown interpreter \"3.99\""},
      {"{\"python\":{\"interpreter\":\"/opt/nope/python3\",\"code\":\"pass\"}}", "\"/opt/nope/python3\""},
      {"{\"python\":{\"args\":[]}}", "give one of script, module or code"},
      {"{\"python\":{\"script\":\"a.py\",\"code\":\"pass\"}}", "only one of script, module or code"},
      {"{\"python\":{\"script\":\"../a.py\"}}", "python.script"},
      {"{\"python\":{\"module\":\"bad-name\"}}", "python.module: \"bad-name\""},
      {"{\"python\":{\"code\":\"pass\",\"requirements\":\"r.txt\",\"pyproject\":\"p.toml\"}}",
       "only one of requirements or pyproject"},
      {"{\"python\":{\"code\":\"pass\",\"requirements\":\"r.txt\"}}", "no wheelhouse or indexUrl"},
      {"{\"python\":{\"code\":\"pass\",\"bogus\":1}}", "python.bogus: unknown field"},
      {"{\"python\":{\"code\":\"pass\",\"indexUrl\":\"ftp://x\"}}", "python.indexUrl"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(mu_runner_assign(w.runner, "j", "bad", 1, bad[i].spec, NULL, 0, &err), MU_EINVAL);
    if (strstr(err.msg, bad[i].want) == NULL)
      fail_msg("spec %s: got \"%s\", want \"%s\"", bad[i].spec, err.msg, bad[i].want);
  }
  if (have_27) {
    assert_int_equal(
        mu_runner_assign(
            w.runner, "j", "bad", 1,
            "{\"python\":{\"interpreter\":\"2\",\"code\":\"pass\",\"requirements\":\"r.txt\",\"wheelhouse\":\"/w\"}}",
            NULL, 0, &err),
        MU_EINVAL);
    assert_non_null(strstr(err.msg, "venv"));
  }
  world_free(&w);
}

static const char *env_script =
    "import os, sys, muster_task, tinypkg\n"
    "print('hello', tinypkg.hello())\n"
    "print('prefix', sys.prefix)\n"
    "print('params', sorted(muster_task.params().items()))\n"
    "muster_task.progress(50, 'half way')\n"
    "muster_task.set_param('greeting', tinypkg.hello())\n";

static void test_env_build_hit_and_helper(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_configure(w.plugins, "python", "{\"wheelhous\":\"/w\"}", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "python config.wheelhous: unknown field"));
  assert_int_equal(mu_plugin_host_configure(w.plugins, "python", "{}", &err), 0); /* SDK v2: metrics */
  long long builds = stat_of("builds"), hits = stat_of("hits");
  char spec[1024];
  snprintf(spec, sizeof spec,
           "{\"python\":{\"script\":\"main.py\",\"requirements\":\"requirements.txt\",\"wheelhouse\":\"%s\"}}",
           wheelhouse);
  mu_kv params[] = {{"prev.answer", "42"}};
  rec *r = assignp(&w, "env1", spec, params, 1, "main.py", env_script, "requirements.txt", "tinypkg==1.0.0\n", NULL);
  run_until_final(&w, r);
  expect_ok(r);
  assert_non_null(strstr(r->out, "hello tiny-hello"));
  assert_non_null(strstr(r->out, cache));
  assert_non_null(strstr(r->out, "('prev.answer', '42')"));
  assert_non_null(strstr(r->err, "building python environment"));
  assert_non_null(strstr(r->out, "Successfully installed tinypkg-1.0.0")); /* pip's output is the task's */
  assert_int_equal(r->n_progress, 1);
  assert_true(r->last_pct == 50.0);
  assert_string_equal(r->params, "greeting=tiny-hello;");
  assert_int_equal(stat_of("builds"), builds + 1);

  /* The same set written differently: a cache hit, nothing built. */
  r = assignp(&w, "env2", spec, params, 1, "main.py", env_script, "requirements.txt",
              "# pinned\nTinyPkg == 1.0.0   # the one\n\n", NULL);
  run_until_final(&w, r);
  expect_ok(r);
  assert_null(strstr(r->err, "building"));
  assert_non_null(strstr(r->out, "hello tiny-hello"));
  assert_int_equal(stat_of("builds"), builds + 1);
  assert_int_equal(stat_of("hits"), hits + 1);

  /* pyproject.toml with the same dependency: the same environment. */
  snprintf(spec, sizeof spec,
           "{\"python\":{\"script\":\"main.py\",\"pyproject\":\"pyproject.toml\",\"wheelhouse\":\"%s\"}}", wheelhouse);
  r = assign(&w, "env3", spec, "main.py", env_script, "pyproject.toml",
             "[build-system]\nrequires = [\"setuptools\"]\n\n[project]\nname = \"job\"\nversion = \"1\"\n"
             "dependencies = [\n  \"tinypkg==1.0.0\",  # pinned\n]\n\n[tool.x]\ndependencies = [\"nope\"]\n",
             NULL);
  run_until_final(&w, r);
  expect_ok(r);
  assert_int_equal(stat_of("builds"), builds + 1);
  assert_int_equal(stat_of("hits"), hits + 2);
  /* the plugin's metrics: one build (its seconds observed), then two hits */
  char reason[MUSTER_ERRBUF_SIZE];
  assert_int_equal(mu_plugin_env_health(mu_plugin_host_env(w.plugins, "python"), reason, sizeof reason),
                   MUSTER_HEALTH_OK);
  mu_prom p = {0};
  mu_metrics_render_as(mu_plugin_host_metrics(w.plugins), "muster_agent_plugin_series_dropped_total", &p);
  if (strstr(p.buf, "muster_plugin_python_venv_cache_lookups_total{result=\"miss\"} 1\n") == NULL ||
      strstr(p.buf, "muster_plugin_python_venv_cache_lookups_total{result=\"hit\"} 2\n") == NULL ||
      strstr(p.buf, "muster_plugin_python_env_build_seconds_count{outcome=\"ok\"} 1\n") == NULL)
    fail_msg("metrics:\n%s", p.buf);
  mu_prom_free(&p);

  /* The cache: owned by us, 0755, complete environments only. */
  char venvs[400];
  snprintf(venvs, sizeof venvs, "%s/venvs", cache);
  struct stat sb;
  assert_int_equal(stat(venvs, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0755);
  assert_int_equal(sb.st_uid, geteuid());
  world_free(&w);
}

static void test_concurrent_tasks_build_once(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  long long builds = stat_of("builds"), joins = stat_of("joins");
  char spec[1024];
  snprintf(spec, sizeof spec,
           "{\"python\":{\"script\":\"main.py\",\"requirements\":\"requirements.txt\",\"wheelhouse\":\"%s\"}}",
           wheelhouse);
  rec *a = assign(&w, "conc-a", spec, "main.py", env_script, "requirements.txt", "tinypkg>=1.0\n", NULL);
  rec *b = assign(&w, "conc-b", spec, "main.py", env_script, "requirements.txt", "tinypkg >= 1.0\n", NULL);
  run_until_final(&w, a);
  run_until_final(&w, b);
  expect_ok(a);
  expect_ok(b);
  assert_int_equal(stat_of("builds"), builds + 1);
  assert_int_equal(stat_of("joins"), joins + 1);
  assert_int_equal(
      count(a->err, "muster: building python environment") + count(b->err, "muster: building python environment"), 2);
  assert_int_equal(count(a->err, "joining the build") + count(b->err, "joining the build"), 1);
  assert_non_null(strstr(a->out, "hello tiny-hello"));
  assert_non_null(strstr(b->out, "hello tiny-hello"));
  world_free(&w);
}

static void test_require_hashes(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  char spec[1024], good[200];
  snprintf(spec, sizeof spec,
           "{\"python\":{\"script\":\"main.py\",\"requirements\":\"r.txt\",\"wheelhouse\":\"%s\","
           "\"require_hashes\":true}}",
           wheelhouse);
  snprintf(good, sizeof good, "tinypkg==1.0.0 \\\n    --hash=sha256:%s\n", wheel_sha);
  rec *r = assign(&w, "hash-ok", spec, "main.py", env_script, "r.txt", good, NULL);
  rec *bad =
      assign(&w, "hash-bad", spec, "main.py", env_script, "r.txt",
             "tinypkg==1.0.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n", NULL);
  run_until_final(&w, r);
  run_until_final(&w, bad);
  expect_ok(r);
  assert_int_equal(last_state(bad), MU_TASK_FAILED);
  assert_non_null(strstr(bad->message, "pip install failed"));
  assert_non_null(strstr(bad->message, "HASHES"));
  world_free(&w);
}

static void test_bad_inputs_fail_with_names(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  char spec[1024];
  rec *nos = assign(&w, "no-script", "{\"python\":{\"script\":\"nosuch.py\"}}", NULL);
  rec *nom = assign(&w, "no-module", "{\"python\":{\"module\":\"nosuchmod.sub\"}}", NULL);
  rec *raise =
      assign(&w, "raises", "{\"python\":{\"script\":\"boom.py\"}}", "boom.py",
             "def inner():\n    return 1 / 0\n\ndef outer():\n    inner()\n\nprint('before')\nouter()\n", NULL);
  snprintf(spec, sizeof spec,
           "{\"python\":{\"code\":\"pass\",\"requirements\":\"requirements.txt\",\"wheelhouse\":\"%s\"}}", wheelhouse);
  rec *unparsable = assign(&w, "bad-reqs", spec, "requirements.txt", "tinypkg==1.0.0\nthis is not valid\n", NULL);
  rec *missing = assign(&w, "no-wheel", spec, "requirements.txt", "tinypkg==9.9\n", NULL);
  rec *nofile = assign(&w, "no-reqs-file", spec, NULL);
  snprintf(spec, sizeof spec,
           "{\"python\":{\"code\":\"pass\",\"requirements\":\"r.txt\",\"wheelhouse\":\"wh-missing\"}}");
  rec *nowh = assign(&w, "no-wheelhouse", spec, "r.txt", "tinypkg\n", NULL);
  rec *all[] = {nos, nom, raise, unparsable, missing, nofile, nowh};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    run_until_final(&w, all[i]);
    assert_int_equal(last_state(all[i]), MU_TASK_FAILED);
    printf("%s: %s\n", all[i]->task_id, all[i]->message);
  }
  assert_non_null(strstr(nos->message, "\"nosuch.py\" not found"));
  assert_non_null(strstr(nom->message, "no module named \"nosuchmod.sub\""));
  assert_non_null(strstr(raise->message, "exit code 1: ZeroDivisionError: division by zero"));
  assert_non_null(strstr(raise->message, "traceback ends:"));
  assert_non_null(strstr(raise->message, "return 1 / 0"));
  assert_non_null(strstr(raise->out, "before"));
  assert_non_null(strstr(raise->err, "Traceback (most recent call last)")); /* still printed as usual */
  assert_non_null(strstr(unparsable->message, "requirements.txt line 2"));
  assert_non_null(strstr(unparsable->message, "this is not valid"));
  assert_non_null(strstr(missing->message, "tinypkg==9.9"));
  assert_non_null(strstr(missing->err, "ERROR:"));
  assert_non_null(strstr(nofile->message, "\"requirements.txt\" not found"));
  assert_non_null(strstr(nowh->message, "\"wh-missing\" not found"));
  world_free(&w);
}

static void test_timeout_kills_interpreter(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  char spec[600], pidfile[400];
  snprintf(pidfile, sizeof pidfile, "%s/py.pid", base);
  unlink(pidfile);
  snprintf(spec, sizeof spec,
           "{\"timeout\":\"6s\",\"resources\":{\"memory\":\"256M\"},\"python\":{\"code\":"
           "\"import os, time\\nopen('%s', 'w').write(str(os.getpid()))\\ntime.sleep(1000)\"}}",
           pidfile);
  rec *r = assign(&w, "slow", spec, NULL);
  run_until_final(&w, r);
  assert_int_equal(last_state(r), MU_TASK_TIMED_OUT);
  FILE *f = fopen(pidfile, "r");
  assert_non_null(f);
  int pid = -1;
  assert_int_equal(fscanf(f, "%d", &pid), 1);
  fclose(f);
  for (int i = 0; i < 50 && !mu_tk_pid_gone(pid); i++) usleep(20000);
  assert_true(mu_tk_pid_gone(pid));
  /* A memory limit binds the interpreter too. */
  r = assign(&w, "hungry",
             "{\"resources\":{\"memory\":\"64M\"},\"python\":{\"code\":"
             "\"b = bytearray(400 * 1024 * 1024); print('allocated')\"}}",
             NULL);
  run_until_final(&w, r);
  assert_int_equal(last_state(r), MU_TASK_FAILED);
  assert_null(strstr(r->out, "allocated"));
  world_free(&w);
}

static void test_run_as_nobody_cache_read_only(void **state) {
  (void)state;
  if (geteuid() != 0) {
    MU_SKIP("not root: run-as needs root");
  }
  world w;
  world_init(&w, true);
  char spec[1024];
  snprintf(spec, sizeof spec,
           "{\"runAs\":\"nobody\",\"python\":{\"script\":\"main.py\",\"requirements\":\"requirements.txt\","
           "\"wheelhouse\":\"%s\"}}",
           wheelhouse);
  rec *r = assign(&w, "nobody", spec, "main.py",
                  "import os, sys, tinypkg, muster_task\n"
                  "print('user', os.getuid())\n"
                  "try:\n    open(os.path.join(sys.prefix, 'x'), 'w')\n    print('cache writable')\n"
                  "except (IOError, OSError):\n    print('cache read-only')\n"
                  "muster_task.set_param('who', 'nobody')\n",
                  "requirements.txt", "tinypkg==1.0.0\n", NULL);
  run_until_final(&w, r);
  expect_ok(r);
  assert_null(strstr(r->out, "user 0\n"));
  assert_non_null(strstr(r->out, "cache read-only"));
  assert_string_equal(r->params, "who=nobody;");
  world_free(&w);
}

/* Cancels the task once its build process is running (machines under load start slowly). */
static void on_cancel_timer(uv_timer_t *t) {
  world *w = t->data;
  rec *r = mu_tk_rec_for(w, "cancel-build");
  if (strstr(r->err, "creating the virtual environment") == NULL && !r->final) return;
  mu_err err = {0};
  if (!r->final) assert_int_equal(mu_runner_cancel(w->runner, "cancel-build", 1, "operator said stop", &err), 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_during_build(void **state) {
  (void)state;
  world w;
  world_init(&w, false);
  long long failures = stat_of("failures");
  char spec[1024];
  snprintf(spec, sizeof spec,
           "{\"python\":{\"code\":\"pass\",\"requirements\":\"requirements.txt\",\"wheelhouse\":\"%s\"}}", wheelhouse);
  rec *r = assign(&w, "cancel-build", spec, "requirements.txt", "tinypkg<2\n", NULL);
  uv_timer_t t;
  uv_timer_init(&w.loop, &t);
  t.data = &w;
  uv_timer_start(&t, on_cancel_timer, 20, 20);
  run_until_final(&w, r);
  assert_int_equal(last_state(r), MU_TASK_CANCELLED);
  assert_non_null(strstr(r->message, "operator said stop"));
  world_free(&w); /* runs the loop until the killed build has cleaned up */
  assert_int_equal(stat_of("failures"), failures + 1);
  char pattern[600];
  snprintf(pattern, sizeof pattern, "%s/venvs/.tmp.*", cache);
  glob_t g;
  assert_int_equal(glob(pattern, 0, NULL, &g), GLOB_NOMATCH);
}

static int run_cmd(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd);
}

/* A wheelhouse with tinypkg-1.0.0, built offline from a tiny local package. */
static int make_wheelhouse(void) {
  char pkg[400];
  snprintf(pkg, sizeof pkg, "%s/src", base);
  write_file(base, "src/setup.py",
             "from setuptools import setup\nsetup(name='tinypkg', version='1.0.0', packages=['tinypkg'])\n");
  write_file(base, "src/tinypkg/__init__.py", "def hello():\n    return 'tiny-hello'\n");
  snprintf(wheelhouse, sizeof wheelhouse, "%s/wheelhouse", base);
  if (run_cmd("cd %s && /usr/bin/python3 -m pip wheel --isolated --quiet --no-deps --no-build-isolation -w %s %s "
              ">/dev/null 2>&1",
              base, wheelhouse, pkg) != 0)
    return -1;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "sha256sum %s/tinypkg-1.0.0-py3-none-any.whl", wheelhouse);
  FILE *p = popen(cmd, "r");
  if (p == NULL) return -1;
  int ok = fscanf(p, "%64s", wheel_sha) == 1;
  pclose(p);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 3 || !realpath(argv[1], helper) || !realpath(argv[2], python_so)) {
    fprintf(stderr, "usage: python_test MUSTER-EXEC PYTHON.so\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (access("/usr/bin/python3", X_OK) != 0) {
    printf("skipping every test: /usr/bin/python3 is not installed\n");
    return 0;
  }
  snprintf(base, sizeof base, "/tmp/python_test.XXXXXX");
  if (mkdtemp(base) == NULL) return 2;
  chmod(base, 0755); /* the run-as user must reach its task dir and the cache */
  snprintf(spool, sizeof spool, "%s/spool", base);
  snprintf(cache, sizeof cache, "%s/cache", base);
  mkdir(spool, 0755);
  have_311 = access(pyenv_311, X_OK) == 0;
  have_27 = access(pyenv_27, X_OK) == 0;
  char interps[1024];
  snprintf(interps, sizeof interps, "%s:%s", have_311 ? pyenv_311 : "", have_27 ? pyenv_27 : "");
  setenv("MUSTER_PYTHON_INTERPRETERS", interps, 1);
  setenv("MUSTER_PYTHON_CACHE", cache, 1);
  int rc = 2;
  if (make_wheelhouse() != 0) {
    fprintf(stderr, "cannot build the test wheelhouse with /usr/bin/python3 -m pip wheel\n");
    goto done;
  }
  keep_loaded = dlopen(python_so, RTLD_NOW | RTLD_LOCAL);
  if (keep_loaded == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", python_so, dlerror());
    goto done;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_script_args_stdin_env),
      cmocka_unit_test(test_module_and_code),
      cmocka_unit_test(test_interpreters),
      cmocka_unit_test(test_env_build_hit_and_helper),
      cmocka_unit_test(test_concurrent_tasks_build_once),
      cmocka_unit_test(test_require_hashes),
      cmocka_unit_test(test_bad_inputs_fail_with_names),
      cmocka_unit_test(test_timeout_kills_interpreter),
      cmocka_unit_test(test_run_as_nobody_cache_read_only),
      cmocka_unit_test(test_cancel_during_build),
  };
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  dlclose(keep_loaded);
done:
  if (run_cmd("rm -rf %s", base) != 0) fprintf(stderr, "cleanup of %s failed\n", base);
  return rc;
}
