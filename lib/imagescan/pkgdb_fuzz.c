/* Fuzzes the package database parsers (pkgdb.c) with the same bytes as a dpkg status file,
 * a status.d file, an apk database, a METADATA file and an os-release. Properties: no
 * parse fails on hostile bytes (only the package bound can), every package kept has a
 * non-empty name and version, and the package bound holds. */
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/imagescan/pkgdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  mu_inventory inv;
  memset(&inv, 0, sizeof inv);
  mu_err err = {0};
  MU_FUZZ_CHECK(mu_pkgdb_dpkg_parse(buf, size, "var/lib/dpkg/status", true, &inv, 0, &err) == 0);
  MU_FUZZ_CHECK(mu_pkgdb_dpkg_parse(buf, size, "var/lib/dpkg/status.d/x", false, &inv, 0, &err) == 0);
  MU_FUZZ_CHECK(mu_pkgdb_apk_parse(buf, size, "lib/apk/db/installed", &inv, 0, &err) == 0);
  MU_FUZZ_CHECK(mu_pkgdb_python_parse(buf, size, "x.dist-info/METADATA", &inv, 0, &err) == 0);
  mu_osrelease_parse(buf, size, &inv.os);
  for (size_t i = 0; i < inv.n_pkgs; i++) MU_FUZZ_CHECK(inv.pkgs[i].name[0] != '\0' && inv.pkgs[i].version[0] != '\0');
  size_t before = inv.n_pkgs;
  int rc = mu_pkgdb_dpkg_parse(buf, size, "var/lib/dpkg/status", false, &inv, before + 1, &err);
  MU_FUZZ_CHECK(inv.n_pkgs <= before + 1 && (rc == 0 || rc == MU_ENOSPC));
  mu_inventory_free(&inv);
  return 0;
}
