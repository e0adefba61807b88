/* Inventory x feed -> findings (see match.h). */
#define _GNU_SOURCE /* qsort_r */
#include "lib/imagescan/match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/imagescan/osv.h"

#define MAX_EVENTS 256

const char *mu_finding_severity_name(mu_severity s) {
  static const char *const names[] = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"};
  return s < MU_SEV_COUNT ? names[s] : "UNKNOWN";
}

mu_severity mu_finding_severity_parse(const char *s) {
  for (int i = 0; i < MU_SEV_COUNT; i++)
    if (s && strcasecmp(s, mu_finding_severity_name((mu_severity)i)) == 0) return (mu_severity)i;
  return MU_SEV_COUNT;
}

typedef struct event {
  char tag;      /* 'i', 'f', 'l' */
  const char *v; /* "0" for introduced 0 */
  size_t len;
} event;

/* Compares an event's version with v ("0" introduced is below everything). */
static int ev_cmp(mu_ver_scheme s, const event *e, const char *v) {
  char buf[MU_VER_MAX + 1];
  if (e->tag == 'i' && e->len == 1 && e->v[0] == '0') return -1;
  snprintf(buf, sizeof buf, "%.*s", (int)e->len, e->v);
  int c = 0;
  if (mu_ver_compare(s, buf, v, &c, NULL) != 0) return strcmp(buf, v);
  return c;
}

static int ev_ev_cmp(mu_ver_scheme s, const event *a, const event *b) {
  char buf[MU_VER_MAX + 1];
  snprintf(buf, sizeof buf, "%.*s", (int)b->len, b->v);
  if (b->tag == 'i' && b->len == 1 && b->v[0] == '0') return a->tag == 'i' && a->len == 1 && a->v[0] == '0' ? 0 : 1;
  return ev_cmp(s, a, buf);
}

/* One range "i:0;f:1.2": affected? fixed-in into fixed. */
static bool range_affects(mu_ver_scheme s, const char *range, size_t rlen, const char *v, char *fixed) {
  event ev[MAX_EVENTS];
  size_t n = 0;
  for (const char *p = range; p < range + rlen && n < MAX_EVENTS;) {
    const char *semi = memchr(p, ';', (size_t)(range + rlen - p));
    const char *e = semi ? semi : range + rlen;
    if (e - p >= 3 && p[1] == ':') ev[n++] = (event){p[0], p + 2, (size_t)(e - p - 2)};
    p = e + 1;
  }
  /* insertion sort by version (events are few) */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && ev_ev_cmp(s, &ev[j - 1], &ev[j]) > 0; j--) {
      event t = ev[j];
      ev[j] = ev[j - 1];
      ev[j - 1] = t;
    }
  bool affected = false;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    int c = ev_cmp(s, &ev[i], v); /* event version vs installed */
    if (ev[i].tag == 'i' && c <= 0) affected = true;
    else if (ev[i].tag == 'f' && c <= 0) affected = false;
    else if (ev[i].tag == 'l' && c < 0) affected = false;
    if (c <= 0) at = i + 1;
  }
  if (!affected) return false;
  fixed[0] = '\0';
  for (size_t i = at; i < n; i++)
    if (ev[i].tag == 'f') {
      snprintf(fixed, MU_VER_MAX + 1, "%.*s", (int)ev[i].len, ev[i].v);
      break;
    }
  return true;
}

bool mu_match_entry(mu_ver_scheme s, const char *v, const mu_feed_entry *e, char fixed[MU_VER_MAX + 1]) {
  fixed[0] = '\0';
  bool hit = false;
  for (const char *p = e->ranges; *p;) {
    const char *bar = strchr(p, '|');
    size_t l = bar ? (size_t)(bar - p) : strlen(p);
    char f[MU_VER_MAX + 1];
    if (range_affects(s, p, l, v, f)) {
      /* several ranges may hold it: keep the lowest fix */
      int c = 0;
      if (!hit || (f[0] && (fixed[0] == '\0' || (mu_ver_compare(s, f, fixed, &c, NULL) == 0 && c < 0))))
        snprintf(fixed, MU_VER_MAX + 1, "%s", f);
      hit = true;
    }
    p += l;
    if (*p == '|') p++;
  }
  for (const char *p = e->versions; *p && !hit;) {
    const char *bar = strchr(p, '|');
    size_t l = bar ? (size_t)(bar - p) : strlen(p);
    char one[MU_VER_MAX + 1];
    snprintf(one, sizeof one, "%.*s", (int)l, p);
    int c = 1;
    if (mu_ver_compare(s, one, v, &c, NULL) == 0 && c == 0) hit = true;
    p += l;
    if (*p == '|') p++;
  }
  return hit;
}

