/* muster: the command-line client. Parses the global options (command_table.h), resolves
 * the address, TLS files and token (a flag, else the environment, else the context of the CLI
 * config file, cli_config.h), then hands the rest to a subcommand. Exit codes: exit_codes.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_config.h"
#include "cli/command_table.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "lib/base/clock.h"
#include "lib/version/version.h"

/* Levenshtein distance of a and b, capped: anything past 3 counts as 3 (names are short). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 32 || lb > 32) return 3;
  size_t prev[33], cur[33];
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      cur[j] = best;
    }
    memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
  }
  return prev[lb] > 3 ? 3 : prev[lb];
}

/* The name of names[] closest to word (edit distance at most 2, 1 for words of up to 3
 * characters, or word is a prefix of it with at least 2 characters), or NULL. */
static const char *closest(const char *word, const char *const *names, size_t n) {
  const char *best = NULL;
  size_t best_d = 3;
  size_t wl = strlen(word);
  for (size_t i = 0; i < n; i++) {
    size_t d = edit_distance(word, names[i]);
    if ((wl <= 3 && d == 2) || (wl <= 2 && d == 1)) d = 3; /* "ls" is not "logs", "-x" not "-o" */
    if (d > 2 && wl >= 2 && strncmp(names[i], word, wl) == 0) d = 2;
    if (d < best_d) {
      best_d = d;
      best = names[i];
    }
  }
  return best;
}

/* Checks one HOST:PORT or [V6]:PORT entry of --addr; 0, or 2 with the message printed. */
static int check_addr_entry(const char *entry, size_t n, const char *from) {
  char e[300];
  if (n >= sizeof e) {
    fprintf(stderr, "muster: %s: an entry of %zu characters is too long for HOST:PORT\n", from, n);
    return 2;
  }
  memcpy(e, entry, n);
  e[n] = '\0';
  const char *port = NULL;
  size_t host_n = 0;
  if (e[0] == '[') {
    const char *end = strchr(e, ']');
    host_n = end != NULL ? (size_t)(end - e - 1) : 0;
    port = end != NULL && end[1] == ':' ? end + 2 : NULL;
    if (end == NULL || host_n == 0) {
      fprintf(stderr,
              "muster: %s: '%s' is not HOST:PORT (an IPv6 address goes in brackets: "
              "[::1]:7400)\n",
              from, e);
      return 2;
    }
  } else {
    const char *colon = strrchr(e, ':');
    if (colon != NULL && strchr(e, ':') != colon) {
      fprintf(stderr, "muster: %s: '%s': put an IPv6 address in brackets, like '[%.*s]:%s'\n", from, e,
              (int)(colon - e), e, colon + 1);
      return 2;
    }
    host_n = colon != NULL ? (size_t)(colon - e) : n;
    port = colon != NULL ? colon + 1 : NULL;
  }
  if (port == NULL || port[0] == '\0') {
    fprintf(stderr, "muster: %s: '%s' has no port: did you mean '%s%s7400'?\n", from, e, e, port == NULL ? ":" : "");
    return 2;
  }
  char *end = NULL;
  long p = strtol(port, &end, 10);
  if (host_n == 0 || *end != '\0' || port[0] < '0' || port[0] > '9' || p < 1 || p > 65535) {
    fprintf(stderr, "muster: %s: '%s' is not HOST:PORT with a port from 1 to 65535\n", from, e);
    return 2;
  }
  return 0;
}

/* Checks every entry of the comma list up front, so a bad one is a usage error, not a dial. */
static int check_addr(const char *list, const char *from) {
  const char *p = list;
  for (;;) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, ", ");
    if (n == 0) {
      fprintf(stderr, "muster: %s: empty entry in '%s': expected HOST:PORT[,HOST:PORT...]\n", from, list);
      return 2;
    }
    if (check_addr_entry(p, n, from) != 0) return 2;
    p += n;
    while (*p == ' ') p++;
    if (*p == '\0') return 0;
    if (*p != ',') {
      fprintf(stderr, "muster: %s: '%s' is not HOST:PORT[,HOST:PORT...]\n", from, list);
      return 2;
    }
    p++;
  }
}

