/* Loading the agent's plugins in-process or out of process (plugin_set.h). */
#include "agent/plugin/plugin_set.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"

struct mu_plugin_set {
  uv_loop_t *loop;
  mu_plugin_host *plugins;
  const mu_labels *settings;
  char *host_path;
  mu_plugin_remote_opts opts;
  mu_plugin_remote *remotes[MU_PLUGIN_MAX];
  size_t n;
  size_t closing;
  void (*close_cb)(void *);
  void *close_arg;
};

static const char *const shipped[] = MU_PLUGIN_SHIPPED;

static bool is_shipped(const char *type) {
  for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++)
    if (strcmp(shipped[i], type) == 0) return true;
  return false;
}

/* The shipped type a file is named for (libmuster_TYPE.so), or NULL. */
static const char *shipped_file(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "libmuster_%s.so", shipped[i]);
    if (strcmp(base, name) == 0) return shipped[i];
  }
  return NULL;
}

int mu_plugin_set_new(uv_loop_t *loop, mu_plugin_host *plugins, const mu_labels *settings, const char *host_path,
                      const mu_plugin_remote_opts *opts, mu_plugin_set **ret, mu_err *err) {
  mu_plugin_set *s = calloc(1, sizeof *s);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "plugins: out of memory");
  s->loop = loop;
  s->plugins = plugins;
  s->settings = settings;
  if (opts != NULL) s->opts = *opts;
  s->host_path = host_path != NULL ? strdup(host_path) : NULL;
  if (host_path != NULL && s->host_path == NULL) {
    free(s);
    return mu_err_set(err, MU_ENOMEM, "plugins: out of memory");
  }
  *ret = s;
  return 0;
}

const char *mu_plugin_set_isolation(const mu_plugin_set *s, const char *type) {
  char key[96];
  snprintf(key, sizeof key, "%s.isolation", type);
  const char *v = s->settings != NULL ? mu_labels_get(s->settings, key) : NULL;
  if (v != NULL) return v;
  return is_shipped(type) ? "in-process" : "process";
}

static bool in_process(const mu_plugin_set *s, const char *type) {
  return strcmp(mu_plugin_set_isolation(s, type), "in-process") == 0;
}

static void on_probe_closed(void *arg) { (void)arg; }

/* No host binary: read the type with a local dlopen (runs the plugin's constructors here;
 * only an agent without muster-plugin-host does this) and load it only if trusted. */
static int load_without_host(mu_plugin_set *s, const char *path, mu_err *err) {
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  const muster_plugin *d = dl ? dlsym(dl, MUSTER_PLUGIN_SYMBOL) : NULL;
  char type[80] = "";
  if (d != NULL && d->type != NULL) snprintf(type, sizeof type, "%s", d->type);
  if (dl != NULL) dlclose(dl);
  if (type[0] != '\0' && !in_process(s, type))
    return mu_err_set(err, MU_ENOTSUP,
                      "plugin %s (type %s): runs out of process, but muster-plugin-host was not found beside "
                      "the agent; not loaded (or trust it: plugins: {%s: {isolation: in-process}})",
                      path, type, type);
  return mu_plugin_host_load(s->plugins, path, err);
}

/* A retired out-of-process version's last task ended: stop its host process. */
static void on_remote_retired(void *arg, const muster_plugin *desc) {
  mu_plugin_set *s = arg;
  for (size_t i = 0; i < s->n; i++) {
    if (mu_plugin_remote_descriptor(s->remotes[i]) != desc) continue;
    mu_plugin_remote *r = s->remotes[i];
    s->remotes[i] = s->remotes[--s->n];
    mu_plugin_remote_close(r, on_probe_closed, NULL);
    return;
  }
}

/* Starts a muster-plugin-host process for path (bounded by MU_PLUGIN_MAX). */
static int open_remote(mu_plugin_set *s, const char *path, mu_plugin_remote **ret, mu_err *err) {
  if (s->n >= MU_PLUGIN_MAX)
    return mu_err_set(err, MU_ENOSPC, "plugin %s: more than %d plugins; not loaded", path, MU_PLUGIN_MAX);
  mu_plugin_remote_opts o = s->opts;
  o.host_path = s->host_path;
  o.so_path = path;
  return mu_plugin_remote_open(s->loop, &o, ret, err);
}

