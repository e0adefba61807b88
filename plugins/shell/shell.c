/* The shell task type: runs an inline script, a script file from the task dir, or a direct
 * argv `command` as one supervised process, and finishes with its exit status. Before start it
 * checks the interpreter (a known name, or an absolute path on the allow-list) and the command
 * policy (policy.h), then writes one audit line (who, what, where, sha256 of the script). Its
 * configuration comes from the agent's environment, read once when the agent loads the .so. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "muster_plugin.h"
#include "spec_fields.h"
#include "plugins/shell/plain_words.h"
#include "policy.h"

#define SHELL_MAX_ARGS 4096
#define SHELL_MAX_INTERPRETERS 64
#define SHELL_MAX_SCRIPT_FILE (4 << 20)
/* An inline script longer than this goes to its interpreter as a file in the task dir, not
 * as an argument: one exec argument holds at most 128 KiB (MAX_ARG_STRLEN), and all of them
 * with the environment share ARG_MAX. Below it `-c` keeps $0 the task id. */
#define SHELL_MAX_ARGV_SCRIPT (64 << 10)
#define SHELL_SCRIPT_NAME ".muster-script"
#define SHELL_PLAIN_MAX_WORDS 64 /* a longer plain command line runs through sh */
#define SHELL_PLAIN_MAX_BYTES 1024

static const char *const interpreters[] = {"sh", "bash", "zsh", "dash", "ksh"};

/* The plugin's configuration (SDK v2 configure(): "interpreters", "policy"), with defaults from
 * the agent process's environment at load:
 *   MUSTER_SHELL_INTERPRETERS  colon-separated absolute paths allowed as shell.interpreter
 *   MUSTER_SHELL_POLICY        path of a JSON command policy (policy.h)
 * Replaced whole by configure() on the loop thread. A broken environment setting refuses every
 * task with `error` (a broken configure() is refused instead). */
typedef struct shell_config {
  char error[MUSTER_ERRBUF_SIZE];
  char *interps_text; /* the variable's value, for messages */
  char **interps;
  size_t n_interps;
  shell_policy *policy; /* NULL: no policy */
} shell_config;

static shell_config config;

typedef struct shell_task {
  const muster_host_api *host;
  muster_proc *proc;
} shell_task;

/* ---- configuration ---- */

