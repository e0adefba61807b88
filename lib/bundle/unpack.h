/* Verify-then-unpack: a bundle's digest and signature are checked against the caller's
 * expectations and trust set before a single byte reaches the disk; then every entry is
 * checked against the manifest and the safety rules and extracted with libarchive's secure
 * flags. A refusal removes the destination directory; nothing is written outside it. */
#ifndef MU_BUNDLE_UNPACK_H
#define MU_BUNDLE_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/bundle/bundle.h"
#include "lib/bundle/verify.h"

/* Flags for mu_bundle_unpack_ex. */
#define MU_UNPACK_NO_UNSHARE \
  1u /* don't give the extracting thread a private cwd; extract by
                                 * absolute paths instead (what happens automatically when
                                 * unshare(CLONE_FS) is denied, e.g. by a seccomp profile) */

/* Verifies data (mu_bundle_verify with check and limits; NULL limits = defaults), then
 * creates dest_dir (mode 0755; its parent must exist, it must not) and extracts into it.
 * Rules, each refused with a message naming the entry and the rule:
 *   absolute paths, '..' components, symlinks whose target leaves the dir, entries written
 *   through a symlink, hardlinks, device nodes, FIFOs, sockets, sparse files, setuid/setgid/
 *   sticky bits (MU_EINVAL); more entries than max_entries, a file over max_file_bytes, a
 *   total over max_total_bytes (MU_ENOSPC, counted on the bytes actually decompressed);
 *   an entry not in the manifest, listed twice, with another type, mode, size, target or
 *   sha256 than the manifest says, or a listed entry missing (MU_EINVAL); a truncated or
 *   corrupt archive (MU_EINVAL).
 * Owners, times, xattrs, ACLs and file flags in the archive are never applied.
 * The extraction runs on a short-lived thread whose cwd is dest_dir (unshare(CLONE_FS)), so
 * libarchive's ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS applies; the call blocks until done.
 * On success *ret_info (caller frees with mu_bundle_info_free) if non-NULL. On failure the
 * destination is removed (MU_EEXIST when it already existed: then it is left alone). */
int mu_bundle_unpack(const uint8_t *data, size_t len, const mu_bundle_check *check, const mu_unpack_limits *limits,
                     const char *dest_dir, mu_bundle_info **ret_info, mu_err *err);

/* mu_bundle_unpack with MU_UNPACK_* flags. */
int mu_bundle_unpack_ex(const uint8_t *data, size_t len, const mu_bundle_check *check, const mu_unpack_limits *limits,
                        const char *dest_dir, unsigned flags, mu_bundle_info **ret_info, mu_err *err);

/* Extracts data that mu_bundle_verify already passed, as info (what it returned), without
 * hashing or checking the signature again: the same entry rules, limits and manifest checks
 * as mu_bundle_unpack apply while extracting (each entry's sha256 against the manifest).
 * data must be the very bytes verified (MU_EINVAL when their length differs from
 * info->archive_bytes); the caller keeps them unchanged in between. Errors as above. */
int mu_bundle_unpack_verified(const uint8_t *data, size_t len, const mu_bundle_info *info,
                              const mu_unpack_limits *limits, const char *dest_dir, unsigned flags, mu_err *err);

#endif
