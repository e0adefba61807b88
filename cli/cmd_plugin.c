/* `muster plugin` (docs/plugins.md): routes each subcommand to the file that owns it —
 * pack/push/ls/rm (cmd_plugin_pkg.c), deploy/rollback (cmd_plugin_deploy.c). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const struct {
  const char *name;
  int (*fn)(const mu_cli_opts *opts, int argc, char **argv);
} subs[] = {
    {"pack", mu_cmd_plugin_pack}, {"push", mu_cmd_plugin_push},     {"ls", mu_cmd_plugin_ls},
    {"rm", mu_cmd_plugin_rm},     {"deploy", mu_cmd_plugin_deploy}, {"rollback", mu_cmd_plugin_rollback},
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: muster plugin pack|push|ls|rm|deploy|rollback ...\n\n"
          "  pack DIR --out FILE [--key KEY]     a signed plugin bundle from DIR (plugin.yaml + .so)\n"
          "  push FILE                           upload it (and FILE.sig) to the control plane\n"
          "  ls [TYPE]                           plugin versions stored, and which agents run which\n"
          "  rm TYPE@VERSION [--force]           remove a stored version (refused while deployed)\n"
          "  deploy TYPE@VERSION -t SELECTOR     load it on the agents, with the job rollout controls\n"
          "  rollback TYPE -t SELECTOR           go back to each agent's previous version\n\n"
          "`muster plugin SUBCOMMAND --help` tells more.\n");
}

int mu_cmd_plugin(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
    if (strcmp(argv[1], subs[i].name) == 0) return subs[i].fn(opts, argc - 1, argv + 1);
  fprintf(stderr, "muster plugin: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
