/* Declared params, dispatch values and ${param.KEY} replacement (see params.h). The job spec
 * is walked through its protobuf-c descriptor like jobspec_refs.c does, so a string field a
 * task type gains later is replaced without a change here. */
#include "controlplane/templates/params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_OPEN "${param."
#define REF_OPEN_LEN 8
#define PATH_MAX_LEN 256
#define DEPTH_MAX 16

static int name_char(int c) { return isalnum(c) || c == '_' || c == '-'; }

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MU_TEMPLATE_PARAM_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!name_char((unsigned char)s[i])) return 0;
  return 1;
}

int mu_template_params_check(const mu_template_param *decls, size_t n, mu_err *err) {
  if (n > MU_TEMPLATE_PARAMS_MAX)
    return mu_err_set(err, MU_EINVAL, "params: %zu declared, at most %d", n, MU_TEMPLATE_PARAMS_MAX);
  for (size_t i = 0; i < n; i++) {
    const char *name = decls[i].name ? decls[i].name : "";
    if (!name_ok(name))
      return mu_err_set(err, MU_EINVAL, "params[%zu] '%.80s': a name is 1-%d letters, digits, '_' or '-'", i, name,
                        MU_TEMPLATE_PARAM_NAME_MAX);
    if (decls[i].required && decls[i].default_value != NULL)
      return mu_err_set(err, MU_EINVAL, "params[%zu] '%s': a required param cannot have a default", i, name);
    for (size_t j = 0; j < i; j++)
      if (strcmp(decls[j].name, name) == 0)
        return mu_err_set(err, MU_EINVAL, "params[%zu] '%s': declared twice (params[%zu])", i, name, j);
  }
  return 0;
}

void mu_template_values_free(mu_template_values *v) {
  for (size_t i = 0; i < v->n; i++) {
    free(v->names[i]);
    free(v->values[i]);
  }
  memset(v, 0, sizeof *v);
}

/* "a, b, c" into buf: the declared names, for an unknown-param message. */
static void list_names(const mu_template_param *decls, size_t n, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used + 1 < cap; i++) {
    int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", decls[i].name);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (n == 0) snprintf(buf, cap, "none");
}

/* The index of the arg giving decl name, -1 when none; -2 after reporting a duplicate. */
static long arg_for(const char *name, const char *const *args, size_t n_args, mu_err *err) {
  size_t len = strlen(name);
  long found = -1;
  for (size_t a = 0; a < n_args; a++) {
    if (strncmp(args[a], name, len) != 0 || args[a][len] != '=') continue;
    if (found >= 0) {
      mu_err_set(err, MU_EINVAL, "param '%s' given twice", name);
      return -2;
    }
    found = (long)a;
  }
  return found;
}

static int check_args(const mu_template_param *decls, size_t n, const char *const *args, size_t n_args, mu_err *err) {
  for (size_t a = 0; a < n_args; a++) {
    const char *eq = strchr(args[a], '=');
    if (eq == NULL || eq == args[a])
      return mu_err_set(err, MU_EINVAL, "'%.80s': a param is given as key=value", args[a]);
    size_t klen = (size_t)(eq - args[a]);
    size_t d = 0;
    while (d < n && (strlen(decls[d].name) != klen || strncmp(decls[d].name, args[a], klen) != 0)) d++;
    if (d == n) {
      char names[512];
      list_names(decls, n, names, sizeof names);
      return mu_err_set(err, MU_EINVAL, "unknown param '%.*s' (the template declares: %s)",
                        (int)(klen > 80 ? 80 : klen), args[a], names);
    }
  }
  return 0;
}

static int check_missing(const mu_template_param *decls, size_t n, const char *const *args, size_t n_args,
                         mu_err *err) {
  char missing[400];
  size_t used = 0, count = 0;
  missing[0] = '\0';
  for (size_t d = 0; d < n; d++) {
    long a = arg_for(decls[d].name, args, n_args, err);
    if (a == -2) return err ? err->code : MU_EINVAL;
    if (a >= 0 || !decls[d].required) continue;
    count++;
    if (used + 1 < sizeof missing) {
      int w = snprintf(missing + used, sizeof missing - used, "%s'%s'", used ? ", " : "", decls[d].name);
      if (w > 0) used += (size_t)w;
    }
  }
  if (count > 0) return mu_err_set(err, MU_EINVAL, "missing required param%s %s", count > 1 ? "s" : "", missing);
  return 0;
}

int mu_template_values_resolve(const mu_template_param *decls, size_t n, const char *const *args, size_t n_args,
                               mu_template_values *ret, mu_err *err) {
  mu_template_values v;
  memset(&v, 0, sizeof v);
  memset(ret, 0, sizeof *ret);
  int rc = check_args(decls, n, args, n_args, err);
  if (rc == 0) rc = check_missing(decls, n, args, n_args, err);
  if (rc != 0) return rc;
  for (size_t d = 0; d < n && d < MU_TEMPLATE_PARAMS_MAX; d++) {
    long a = arg_for(decls[d].name, args, n_args, NULL);
    const char *value = a >= 0 ? args[a] + strlen(decls[d].name) + 1 : decls[d].default_value;
    if (value == NULL) value = "";
    v.bytes += strlen(value);
    if (v.bytes > MU_TEMPLATE_PAYLOAD_MAX) {
      rc = mu_err_set(err, MU_ENOSPC, "params: values hold more than %d bytes (at '%s')", MU_TEMPLATE_PAYLOAD_MAX,
                      decls[d].name);
      goto fail;
    }
    v.names[v.n] = strdup(decls[d].name);
    v.values[v.n] = strdup(value);
    v.n++;
    if (v.names[v.n - 1] == NULL || v.values[v.n - 1] == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "params: out of memory");
      goto fail;
    }
  }
  *ret = v;
  return 0;
