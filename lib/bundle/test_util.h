/* Test helpers for //lib/bundle:bundle_test: scratch directories, file writing, and a crafter
 * that builds (possibly malicious) bundles with libarchive's writer directly — a manifest
 * listing only the entries the test chooses, then the entries in the order given. */
#ifndef MU_BUNDLE_TEST_UTIL_H
#define MU_BUNDLE_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/bundle/keys.h"

/* A fresh empty directory under $TEST_TMPDIR (or /tmp); caller frees the string. */
char *tu_mkdtemp(void);
/* Joins dir and rel into a malloc'd string. */
char *tu_path(const char *dir, const char *rel);
/* Writes a file (creating it) with mode; asserts on failure. */
void tu_write(const char *dir, const char *rel, const char *content, mode_t mode);
void tu_mkdir(const char *dir, const char *rel, mode_t mode);
/* Reads a whole file into a malloc'd NUL-terminated buffer; asserts on failure. */
uint8_t *tu_read(const char *path, size_t *ret_len);
/* Number of entries in dir (excluding . and ..), -1 when it does not exist. */
int tu_count_entries(const char *dir);
bool tu_exists(const char *path);
/* rm -rf without following symlinks. */
void tu_rm_rf(const char *path);
/* A trust set holding pk (asserts). */
mu_trust_set *tu_trust(const mu_pubkey *pk);

typedef enum {
  TU_FILE,
  TU_DIR,
  TU_SYMLINK,
  TU_HARDLINK,
  TU_CHR,
  TU_FIFO,
  TU_ZEROS, /* a regular file of `zeros` zero bytes, generated while writing */
} tu_kind;

typedef struct tu_craft tu_craft;

tu_craft *tu_craft_new(void);
/* Adds an entry. listed: also describe it in the manifest (files, dirs and symlinks only;
 * for a file the manifest carries listed_data's size and sha, or data's when NULL). */
void tu_craft_file(tu_craft *c, const char *path, const char *data, mode_t mode, bool listed, const char *listed_data);
void tu_craft_dir(tu_craft *c, const char *path, mode_t mode, bool listed);
void tu_craft_symlink(tu_craft *c, const char *path, const char *target, bool listed);
void tu_craft_hardlink(tu_craft *c, const char *path, const char *target);
void tu_craft_node(tu_craft *c, const char *path, tu_kind kind, mode_t mode);
void tu_craft_zeros(tu_craft *c, const char *path, uint64_t size, bool listed);
/* Lists a file in the manifest without adding an entry (a "missing" file). */
void tu_craft_list_only(tu_craft *c, const char *path, const char *data);
/* Skips the manifest entry (for "manifest must be first"). */
void tu_craft_no_manifest(tu_craft *c);
/* Writes the archive (zstd-compressed tar) into *ret (caller frees) and frees c. */
void tu_craft_build(tu_craft *c, uint8_t **ret, size_t *ret_len);

#endif
