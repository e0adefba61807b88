/* `muster config`: the contexts of the CLI config file (cli_config.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_config.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"

static const char config_usage[] =
    "usage: muster config get-contexts [--names] [-o json]\n"
    "       muster config current-context\n"
    "       muster config use-context NAME\n"
    "       muster config path\n"
    "\n"
    "The CLI config file ($MUSTER_CONFIG, else ~/.config/muster/config.yaml) names contexts:\n"
    "an address, TLS files and a token each. 'muster --context NAME COMMAND' uses one for a\n"
    "command; use-context makes one the default (the file's current_context line). A flag\n"
    "wins over the environment (MUSTER_ADDR, ...), which wins over the context.\n";

static const char *auth_of(const mu_cli_context *c) {
  if (c->ca != NULL) return c->token != NULL ? "mtls+token" : "mtls";
  return c->token != NULL ? "token" : "plaintext";
}

static int get_contexts(const mu_cli_opts *opts, const mu_cli_config *cfg, int names_only) {
  if (names_only) {
    for (size_t i = 0; i < cfg->n; i++) printf("%s\n", cfg->contexts[i].name);
    return MU_EXIT_OK;
  }
  if (!opts->json) printf("%-8s %-20s %-32s %s\n", "CURRENT", "NAME", "ADDR", "AUTH");
  for (size_t i = 0; i < cfg->n; i++) {
    const mu_cli_context *c = &cfg->contexts[i];
    int current = strcmp(c->name, cfg->current) == 0;
    if (!opts->json) {
      printf("%-8s %-20s %-32s %s\n", current ? "*" : "", c->name, c->addr ? c->addr : "-", auth_of(c));
      continue;
    }
    json_t *o =
        json_pack("{s:i, s:s, s:b, s:s, s:s, s:s, s:s, s:b, s:s}", "schema", 1, "name", c->name, "current", current,
                  "addr", c->addr ? c->addr : "", "ca", c->ca ? c->ca : "", "cert", c->cert ? c->cert : "", "key",
                  c->key ? c->key : "", "hasToken", c->token != NULL, "timeout", c->timeout ? c->timeout : "");
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (line != NULL) printf("%s\n", line);
    free(line);
    json_decref(o);
  }
  if (cfg->n == 0 && !opts->json && !opts->quiet)
    fprintf(stderr, "muster config: no contexts in %s%s\n", cfg->path,
            cfg->exists ? "" : " (no such file; see 'muster config --help')");
  return MU_EXIT_OK;
}

int mu_cmd_config(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(config_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "path") == 0) {
    printf("%s\n", opts->config_path != NULL ? opts->config_path : "");
    return MU_EXIT_OK;
  }
  int names_only = argc == 3 && strcmp(argv[2], "--names") == 0;
  int want_args = strcmp(sub, "use-context") == 0 ? 3 : 2;
  if (argc != want_args && !(strcmp(sub, "get-contexts") == 0 && names_only)) {
    fprintf(stderr, "muster config %s: wrong arguments\n%s", sub, config_usage);
    return MU_EXIT_USAGE;
  }
  if (opts->config_path == NULL) {
    fprintf(stderr, "muster config: no CLI config file: set MUSTER_CONFIG or HOME\n");
    return MU_EXIT_USAGE;
  }
  mu_cli_config cfg;
  mu_err err = {0};
  int rc = MU_EXIT_OK;
  if (mu_cli_config_load(opts->config_path, &cfg, &err) != 0) {
    fprintf(stderr, "muster config: %s\n", err.msg);
    rc = MU_EXIT_USAGE;
  } else if (strcmp(sub, "get-contexts") == 0) {
    rc = get_contexts(opts, &cfg, names_only);
  } else if (strcmp(sub, "current-context") == 0) {
    if (cfg.current[0] == '\0') {
      fprintf(stderr, "muster config: no current_context in %s\n", cfg.path);
      rc = MU_EXIT_FAILED;
    } else {
      printf("%s\n", cfg.current);
    }
  } else if (strcmp(sub, "use-context") == 0) {
    char names[512];
    mu_cli_config_names(&cfg, names, sizeof names);
    if (!cfg.exists) {
      fprintf(stderr,
              "muster config: no CLI config file at %s; write one with a contexts: "
              "mapping (docs/cli.md, \"Contexts\")\n",
              cfg.path);
      rc = MU_EXIT_USAGE;
    } else if (mu_cli_config_find(&cfg, argv[2]) == NULL) {
      fprintf(stderr, "muster config: no context '%s' in %s (contexts: %s)\n", argv[2], cfg.path, names);
      rc = MU_EXIT_USAGE;
    } else if (mu_cli_config_set_current(cfg.path, argv[2], &err) != 0) {
      fprintf(stderr, "muster config: %s\n", err.msg);
      rc = MU_EXIT_FAILED;
    } else if (!opts->quiet) {
      printf("switched to context '%s'\n", argv[2]);
    }
  } else {
    fprintf(stderr, "muster config: unknown subcommand '%s'\n%s", sub, config_usage);
    rc = MU_EXIT_USAGE;
  }
  mu_cli_config_free(&cfg);
  return rc;
}
