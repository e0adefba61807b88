/* `muster token create|ls|revoke`: bearer tokens for admin callers (muster.v1.Tokens, see
 * docs/security.md). create prints the token alone on stdout, once (the control plane keeps
 * only its hash), and on stderr how to use it; ls never shows a secret. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "lib/jobcounts/jobcounts.h"
#include "lib/tokens/token_codec.h"
#include "lib/base/clock.h"
#include "muster/v1/token.pb-c.h"

static const char token_usage[] =
    "usage: muster token create NAME --role viewer|operator|admin [--scope SELECTOR]\n"
    "                           [--types TYPE,...] [--ttl DUR]\n"
    "       muster token ls\n"
    "       muster token revoke NAME|ID\n"
    "\n"
    "Bearer tokens for admin callers (send with --token or MUSTER_TOKEN). A viewer reads, an\n"
    "operator runs, submits, cancels and drains (within --scope, a label selector, and --types,\n"
    "task types), an admin may do everything. --ttl (\"30m\", \"12h\", \"90d\") makes the token\n"
    "expire; without it, it lives until revoked. The token is printed once, by create.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "muster token: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n%s", token_usage);
  va_end(ap);
  return 2;
}

/* "in 3h", "5m ago", "never" for an instant (0 = never) relative to now. */
static const char *when(int64_t at_ms, char *buf, size_t size) {
  char span[32];
  int64_t now = mu_now_ms();
  if (at_ms <= 0) snprintf(buf, size, "never");
  else if (at_ms <= now) mu_cli_ago(at_ms, buf, size);
  else snprintf(buf, size, "in %s", mu_token_span(at_ms - now + 999, span, sizeof span));
  return buf;
}

/* Calls method; on failure says why on stderr and returns the exit code (2: bad input). */
static int call(const mu_cli_opts *opts, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply) {
  mu_err err = {0};
  if (mu_cli_unary(opts, method, req, reply_desc, ret_reply, &err) == 0) return 0;
  fprintf(stderr, "muster token: %s\n", err.msg);
  return err.code == MU_EINVAL ? 2 : 1;
}

static int token_create(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"role", required_argument, NULL, 'r'},  {"scope", required_argument, NULL, 's'},
                                     {"types", required_argument, NULL, 'T'}, {"ttl", required_argument, NULL, 'l'},
                                     {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
  Muster__V1__CreateTokenRequest req = MUSTER__V1__CREATE_TOKEN_REQUEST__INIT;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case 'r': req.role = optarg; break;
      case 's': req.scope = optarg; break;
      case 'T': req.types = optarg; break;
      case 'l': req.ttl = optarg; break;
      case 'h': fputs(token_usage, stdout); return 0;
      default: return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (optind != argc - 1) return usage_error("create: expected one NAME");
  if (req.role[0] == '\0') return usage_error("create: --role is required (viewer, operator or admin)");
  req.name = argv[optind];
  ProtobufCMessage *reply = NULL;
  int rc =
      call(opts, "/muster.v1.Tokens/CreateToken", &req.base, &muster__v1__create_token_response__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__CreateTokenResponse *r = (const Muster__V1__CreateTokenResponse *)reply;
  const Muster__V1__TokenInfo *i = r->info;
  if (opts->json) {
    mu_cli_print_json(reply);
  } else {
    char exp[32];
    /* the token alone on stdout (TOKEN=$(muster token create ...)); the notes on stderr */
    if (!opts->quiet)
      fprintf(stderr, "token %s created: id %s, role %s%s%s%s%s, expires %s\n", req.name, r->id, i ? i->role : req.role,
              req.scope[0] ? ", scope " : "", req.scope, req.types[0] ? ", types " : "", req.types,
              when(r->expires_at_ms, exp, sizeof exp));
    printf("%s\n", r->token);
    fflush(stdout);
    if (!opts->quiet)
      fprintf(stderr,
              "This is the only time the token is shown: store it now. Use it with\n"
              "  MUSTER_TOKEN=<token> muster --addr %s agents     (or muster --token <token> ...)\n"
              "  grpcurl -H 'authorization: Bearer <token>' %s muster.v1.Admin/ListAgents\n",
              opts->addr, opts->addr);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int token_ls(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(token_usage, stdout);
    return 0;
  }
  if (argc > 1) return usage_error("ls: unexpected argument '%s'", argv[1]);
  Muster__V1__ListTokensRequest req = MUSTER__V1__LIST_TOKENS_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Tokens/ListTokens", &req.base, &muster__v1__list_tokens_response__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__ListTokensResponse *r = (const Muster__V1__ListTokensResponse *)reply;
  if (!opts->json && !opts->quiet)
    printf("%-20s %-12s %-8s %-8s %-20s %-12s %-9s %-9s %s\n", "NAME", "ID", "ROLE", "STATE", "SCOPE", "TYPES",
           "CREATED", "EXPIRES", "CREATED BY");
  for (size_t k = 0; k < r->n_tokens; k++) {
    const Muster__V1__TokenInfo *t = r->tokens[k];
    if (opts->json) {
      mu_cli_print_json(&t->base);
      continue;
    }
    if (opts->quiet) { /* names only */
      printf("%s\n", t->name);
      continue;
    }
    char created[32], expires[32];
    printf("%-20s %-12s %-8s %-8s %-20s %-12s %-9s %-9s %s\n", t->name, t->id, t->role, t->state,
           t->scope[0] ? t->scope : "-", t->types[0] ? t->types : "-",
           mu_cli_ago(t->created_at_ms, created, sizeof created), when(t->expires_at_ms, expires, sizeof expires),
           t->created_by);
  }
  char nt[48];
  if (!opts->json && !opts->quiet) printf("%s\n", mu_plural(r->n_tokens, "token", nt, sizeof nt));
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int token_revoke(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(token_usage, stdout);
    return 0;
  }
  if (argc != 2) return usage_error("revoke: expected one NAME or ID");
  Muster__V1__RevokeTokenRequest req = MUSTER__V1__REVOKE_TOKEN_REQUEST__INIT;
  req.token = argv[1];
  ProtobufCMessage *reply = NULL;
  int rc =
      call(opts, "/muster.v1.Tokens/RevokeToken", &req.base, &muster__v1__revoke_token_response__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__RevokeTokenResponse *r = (const Muster__V1__RevokeTokenResponse *)reply;
  const Muster__V1__TokenInfo *t = r->info;
  char ago[32];
  if (opts->json) mu_cli_print_json(reply);
  else if (opts->quiet)
    ; /* nothing: the exit code says it */
  else if (t == NULL) printf("revoked %s\n", argv[1]);
  else if (r->already_revoked)
    printf("token %s (id %s) was already revoked %s by %s\n", t->name, t->id,
           mu_cli_ago(t->revoked_at_ms, ago, sizeof ago), t->revoked_by);
  else printf("revoked token %s (id %s, %s): refused from now on\n", t->name, t->id, t->role);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_token(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(token_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "create") == 0) return token_create(opts, argc - 1, argv + 1);
  if (strcmp(argv[1], "ls") == 0 || strcmp(argv[1], "list") == 0) return token_ls(opts, argc - 1, argv + 1);
  if (strcmp(argv[1], "revoke") == 0) return token_revoke(opts, argc - 1, argv + 1);
  return usage_error("unknown subcommand '%s'", argv[1]);
}
