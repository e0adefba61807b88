/* The secret store (secrets.h): the sealed records this member holds, its keyring, the checks
 * a job that references secrets passes at submit, and the one place values are decrypted: at
 * dispatch, for the agent that runs the task. The Secrets service is in secrets_admin.c. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/daemon.h"
#include "controlplane/secrets_int.h"
#include "lib/base/log.h"
#include "lib/selector/selector.h"

const char mu_secrets_disabled_msg[] =
    "secrets are disabled on this control plane: start musterd with --secret-key FILE (config "
    "secret_key; make the key with `muster secret keygen --out FILE`), see docs/security.md";

int mu_secrets_init(mu_daemon *d, mu_err *err) {
  mu_secrets *s = calloc(1, sizeof *s);
  int ok = s != NULL && sodium_init() >= 0;
  if (ok) s->keys = sodium_allocarray(MU_SECRETS_MAX_KEYS, sizeof *s->keys);
  if (!ok || s->keys == NULL) {
    free(s);
    return mu_err_set(err, MU_ENOMEM, "secrets: cannot allocate locked memory for the keys");
  }
  d->secrets = s;
  if (d->cfg.secret_key[0] == '\0') {
    mu_info("secrets", "no --secret-key: secret calls and jobs that use secrets are refused");
    return 0;
  }
  snprintf(s->key_path, sizeof s->key_path, "%s", d->cfg.secret_key);
  if (mu_secret_key_load(s->key_path, &s->keys[0], err) != 0) return err->code;
  s->n_keys = 1;
  s->enabled = 1;
  mu_info("secrets", "secret key %s loaded (key id %s)", s->key_path, s->keys[0].id);
  return 0;
}

void mu_secrets_reset(mu_daemon *d) {
  mu_secrets *s = d->secrets;
  if (s == NULL) return;
  for (size_t i = 0; i < s->n; i++) mu_secret_record_free(s->recs[i]);
  s->n = 0;
}

void mu_secrets_close(mu_daemon *d) {
  mu_secrets *s = d->secrets;
  if (s == NULL) return;
  mu_secrets_fail_queued(d); /* a write in flight answers from its etcd callback */
  mu_secrets_reset(d);
  free(s->recs);
  if (s->keys != NULL) sodium_free(s->keys); /* zeroes the pages */
  free(s);
  d->secrets = NULL;
}

/* --- records and keys --- */

static size_t find_index(const mu_secrets *s, const char *name, int *ret_found) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(s->recs[mid]->name, name);
    if (c == 0) {
      *ret_found = 1;
      return mid;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  *ret_found = 0;
  return lo;
}

mu_secret_record *mu_secrets_find(const mu_secrets *s, const char *name) {
  int found;
  size_t i = find_index(s, name, &found);
  return found ? s->recs[i] : NULL;
}