/* The global options as given on the command line; NULL when not given. */
typedef struct global_flags {
  const char *addr, *ca, *cert, *key, *token, *timeout, *context;
  int json, quiet, verbose;
} global_flags;

/* The name of the global flag a (or its "--x=" prefix), or "" when unknown. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, int *missing) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strcmp(a, name) == 0) {
    if (*i + 1 >= argc) {
      *missing = 1;
      return NULL;
    }
    return argv[++*i];
  }
  if (strncmp(a, name, n) == 0 && a[n] == '=') return a + n + 1;
  return NULL;
}

/* Parses the global options before the command; returns the index of the command word, or -1
 * with *rc set (0 for --help/--version, 2 for bad usage). */
static int parse_global(int argc, char **argv, global_flags *g, int *rc) {
  static const char *const value_names[] = {"--addr",    "--ca",      "--cert",   "--key", "--token",
                                            "--timeout", "--context", "--output", "-o"};
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      mu_cli_usage(stdout);
      *rc = MU_EXIT_OK;
      return -1;
    }
    if (strcmp(a, "--version") == 0) {
      mu_version_print(stdout, "muster");
      *rc = MU_EXIT_OK;
      return -1;
    }
    if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
      g->verbose = 1;
      continue;
    }
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      g->quiet = 1;
      continue;
    }
    const char **slots[] = {&g->addr, &g->ca, &g->cert, &g->key, &g->token, &g->timeout, &g->context};
    const char *value = NULL;
    int missing = 0, matched = 0;
    for (size_t k = 0; k < sizeof value_names / sizeof value_names[0] && !matched; k++) {
      value = flag_value(argc, argv, &i, value_names[k], &missing);
      if (value == NULL && !missing) continue;
      matched = 1;
      if (missing) break;
      if (k < 7) {
        *slots[k] = value;
      } else if (strcmp(value, "json") == 0 || strcmp(value, "table") == 0) {
        g->json = strcmp(value, "json") == 0;
      } else {
        fprintf(stderr, "muster: -o: expected json or table, got '%s'\n", value);
        *rc = MU_EXIT_USAGE;
        return -1;
      }
    }
    if (matched && !missing) continue;
    if (missing) {
      fprintf(stderr, "muster: option '%s' needs a value; see 'muster --help'\n", a);
      *rc = MU_EXIT_USAGE;
      return -1;
    }
    const char *names[64];
    size_t n = 0;
    for (size_t k = 0; k < mu_cli_n_global_flags && n + 2 <= 64; k++) {
      names[n++] = mu_cli_global_flags[k].name;
      if (mu_cli_global_flags[k].short_name) names[n++] = mu_cli_global_flags[k].short_name;
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
    const char *near = closest(name, names, n);
    if (near != NULL && strcmp(near, name) != 0)
      fprintf(stderr, "muster: unknown option '%s'; did you mean '%s'? see 'muster --help'\n", a, near);
    else fprintf(stderr, "muster: unknown option '%s'; see 'muster --help'\n", a);
    *rc = MU_EXIT_USAGE;
    return -1;
  }
  if (i == argc) {
    mu_cli_usage(stderr);
    *rc = MU_EXIT_USAGE;
    return -1;
  }
  return i;
}

/* A flag, else the environment variable (when set and not empty), else the context's. */
static const char *pick(const char *flag, const char *env_name, const char *from_context) {
  if (flag != NULL) return flag;
  const char *env = env_name != NULL ? getenv(env_name) : NULL;
  if (env != NULL && env[0] != '\0') return env;
  return from_context;
}

/* Fills opts from the flags, the environment and the context (precedence in that order);
 * config_path and cfg live as long as opts. Returns 0, or an exit code with the error printed. */
