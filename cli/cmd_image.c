/* `muster image` (docs/images.md): routes build / sign / verify / scan / feed to the file that
 * owns each (cmd_image_build.c, cmd_image_sign.c, cmd_image_scan.c). `muster images` (plural,
 * cmd_images.c) lists the agents' stores. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: muster image build|sign|verify|scan|feed ...\n\n"
          "  build DIR -t REF [--push]   build an image from DIR/Musterfile\n"
          "  sign REF --key K            sign an image's manifest digest (Ed25519)\n"
          "  verify REF --pub P          check an image's signature\n"
          "  scan REF [--feed DIR]       inventory, vulnerabilities and risky facts\n"
          "  feed update DIR             import an offline OSV vulnerability feed\n\n"
          "`muster image SUBCOMMAND --help` tells more.\n");
}

int mu_cmd_image(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "build") == 0) return mu_cmd_image_build(opts, argc - 1, argv + 1);
  if (strcmp(sub, "sign") == 0) return mu_cmd_image_sign(opts, argc - 1, argv + 1);
  if (strcmp(sub, "verify") == 0) return mu_cmd_image_verify(opts, argc - 1, argv + 1);
  if (strcmp(sub, "scan") == 0) return mu_cmd_image_scan(opts, argc - 1, argv + 1);
  if (strcmp(sub, "feed") == 0) return mu_cmd_image_feed(opts, argc - 1, argv + 1);
  fprintf(stderr, "muster image: unknown subcommand '%s' (build, sign, verify, scan, feed)\n", sub);
  return 2;
}
