/* The python task type: runs a script from the task dir, a module (-m) or inline code (-c)
 * under a chosen interpreter, unbuffered, as one supervised process (so the task's timeout,
 * limits, run-as user and output capture apply), optionally inside a cached virtual
 * environment built from the task's requirements.txt or pyproject.toml (envcache.h). Tasks
 * import the helper module muster_task (shipped inside this .so, written to <cache>/lib) to
 * report progress and params. Built against plugins/sdk/muster_plugin.h and the SDK's spec_fields
 * helper (field lookup and errors). */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/python/envcache.h"
#include "plugins/python/fsutil.h"
#include "plugins/python/interp.h"
#include "muster_plugin.h"
#include "spec_fields.h"
#include "plugins/python/py_embedded.h"
#include "plugins/python/reqs.h"

#define PY_MAX_ARGS 4096
#define PY_MAX_REQS_FILE (1 << 20)     /* bytes of requirements.txt / pyproject.toml read */
#define PY_MAX_PARAMS_JSON (64 * 1024) /* MUSTER_PARAMS larger than this is left out */
#define PY_REPORT ".muster-python-report"
#define PY_DEFAULT_CACHE "/var/lib/muster/python"

/* Plugin-wide state. The SDK has no per-plugin handle, so what must outlive one task (the
 * interpreters found at load, the environment cache and its builds under way) lives here. It
 * is set up when the agent dlopen()s the plugin, torn down at dlclose(), and otherwise touched
 * only on the agent's loop thread. */
static struct {
  py_interp_table interps;
  py_cache *cache;
  char lib_dir[PATH_MAX];   /* <cache>/lib: muster_task.py and sitecustomize.py */
  char *default_wheelhouse; /* MUSTER_PYTHON_WHEELHOUSE */
  char *default_index_url;  /* MUSTER_PYTHON_INDEX_URL */
  char *interp_json;        /* what muster_python_interpreters() returns */
  char description[1024];
} g;

typedef enum { PW_PREPARE, PW_REPORT } work_kind;

typedef struct py_task {
  const muster_host_api *host;
  muster_task *task;
  int refs; /* the agent (until cleanup) + thread-pool work in flight */
  bool ended, cancelled;
  json_t *spec, *cfg; /* owned */
  const py_interp *interp;
  const char *script, *module, *code, *reqs_file, *wheelhouse, *index_url;
  bool pyproject, require_hashes;
  char task_dir[PATH_MAX], script_path[PATH_MAX], wheelhouse_path[PATH_MAX], report_path[PATH_MAX];
  /* The environment. */
  char *reqs_norm;
  size_t n_reqs;
  py_env_waiter *waiter;
  char env_key[65];
  bool holds_env;
  char venv[PATH_MAX];
  /* The process and how it ended. */
  muster_proc *proc;
  bool checking_module;
  muster_result exit;
  char exit_message[512];
  /* Thread-pool work. */
  uv_work_t work;
  work_kind wk;
  char werr[1024];
  char report[2100];
} py_task;

