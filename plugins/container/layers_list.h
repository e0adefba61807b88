/* The launcher's reading of an image's layer list (layers.h, MU_LAYERS_FILE): the text the
 * store wrote, one "layers/<64 hex>" line per layer, bottom first, turned into overlayfs's
 * lowerdir option (top first, ':' between, each under the store's dir). Pure, fuzzed
 * (layers_list_fuzz). */
#ifndef MU_CONTAINER_LAYERS_LIST_H
#define MU_CONTAINER_LAYERS_LIST_H

#include <stddef.h>

#define MU_LAYERS_LIST_MAX 128 /* layers, as manifests allow */

/* store: the store's dir (no ',' or ':'); list: the file's text. Into buf (cap bytes):
 * "<store>/layers/<hexN>:...:<store>/layers/<hex1>". 0, or -1 with why ("line 2: ...") for an
 * empty list, a line that is not "layers/" and 64 lowercase hex, more than
 * MU_LAYERS_LIST_MAX lines, a store path with ',' or ':', or a result over cap. */
int mu_layers_lowerdir(const char *store, const char *list, char *buf, size_t cap, char *why, size_t why_cap);

#endif
