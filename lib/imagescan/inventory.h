/* What an image holds, read from its layers as tar streams (libarchive: plain, gzip or zstd)
 * without unpacking anything to disk: the OS (etc/os-release, else usr/lib/os-release), the
 * packages (var/lib/dpkg/status and status.d/ files, lib/apk/db/installed, Python's
 * .../{site,dist}-packages/NAME.dist-info/METADATA) and the risky facts that need no feed
 * (setuid/setgid files, world-writable directories without the sticky bit, files that look
 * like secrets: private keys by their PEM header, .env, id_rsa, .netrc, ...).
 *
 * Layers are read bottom to top and OCI whiteouts apply across them: `.wh.NAME` hides NAME
 * (and what is under it) from lower layers, `.wh..wh..opq` hides a directory's lower
 * contents; an upper entry for the same path replaces a lower one. Every bound is in
 * mu_inventory_limits; going past one fails the read with MU_ENOSPC naming the bound and the
 * layer, except risky facts past max_risks, which are counted (risks_dropped). */
#ifndef MU_IMAGESCAN_INVENTORY_H
#define MU_IMAGESCAN_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef enum { MU_PKG_DPKG = 0, MU_PKG_APK, MU_PKG_PYTHON } mu_pkg_kind;

typedef struct mu_pkg {
  mu_pkg_kind kind;
  char *name, *version;
  char *source, *source_version; /* dpkg Source / apk origin; NULL when the same as the package's */
  char *path;                    /* the database it came from, e.g. "var/lib/dpkg/status" */
} mu_pkg;

typedef enum {
  MU_RISK_SETUID = 0,
  MU_RISK_SETGID,
  MU_RISK_WORLD_WRITABLE_DIR,
  MU_RISK_SECRET,
  MU_RISK_ROOT_USER,
} mu_risk_kind;

typedef struct mu_risk {
  mu_risk_kind kind;
  char *path;   /* in the image, no leading '/'; "" for the root user */
  char *detail; /* e.g. "mode 4755 owner 0", "PEM private key", "file name" */
} mu_risk;

typedef struct mu_os {
  char id[64], version_id[64], codename[64], pretty[128];
} mu_os;

typedef struct mu_inventory {
  mu_os os;
  mu_pkg *pkgs;
  size_t n_pkgs, cap_pkgs;
  mu_risk *risks;
  size_t n_risks, cap_risks;
  size_t risks_dropped; /* past max_risks */
  size_t pkgs_bad;      /* database stanzas without a name or version, skipped */
  uint64_t entries;     /* tar entries read over every layer */
} mu_inventory;

typedef struct mu_inventory_limits {
  uint64_t max_entries;    /* tar entries over all layers; 0 = 2,000,000 */
  uint64_t max_db_bytes;   /* one package database or METADATA file; 0 = 64 MiB */
  uint64_t max_kept_bytes; /* all database bytes kept at once; 0 = 256 MiB */
  size_t max_pkgs;         /* packages; 0 = 200,000 */
  size_t max_risks;        /* risky facts kept; 0 = 1,000 */
} mu_inventory_limits;

/* Reads layers[0..n) (bottom first) into ret (zeroed here; free with mu_inventory_free, also
 * after a failure). MU_EIO names a layer libarchive cannot read; MU_ENOSPC a bound. */
int mu_inventory_read_layers(const char *const *layers, size_t n, const mu_inventory_limits *limits, mu_inventory *ret,
                             mu_err *err);

void mu_inventory_free(mu_inventory *inv);

/* Appends to inv (copies of the strings; source/source_version NULL or "" = none).
 * MU_ENOSPC past max (0 = no bound), MU_ENOMEM. */
int mu_inventory_add_pkg(mu_inventory *inv, mu_pkg_kind kind, const char *name, const char *version, const char *source,
                         const char *source_version, const char *path, size_t max, mu_err *err);
/* Appends a risky fact, or counts it in risks_dropped past max (0 = 1,000). */
void mu_inventory_add_risk(mu_inventory *inv, mu_risk_kind kind, const char *path, const char *detail, size_t max);

/* Sorts packages by kind, name, version and risks by kind, path (stable output). */
void mu_inventory_sort(mu_inventory *inv);

/* "dpkg", "apk", "python"; "setuid", "setgid", "world-writable-dir", "secret", "root-user". */
const char *mu_pkg_kind_name(mu_pkg_kind k);
const char *mu_risk_kind_name(mu_risk_kind k);

#endif