fail:
  mu_template_values_free(&v);
  return rc;
}

const char *mu_template_values_get(const mu_template_values *vals, const char *name, size_t len) {
  for (size_t i = 0; i < vals->n; i++)
    if (strlen(vals->names[i]) == len && strncmp(vals->names[i], name, len) == 0) return vals->values[i];
  return NULL;
}

/* The next ${param.KEY} at or after p: its start, with *ret_key and *ret_len; NULL when none.
 * "$${" is an escape, not a reference. */
static const char *next_ref(const char *text, const char *p, const char **ret_key, size_t *ret_len) {
  for (p = strstr(p, REF_OPEN); p != NULL; p = strstr(p + 2, REF_OPEN)) {
    if (p > text && p[-1] == '$') continue;
    const char *key = p + REF_OPEN_LEN, *e = key;
    while (name_char((unsigned char)*e)) e++;
    if (*e != '}' || e == key) continue;
    *ret_key = key;
    *ret_len = (size_t)(e - key);
    return p;
  }
  return NULL;
}

void mu_template_refs_each(const char *text, void (*fn)(void *ud, const char *key, size_t len), void *ud) {
  if (text == NULL) return;
  const char *key;
  size_t len;
  for (const char *p = next_ref(text, text, &key, &len); p != NULL; p = next_ref(text, key + len, &key, &len))
    fn(ud, key, len);
}

int mu_template_subst_text(const char *text, const mu_template_values *vals, char **ret_text, mu_err *err) {
  *ret_text = NULL;
  const char *key;
  size_t len;
  const char *p = next_ref(text, text, &key, &len);
  if (p == NULL) return 0;
  /* First pass: check every key and size the result. */
  size_t out_len = strlen(text);
  for (const char *q = p; q != NULL; q = next_ref(text, key + len, &key, &len)) {
    const char *value = mu_template_values_get(vals, key, len);
    if (value == NULL)
      return mu_err_set(err, MU_EINVAL, "${param.%.*s}: the template declares no param '%.*s'",
                        (int)(len > 80 ? 80 : len), key, (int)(len > 80 ? 80 : len), key);
    out_len = out_len - (REF_OPEN_LEN + len + 1) + strlen(value);
    if (out_len > MU_TEMPLATE_TEXT_MAX)
      return mu_err_set(err, MU_ENOSPC, "more than %d bytes after replacing params", MU_TEMPLATE_TEXT_MAX);
  }
  char *out = malloc(out_len + 1);
  if (out == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  size_t used = 0;
  const char *from = text;
  for (const char *q = next_ref(text, text, &key, &len); q != NULL; q = next_ref(text, key + len, &key, &len)) {
    const char *value = mu_template_values_get(vals, key, len);
    memcpy(out + used, from, (size_t)(q - from));
    used += (size_t)(q - from);
    size_t vlen = strlen(value);
    memcpy(out + used, value, vlen);
    used += vlen;
    from = key + len + 1;
  }
  size_t rest = strlen(from);
  memcpy(out + used, from, rest + 1);
  *ret_text = out;
  return 0;
}

typedef struct subst_walk {
  const mu_template_values *vals;
  mu_err *err;
  char path[PATH_MAX_LEN];
} subst_walk;

static int walk_message(subst_walk *w, ProtobufCMessage *m, size_t plen, int depth);

static int subst_slot(subst_walk *w, char **slot) {
  if (*slot == NULL) return 0;
  char *out = NULL;
  int rc = mu_template_subst_text(*slot, w->vals, &out, w->err);
  if (rc != 0) {
    mu_err_prefix(w->err, "%s", w->path);
    return rc;
  }
  if (out == NULL) return 0;
  free(*slot);
  *slot = out;
  return 0;
}

static int walk_value(subst_walk *w, const ProtobufCFieldDescriptor *f, void *slot, size_t plen, int depth) {
  if (f->type == PROTOBUF_C_TYPE_STRING) return subst_slot(w, (char **)slot);
  if (f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
  ProtobufCMessage *sub = *(ProtobufCMessage **)slot;
  return sub == NULL ? 0 : walk_message(w, sub, plen, depth + 1);
}

static int walk_message(subst_walk *w, ProtobufCMessage *m, size_t plen, int depth) {
  if (depth > DEPTH_MAX) return 0;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  char *base = (char *)m;
  for (unsigned k = 0; k < d->n_fields; k++) {
    const ProtobufCFieldDescriptor *f = &d->fields[k];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
    size_t n = (size_t)snprintf(w->path + plen, PATH_MAX_LEN - plen, "%s%s", plen ? "." : "", f->name);
    if (plen + n >= PATH_MAX_LEN) n = PATH_MAX_LEN - 1 - plen;
    int rc = 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = *(const size_t *)(base + f->quantifier_offset);
      char *items = *(char **)(base + f->offset);
      for (size_t i = 0; i < count && items != NULL && rc == 0; i++) {
        size_t in = (size_t)snprintf(w->path + plen + n, PATH_MAX_LEN - plen - n, "[%zu]", i);
        if (plen + n + in >= PATH_MAX_LEN) in = PATH_MAX_LEN - 1 - plen - n;
        rc = walk_value(w, f, items + i * sizeof(void *), plen + n + in, depth);
      }
    } else {
      rc = walk_value(w, f, base + f->offset, plen + n, depth);
    }
    w->path[plen] = '\0';
    if (rc != 0) return rc;
  }
  return 0;
}

int mu_template_subst_spec(Muster__V1__JobSpec *spec, const mu_template_values *vals, mu_err *err) {
  subst_walk w = {.vals = vals, .err = err};
  w.path[0] = '\0';
  return walk_message(&w, &spec->base, 0, 0);
}
