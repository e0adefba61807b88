/* Small file helpers for the python plugin's thread-pool work (never called on the loop):
 * mkdir -p, remove or size a tree, read a small file, write a file atomically. Thread-safe;
 * each returns 0 or a negative errno. Internal to the plugin. */
#ifndef PY_FSUTIL_H
#define PY_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p; each directory created gets mode 0755, and the leaf is chmod'ed to 0755 when we
 * own it (so a cache made under a tight umask is still readable by task users). */
int py_fs_mkdirs(const char *path);

/* Walks a tree without following symlinks: removes it when remove, and adds the bytes of its
 * regular files to *size when size is not NULL. A missing path is 0. */
int py_fs_walk(const char *path, bool remove, uint64_t *size);
int py_fs_rmtree(const char *path);

/* Reads up to cap bytes of path into buf; *ret_len gets the count. */
int py_fs_read_small(const char *path, char *buf, size_t cap, size_t *ret_len);

/* Writes data to path through a temp file and rename, with the given mode. */
int py_fs_write_file(const char *path, const char *data, size_t len, mode_t mode);

/* py_fs_write_file with mode 0644, skipped when path already holds exactly data. */
int py_fs_write_if_changed(const char *path, const char *data, size_t len);

#endif
