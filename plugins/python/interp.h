/* Python interpreters this host has: found once when the plugin is loaded, by a quick
 * stat/readlink scan (no process is spawned), and picked per task by version or path.
 * Internal to the python plugin; not part of the SDK. */
#ifndef PY_INTERP_H
#define PY_INTERP_H

#include <limits.h>
#include <stddef.h>

#define PY_INTERP_MAX 32 /* interpreters remembered; more are ignored with a log line */
#define PY_ALIAS_MAX 8   /* paths that lead to one interpreter (python3 -> python3.11) */
#define PY_PATH_MAX 512  /* longer interpreter paths are skipped */

typedef struct py_interp {
  char path[PY_PATH_MAX]; /* the resolved file (realpath) */
  char version[32];       /* "3.11", or "3.11.7" when the install dir names it (pyenv) */
  int major;
  char aliases[PY_ALIAS_MAX][PY_PATH_MAX]; /* every path that was seen for it, path included */
  int n_aliases;
} py_interp;

/* The table; filled by py_interp_discover, then read-only. */
typedef struct py_interp_table {
  py_interp items[PY_INTERP_MAX];
  int n;
} py_interp_table;

/* Scans the standard places (/usr/bin/python3*, /usr/local/bin/python3*, /usr/bin/python2*)
 * and then `extra`: a ':' or ',' separated list of interpreter paths (may be NULL). Files that
 * are not executable regular files named python<major>[.<minor>] are skipped. Paths that
 * resolve to the same file become aliases of one entry. */
void py_interp_discover(py_interp_table *t, const char *extra);

/* Picks an interpreter: "" or NULL = the first Python 3; "3" = the first 3.x; "3.11" = the
 * first 3.11 or 3.11.x; "3.11.7" = that exact version; "/abs/path" = the entry with that path
 * or alias. NULL when none matches. No I/O. */
const py_interp *py_interp_find(const py_interp_table *t, const char *want);

/* "3.11 /usr/bin/python3.11, 3.11.7 /root/..." into buf (truncated to cap). */
void py_interp_list(const py_interp_table *t, char *buf, size_t cap);

#endif