int mu_secrets_put(mu_secrets *s, mu_secret_record *rec, mu_err *err) {
  int found;
  size_t i = find_index(s, rec->name, &found);
  if (found) {
    mu_secret_record_free(s->recs[i]);
    s->recs[i] = rec;
    return 0;
  }
  if (s->n >= MU_SECRETS_MAX) {
    mu_secret_record_free(rec);
    return mu_err_set(err, MU_ENOSPC,
                      "there are %d secrets already, the most one control "
                      "plane keeps",
                      MU_SECRETS_MAX);
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    mu_secret_record **grown = realloc(s->recs, cap * sizeof *grown);
    if (grown == NULL) {
      mu_secret_record_free(rec);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    s->recs = grown;
    s->cap = cap;
  }
  memmove(&s->recs[i + 1], &s->recs[i], (s->n - i) * sizeof *s->recs);
  s->recs[i] = rec;
  s->n++;
  return 0;
}

void mu_secrets_remove(mu_secrets *s, const char *name) {
  int found;
  size_t i = find_index(s, name, &found);
  if (!found) return;
  mu_secret_record_free(s->recs[i]);
  memmove(&s->recs[i], &s->recs[i + 1], (s->n - i - 1) * sizeof *s->recs);
  s->n--;
}

void mu_secrets_add_key(mu_secrets *s, const mu_secret_key *key, int current) {
  for (size_t i = 0; i < s->n_keys; i++)
    if (strcmp(s->keys[i].id, key->id) == 0) { /* known: maybe promote it */
      if (!current || i == 0) return;
      mu_secret_key k = s->keys[i];
      memmove(&s->keys[1], &s->keys[0], i * sizeof *s->keys);
      s->keys[0] = k;
      mu_secret_key_wipe(&k);
      return;
    }
  size_t at = current || s->n_keys == 0 ? 0 : 1;
  if (s->n_keys == MU_SECRETS_MAX_KEYS) s->n_keys--; /* the oldest goes */
  memmove(&s->keys[at + 1], &s->keys[at], (s->n_keys - at) * sizeof *s->keys);
  s->keys[at] = *key;
  s->n_keys++;
}

const mu_secret_key *mu_secrets_key(mu_secrets *s, const char *id) {
  for (size_t i = 0; i < s->n_keys; i++)
    if (strcmp(s->keys[i].id, id) == 0) return &s->keys[i];
  /* A small synchronous read, only on a mismatch (after a rotation led by another member):
   * the operator installs the new key in the same file on every member. */
  mu_secret_key k;
  mu_err err = {0};
  if (!s->enabled || mu_secret_key_load(s->key_path, &k, &err) != 0) return NULL;
  const mu_secret_key *found = NULL;
  if (strcmp(k.id, id) == 0) {
    mu_info("secrets", "%s now holds key id %s; using it as the current key", s->key_path, k.id);
    mu_secrets_add_key(s, &k, 1);
    found = &s->keys[0];
  }
  mu_secret_key_wipe(&k);
  return found;
}

/* "key id A (--secret-key F)" or "key ids A, B (...)": what this member holds, for messages. */
static void held_keys(const mu_secrets *s, char *buf, size_t size) {
  size_t off = (size_t)snprintf(buf, size, "key id%s ", s->n_keys > 1 ? "s" : "");
  for (size_t i = 0; i < s->n_keys && off < size; i++)
    off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", s->keys[i].id);
  if (off < size) snprintf(buf + off, size - off, " (--secret-key %s)", s->key_path);
}

void mu_secrets_apply(mu_daemon *d, const char *name, const char *value, size_t len) {
  mu_secrets *s = d->secrets;
  if (s == NULL) return;
  if (value == NULL) {
    mu_secrets_remove(s, name);
    return;
  }
  mu_secret_record *rec = NULL;
  mu_err err = {0};
  if (mu_secret_record_decode(name, value, len, &rec, &err) != 0 || mu_secrets_put(s, rec, &err) != 0) {
    mu_warn("secrets", "%s%s: %s; skipped", d->cfg.etcd_prefix, name, err.msg);
    return;
  }
  /* A record under a key this member lacks (a rotation led elsewhere): the operator has put
   * the new key in the key file; load it now (reading a key decrypts nothing) or say so. */
  if (s->enabled && strcmp(s->warned_key_id, rec->key_id) != 0 && mu_secrets_key(s, rec->key_id) == NULL) {
    char have[200];
    held_keys(s, have, sizeof have);
    mu_warn("secrets",
            "secret '%s' is encrypted with key id %s; this member has %s: it cannot "
            "hand the secret out while it leads until it gets that key",
            name, rec->key_id, have);
    snprintf(s->warned_key_id, sizeof s->warned_key_id, "%s", rec->key_id);
  }
}

/* --- submit --- */

/* Appends text to the problem list in buf (MU_ERR_MSG_MAX), "; "-separated. */
static void add_problem(char *buf, size_t size, int *n, const char *text) {
  size_t len = strlen(buf);
  if (len + 8 >= size) return;
  snprintf(buf + len, size - len, "%s%s", *n ? "; " : "", text);
  (*n)++;
}

/* The hosts among ids outside rec's scope, as "a, b (and N more)"; "" when none. */
static void hosts_outside(mu_daemon *d, const mu_selector *sel, char *const *ids, size_t n, char *buf, size_t size) {
  size_t off = 0, outside = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const mu_agent *a = ids[i] ? mu_registry_find(&d->registry, ids[i]) : NULL;
    if (ids[i] == NULL || (a != NULL && mu_selector_matches(sel, mu_agent_label, a))) continue;
    if (outside++ < 5 && off < size)
      off += (size_t)snprintf(buf + off, size - off, "%s%s", outside > 1 ? ", " : "", ids[i]);
  }
  if (outside > 5 && off < size) snprintf(buf + off, size - off, " (and %zu more)", outside - 5);
}

