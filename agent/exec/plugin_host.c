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

#include "lib/base/log.h"

typedef struct entry {
  const muster_plugin *desc;
  void *dl; /* NULL for built-ins */
  char *path;
  char isolation[16];
  mu_plugin_info info;
  uint64_t refs; /* tasks running on it */
  void (*on_unload)(void *arg, const muster_plugin *desc);
  void *unload_arg;
} entry;

struct mu_plugin_host {
  entry e[MU_PLUGIN_MAX]; /* active: one per type */
  size_t n;
  entry r[MU_PLUGIN_MAX]; /* retired, still held by tasks */
  size_t nr;
  const muster_plugin *internal[4]; /* agent-internal types: found, never listed */
  size_t ni;
};

static void entry_unload(entry *e) {
  if (e->on_unload != NULL) e->on_unload(e->unload_arg, e->desc);
  if (e->dl != NULL) dlclose(e->dl);
  free(e->path);
  memset(e, 0, sizeof *e);
}

int mu_plugin_host_new(mu_plugin_host **ret, mu_err *err) {
  mu_plugin_host *h = calloc(1, sizeof *h);
  if (h == NULL) return mu_err_set(err, MU_ENOMEM, "plugin host: out of memory");
  *ret = h;
  return 0;
}

void mu_plugin_host_free(mu_plugin_host *h) {
  if (h == NULL) return;
  for (size_t i = 0; i < h->n; i++) { /* owners of proxies stop them themselves */
    h->e[i].on_unload = NULL;
    entry_unload(&h->e[i]);
  }
  for (size_t i = 0; i < h->nr; i++) {
    h->r[i].on_unload = NULL;
    entry_unload(&h->r[i]);
  }
  free(h);
}

static bool type_name_ok(const char *t) {
  if (t == NULL || *t == '\0' || strlen(t) > 64) return false;
  for (; *t; t++)
    if (!islower((unsigned char)*t) && !isdigit((unsigned char)*t) && *t != '-' && *t != '_') return false;
  return true;
}

static int check_desc(const muster_plugin *d, const char *path, mu_err *err) {
  if (d->abi_version != MUSTER_PLUGIN_ABI_VERSION)
    return mu_err_set(err, MU_EINVAL, "plugin %s: built for ABI version %u, this agent speaks %u; not loaded", path,
                      d->abi_version, MUSTER_PLUGIN_ABI_VERSION);
  if (!type_name_ok(d->type))
    return mu_err_set(err, MU_EINVAL, "plugin %s: missing or bad type name \"%s\" (want [a-z0-9_-]+); not loaded", path,
                      d->type ? d->type : "");
  if (d->start == NULL)
    return mu_err_set(err, MU_EINVAL, "plugin %s (type %s): no start callback; not loaded", path, d->type);
  return 0;
}

static int entry_fill(entry *e, const muster_plugin *d, void *dl, const char *path, const char *isolation,
                      mu_err *err) {
  memset(e, 0, sizeof *e);
  e->path = strdup(path);
  if (e->path == NULL) return mu_err_set(err, MU_ENOMEM, "plugin host: out of memory");
  e->desc = d;
  e->dl = dl;
  e->info.type = d->type;
  e->info.version = d->version ? d->version : "";
  e->info.description = d->description ? d->description : "";
  e->info.path = e->path;
  e->info.abi_version = d->abi_version;
  snprintf(e->isolation, sizeof e->isolation, "%s", isolation);
  e->info.isolation = e->isolation;
  return 0;
}

/* After a struct copy the info's borrowed pointers must point into the new place. */
static void entry_moved(entry *e) {
  e->info.path = e->path;
  e->info.isolation = e->isolation;
}

