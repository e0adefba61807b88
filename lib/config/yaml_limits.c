/* The YAML pre-check (yaml_limits.h): one pass over libyaml's events. */
#include "lib/config/yaml_limits.h"

#include <yaml.h>

int mu_yaml_check_limits(const char *name, const char *text, size_t len, int max_depth, size_t max_nodes, mu_err *err) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return mu_err_set(err, MU_ENOMEM, "%s: cannot initialise the YAML parser", name);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  int depth = 0, rc = 0;
  size_t nodes = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) break; /* the real parse reports syntax errors */
    yaml_event_type_t type = ev.type;
    unsigned long line = (unsigned long)ev.start_mark.line + 1;
    yaml_event_delete(&ev);
    if (type == YAML_STREAM_END_EVENT) break;
    if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
      if (++depth > max_depth) {
        rc = mu_err_set(err, MU_EINVAL, "%s:%lu: nesting deeper than %d levels", name, line, max_depth);
        break;
      }
    } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
      depth--;
    }
    if ((type == YAML_SCALAR_EVENT || type == YAML_ALIAS_EVENT || type == YAML_SEQUENCE_START_EVENT ||
         type == YAML_MAPPING_START_EVENT) &&
        ++nodes > max_nodes) {
      rc = mu_err_set(err, MU_EINVAL, "%s:%lu: more than %zu YAML nodes", name, line, max_nodes);
      break;
    }
  }
  yaml_parser_delete(&parser);
  return rc;
}
