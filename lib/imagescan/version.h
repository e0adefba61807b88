/* Package version comparison in the three schemes a scan meets: Debian (`dpkg
 * --compare-versions`: epoch, upstream and revision, `~` before everything, letters before
 * other characters), Alpine's apk (digits, one letter, _alpha/_beta/_pre/_rc below the
 * release and _cvs/_svn/_git/_hg/_p above it, -rN) and Python's PEP 440 (epoch, release,
 * a/b/rc, .post, .dev, +local; the spellings PEP 440 normalises accepted).
 *
 * The comparators never read past a string's end and never allocate; a version that is not
 * valid in its scheme is an error (MU_EINVAL naming it), never a guess. */
#ifndef MU_IMAGESCAN_VERSION_H
#define MU_IMAGESCAN_VERSION_H

#include <stdbool.h>

#include "lib/base/err.h"

typedef enum { MU_VER_DEB = 0, MU_VER_APK, MU_VER_PEP440 } mu_ver_scheme;

#define MU_VER_MAX 256 /* longest version accepted, bytes */

/* "Debian", "Alpine", "PyPI". */
const char *mu_ver_scheme_name(mu_ver_scheme s);

/* True when v is a valid version of the scheme. dpkg only warns about an upstream part that
 * does not start with a digit; so do we (accepted). */
bool mu_ver_valid(mu_ver_scheme s, const char *v);

/* Compares a and b: *ret < 0, 0 or > 0. MU_EINVAL (message naming the bad one) when either
 * is not valid in the scheme. */
int mu_ver_compare(mu_ver_scheme s, const char *a, const char *b, int *ret, mu_err *err);

/* The schemes one by one (valid inputs only; an invalid one compares as its best guess). */
int mu_ver_deb_cmp(const char *a, const char *b);
bool mu_ver_deb_valid(const char *v);
int mu_ver_apk_cmp(const char *a, const char *b);
bool mu_ver_apk_valid(const char *v);
int mu_ver_pep440_cmp(const char *a, const char *b);
bool mu_ver_pep440_valid(const char *v);

#endif