static const char *get_str(json_t *o, const char *camel, const char *snake) {
  json_t *v = muster_field_get(o, camel, snake);
  return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static bool bundle_path_ok(const char *p) { return p[0] != '/' && strstr(p, "..") == NULL; }

static bool module_ok(const char *m) {
  bool start = true;
  for (const char *p = m; *p; p++) {
    bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
    bool digit = *p >= '0' && *p <= '9';
    if (*p == '.' && !start) {
      start = true;
    } else if (alpha || (digit && !start)) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

/* Checks the "python" section and picks the interpreter. No I/O. */
static int check(json_t *py, const py_interp **ret_interp, char *errbuf) {
  if (!json_is_object(py)) return muster_field_fail(errbuf, "python: must be an object");
  static const char *const fields[] = {"script",      "module",       "code",          "args",
                                       "interpreter", "requirements", "pyproject",     "indexUrl",
                                       "index_url",   "wheelhouse",   "requireHashes", "require_hashes"};
  const char *key;
  json_t *val;
  json_object_foreach(py, key, val) {
    bool known = false;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) known = known || strcmp(key, fields[i]) == 0;
    if (!known) return muster_field_fail(errbuf, "python.%s: unknown field", key);
    if (strcmp(key, "args") != 0 && strcmp(key, "requireHashes") != 0 && strcmp(key, "require_hashes") != 0 &&
        !json_is_string(val) && !json_is_null(val))
      return muster_field_fail(errbuf, "python.%s: must be a string", key);
  }
  const char *script = get_str(py, "script", NULL), *module = get_str(py, "module", NULL);
  const char *code = get_str(py, "code", NULL);
  int given = (script != NULL) + (module != NULL) + (code != NULL);
  if (given == 0) return muster_field_fail(errbuf, "python: give one of script, module or code");
  if (given > 1) return muster_field_fail(errbuf, "python: give only one of script, module or code");
  if (script != NULL && !bundle_path_ok(script))
    return muster_field_fail(errbuf, "python.script: \"%s\" must be a path inside the task dir, without \"..\"",
                             script);
  if (module != NULL && !module_ok(module))
    return muster_field_fail(errbuf, "python.module: \"%s\" is not a module name (want pkg.mod)", module);
  json_t *args = muster_field_get(py, "args", NULL);
  if (args != NULL) {
    if (!json_is_array(args)) return muster_field_fail(errbuf, "python.args: must be a list of strings");
    if (json_array_size(args) > PY_MAX_ARGS)
      return muster_field_fail(errbuf, "python.args: more than %d entries", PY_MAX_ARGS);
    size_t i;
    json_t *e;
    json_array_foreach(args, i, e) {
      if (!json_is_string(e)) return muster_field_fail(errbuf, "python.args[%zu]: must be a string", i);
    }
  }
  json_t *rh = muster_field_get(py, "requireHashes", "require_hashes");
  if (rh != NULL && !json_is_boolean(rh))
    return muster_field_fail(errbuf, "python.requireHashes: must be true or false");
  const char *want = get_str(py, "interpreter", NULL);
  const py_interp *in = py_interp_find(&g.interps, want);
  if (in == NULL) {
    char have[600];
    py_interp_list(&g.interps, have, sizeof have);
    return muster_field_fail(errbuf, "python.interpreter: unknown interpreter \"%s\" (this agent has: %s)",
                             want ? want : "", have);
  }
  const char *reqs = get_str(py, "requirements", NULL), *pyproject = get_str(py, "pyproject", NULL);
  if (reqs != NULL && pyproject != NULL)
    return muster_field_fail(errbuf, "python: give only one of requirements or pyproject");
  const char *file = reqs ? reqs : pyproject;
  if (file != NULL) {
    if (!bundle_path_ok(file))
      return muster_field_fail(errbuf, "python.%s: \"%s\" must be a path inside the task dir, without \"..\"",
                               reqs ? "requirements" : "pyproject", file);
    if (in->major < 3)
      return muster_field_fail(errbuf,
                               "python.%s: environments need Python 3's venv module; interpreter %s (%s) has none",
                               reqs ? "requirements" : "pyproject", in->version, in->path);
  }
  const char *index = get_str(py, "indexUrl", "index_url"), *wh = get_str(py, "wheelhouse", NULL);
  if (index != NULL && strncmp(index, "http://", 7) != 0 && strncmp(index, "https://", 8) != 0 &&
      strncmp(index, "file://", 7) != 0)
    return muster_field_fail(errbuf, "python.indexUrl: \"%s\" must be an http(s):// or file:// URL", index);
  if (wh != NULL && wh[0] != '/' && !bundle_path_ok(wh))
    return muster_field_fail(errbuf, "python.wheelhouse: \"%s\" must be an absolute path or a path inside the task dir",
                             wh);
  if (file != NULL && index == NULL && wh == NULL && g.default_wheelhouse == NULL && g.default_index_url == NULL)
    return muster_field_fail(
        errbuf,
        "python.%s: no wheelhouse or indexUrl to install from (set python.wheelhouse, python.indexUrl, "
        "or MUSTER_PYTHON_WHEELHOUSE on the agent)",
        reqs ? "requirements" : "pyproject");
  if (ret_interp != NULL) *ret_interp = in;
  return 0;
}

static int py_validate(const char *spec_json, const char *config_json, char *errbuf) {
  (void)spec_json;
  json_error_t je;
  json_t *py = json_loads(config_json, 0, &je);
  if (py == NULL) return muster_field_fail(errbuf, "python: bad JSON: %s", je.text);
  int rc = check(py, NULL, errbuf);
  json_decref(py);
  return rc;
}

/* ---- per-task lifetime ---- */

static void pt_unref(py_task *pt) {
  if (--pt->refs > 0) return;
  json_decref(pt->spec);
  json_decref(pt->cfg);
  free(pt->reqs_norm);
  free(pt);
}

static void pt_finish(py_task *pt, muster_state state, int exit_code, int sig, const char *message) {
  if (pt->ended) return;
  pt->ended = true;
  muster_result r = {state, exit_code, sig, message};
  pt->host->finish(pt->task, &r);
}

static void pt_emit(void *user, int stream, const char *data, size_t len) {
  py_task *pt = user;
  pt->host->emit_output(pt->task, stream == 1 ? MUSTER_STDOUT : MUSTER_STDERR, data, len);
}

static void pt_note(py_task *pt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pt_note(py_task *pt, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) pt_emit(pt, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* ---- thread-pool work: prepare (files) and report (traceback) ---- */

static int read_file(const char *path, char **ret, char *err, size_t cap, const char *field, const char *name) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, cap, "python.%s: \"%s\" not found in the task dir: %s", field, name, strerror(errno));
    return -ENOENT;
  }
  char *buf = malloc(PY_MAX_REQS_FILE + 1);
  size_t n = buf ? fread(buf, 1, PY_MAX_REQS_FILE + 1, f) : 0;
  fclose(f);
  if (buf == NULL) return -ENOMEM;
  if (n > PY_MAX_REQS_FILE) {
    free(buf);
    snprintf(err, cap, "python.%s: \"%s\" is larger than %d bytes", field, name, PY_MAX_REQS_FILE);
    return -EFBIG;
  }
  buf[n] = '\0';
  *ret = buf;
  return 0;
}

static void work_prepare(py_task *pt) {
  char *text = NULL;
  size_t cap = sizeof pt->werr;
  char p[PATH_MAX];
  int rc = py_fs_mkdirs(g.lib_dir);
  snprintf(p, sizeof p, "%s/muster_task.py", g.lib_dir);
  if (rc == 0) rc = py_fs_write_if_changed(p, py_muster_task_py, sizeof py_muster_task_py - 1);
  snprintf(p, sizeof p, "%s/sitecustomize.py", g.lib_dir);
  if (rc == 0) rc = py_fs_write_if_changed(p, py_sitecustomize_py, sizeof py_sitecustomize_py - 1);
  if (rc != 0) {
    snprintf(pt->werr, cap, "python: cannot write the helper module to %s: %s", g.lib_dir, strerror(-rc));
    return;
  }
  struct stat sb;
  if (pt->script != NULL && (stat(pt->script_path, &sb) != 0 || !S_ISREG(sb.st_mode))) {
    snprintf(pt->werr, cap, "python.script: \"%s\" not found in the task dir", pt->script);
    return;
  }
  if (pt->wheelhouse != NULL && (stat(pt->wheelhouse_path, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
    snprintf(pt->werr, cap, "python.wheelhouse: directory \"%s\" not found", pt->wheelhouse);
    return;
  }
  if (pt->reqs_file == NULL) return;
  const char *field = pt->pyproject ? "pyproject" : "requirements";
  snprintf(p, sizeof p, "%s/%s", pt->task_dir, pt->reqs_file);
  if (read_file(p, &text, pt->werr, cap, field, pt->reqs_file) != 0) return;
  char label[600], err[900];
  snprintf(label, sizeof label, "python.%s: %s", field, pt->reqs_file);
  rc = pt->pyproject ? py_reqs_parse_pyproject(text, label, &pt->reqs_norm, &pt->n_reqs, err, sizeof err)
                     : py_reqs_parse_txt(text, label, &pt->reqs_norm, &pt->n_reqs, err, sizeof err);
  if (rc != 0) snprintf(pt->werr, cap, "%s", err);
  free(text);
}

static void work_report(py_task *pt) {
  pt->report[0] = '\0';
  FILE *f = fopen(pt->report_path, "r");
  if (f == NULL) return;
  size_t n = fread(pt->report, 1, sizeof pt->report - 1, f);
  fclose(f);
  pt->report[n] = '\0';
  while (n > 0 && (pt->report[n - 1] == '\n' || pt->report[n - 1] == ' ')) pt->report[--n] = '\0';
}

static void on_work(uv_work_t *w) {
  py_task *pt = w->data;
  if (pt->wk == PW_PREPARE) work_prepare(pt);
  else work_report(pt);
}

static void after_prepare(py_task *pt);
static void after_report(py_task *pt);

static void after_work(uv_work_t *w, int status) {
  py_task *pt = w->data;
  (void)status;
  if (!pt->ended) {
    if (pt->wk == PW_PREPARE) after_prepare(pt);
    else after_report(pt);
  }
  pt_unref(pt);
}

static int queue(py_task *pt, work_kind k) {
  pt->wk = k;
  pt->work.data = pt;
  int rc = uv_queue_work(pt->host->loop(pt->task), &pt->work, on_work, after_work);
  if (rc == 0) pt->refs++;
  return rc;
}

/* ---- running the interpreter ---- */

static void on_exit_cb(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user);

/* The extra environment: unbuffered output, the helper on PYTHONPATH, the report file, the
 * venv, and earlier tasks' params. Strings go into *ret_strs (caller frees each and it). */
static char **build_env(py_task *pt, size_t *ret_n) {
  const muster_task_context *ctx = pt->host->context(pt->task);
  json_t *spec_env = muster_field_get(pt->spec, "env", NULL);
  const char *user_pp = json_string_value(json_object_get(spec_env, "PYTHONPATH"));
  const char *user_path = json_string_value(json_object_get(spec_env, "PATH"));
  size_t cap = 8 + ctx->n_params, n = 0;
  char **env = calloc(cap + 1, sizeof *env);
  if (env == NULL) return NULL;
  bool ok = asprintf(&env[n++], "PYTHONUNBUFFERED=1") > 0;
  ok = ok && asprintf(&env[n++], "PYTHONPATH=%s%s%s", g.lib_dir, user_pp ? ":" : "", user_pp ? user_pp : "") > 0;
  ok = ok && asprintf(&env[n++], "MUSTER_PYTHON_REPORT=%s", pt->report_path) > 0;
  if (ok && pt->holds_env) {
    ok = asprintf(&env[n++], "VIRTUAL_ENV=%s", pt->venv) > 0;
    ok = ok && asprintf(&env[n++], "PATH=%s/bin:%s", pt->venv,
                        user_path ? user_path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") > 0;
  }
  json_t *all = json_object();
  for (size_t i = 0; ok && i < ctx->n_params; i++) {
    char name[300];
    size_t k = snprintf(name, sizeof name, "MUSTER_PARAM_");
    for (const char *c = ctx->param_keys[i]; *c && k + 1 < sizeof name; c++)
      name[k++] = (*c >= 'a' && *c <= 'z')                                 ? (char)(*c - 32)
                  : ((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c
                                                                           : '_';
    name[k] = '\0';
    ok = asprintf(&env[n++], "%s=%s", name, ctx->param_values[i]) > 0;
    json_object_set_new(all, ctx->param_keys[i], json_string(ctx->param_values[i]));
  }
  char *dump = ok && ctx->n_params > 0 ? json_dumps(all, JSON_COMPACT) : NULL;
  if (dump != NULL && strlen(dump) <= PY_MAX_PARAMS_JSON) ok = asprintf(&env[n++], "MUSTER_PARAMS=%s", dump) > 0;
  free(dump);
  json_decref(all);
  if (!ok) {
    for (size_t i = 0; i < n; i++) free(env[i]);
    free(env);
    return NULL;
  }
  *ret_n = n;
  return env;
}

static void free_env(char **env, size_t n) {
  for (size_t i = 0; i < n; i++) free(env[i]);
  free(env);
}

static int spawn_python(py_task *pt, const char *const *argv, const char *stdin_data, char *errbuf) {
  size_t n_env = 0;
  char **env = build_env(pt, &n_env);
  if (env == NULL) return muster_field_fail(errbuf, "python: out of memory");
  muster_spawn_opts o = {
      .size = sizeof o,
      .argv = argv,
      .env = (const char *const *)env,
      .stdin_data = stdin_data,
      .stdin_len = stdin_data ? strlen(stdin_data) : 0,
      .on_exit = on_exit_cb,
      .user = pt,
  };
  int rc = pt->host->spawn(pt->task, &o, &pt->proc, errbuf);
  free_env(env, n_env);
  return rc;
}

static const char *python_path(py_task *pt, char *buf, size_t cap) {
  if (!pt->holds_env) return pt->interp->path;
  snprintf(buf, cap, "%s/bin/python", pt->venv);
  return buf;
}

static void run(py_task *pt) {
  json_t *args = muster_field_get(pt->cfg, "args", NULL);
  size_t n_args = json_array_size(args), n = 0;
  const char **argv = calloc(n_args + 8, sizeof *argv);
  char errbuf[MUSTER_ERRBUF_SIZE] = "", exe[PATH_MAX];
  if (argv == NULL) {
    pt_finish(pt, MUSTER_STATE_FAILED, -1, 0, "python: out of memory");
    return;
  }
  argv[n++] = python_path(pt, exe, sizeof exe);
  argv[n++] = "-u";
  if (pt->script != NULL) {
    argv[n++] = pt->script_path;
  } else if (pt->module != NULL) {
    argv[n++] = "-m";
    argv[n++] = pt->module;
  } else {
    argv[n++] = "-c";
    argv[n++] = pt->code;
  }
  for (size_t i = 0; i < n_args; i++) argv[n++] = json_string_value(json_array_get(args, i));
  argv[n] = NULL;
  int rc = spawn_python(pt, argv, get_str(pt->spec, "stdin", NULL), errbuf);
  free(argv);
  if (rc != 0) pt_finish(pt, MUSTER_STATE_FAILED, -1, 0, errbuf[0] ? errbuf : "python: cannot start the interpreter");
}

/* After a failed `-m` run with no traceback: is the module there at all? Exit 3 = no. */
static const char *const module_check_code =
    "import sys\n"
    "try:\n"
    "    import importlib.util as u\n"
    "    found = u.find_spec(sys.argv[1]) is not None\n"
    "except ImportError:\n"
    "    try:\n"
    "        import pkgutil\n"
    "        found = pkgutil.find_loader(sys.argv[1]) is not None\n"
    "    except ImportError:\n"
    "        found = False\n"
    "except Exception:\n"
    "    found = True\n"
    "sys.exit(0 if found else 3)\n";

/* The result message keeps to the agent's bound (512 bytes): the exception line first, then
 * as many of the traceback's last lines before it as fit. */
static void finish_failed_run(py_task *pt) {
  char msg[460], lines[sizeof pt->report];
  size_t n = (size_t)snprintf(msg, sizeof msg, "%s", pt->exit_message);
  snprintf(lines, sizeof lines, "%s", pt->report);
  char *last = strrchr(lines, '\n');
  const char *headline = last ? last + 1 : lines;
  if (*headline != '\0') n += (size_t)snprintf(msg + n, sizeof msg - n, ": %s", headline);
  if (last != NULL && n < sizeof msg) {
    *last = '\0';
    /* Walk back over the lines before the headline while they fit. */
    char *from = lines + strlen(lines);
    size_t room = sizeof msg - n - 20;
    while (from > lines) {
      char *prev = from - 1;
      while (prev > lines && prev[-1] != '\n') prev--;
      if ((size_t)(strlen(lines) - (size_t)(prev - lines)) + 1 > room) break;
      from = prev;
    }
    if (*from != '\0') snprintf(msg + n, sizeof msg - n, "\ntraceback ends:\n%s", from);
  }
  pt_finish(pt, pt->exit.state, pt->exit.exit_code, pt->exit.signal, msg);
}

static void after_report(py_task *pt) {
  if (pt->report[0] == '\0' && pt->module != NULL && pt->exit.exit_code == 1 && !pt->cancelled) {
    char exe[PATH_MAX], errbuf[MUSTER_ERRBUF_SIZE];
    const char *argv[] = {python_path(pt, exe, sizeof exe), "-c", module_check_code, pt->module, NULL};
    pt->checking_module = true;
    if (spawn_python(pt, argv, NULL, errbuf) == 0) return;
    pt->checking_module = false;
  }
  finish_failed_run(pt);
}

static void on_exit_cb(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)proc;
  py_task *pt = user;
  pt->proc = NULL;
  if (pt->checking_module) {
    pt->checking_module = false;
    if (x->exit_code == 3) {
      char msg[700];
      snprintf(msg, sizeof msg, "python.module: no module named \"%s\" (%s)", pt->module, pt->exit_message);
      pt_finish(pt, pt->exit.state, pt->exit.exit_code, pt->exit.signal, msg);
    } else {
      finish_failed_run(pt);
    }
    return;
  }
  if (x->suggested_state != MUSTER_STATE_FAILED || pt->cancelled || x->exit_code <= 0) {
    pt_finish(pt, x->suggested_state, x->exit_code, x->signal, x->message);
    return;
  }
  pt->exit = (muster_result){x->suggested_state, x->exit_code, x->signal, NULL};
  snprintf(pt->exit_message, sizeof pt->exit_message, "%s", x->message ? x->message : "python failed");
  if (queue(pt, PW_REPORT) != 0) finish_failed_run(pt);
}

/* ---- the environment ---- */

static void on_env_done(void *user, int status, const char *key, const char *venv_dir, const char *message) {
  py_task *pt = user;
  pt->waiter = NULL;
  if (status != 0) {
    char msg[1400];
    snprintf(msg, sizeof msg, "python environment for %s: %s", pt->reqs_file, message ? message : "build failed");
    pt_finish(pt, MUSTER_STATE_FAILED, -1, 0, msg);
    return;
  }
  snprintf(pt->env_key, sizeof pt->env_key, "%s", key);
  snprintf(pt->venv, sizeof pt->venv, "%s", venv_dir);
  pt->holds_env = true;
  if (pt->ended) return; /* cleanup gives the use back */
  run(pt);
}

static void after_prepare(py_task *pt) {
  if (pt->werr[0] != '\0') {
    pt_finish(pt, MUSTER_STATE_FAILED, -1, 0, pt->werr);
    return;
  }
  if (pt->reqs_file == NULL || pt->n_reqs == 0) {
    if (pt->reqs_file != NULL)
      pt_note(pt, "muster: %s lists no requirements; running on the bare interpreter\n", pt->reqs_file);
    run(pt);
    return;
  }
  const char *wh = pt->wheelhouse ? pt->wheelhouse_path : pt->index_url ? NULL : g.default_wheelhouse;
  py_env_request req = {
      .interpreter = pt->interp->path,
      .version = pt->interp->version,
      .requirements = pt->reqs_norm,
      .wheelhouse = wh,
      .index_url = pt->index_url    ? pt->index_url
                   : pt->wheelhouse ? NULL
                                    : g.default_index_url,
      .require_hashes = pt->require_hashes,
  };
  if (py_cache_acquire(g.cache, pt->host->loop(pt->task), &req, pt_emit, on_env_done, pt, &pt->waiter) != 0)
    pt_finish(pt, MUSTER_STATE_FAILED, -1, 0, "python: out of memory");
}

/* ---- the descriptor's callbacks ---- */

static int py_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  py_task *pt = calloc(1, sizeof *pt);
  if (pt == NULL) return muster_field_fail(errbuf, "python: out of memory");
  pt->host = host;
  pt->task = task;
  pt->refs = 1;
  host->set_user_data(task, pt); /* released in cleanup, whatever happens next */
  const muster_task_context *ctx = host->context(task);
  json_error_t je;
  pt->spec = json_loads(ctx->spec_json, 0, &je);
  pt->cfg = json_loads(ctx->config_json, 0, &je);
  if (pt->spec == NULL || pt->cfg == NULL) return muster_field_fail(errbuf, "python: bad spec JSON: %s", je.text);
  int rc = check(pt->cfg, &pt->interp, errbuf);
  if (rc != 0) return rc;
  if (g.cache == NULL)
    return muster_field_fail(errbuf, "python: the plugin's cache was not set up (out of memory at load)");
  json_t *cfg = pt->cfg;
  pt->script = get_str(cfg, "script", NULL);
  pt->module = get_str(cfg, "module", NULL);
  pt->code = get_str(cfg, "code", NULL);
  pt->reqs_file = get_str(cfg, "requirements", NULL);
  if (pt->reqs_file == NULL) {
    pt->reqs_file = get_str(cfg, "pyproject", NULL);
    if (pt->reqs_file != NULL) pt->pyproject = true;
  }
  pt->wheelhouse = get_str(cfg, "wheelhouse", NULL);
  pt->index_url = get_str(cfg, "indexUrl", "index_url");
  pt->require_hashes = json_is_true(muster_field_get(cfg, "requireHashes", "require_hashes"));
  snprintf(pt->task_dir, sizeof pt->task_dir, "%s", ctx->task_dir);
  if (pt->script != NULL) snprintf(pt->script_path, sizeof pt->script_path, "%s/%s", ctx->task_dir, pt->script);
  if (pt->wheelhouse != NULL) {
    if (pt->wheelhouse[0] == '/') snprintf(pt->wheelhouse_path, sizeof pt->wheelhouse_path, "%s", pt->wheelhouse);
    else snprintf(pt->wheelhouse_path, sizeof pt->wheelhouse_path, "%s/%s", ctx->task_dir, pt->wheelhouse);
  }
  snprintf(pt->report_path, sizeof pt->report_path, "%s/" PY_REPORT, ctx->task_dir);
  host->log(task, MUSTER_LOG_INFO, "python %s (%s)%s%s", pt->interp->version, pt->interp->path,
            pt->reqs_file ? " with environment from " : "", pt->reqs_file ? pt->reqs_file : "");
  if (queue(pt, PW_PREPARE) != 0) return muster_field_fail(errbuf, "python: cannot queue work");
  return 0;
}

static void py_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  py_task *pt = host->user_data(task);
  if (pt == NULL) return;
  pt->cancelled = true;
  if (pt->proc != NULL) return; /* the agent is stopping it; its exit finishes the task */
  if (pt->waiter != NULL) py_cache_cancel(g.cache, pt->waiter);
  pt->waiter = NULL;
  muster_state st = reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED;
  pt_finish(pt, st, -1, 0, reason == MUSTER_CANCEL_TIMEOUT ? "timed out before python started" : "cancelled");
}

static void py_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  py_task *pt = user_data;
  if (pt == NULL) return;
  pt->ended = true; /* no callback may reach the agent for this task again */
  if (pt->waiter != NULL) py_cache_cancel(g.cache, pt->waiter);
  pt->waiter = NULL;
  if (pt->holds_env) py_cache_unuse(g.cache, pt->env_key);
  pt->holds_env = false;
  pt_unref(pt);
}

/* ---- load and unload ---- */

static uint64_t parse_size(const char *s) {
  if (s == NULL || *s == '\0') return 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || v <= 0) return 0;
  switch (*end) {
    case 'k':
    case 'K': v *= 1024.0; break;
    case 'm':
    case 'M': v *= 1024.0 * 1024; break;
    case 'g':
    case 'G': v *= 1024.0 * 1024 * 1024; break;
    case 't':
    case 'T': v *= 1024.0 * 1024 * 1024 * 1024; break;
    default: break;
  }
  return (uint64_t)v;
}

static char *env_dup(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? strdup(v) : NULL;
}

__attribute__((constructor)) static void py_load(void) {
  py_interp_discover(&g.interps, getenv("MUSTER_PYTHON_INTERPRETERS"));
  const char *dir = getenv("MUSTER_PYTHON_CACHE");
  if (dir == NULL || *dir != '/') dir = PY_DEFAULT_CACHE;
  const char *timeout = getenv("MUSTER_PYTHON_BUILD_TIMEOUT");
  py_cache_config cc = {.dir = dir,
                        .max_bytes = parse_size(getenv("MUSTER_PYTHON_CACHE_MAX")),
                        .build_timeout_ms = timeout ? atoll(timeout) * 1000 : 0,
                        .log_max = (size_t)parse_size(getenv("MUSTER_PYTHON_BUILD_LOG_MAX"))};
  if (py_cache_new(&cc, &g.cache) != 0) g.cache = NULL;
  snprintf(g.lib_dir, sizeof g.lib_dir, "%s/lib", dir);
  g.default_wheelhouse = env_dup("MUSTER_PYTHON_WHEELHOUSE");
  g.default_index_url = env_dup("MUSTER_PYTHON_INDEX_URL");
  json_t *list = json_array();
  for (int i = 0; i < g.interps.n; i++) {
    const py_interp *in = &g.interps.items[i];
    json_t *aliases = json_array();
    for (int a = 0; a < in->n_aliases; a++) json_array_append_new(aliases, json_string(in->aliases[a]));
    json_array_append_new(list,
                          json_pack("{s:s, s:s, s:o}", "version", in->version, "path", in->path, "aliases", aliases));
  }
  g.interp_json = json_dumps(list, JSON_COMPACT);
  json_decref(list);
  char have[800];
  py_interp_list(&g.interps, have, sizeof have);
  snprintf(g.description, sizeof g.description,
           "runs Python scripts, modules or code in cached environments; interpreters: %s", have);
}

__attribute__((destructor)) static void py_unload(void) {
  py_cache_free(g.cache);
  g.cache = NULL;
  free(g.default_wheelhouse);
  free(g.default_index_url);
  free(g.interp_json);
  g.default_wheelhouse = g.default_index_url = g.interp_json = NULL;
}

/* The interpreters found at load, as a JSON array of {"version", "path", "aliases"}; the
 * agent reports them in Hello. The string belongs to the plugin. */
__attribute__((visibility("default"))) const char *muster_python_interpreters(void) {
  return g.interp_json ? g.interp_json : "[]";
}

/* The venv cache's root directory (the agent reports its health to `muster doctor`). */
__attribute__((visibility("default"))) const char *muster_python_cache_dir(void) {
  return g.cache ? py_cache_dir(g.cache) : "";
}

/* Environment cache counters since load, as JSON: builds, hits, joins, failures, evictions. */
__attribute__((visibility("default"))) int muster_python_cache_stats(char *buf, size_t cap) {
  py_cache_stats s = g.cache ? py_cache_get_stats(g.cache) : (py_cache_stats){0};
  return snprintf(buf, cap, "{\"builds\":%llu,\"hits\":%llu,\"joins\":%llu,\"failures\":%llu,\"evictions\":%llu}",
                  (unsigned long long)s.builds, (unsigned long long)s.hits, (unsigned long long)s.joins,
                  (unsigned long long)s.failures, (unsigned long long)s.evictions);
}

/* ---- SDK v2: metrics of the venv cache ---- */

typedef struct py_state {
  const muster_plugin_api *api;
  muster_metric *lookups;       /* venv_cache_lookups_total{result="hit"|"miss"|"join"} */
  muster_metric *build_seconds; /* env_build_seconds{outcome="ok"|"failed"} */
  py_cache_stats seen;          /* the cache's counters as last added to lookups */
} py_state;

static const double build_buckets[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

/* Adds what the cache counted since the last call (hits, builds as misses, joins). */
static void py_metrics_sync(py_state *st) {
  if (st == NULL || g.cache == NULL) return;
  py_cache_stats now = py_cache_get_stats(g.cache);
  const char *hit[] = {"hit"}, *miss[] = {"miss"}, *join[] = {"join"};
  st->api->metric_add(st->lookups, hit, (double)(now.hits - st->seen.hits));
  st->api->metric_add(st->lookups, miss, (double)(now.builds - st->seen.builds));
  st->api->metric_add(st->lookups, join, (double)(now.joins - st->seen.joins));
  st->seen = now;
}

static void py_on_build(void *arg, int ok, double seconds) {
  py_state *st = arg;
  const char *outcome[] = {ok ? "ok" : "failed"};
  st->api->metric_observe(st->build_seconds, outcome, seconds);
  py_metrics_sync(st);
}

/* SDK v2: {"wheelhouse": DIR, "indexUrl": URL}: the defaults of tasks that name neither (the
 * MUSTER_PYTHON_WHEELHOUSE / MUSTER_PYTHON_INDEX_URL environment until configured). The venv
 * cache itself (MUSTER_PYTHON_CACHE*) is set up at load and stays. */
static int py_configure(muster_plugin_env *env, const muster_plugin_api *api, const char *config_json, char *errbuf) {
  json_error_t je;
  json_t *c = json_loads(config_json, 0, &je);
  static const char *const known[] = {"wheelhouse", "indexUrl", "index_url"};
  int rc = json_is_object(c) ? muster_fields_check_known(c, "python config", known, 3, errbuf)
                             : muster_field_fail(errbuf, "python config: not a JSON object");
  json_t *wh = json_object_get(c, "wheelhouse"), *ix = muster_field_get(c, "indexUrl", "index_url");
  if (rc == 0 && wh != NULL && (!json_is_string(wh) || json_string_value(wh)[0] != '/'))
    rc = muster_field_fail(errbuf, "python config.wheelhouse: want an absolute directory path");
  if (rc == 0 && ix != NULL && !json_is_string(ix))
    rc = muster_field_fail(errbuf, "python config.indexUrl: want a URL");
  char *new_wh = rc == 0 && wh != NULL ? strdup(json_string_value(wh)) : NULL;
  char *new_ix = rc == 0 && ix != NULL ? strdup(json_string_value(ix)) : NULL;
  json_decref(c);
  if (rc != 0) return rc;
  if (wh != NULL || ix != NULL || api->state(env) != NULL) { /* a later configure replaces both */
    free(g.default_wheelhouse);
    free(g.default_index_url);
    g.default_wheelhouse = new_wh != NULL ? new_wh : env_dup("MUSTER_PYTHON_WHEELHOUSE");
    g.default_index_url = new_ix != NULL ? new_ix : env_dup("MUSTER_PYTHON_INDEX_URL");
  }
  if (api->state(env) != NULL) return 0;
  py_state *st = calloc(1, sizeof *st);
  if (st == NULL) return muster_field_fail(errbuf, "python: out of memory");
  static const char *const result[] = {"result", NULL}, *const outcome[] = {"outcome", NULL};
  muster_metric_desc lookups = {"venv_cache_lookups_total",
                                "Python environment requests by result (miss: built here).",
                                MUSTER_METRIC_COUNTER,
                                result,
                                NULL,
                                0};
  muster_metric_desc builds = {"env_build_seconds",     "Time to build a Python environment, by outcome.",
                               MUSTER_METRIC_HISTOGRAM, outcome,
                               build_buckets,           sizeof build_buckets / sizeof build_buckets[0]};
  char eb[MUSTER_ERRBUF_SIZE] = "";
  if (api->metric_register(env, &lookups, &st->lookups, eb) != 0 ||
      api->metric_register(env, &builds, &st->build_seconds, eb) != 0)
    api->log(env, MUSTER_LOG_WARN, "metrics not registered: %s", eb);
  st->api = api;
  if (g.cache != NULL) {
    st->seen = py_cache_get_stats(g.cache);
    py_cache_on_build(g.cache, py_on_build, st);
  }
  api->set_state(env, st);
  return 0;
}

/* Also brings the cache counters into the metrics (the agent asks once a second). */
static int py_health(muster_plugin_env *env, const muster_plugin_api *api, char *errbuf) {
  py_metrics_sync(api->state(env));
  if (g.cache == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "the venv cache could not be set up (MUSTER_PYTHON_CACHE)");
    return MUSTER_HEALTH_FAIL;
  }
  if (g.interps.n == 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "no python interpreter found (MUSTER_PYTHON_INTERPRETERS)");
    return MUSTER_HEALTH_FAIL;
  }
  return MUSTER_HEALTH_OK;
}

