/* Requirements for a task's Python environment: read from a requirements.txt or from the
 * [project] dependencies list of a pyproject.toml, checked line by line, and normalised
 * (names lower-cased, spaces dropped, lines sorted) so equal sets give equal cache keys.
 * Internal to the python plugin. */
#ifndef PY_REQS_H
#define PY_REQS_H

#include <stddef.h>

#define PY_REQS_MAX_LINES 4096 /* requirements per file */

/* Parses requirements.txt text. Accepted per line: NAME[extras] [op VERSION[, ...]]
 * [; marker] [--hash=ALG:HEX ...], "--require-hashes", comments, blank lines and "\"
 * continuations. Refused with a message naming `label` and the line: includes (-r, -c),
 * editables, URLs and paths, index options (those come from the task spec).
 * On success *ret_norm (caller frees) holds one normalised requirement per line, sorted,
 * each ending in "\n", and *ret_count their number (0 = nothing to install).
 * Returns 0 or -EINVAL (err filled, errcap bytes). */
int py_reqs_parse_txt(const char *text, const char *label, char **ret_norm, size_t *ret_count, char *err,
                      size_t errcap);

/* The same for pyproject.toml: the strings of `dependencies = [...]` under [project]. A file
 * with no such list gives 0 requirements. */
int py_reqs_parse_pyproject(const char *text, const char *label, char **ret_norm, size_t *ret_count, char *err,
                            size_t errcap);

#endif