/* Fills c's interpreter list from a colon-separated text; what names the source in messages. */
static void load_interpreters(shell_config *c, const char *text, const char *what) {
  c->interps_text = strdup(text);
  c->interps = calloc(SHELL_MAX_INTERPRETERS, sizeof *c->interps);
  char *copy = strdup(text), *save = NULL;
  if (c->interps_text == NULL || c->interps == NULL || copy == NULL) {
    muster_field_fail(c->error, "shell: out of memory loading %s", what);
    free(copy);
    return;
  }
  for (char *p = strtok_r(copy, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
    if (p[0] != '/') {
      muster_field_fail(c->error, "shell: %s: \"%s\" is not an absolute path", what, p);
      break;
    }
    if (c->n_interps == SHELL_MAX_INTERPRETERS) {
      muster_field_fail(c->error, "shell: %s: more than %d paths", what, SHELL_MAX_INTERPRETERS);
      break;
    }
    c->interps[c->n_interps] = strdup(p);
    if (c->interps[c->n_interps] == NULL) {
      muster_field_fail(c->error, "shell: out of memory loading %s", what);
      break;
    }
    c->n_interps++;
  }
  free(copy);
}

static void load_policy(shell_config *c, const char *path, const char *what) {
  if (c->error[0] != '\0' || path == NULL || *path == '\0') return;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  if (shell_policy_load(path, &c->policy, errbuf) != 0)
    snprintf(c->error, sizeof c->error, "shell: %s: %s", what, errbuf);
}

static void config_free(shell_config *c) {
  for (size_t i = 0; i < c->n_interps; i++) free(c->interps[i]);
  free(c->interps);
  free(c->interps_text);
  shell_policy_free(c->policy);
  memset(c, 0, sizeof *c);
}

/* The environment's settings: the defaults until configure() gives others. */
__attribute__((constructor)) static void shell_load(void) {
  if (sodium_init() < 0) {
    muster_field_fail(config.error, "shell: libsodium failed to initialise");
    return;
  }
  const char *interps = getenv("MUSTER_SHELL_INTERPRETERS");
  if (interps != NULL) load_interpreters(&config, interps, "MUSTER_SHELL_INTERPRETERS");
  load_policy(&config, getenv("MUSTER_SHELL_POLICY"), "MUSTER_SHELL_POLICY");
}

__attribute__((destructor)) static void shell_unload(void) { config_free(&config); }

/* SDK v2: {"interpreters": ["/opt/bin/fish", ...], "policy": "/etc/muster/shell-policy.json"}.
 * A key given replaces the environment's setting; a bad one refuses the whole configuration
 * and the previous one stays. validate() has no plugin env, so the applied configuration is
 * the plugin's one load-wide table (written here on the loop thread only). */
static int shell_configure(muster_plugin_env *env, const muster_plugin_api *api, const char *config_json,
                           char *errbuf) {
  (void)env;
  (void)api;
  json_error_t je;
  json_t *j = json_loads(config_json, 0, &je);
  static const char *const known[] = {"interpreters", "policy"};
  int rc = json_is_object(j) ? muster_fields_check_known(j, "shell config", known, 2, errbuf)
                             : muster_field_fail(errbuf, "shell config: not a JSON object");
  json_t *in = json_object_get(j, "interpreters"), *pol = json_object_get(j, "policy");
  if (rc == 0 && in != NULL && !json_is_array(in))
    rc = muster_field_fail(errbuf, "shell config.interpreters: want a list of absolute paths");
  if (rc == 0 && pol != NULL && !json_is_string(pol))
    rc = muster_field_fail(errbuf, "shell config.policy: want the path of a policy file");
  if (rc != 0) {
    json_decref(j);
    return rc;
  }
  shell_config next = {0};
  if (in != NULL) {
    char text[8192] = "";
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(in) && n < sizeof text; i++) {
      const char *p = json_string_value(json_array_get(in, i));
      if (p == NULL || strchr(p, ':') != NULL) {
        json_decref(j);
        return muster_field_fail(errbuf, "shell config.interpreters[%zu]: want an absolute path", i);
      }
      n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", i ? ":" : "", p);
    }
    load_interpreters(&next, text, "config.interpreters");
  } else if (getenv("MUSTER_SHELL_INTERPRETERS") != NULL) {
    load_interpreters(&next, getenv("MUSTER_SHELL_INTERPRETERS"), "MUSTER_SHELL_INTERPRETERS");
  }
  if (pol != NULL) load_policy(&next, json_string_value(pol), "config.policy");
  else load_policy(&next, getenv("MUSTER_SHELL_POLICY"), "MUSTER_SHELL_POLICY");
  json_decref(j);
  if (next.error[0] != '\0') {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s", next.error);
    config_free(&next);
    return -EINVAL;
  }
  config_free(&config);
  config = next;
  return 0;
}

static const char *shell_describe(muster_plugin_env *env, const muster_plugin_api *api) {
  (void)env;
  (void)api;
  return "{\"params\":{"
         "\"script\":{\"type\":\"string\",\"help\":\"a script run by the interpreter\"},"
         "\"scriptFile\":{\"type\":\"string\",\"help\":\"a script file in the task dir\"},"
         "\"command\":{\"type\":\"array\",\"help\":\"argv, run without a shell\"},"
         "\"interpreter\":{\"type\":\"string\",\"help\":\"sh (default), bash, zsh, dash, ksh, or an allowed path\"},"
         "\"args\":{\"type\":\"array\",\"help\":\"arguments after the script\"}},"
         "\"config\":{"
         "\"interpreters\":{\"type\":\"array\",\"help\":\"absolute paths allowed as shell.interpreter "
         "(default: MUSTER_SHELL_INTERPRETERS)\"},"
         "\"policy\":{\"type\":\"string\",\"help\":\"a JSON command policy file (default: MUSTER_SHELL_POLICY)\"}}}";
}

/* ---- spec checks ---- */

static const char *get_str(json_t *o, const char *camel, const char *snake) {
  json_t *v = muster_field_get(o, camel, snake);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int check_str_list(json_t *v, const char *field, bool nonempty, char *errbuf) {
  if (v == NULL) return nonempty ? muster_field_fail(errbuf, "%s: required", field) : 0;
  if (!json_is_array(v)) return muster_field_fail(errbuf, "%s: must be a list of strings", field);
  if (json_array_size(v) > SHELL_MAX_ARGS)
    return muster_field_fail(errbuf, "%s: more than %d entries", field, SHELL_MAX_ARGS);
  if (nonempty && json_array_size(v) == 0) return muster_field_fail(errbuf, "%s: must not be empty", field);
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    if (!json_is_string(e)) return muster_field_fail(errbuf, "%s[%zu]: must be a string", field, i);
  }
  if (nonempty && json_string_length(json_array_get(v, 0)) == 0)
    return muster_field_fail(errbuf, "%s[0]: empty program name", field);
  return 0;
}

