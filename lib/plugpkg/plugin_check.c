/* Host fit of a plugin bundle and version ranges (plugin_check.h). */
#include "lib/plugpkg/plugin_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bundle/version.h"

#define RANGE_MAX 256
#define RANGE_MAX_PARTS 8

int mu_plugin_which(const char *name, const char *path) {
  if (name == NULL || *name == '\0' || strchr(name, '/') != NULL || path == NULL) return 0;
  const char *p = path;
  for (;;) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    char full[4096];
    if (len > 0 && len + strlen(name) + 2 < sizeof full) {
      snprintf(full, sizeof full, "%.*s/%s", (int)len, p, name);
      struct stat st;
      if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0) return 1;
    }
    if (colon == NULL) return 0;
    p = colon + 1;
  }
}

/* The usual spellings of one architecture, so "amd64" in plugin.yaml fits an x86_64 host. */
static const char *arch_norm(const char *a) {
  if (strcmp(a, "amd64") == 0 || strcmp(a, "x86-64") == 0) return "x86_64";
  if (strcmp(a, "arm64") == 0) return "aarch64";
  return a;
}

int mu_plugin_pkg_check_host(const mu_plugin_pkg *p, const mu_plugin_host_facts *host, mu_err *err) {
  if (p->abi_version != host->abi_version)
    return mu_err_set(err, MU_EINVAL, "plugin %s %s: built for ABI version %u, this agent speaks %u", p->type,
                      p->version, p->abi_version, host->abi_version);
  if (strcmp(p->os, "any") != 0 && strcmp(p->os, host->os) != 0)
    return mu_err_set(err, MU_EINVAL, "plugin %s %s: is for os %s, this host is %s", p->type, p->version, p->os,
                      host->os);
  if (strcmp(p->arch, "any") != 0 && strcmp(arch_norm(p->arch), arch_norm(host->arch)) != 0)
    return mu_err_set(err, MU_EINVAL, "plugin %s %s: is for arch %s, this host is %s", p->type, p->version, p->arch,
                      host->arch);
  const char *path = host->path_env ? host->path_env : getenv("PATH");
  if (path == NULL) path = "/usr/bin:/bin";
  for (size_t i = 0; i < p->n_binaries; i++)
    if (!mu_plugin_which(p->binaries[i], path))
      return mu_err_set(err, MU_EINVAL, "plugin %s %s: requires binary '%s', not found in PATH (%.200s)", p->type,
                        p->version, p->binaries[i], path);
  for (size_t i = 0; i < p->n_interpreters; i++)
    if (!mu_plugin_which(p->interpreters[i], path))
      return mu_err_set(err, MU_EINVAL, "plugin %s %s: requires interpreter '%s', not found in PATH (%.200s)", p->type,
                        p->version, p->interpreters[i], path);
  return 0;
}

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } range_op;

/* Splits one comparison "OPVERSION" into op and version (borrowed from part). */
static int parse_cmp(const char *part, range_op *op, const char **ver) {
  static const struct {
    const char *s;
    range_op op;
  } ops[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"<", OP_LT}, {">", OP_GT}, {"=", OP_EQ}};
  *op = OP_EQ;
  *ver = part;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    size_t n = strlen(ops[i].s);
    if (strncmp(part, ops[i].s, n) == 0) {
      *op = ops[i].op;
      *ver = part + n;
      break;
    }
  }
  return mu_bundle_version_check(*ver, NULL) == 0 ? 0 : -1;
}

/* Calls each space-separated part of range; returns the first non-zero. */
static int each_part(const char *range, int (*fn)(void *, const char *), void *arg) {
  char buf[RANGE_MAX + 1];
  if (range == NULL || strlen(range) > RANGE_MAX) return -1;
  snprintf(buf, sizeof buf, "%s", range);
  int parts = 0;
  char *save = NULL;
  for (char *tok = strtok_r(buf, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
    if (++parts > RANGE_MAX_PARTS) return -2;
    int rc = fn(arg, tok);
    if (rc != 0) return rc;
  }
  return parts == 0 ? -3 : 0;
}

typedef struct check_ctx {
  mu_err *err;
} check_ctx;

static int check_part(void *arg, const char *part) {
  check_ctx *c = arg;
  range_op op;
  const char *ver;
  if (parse_cmp(part, &op, &ver) != 0) {
    mu_err_set(c->err, MU_EINVAL, "plugin_version: bad comparison '%s' (want e.g. \">=1.2 <2\")", part);
    return -4;
  }
  return 0;
}

int mu_version_range_check(const char *range, mu_err *err) {
  check_ctx c = {err};
  int rc = each_part(range, check_part, &c);
  if (rc == -1) return mu_err_set(err, MU_EINVAL, "plugin_version: empty or longer than %d bytes", RANGE_MAX);
  if (rc == -2) return mu_err_set(err, MU_EINVAL, "plugin_version: more than %d comparisons", RANGE_MAX_PARTS);
  if (rc == -3) return mu_err_set(err, MU_EINVAL, "plugin_version: empty (want e.g. \">=1.2 <2\")");
  return rc == 0 ? 0 : MU_EINVAL;
}

static int match_part(void *arg, const char *part) {
  const char *version = arg;
  range_op op;
  const char *ver;
  if (parse_cmp(part, &op, &ver) != 0) return 1;
  int c = mu_bundle_version_cmp(version, ver);
  int ok = 0;
  switch (op) {
    case OP_EQ: ok = c == 0; break;
    case OP_NE: ok = c != 0; break;
    case OP_LT: ok = c < 0; break;
    case OP_LE: ok = c <= 0; break;
    case OP_GT: ok = c > 0; break;
    case OP_GE: ok = c >= 0; break;
  }
  return ok ? 0 : 1;
}

int mu_version_range_match(const char *range, const char *version) {
  if (version == NULL || mu_bundle_version_check(version, NULL) != 0) return 0;
  return each_part(range, match_part, (void *)version) == 0;
}