static int resolve_options(const global_flags *g, int uses_context, mu_cli_config *cfg, char *config_path,
                           size_t path_size, mu_cli_opts *opts) {
  mu_err err = {0};
  memset(cfg, 0, sizeof *cfg);
  if (mu_cli_config_path(config_path, path_size, &err) == 0) opts->config_path = config_path;
  const mu_cli_context *ctx = NULL;
  const char *env_context = getenv("MUSTER_CONTEXT");
  const char *wanted = g->context != NULL                              ? g->context
                       : env_context != NULL && env_context[0] != '\0' ? env_context
                                                                       : NULL;
  if (uses_context && opts->config_path != NULL) {
    if (mu_cli_config_load(config_path, cfg, &err) != 0) {
      fprintf(stderr, "muster: %s\n", err.msg);
      return MU_EXIT_USAGE;
    }
    if (wanted == NULL && cfg->current[0] != '\0') wanted = cfg->current;
  }
  if (uses_context && wanted != NULL) {
    ctx = mu_cli_config_find(cfg, wanted);
    if (ctx == NULL) {
      char names[512];
      mu_cli_config_names(cfg, names, sizeof names);
      if (cfg->exists)
        fprintf(stderr, "muster: %s %s: no such context in %s (contexts: %s)\n",
                g->context != NULL ? "--context" : "MUSTER_CONTEXT", wanted, cfg->path, names);
      else
        fprintf(stderr,
                "muster: %s %s: there is no CLI config file %s (set MUSTER_CONFIG, or "
                "see 'muster config --help')\n",
                g->context != NULL ? "--context" : "MUSTER_CONTEXT", wanted,
                opts->config_path ? opts->config_path : "");
      return MU_EXIT_USAGE;
    }
    opts->context = ctx->name;
  }
  opts->addr = pick(g->addr, "MUSTER_ADDR", ctx ? ctx->addr : NULL);
  if (opts->addr == NULL) opts->addr = "127.0.0.1:7400";
  opts->ca = pick(g->ca, "MUSTER_CA", ctx ? ctx->ca : NULL);
  opts->cert = pick(g->cert, "MUSTER_CERT", ctx ? ctx->cert : NULL);
  opts->key = pick(g->key, "MUSTER_KEY", ctx ? ctx->key : NULL);
  opts->token = pick(g->token, "MUSTER_TOKEN", ctx ? ctx->token : NULL);
  struct stat st;
  if (ctx != NULL && opts->token == ctx->token && ctx->token != NULL && !g->quiet && stat(cfg->path, &st) == 0 &&
      (st.st_mode & 077) != 0)
    fprintf(stderr, "muster: warning: %s holds a token and others can read it: chmod 600 %s\n", cfg->path, cfg->path);
  const char *timeout = pick(g->timeout, NULL, ctx ? ctx->timeout : NULL);
  if (timeout != NULL && mu_duration_parse(timeout, &opts->timeout_ms, &err) != 0) {
    fprintf(stderr, "muster: %s: %s\n", g->timeout ? "--timeout" : "the context's timeout", err.msg);
    return MU_EXIT_USAGE;
  }
  char from[64 + MU_CLI_CONTEXT_NAME_MAX];
  if (g->addr != NULL) snprintf(from, sizeof from, "--addr");
  else if (getenv("MUSTER_ADDR") != NULL && getenv("MUSTER_ADDR")[0] != '\0')
    snprintf(from, sizeof from, "MUSTER_ADDR");
  else if (ctx != NULL && ctx->addr != NULL) snprintf(from, sizeof from, "context %s", ctx->name);
  else snprintf(from, sizeof from, "the default address");
  return check_addr(opts->addr, from) != 0 ? MU_EXIT_USAGE : 0;
}