static int check_interpreter(const char *in, char *errbuf) {
  for (size_t i = 0; i < sizeof interpreters / sizeof *interpreters; i++)
    if (strcmp(in, interpreters[i]) == 0) return 0;
  if (in[0] != '/')
    return muster_field_fail(
        errbuf,
        "shell.interpreter: unknown interpreter \"%s\" (want sh, bash, zsh, dash, ksh or an allowed absolute path)",
        in);
  for (size_t i = 0; i < config.n_interps; i++)
    if (strcmp(in, config.interps[i]) == 0) return 0;
  return muster_field_fail(
      errbuf, "shell.interpreter: \"%s\" is not on the interpreter allow-list (MUSTER_SHELL_INTERPRETERS=\"%s\")", in,
      config.interps_text ? config.interps_text : "");
}

/* Joins command + args with spaces: what the policy checks and the audit hashes. Caller frees. */
static char *join_command(json_t *command, json_t *args) {
  size_t len = 1;
  json_t *lists[2] = {command, args};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < json_array_size(lists[l]); i++) len += json_string_length(json_array_get(lists[l], i)) + 1;
  char *s = malloc(len), *p = s;
  if (s == NULL) return NULL;
  for (int l = 0; l < 2; l++) {
    for (size_t i = 0; i < json_array_size(lists[l]); i++) {
      json_t *e = json_array_get(lists[l], i);
      if (p != s) *p++ = ' ';
      memcpy(p, json_string_value(e), json_string_length(e));
      p += json_string_length(e);
    }
  }
  *p = '\0';
  return s;
}

/* Checks the "shell" section: shape, interpreter, and the policy for inline scripts and
 * commands (a script file is checked at start, once it can be read). */
static int check(json_t *sh, char *errbuf) {
  if (config.error[0] != '\0') return muster_field_fail(errbuf, "%s", config.error);
  if (!json_is_object(sh)) return muster_field_fail(errbuf, "shell: must be an object");
  const char *fields[] = {"interpreter", "script", "scriptFile", "script_file", "args", "command"};
  const char *key;
  json_t *val;
  json_object_foreach(sh, key, val) {
    bool known = false;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) known = known || strcmp(key, fields[i]) == 0;
    if (!known) return muster_field_fail(errbuf, "shell.%s: unknown field", key);
  }
  json_t *script = muster_field_get(sh, "script", NULL), *file = muster_field_get(sh, "scriptFile", "script_file");
  json_t *command = muster_field_get(sh, "command", NULL), *interp = muster_field_get(sh, "interpreter", NULL);
  int given = (script != NULL) + (file != NULL) + (command != NULL && json_array_size(command) > 0);
  if (given == 0) return muster_field_fail(errbuf, "shell: give one of script, scriptFile or command");
  if (given > 1) return muster_field_fail(errbuf, "shell: give only one of script, scriptFile or command");
  if (script != NULL) {
    if (!json_is_string(script)) return muster_field_fail(errbuf, "shell.script: must be a string");
    if (json_string_length(script) == 0) return muster_field_fail(errbuf, "shell.script: empty script");
    if (json_string_length(script) > SHELL_MAX_SCRIPT_FILE)
      return muster_field_fail(errbuf, "shell.script: %zu bytes, the limit is %d (4 MiB)", json_string_length(script),
                               SHELL_MAX_SCRIPT_FILE);
  }
  if (file != NULL) {
    if (!json_is_string(file) || json_string_length(file) == 0)
      return muster_field_fail(errbuf, "shell.scriptFile: must be a non-empty string");
    const char *f = json_string_value(file);
    if (f[0] == '/' || strstr(f, "..") != NULL)
      return muster_field_fail(errbuf, "shell.scriptFile: \"%s\" must be a path inside the task dir, without \"..\"",
                               f);
  }
  if (command != NULL && check_str_list(command, "shell.command", true, errbuf) != 0) return -EINVAL;
  json_t *args = muster_field_get(sh, "args", NULL);
  if (check_str_list(args, "shell.args", false, errbuf) != 0) return -EINVAL;
  if (interp != NULL) {
    if (!json_is_string(interp)) return muster_field_fail(errbuf, "shell.interpreter: must be a string");
    const char *in = json_string_value(interp);
    if (in[0] != '\0' && check_interpreter(in, errbuf) != 0) return -EINVAL;
  }
  if (config.policy == NULL) return 0;
  if (script != NULL)
    return shell_policy_check_script(config.policy, json_string_value(script), json_string_length(script), errbuf);
  if (command != NULL) {
    char *line = join_command(command, args);
    if (line == NULL) return muster_field_fail(errbuf, "shell: out of memory");
    int rc = shell_policy_check_command(config.policy, line, errbuf);
    free(line);
    return rc;
  }
  return 0;
}

