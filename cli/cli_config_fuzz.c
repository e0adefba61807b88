/* Fuzzes the CLI config file (cli_config.h): a YAML file of contexts, loaded from a memfd.
 * Beyond "no crash, no leak": a refusal says why; an accepted file's current_context names one
 * of its contexts, every context name is unique, and its paths are absolute once resolved
 * (relative ones from the file's directory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_config.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = mu_fuzz_memfile(data, size, path, sizeof path);
  if (fd < 0) return 0;
  setenv("HOME", "/home/fuzz", 1);
  mu_cli_config cfg;
  mu_err err = {0};
  int rc = mu_cli_config_load(path, &cfg, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc < 0 && err.code == rc && err.msg[0] != '\0');
  } else {
    MU_FUZZ_CHECK(cfg.current[0] == '\0' || mu_cli_config_find(&cfg, cfg.current) != NULL);
    for (size_t i = 0; i < cfg.n; i++) {
      const mu_cli_context *c = &cfg.contexts[i];
      MU_FUZZ_CHECK(mu_cli_config_find(&cfg, c->name) == c);
      const char *paths[] = {c->ca, c->cert, c->key};
      for (int k = 0; k < 3; k++) MU_FUZZ_CHECK(paths[k] == NULL || paths[k][0] == '/');
    }
  }
  mu_cli_config_free(&cfg);
  close(fd);
  return 0;
}