int main(int argc, char **argv) {
  global_flags g = {0};
  int rc = 0;
  int i = parse_global(argc, argv, &g, &rc);
  if (i < 0) return rc;
  const mu_cli_command *cmd = mu_cli_command_find(argv[i]);
  if (cmd == NULL) {
    const char *names[64];
    size_t n = 0;
    for (size_t k = 0; k < mu_cli_n_commands && n < 64; k++) names[n++] = mu_cli_commands[k].name;
    const char *near = closest(argv[i], names, n);
    if (near != NULL)
      fprintf(stderr, "muster: unknown command '%s'; did you mean '%s'? see 'muster --help'\n", argv[i], near);
    else fprintf(stderr, "muster: unknown command '%s'; see 'muster --help'\n", argv[i]);
    return MU_EXIT_USAGE;
  }
  /* `config` reads the file itself (and reports its errors); `completion` needs nothing. */
  int uses_context = strcmp(cmd->name, "config") != 0 && strcmp(cmd->name, "completion") != 0;
  mu_cli_opts opts = {.json = g.json, .quiet = g.quiet, .timeout_ms = 10000};
  mu_cli_config cfg;
  char config_path[4096];
  rc = resolve_options(&g, uses_context, &cfg, config_path, sizeof config_path, &opts);
  if (rc != 0) {
    mu_cli_config_free(&cfg);
    return rc;
  }
  /* gRPC logs handshake and connect failures to stderr itself; our error says what to check
   * and carries its status on a "detail:" line, so its log is for --verbose (or an explicit
   * GRPC_VERBOSITY). Set before the first call starts gRPC; not for `muster dev`, whose
   * daemons inherit the environment and keep their logs. */
  if (strcmp(cmd->name, "dev") != 0) setenv("GRPC_VERBOSITY", g.verbose ? "ERROR" : "NONE", 0);
  mu_rpc_metadata md;
  mu_err terr = {0};
  if (mu_cli_call_metadata(&opts, &md, &terr) != 0) { /* a token that cannot be sent */
    fprintf(stderr, "muster: %s\n", terr.msg);
    mu_cli_config_free(&cfg);
    return MU_EXIT_USAGE;
  }
  /* Subcommand options after the name: -o json and -q/--quiet are accepted there too. -q
   * reaches run, submit and watch as their own --quiet (their output options). */
  int follows = strcmp(cmd->name, "run") == 0 || strcmp(cmd->name, "submit") == 0 || strcmp(cmd->name, "watch") == 0;
  int sub_argc = 0;
  char **sub_argv = calloc((size_t)(argc - i + 2), sizeof *sub_argv);
  if (sub_argv == NULL) {
    mu_cli_config_free(&cfg);
    return MU_EXIT_FAILED;
  }
  for (int j = i; j < argc; j++) {
    if (cmd->with_opts != NULL && strcmp(argv[j], "-o") == 0 && j + 1 < argc &&
        (strcmp(argv[j + 1], "json") == 0 || strcmp(argv[j + 1], "table") == 0)) {
      opts.json = strcmp(argv[j + 1], "json") == 0;
      j++;
      continue;
    }
    /* not for run: a -q there may be its command's (`muster run grep -q x f`); it has --quiet */
    if (cmd->with_opts != NULL && j > i && strcmp(cmd->name, "run") != 0 &&
        (strcmp(argv[j], "-q") == 0 || strcmp(argv[j], "--quiet") == 0)) {
      opts.quiet = 1;
      if (follows) sub_argv[sub_argc++] = "--quiet";
      continue;
    }
    sub_argv[sub_argc++] = argv[j];
    if (j == i && g.quiet && follows) sub_argv[sub_argc++] = "--quiet";
  }
  /* One session (loop, gRPC engine, channels) for every call of the command. */
  opts.session = cmd->with_opts != NULL ? mu_cli_session_new() : NULL;
  rc = cmd->with_opts != NULL ? cmd->with_opts(&opts, sub_argc, sub_argv) : cmd->plain(sub_argc, sub_argv);
  mu_cli_session_close(opts.session);
  free(sub_argv);
  mu_cli_config_free(&cfg);
  return rc;
}
