/* OSV records to index lines (see osv.h), with jansson. Every string that goes into a line is
 * checked for the characters the line format uses, so a hostile record cannot add a line,
 * a field or an event. */
#include "lib/imagescan/osv.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MU_OSV_NAME_MAX 256
#define MU_OSV_MAX_ALIASES 32
#define MU_OSV_MAX_EVENTS 256

int mu_textbuf_append(mu_textbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *nd = realloc(b->data, cap);
    if (nd == NULL) return MU_ENOMEM;
    b->data = nd;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static int put(mu_textbuf *b, const char *s) { return mu_textbuf_append(b, s, strlen(s)); }

bool mu_osv_ecosystem_scheme(const char *eco, mu_ver_scheme *ret) {
  static const struct {
    const char *name;
    mu_ver_scheme s;
  } known[] = {{"Debian", MU_VER_DEB}, {"Ubuntu", MU_VER_DEB}, {"Alpine", MU_VER_APK}, {"PyPI", MU_VER_PEP440}};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
    size_t l = strlen(known[i].name);
    if (strncmp(eco, known[i].name, l) == 0 && (eco[l] == '\0' || (eco[l] == ':' && eco[l + 1] != '\0'))) {
      *ret = known[i].s;
      return true;
    }
  }
  return false;
}

void mu_pypi_normalize(const char *name, char *out, size_t cap) {
  size_t n = 0;
  bool dash = false;
  for (const char *p = name; *p && n + 2 < cap; p++) {
    if (*p == '-' || *p == '_' || *p == '.') {
      dash = true;
      continue;
    }
    if (dash && n > 0) out[n++] = '-';
    dash = false;
    out[n++] = (char)tolower((unsigned char)*p);
  }
  out[n] = '\0';
}

/* Safe in a line: printable, no tab, and none of extra. */
static bool clean_text(const char *s, size_t max, const char *extra) {
  size_t n = 0;
  for (; s[n]; n++) {
    unsigned char c = (unsigned char)s[n];
    if (c < 0x20 || c == 0x7f || strchr(extra, c) != NULL) return false;
  }
  return n > 0 && n <= max;
}

static const char *severity_word(const char *s) {
  if (s == NULL) return NULL;
  if (strcasecmp(s, "critical") == 0) return "CRITICAL";
  if (strcasecmp(s, "high") == 0 || strcasecmp(s, "important") == 0) return "HIGH";
  if (strcasecmp(s, "medium") == 0 || strcasecmp(s, "moderate") == 0) return "MEDIUM";
  if (strcasecmp(s, "low") == 0 || strcasecmp(s, "negligible") == 0) return "LOW";
  return NULL;
}

/* The record's severity: a word in database_specific, else the best CVSS v3 score. */
static const char *record_severity(json_t *rec, json_t *affected_entry) {
  const char *w = NULL;
  if (affected_entry != NULL) {
    w = severity_word(
        json_string_value(json_object_get(json_object_get(affected_entry, "database_specific"), "severity")));
    if (w == NULL)
      w = severity_word(
          json_string_value(json_object_get(json_object_get(affected_entry, "ecosystem_specific"), "severity")));
  }
  if (w == NULL)
    w = severity_word(json_string_value(json_object_get(json_object_get(rec, "database_specific"), "severity")));
  if (w != NULL) return w;
  double best = -1;
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(rec, "severity"), i, s) {
    const char *score = json_string_value(json_object_get(s, "score"));
    if (score == NULL) continue;
    double v = mu_cvss3_base_score(score);
    if (v < 0) {
      char *end = NULL;
      double num = strtod(score, &end);
      if (end != score && *end == '\0' && num >= 0 && num <= 10) v = num;
    }
    if (v > best) best = v;
  }
  return mu_severity_of_score(best);
}

static int bad(mu_err *err, const char *id, const char *fmt, const char *a, const char *b) {
  char what[300];
  snprintf(what, sizeof what, fmt, a, b);
  return mu_err_set(err, MU_EINVAL, "record %s: %s", id[0] ? id : "(no id)", what);
}

