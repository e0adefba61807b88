/* The scan result object (see report.h). Strings from the image (paths, names, versions) may
 * be any bytes: a string that is not UTF-8 is printed with '?' for every byte above 0x7e. */
#include "lib/imagescan/report.h"

#include <stdlib.h>
#include <string.h>

bool mu_user_is_root(const char *user) {
  if (user == NULL || *user == '\0') return true;
  size_t l = strcspn(user, ":");
  return (l == 4 && strncmp(user, "root", 4) == 0) || (l == 1 && user[0] == '0');
}

/* A JSON string of s, made ASCII when it is not UTF-8. */
static json_t *js(const char *s) {
  json_t *j = json_string(s ? s : "");
  if (j != NULL) return j;
  char *c = strdup(s);
  if (c == NULL) return NULL;
  for (char *p = c; *p; p++)
    if ((unsigned char)*p > 0x7e) *p = '?';
  j = json_string(c);
  free(c);
  return j;
}

static void set(json_t *o, const char *k, json_t *v) { json_object_set_new(o, k, v); }

static json_t *aliases_json(const char *s) {
  json_t *a = json_array();
  for (const char *p = s; a && *p;) {
    size_t l = strcspn(p, ",");
    if (l) json_array_append_new(a, json_stringn(p, l));
    p += l;
    if (*p == ',') p++;
  }
  return a;
}

static json_t *finding_json(const mu_inventory *inv, const mu_finding *x) {
  const mu_pkg *p = &inv->pkgs[x->pkg];
  json_t *o = json_object();
  set(o, "severity", json_string(mu_finding_severity_name(x->severity)));
  set(o, "id", js(x->id));
  set(o, "aliases", aliases_json(x->aliases));
  set(o, "package", js(p->name));
  set(o, "packageKind", json_string(mu_pkg_kind_name(p->kind)));
  set(o, "installedVersion", js(p->version));
  set(o, "source", js(p->source));
  set(o, "sourceVersion", js(p->source_version));
  set(o, "fixedIn", js(x->fixed));
  set(o, "ecosystem", js(x->ecosystem));
  set(o, "published", js(x->published));
  set(o, "path", js(p->path));
  return o;
}

json_t *mu_scan_result_json(const mu_scan_meta *m, const mu_inventory *inv, const mu_findings *f) {
  size_t per_kind[3] = {0};
  for (size_t i = 0; i < inv->n_pkgs; i++) per_kind[inv->pkgs[i].kind]++;
  json_t *o = json_object(), *findings = json_array(), *risks = json_array();
  if (o == NULL || findings == NULL || risks == NULL) {
    json_decref(o);
    json_decref(findings);
    json_decref(risks);
    return NULL;
  }
  for (size_t i = 0; i < f->n; i++) json_array_append_new(findings, finding_json(inv, &f->v[i]));
  for (size_t i = 0; i < inv->n_risks; i++) {
    const mu_risk *r = &inv->risks[i];
    json_t *ro = json_object();
    set(ro, "riskKind", json_string(mu_risk_kind_name(r->kind)));
    set(ro, "path", js(r->path));
    set(ro, "detail", js(r->detail));
    json_array_append_new(risks, ro);
  }
  set(o, "image", js(m->image));
  set(o, "digest", js(m->digest));
  set(o, "feedVersion", js(m->feed_version ? m->feed_version : "none"));
  set(o, "feedRecords", json_integer((json_int_t)m->feed_records));
  set(o, "user", js(m->user));
  set(o, "os",
      json_pack("{s:o, s:o, s:o, s:o}", "id", js(inv->os.id), "versionId", js(inv->os.version_id), "codename",
                js(inv->os.codename), "prettyName", js(inv->os.pretty)));
  set(o, "packages",
      json_pack("{s:I, s:I, s:I, s:I}", "dpkg", (json_int_t)per_kind[MU_PKG_DPKG], "apk",
                (json_int_t)per_kind[MU_PKG_APK], "python", (json_int_t)per_kind[MU_PKG_PYTHON], "total",
                (json_int_t)inv->n_pkgs));
  set(o, "packagesSkipped", json_integer((json_int_t)inv->pkgs_bad));
  set(o, "packagesBadVersion", json_integer((json_int_t)f->pkgs_bad_version));
  set(o, "counts",
      json_pack("{s:I, s:I, s:I, s:I, s:I}", "critical", (json_int_t)f->count[MU_SEV_CRITICAL], "high",
                (json_int_t)f->count[MU_SEV_HIGH], "medium", (json_int_t)f->count[MU_SEV_MEDIUM], "low",
                (json_int_t)f->count[MU_SEV_LOW], "unknown", (json_int_t)f->count[MU_SEV_UNKNOWN]));
  set(o, "findings", findings);
  set(o, "risks", risks);
  set(o, "risksDropped", json_integer((json_int_t)inv->risks_dropped));
  return o;
}
