/* One OSV record (https://ossf.github.io/osv-schema/) turned into the feed's index lines, one
 * per affected package of a supported ecosystem (Debian and Debian:N, Ubuntu:N, Alpine and
 * Alpine:vN.N, PyPI; others are skipped):
 *
 *   ECOSYSTEM \t NAME \t ID \t SEVERITY \t PUBLISHED \t ALIASES \t RANGES \t VERSIONS \n
 *
 * NAME is PEP 503-normalised for PyPI; SEVERITY is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
 * (from database_specific.severity, the affected entry's, or a CVSS v3 vector in severity[]);
 * PUBLISHED is the date part; ALIASES are comma-separated; RANGES are the ECOSYSTEM ranges,
 * '|' between ranges and ';' between events, each event "i:V" (introduced), "f:V" (fixed) or
 * "l:V" (last_affected); VERSIONS the listed affected versions, '|'-separated.
 *
 * A record is refused (MU_EINVAL, the message naming the field) when it is not a JSON object
 * with a string id, when a field has the wrong type, when a range event's version is not
 * valid in its ecosystem's scheme, or when a name, id or version holds a character the index
 * cannot carry. A listed version (versions[]) that is not valid is left out and counted: it
 * could never equal an installed version (those are matched only when valid). */
#ifndef MU_IMAGESCAN_OSV_H
#define MU_IMAGESCAN_OSV_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"
#include "lib/imagescan/version.h"

#define MU_OSV_ID_MAX 128

/* A growing text buffer the caller owns (free(buf->data)). */
typedef struct mu_textbuf {
  char *data;
  size_t len, cap;
} mu_textbuf;

int mu_textbuf_append(mu_textbuf *b, const char *s, size_t n);

typedef struct mu_osv_result {
  char id[MU_OSV_ID_MAX + 1];
  bool withdrawn;          /* the record says it is withdrawn: no lines */
  size_t lines;            /* lines appended */
  size_t skipped_eco;      /* affected entries of ecosystems not supported */
  size_t versions_dropped; /* versions[] entries not valid in their scheme (left out) */
} mu_osv_result;

/* Parses the record in buf[0..len) and appends its lines to out. */
int mu_osv_record_lines(const char *buf, size_t len, mu_textbuf *out, mu_osv_result *ret, mu_err *err);

/* The version scheme of an ecosystem ("Debian:12" -> MU_VER_DEB); false when unsupported. */
bool mu_osv_ecosystem_scheme(const char *ecosystem, mu_ver_scheme *ret);

/* PEP 503: lower case, runs of '-', '_' and '.' made one '-'; into out (cap bytes). */
void mu_pypi_normalize(const char *name, char *out, size_t cap);

/* A CVSS v3.x vector's base score (0.0-10.0), or -1 when the vector is not one. */
double mu_cvss3_base_score(const char *vector);

/* The severity level of a score: "CRITICAL" >= 9, "HIGH" >= 7, "MEDIUM" >= 4, "LOW" > 0,
 * else "UNKNOWN". */
const char *mu_severity_of_score(double score);

#endif
