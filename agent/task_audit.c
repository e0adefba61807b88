/* The start facts of task attempts for the audit trail (task_audit.h): what is hashed for
 * each kind of task, and the small table of attempts assigned and not started yet. */
#include "agent/task_audit.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/base/err.h"
#include "lib/base/log.h"

struct mu_task_audits {
  mu_task_audit *items;
  size_t n, cap, max;
  int warned;
};

static const char *get_str(const json_t *o, const char *camel, const char *snake) {
  const char *s = json_string_value(json_object_get(o, camel));
  if (s == NULL && snake != NULL) s = json_string_value(json_object_get(o, snake));
  return s ? s : "";
}

/* Keys whose values are dropped before a spec section is hashed. */
static int secret_key(const char *k) {
  static const char *const words[] = {"password",   "passwd", "secret", "token",   "auth",
                                      "credential", "cookie", "apikey", "api_key", "private"};
  char low[64];
  size_t n = strlen(k);
  if (n >= sizeof low) n = sizeof low - 1;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)k[i]);
  low[n] = '\0';
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strstr(low, words[i]) != NULL) return 1;
  return 0;
}

static void strip_secrets(json_t *v, int depth) {
  if (depth > 32) return;
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++) strip_secrets(json_array_get(v, i), depth + 1);
    return;
  }
  if (!json_is_object(v)) return;
  const char *k;
  json_t *x;
  void *tmp;
  json_object_foreach_safe(v, tmp, k, x) {
    if (secret_key(k)) json_object_del(v, k);
    else strip_secrets(x, depth + 1);
  }
}

static void digest_text(const char *text, size_t len, mu_task_audit *ret, const char *of) {
  mu_bundle_digest((const uint8_t *)text, len, ret->digest);
  snprintf(ret->digest_of, sizeof ret->digest_of, "%s", of);
}

static const char *item(const json_t *list, size_t i) {
  const char *s = json_string_value(json_array_get(list, i));
  return s ? s : "";
}

/* command + args joined by single spaces, as the shell plugin hashes a command. */
static char *join_argv(const json_t *command, const json_t *args) {
  size_t len = 1;
  const json_t *lists[2] = {command, args};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < json_array_size(lists[l]); i++) len += strlen(item(lists[l], i)) + 1;
  char *s = malloc(len), *p = s;
  if (s == NULL) return NULL;
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < json_array_size(lists[l]); i++) {
      const char *e = item(lists[l], i);
      if (p != s) *p++ = ' ';
      memcpy(p, e, strlen(e));
      p += strlen(e);
    }
  *p = '\0';
  return s;
}

static const char *const kinds[] = {"shell", "http", "python", "spark", "flink", "container", "plugin"};

void mu_task_audit_describe(const json_t *spec, const char *bundle_digest, mu_task_audit *ret) {
  const char *kind = NULL;
  const json_t *section = NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && section == NULL; i++) {
    section = json_object_get(spec, kinds[i]);
    if (section != NULL) kind = kinds[i];
  }
  const char *type = get_str(spec, "type", NULL);
  snprintf(ret->type, sizeof ret->type, "%s", type[0] ? type : kind ? kind : "shell");
  snprintf(ret->bundle, sizeof ret->bundle, "%s", bundle_digest ? bundle_digest : "");
  const char *user = get_str(spec, "runAs", "run_as");
  if (user[0] != '\0') {
    snprintf(ret->run_as, sizeof ret->run_as, "%s", user);
  } else {
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) == 0 && found != NULL)
      snprintf(ret->run_as, sizeof ret->run_as, "%s", found->pw_name);
    else snprintf(ret->run_as, sizeof ret->run_as, "uid %u", (unsigned)geteuid());
  }
  const json_t *command = json_object_get(section, "command");
  const char *script = get_str(section, "script", NULL);
  const char *code = get_str(section, "code", NULL);
  if (kind != NULL && strcmp(kind, "shell") == 0 && json_array_size(command) > 0) {
    char *text = join_argv(command, json_object_get(section, "args"));
    if (text != NULL) {
      digest_text(text, strlen(text), ret, "command");
      free(text);
      return;
    }
  } else if (kind != NULL && strcmp(kind, "shell") == 0 && script[0] != '\0') {
    digest_text(script, strlen(script), ret, "script");
    return;
  } else if (kind != NULL && strcmp(kind, "python") == 0 && code[0] != '\0') {
    digest_text(code, strlen(code), ret, "script");
    return;
  }
  /* anything else: the section (or the spec without env, secrets and stdin) */
  json_t *copy = json_deep_copy(section ? section : spec);
  if (copy != NULL && section == NULL) {
    json_object_del(copy, "env");
    json_object_del(copy, "secrets");
    json_object_del(copy, "stdin");
  }
  strip_secrets(copy, 0);
  char *text = copy ? json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(copy);
  if (text != NULL) {
    digest_text(text, strlen(text), ret, "spec");
    free(text);
  } else {
    ret->digest[0] = '\0';
    snprintf(ret->digest_of, sizeof ret->digest_of, "none");
  }
}

