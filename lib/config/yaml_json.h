/* A YAML node as JSON text, for configuration handed on as JSON (a plugin's configure(),
 * docs/plugins.md "Configuration"). Mappings become objects (keys as strings), lists arrays,
 * null nulls; a plain scalar that reads as a JSON number, true or false becomes that, any
 * other scalar a string. Bounded: the text stops at max_bytes (MU_ENOSPC) and nesting at
 * MU_YAML_JSON_MAX_DEPTH (MU_EINVAL). */
#ifndef MU_YAML_JSON_H
#define MU_YAML_JSON_H

#include <stddef.h>

#include "lib/base/err.h"
#include "lib/config/yaml_doc.h"

#define MU_YAML_JSON_MAX_DEPTH 32

/* *ret: malloc'd NUL-terminated JSON, the caller frees it. */
int mu_yaml_node_json(mu_yaml_node node, size_t max_bytes, char **ret, mu_err *err);

#endif
