/* The package database and os-release parsers (see pkgdb.h). One line reader serves them
 * all: lines end at '\n' (a '\r' before it is dropped), NUL bytes end nothing, and no value
 * is used past its line. */
#include "lib/imagescan/pkgdb.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIELD_MAX 512 /* longer values are cut (names and versions are far shorter) */

typedef struct line_iter {
  const char *p, *end;
} line_iter;

/* The next line in [*ret, *ret + *ret_len); false at the end. */
static bool next_line(line_iter *it, const char **ret, size_t *ret_len) {
  if (it->p >= it->end) return false;
  const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
  const char *e = nl ? nl : it->end;
  *ret = it->p;
  *ret_len = (size_t)(e - it->p);
  if (*ret_len > 0 && (*ret)[*ret_len - 1] == '\r') (*ret_len)--;
  it->p = nl ? nl + 1 : it->end;
  return true;
}

/* "Key: value" (sep ':') or "K:value"/"KEY=value": copies the trimmed value into out when
 * the key matches (case-insensitive). */
static bool field(const char *line, size_t len, const char *key, char sep, char out[FIELD_MAX]) {
  size_t kl = strlen(key);
  if (len <= kl || line[kl] != sep || strncasecmp(line, key, kl) != 0) return false;
  const char *v = line + kl + 1, *e = line + len;
  while (v < e && (*v == ' ' || *v == '\t')) v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
  size_t n = (size_t)(e - v) < FIELD_MAX - 1 ? (size_t)(e - v) : FIELD_MAX - 1;
  memcpy(out, v, n);
  out[n] = '\0'; /* an embedded NUL just cuts the value */
  return true;
}

static bool blank(const char *line, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!isspace((unsigned char)line[i])) return false;
  return true;
}

static void unquote(char *s) {
  size_t n = strlen(s);
  if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
    memmove(s, s + 1, n - 2);
    s[n - 2] = '\0';
  }
}

void mu_osrelease_parse(const char *buf, size_t len, mu_os *os) {
  line_iter it = {buf, buf + len};
  const char *l;
  size_t ll;
  char v[FIELD_MAX];
  while (next_line(&it, &l, &ll)) {
    if (field(l, ll, "ID", '=', v)) unquote(v), snprintf(os->id, sizeof os->id, "%s", v);
    else if (field(l, ll, "VERSION_ID", '=', v)) unquote(v), snprintf(os->version_id, sizeof os->version_id, "%s", v);
    else if (field(l, ll, "VERSION_CODENAME", '=', v)) unquote(v), snprintf(os->codename, sizeof os->codename, "%s", v);
    else if (field(l, ll, "PRETTY_NAME", '=', v)) unquote(v), snprintf(os->pretty, sizeof os->pretty, "%s", v);
  }
}

typedef struct stanza {
  char name[FIELD_MAX], version[FIELD_MAX], source[FIELD_MAX], status[FIELD_MAX];
  bool any;
} stanza;

/* Source: "name" or "name (version)" into name and version. */
static void split_source(const char *src, char name[FIELD_MAX], char version[FIELD_MAX]) {
  version[0] = '\0';
  snprintf(name, FIELD_MAX, "%s", src);
  char *sp = strchr(name, ' ');
  if (sp == NULL) return;
  *sp = '\0';
  const char *open = strchr(src, '('), *close = open ? strchr(open, ')') : NULL;
  if (open && close && close > open + 1) snprintf(version, FIELD_MAX, "%.*s", (int)(close - open - 1), open + 1);
}

/* Where a database's packages go. */
typedef struct db_ctx {
  const char *path;
  bool need_status;
  mu_inventory *inv;
  size_t max;
} db_ctx;

/* Calls on_line for each line of a stanza and flush at each blank line and at the end (for
 * stanzas with a line); the stanza is reset after each flush. */