static void py_shutdown(muster_plugin_env *env, const muster_plugin_api *api) {
  if (g.cache != NULL) py_cache_on_build(g.cache, NULL, NULL);
  free(api->state(env));
  api->set_state(env, NULL);
}

static const char *py_describe(muster_plugin_env *env, const muster_plugin_api *api) {
  (void)env;
  (void)api;
  return "{\"params\":{"
         "\"script\":{\"type\":\"string\",\"help\":\"a .py file in the task dir (or the bundle)\"},"
         "\"module\":{\"type\":\"string\",\"help\":\"run as python -m MODULE\"},"
         "\"code\":{\"type\":\"string\",\"help\":\"run as python -c CODE\"},"
         "\"args\":{\"type\":\"array\",\"help\":\"arguments after the script\"},"
         "\"interpreter\":{\"type\":\"string\",\"help\":\"python3, 3.11, or a discovered path\"},"
         "\"requirements\":{\"type\":\"string\",\"help\":\"requirements.txt for a cached venv\"},"
         "\"pyproject\":{\"type\":\"string\",\"help\":\"pyproject.toml for a cached venv\"},"
         "\"wheelhouse\":{\"type\":\"string\",\"help\":\"a dir of wheels (offline installs)\"},"
         "\"indexUrl\":{\"type\":\"string\",\"help\":\"a package index URL\"},"
         "\"requireHashes\":{\"type\":\"boolean\"}},"
         "\"config\":{"
         "\"wheelhouse\":{\"type\":\"string\",\"help\":\"default wheel dir (MUSTER_PYTHON_WHEELHOUSE)\"},"
         "\"indexUrl\":{\"type\":\"string\",\"help\":\"default package index (MUSTER_PYTHON_INDEX_URL)\"}}}";
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "python",
    .version = "1.0.0",
    .description = g.description,
    .validate = py_validate,
    .start = py_start,
    .cancel = py_cancel,
    .cleanup = py_cleanup,
    .configure = py_configure,
    .health = py_health,
    .describe = py_describe,
    .shutdown = py_shutdown,
};
