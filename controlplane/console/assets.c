/* Looks up the embedded web files (assets.h). */
#include "controlplane/console/assets.h"

#include <string.h>

const mu_console_asset *mu_console_asset_find(const char *name) {
  for (size_t i = 0; i < mu_console_n_assets; i++)
    if (strcmp(mu_console_assets[i].name, name) == 0) return &mu_console_assets[i];
  return NULL;
}
