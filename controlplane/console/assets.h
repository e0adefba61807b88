/* The console's web files (web/), embedded in musterd at build time by embed.py: the page
 * works offline and nothing is read from disk at run time. */
#ifndef MU_CONSOLE_ASSETS_H
#define MU_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct mu_console_asset {
  const char *name; /* base name, e.g. "app.js" */
  const char *content_type;
  const unsigned char *data; /* NUL-terminated for convenience; len excludes it */
  size_t len;
} mu_console_asset;

/* Sorted by name (assets_data.c, generated). */
extern const mu_console_asset mu_console_assets[];
extern const size_t mu_console_n_assets;

/* The file called name, or NULL. */
const mu_console_asset *mu_console_asset_find(const char *name);

#endif
