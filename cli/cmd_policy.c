/* muster policy set / show / test: the cluster's image admission policy (docs/images.md). */
#include <stdio.h>

#include "cli/commands.h"

int mu_cmd_policy(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts, (void)argc, (void)argv;
  fprintf(stderr, "muster policy: not implemented yet\n");
  return 2;
}
