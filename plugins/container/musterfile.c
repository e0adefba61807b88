/* The Musterfile parser (see musterfile.h): logical lines (continuations joined, comments
 * dropped), one instruction per logical line, words lexed with Dockerfile quoting and
 * variable substitution, exec forms read as JSON string arrays. */
#define _GNU_SOURCE
#include "plugins/container/musterfile.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- growing strings and string lists ---- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }

/* The buffer's string (never NULL unless out of memory); the buffer is emptied. */
static char *sb_take(sbuf *b) {
  if (b->p == NULL && !b->oom) sb_putn(b, "", 0);
  char *s = b->oom ? NULL : b->p;
  if (b->oom) free(b->p);
  *b = (sbuf){0};
  return s;
}

typedef struct strv {
  char **v;
  size_t n, cap;
  bool oom;
} strv;

static void sv_push(strv *l, char *s) {
  if (s == NULL) {
    l->oom = true;
    return;
  }
  if (l->n + 2 > l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    char **v = realloc(l->v, cap * sizeof *v);
    if (v == NULL) {
      free(s);
      l->oom = true;
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = s;
  l->v[l->n] = NULL;
}

static void sv_free(strv *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  *l = (strv){0};
}

/* ---- variables: "K=V" in declaration order, later wins ---- */

static const char *var_get(const strv *vars, const char *name, size_t len) {
  for (size_t i = vars->n; i-- > 0;)
    if (strncmp(vars->v[i], name, len) == 0 && vars->v[i][len] == '=') return vars->v[i] + len + 1;
  return NULL;
}

static void var_set(strv *vars, const char *name, const char *value) {
  char *kv = NULL;
  if (asprintf(&kv, "%s=%s", name, value ? value : "") < 0) kv = NULL;
  sv_push(vars, kv);
}

static bool name_char(char c, bool first) {
  return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

/* At s[0] == '$': appends the substitution and returns the characters consumed, or -1 for a
 * malformed ${...}. "$" not followed by a name is a literal dollar. */
static int subst_var(const char *s, const strv *vars, sbuf *out) {
  if (s[1] == '{') {
    const char *close = strchr(s + 2, '}');
    if (close == NULL) return -1;
    const char *name = s + 2, *p = name;
    while (p < close && name_char(*p, p == name)) p++;
    if (p == name) return -1;
    const char *val = var_get(vars, name, (size_t)(p - name));
    if (p == close) {
      if (val) sb_putn(out, val, strlen(val));
    } else if (p[0] == ':' && (p[1] == '-' || p[1] == '+')) {
      bool set = val != NULL && *val != '\0';
      const char *word = p + 2;
      if (p[1] == '-') {
        if (set) sb_putn(out, val, strlen(val));
        else sb_putn(out, word, (size_t)(close - word));
      } else if (set) {
        sb_putn(out, word, (size_t)(close - word));
      }
    } else {
      return -1;
    }
    return (int)(close - s + 1);
  }
  const char *p = s + 1;
  while (name_char(*p, p == s + 1)) p++;
  if (p == s + 1) {
    sb_putc(out, '$');
    return 1;
  }
  const char *val = var_get(vars, s + 1, (size_t)(p - s - 1));
  if (val) sb_putn(out, val, strlen(val));
  return (int)(p - s);
}

/* A substitution at **p into w, *p moved past it; -1 (w freed, why set) when malformed. */
static int subst_step(const char **p, const strv *vars, sbuf *w, const char **why) {
  int n = subst_var(*p, vars, w);
  if (n < 0) {
    free(w->p);
    *w = (sbuf){0};
    *why = "malformed ${...}";
    return -1;
  }
  *p += n;
  return 0;
}

/* Splits s into words with Dockerfile quoting: '...' literal, "..." with \" \\ \$ escapes,
 * a backslash escapes the next character, $ substituted (vars NULL: no substitution).
 * Returns 0 or -1 with why set (out may then hold the words before the error). */
static int lex_words_into(const char *s, const strv *vars, strv *out, const char **why) {
  const char *p = s;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return out->oom ? (*why = "out of memory", -1) : 0;
    sbuf w = {0};
    bool quoted = false;
    while (*p && *p != ' ' && *p != '\t') {
      if (*p == '\\') {
        sb_putc(&w, p[1] ? p[1] : '\\');
        p += p[1] ? 2 : 1;
      } else if (*p == '\'') {
        const char *e = strchr(p + 1, '\'');
        if (e == NULL) {
          free(w.p);
          *why = "unterminated single quote";
          return -1;
        }
        sb_putn(&w, p + 1, (size_t)(e - p - 1));
        quoted = true;
        p = e + 1;
      } else if (*p == '"') {
        p++;
        while (*p && *p != '"') {
          if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$')) {
            sb_putc(&w, p[1]);
            p += 2;
          } else if (*p == '$' && vars) {
            if (subst_step(&p, vars, &w, why) != 0) return -1;
          } else {
            sb_putc(&w, *p++);
          }
        }
        if (*p != '"') {
          free(w.p);
          *why = "unterminated double quote";
          return -1;
        }
        p++;
        quoted = true;
      } else if (*p == '$' && vars) {
        if (subst_step(&p, vars, &w, why) != 0) return -1;
      } else {
        sb_putc(&w, *p++);
      }
    }
    if (w.n > 0 || quoted) sv_push(out, sb_take(&w));
    else free(w.p);
  }
}

/* lex_words_into, out freed and emptied on failure. */
static int lex_words(const char *s, const strv *vars, strv *out, const char **why) {
  int rc = lex_words_into(s, vars, out, why);
  if (rc != 0) sv_free(out);
  return rc;
}

/* Substitution only (JSON-form COPY elements). */
static char *subst_all(const char *s, const strv *vars, const char **why) {
  sbuf b = {0};
  for (const char *p = s; *p;) {
    if (*p == '\\' && p[1] == '$') {
      sb_putc(&b, '$');
      p += 2;
    } else if (*p == '$') {
      int n = subst_var(p, vars, &b);
      if (n < 0) {
        free(b.p);
        *why = "malformed ${...}";
        return NULL;
      }
      p += n;
    } else {
      sb_putc(&b, *p++);
    }
  }
  return sb_take(&b);
}

/* A JSON array of strings into out; false when text is not one (then it is the shell form). */
static bool json_form(const char *text, strv *out) {
  if (text[0] != '[') return false;
  json_t *a = json_loads(text, JSON_DECODE_ANY, NULL);
  bool ok = json_is_array(a) && json_array_size(a) > 0;
  for (size_t i = 0; ok && i < json_array_size(a); i++) ok = json_is_string(json_array_get(a, i));
  for (size_t i = 0; ok && i < json_array_size(a); i++) sv_push(out, strdup(json_string_value(json_array_get(a, i))));
  json_decref(a);
  if (!ok) sv_free(out);
  return ok;
}

/* ---- instructions ---- */

typedef struct parser parser;
static int bad(parser *ps, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The step takes the words (or, out of memory, they are freed). */
static int give(parser *ps, mu_mf_step *st, strv *w) {
  if (w->oom) {
    sv_free(w);
    return bad(ps, MU_ENOMEM, "out of memory");
  }
  st->args = w->v;
  st->n_args = w->n;
  *w = (strv){0};
  return 0;
}

static const struct {
  const char *name;
  mu_mf_kind kind;
} known[] = {{"FROM", MU_MF_FROM},       {"COPY", MU_MF_COPY},   {"ADD", MU_MF_ADD},
             {"RUN", MU_MF_RUN},         {"ENV", MU_MF_ENV},     {"ARG", MU_MF_ARG},
             {"WORKDIR", MU_MF_WORKDIR}, {"USER", MU_MF_USER},   {"ENTRYPOINT", MU_MF_ENTRYPOINT},
             {"CMD", MU_MF_CMD},         {"LABEL", MU_MF_LABEL}, {"EXPOSE", MU_MF_EXPOSE}};

static const char *const not_built[] = {"ONBUILD", "HEALTHCHECK", "VOLUME", "STOPSIGNAL", "SHELL", "MAINTAINER"};

#define SUPPORTED "FROM, COPY, ADD, RUN, ENV, ARG, WORKDIR, USER, ENTRYPOINT, CMD, LABEL, EXPOSE"

const char *mu_mf_kind_name(mu_mf_kind k) {
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (known[i].kind == k) return known[i].name;
  return "?";
}

struct parser {
  strv vars;       /* ARGs and ENVs in scope after FROM */
  strv meta;       /* ARGs before FROM */
  strv build_args; /* K=V from the command line */
  strv used_args;  /* names some ARG declared */
  bool seen_from;
  int line;
  mu_err *err;
};

static int bad(parser *ps, int code, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mu_err_set(ps->err, code, "Musterfile line %d: %s", ps->line, msg);
}

/* "a/./b/" -> "a/b", "/x" -> "x" (sources are relative to the context whatever their
 * leading slash); -1 when ".." climbs above the top. "" becomes ".". */
static int clean_rel(const char *raw, char *out, size_t cap) {
  size_t n = 0;
  for (const char *p = raw; *p;) {
    while (*p == '/') p++;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0) break;
    if (len == 1 && p[0] == '.') {
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      if (n == 0) return -1;
      while (n > 0 && out[n - 1] != '/') n--;
      if (n > 0) n--;
    } else {
      if (n + len + 2 > cap) return -1;
      if (n) out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
    }
    p += len;
  }
  if (n == 0) out[n++] = '.';
  out[n] = '\0';
  return 0;
}

static bool is_url(const char *s) { return strstr(s, "://") != NULL || strncmp(s, "git@", 4) == 0; }

static int parse_copy(parser *ps, mu_mf_step *st, const char *rest) {
  strv w = {0};
  const char *why = NULL;
  /* flags first: --chown=UID[:GID]; anything else refused */
  while (strncmp(rest, "--", 2) == 0) {
    const char *e = rest + strcspn(rest, " \t");
    if (strncmp(rest, "--chown=", 8) == 0) {
      char val[64];
      size_t vl = (size_t)(e - rest - 8);
      if (vl == 0 || vl >= sizeof val) return bad(ps, MU_EINVAL, "--chown needs UID[:GID]");
      memcpy(val, rest + 8, vl);
      val[vl] = '\0';
      if (strspn(val, "0123456789:") != vl || val[0] == ':' ||
          strchr(strchr(val, ':') ? strchr(val, ':') + 1 : "", ':'))
        return bad(ps, MU_EINVAL, "--chown=%s: numeric UID[:GID] only (names are not resolved)", val);
      free(st->chown);
      st->chown = strdup(val);
    } else {
      return bad(ps, MU_ENOTSUP, "%s flag %.*s is not supported (only --chown=UID[:GID])", mu_mf_kind_name(st->kind),
                 (int)(e - rest), rest);
    }
    rest = e;
    while (*rest == ' ' || *rest == '\t') rest++;
  }
  if (json_form(rest, &w)) {
    for (size_t i = 0; i < w.n; i++) {
      char *s = subst_all(w.v[i], &ps->vars, &why);
      if (s == NULL) {
        sv_free(&w);
        return bad(ps, MU_EINVAL, "%s", why ? why : "out of memory");
      }
      free(w.v[i]);
      w.v[i] = s;
    }
  } else if (lex_words(rest, &ps->vars, &w, &why) != 0) {
    sv_free(&w);
    return bad(ps, MU_EINVAL, "%s", why);
  }
  if (w.n < 2) {
    sv_free(&w);
    return bad(ps, MU_EINVAL, "%s needs at least one source and a destination", mu_mf_kind_name(st->kind));
  }
  for (size_t i = 0; i + 1 < w.n; i++) {
    if (is_url(w.v[i])) {
      int rc = bad(ps, MU_ENOTSUP, "%s of a URL (%s) is refused: sources are local files of the context only",
                   mu_mf_kind_name(st->kind), w.v[i]);
      sv_free(&w);
      return rc;
    }
    char clean[4096];
    if (clean_rel(w.v[i], clean, sizeof clean) != 0) {
      int rc = bad(ps, MU_EPERM, "%s source \"%s\" is outside the build context", mu_mf_kind_name(st->kind), w.v[i]);
      sv_free(&w);
      return rc;
    }
    free(w.v[i]);
    w.v[i] = strdup(clean);
    if (w.v[i] == NULL) w.oom = true;
  }
  return give(ps, st, &w);
}

/* ENV and LABEL: K=V words, or the legacy "ENV K the rest". */
static int parse_pairs(parser *ps, mu_mf_step *st, const char *rest) {
  strv w = {0}, out = {0};
  const char *why = NULL;
  if (lex_words(rest, &ps->vars, &w, &why) != 0) return bad(ps, MU_EINVAL, "%s", why);
  int rc = 0;
  if (w.n == 0) {
    rc = bad(ps, MU_EINVAL, "%s needs KEY=VALUE", mu_mf_kind_name(st->kind));
    goto done;
  }
  if (strchr(w.v[0], '=') == NULL) {
    if (st->kind != MU_MF_ENV || w.n < 2) {
      rc = bad(ps, MU_EINVAL, "%s needs KEY=VALUE, got \"%s\"", mu_mf_kind_name(st->kind), w.v[0]);
      goto done;
    }
    /* legacy form: the value is the rest of the line, words joined by one space */
    sbuf v = {0};
    for (size_t i = 1; i < w.n; i++) {
      if (i > 1) sb_putc(&v, ' ');
      sb_putn(&v, w.v[i], strlen(w.v[i]));
    }
    sv_push(&out, strdup(w.v[0]));
    sv_push(&out, sb_take(&v));
  } else {
    for (size_t i = 0; i < w.n; i++) {
      char *eq = strchr(w.v[i], '=');
      if (eq == NULL || eq == w.v[i]) {
        rc = bad(ps, MU_EINVAL, "%s: \"%s\" is not KEY=VALUE", mu_mf_kind_name(st->kind), w.v[i]);
        goto done;
      }
      sv_push(&out, strndup(w.v[i], (size_t)(eq - w.v[i])));
      sv_push(&out, strdup(eq + 1));
    }
  }
  for (size_t i = 0; st->kind == MU_MF_ENV && i + 1 < out.n; i += 2) {
    for (const char *p = out.v[i]; *p; p++)
      if (!name_char(*p, p == out.v[i])) {
        rc = bad(ps, MU_EINVAL, "ENV name \"%s\" is not a valid variable name", out.v[i]);
        goto done;
      }
    var_set(&ps->vars, out.v[i], out.v[i + 1]); /* later lines see it */
  }
  if (out.oom || ps->vars.oom) {
    rc = bad(ps, MU_ENOMEM, "out of memory");
    goto done;
  }
  st->args = out.v;
  st->n_args = out.n;
  out = (strv){0};
done:
  sv_free(&w);
  sv_free(&out);
  return rc;
}

static int parse_arg(parser *ps, mu_mf_step *st, const char *rest) {
  strv w = {0};
  const char *why = NULL;
  if (lex_words(rest, ps->seen_from ? &ps->vars : &ps->meta, &w, &why) != 0) return bad(ps, MU_EINVAL, "%s", why);
  if (w.n != 1) {
    sv_free(&w);
    return bad(ps, MU_EINVAL, "ARG takes one NAME[=default]");
  }
  char *eq = strchr(w.v[0], '=');
  char *name = eq ? strndup(w.v[0], (size_t)(eq - w.v[0])) : strdup(w.v[0]);
  const char *def = eq ? eq + 1 : NULL;
  int rc = 0;
  if (name == NULL || *name == '\0') {
    rc = bad(ps, MU_EINVAL, "ARG needs a name");
    goto done;
  }
  for (const char *p = name; *p; p++)
    if (!name_char(*p, p == name)) {
      rc = bad(ps, MU_EINVAL, "ARG name \"%s\" is not a valid variable name", name);
      goto done;
    }
  const char *given = var_get(&ps->build_args, name, strlen(name));
  /* ARG NAME after FROM without a default takes the default of the same ARG before FROM */
  const char *meta = ps->seen_from ? var_get(&ps->meta, name, strlen(name)) : NULL;
  const char *value = given ? given : def ? def : meta;
  sv_push(&ps->used_args, strdup(name));
  if (value != NULL) var_set(ps->seen_from ? &ps->vars : &ps->meta, name, value);
  st->args = calloc(3, sizeof *st->args);
  if (st->args == NULL) {
    rc = bad(ps, MU_ENOMEM, "out of memory");
    goto done;
  }
  st->args[0] = name;
  st->args[1] = value ? strdup(value) : NULL;
  st->n_args = 2;
  name = NULL;
done:
  free(name);
  sv_free(&w);
  return rc;
}

static int parse_exec(parser *ps, mu_mf_step *st, const char *rest) {
  strv w = {0};
  if (json_form(rest, &w)) {
    st->shell_form = false;
  } else {
    if (*rest == '\0') return bad(ps, MU_EINVAL, "%s needs a command", mu_mf_kind_name(st->kind));
    sv_push(&w, strdup("/bin/sh"));
    sv_push(&w, strdup("-c"));
    sv_push(&w, strdup(rest));
    st->shell_form = true;
  }
  return give(ps, st, &w);
}

/* FROM, WORKDIR, USER, EXPOSE: words after substitution. */
static int parse_words(parser *ps, mu_mf_step *st, const char *rest) {
  strv w = {0};
  const char *why = NULL;
  if (lex_words(rest, st->kind == MU_MF_FROM ? &ps->meta : &ps->vars, &w, &why) != 0)
    return bad(ps, MU_EINVAL, "%s", why);
  int rc = 0;
  const char *name = mu_mf_kind_name(st->kind);
  if (st->kind != MU_MF_EXPOSE && w.n != 1) {
    if (st->kind == MU_MF_FROM && w.n == 3 && strcasecmp(w.v[1], "AS") == 0)
      rc = bad(ps, MU_ENOTSUP, "FROM ... AS %s: multi-stage builds are not supported", w.v[2]);
    else rc = bad(ps, MU_EINVAL, "%s takes one value, got %zu", name, w.n);
    goto done;
  }
  if (w.n == 0) {
    rc = bad(ps, MU_EINVAL, "EXPOSE needs a port");
    goto done;
  }
  if (st->kind == MU_MF_FROM && strncmp(w.v[0], "--", 2) == 0) {
    rc = bad(ps, MU_ENOTSUP, "FROM flag %s is not supported", w.v[0]);
    goto done;
  }
  if (st->kind == MU_MF_FROM && strcmp(w.v[0], "scratch") == 0) {
    rc = bad(ps, MU_ENOTSUP, "FROM scratch is not supported: start from an image");
    goto done;
  }
  if (st->kind == MU_MF_EXPOSE) {
    for (size_t i = 0; i < w.n; i++) {
      char *slash = strchr(w.v[i], '/');
      size_t digits = strspn(w.v[i], "0123456789");
      long port = atol(w.v[i]);
      bool ok = digits > 0 && digits <= 5 && port > 0 && port < 65536 &&
                (slash ? (size_t)(slash - w.v[i]) == digits &&
                             (strcmp(slash, "/tcp") == 0 || strcmp(slash, "/udp") == 0 || strcmp(slash, "/sctp") == 0)
                       : w.v[i][digits] == '\0');
      if (!ok) {
        rc = bad(ps, MU_EINVAL, "EXPOSE \"%s\" is not PORT[/tcp|udp|sctp]", w.v[i]);
        goto done;
      }
      if (slash == NULL) {
        char *p = NULL;
        if (asprintf(&p, "%s/tcp", w.v[i]) < 0) p = NULL;
        free(w.v[i]);
        w.v[i] = p;
        if (p == NULL) w.oom = true;
      }
    }
  }
  rc = give(ps, st, &w);
done:
  sv_free(&w);
  return rc;
}

static int parse_instruction(parser *ps, const char *logical, mu_mf_step *st) {
  const char *p = logical;
  while (*p == ' ' || *p == '\t') p++;
  size_t kl = strcspn(p, " \t");
  const char *rest = p + kl;
  while (*rest == ' ' || *rest == '\t') rest++;
  st->line = ps->line;
  st->text = strdup(p);
  if (st->text == NULL) return bad(ps, MU_ENOMEM, "out of memory");
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (strlen(known[i].name) == kl && strncasecmp(p, known[i].name, kl) == 0) st->kind = known[i].kind;
  if (st->kind == 0) {
    for (size_t i = 0; i < sizeof not_built / sizeof *not_built; i++)
      if (strlen(not_built[i]) == kl && strncasecmp(p, not_built[i], kl) == 0)
        return bad(ps, MU_ENOTSUP, "%s is not supported by muster image build (supported: " SUPPORTED ")",
                   not_built[i]);
    return bad(ps, MU_EINVAL, "unknown instruction %.*s (supported: " SUPPORTED ")", (int)(kl > 40 ? 40 : kl), p);
  }
  if (!ps->seen_from && st->kind != MU_MF_FROM && st->kind != MU_MF_ARG)
    return bad(ps, MU_EINVAL, "%s before FROM (only ARG may come first)", mu_mf_kind_name(st->kind));
  if (ps->seen_from && st->kind == MU_MF_FROM)
    return bad(ps, MU_ENOTSUP, "a second FROM: multi-stage builds are not supported");
  switch (st->kind) {
    case MU_MF_FROM: {
      int rc = parse_words(ps, st, rest);
      ps->seen_from = true;
      return rc;
    }
    case MU_MF_COPY:
    case MU_MF_ADD: return parse_copy(ps, st, rest);
    case MU_MF_RUN:
    case MU_MF_ENTRYPOINT:
    case MU_MF_CMD: return parse_exec(ps, st, rest);
    case MU_MF_ENV:
    case MU_MF_LABEL: return parse_pairs(ps, st, rest);
    case MU_MF_ARG: return parse_arg(ps, st, rest);
    case MU_MF_WORKDIR:
    case MU_MF_USER:
    case MU_MF_EXPOSE: return parse_words(ps, st, rest);
  }
  return bad(ps, MU_EINVAL, "unknown instruction");
}

static void step_free(mu_mf_step *st) {
  for (size_t i = 0; i < st->n_args; i++) free(st->args[i]);
  free(st->args);
  free(st->text);
  free(st->chown);
}

void mu_musterfile_free(mu_musterfile *mf) {
  for (size_t i = 0; i < mf->n_steps; i++) step_free(&mf->steps[i]);
  free(mf->steps);
  for (size_t i = 0; i < mf->n_unused_args; i++) free(mf->unused_args[i]);
  free(mf->unused_args);
  *mf = (mu_musterfile){0};
}

/* True when a physical line ends with an unescaped continuation backslash (trailing blanks
 * allowed); *ret_len is the line's length without it. */
static bool continues(const char *line, size_t len, size_t *ret_len) {
  while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r')) len--;
  *ret_len = len;
  if (len > 0 && line[len - 1] == '\\') {
    *ret_len = len - 1;
    return true;
  }
  return false;
}

/* One logical line (continuations joined) into the next step. */
static int emit(parser *ps, mu_musterfile *ret, size_t *cap_steps, size_t max_steps, sbuf *logical, int first_line) {
  mu_err *err = ps->err;
  if (logical->oom) return mu_err_set(err, MU_ENOMEM, "out of memory");
  while (logical->n > 0 && (logical->p[logical->n - 1] == ' ' || logical->p[logical->n - 1] == '\t'))
    logical->p[--logical->n] = '\0';
  if (logical->n == 0) { /* only continuations and blanks */
    free(logical->p);
    *logical = (sbuf){0};
    return 0;
  }
  if (ret->n_steps >= max_steps)
    return mu_err_set(err, MU_ENOSPC, "Musterfile line %d: more than %zu instructions", first_line, max_steps);
  if (ret->n_steps == *cap_steps) {
    size_t nc = *cap_steps ? *cap_steps * 2 : 16;
    mu_mf_step *ns = realloc(ret->steps, nc * sizeof *ns);
    if (ns == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    ret->steps = ns;
    *cap_steps = nc;
  }
  mu_mf_step *st = &ret->steps[ret->n_steps++];
  memset(st, 0, sizeof *st);
  ps->line = first_line;
  int rc = parse_instruction(ps, logical->p, st);
  free(logical->p);
  *logical = (sbuf){0};
  return rc;
}

static void parser_free(parser *ps) {
  sv_free(&ps->vars);
  sv_free(&ps->meta);
  sv_free(&ps->build_args);
  sv_free(&ps->used_args);
}

int mu_musterfile_parse(const char *text, size_t len, const char *const *build_args, const mu_mf_limits *limits,
                        mu_musterfile *ret, mu_err *err) {
  size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : (1u << 20);
  size_t max_steps = limits && limits->max_steps ? limits->max_steps : 1000;
  memset(ret, 0, sizeof *ret);
  if (len > max_bytes)
    return mu_err_set(err, MU_ENOSPC, "Musterfile: %zu bytes, over the %zu-byte bound", len, max_bytes);
  if (memchr(text, '\0', len) != NULL) return mu_err_set(err, MU_EINVAL, "Musterfile: a NUL byte (not a text file)");
  parser ps = {.err = err};
  sbuf logical = {0};
  int rc = 0;
  for (const char *const *a = build_args; a && *a; a++) {
    const char *eq = strchr(*a, '=');
    if (eq == NULL || eq == *a) {
      rc = mu_err_set(err, MU_EINVAL, "--build-arg \"%s\" is not KEY=VALUE", *a);
      goto fail;
    }
    sv_push(&ps.build_args, strdup(*a));
  }
  int first_line = 0;
  size_t cap_steps = 0;
  const char *p = text, *end = text + len;
  int lineno = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
    const char *line = p;
    p = nl ? nl + 1 : end;
    lineno++;
    size_t i = 0;
    while (i < ll && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == ll || line[i] == '#') continue; /* blank lines, comments, parser directives */
    if (logical.n == 0) first_line = lineno;
    size_t keep;
    bool more = continues(line, ll, &keep);
    sb_putn(&logical, line + i, keep > i ? keep - i : 0);
    if (more) {
      sb_putc(&logical, ' ');
      continue;
    }
    rc = emit(&ps, ret, &cap_steps, max_steps, &logical, first_line);
    if (rc != 0) goto fail;
  }
  rc = emit(&ps, ret, &cap_steps, max_steps, &logical, first_line); /* a continuation at the end */
  if (rc != 0) goto fail;
  if (!ps.seen_from) {
    rc = mu_err_set(err, MU_EINVAL, "Musterfile: no FROM instruction");
    goto fail;
  }
  for (size_t i = 0; i < ps.build_args.n; i++) {
    const char *kv = ps.build_args.v[i];
    size_t kl = (size_t)(strchr(kv, '=') - kv);
    bool used = false;
    for (size_t j = 0; j < ps.used_args.n && !used; j++)
      used = strlen(ps.used_args.v[j]) == kl && strncmp(ps.used_args.v[j], kv, kl) == 0;
    if (used) continue;
    char **g = realloc(ret->unused_args, (ret->n_unused_args + 1) * sizeof *g);
    if (g == NULL) break;
    ret->unused_args = g;
    g[ret->n_unused_args] = strndup(kv, kl);
    if (g[ret->n_unused_args]) ret->n_unused_args++;
  }
  parser_free(&ps);
  return 0;
fail:
  free(logical.p);
  parser_free(&ps);
  mu_musterfile_free(ret);
  return rc;
}
