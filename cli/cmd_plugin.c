/* `muster plugin SUB` (docs/plugins.md): routes each subcommand to the file that owns it —
 * pack/push/ls/rm (cmd_plugin_pkg.c), deploy/rollback (cmd_plugin_deploy.c), config
 * (cmd_plugin_config.c). A table, so a new subcommand is one line. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const struct {
  const char *name;
  int (*fn)(const mu_cli_opts *opts, int argc, char **argv);
  const char *help;
} subs[] = {
    {"pack", mu_cmd_plugin_pack,
     "pack DIR --out FILE [--key KEY]     a signed plugin bundle from DIR (plugin.yaml + .so)"},
    {"push", mu_cmd_plugin_push, "push FILE                           upload it (and FILE.sig) to the control plane"},
    {"ls", mu_cmd_plugin_ls, "ls [TYPE]                           plugin versions stored, and which agents run which"},
    {"rm", mu_cmd_plugin_rm, "rm TYPE@VERSION [--force]           remove a stored version (refused while deployed)"},
    {"deploy", mu_cmd_plugin_deploy,
     "deploy TYPE@VERSION -t SELECTOR     load it on the agents, with the job rollout controls"},
    {"rollback", mu_cmd_plugin_rollback,
     "rollback TYPE -t SELECTOR           go back to each agent's previous version"},
    {"config", mu_cmd_plugin_config,
     "config TYPE [-t SELECTOR] FILE      central plugin configuration (--show, --clear)"},
};

int mu_cmd_plugin(const mu_cli_opts *opts, int argc, char **argv) {
  const char *sub = argc >= 2 ? argv[1] : NULL;
  for (size_t i = 0; sub != NULL && i < sizeof subs / sizeof subs[0]; i++)
    if (strcmp(sub, subs[i].name) == 0) return subs[i].fn(opts, argc - 1, argv + 1);
  int help = sub != NULL && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0);
  FILE *out = help ? stdout : stderr;
  if (sub != NULL && !help) fprintf(stderr, "muster plugin: unknown subcommand '%s'\n", sub);
  fprintf(out, "usage: muster plugin pack|push|ls|rm|deploy|rollback|config ...\n\n");
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) fprintf(out, "  %s\n", subs[i].help);
  fprintf(out, "\n`muster plugin SUBCOMMAND --help` tells more.\n");
  return help ? 0 : 2;
}
