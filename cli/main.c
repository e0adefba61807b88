/* muster: the command-line client. Parses the global options (--addr, -o, --timeout), then
 * hands the rest to a subcommand. Exit codes: 0 success, 1 failed, 2 bad usage or input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bundle_local.h"
#include "cli/commands.h"
#include "lib/base/clock.h"

typedef struct command {
  const char *name;
  const char *summary;
  int (*remote)(const mu_cli_opts *opts, int argc, char **argv);
  int (*local)(int argc, char **argv);
} command;

static int cmd_bundle(const mu_cli_opts *opts, int argc, char **argv);

static const command commands[] = {
    {"run", "run a command on many agents now: muster run -t SELECTOR -- CMD", mu_cmd_run, NULL},
    {"submit", "submit a job file (YAML or JSON) and follow it", mu_cmd_submit, NULL},
    {"watch", "follow a job: results so far, then live", mu_cmd_watch, NULL},
    {"status", "show a job and its task runs", mu_cmd_status, NULL},
    {"logs", "print a job's task output (-f follows)", mu_cmd_logs, NULL},
    {"cp", "copy files to many hosts through a signed bundle, or --from-hosts back", mu_cmd_cp,
     NULL},
    {"explain", "say why a job's task runs failed, were cancelled or still wait", mu_cmd_explain,
     NULL},
    {"cancel", "cancel a job", mu_cmd_cancel, NULL},
    {"jobs", "list jobs", mu_cmd_jobs, NULL},
    {"agents", "list agents: id, state, labels, last seen, load, tasks", mu_cmd_agents, NULL},
    {"drain", "drain an agent (no new tasks start there) or --undrain it", mu_cmd_drain, NULL},
    {"cluster", "show the control plane: leader, members, etcd, agent counts", mu_cmd_cluster,
     NULL},
    {"dev", "run a local etcd, control plane and agents in the foreground (Ctrl-C stops all)",
     mu_cmd_dev, NULL},
    {"audit", "list the audit trail: who did what, when, and how it ended", mu_cmd_audit, NULL},
    {"keygen", "write an Ed25519 key pair for signing bundles", NULL, mu_cli_keygen},
    {"bundle", "pack, sign, verify, push, list or remove task bundles (bundle --help)", cmd_bundle,
     NULL},
    {"pki", "make a CA, issue and revoke certificates, show one (pki --help)", mu_cmd_pki, NULL},
    {"token", "create, list or revoke bearer tokens for admin callers (token --help)",
     mu_cmd_token, NULL},
    {"secret", "set, list, remove secrets or rotate their key (secret --help)", mu_cmd_secret, NULL},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

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

static const char *const global_flags[] = {"--addr",  "--ca",      "--cert", "--key",
                                           "--output", "--token", "--timeout", "--help",
                                           "--verbose", "-o", "-v", "-h"};

/* Checks one HOST:PORT or [V6]:PORT entry of --addr; 0, or 2 with the message printed. */
static int check_addr_entry(const char *entry, size_t n, const char *from) {
  char e[300];
  if (n >= sizeof e) {
    fprintf(stderr, "muster: %s: an entry of %zu characters is too long for HOST:PORT\n", from,
            n);
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
      fprintf(stderr, "muster: %s: '%s' is not HOST:PORT (an IPv6 address goes in brackets: "
              "[::1]:7400)\n", from, e);
      return 2;
    }
  } else {
    const char *colon = strrchr(e, ':');
    if (colon != NULL && strchr(e, ':') != colon) {
      fprintf(stderr, "muster: %s: '%s': put an IPv6 address in brackets, like '[%.*s]:%s'\n",
              from, e, (int)(colon - e), e, colon + 1);
      return 2;
    }
    host_n = colon != NULL ? (size_t)(colon - e) : n;
    port = colon != NULL ? colon + 1 : NULL;
  }
  if (port == NULL || port[0] == '\0') {
    fprintf(stderr, "muster: %s: '%s' has no port: did you mean '%s%s7400'?\n", from, e, e,
            port == NULL ? ":" : "");
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
      fprintf(stderr, "muster: %s: empty entry in '%s': expected HOST:PORT[,HOST:PORT...]\n",
              from, list);
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

static void usage(FILE *out) {
  fprintf(out,
          "usage: muster [--addr HOST:PORT] [--ca F --cert F --key F] [--token TOKEN] [-o json]\n"
          "              [--timeout DUR] [-v] COMMAND [ARGS...]\n"
          "\n"
          "Global options:\n"
          "  --addr HOST:PORT   control plane address (default $MUSTER_ADDR or 127.0.0.1:7400)\n"
          "  -o json            one JSON object per line instead of tables\n"
          "  --timeout DUR      per-call deadline (default 10s)\n"
          "  --ca FILE          CA certificate: talk mTLS (default $MUSTER_CA; unset: plaintext)\n"
          "  --cert FILE        client certificate (default $MUSTER_CERT)\n"
          "  --key FILE         client key (default $MUSTER_KEY)\n"
          "  --token TOKEN      bearer token for every call (default $MUSTER_TOKEN)\n"
          "  -v, --verbose      show gRPC's own log of connection and TLS failures\n"
          "\nCommands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nRun 'muster COMMAND --help' for a command's options.\n");
}

static int cmd_bundle(const mu_cli_opts *opts, int argc, char **argv) {
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
                              : strcmp(argv[1], "sign") == 0     ? mu_cli_bundle_sign
                              : strcmp(argv[1], "verify") == 0   ? mu_cli_bundle_verify
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

int main(int argc, char **argv) {
  mu_cli_opts opts = {.addr = getenv("MUSTER_ADDR"), .json = 0, .timeout_ms = 10000};
  const char *addr_from = "MUSTER_ADDR";
  if (opts.addr == NULL || opts.addr[0] == '\0') opts.addr = "127.0.0.1:7400";
  opts.ca = getenv("MUSTER_CA");
  opts.cert = getenv("MUSTER_CERT");
  opts.key = getenv("MUSTER_KEY");
  opts.token = getenv("MUSTER_TOKEN");
  int verbose = 0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
      verbose = 1;
    } else if (strcmp(a, "--addr") == 0 && i + 1 < argc) {
      opts.addr = argv[++i];
      addr_from = "--addr";
    } else if (strncmp(a, "--addr=", 7) == 0) {
      opts.addr = a + 7;
      addr_from = "--addr";
    } else if (strcmp(a, "--ca") == 0 && i + 1 < argc) {
      opts.ca = argv[++i];
    } else if (strcmp(a, "--cert") == 0 && i + 1 < argc) {
      opts.cert = argv[++i];
    } else if (strcmp(a, "--key") == 0 && i + 1 < argc) {
      opts.key = argv[++i];
    } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
      const char *o = argv[++i];
      if (strcmp(o, "json") == 0) {
        opts.json = 1;
      } else if (strcmp(o, "table") != 0) {
        fprintf(stderr, "muster: -o: expected json or table, got '%s'\n", o);
        return 2;
      }
    } else if (strcmp(a, "--token") == 0 && i + 1 < argc) {
      opts.token = argv[++i];
    } else if (strncmp(a, "--token=", 8) == 0) {
      opts.token = a + 8;
    } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
      mu_err err = {0};
      if (mu_duration_parse(argv[++i], &opts.timeout_ms, &err) != 0) {
        fprintf(stderr, "muster: --timeout: %s\n", err.msg);
        return 2;
      }
    } else {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
      const char *near = closest(name, global_flags, sizeof global_flags / sizeof global_flags[0]);
      int known = near != NULL && strcmp(near, name) == 0;
      if (known) /* a known flag with its value missing */
        fprintf(stderr, "muster: option '%s' needs a value; see 'muster --help'\n", a);
      else if (near != NULL)
        fprintf(stderr, "muster: unknown option '%s'; did you mean '%s'? see 'muster --help'\n",
                a, near);
      else
        fprintf(stderr, "muster: unknown option '%s'; see 'muster --help'\n", a);
      return 2;
    }
  }
  if (i == argc) {
    usage(stderr);
    return 2;
  }
  if (check_addr(opts.addr, addr_from) != 0) return 2;
  /* gRPC logs handshake and connect failures to stderr itself; our error says what to check
   * and carries its status on a "detail:" line, so its log is for --verbose (or an explicit
   * GRPC_VERBOSITY). Set before the first call starts gRPC; not for `muster dev`, whose
   * daemons inherit the environment and keep their logs. */
  if (strcmp(argv[i], "dev") != 0) setenv("GRPC_VERBOSITY", verbose ? "ERROR" : "NONE", 0);
  mu_rpc_metadata md;
  mu_err terr = {0};
  if (mu_cli_call_metadata(&opts, &md, &terr) != 0) { /* a token that cannot be sent */
    fprintf(stderr, "muster: %s\n", terr.msg);
    return 2;
  }
  for (size_t k = 0; k < N_COMMANDS; k++) {
    if (strcmp(argv[i], commands[k].name) != 0) continue;
    /* Subcommand options after the name: -o json is accepted there too. */
    int sub_argc = 0;
    char **sub_argv = calloc((size_t)(argc - i + 1), sizeof *sub_argv);
    if (sub_argv == NULL) return 1;
    for (int j = i; j < argc; j++) {
      if (commands[k].remote != NULL && strcmp(argv[j], "-o") == 0 && j + 1 < argc &&
          (strcmp(argv[j + 1], "json") == 0 || strcmp(argv[j + 1], "table") == 0)) {
        opts.json = strcmp(argv[j + 1], "json") == 0;
        j++;
        continue;
      }
      sub_argv[sub_argc++] = argv[j];
    }
    /* One session (loop, gRPC engine, channels) for every call of the command. */
    opts.session = commands[k].remote != NULL ? mu_cli_session_new() : NULL;
    int rc = commands[k].remote != NULL ? commands[k].remote(&opts, sub_argc, sub_argv)
                                        : commands[k].local(sub_argc, sub_argv);
    mu_cli_session_close(opts.session);
    free(sub_argv);
    return rc;
  }
  const char *names[N_COMMANDS];
  for (size_t k = 0; k < N_COMMANDS; k++) names[k] = commands[k].name;
  const char *near = closest(argv[i], names, N_COMMANDS);
  if (near != NULL)
    fprintf(stderr, "muster: unknown command '%s'; did you mean '%s'? see 'muster --help'\n",
            argv[i], near);
  else
    fprintf(stderr, "muster: unknown command '%s'; see 'muster --help'\n", argv[i]);
  return 2;
}
