/* Task sandboxes: the spec's section, the agent's policy, and muster-exec's options. */
#include "agent/exec/sandbox.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *get(json_t *obj, const char *camel, const char *snake) {
  json_t *v = json_object_get(obj, camel);
  if (v == NULL && snake != NULL) v = json_object_get(obj, snake);
  return (v != NULL && json_is_null(v)) ? NULL : v;
}

/* Absolute, not "/", no ".." component, at most 1024 bytes. */
static const char *path_problem(const char *p) {
  if (p[0] != '/') return "must be an absolute host path";
  if (strcmp(p, "/") == 0) return "is not allowed (name the paths under it)";
  if (strlen(p) > 1024) return "is longer than 1024 bytes";
  for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
    if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0')) return "must not contain '..'";
  return NULL;
}

static int parse_paths(json_t *sb, const char *key, char ***out, size_t *n, mu_err *err) {
  json_t *a = get(sb, key, NULL);
  if (a == NULL) return 0;
  if (!json_is_array(a)) return mu_err_set(err, MU_EINVAL, "sandbox.%s: must be a list of paths", key);
  if (json_array_size(a) > MU_SANDBOX_MAX_PATHS)
    return mu_err_set(err, MU_EINVAL, "sandbox.%s: %zu paths, the limit is %d", key, json_array_size(a),
                      MU_SANDBOX_MAX_PATHS);
  *out = calloc(json_array_size(a) + 1, sizeof **out);
  if (*out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    if (!json_is_string(v)) return mu_err_set(err, MU_EINVAL, "sandbox.%s[%zu]: must be a string", key, i);
    const char *why = path_problem(json_string_value(v));
    if (why != NULL)
      return mu_err_set(err, MU_EINVAL, "sandbox.%s[%zu]: '%.200s' %s", key, i, json_string_value(v), why);
    (*out)[i] = strdup(json_string_value(v));
    if ((*out)[i] == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    *n = i + 1;
  }
  return 0;
}

int mu_sandbox_spec_parse(json_t *root, mu_sandbox_spec *out, mu_err *err) {
  memset(out, 0, sizeof *out);
  json_t *sb = get(root, "sandbox", NULL);
  if (sb == NULL) return 0;
  if (!json_is_object(sb)) return mu_err_set(err, MU_EINVAL, "sandbox: must be an object");
  out->set = true;
  json_t *net = get(sb, "network", NULL);
  if (net != NULL) {
    const char *s = json_is_string(net) ? json_string_value(net) : NULL;
    if (s == NULL || (*s != '\0' && strcmp(s, "none") != 0 && strcmp(s, "host") != 0))
      return mu_err_set(err, MU_EINVAL, "sandbox.network: expected none or host");
    if (*s != '\0') {
      out->network = strdup(s);
      if (out->network == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
  }
  json_t *ro = get(sb, "readOnlyRoot", "read_only_root");
  if (ro != NULL && !json_is_boolean(ro))
    return mu_err_set(err, MU_EINVAL, "sandbox.readOnlyRoot: must be true or false");
  out->read_only_root = ro != NULL && json_is_true(ro);
  json_t *hp = get(sb, "hostPid", "host_pid");
  if (hp != NULL && !json_is_boolean(hp)) return mu_err_set(err, MU_EINVAL, "sandbox.hostPid: must be true or false");
  out->host_pid = hp != NULL && json_is_true(hp);
  json_t *su = get(sb, "seccompUnconfined", "seccomp_unconfined");
  if (su != NULL && !json_is_boolean(su))
    return mu_err_set(err, MU_EINVAL, "sandbox.seccompUnconfined: must be true or false");
  out->seccomp_unconfined = su != NULL && json_is_true(su);
  if (parse_paths(sb, "writable", &out->writable, &out->n_writable, err) != 0) return err->code;
  return parse_paths(sb, "hidden", &out->hidden, &out->n_hidden, err);
}

static void free_strv(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void mu_sandbox_spec_free(mu_sandbox_spec *s) {
  if (s == NULL) return;
  free(s->network);
  free_strv(s->writable, s->n_writable);
  free_strv(s->hidden, s->n_hidden);
  memset(s, 0, sizeof *s);
}

/* p is dir itself or below it. */
static bool under(const char *p, const char *dir) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/' || (n == 1 && dir[0] == '/'));
}

typedef struct argv_buf {
  char **v;
  size_t n, cap;
  bool oom;
} argv_buf;

static void push(argv_buf *b, const char *s) {
  if (b->oom) return;
  if (b->n + 2 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    char **v = realloc(b->v, cap * sizeof *v);
    if (v == NULL) {
      b->oom = true;
      return;
    }
    b->v = v;
    b->cap = cap;
  }
  b->v[b->n] = strdup(s);
  if (b->v[b->n] == NULL) {
    b->oom = true;
    return;
  }
  b->v[++b->n] = NULL;
}

/* flag and each path, for every path of v. */
static void push_each(argv_buf *b, const char *flag, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    push(b, flag);
    push(b, v[i]);
  }
}

int mu_sandbox_args(const mu_sandbox_spec *s, const char *type, const mu_sandbox_policy *pol, const char *spool_dir,
                    const char *task_dir, char ***ret_argv, mu_err *err) {
  *ret_argv = NULL;
  bool forced = false;
  for (size_t i = 0; pol != NULL && i < pol->n_force_types; i++) forced |= strcmp(pol->force_types[i], type) == 0;
  if (!s->set && !forced) return 0;
  if (strcmp(type, "container") == 0) {
    if (s->set) return mu_err_set(err, MU_EINVAL, "sandbox: not for container tasks (use the container fields)");
    return 0; /* a container has its own isolation: the policy does not wrap the helper */
  }
  bool host_default = pol != NULL && pol->network_host;
  const char *net = s->network != NULL ? s->network : host_default ? "host" : "none";
  if (forced && !host_default && strcmp(net, "host") == 0)
    return mu_err_set(err, MU_EPERM,
                      "sandbox.network: host is not allowed for %s tasks on this agent "
                      "(sandbox_types forces a sandbox, sandbox_network: none)",
                      type);
  if (forced && (s->host_pid || s->seccomp_unconfined))
    return mu_err_set(err, MU_EPERM,
                      "sandbox.%s: not allowed for %s tasks on this agent (sandbox_types forces a sandbox "
                      "with a pid namespace and the default seccomp filter)",
                      s->host_pid ? "hostPid" : "seccompUnconfined", type);
  for (size_t i = 0; forced && i < s->n_writable; i++) {
    bool ok = false;
    for (size_t k = 0; k < pol->n_writable && !ok; k++) ok = under(s->writable[i], pol->writable[k]);
    if (!ok)
      return mu_err_set(err, MU_EPERM,
                        "sandbox.writable[%zu]: %s is not under the agent's sandbox_writable "
                        "paths (sandbox_types forces a sandbox for %s tasks)",
                        i, s->writable[i], type);
  }
  if (geteuid() != 0)
    return mu_err_set(err, MU_EPERM,
                      "sandbox: this agent does not run as root and cannot set one up "
                      "(mount and network namespaces)");
  if (task_dir == NULL) return 0;
  char spool_abs[PATH_MAX], task_abs[PATH_MAX]; /* muster-exec starts in the task's cwd */
  if (spool_dir[0] != '/' && realpath(spool_dir, spool_abs) != NULL) spool_dir = spool_abs;
  if (task_dir[0] != '/' && realpath(task_dir, task_abs) != NULL) task_dir = task_abs;
  argv_buf b = {0};
  if (strcmp(net, "none") == 0) {
    push(&b, "--sb-net");
    push(&b, "none");
  }
  if (s->read_only_root || (pol != NULL && pol->read_only_root)) push(&b, "--sb-ro-root");
  if (!s->host_pid) push(&b, "--sb-pid");
  if (!s->seccomp_unconfined) push(&b, "--sb-seccomp");
  push_each(&b, "--sb-hide", &spool_dir, 1);
  if (pol != NULL) push_each(&b, "--sb-hide", pol->hidden, pol->n_hidden);
  push_each(&b, "--sb-hide", (const char *const *)s->hidden, s->n_hidden);
  push_each(&b, "--sb-rw", &task_dir, 1);
  if (pol != NULL) push_each(&b, "--sb-rw", pol->writable, pol->n_writable);
  push_each(&b, "--sb-rw", (const char *const *)s->writable, s->n_writable);
  if (b.oom) {
    free_strv(b.v, b.n);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  *ret_argv = b.v;
  return 0;
}
