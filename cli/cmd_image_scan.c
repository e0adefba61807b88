/* muster image scan / feed (docs/images.md). */
#include <stdio.h>

#include "cli/commands.h"

int mu_cmd_image_scan(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts, (void)argc, (void)argv;
  fprintf(stderr, "muster image scan: not implemented yet\n");
  return 2;
}

int mu_cmd_image_feed(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts, (void)argc, (void)argv;
  fprintf(stderr, "muster image feed: not implemented yet\n");
  return 2;
}
