/* The plugin versions an agent deployed, kept in its spool (<spool>/plugins/state.json) so
 * they are loaded again after an agent restart: per type the active version and its .so, and
 * the one before it (what `muster plugin rollback` goes back to). Small JSON, written to a
 * temporary file and renamed over the old one. */
#ifndef MU_PLUGPKG_PLUGIN_STATE_H
#define MU_PLUGPKG_PLUGIN_STATE_H

#include <stddef.h>

#include "lib/base/err.h"

#define MU_PLUGIN_STATE_MAX 64
#define MU_PLUGIN_STATE_PATH_MAX 1024
#define MU_PLUGIN_STATE_MAX_BYTES (512 * 1024)

typedef struct mu_plugin_state_entry {
  char type[65];
  char version[65];
  char path[MU_PLUGIN_STATE_PATH_MAX];
  char prev_version[65]; /* "" when there is none */
  char prev_path[MU_PLUGIN_STATE_PATH_MAX];
} mu_plugin_state_entry;

typedef struct mu_plugin_state {
  mu_plugin_state_entry e[MU_PLUGIN_STATE_MAX];
  size_t n;
} mu_plugin_state;

/* Parses text (len bytes). MU_EINVAL names the bad part ("plugin state: types.x.version: ..."). */
int mu_plugin_state_parse(const char *text, size_t len, mu_plugin_state *ret, mu_err *err);
/* Reads file; a missing file is an empty state (0). MU_EIO, MU_ENOSPC (too big), MU_EINVAL. */
int mu_plugin_state_load(const char *file, mu_plugin_state *ret, mu_err *err);
/* Writes s to file (FILE.tmp, then rename). MU_EIO names the file. */
int mu_plugin_state_save(const char *file, const mu_plugin_state *s, mu_err *err);
/* The entry of type, or NULL. */
mu_plugin_state_entry *mu_plugin_state_find(mu_plugin_state *s, const char *type);
/* Records version/path as type's active one; the current one (if any, and different) becomes
 * the previous. MU_ENOSPC when MU_PLUGIN_STATE_MAX types are recorded; MU_EINVAL when a
 * string is too long. */
int mu_plugin_state_set(mu_plugin_state *s, const char *type, const char *version, const char *path, mu_err *err);

#endif