static int check_and_add(mu_plugin_host *h, const muster_plugin *d, void *dl, const char *path, const char *isolation,
                         mu_err *err) {
  int rc = check_desc(d, path, err);
  if (rc != 0) return rc;
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->e[i].desc->type, d->type) == 0)
      return mu_err_set(err, MU_EEXIST, "plugin %s: type \"%s\" is already served by %s; not loaded", path, d->type,
                        h->e[i].path);
  if (h->n >= MU_PLUGIN_MAX)
    return mu_err_set(err, MU_ENOSPC, "plugin %s: more than %d plugins; not loaded", path, MU_PLUGIN_MAX);
  rc = entry_fill(&h->e[h->n], d, dl, path, isolation, err);
  if (rc == 0) h->n++;
  return rc;
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
  for (size_t i = 0; type != NULL && i < h->ni; i++)
    if (strcmp(h->internal[i]->type, type) == 0) return h->internal[i];
  return NULL;
}

int mu_plugin_host_register_internal(mu_plugin_host *h, const muster_plugin *desc, mu_err *err) {
  int rc = check_desc(desc, "(internal)", err);
  if (rc != 0) return rc;
  if (mu_plugin_host_find(h, desc->type) != NULL)
    return mu_err_set(err, MU_EEXIST, "internal type \"%s\" is already served", desc->type);
  if (h->ni >= sizeof h->internal / sizeof h->internal[0])
    return mu_err_set(err, MU_ENOSPC, "internal type \"%s\": too many", desc->type);
  h->internal[h->ni++] = desc;
  return 0;
}

void mu_plugin_host_types(const mu_plugin_host *h, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < h->n && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", h->e[i].desc->type);
  if (h->n == 0) snprintf(buf, cap, "none");
}

/* ---- hot upgrade ---- */

static entry *active_of(mu_plugin_host *h, const char *type) {
  for (size_t i = 0; type != NULL && i < h->n; i++)
    if (strcmp(h->e[i].desc->type, type) == 0) return &h->e[i];
  return NULL;
}

/* Moves the active entry *a to the retired list (or unloads it when no task holds it). */
static void retire(mu_plugin_host *h, entry *a) {
  if (a->refs == 0 || h->nr >= MU_PLUGIN_MAX) {
    if (a->refs > 0) /* no room to keep it: leak the handle rather than unload under a task */
      mu_warn("plugins", "%s %s: too many retired versions; kept loaded for good", a->desc->type, a->info.version);
    else mu_info("plugins", "unloaded %s %s (%s): no task runs on it", a->desc->type, a->info.version, a->path);
    if (a->refs == 0) entry_unload(a);
    else free(a->path);
    memset(a, 0, sizeof *a);
    return;
  }
  h->r[h->nr] = *a;
  entry_moved(&h->r[h->nr]);
  mu_info("plugins", "retired %s %s: %llu task(s) still run on it; unloaded when they end", a->desc->type,
          a->info.version, (unsigned long long)a->refs);
  h->nr++;
  memset(a, 0, sizeof *a);
}

static int install(mu_plugin_host *h, const muster_plugin *d, void *dl, const char *path, const char *isolation,
                   void (*on_unload)(void *, const muster_plugin *), void *arg, int *ret_replaced, mu_err *err) {
  entry *a = active_of(h, d->type);
  if (a != NULL && a->desc == d) /* the same file again (dlopen handed back its handle) */
    return mu_err_set(err, MU_EEXIST, "plugin %s: %s %s is already the active version", path, d->type, a->info.version);
  for (size_t i = 0; i < h->nr; i++) {
    if (h->r[i].desc != d) continue;
    /* a retired version comes back (a rollback while tasks still run on it): reuse its entry */
    if (a != NULL) retire(h, a);
    else a = &h->e[h->n++];
    *a = h->r[i];
    entry_moved(a);
    h->r[i] = h->r[--h->nr];
    entry_moved(&h->r[i]);
    if (dl != NULL) dlclose(dl); /* the entry holds its own handle */
    if (ret_replaced != NULL) *ret_replaced = 1;
    return 0;
  }
  entry fresh;
  int rc = entry_fill(&fresh, d, dl, path, isolation, err);
  if (rc != 0) return rc;
  fresh.on_unload = on_unload;
  fresh.unload_arg = arg;
  if (a == NULL && h->n >= MU_PLUGIN_MAX) {
    free(fresh.path);
    return mu_err_set(err, MU_ENOSPC, "plugin %s: more than %d plugins; not loaded", path, MU_PLUGIN_MAX);
  }
  if (ret_replaced != NULL) *ret_replaced = a != NULL;
  if (a != NULL) retire(h, a);
  else a = &h->e[h->n++];
  *a = fresh;
  entry_moved(a);
  return 0;
}