int mu_plugin_set_load(mu_plugin_set *s, const char *path, mu_err *err) {
  const char *named = shipped_file(path);
  if (named != NULL && in_process(s, named)) return mu_plugin_host_load(s->plugins, path, err);
  if (s->host_path == NULL) return load_without_host(s, path, err);
  mu_plugin_remote *r = NULL;
  int rc = open_remote(s, path, &r, err);
  if (rc != 0) return rc;
  const muster_plugin *d = mu_plugin_remote_descriptor(r);
  if (in_process(s, d->type)) { /* configured as trusted: the host only told us the type */
    mu_plugin_remote_close(r, on_probe_closed, NULL);
    return mu_plugin_host_load(s->plugins, path, err);
  }
  rc = mu_plugin_host_register_as(s->plugins, d, path, "process", err);
  if (rc != 0) {
    mu_plugin_remote_close(r, on_probe_closed, NULL);
    return rc;
  }
  mu_plugin_host_on_unload(s->plugins, d, on_remote_retired, s); /* a later upgrade retires it */
  s->remotes[s->n++] = r;
  mu_plugin_remote_stats st;
  mu_plugin_remote_stats_get(r, &st);
  mu_info("plugins", "loaded %s %s (ABI %u) from %s in its own process (muster-plugin-host pid %d)", d->type,
          d->version, d->abi_version, path, st.pid);
  return 0;
}

static int load_one(void *arg, const char *path, mu_err *err) { return mu_plugin_set_load(arg, path, err); }

int mu_plugin_set_upgrade(mu_plugin_set *s, const char *path, const char *want_type, mu_err *err) {
  if (in_process(s, want_type) || s->host_path == NULL) {
    if (!in_process(s, want_type))
      return mu_err_set(err, MU_ENOTSUP,
                        "plugin %s (type %s): runs out of process, but muster-plugin-host was not found beside the "
                        "agent; not loaded",
                        path, want_type);
    return mu_plugin_host_upgrade(s->plugins, path, want_type, NULL, err);
  }
  mu_plugin_remote *r = NULL;
  int rc = open_remote(s, path, &r, err);
  if (rc != 0) return rc;
  const muster_plugin *d = mu_plugin_remote_descriptor(r);
  if (strcmp(d->type, want_type) != 0)
    rc = mu_err_set(err, MU_EINVAL, "plugin %s: its descriptor says type \"%s\", plugin.yaml says \"%s\"; not loaded",
                    path, d->type, want_type);
  if (rc == 0) rc = mu_plugin_host_upgrade_as(s->plugins, d, path, "process", on_remote_retired, s, err);
  if (rc != 0) {
    mu_plugin_remote_close(r, on_probe_closed, NULL);
    return rc;
  }
  s->remotes[s->n++] = r;
  mu_info("plugins", "loaded %s %s from %s in its own process as the active version", d->type, d->version, path);
  return 0;
}

int mu_plugin_set_load_dir(mu_plugin_set *s, const char *dir, int *ret_refused, mu_err *err) {
  return mu_plugin_dir_load(dir, load_one, s, ret_refused, err);
}

mu_plugin_remote *mu_plugin_set_remote(const mu_plugin_set *s, const char *type) {
  const muster_plugin *active = mu_plugin_host_find(s->plugins, type); /* not a retired version */
  for (size_t i = 0; i < s->n; i++)
    if (mu_plugin_remote_descriptor(s->remotes[i]) == active) return s->remotes[i];
  return NULL;
}

void mu_plugin_set_totals(const mu_plugin_set *s, uint32_t *ret_hosts, uint32_t *ret_up, uint64_t *ret_crashes) {
  *ret_hosts = (uint32_t)s->n;
  *ret_up = 0;
  *ret_crashes = 0;
  for (size_t i = 0; i < s->n; i++) {
    mu_plugin_remote_stats st;
    mu_plugin_remote_stats_get(s->remotes[i], &st);
    *ret_up += st.pid > 0;
    *ret_crashes += st.crashes;
  }
}

static void on_remote_closed(void *arg) {
  mu_plugin_set *s = arg;
  if (--s->closing > 0) return;
  void (*cb)(void *) = s->close_cb;
  void *cb_arg = s->close_arg;
  free(s->host_path);
  free(s);
  if (cb != NULL) cb(cb_arg);
}

void mu_plugin_set_close(mu_plugin_set *s, void (*cb)(void *arg), void *arg) {
  s->close_cb = cb;
  s->close_arg = arg;
  s->closing = s->n + 1; /* +1: finish below even with no remotes */
  for (size_t i = 0; i < s->n; i++) mu_plugin_remote_close(s->remotes[i], on_remote_closed, s);
  on_remote_closed(s);
}
