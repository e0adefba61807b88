/* The plugin host: loads task-type plugins (*.so exporting muster_plugin_descriptor, see
 * plugins/sdk/muster_plugin.h) from a directory, refuses bad ones with a clear log line and
 * keeps going, lists what it loaded (for Hello), and looks plugins up by task type. The host
 * API table handed to plugins is implemented in host_api.c on top of the runner's tasks.
 *
 * Hot upgrade: a type has one active version (what find and acquire return) and may have
 * retired ones that tasks still run on. mu_plugin_host_upgrade makes a new .so the active
 * version of its type; the old one is retired and dlclose'd when its last task releases it
 * (at once when none runs on it). Listing (count/info) shows active versions only. */
#ifndef MU_PLUGIN_HOST_H
#define MU_PLUGIN_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "plugins/sdk/muster_plugin.h"

#define MU_PLUGIN_MAX 64

typedef struct mu_plugin_host mu_plugin_host;

typedef struct mu_plugin_info {
  const char *type; /* borrowed from the plugin's descriptor */
  const char *version;
  const char *description; /* may be "" */
  const char *path;        /* the .so, or "(built-in)" */
  uint32_t abi_version;
  const char *isolation; /* "in-process", or "process" (a muster-plugin-host runs it) */
} mu_plugin_info;

/* *ret is owned by the caller: mu_plugin_host_free once no task uses a plugin. */
int mu_plugin_host_new(mu_plugin_host **ret, mu_err *err);
void mu_plugin_host_free(mu_plugin_host *h);

/* Loads one plugin. MU_EINVAL: not loadable, no descriptor symbol, wrong ABI version, bad
 * type name or missing start(); MU_EEXIST: its type is already served; MU_ENOSPC: more than
 * MU_PLUGIN_MAX. The message names the file and the reason. */
int mu_plugin_host_load(mu_plugin_host *h, const char *path, mu_err *err);

/* Loads every *.so in dir, in name order. A refused plugin is logged (warn) and skipped.
 * Returns MU_EIO only when dir cannot be read. *ret_refused (may be NULL) gets the count. */
int mu_plugin_host_load_dir(mu_plugin_host *h, const char *dir, int *ret_refused, mu_err *err);

/* The same walk over dir's *.so files (name order, refusals logged and counted) with another
 * loader, load(arg, path, err), e.g. one that runs plugins out of process. */
int mu_plugin_dir_load(const char *dir, int (*load)(void *arg, const char *path, mu_err *err), void *arg,
                       int *ret_refused, mu_err *err);

/* Registers a descriptor linked into the agent itself (same checks as load). */
int mu_plugin_host_register(mu_plugin_host *h, const muster_plugin *desc, mu_err *err);

/* Registers a descriptor with the .so path and isolation mode to report (an out-of-process
 * plugin's proxy, agent/plugin/remote.h). Same checks as load; path and isolation copied. */
int mu_plugin_host_register_as(mu_plugin_host *h, const muster_plugin *desc, const char *path, const char *isolation,
                               mu_err *err);

/* Registers an agent-internal type (linked in, never unloaded, e.g. the plugin deploy type):
 * found by find/acquire like any plugin, but not listed (count/info, Hello, types). Same
 * checks as register; MU_ENOSPC past 4. */
int mu_plugin_host_register_internal(mu_plugin_host *h, const muster_plugin *desc, mu_err *err);

size_t mu_plugin_host_count(const mu_plugin_host *h);
/* i < count; the pointer is borrowed from h. */
const mu_plugin_info *mu_plugin_host_info(const mu_plugin_host *h, size_t i);
/* NULL when no plugin serves type. */
const muster_plugin *mu_plugin_host_find(const mu_plugin_host *h, const char *type);
/* Hot upgrade (see the top). Loads path (dlopen, same checks as load) as the active version
 * of its type; the version it replaces (if any) is retired: unloaded once no task holds it.
 * When want_type is non-NULL the descriptor's type must equal it (MU_EINVAL naming both).
 * On success *ret_replaced (may be NULL) gets 1 when an older version was retired. */
int mu_plugin_host_upgrade(mu_plugin_host *h, const char *path, const char *want_type, int *ret_replaced, mu_err *err);
/* The same for a descriptor served elsewhere (an out-of-process proxy): on_unload(arg, desc)
 * runs when a retired one is released for the last time (NULL: nothing to do). */
int mu_plugin_host_upgrade_as(mu_plugin_host *h, const muster_plugin *desc, const char *path, const char *isolation,
                              void (*on_unload)(void *arg, const muster_plugin *desc), void *arg, mu_err *err);
/* Sets what runs when the loaded desc is retired and released for the last time (an
 * out-of-process proxy registered with register_as: its owner stops the host process). */
void mu_plugin_host_on_unload(mu_plugin_host *h, const muster_plugin *desc,
                              void (*on_unload)(void *arg, const muster_plugin *desc), void *arg);
/* A task starts on type's active version: its descriptor (NULL: none serves type) is held
 * until mu_plugin_host_release. */
const muster_plugin *mu_plugin_host_acquire(mu_plugin_host *h, const char *type);
void mu_plugin_host_release(mu_plugin_host *h, const muster_plugin *desc);
/* Retired versions still loaded (tasks run on them), for tests and /metrics. */
size_t mu_plugin_host_retired(const mu_plugin_host *h);
/* The active descriptor's path for type ("(built-in)" for linked-in ones), or NULL. */
const char *mu_plugin_host_path(const mu_plugin_host *h, const char *type);

/* "shell, sleep-echo" into buf, for error messages. */
void mu_plugin_host_types(const mu_plugin_host *h, char *buf, size_t cap);

/* The function table the agent hands to plugins (host_api.c). Static, never NULL. */
const muster_host_api *mu_host_api(void);

#endif
