/* Parsers of what an image says about itself, from bytes (bounded by the caller): os-release,
 * dpkg's status database (and a status.d/ stanza file), apk's installed database, and a
 * Python distribution's METADATA. Each appends to a mu_inventory; a stanza without a name or
 * a version is skipped and counted in inv->pkgs_bad. Only MU_ENOSPC (max_pkgs) and MU_ENOMEM
 * fail a parse: hostile bytes never do. */
#ifndef MU_IMAGESCAN_PKGDB_H
#define MU_IMAGESCAN_PKGDB_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"
#include "lib/imagescan/inventory.h"

/* KEY=value lines (values optionally quoted) into os: ID, VERSION_ID, VERSION_CODENAME,
 * PRETTY_NAME. */
void mu_osrelease_parse(const char *buf, size_t len, mu_os *os);

/* RFC 822-style stanzas: Package, Version, Source ("name" or "name (version)"), Status. With
 * need_status (var/lib/dpkg/status) only stanzas whose Status ends in "installed" count; a
 * status.d/ file's stanzas count unless their Status says otherwise. */
int mu_pkgdb_dpkg_parse(const char *buf, size_t len, const char *path, bool need_status, mu_inventory *inv,
                        size_t max_pkgs, mu_err *err);

/* apk's "P:name", "V:version", "o:origin" records, separated by blank lines. */
int mu_pkgdb_apk_parse(const char *buf, size_t len, const char *path, mu_inventory *inv, size_t max_pkgs, mu_err *err);

/* The "Name:" and "Version:" headers of a METADATA file (up to the first blank line). */
int mu_pkgdb_python_parse(const char *buf, size_t len, const char *path, mu_inventory *inv, size_t max_pkgs,
                          mu_err *err);

#endif