static int shell_validate(const char *spec_json, const char *config_json, char *errbuf) {
  (void)spec_json;
  json_error_t je;
  json_t *sh = json_loads(config_json, 0, &je);
  if (sh == NULL) return muster_field_fail(errbuf, "shell: bad JSON: %s", je.text);
  int rc = check(sh, errbuf);
  json_decref(sh);
  return rc;
}

/* ---- start ---- */

/* Reads a script file of the task dir (bounded). A small local read on the loop thread: the
 * bundle was just unpacked there, so it is in the page cache. Caller frees *ret. */
static int read_script_file(const char *path, char **ret, size_t *ret_len, char *errbuf) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return muster_field_fail(errbuf, "shell.scriptFile: cannot open %s: %s", path, strerror(errno));
  struct stat sb;
  char *buf = NULL;
  int rc = 0;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    rc = muster_field_fail(errbuf, "shell.scriptFile: %s is not a regular file", path);
    goto done;
  }
  if (sb.st_size > SHELL_MAX_SCRIPT_FILE) {
    rc = muster_field_fail(errbuf, "shell.scriptFile: %s is larger than %d bytes", path, SHELL_MAX_SCRIPT_FILE);
    goto done;
  }
  buf = malloc((size_t)sb.st_size + 1);
  if (buf == NULL) {
    rc = muster_field_fail(errbuf, "shell: out of memory");
    goto done;
  }
  size_t n = 0;
  while (n < (size_t)sb.st_size) {
    ssize_t got = read(fd, buf + n, (size_t)sb.st_size - n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += (size_t)got;
  }
  buf[n] = '\0';
  *ret = buf;
  *ret_len = n;
  buf = NULL;
done:
  free(buf);
  close(fd);
  return rc;
}

/* Writes an inline script too long for argv to path (a new file, readable by the task's
 * run_as user: the task dir is theirs, the file 0444). Like read_script_file, a local write
 * of at most 4 MiB into the page cache, not synced. */
static int write_script_file(const char *path, const char *text, size_t len, char *errbuf) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0)
    return muster_field_fail(errbuf, "shell.script: cannot write %s (%zu bytes, too long for an argument): %s", path,
                             len, strerror(errno));
  size_t n = 0;
  while (n < len) {
    ssize_t put = write(fd, text + n, len - n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) break;
    n += (size_t)put;
  }
  int saved = errno;
  close(fd);
  if (n < len) return muster_field_fail(errbuf, "shell.script: writing %s: %s", path, strerror(saved));
  return 0;
}

/* One INFO line per task through the host log: who, what, where. */
static void audit(muster_task *task, const shell_task *st, json_t *spec, const char *form, const char *interp,
                  const char *program, const char *text, size_t len) {
  const muster_task_context *ctx = st->host->context(task);
  unsigned char digest[crypto_hash_sha256_BYTES];
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  crypto_hash_sha256(digest, (const unsigned char *)text, len);
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  const char *user = get_str(spec, "runAs", "run_as");
  const char *wd = get_str(spec, "workingDir", "working_dir");
  bool sub = wd != NULL && *wd != '\0';
  st->host->log(task, MUSTER_LOG_INFO,
                "audit: user=%s job=%s task=%s attempt=%u agent=%s form=%s interpreter=%s program=%s "
                "sha256=%s bytes=%zu task_dir=%s cwd=%s%s%s policy=%s",
                user && *user ? user : "(agent-default)", ctx->job_id, ctx->task_id, ctx->attempt, ctx->agent_id, form,
                interp, program, hex, len, ctx->task_dir, ctx->task_dir, sub ? "/" : "", sub ? wd : "",
                config.policy ? "on" : "off");
}

