/* The CLI's one table of commands and global options. `muster --help`, `muster completion
 * bash|zsh`, the "did you mean" hints and the man page (built from `--help`) all read it, so a
 * command added here shows up everywhere at once. */
#ifndef MU_CLI_COMMAND_TABLE_H
#define MU_CLI_COMMAND_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "cli/client.h"

typedef struct mu_cli_command {
  const char *name;
  const char *summary;     /* one line for `muster --help` and zsh completion */
  const char *subcommands; /* space-separated words completed after the name, or NULL */
  /* Exactly one is set: with options (remote calls, or local ones that read -o), or plain. */
  int (*with_opts)(const mu_cli_opts *opts, int argc, char **argv);
  int (*plain)(int argc, char **argv);
} mu_cli_command;

typedef struct mu_cli_flag {
  const char *name;       /* "--addr" */
  const char *short_name; /* "-o", or NULL */
  const char *arg;        /* "HOST:PORT", or NULL for a switch */
  const char *help;       /* one line for `muster --help` */
} mu_cli_flag;

extern const mu_cli_command mu_cli_commands[];
extern const size_t mu_cli_n_commands;
extern const mu_cli_flag mu_cli_global_flags[];
extern const size_t mu_cli_n_global_flags;

/* The command named name, or NULL. */
const mu_cli_command *mu_cli_command_find(const char *name);

/* `muster --help`: synopsis, global options, commands, exit codes. */
void mu_cli_usage(FILE *out);

#endif
