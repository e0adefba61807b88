/* The release number and the git commit a binary was built from, for `--version` on musterd,
 * muster-agent and muster. The commit is stamped only in stamped builds (`bazel build
 * --config=release`, which runs scripts/workspace_status); every other build says "unknown",
 * so test binaries stay cached across commits. */
#ifndef MU_VERSION_H
#define MU_VERSION_H

#include <stdio.h>

/* The release number (also the .deb's version, scripts/package). */
#define MU_RELEASE "0.1.0"

/* The full git commit id ("-dirty" appended when the tree had changes), or "unknown". */
const char *mu_build_commit(void);

/* Writes "PROGRAM VERSION (commit COMMIT)\n" to out, e.g. "muster 0.1.0 (commit 95b14d9...)". */
void mu_version_print(FILE *out, const char *program);

#endif
