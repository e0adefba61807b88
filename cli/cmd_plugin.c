/* `muster plugin SUB` (docs/plugins.md): routes each subcommand to the file that owns it
 * (cmd_plugin_config.c: config). Kept to a table so other subcommands add one line. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const struct {
  const char *name;
  int (*fn)(const mu_cli_opts *opts, int argc, char **argv);
  const char *help;
} subs[] = {
    {"config", mu_cmd_plugin_config, "config TYPE [-t SELECTOR] FILE | --show | --clear   central plugin config"},
};

int mu_cmd_plugin(const mu_cli_opts *opts, int argc, char **argv) {
  const char *sub = argc >= 2 ? argv[1] : NULL;
  for (size_t i = 0; sub != NULL && i < sizeof subs / sizeof subs[0]; i++)
    if (strcmp(sub, subs[i].name) == 0) return subs[i].fn(opts, argc - 1, argv + 1);
  int help = sub != NULL && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0);
  FILE *out = help ? stdout : stderr;
  if (sub != NULL && !help) fprintf(stderr, "muster plugin: unknown subcommand '%s'\n", sub);
  fprintf(out, "usage: muster plugin SUBCOMMAND ...\n\n");
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) fprintf(out, "  %s\n", subs[i].help);
  fprintf(out, "\n`muster plugin SUBCOMMAND --help` tells more.\n");
  return help ? 0 : 2;
}
