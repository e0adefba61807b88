/* An inventory matched against a feed: the findings. A package is looked up under the
 * ecosystems its OS gives (dpkg on debian 12: "Debian" and "Debian:12"; on ubuntu 22.04 also
 * "Ubuntu:22.04:LTS"; apk on alpine 3.19.1:
 * "Alpine" and "Alpine:v3.19"; Python: "PyPI") and under its source package name (dpkg
 * Source, apk origin: what Debian and Alpine records name) and its own name. A record
 * affects the installed version when one of its ECOSYSTEM ranges holds it (OSV's rule:
 * events in version order, introduced opens, fixed or above last_affected closes) or its
 * versions list names it; the fixed-in version is the range's first fix above it. */
#ifndef MU_IMAGESCAN_MATCH_H
#define MU_IMAGESCAN_MATCH_H

#include <stddef.h>

#include "lib/base/err.h"
#include "lib/imagescan/feed.h"
#include "lib/imagescan/inventory.h"

typedef enum { MU_SEV_CRITICAL = 0, MU_SEV_HIGH, MU_SEV_MEDIUM, MU_SEV_LOW, MU_SEV_UNKNOWN, MU_SEV_COUNT } mu_severity;

typedef struct mu_finding {
  size_t pkg; /* index into the inventory's packages */
  mu_severity severity;
  char *id, *aliases, *fixed, *published, *ecosystem; /* fixed "" when no fix is known */
} mu_finding;

typedef struct mu_findings {
  mu_finding *v;
  size_t n, cap;
  size_t pkgs_bad_version; /* installed versions not valid in their scheme: not matched */
  size_t count[MU_SEV_COUNT];
} mu_findings;

/* Fills ret (zeroed here; mu_findings_free also after a failure), sorted by severity, then
 * package, then id; one finding per (package, record). Only MU_ENOMEM fails. */
int mu_match(const mu_inventory *inv, const mu_feed *feed, mu_findings *ret, mu_err *err);
void mu_findings_free(mu_findings *f);

/* "CRITICAL", ...; and back (case-insensitive), MU_SEV_COUNT when unknown. */
const char *mu_finding_severity_name(mu_severity s);
mu_severity mu_finding_severity_parse(const char *s);

/* Whether version (valid in scheme) is affected by the entry's ranges and versions; the
 * fixed-in version (or "") into fixed. */
bool mu_match_entry(mu_ver_scheme scheme, const char *version, const mu_feed_entry *e, char fixed[MU_VER_MAX + 1]);

#endif
