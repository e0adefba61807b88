/* Limits on a YAML text checked before anything builds a document from it: nesting depth and
 * node count, read from libyaml's event stream and abandoned at the first breach. libyaml's
 * document loader takes time quadratic in flow nesting (65,536 nested "[" took 8.8 s), so the
 * check must come first and stop early: it costs one extra pass, linear in the input. Aliases
 * are counted as one node here; what they expand to is bounded by the consumer. */
#ifndef MU_YAML_LIMITS_H
#define MU_YAML_LIMITS_H

#include <stddef.h>

#include "lib/base/err.h"

#define MU_YAML_MAX_DEPTH 64
#define MU_YAML_MAX_NODES 1000000

/* 0 when text (len bytes; name for messages) nests at most max_depth levels and has at most
 * max_nodes nodes; MU_EINVAL "NAME:LINE: nesting deeper than 64 levels" / "... more than N
 * YAML nodes" otherwise. A syntax error is left to the real parse (0 is returned), so its
 * message stays the parser's. */
int mu_yaml_check_limits(const char *name, const char *text, size_t len, int max_depth, size_t max_nodes, mu_err *err);

#endif
