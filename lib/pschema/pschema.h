/* A plugin's parameter schema (SDK v2 describe(), docs/plugins.md "Schemas"): checking a JSON
 * object against one section of it ("params": the task's own object; "config": the plugin-wide
 * configuration) and printing a section for `muster run --type X --help`. The schema:
 *   {"params": {"NAME": {"type": "string|integer|number|boolean|object|array",
 *                        "required": true, "enum": [...], "minimum": N, "maximum": N,
 *                        "help": "..."}, ...},
 *    "config": {...same...}}
 * A key the section does not list is refused (when the section exists), with the known keys
 * in the message. Bounded: schemas and values over MU_PSCHEMA_MAX_BYTES are refused. */
#ifndef MU_PSCHEMA_H
#define MU_PSCHEMA_H

#include <stddef.h>

#include "lib/base/err.h"

#define MU_PSCHEMA_MAX_BYTES (256u * 1024)

/* Checks value_json (an object) against schema_json's section. what names the value in
 * messages ("http config", "task t1: http"). 0; MU_EINVAL with "WHAT.KEY: PROBLEM" (the
 * JSON-path style of the plugins' own errors); MU_EINVAL too when the schema itself is not
 * JSON (naming it). A schema without the section accepts any object. */
int mu_pschema_check(const char *schema_json, const char *section, const char *value_json, const char *what,
                     mu_err *err);

/* Writes the section as help text, one key a line ("  url  string, required  http or https
 * URL"), into a malloc'd string (*ret; the caller frees it). "" when the section is empty or
 * absent. MU_EINVAL when the schema is not JSON. */
int mu_pschema_help(const char *schema_json, const char *section, char **ret, mu_err *err);

#endif