/* ranges[] of one affected entry into out ("i:0;f:1.2|..."). */
static int ranges_text(json_t *aff, size_t ai, mu_ver_scheme scheme, const char *id, mu_textbuf *out, mu_err *err) {
  json_t *ranges = json_object_get(aff, "ranges");
  if (ranges != NULL && !json_is_array(ranges)) return bad(err, id, "affected[%s].ranges is not a list%s", "", "");
  size_t ri, ei;
  json_t *r, *ev;
  bool first_range = true;
  char where[64];
  json_array_foreach(ranges, ri, r) {
    const char *type = json_string_value(json_object_get(r, "type"));
    json_t *events = json_object_get(r, "events");
    snprintf(where, sizeof where, "affected[%zu].ranges[%zu]", ai, ri);
    if (type == NULL || !json_is_array(events)) return bad(err, id, "%s: no type or no events list%s", where, "");
    if (strcmp(type, "ECOSYSTEM") != 0) continue; /* GIT and SEMVER ranges say nothing about packages here */
    if (json_array_size(events) > MU_OSV_MAX_EVENTS) return bad(err, id, "%s: too many events%s", where, "");
    if (!first_range && put(out, "|") != 0) return MU_ENOMEM;
    first_range = false;
    bool first_ev = true;
    json_array_foreach(events, ei, ev) {
      static const char *const keys[] = {"introduced", "fixed", "last_affected", "limit"};
      static const char tags[] = {'i', 'f', 'l', 0};
      const char *v = NULL;
      size_t k = 0;
      for (; k < 4 && v == NULL; k++) v = json_string_value(json_object_get(ev, keys[k]));
      if (v == NULL) return bad(err, id, "%s: an event is not introduced/fixed/last_affected/limit%s", where, "");
      k--;
      if (tags[k] == 0) continue; /* limit: for GIT ranges only */
      bool zero = tags[k] == 'i' && strcmp(v, "0") == 0;
      if (!zero && (!mu_ver_valid(scheme, v) || !clean_text(v, MU_VER_MAX, "|;,")))
        return mu_err_set(err, MU_EINVAL, "record %s: %s: %s \"%.80s\" is not a valid %s version", id, where, keys[k],
                          v, mu_ver_scheme_name(scheme));
      char head[3] = {tags[k], ':', '\0'};
      if ((!first_ev && put(out, ";") != 0) || put(out, head) != 0 || put(out, v) != 0) return MU_ENOMEM;
      first_ev = false;
    }
  }
  return 0;
}

/* versions[] into out: a listed version that is not valid in the scheme is dropped and
 * counted (it can never equal an installed version, which is matched only when valid); one
 * that is not a string, or holds a separator, refuses the record. */
static int versions_text(json_t *aff, size_t ai, mu_ver_scheme scheme, const char *id, mu_textbuf *out,
                         size_t *ret_dropped, mu_err *err) {
  json_t *vs = json_object_get(aff, "versions");
  if (vs == NULL) return 0;
  if (!json_is_array(vs)) return bad(err, id, "affected[%s].versions is not a list%s", "", "");
  size_t i;
  json_t *v;
  bool first = true;
  json_array_foreach(vs, i, v) {
    const char *s = json_string_value(v);
    if (s == NULL || !clean_text(s, MU_VER_MAX, "|;,"))
      return mu_err_set(err, MU_EINVAL, "record %s: affected[%zu].versions[%zu] \"%.80s\" is not a valid %s version",
                        id, ai, i, s ? s : "(not a string)", mu_ver_scheme_name(scheme));
    if (!mu_ver_valid(scheme, s)) {
      (*ret_dropped)++;
      continue;
    }
    if ((!first && put(out, "|") != 0) || put(out, s) != 0) return MU_ENOMEM;
    first = false;
  }
  return 0;
}

