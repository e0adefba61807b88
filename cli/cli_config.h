/* The CLI config file: named contexts, each an address, TLS files and a token, so `muster
 * --context prod agents` needs no other flag. The file is $MUSTER_CONFIG, else
 * $XDG_CONFIG_HOME/muster/config.yaml, else ~/.config/muster/config.yaml:
 *
 *   current_context: prod
 *   contexts:
 *     prod:
 *       addr: cp1.prod:7400,cp2.prod:7400
 *       ca: tls/ca.crt            # relative paths: from the file's directory; ~/ expands
 *       cert: tls/admin.crt
 *       key: tls/admin.key
 *       token: ...                # optional; keep the file 0600 then
 *       timeout: 30s
 *
 * Precedence (main.c): flags, then the environment (MUSTER_ADDR, ...), then the context. */
#ifndef MU_CLI_CONFIG_H
#define MU_CLI_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "lib/base/err.h"

#define MU_CLI_CONFIG_MAX_BYTES (256 * 1024)
#define MU_CLI_CONTEXTS_MAX 256
#define MU_CLI_CONTEXT_NAME_MAX 128

typedef struct mu_cli_context {
  char name[MU_CLI_CONTEXT_NAME_MAX];
  /* Owned strings, NULL when the context does not set them; paths already resolved. */
  char *addr, *ca, *cert, *key, *token, *timeout;
} mu_cli_context;

typedef struct mu_cli_config {
  char path[PATH_MAX];
  int exists;                            /* 0: no file (not an error) */
  char current[MU_CLI_CONTEXT_NAME_MAX]; /* current_context, or "" */
  mu_cli_context *contexts;              /* owned; n of them, in file order */
  size_t n;
} mu_cli_config;

/* Fills buf with the config file's path (see above). MU_ENOENT when neither MUSTER_CONFIG,
 * XDG_CONFIG_HOME nor HOME is set. */
int mu_cli_config_path(char *buf, size_t size, mu_err *err);

/* Loads path into *cfg (caller frees with mu_cli_config_free, also after an error). A missing
 * file is an empty config with exists = 0. Errors read "FILE:LINE: ..." (MU_EINVAL), or name
 * the file when it cannot be read. */
int mu_cli_config_load(const char *path, mu_cli_config *cfg, mu_err *err);

/* The context named name, or NULL. */
const mu_cli_context *mu_cli_config_find(const mu_cli_config *cfg, const char *name);

/* "a, b, c" (the context names) into buf, "(none)" when there are none. */
void mu_cli_config_names(const mu_cli_config *cfg, char *buf, size_t size);

/* Makes name the current context in the file at path: rewrites its `current_context:` line,
 * or adds one at the top; every other line (comments included) is kept. The file is replaced
 * atomically (a temporary file renamed over it) and keeps its mode. */
int mu_cli_config_set_current(const char *path, const char *name, mu_err *err);

void mu_cli_config_free(mu_cli_config *cfg);

#endif
