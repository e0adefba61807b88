/* The shell task type: runs an inline script, a script file from the task dir, or a direct
 * argv `command` as one supervised process, and finishes with its exit status. Built as a
 * plugin .so against plugins/sdk/muster_plugin.h alone (plus jansson for the spec). The agent
 * applies the spec's timeout, env, limits and run-as user to the process. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"

#define SHELL_MAX_ARGS 4096

static const char *const interpreters[] = {"sh", "bash", "zsh", "dash", "ksh"};

typedef struct shell_task {
  const muster_host_api *host;
  muster_proc *proc;
} shell_task;

static int fail(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *errbuf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, MUSTER_ERRBUF_SIZE, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static json_t *get(json_t *o, const char *camel, const char *snake) {
  json_t *v = json_object_get(o, camel);
  if (v == NULL && snake != NULL) v = json_object_get(o, snake);
  return json_is_null(v) ? NULL : v;
}

static const char *get_str(json_t *o, const char *camel, const char *snake) {
  json_t *v = get(o, camel, snake);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int check_str_list(json_t *v, const char *field, bool nonempty, char *errbuf) {
  if (v == NULL) return nonempty ? fail(errbuf, "%s: required", field) : 0;
  if (!json_is_array(v)) return fail(errbuf, "%s: must be a list of strings", field);
  if (json_array_size(v) > SHELL_MAX_ARGS) return fail(errbuf, "%s: more than %d entries", field, SHELL_MAX_ARGS);
  if (nonempty && json_array_size(v) == 0) return fail(errbuf, "%s: must not be empty", field);
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    if (!json_is_string(e)) return fail(errbuf, "%s[%zu]: must be a string", field, i);
  }
  if (nonempty && json_string_length(json_array_get(v, 0)) == 0) return fail(errbuf, "%s[0]: empty program name", field);
  return 0;
}

/* Checks the "shell" section. */
static int check(json_t *sh, char *errbuf) {
  if (!json_is_object(sh)) return fail(errbuf, "shell: must be an object");
  const char *fields[] = {"interpreter", "script", "scriptFile", "script_file", "args", "command"};
  const char *key;
  json_t *val;
  json_object_foreach(sh, key, val) {
    bool known = false;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) known = known || strcmp(key, fields[i]) == 0;
    if (!known) return fail(errbuf, "shell.%s: unknown field", key);
  }
  json_t *script = get(sh, "script", NULL), *file = get(sh, "scriptFile", "script_file");
  json_t *command = get(sh, "command", NULL), *interp = get(sh, "interpreter", NULL);
  int given = (script != NULL) + (file != NULL) + (command != NULL && json_array_size(command) > 0);
  if (given == 0) return fail(errbuf, "shell: give one of script, scriptFile or command");
  if (given > 1) return fail(errbuf, "shell: give only one of script, scriptFile or command");
  if (script != NULL) {
    if (!json_is_string(script)) return fail(errbuf, "shell.script: must be a string");
    if (json_string_length(script) == 0) return fail(errbuf, "shell.script: empty script");
  }
  if (file != NULL) {
    if (!json_is_string(file) || json_string_length(file) == 0) return fail(errbuf, "shell.scriptFile: must be a non-empty string");
    const char *f = json_string_value(file);
    if (f[0] == '/' || strstr(f, "..") != NULL)
      return fail(errbuf, "shell.scriptFile: \"%s\" must be a path inside the task dir, without \"..\"", f);
  }
  if (command != NULL && check_str_list(command, "shell.command", true, errbuf) != 0) return -EINVAL;
  if (check_str_list(get(sh, "args", NULL), "shell.args", false, errbuf) != 0) return -EINVAL;
  if (interp != NULL) {
    if (!json_is_string(interp)) return fail(errbuf, "shell.interpreter: must be a string");
    const char *in = json_string_value(interp);
    bool ok = in[0] == '\0' || in[0] == '/';
    for (size_t i = 0; i < sizeof interpreters / sizeof *interpreters; i++) ok = ok || strcmp(in, interpreters[i]) == 0;
    if (!ok)
      return fail(errbuf, "shell.interpreter: unknown interpreter \"%s\" (want sh, bash, zsh, dash, ksh or an absolute path)", in);
  }
  return 0;
}