int mu_plugin_host_upgrade(mu_plugin_host *h, const char *path, const char *want_type, int *ret_replaced, mu_err *err) {
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) return mu_err_set(err, MU_EINVAL, "plugin %s: cannot load: %s; not loaded", path, dlerror());
  const muster_plugin *d = dlsym(dl, MUSTER_PLUGIN_SYMBOL);
  int rc = 0;
  if (d == NULL)
    rc = mu_err_set(err, MU_EINVAL, "plugin %s: no %s symbol (not a Muster plugin?); not loaded", path,
                    MUSTER_PLUGIN_SYMBOL);
  if (rc == 0) rc = check_desc(d, path, err);
  if (rc == 0 && want_type != NULL && strcmp(d->type, want_type) != 0)
    rc = mu_err_set(err, MU_EINVAL, "plugin %s: its descriptor says type \"%s\", plugin.yaml says \"%s\"; not loaded",
                    path, d->type, want_type);
  if (rc == 0) rc = install(h, d, dl, path, "in-process", NULL, NULL, ret_replaced, err);
  if (rc != 0) {
    dlclose(dl);
    return rc;
  }
  mu_info("plugins", "loaded %s %s (ABI %u) from %s as the active version", d->type, d->version ? d->version : "?",
          d->abi_version, path);
  return 0;
}

int mu_plugin_host_upgrade_as(mu_plugin_host *h, const muster_plugin *desc, const char *path, const char *isolation,
                              void (*on_unload)(void *arg, const muster_plugin *desc), void *arg, mu_err *err) {
  int rc = check_desc(desc, path, err);
  if (rc != 0) return rc;
  return install(h, desc, NULL, path, isolation, on_unload, arg, NULL, err);
}

void mu_plugin_host_on_unload(mu_plugin_host *h, const muster_plugin *desc,
                              void (*on_unload)(void *arg, const muster_plugin *desc), void *arg) {
  for (size_t i = 0; i < h->n; i++) {
    if (h->e[i].desc != desc) continue;
    h->e[i].on_unload = on_unload;
    h->e[i].unload_arg = arg;
  }
}

const muster_plugin *mu_plugin_host_acquire(mu_plugin_host *h, const char *type) {
  entry *a = active_of(h, type);
  if (a == NULL) return mu_plugin_host_find(h, type); /* an internal type, or NULL */
  a->refs++;
  return a->desc;
}

void mu_plugin_host_release(mu_plugin_host *h, const muster_plugin *desc) {
  for (size_t i = 0; i < h->n; i++) {
    if (h->e[i].desc != desc) continue;
    if (h->e[i].refs > 0) h->e[i].refs--;
    return;
  }
  for (size_t i = 0; i < h->nr; i++) {
    if (h->r[i].desc != desc) continue;
    if (h->r[i].refs > 0 && --h->r[i].refs > 0) return;
    mu_info("plugins", "unloaded %s %s (%s): its last task ended", desc->type, h->r[i].info.version, h->r[i].path);
    entry_unload(&h->r[i]);
    if (i != h->nr - 1) {
      h->r[i] = h->r[h->nr - 1];
      entry_moved(&h->r[i]);
    }
    memset(&h->r[h->nr - 1], 0, sizeof h->r[0]);
    h->nr--;
    return;
  }
}

size_t mu_plugin_host_retired(const mu_plugin_host *h) { return h->nr; }

const char *mu_plugin_host_path(const mu_plugin_host *h, const char *type) {
  for (size_t i = 0; type != NULL && i < h->n; i++)
    if (strcmp(h->e[i].desc->type, type) == 0) return h->e[i].path;
  return NULL;
}