static void on_exit_cb(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)proc;
  shell_task *st = user;
  st->proc = NULL;
  muster_result r = {x->suggested_state, x->exit_code, x->signal, x->message};
  st->host->finish(task, &r);
}

/* Vets and audits the task, builds argv (pointers into the JSON documents and locals) and
 * spawns it. */
static int run(muster_task *task, shell_task *st, json_t *spec, json_t *sh, char *errbuf) {
  const muster_task_context *ctx = st->host->context(task);
  json_t *command = muster_field_get(sh, "command", NULL), *args = muster_field_get(sh, "args", NULL);
  size_t n_args = json_array_size(args), n_cmd = json_array_size(command);
  const char *interp = get_str(sh, "interpreter", NULL);
  bool interp_given = interp != NULL && *interp != '\0' && strcmp(interp, "sh") != 0;
  if (interp == NULL || *interp == '\0') interp = "sh";
  const char *script = get_str(sh, "script", NULL), *file = get_str(sh, "scriptFile", "script_file");
  char path[4096], plain[SHELL_PLAIN_MAX_BYTES];
  char *text = NULL;
  size_t text_len = 0;
  int rc = 0;
  const char **argv = calloc(n_args + n_cmd + SHELL_PLAIN_MAX_WORDS + 8, sizeof *argv);
  if (argv == NULL) return muster_field_fail(errbuf, "out of memory");
  size_t n = 0;
  if (n_cmd > 0) {
    text = join_command(command, args);
    if (text == NULL) {
      rc = muster_field_fail(errbuf, "out of memory");
      goto done;
    }
    text_len = strlen(text);
    for (size_t i = 0; i < n_cmd; i++) argv[n++] = json_string_value(json_array_get(command, i));
    audit(task, st, spec, "command", "-", argv[0], text, text_len);
  } else if (script != NULL && strlen(script) > SHELL_MAX_ARGV_SCRIPT) {
    snprintf(path, sizeof path, "%s/%s", ctx->task_dir, SHELL_SCRIPT_NAME);
    rc = write_script_file(path, script, strlen(script), errbuf);
    if (rc != 0) goto done;
    argv[n++] = interp;
    argv[n++] = path; /* $0 in the script */
    audit(task, st, spec, "script", interp, interp, script, strlen(script));
  } else {
    if (script != NULL && n_args == 0 && !interp_given)
      n = mu_shell_plain_words(script, plain, sizeof plain, argv, SHELL_PLAIN_MAX_WORDS);
    if (n > 0) {
      /* No shell syntax: the words are the argv, as sh would have split them (plain_words.h). */
      audit(task, st, spec, "script", interp, argv[0], script, strlen(script));
    } else if (script != NULL) {
      argv[n++] = interp;
      argv[n++] = "-c";
      argv[n++] = script;
      argv[n++] = ctx->task_id; /* $0 in the script */
      audit(task, st, spec, "script", interp, interp, script, strlen(script));
    } else {
      snprintf(path, sizeof path, "%s/%s", ctx->task_dir, file);
      rc = read_script_file(path, &text, &text_len, errbuf);
      if (rc != 0) goto done;
      rc = shell_policy_check_script(config.policy, text, text_len, errbuf);
      if (rc != 0) goto done;
      argv[n++] = interp;
      argv[n++] = path;
      audit(task, st, spec, "scriptFile", interp, interp, text, text_len);
    }
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
  rc = st->host->spawn(task, &o, &st->proc, errbuf);
done:
  free(text);
  free(argv);
  return rc;
}

static int shell_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  shell_task *st = calloc(1, sizeof *st);
  if (st == NULL) return muster_field_fail(errbuf, "out of memory");
  st->host = host;
  host->set_user_data(task, st);
  const muster_task_context *ctx = host->context(task);
  json_error_t je;
  json_t *spec = json_loads(ctx->spec_json, 0, &je);
  json_t *sh = spec != NULL ? json_loads(ctx->config_json, 0, &je) : NULL;
  int rc;
  if (spec == NULL || sh == NULL) {
    rc = muster_field_fail(errbuf, "bad spec JSON: %s", je.text);
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
    .version = "1.1.0",
    .description = "runs a shell script, a script file or a command",
    .validate = shell_validate,
    .start = shell_start,
    .cancel = shell_cancel,
    .cleanup = shell_cleanup,
    .configure = shell_configure,
    .describe = shell_describe,
};