static int each_stanza(const char *buf, size_t len, void (*on_line)(stanza *, const char *, size_t),
                       int (*flush)(const stanza *, const db_ctx *, mu_err *), const db_ctx *c, mu_err *err) {
  line_iter it = {buf, buf + len};
  const char *l;
  size_t ll;
  stanza s = {0};
  while (next_line(&it, &l, &ll)) {
    if (!blank(l, ll)) {
      on_line(&s, l, ll);
      continue;
    }
    int rc = s.any ? flush(&s, c, err) : 0;
    memset(&s, 0, sizeof s);
    if (rc != 0) return rc;
  }
  return s.any ? flush(&s, c, err) : 0;
}

static void dpkg_line(stanza *s, const char *l, size_t ll) {
  if (l[0] == ' ' || l[0] == '\t') return; /* a continuation line */
  s->any = true;
  if (!field(l, ll, "Package", ':', s->name) && !field(l, ll, "Version", ':', s->version) &&
      !field(l, ll, "Source", ':', s->source))
    field(l, ll, "Status", ':', s->status);
}

static int dpkg_flush(const stanza *s, const db_ctx *c, mu_err *err) {
  bool installed = true;
  if (s->status[0] || c->need_status) {
    size_t n = strlen(s->status);
    installed = n >= 10 && strcmp(s->status + n - 10, " installed") == 0;
  }
  if (!installed) return 0;
  if (s->name[0] == '\0' || s->version[0] == '\0') {
    c->inv->pkgs_bad++;
    return 0;
  }
  char sname[FIELD_MAX], sver[FIELD_MAX];
  split_source(s->source, sname, sver);
  return mu_inventory_add_pkg(c->inv, MU_PKG_DPKG, s->name, s->version, sname, sver, c->path, c->max, err);
}

int mu_pkgdb_dpkg_parse(const char *buf, size_t len, const char *path, bool need_status, mu_inventory *inv,
                        size_t max_pkgs, mu_err *err) {
  db_ctx c = {path, need_status, inv, max_pkgs};
  return each_stanza(buf, len, dpkg_line, dpkg_flush, &c, err);
}

static void apk_line(stanza *s, const char *l, size_t ll) {
  s->any = true;
  if (ll < 2 || l[1] != ':') return;
  /* keys are case-sensitive: "p:" is provides, "P:" the name */
  if (l[0] == 'P') field(l, ll, "P", ':', s->name);
  else if (l[0] == 'V') field(l, ll, "V", ':', s->version);
  else if (l[0] == 'o') field(l, ll, "o", ':', s->source);
}

static int apk_flush(const stanza *s, const db_ctx *c, mu_err *err) {
  if (s->name[0] == '\0' || s->version[0] == '\0') {
    c->inv->pkgs_bad++;
    return 0;
  }
  return mu_inventory_add_pkg(c->inv, MU_PKG_APK, s->name, s->version, s->source, NULL, c->path, c->max, err);
}

int mu_pkgdb_apk_parse(const char *buf, size_t len, const char *path, mu_inventory *inv, size_t max_pkgs, mu_err *err) {
  db_ctx c = {path, false, inv, max_pkgs};
  return each_stanza(buf, len, apk_line, apk_flush, &c, err);
}

int mu_pkgdb_python_parse(const char *buf, size_t len, const char *path, mu_inventory *inv, size_t max_pkgs,
                          mu_err *err) {
  line_iter it = {buf, buf + len};
  const char *l;
  size_t ll;
  char name[FIELD_MAX] = "", version[FIELD_MAX] = "";
  while (next_line(&it, &l, &ll) && !blank(l, ll)) {
    if (name[0] == '\0' && field(l, ll, "Name", ':', name)) continue;
    if (version[0] == '\0') field(l, ll, "Version", ':', version);
  }
  if (name[0] == '\0' || version[0] == '\0') {
    inv->pkgs_bad++;
    return 0;
  }
  return mu_inventory_add_pkg(inv, MU_PKG_PYTHON, name, version, NULL, NULL, path, max_pkgs, err);
}
