/* muster-scan: the helper `muster image scan|feed` execs (see cmd_image_scan.c), so that
 * only a scan loads the scanner's libraries. Usage: muster-scan [-o json] [-q] scan|feed ARGS;
 * the output options come first, as `muster` passes them. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"

int main(int argc, char **argv) {
  mu_cli_opts opts = {.timeout_ms = 10000};
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && strcmp(argv[i + 1], "json") == 0) {
      opts.json = 1;
      i++;
    } else if (strcmp(argv[i], "-q") == 0) {
      opts.quiet = 1;
    } else {
      break;
    }
  }
  if (i < argc && strcmp(argv[i], "scan") == 0) return mu_cmd_image_scan(&opts, argc - i, argv + i);
  if (i < argc && strcmp(argv[i], "feed") == 0) return mu_cmd_image_feed(&opts, argc - i, argv + i);
  fprintf(stderr, "usage: muster-scan [-o json] [-q] scan|feed ... (run as `muster image scan|feed`)\n");
  return MU_EXIT_USAGE;
}
