/* The shell command policy (policy.h): loads deny/allow glob lists from JSON and checks
 * script text against them. A script is cut into logical lines (backslash-newline joined,
 * blank and `#` lines skipped, white space squeezed); each line, and each segment of it
 * between unquoted `;`, `&&`, `||`, `|` and `&`, is matched with fnmatch(3). Deny wins over
 * allow; with an allow list, every segment must match one of its rules. */
#define _GNU_SOURCE
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"

#define SHOW_MAX 120 /* bytes of a line quoted in a message */

struct shell_policy {
  char **deny;
  size_t n_deny;
  char **allow;
  size_t n_allow;
};

static int perr(char *errbuf, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(char *errbuf, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, MUSTER_ERRBUF_SIZE, fmt, ap);
  va_end(ap);
  return code;
}

void shell_policy_free(shell_policy *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->n_deny; i++) free(p->deny[i]);
  for (size_t i = 0; i < p->n_allow; i++) free(p->allow[i]);
  free(p->deny);
  free(p->allow);
  free(p);
}

static int load_list(json_t *root, const char *key, const char *origin, char ***ret, size_t *ret_n, char *errbuf) {
  json_t *arr = json_object_get(root, key);
  if (arr == NULL || json_is_null(arr)) return 0;
  if (!json_is_array(arr))
    return perr(errbuf, -EINVAL, "shell policy %s: \"%s\" must be a list of glob strings", origin, key);
  size_t n = json_array_size(arr);
  if (n > SHELL_POLICY_MAX_RULES)
    return perr(errbuf, -EINVAL, "shell policy %s: \"%s\" has more than %d rules", origin, key, SHELL_POLICY_MAX_RULES);
  *ret = calloc(n + 1, sizeof **ret);
  if (*ret == NULL) return perr(errbuf, -ENOMEM, "shell policy %s: out of memory", origin);
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i);
    if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > SHELL_POLICY_MAX_PATTERN)
      return perr(errbuf, -EINVAL, "shell policy %s: %s rule %zu must be a non-empty string of at most %d bytes",
                  origin, key, i + 1, SHELL_POLICY_MAX_PATTERN);
    (*ret)[i] = strdup(json_string_value(e));
    if ((*ret)[i] == NULL) return perr(errbuf, -ENOMEM, "shell policy %s: out of memory", origin);
    *ret_n = i + 1;
  }
  return 0;
}

int shell_policy_parse(const char *json_text, const char *origin, shell_policy **ret, char *errbuf) {
  json_error_t je;
  json_t *root = json_loads(json_text, 0, &je);
  if (root == NULL)
    return perr(errbuf, -EINVAL, "shell policy %s: bad JSON at line %d column %d: %s", origin, je.line, je.column,
                je.text);
  int rc = 0;
  shell_policy *p = calloc(1, sizeof *p);
  if (p == NULL) {
    rc = perr(errbuf, -ENOMEM, "shell policy %s: out of memory", origin);
    goto fail;
  }
  if (!json_is_object(root)) {
    rc = perr(errbuf, -EINVAL, "shell policy %s: must be a JSON object {\"deny\": [...], \"allow\": [...]}", origin);
    goto fail;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "deny") != 0 && strcmp(key, "allow") != 0) {
      rc = perr(errbuf, -EINVAL, "shell policy %s: unknown key \"%s\" (want deny, allow)", origin, key);
      goto fail;
    }
  }
  rc = load_list(root, "deny", origin, &p->deny, &p->n_deny, errbuf);
  if (rc != 0) goto fail;
  rc = load_list(root, "allow", origin, &p->allow, &p->n_allow, errbuf);
  if (rc != 0) goto fail;
  json_decref(root);
  *ret = p;
  return 0;
fail:
  json_decref(root);
  shell_policy_free(p);
  return rc;
}

int shell_policy_load(const char *path, shell_policy **ret, char *errbuf) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return perr(errbuf, -EIO, "shell policy %s: cannot open: %s", path, strerror(errno));
  char *buf = malloc(SHELL_POLICY_MAX_FILE + 1);
  if (buf == NULL) {
    fclose(f);
    return perr(errbuf, -ENOMEM, "shell policy %s: out of memory", path);
  }
  size_t n = fread(buf, 1, SHELL_POLICY_MAX_FILE + 1, f);
  bool bad = ferror(f) != 0;
  fclose(f);
  int rc;
  if (bad) {
    rc = perr(errbuf, -EIO, "shell policy %s: read error", path);
  } else if (n > SHELL_POLICY_MAX_FILE) {
    rc = perr(errbuf, -EINVAL, "shell policy %s: larger than %d bytes", path, SHELL_POLICY_MAX_FILE);
  } else {
    buf[n] = '\0';
    rc = shell_policy_parse(buf, path, ret, errbuf);
  }
  free(buf);
  return rc;
}

/* ---- checking ---- */

typedef struct where {
  int lineno;       /* 0: a command */
  const char *line; /* the whole logical line, for messages */
} where;

static void show(const where *w, char *out, size_t cap) {
  int len = (int)strlen(w->line);
  const char *ell = len > SHOW_MAX ? "..." : "";
  if (len > SHOW_MAX) len = SHOW_MAX;
  if (w->lineno > 0) snprintf(out, cap, "line %d \"%.*s%s\"", w->lineno, len, w->line, ell);
  else snprintf(out, cap, "command \"%.*s%s\"", len, w->line, ell);
}

