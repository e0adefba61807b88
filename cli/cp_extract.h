/* Extracting what `muster cp --from-hosts` collects: a plain tar written by `tar -cf -` on a
 * host, which may be hostile. Entries land under dest_dir only: no absolute paths, no "..",
 * nothing written through a symlink (libarchive's SECURE_* flags), and only regular files,
 * directories and symlinks; setuid/setgid/sticky bits are dropped, owners and times are
 * not applied (files belong to whoever runs the CLI). */
#ifndef MU_CLI_CP_EXTRACT_H
#define MU_CLI_CP_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_cp_limits {
  size_t max_entries; /* 0: 100,000 */
  uint64_t max_bytes; /* of file data in all; 0: 4 GiB */
} mu_cp_limits;

/* Extracts the tar at tar_path into dest_dir (created if missing, mode 0755). Returns 0 and
 * the number of entries in *ret_entries, or MU_EINVAL naming the entry and the rule (a device
 * node, a hardlink, a path that leaves the dir, a truncated archive), MU_ENOSPC over a limit,
 * MU_EIO for a write that failed. What was extracted before a refusal stays. */
int mu_cp_extract_file(const char *tar_path, const char *dest_dir, const mu_cp_limits *limits, size_t *ret_entries,
                       mu_err *err);

/* The same from memory (tests and the fuzzer). */
int mu_cp_extract_mem(const uint8_t *data, size_t len, const char *dest_dir, const mu_cp_limits *limits,
                      size_t *ret_entries, mu_err *err);

#endif
