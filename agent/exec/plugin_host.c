/* Loading task-type plugins with dlopen: check the exported descriptor (ABI version, type
 * name, callbacks), refuse duplicates, and keep a small table for lookups and for Hello. */
#include "agent/exec/plugin_host.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/exec/plugin_env.h"
#include "lib/base/log.h"

typedef struct entry {
  const muster_plugin *desc;
  void *dl; /* NULL for built-ins */
  char *path;
  char isolation[16];
  mu_plugin_info info;
  muster_plugin_env *env; /* SDK v2 (plugin_env.h) */
} entry;

struct mu_plugin_host {
  entry e[MU_PLUGIN_MAX];
  size_t n;
  mu_metrics *metrics; /* the plugins' own metric families */
};

int mu_plugin_host_new(mu_plugin_host **ret, mu_err *err) {
  mu_plugin_host *h = calloc(1, sizeof *h);
  if (h != NULL) h->metrics = mu_metrics_new();
  if (h == NULL || h->metrics == NULL) {
    free(h);
    return mu_err_set(err, MU_ENOMEM, "plugin host: out of memory");
  }
  *ret = h;
  return 0;
}

void mu_plugin_host_free(mu_plugin_host *h) {
  if (h == NULL) return;
  for (size_t i = 0; i < h->n; i++) {
    mu_plugin_env_free(h->e[i].env); /* shutdown() before the code goes */
    if (h->e[i].dl != NULL) dlclose(h->e[i].dl);
    free(h->e[i].path);
  }
  mu_metrics_free(h->metrics);
  free(h);
}

static bool type_name_ok(const char *t) {
  if (t == NULL || *t == '\0' || strlen(t) > 64) return false;
  for (; *t; t++)
    if (!islower((unsigned char)*t) && !isdigit((unsigned char)*t) && *t != '-' && *t != '_') return false;
  return true;
}

static int check_and_add(mu_plugin_host *h, const muster_plugin *d, void *dl, const char *path, const char *isolation,
                         mu_err *err) {
  if (d->abi_version < MUSTER_PLUGIN_ABI_MIN || d->abi_version > MUSTER_PLUGIN_ABI_VERSION)
    return mu_err_set(err, MU_EINVAL, "plugin %s: built for ABI version %u, this agent speaks %u to %u; not loaded",
                      path, d->abi_version, MUSTER_PLUGIN_ABI_MIN, MUSTER_PLUGIN_ABI_VERSION);
  if (!type_name_ok(d->type))
    return mu_err_set(err, MU_EINVAL, "plugin %s: missing or bad type name \"%s\" (want [a-z0-9_-]+); not loaded", path,
                      d->type ? d->type : "");
  if (d->start == NULL)
    return mu_err_set(err, MU_EINVAL, "plugin %s (type %s): no start callback; not loaded", path, d->type);
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->e[i].desc->type, d->type) == 0)
      return mu_err_set(err, MU_EEXIST, "plugin %s: type \"%s\" is already served by %s; not loaded", path, d->type,
                        h->e[i].path);
  if (h->n >= MU_PLUGIN_MAX)
    return mu_err_set(err, MU_ENOSPC, "plugin %s: more than %d plugins; not loaded", path, MU_PLUGIN_MAX);
  entry *e = &h->e[h->n];
  e->path = strdup(path);
  if (e->path == NULL) return mu_err_set(err, MU_ENOMEM, "plugin host: out of memory");
  if (mu_plugin_env_new(d, h->metrics, &e->env, err) != 0) {
    free(e->path);
    e->path = NULL;
    return err->code;
  }
  e->desc = d;
  e->dl = dl;
  e->info.type = d->type;
  e->info.version = d->version ? d->version : "";
  e->info.description = d->description ? d->description : "";
  e->info.path = e->path;
  e->info.abi_version = d->abi_version;
  snprintf(e->isolation, sizeof e->isolation, "%s", isolation);
  e->info.isolation = e->isolation;
  h->n++;
  return 0;
}

int mu_plugin_host_register(mu_plugin_host *h, const muster_plugin *desc, mu_err *err) {
  return check_and_add(h, desc, NULL, "(built-in)", "in-process", err);
}