static int check_deny(const shell_policy *p, const char *s, const where *w, char *errbuf) {
  for (size_t i = 0; i < p->n_deny; i++) {
    if (fnmatch(p->deny[i], s, 0) == 0) {
      char at[SHOW_MAX + 64];
      show(w, at, sizeof at);
      return perr(errbuf, -EPERM, "shell policy: deny rule %zu \"%.200s\" matches %s", i + 1, p->deny[i], at);
    }
  }
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

static int check_segment(const shell_policy *p, char *seg, const where *w, char *errbuf) {
  seg = trim(seg);
  if (*seg == '\0') return 0;
  int rc = check_deny(p, seg, w, errbuf);
  if (rc != 0 || p->n_allow == 0) return rc;
  for (size_t i = 0; i < p->n_allow; i++)
    if (fnmatch(p->allow[i], seg, 0) == 0) return 0;
  char at[SHOW_MAX + 64];
  show(w, at, sizeof at);
  if (strcmp(seg, w->line) == 0) return perr(errbuf, -EPERM, "shell policy: %s matches no allow rule", at);
  return perr(errbuf, -EPERM, "shell policy: %s matches no allow rule (at \"%.*s\")", at, SHOW_MAX, seg);
}

/* Checks one logical line (trimmed, NUL-terminated; modified in place by the split). */
static int check_line(const shell_policy *p, char *line, int lineno, char *errbuf) {
  char *whole = strdup(line);
  if (whole == NULL) return perr(errbuf, -ENOMEM, "shell policy: out of memory");
  where w = {lineno, whole};
  int rc = check_deny(p, whole, &w, errbuf);
  size_t n = strlen(line);
  char *seg = line;
  char quote = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
      continue;
    }
    if (c == '\\' && i + 1 < n) {
      i++;
      continue;
    }
    if (quote == '"') {
      if (c == '"') quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    size_t sep = 0;
    if (c == ';') {
      sep = 1;
    } else if (c == '|') {
      sep = (i + 1 < n && line[i + 1] == '|') ? 2 : 1;
    } else if (c == '&') {
      if (i + 1 < n && line[i + 1] == '&') sep = 2;
      else if (!((i > 0 && (line[i - 1] == '>' || line[i - 1] == '<')) || (i + 1 < n && line[i + 1] == '>')))
        sep = 1; /* a background `&`, not `>&3`, `2>&1` or `&>file` */
    }
    if (sep == 0) continue;
    line[i] = '\0';
    rc = check_segment(p, seg, &w, errbuf);
    seg = line + i + sep;
    i += sep - 1;
  }
  if (rc == 0) rc = check_segment(p, seg, &w, errbuf);
  free(whole);
  return rc;
}

int shell_policy_check_script(const shell_policy *p, const char *text, size_t len, char *errbuf) {
  if (p == NULL) return 0;
  char *buf = malloc(len + 1);
  if (buf == NULL) return perr(errbuf, -ENOMEM, "shell policy: out of memory");
  int rc = 0, lineno = 0;
  size_t i = 0;
  while (rc == 0 && i < len) {
    int first = ++lineno;
    size_t n = 0;
    /* one logical line: physical lines joined at a trailing backslash */
    while (i < len) {
      char c = text[i++];
      if (c == '\r' && i < len && text[i] == '\n') continue;
      if (c == '\n') {
        if (n > 0 && buf[n - 1] == '\\') {
          n--;
          if (n > 0 && buf[n - 1] != ' ') buf[n++] = ' ';
          lineno++;
          continue;
        }
        break;
      }
      if (c == '\0' || isspace((unsigned char)c)) {
        if (n > 0 && buf[n - 1] != ' ') buf[n++] = ' '; /* runs of white space count as one space */
        continue;
      }
      buf[n++] = c;
    }
    buf[n] = '\0';
    char *line = trim(buf);
    if (*line == '\0' || *line == '#') continue;
    rc = check_line(p, line, first, errbuf);
  }
  free(buf);
  return rc;
}

int shell_policy_check_command(const shell_policy *p, const char *cmdline, char *errbuf) {
  if (p == NULL) return 0;
  char *buf = strdup(cmdline);
  if (buf == NULL) return perr(errbuf, -ENOMEM, "shell policy: out of memory");
  size_t n = 0;
  for (const char *c = cmdline; *c != '\0'; c++) {
    if (!isspace((unsigned char)*c)) buf[n++] = *c;
    else if (n > 0 && buf[n - 1] != ' ') buf[n++] = ' ';
  }
  buf[n] = '\0';
  char *line = trim(buf);
  where w = {0, line};
  /* argv is not parsed by a shell: no segments, the whole line is the one command */
  int rc = check_deny(p, line, &w, errbuf);
  if (rc == 0 && p->n_allow > 0) {
    rc = -EPERM;
    for (size_t i = 0; i < p->n_allow && rc != 0; i++)
      if (fnmatch(p->allow[i], line, 0) == 0) rc = 0;
    if (rc != 0) {
      char at[SHOW_MAX + 64];
      show(&w, at, sizeof at);
      perr(errbuf, -EPERM, "shell policy: %s matches no allow rule", at);
    }
  }
  free(buf);
  return rc;
}
