/* The inventory's lists: appending packages and risky facts, sorting, freeing (see
 * inventory.h). The layer walk that fills them is layers.c. */
#include "lib/imagescan/inventory.h"

#include <stdlib.h>
#include <string.h>

int mu_inventory_add_pkg(mu_inventory *inv, mu_pkg_kind kind, const char *name, const char *version, const char *source,
                         const char *source_version, const char *path, size_t max, mu_err *err) {
  if (max && inv->n_pkgs >= max)
    return mu_err_set(err, MU_ENOSPC, "%s: more than %zu packages in the image (the package bound)", path, max);
  if (inv->n_pkgs == inv->cap_pkgs) {
    size_t cap = inv->cap_pkgs ? inv->cap_pkgs * 2 : 64;
    mu_pkg *np = realloc(inv->pkgs, cap * sizeof *np);
    if (np == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    inv->pkgs = np;
    inv->cap_pkgs = cap;
  }
  mu_pkg *p = &inv->pkgs[inv->n_pkgs];
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->name = strdup(name);
  p->version = strdup(version);
  p->path = strdup(path);
  if (source && *source && strcmp(source, name) != 0) p->source = strdup(source);
  if (source_version && *source_version && strcmp(source_version, version) != 0) {
    p->source_version = strdup(source_version);
    if (p->source == NULL) p->source = strdup(name);
  }
  inv->n_pkgs++;
  if (p->name == NULL || p->version == NULL || p->path == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return 0;
}

void mu_inventory_add_risk(mu_inventory *inv, mu_risk_kind kind, const char *path, const char *detail, size_t max) {
  if (max == 0) max = 1000;
  if (inv->n_risks >= max) {
    inv->risks_dropped++;
    return;
  }
  if (inv->n_risks == inv->cap_risks) {
    size_t cap = inv->cap_risks ? inv->cap_risks * 2 : 16;
    mu_risk *nr = realloc(inv->risks, cap * sizeof *nr);
    if (nr == NULL) {
      inv->risks_dropped++;
      return;
    }
    inv->risks = nr;
    inv->cap_risks = cap;
  }
  mu_risk *r = &inv->risks[inv->n_risks];
  r->kind = kind;
  r->path = strdup(path ? path : "");
  r->detail = strdup(detail ? detail : "");
  if (r->path == NULL || r->detail == NULL) {
    free(r->path);
    free(r->detail);
    inv->risks_dropped++;
    return;
  }
  inv->n_risks++;
}

static int strcmp0(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

static int pkg_order(const void *x, const void *y) {
  const mu_pkg *a = x, *b = y;
  if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
  int c = strcmp(a->name, b->name);
  if (c == 0) c = strcmp(a->version, b->version);
  return c != 0 ? c : strcmp(a->path, b->path);
}

static int risk_order(const void *x, const void *y) {
  const mu_risk *a = x, *b = y;
  if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
  int c = strcmp0(a->path, b->path);
  return c != 0 ? c : strcmp0(a->detail, b->detail);
}

void mu_inventory_sort(mu_inventory *inv) {
  if (inv->n_pkgs) qsort(inv->pkgs, inv->n_pkgs, sizeof *inv->pkgs, pkg_order);
  if (inv->n_risks) qsort(inv->risks, inv->n_risks, sizeof *inv->risks, risk_order);
}

void mu_inventory_free(mu_inventory *inv) {
  for (size_t i = 0; i < inv->n_pkgs; i++) {
    mu_pkg *p = &inv->pkgs[i];
    free(p->name);
    free(p->version);
    free(p->source);
    free(p->source_version);
    free(p->path);
  }
  for (size_t i = 0; i < inv->n_risks; i++) {
    free(inv->risks[i].path);
    free(inv->risks[i].detail);
  }
  free(inv->pkgs);
  free(inv->risks);
  memset(inv, 0, sizeof *inv);
}

const char *mu_pkg_kind_name(mu_pkg_kind k) {
  switch (k) {
    case MU_PKG_DPKG: return "dpkg";
    case MU_PKG_APK: return "apk";
    case MU_PKG_PYTHON: return "python";
  }
  return "?";
}

const char *mu_risk_kind_name(mu_risk_kind k) {
  switch (k) {
    case MU_RISK_SETUID: return "setuid";
    case MU_RISK_SETGID: return "setgid";
    case MU_RISK_WORLD_WRITABLE_DIR: return "world-writable-dir";
    case MU_RISK_SECRET: return "secret";
    case MU_RISK_ROOT_USER: return "root-user";
  }
  return "?";
}
