/* Test tool for registry_write.h against a real registry (imagesig_test.py): stores a file as a
 * blob in REPO (plain http, loopback), optionally asking for a cross-repository mount first,
 * and prints how: "uploaded", "existed" or "mounted" and the digest.
 *   registry_write_tool HOST:PORT/REPO FILE [MOUNT_FROM_REPO] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/container/registry_write.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: registry_write_tool HOST:PORT/REPO FILE [MOUNT_FROM_REPO]\n");
    return 2;
  }
  mu_imgref ref;
  mu_err err = {0};
  if (mu_imgref_parse(argv[1], NULL, &ref, &err) != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 2;
  }
  FILE *f = fopen(argv[2], "rb");
  static char buf[1 << 20];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  mu_registry_opts o = {.insecure = true};
  mu_registry *r = NULL;
  mu_blob_put_how how = 0;
  int rc = mu_registry_new(&ref, &o, &r, &err);
  if (rc == 0) rc = mu_registry_put_blob(r, buf, n, argc > 3 ? argv[3] : NULL, &how, &err);
  mu_registry_free(r);
  if (rc != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  char digest[72];
  mu_registry_sha256(buf, n, digest);
  printf("%s %s\n", how == MU_BLOB_MOUNTED ? "mounted" : how == MU_BLOB_EXISTED ? "existed" : "uploaded", digest);
  return 0;
}