int mu_osv_record_lines(const char *buf, size_t len, mu_textbuf *out, mu_osv_result *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  json_error_t je;
  json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  mu_textbuf line = {0};
  size_t out_len0 = out->len;
  int rc = 0;
  if (rec == NULL) return mu_err_set(err, MU_EINVAL, "not JSON: line %d: %s", je.line, je.text);
  if (!json_is_object(rec)) {
    rc = mu_err_set(err, MU_EINVAL, "not an OSV record (a JSON object)");
    goto done;
  }
  const char *id = json_string_value(json_object_get(rec, "id"));
  if (id == NULL || !clean_text(id, MU_OSV_ID_MAX, "|;, ")) {
    rc = mu_err_set(err, MU_EINVAL, "no string \"id\" of up to %d plain characters", MU_OSV_ID_MAX);
    goto done;
  }
  snprintf(ret->id, sizeof ret->id, "%s", id);
  if (json_string_value(json_object_get(rec, "withdrawn")) != NULL) {
    ret->withdrawn = true;
    goto done;
  }
  json_t *affected = json_object_get(rec, "affected");
  if (affected != NULL && !json_is_array(affected)) {
    rc = bad(err, id, "\"affected\" is not a list%s%s", "", "");
    goto done;
  }
  char aliases[2048] = "";
  size_t ai;
  json_t *a;
  json_array_foreach(json_object_get(rec, "aliases"), ai, a) {
    const char *s = json_string_value(a);
    if (ai >= MU_OSV_MAX_ALIASES || s == NULL || !clean_text(s, MU_OSV_ID_MAX, "|;, ")) continue;
    size_t l = strlen(aliases);
    snprintf(aliases + l, sizeof aliases - l, "%s%s", l ? "," : "", s);
  }
  char published[16] = "";
  const char *pub = json_string_value(json_object_get(rec, "published"));
  if (pub != NULL && clean_text(pub, 64, "|;,")) snprintf(published, sizeof published, "%.10s", pub);
  json_array_foreach(affected, ai, a) {
    json_t *pkg = json_object_get(a, "package");
    const char *eco = json_string_value(json_object_get(pkg, "ecosystem"));
    const char *name = json_string_value(json_object_get(pkg, "name"));
    if (!json_is_object(a) || eco == NULL || name == NULL) {
      char where[32];
      snprintf(where, sizeof where, "affected[%zu]", ai);
      rc = bad(err, id, "%s: no package.ecosystem and package.name%s", where, "");
      goto done;
    }
    mu_ver_scheme scheme;
    if (!mu_osv_ecosystem_scheme(eco, &scheme)) {
      ret->skipped_eco++;
      continue;
    }
    if (!clean_text(eco, 64, "|;,") || !clean_text(name, MU_OSV_NAME_MAX, "|;, ")) {
      rc = bad(err, id, "package \"%.80s\" of %.40s: a name the index cannot hold", name, eco);
      goto done;
    }
    char norm[MU_OSV_NAME_MAX + 1];
    if (scheme == MU_VER_PEP440) mu_pypi_normalize(name, norm, sizeof norm);
    else snprintf(norm, sizeof norm, "%s", name);
    line.len = 0;
    if (put(&line, eco) || put(&line, "\t") || put(&line, norm) || put(&line, "\t") || put(&line, id) ||
        put(&line, "\t") || put(&line, record_severity(rec, a)) || put(&line, "\t") || put(&line, published) ||
        put(&line, "\t") || put(&line, aliases) || put(&line, "\t")) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto done;
    }
    rc = ranges_text(a, ai, scheme, id, &line, err);
    if (rc == 0 && put(&line, "\t") != 0) rc = MU_ENOMEM;
    if (rc == 0) rc = versions_text(a, ai, scheme, id, &line, &ret->versions_dropped, err);
    if (rc == 0 && put(&line, "\n") != 0) rc = MU_ENOMEM;
    if (rc == 0 && mu_textbuf_append(out, line.data, line.len) != 0) rc = MU_ENOMEM;
    if (rc == MU_ENOMEM) mu_err_set(err, MU_ENOMEM, "out of memory");
    if (rc != 0) goto done;
    ret->lines++;
  }
done:
  if (rc != 0) {
    out->len = out_len0; /* nothing of a refused record stays */
    if (out->data) out->data[out->len] = '\0';
    ret->lines = 0;
  }
  free(line.data);
  json_decref(rec);
  return rc;
}
