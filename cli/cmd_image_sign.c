/* muster image sign / verify (docs/images.md). */
#include <stdio.h>

#include "cli/commands.h"

int mu_cmd_image_sign(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts, (void)argc, (void)argv;
  fprintf(stderr, "muster image sign: not implemented yet\n");
  return 2;
}

int mu_cmd_image_verify(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts, (void)argc, (void)argv;
  fprintf(stderr, "muster image verify: not implemented yet\n");
  return 2;
}