/* "any" targets are placed at dispatch: keep them inside the secret's scope. */
static int narrow_any(Muster__V1__Target *t, const char *scope, mu_err *err) {
  if (t == NULL || t->any[0] == '\0' || scope[0] == '\0' || strstr(t->any, scope) != NULL) return 0;
  size_t n = strlen(t->any) + strlen(scope) + 2;
  char *narrowed = malloc(n);
  if (narrowed == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(narrowed, n, "%s,%s", t->any, scope);
  if (t->any != protobuf_c_empty_string) free(t->any);
  t->any = narrowed;
  return 0;
}

int mu_secrets_check_job(mu_daemon *d, Muster__V1__JobSpec *spec, char *const *ids, size_t n_ids, mu_err *err) {
  mu_secrets *s = d->secrets;
  char problems[MU_ERR_MSG_MAX] = "";
  int n = 0;
  for (size_t t = 0; t < spec->n_tasks; t++) {
    const Muster__V1__TaskSpec *task = spec->tasks[t];
    for (size_t i = 0; i < task->n_secrets; i++) {
      const char *from = task->secrets[i]->from;
      char text[400], hosts[200];
      if (s == NULL || !s->enabled)
        return mu_err_set(err, MU_EINVAL, "tasks[%zu] '%s' uses secrets, but %s", t, task->name,
                          mu_secrets_disabled_msg);
      const mu_secret_record *rec = mu_secrets_find(s, from);
      if (rec == NULL) {
        snprintf(text, sizeof text,
                 "tasks[%zu].secrets[%zu]: no secret named '%s' (muster "
                 "secret ls lists them)",
                 t, i, from);
        add_problem(problems, sizeof problems, &n, text);
        continue;
      }
      if (rec->scope[0] == '\0') continue;
      mu_selector *sel = NULL;
      if (mu_selector_parse(rec->scope, &sel, NULL) != 0) {
        snprintf(text, sizeof text, "secret '%s': stored scope '%s' does not parse", from, rec->scope);
        add_problem(problems, sizeof problems, &n, text);
        continue;
      }
      hosts_outside(d, sel, ids, n_ids, hosts, sizeof hosts);
      mu_selector_free(sel);
      if (hosts[0] != '\0') {
        snprintf(text, sizeof text,
                 "tasks[%zu].secrets[%zu]: secret '%s' is scoped to '%s'; "
                 "target hosts outside it: %s",
                 t, i, from, rec->scope, hosts);
        add_problem(problems, sizeof problems, &n, text);
      } else if (narrow_any(spec->target, rec->scope, err) != 0) {
        return err->code;
      }
    }
  }
  return n > 0 ? mu_err_set(err, MU_EINVAL, "%s", problems) : 0;
}

/* --- dispatch --- */

void mu_secrets_resolved_free(Muster__V1__ResolvedSecret **r, size_t n) {
  if (r == NULL) return;
  for (size_t i = 0; i < n; i++) {
    if (r[i] == NULL) continue;
    mu_secret_value_free((char *)r[i]->value.data, r[i]->value.len);
    free(r[i]);
  }
  free(r);
}

/* Decrypts one reference for agent into *ret. */
static int resolve_one(mu_daemon *d, const Muster__V1__SecretRef *ref, const mu_agent *agent,
                       Muster__V1__ResolvedSecret *ret, mu_err *err) {
  mu_secrets *s = d->secrets;
  const mu_secret_record *rec = mu_secrets_find(s, ref->from);
  if (rec == NULL)
    return mu_err_set(err, MU_ENOENT,
                      "secret '%s' no longer exists (deleted after the job was "
                      "submitted)",
                      ref->from);
  if (rec->scope[0] != '\0') {
    mu_selector *sel = NULL;
    int in = mu_selector_parse(rec->scope, &sel, NULL) == 0 && mu_selector_matches(sel, mu_agent_label, agent);
    mu_selector_free(sel);
    if (!in)
      return mu_err_set(err, MU_EPERM,
                        "secret '%s' is scoped to '%s'; agent %s is outside it, "
                        "so it is not sent there",
                        ref->from, rec->scope, agent->id);
  }
  const mu_secret_key *key = mu_secrets_key(s, rec->key_id);
  if (key == NULL) {
    char have[200];
    held_keys(s, have, sizeof have);
    return mu_err_set(err, MU_EPERM,
                      "secret '%s' is encrypted with key id %s, but this control "
                      "plane has %s; give it that key (docs/security.md#secrets)",
                      ref->from, rec->key_id, have);
  }
  char *value = NULL;
  size_t len = 0;
  if (mu_secret_record_open(rec, key, &value, &len, err) != 0) return err->code;
  muster__v1__resolved_secret__init(ret);
  ret->name = ref->name;
  ret->value.data = (uint8_t *)value;
  ret->value.len = len;
  ret->as = (char *)(strcmp(ref->as, "file") == 0 || ref->as_file ? "file" : "env");
  return 0;
}

int mu_secrets_resolve(mu_daemon *d, const Muster__V1__TaskSpec *task, const mu_agent *agent,
                       Muster__V1__ResolvedSecret ***ret, size_t *ret_n, mu_err *err) {
  *ret = NULL;
  *ret_n = 0;
  if (task->n_secrets == 0) return 0;
  if (d->secrets == NULL || !d->secrets->enabled)
    return mu_err_set(err, MU_EINVAL, "task uses secrets, but %s", mu_secrets_disabled_msg);
  Muster__V1__ResolvedSecret **out = calloc(task->n_secrets, sizeof *out);
  if (out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; i < task->n_secrets; i++) {
    int rc = (out[i] = malloc(sizeof *out[i])) == NULL ? mu_err_set(err, MU_ENOMEM, "out of memory")
                                                       : resolve_one(d, task->secrets[i], agent, out[i], err);
    if (rc != 0) {
      free(out[i]);
      out[i] = NULL;
      mu_secrets_resolved_free(out, i);
      return rc;
    }
  }
  *ret = out;
  *ret_n = task->n_secrets;
  return 0;
}
