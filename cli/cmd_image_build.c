/* muster image build (docs/images.md). */
#include <stdio.h>

#include "cli/commands.h"

int mu_cmd_image_build(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts, (void)argc, (void)argv;
  fprintf(stderr, "muster image build: not implemented yet\n");
  return 2;
}
