/* Fuzzes the extraction of a host's tar (`muster cp --from-hosts`): whatever the bytes, the
 * call returns with a message on refusal and nothing appears beside the destination. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cp_extract.h"
#include "lib/fuzz/fuzz_util.h"

static void remove_tree(const char *path) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char box[] = "/tmp/cp-extract-fuzz-XXXXXX";
  MU_FUZZ_CHECK(mkdtemp(box) != NULL);
  char dest[64];
  snprintf(dest, sizeof dest, "%s/dest", box);
  mu_err err = {0};
  mu_cp_limits limits = {.max_entries = 64, .max_bytes = 1 << 20};
  int rc = mu_cp_extract_mem(data, size, dest, &limits, NULL, &err);
  MU_FUZZ_CHECK(rc == 0 || (rc < 0 && err.msg[0] != '\0'));
  /* the box holds the destination and nothing else */
  DIR *d = opendir(box);
  MU_FUZZ_CHECK(d != NULL);
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    MU_FUZZ_CHECK(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcmp(de->d_name, "dest") == 0);
  closedir(d);
  remove_tree(box);
  return 0;
}