static int shell_validate(const char *spec_json, const char *config_json, char *errbuf) {
  (void)spec_json;
  json_error_t je;
  json_t *sh = json_loads(config_json, 0, &je);
  if (sh == NULL) return fail(errbuf, "shell: bad JSON: %s", je.text);
  int rc = check(sh, errbuf);
  json_decref(sh);
  return rc;
}

static void on_exit_cb(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)proc;
  shell_task *st = user;
  st->proc = NULL;
  muster_result r = {x->suggested_state, x->exit_code, x->signal, x->message};
  st->host->finish(task, &r);
}

/* Builds argv (pointers into the JSON documents and buf) and spawns it. */
static int run(muster_task *task, shell_task *st, json_t *spec, json_t *sh, char *errbuf) {
  const muster_task_context *ctx = st->host->context(task);
  json_t *command = get(sh, "command", NULL), *args = get(sh, "args", NULL);
  size_t n_args = json_array_size(args), n_cmd = json_array_size(command);
  const char **argv = calloc(n_args + n_cmd + 8, sizeof *argv);
  if (argv == NULL) return fail(errbuf, "out of memory");
  char path[4096];
  size_t n = 0;
  const char *interp = get_str(sh, "interpreter", NULL);
  if (interp == NULL || *interp == '\0') interp = "sh";
  const char *script = get_str(sh, "script", NULL), *file = get_str(sh, "scriptFile", "script_file");
  if (n_cmd > 0) {
    for (size_t i = 0; i < n_cmd; i++) argv[n++] = json_string_value(json_array_get(command, i));
  } else if (script != NULL) {
    argv[n++] = interp;
    argv[n++] = "-c";
    argv[n++] = script;
    argv[n++] = ctx->task_id; /* $0 in the script */
  } else {
    snprintf(path, sizeof path, "%s/%s", ctx->task_dir, file);
    argv[n++] = interp;
    argv[n++] = path;
  }
  for (size_t i = 0; i < n_args; i++) argv[n++] = json_string_value(json_array_get(args, i));
  argv[n] = NULL;
  const char *in = get_str(spec, "stdin", NULL);
  muster_spawn_opts o = {
      .size = sizeof o,
      .argv = argv,
      .stdin_data = in,
      .stdin_len = in ? strlen(in) : 0,
      .on_exit = on_exit_cb,
      .user = st,
  };
  int rc = st->host->spawn(task, &o, &st->proc, errbuf);
  free(argv);
  return rc;
}

static int shell_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  shell_task *st = calloc(1, sizeof *st);
  if (st == NULL) return fail(errbuf, "out of memory");
  st->host = host;
  host->set_user_data(task, st);
  const muster_task_context *ctx = host->context(task);
  json_error_t je;
  json_t *spec = json_loads(ctx->spec_json, 0, &je);
  json_t *sh = json_loads(ctx->config_json, 0, &je);
  int rc;
  if (spec == NULL || sh == NULL) {
    rc = fail(errbuf, "bad spec JSON: %s", je.text);
  } else {
    rc = check(sh, errbuf);
    if (rc == 0) rc = run(task, st, spec, sh, errbuf);
  }
  json_decref(spec);
  json_decref(sh);
  return rc;
}

/* The agent has already signalled the process group; its exit finishes the task. */
static void shell_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  (void)task;
  (void)host;
  (void)reason;
}

static void shell_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  free(user_data);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "shell",
    .version = "1.0.0",
    .description = "runs a shell script, a script file or a command",
    .validate = shell_validate,
    .start = shell_start,
    .cancel = shell_cancel,
    .cleanup = shell_cleanup,
};