static int add(mu_findings *f, size_t pkg, const mu_feed_entry *e, const char *fixed, mu_err *err) {
  for (size_t i = f->n; i-- > 0 && f->v[i].pkg == pkg;)
    if (strcmp(f->v[i].id, e->id) == 0) return 0; /* found under its source and its own name */
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 64;
    mu_finding *nv = realloc(f->v, cap * sizeof *nv);
    if (nv == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    f->v = nv;
    f->cap = cap;
  }
  mu_finding *x = &f->v[f->n];
  memset(x, 0, sizeof *x);
  x->pkg = pkg;
  x->severity = mu_finding_severity_parse(e->severity);
  if (x->severity == MU_SEV_COUNT) x->severity = MU_SEV_UNKNOWN;
  x->id = strdup(e->id);
  x->aliases = strdup(e->aliases);
  x->fixed = strdup(fixed);
  x->published = strdup(e->published);
  x->ecosystem = strdup(e->ecosystem);
  f->n++;
  if (!x->id || !x->aliases || !x->fixed || !x->published || !x->ecosystem)
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  f->count[x->severity]++;
  return 0;
}

/* The ecosystems to search for a package of kind on os. */
static size_t ecosystems(const mu_os *os, mu_pkg_kind kind, char out[3][80], mu_ver_scheme *scheme) {
  if (kind == MU_PKG_PYTHON) {
    *scheme = MU_VER_PEP440;
    snprintf(out[0], 80, "PyPI");
    return 1;
  }
  if (kind == MU_PKG_APK) {
    *scheme = MU_VER_APK;
    snprintf(out[0], 80, "Alpine");
    int major = 0, minor = 0;
    if (sscanf(os->version_id, "%d.%d", &major, &minor) == 2) {
      snprintf(out[1], 80, "Alpine:v%d.%d", major, minor);
      return 2;
    }
    return 1;
  }
  *scheme = MU_VER_DEB;
  const char *base = strcmp(os->id, "ubuntu") == 0 ? "Ubuntu" : "Debian";
  snprintf(out[0], 80, "%s", base);
  if (os->version_id[0] == '\0') return 1;
  snprintf(out[1], 80, "%s:%s", base, os->version_id);
  if (strcmp(base, "Ubuntu") != 0) return 2;
  snprintf(out[2], 80, "Ubuntu:%s:LTS", os->version_id); /* OSV's name for LTS releases */
  return 3;
}

static int finding_order(const void *x, const void *y, void *arg) {
  const mu_finding *a = x, *b = y;
  const mu_inventory *inv = arg;
  if (a->severity != b->severity) return a->severity < b->severity ? -1 : 1;
  int c = strcmp(inv->pkgs[a->pkg].name, inv->pkgs[b->pkg].name);
  if (c == 0 && a->pkg != b->pkg) c = a->pkg < b->pkg ? -1 : 1;
  return c != 0 ? c : strcmp(a->id, b->id);
}

static int match_pkg(const mu_inventory *inv, const mu_feed *feed, size_t pi, char *scratch, mu_findings *ret,
                     mu_err *err) {
  const mu_pkg *p = &inv->pkgs[pi];
  char ecos[3][80];
  mu_ver_scheme scheme;
  size_t n_ecos = ecosystems(&inv->os, p->kind, ecos, &scheme);
  /* (name, version) pairs: the source package first, then the package itself */
  const char *names[2] = {p->source ? p->source : p->name, p->source ? p->name : NULL};
  const char *versions[2] = {p->source_version ? p->source_version : p->version, p->version};
  for (int k = 0; k < 2 && names[k]; k++) {
    if (!mu_ver_valid(scheme, versions[k])) {
      ret->pkgs_bad_version++;
      continue;
    }
    char norm[300];
    if (scheme == MU_VER_PEP440) mu_pypi_normalize(names[k], norm, sizeof norm);
    else snprintf(norm, sizeof norm, "%s", names[k]);
    for (size_t ei = 0; ei < n_ecos; ei++) {
      size_t first, n = mu_feed_lookup(feed, ecos[ei], norm, &first);
      for (size_t li = first; li < first + n; li++) {
        mu_feed_entry e;
        char fixed[MU_VER_MAX + 1];
        if (!mu_feed_entry_parse(feed->lines[li], scratch, &e)) continue;
        if (!mu_match_entry(scheme, versions[k], &e, fixed)) continue;
        int rc = add(ret, pi, &e, fixed, err);
        if (rc != 0) return rc;
      }
    }
  }
  return 0;
}

int mu_match(const mu_inventory *inv, const mu_feed *feed, mu_findings *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  char *scratch = malloc(feed->longest + 1); /* room for any line */
  if (scratch == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc = 0;
  for (size_t i = 0; i < inv->n_pkgs && rc == 0; i++) rc = match_pkg(inv, feed, i, scratch, ret, err);
  free(scratch);
  if (rc == 0 && ret->n > 1) qsort_r(ret->v, ret->n, sizeof *ret->v, finding_order, (void *)inv);
  return rc;
}

void mu_findings_free(mu_findings *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->v[i].id);
    free(f->v[i].aliases);
    free(f->v[i].fixed);
    free(f->v[i].published);
    free(f->v[i].ecosystem);
  }
  free(f->v);
  memset(f, 0, sizeof *f);
}
