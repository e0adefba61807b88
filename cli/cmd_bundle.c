/* `muster bundle`: the offline subcommands (pack, sign, verify; bundle_local.h) and the ones
 * that talk to the control plane (push, ls, rm; cmd_bundle_remote.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bundle_local.h"
#include "cli/commands.h"

int mu_cmd_bundle(const mu_cli_opts *opts, int argc, char **argv) {
  static const char bundle_usage[] =
      "usage: muster bundle pack DIR --name NAME --version VERSION --out FILE\n"
      "       muster bundle sign FILE --key PREFIX.key\n"
      "       muster bundle verify FILE --pub PREFIX.pub\n"
      "       muster bundle push FILE          (uploads FILE and FILE.sig if present)\n"
      "       muster bundle ls [NAME]\n"
      "       muster bundle rm NAME@VERSION|sha256:DIGEST\n";
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(bundle_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "push") == 0) return mu_cmd_bundle_push(opts, argc - 1, argv + 1);
  if (strcmp(argv[1], "ls") == 0) return mu_cmd_bundle_ls(opts, argc - 1, argv + 1);
  if (strcmp(argv[1], "rm") == 0) return mu_cmd_bundle_rm(opts, argc - 1, argv + 1);
  int (*local)(int, char **) = strcmp(argv[1], "pack") == 0     ? mu_cli_bundle_pack
                               : strcmp(argv[1], "sign") == 0   ? mu_cli_bundle_sign
                               : strcmp(argv[1], "verify") == 0 ? mu_cli_bundle_verify
                                                                : NULL;
  if (local != NULL) {
    /* Local subcommands read -o themselves; main took it out of argv. */
    char **sub = calloc((size_t)argc + 3, sizeof *sub);
    if (sub == NULL) return 1;
    int n = 0;
    for (int i = 1; i < argc; i++) sub[n++] = argv[i];
    if (opts->json) {
      sub[n++] = "-o";
      sub[n++] = "json";
    }
    int rc = local(n, sub);
    free(sub);
    return rc;
  }
  fprintf(stderr, "muster bundle: unknown subcommand '%s'\n%s", argv[1], bundle_usage);
  return 2;
}