int mu_plugin_host_register_as(mu_plugin_host *h, const muster_plugin *desc, const char *path, const char *isolation,
                               mu_err *err) {
  return check_and_add(h, desc, NULL, path, isolation, err);
}

int mu_plugin_host_load(mu_plugin_host *h, const char *path, mu_err *err) {
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) return mu_err_set(err, MU_EINVAL, "plugin %s: cannot load: %s; not loaded", path, dlerror());
  const muster_plugin *d = dlsym(dl, MUSTER_PLUGIN_SYMBOL);
  if (d == NULL) {
    dlclose(dl);
    return mu_err_set(err, MU_EINVAL, "plugin %s: no %s symbol (not a Muster plugin?); not loaded", path,
                      MUSTER_PLUGIN_SYMBOL);
  }
  int rc = check_and_add(h, d, dl, path, "in-process", err);
  if (rc != 0) {
    dlclose(dl);
    return rc;
  }
  mu_info("plugins", "loaded %s %s (ABI %u) from %s", d->type, d->version ? d->version : "?", d->abi_version, path);
  return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int mu_plugin_dir_load(const char *dir, int (*load)(void *arg, const char *path, mu_err *err), void *arg,
                       int *ret_refused, mu_err *err) {
  DIR *d = opendir(dir);
  if (d == NULL) return mu_err_set(err, MU_EIO, "plugin dir %s: %s", dir, strerror(errno));
  char *names[1024];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < sizeof names / sizeof *names) {
    size_t len = strlen(de->d_name);
    if (len > 3 && strcmp(de->d_name + len - 3, ".so") == 0) {
      names[n] = strdup(de->d_name);
      if (names[n] != NULL) n++;
    }
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_names);
  int refused = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    mu_err e = {0};
    if (load(arg, path, &e) != 0) {
      mu_warn("plugins", "%s", e.msg);
      refused++;
    }
    free(names[i]);
  }
  if (ret_refused != NULL) *ret_refused = refused;
  return 0;
}

static int load_one(void *arg, const char *path, mu_err *err) { return mu_plugin_host_load(arg, path, err); }

int mu_plugin_host_load_dir(mu_plugin_host *h, const char *dir, int *ret_refused, mu_err *err) {
  return mu_plugin_dir_load(dir, load_one, h, ret_refused, err);
}

size_t mu_plugin_host_count(const mu_plugin_host *h) { return h->n; }

const mu_plugin_info *mu_plugin_host_info(const mu_plugin_host *h, size_t i) { return i < h->n ? &h->e[i].info : NULL; }

const muster_plugin *mu_plugin_host_find(const mu_plugin_host *h, const char *type) {
  for (size_t i = 0; type != NULL && i < h->n; i++)
    if (strcmp(h->e[i].desc->type, type) == 0) return h->e[i].desc;
  return NULL;
}

void mu_plugin_host_types(const mu_plugin_host *h, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < h->n && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", h->e[i].desc->type);
  if (h->n == 0) snprintf(buf, cap, "none");
}

static entry *find_entry(const mu_plugin_host *h, const char *type) {
  for (size_t i = 0; type != NULL && i < h->n; i++)
    if (strcmp(h->e[i].desc->type, type) == 0) return (entry *)&h->e[i];
  return NULL;
}

muster_plugin_env *mu_plugin_host_env(const mu_plugin_host *h, const char *type) {
  entry *e = find_entry(h, type);
  return e != NULL ? e->env : NULL;
}

muster_plugin_env *mu_plugin_host_env_at(const mu_plugin_host *h, size_t i) { return i < h->n ? h->e[i].env : NULL; }

int mu_plugin_host_configure(mu_plugin_host *h, const char *type, const char *config_json, mu_err *err) {
  entry *e = find_entry(h, type);
  if (e == NULL) return mu_err_set(err, MU_ENOENT, "plugin '%s': not loaded here", type);
  return mu_plugin_env_configure(e->env, config_json, err);
}

mu_metrics *mu_plugin_host_metrics(const mu_plugin_host *h) { return h->metrics; }