mu_task_audits *mu_task_audits_new(size_t max) {
  mu_task_audits *ta = calloc(1, sizeof *ta);
  if (ta != NULL) ta->max = max;
  return ta;
}

void mu_task_audits_free(mu_task_audits *ta) {
  if (ta == NULL) return;
  free(ta->items);
  free(ta);
}

static mu_task_audit *find(mu_task_audits *ta, const char *task_id, uint32_t attempt) {
  for (size_t i = 0; ta != NULL && i < ta->n; i++)
    if (ta->items[i].attempt == attempt && strcmp(ta->items[i].task_id, task_id) == 0) return &ta->items[i];
  return NULL;
}

void mu_task_audits_add(mu_task_audits *ta, const char *task_id, uint32_t attempt, const json_t *spec,
                        const char *bundle_digest) {
  if (ta == NULL || strlen(task_id) >= sizeof ta->items[0].task_id) return;
  mu_task_audit *t = find(ta, task_id, attempt);
  if (t == NULL && ta->n == ta->max) {
    if (!ta->warned++) mu_warn("tasks", "%zu task starts wait to be audited already; %s is not", ta->max, task_id);
    return;
  }
  if (t == NULL && ta->n == ta->cap) {
    size_t cap = ta->cap ? ta->cap * 2 : 16;
    mu_task_audit *grown = realloc(ta->items, cap * sizeof *grown);
    if (grown == NULL) return;
    ta->items = grown;
    ta->cap = cap;
  }
  if (t == NULL) t = &ta->items[ta->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->task_id, sizeof t->task_id, "%s", task_id);
  t->attempt = attempt;
  mu_task_audit_describe(spec, bundle_digest, t);
}

int mu_task_audits_take(mu_task_audits *ta, const char *task_id, uint32_t attempt, mu_task_audit *ret) {
  mu_task_audit *t = find(ta, task_id, attempt);
  if (t == NULL) return MU_ENOENT;
  *ret = *t;
  *t = ta->items[--ta->n];
  return 0;
}

int mu_task_audits_start(mu_task_audits *ta, const char *job_id, const char *task_id, uint32_t attempt,
                         mu_task_audit *store, Muster__V1__TaskStartAudit *ret) {
  if (mu_task_audits_take(ta, task_id, attempt, store) != 0) return MU_ENOENT;
  muster__v1__task_start_audit__init(ret);
  ret->run_as = store->run_as;
  ret->type = store->type;
  ret->command_digest = store->digest;
  ret->digest_of = store->digest_of;
  ret->bundle_digest = store->bundle;
  mu_info("tasks", "audit: task.start job=%s task=%s attempt=%u user=%s type=%s command=%s of=%s%s%s", job_id, task_id,
          attempt, store->run_as, store->type, store->digest, store->digest_of, store->bundle[0] ? " bundle=" : "",
          store->bundle);
  return 0;
}

void mu_task_audits_drop(mu_task_audits *ta, const char *task_id, uint32_t attempt) {
  mu_task_audit *t = find(ta, task_id, attempt);
  if (t != NULL) *t = ta->items[--ta->n];
}
