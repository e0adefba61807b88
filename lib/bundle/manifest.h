/* The bundle manifest (MANIFEST.json, the first archive entry): name, version, entry point,
 * creation time and every entry's path, type, mode, size and sha256. Its bytes are canonical
 * JSON (sorted keys, no whitespace), so the bytes a signature covers have one spelling. */
#ifndef MU_BUNDLE_MANIFEST_H
#define MU_BUNDLE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_MANIFEST_FORMAT 1
#define MU_BUNDLE_NAME_MAX 128

typedef enum {
  MU_BUNDLE_FILE = 0, /* regular file: size + sha256 */
  MU_BUNDLE_DIR,      /* directory */
  MU_BUNDLE_SYMLINK,  /* symlink: target (relative, stays inside the bundle) */
} mu_bundle_ftype;

typedef struct mu_bundle_file {
  char *path; /* relative, no '.'/'..'/empty components, no trailing '/' */
  mu_bundle_ftype type;
  uint32_t mode;      /* permission bits only (0..0777) */
  uint64_t size;      /* files only, else 0 */
  uint8_t sha256[32]; /* files only, else zero */
  char *target;       /* symlinks only, else NULL */
} mu_bundle_file;

typedef struct mu_manifest {
  int format; /* MU_MANIFEST_FORMAT */
  char *name;
  char *version;
  char *entry;        /* a listed regular file, or NULL */
  int64_t created_at; /* seconds since the epoch; also every entry's mtime */
  size_t n_files;
  mu_bundle_file *files; /* sorted by strcmp(path), unique */
} mu_manifest;

/* Frees m and everything it owns; NULL is fine. */
void mu_manifest_free(mu_manifest *m);

/* Serializes m to canonical JSON. *ret_json is owned by the caller (free()); NUL-terminated,
 * *ret_len excludes the NUL. Returns 0 or MU_ENOMEM. Does not validate m. */
int mu_manifest_to_json(const mu_manifest *m, char **ret_json, size_t *ret_len, mu_err *err);

/* Parses and validates manifest bytes: known format, valid name and version, every path safe
 * (mu_bundle_path_check), sorted and unique, symlink targets inside (mu_bundle_link_check),
 * entry names a listed regular file, at most max_files entries and their sizes summing to at
 * most max_total_bytes, and the bytes are exactly the canonical serialization. On success
 * *ret (caller frees with mu_manifest_free). Errors: MU_EINVAL / MU_ENOSPC, message prefixed
 * "manifest: ". */
int mu_manifest_parse(const char *json, size_t len, uint64_t max_files, uint64_t max_total_bytes, mu_manifest **ret,
                      mu_err *err);

/* Finds path (no trailing '/') in m by binary search; returns its index or -1. */
long mu_manifest_find(const mu_manifest *m, const char *path);

/* Bundle names: 1..128 bytes of [A-Za-z0-9._-], not starting with '.' or '-'. */
int mu_bundle_name_check(const char *name, mu_err *err);

/* A path inside a bundle: non-empty, at most MU_BUNDLE_PATH_MAX bytes, relative, no empty,
 * '.' or '..' components, no control characters, not the manifest's own name. The message
 * names the entry and the rule, e.g. "entry '../x': path escapes the task dir". */
int mu_bundle_path_check(const char *path, mu_err *err);

/* A symlink at `path` pointing to `target` must stay inside the bundle: target relative and
 * non-empty, '..' only as leading components and no more of them than path's directory depth.
 * (Leading-only '..' means no symlink chain can climb out; see docs/bundles.md.) */
int mu_bundle_link_check(const char *path, const char *target, mu_err *err);

#endif
