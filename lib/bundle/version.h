/* Bundle versions and the rollback rule. A version is semver-ish:
 *   NUM(.NUM)*[-PRE][+BUILD]   e.g. "1", "1.2.10", "2.0.0-rc.1", "1.0+git.abc"
 * NUM is decimal digits (any length); PRE is dot-separated [0-9A-Za-z-] identifiers; BUILD is
 * ignored when comparing. At most 64 bytes. */
#ifndef MU_BUNDLE_VERSION_H
#define MU_BUNDLE_VERSION_H

#include "lib/base/err.h"

#define MU_BUNDLE_VERSION_MAX 64

/* Returns 0 when text is a valid version, else MU_EINVAL naming the problem. */
int mu_bundle_version_check(const char *text, mu_err *err);

/* Compares two versions: <0 when a < b, 0 when equal, >0 when a > b. Numeric components
 * compare as numbers (missing ones count as 0, so 1.0 == 1.0.0); a pre-release sorts before
 * its release (1.0-rc.1 < 1.0); pre-release identifiers compare as in semver (numeric
 * numerically, numeric < alphanumeric, a shorter list first). An invalid version sorts below
 * every valid one (so it never wins a rollback check); two invalid ones compare by strcmp. */
int mu_bundle_version_cmp(const char *a, const char *b);

/* The agent's rollback rule: refuses `incoming` when it is lower than `last_ran` (the
 * highest version of bundle `name` this host already ran; NULL when none). Returns 0,
 * MU_EPERM ("bundle 'x': version 1.2 is lower than 1.3 already run here (rollback refused)")
 * or MU_EINVAL when incoming is not a valid version. */
int mu_bundle_rollback_check(const char *name, const char *last_ran, const char *incoming, mu_err *err);

#endif
