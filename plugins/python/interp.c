/* Interpreter discovery and selection for the python task type. Discovery runs once, when
 * the agent loads the plugin, and only stats and resolves paths (never runs an interpreter):
 * the version comes from the file name (python3.11 -> "3.11") and, for a pyenv-style install
 * dir (.../versions/3.11.7/bin/python3.11), from the directory name. */
#define _GNU_SOURCE
#include "plugins/python/interp.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "python3.11" -> "3.11"; NULL when the name is not python<digits>[.<digits>]. */
static const char *name_version(const char *base) {
  if (strncmp(base, "python", 6) != 0) return NULL;
  const char *v = base + 6, *p = v;
  if (!isdigit((unsigned char)*p)) return NULL;
  while (isdigit((unsigned char)*p)) p++;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p)) return NULL;
    while (isdigit((unsigned char)*p)) p++;
  }
  return *p == '\0' ? v : NULL;
}

/* ".../versions/3.11.7/bin/python3.11" -> "3.11.7" when it extends the name's version. */
static void dir_version(const char *real, const char *namever, char *out, size_t cap) {
  snprintf(out, cap, "%s", namever);
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", real);
  char *slash = strrchr(buf, '/');
  if (slash == NULL) return;
  *slash = '\0'; /* .../3.11.7/bin */
  slash = strrchr(buf, '/');
  if (slash == NULL || strcmp(slash, "/bin") != 0) return;
  *slash = '\0'; /* .../3.11.7 */
  const char *leaf = strrchr(buf, '/');
  leaf = leaf ? leaf + 1 : buf;
  size_t n = strlen(namever);
  if (strncmp(leaf, namever, n) != 0 || leaf[n] != '.') return;
  for (const char *p = leaf + n + 1; *p; p++)
    if (!isdigit((unsigned char)*p) && *p != '.') return;
  snprintf(out, cap, "%s", leaf);
}

static void add(py_interp_table *t, const char *path) {
  struct stat sb;
  char real[PATH_MAX];
  if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || access(path, X_OK) != 0) return;
  if (strlen(path) >= PY_PATH_MAX || realpath(path, real) == NULL || strlen(real) >= PY_PATH_MAX) return;
  const char *rb = strrchr(real, '/');
  const char *pb = strrchr(path, '/');
  const char *ver = name_version(rb ? rb + 1 : real);
  if (ver == NULL) ver = name_version(pb ? pb + 1 : path); /* a copy under another name */
  if (ver == NULL) return;
  for (int i = 0; i < t->n; i++) {
    py_interp *e = &t->items[i];
    if (strcmp(e->path, real) != 0) continue;
    for (int a = 0; a < e->n_aliases; a++)
      if (strcmp(e->aliases[a], path) == 0) return;
    if (e->n_aliases < PY_ALIAS_MAX) snprintf(e->aliases[e->n_aliases++], PY_PATH_MAX, "%s", path);
    return;
  }
  if (t->n >= PY_INTERP_MAX) {
    fprintf(stderr, "python plugin: more than %d interpreters; ignoring %s\n", PY_INTERP_MAX, path);
    return;
  }
  py_interp *e = &t->items[t->n++];
  memset(e, 0, sizeof *e);
  snprintf(e->path, sizeof e->path, "%s", real);
  dir_version(real, ver, e->version, sizeof e->version);
  e->major = atoi(e->version);
  snprintf(e->aliases[0], PY_PATH_MAX, "%s", real);
  e->n_aliases = 1;
  if (strcmp(path, real) != 0) snprintf(e->aliases[e->n_aliases++], PY_PATH_MAX, "%s", path);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Adds dir/<prefix>* in name order (so the distro's "python3" link comes before python3.x). */
static void scan(py_interp_table *t, const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  char *names[256];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < sizeof names / sizeof *names) {
    if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || name_version(de->d_name) == NULL) continue;
    names[n] = strdup(de->d_name);
    if (names[n] != NULL) n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    add(t, path);
    free(names[i]);
  }
}

void py_interp_discover(py_interp_table *t, const char *extra) {
  memset(t, 0, sizeof *t);
  scan(t, "/usr/bin", "python3");
  scan(t, "/usr/local/bin", "python3");
  scan(t, "/usr/bin", "python2");
  if (extra == NULL) return;
  char buf[8192];
  snprintf(buf, sizeof buf, "%s", extra);
  char *save = NULL;
  for (char *p = strtok_r(buf, ":,", &save); p != NULL; p = strtok_r(NULL, ":,", &save)) {
    while (isspace((unsigned char)*p)) p++;
    if (*p == '/') add(t, p);
    else if (*p != '\0')
      fprintf(stderr, "python plugin: MUSTER_PYTHON_INTERPRETERS: \"%s\" is not an absolute path\n", p);
  }
}

/* want is "3", "3.11" or "3.11.7": v equals it or extends it at a dot. */
static int version_matches(const char *v, const char *want) {
  size_t n = strlen(want);
  return strncmp(v, want, n) == 0 && (v[n] == '\0' || v[n] == '.');
}

const py_interp *py_interp_find(const py_interp_table *t, const char *want) {
  if (want == NULL || *want == '\0') {
    for (int i = 0; i < t->n; i++)
      if (t->items[i].major == 3) return &t->items[i];
    return t->n > 0 ? &t->items[0] : NULL;
  }
  if (want[0] == '/') {
    for (int i = 0; i < t->n; i++)
      for (int a = 0; a < t->items[i].n_aliases; a++)
        if (strcmp(t->items[i].aliases[a], want) == 0) return &t->items[i];
    return NULL;
  }
  for (int i = 0; i < t->n; i++)
    if (version_matches(t->items[i].version, want)) return &t->items[i];
  return NULL;
}

void py_interp_list(const py_interp_table *t, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < t->n && n < cap; i++) {
    int w = snprintf(buf + n, cap - n, "%s%s %s", i ? ", " : "", t->items[i].version, t->items[i].path);
    if (w < 0) break;
    n += (size_t)w;
  }
  if (t->n == 0) snprintf(buf, cap, "none");
}
