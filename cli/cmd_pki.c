/* `muster pki init|issue|crl|show`: a thin command-line shell over //lib/pki. Parses flags,
 * prints what was written (or, with -o json, one JSON object), and maps errors to exit codes:
 * 2 for bad usage or input, 1 for a command that failed. Talks to no server. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/output_json.h"
#include "lib/pki/peer.h"
#include "lib/pki/pki.h"

static const char pki_usage[] =
    "usage: muster pki init --out DIR [--days N] [--force]\n"
    "       muster pki issue --ca DIR --kind server|agent|admin --name NAME [--role ROLE]\n"
    "                        [--san HOST,IP...] [--days N] [--force] --out PREFIX\n"
    "       muster pki crl --ca DIR [--revoke CERT] [--out FILE] [--days N]\n"
    "       muster pki show CERT\n"
    "  Makes and inspects Muster's certificates (docs/security.md#pki). -o json: one JSON\n"
    "  object. 'muster pki SUBCOMMAND --help' for each.\n";

static const char init_usage[] =
    "usage: muster pki init --out DIR [--days N] [--force] [-o json]\n"
    "  Makes a CA: DIR (0700), DIR/ca.crt and DIR/ca.key (0600); ECDSA P-256, valid N days\n"
    "  (default 3650). Refuses to replace an existing CA unless --force, which also drops\n"
    "  the old CA's revocation list.\n";

static const char issue_usage[] =
    "usage: muster pki issue --ca DIR --kind server|agent|admin --name NAME [--role ROLE]\n"
    "                        [--san HOST,IP...]... [--days N] [--force] --out PREFIX [-o json]\n"
    "  Issues a certificate from the CA in DIR: PREFIX.crt and PREFIX.key (0600).\n"
    "  --name: the agent id, server or admin name (1-128 of A-Z a-z 0-9 . _ -).\n"
    "  --role: admin certificates only: viewer (default), operator or admin.\n"
    "  --san: DNS names and IP addresses (server default: localhost,127.0.0.1).\n"
    "  --days: validity (default 365). --force: replace existing PREFIX files.\n";

static const char crl_usage[] =
    "usage: muster pki crl --ca DIR [--revoke CERT] [--out FILE] [--days N] [-o json]\n"
    "  Adds CERT (when given) to DIR/revoked.txt and writes the CA's signed CRL of every\n"
    "  revoked certificate to FILE (default DIR/ca.crl), next update in N days (default 30).\n";

static const char show_usage[] =
    "usage: muster pki show CERT [-o json]\n"
    "  Prints a certificate as Muster reads it: kind, name, role, SANs, serial, validity.\n";

/* Prints "muster pki SUB: <message>" and the usage to stderr; returns 2. */
static int usage_fail(const char *sub, const char *usage, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int usage_fail(const char *sub, const char *usage, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "muster pki %s: ", sub);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s", usage);
  return 2;
}

/* Reports a library error; bad input (a name, a missing file, a foreign cert) is exit 2. */
static int fail(const char *sub, const mu_err *err) {
  fprintf(stderr, "muster pki %s: %s\n", sub, err->msg);
  return err->code == MU_EINVAL || err->code == MU_ENOENT ? 2 : 1;
}

static int fail_hint(const char *sub, const mu_err *err, const char *hint) {
  fprintf(stderr, "muster pki %s: %s (%s)\n", sub, err->msg, hint);
  return 1;
}

static int parse_days(const char *sub, const char *usage, const char *text, int *ret) {
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 1 || v > MU_PKI_MAX_DAYS) {
    return usage_fail(sub, usage, "--days: expected 1..%d, got '%s'", MU_PKI_MAX_DAYS, text);
  }
  *ret = (int)v;
  return 0;
}

/* Options every subcommand shares: --help, -o (main takes a valid -o json|table out of argv
 * before we see it, so one here has a bad value) and getopt's complaints. Returns -1 when
 * opt is not one of them, else the exit code to return. */
static int common_opt(int opt, const char *sub, const char *usage, char **argv) {
  switch (opt) {
    case 'h': fputs(usage, stdout); return 0;
    case 'o': return usage_fail(sub, usage, "-o: expected json or table, got '%s'", optarg);
    case ':': return usage_fail(sub, usage, "%s needs a value", argv[optind - 1]);
    case '?': return usage_fail(sub, usage, "unknown option '%s'", argv[optind - 1]);
    default: return -1;
  }
}

static void time_text(int64_t t, char *buf, size_t size) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One line in the CLI's JSON shape (cli/output_json.h): schema, kind, lowerCamelCase names. */
static void print_json(const char *kind, json_t *obj) { mu_cli_json_emit_camel(kind, obj); }

/* The DNS and IP SANs as a JSON array. */
static json_t *sans_array(const mu_pki_cert_info *i) {
  char sans[MU_PKI_SANS_SIZE];
  json_t *list = json_array();
  snprintf(sans, sizeof sans, "%s", i->sans);
  char *save = NULL;
  for (char *s = strtok_r(sans, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
    json_array_append_new(list, json_string(s));
  }
  return list;
}

/* Reads the PEM file at path into buf (size bytes, NUL-terminated); returns 0 or exit code 2. */
static int read_pem(const char *sub, const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "muster pki %s: %s: %s\n", sub, path, strerror(errno));
    return 2;
  }
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  return 0;
}

/* Reads the certificate at path as Muster does (cert_info); returns 0 or an exit code. */
static int read_info(const char *sub, const char *path, mu_pki_cert_info *ret) {
  static char pem[1 << 16];
  int rc = read_pem(sub, path, pem, sizeof pem);
  if (rc != 0) return rc;
  mu_err err = {0};
  if (mu_pki_cert_info_from_pem(pem, ret, &err) != 0) {
    mu_err_prefix(&err, "%s", path);
    return fail(sub, &err);
  }
  return 0;
}

static int pki_init(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"out", required_argument, NULL, 'O'},
                                     {"days", required_argument, NULL, 'd'},
                                     {"force", no_argument, NULL, 'f'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  const char *dir = NULL;
  int days = 0, force = 0, opt;
  while ((opt = getopt_long(argc, argv, ":ho:", lo, NULL)) != -1) {
    int rc = common_opt(opt, "init", init_usage, argv);
    if (rc >= 0) return rc;
    if (opt == 'O') dir = optarg;
    if (opt == 'f') force = 1;
    if (opt == 'd') {
      rc = parse_days("init", init_usage, optarg, &days);
      if (rc != 0) return rc;
    }
  }
  if (optind < argc) return usage_fail("init", init_usage, "unexpected argument '%s'", argv[optind]);
  if (dir == NULL || dir[0] == '\0') return usage_fail("init", init_usage, "--out DIR is required");
  mu_err err = {0};
  int rc = force ? mu_pki_init_force(dir, days, &err) : mu_pki_init(dir, days, &err);
  if (rc == MU_EEXIST) return fail_hint("init", &err, "--force replaces the CA");
  if (rc != 0) return fail("init", &err);
  char path[4096];
  snprintf(path, sizeof path, "%s/ca.crt", dir);
  mu_pki_cert_info info;
  rc = read_info("init", path, &info);
  if (rc != 0) return rc;
  char until[32];
  time_text(info.not_after, until, sizeof until);
  if (opts->json) {
    print_json("ca", json_pack("{s:s+, s:s+, s:s, s:s, s:s}", "cert", dir, "/ca.crt", "key", dir, "/ca.key", "subject",
                               info.cn, "serial", info.serial_hex, "not_after", until));
  } else if (!opts->quiet) {
    printf("wrote %s/ca.crt, %s/ca.key (0600)\nCA '%s', valid until %s\n", dir, dir, info.cn, until);
  }
  return 0;
}

static int pki_issue(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"ca", required_argument, NULL, 'c'},   {"kind", required_argument, NULL, 'k'},
                                     {"name", required_argument, NULL, 'n'}, {"role", required_argument, NULL, 'r'},
                                     {"san", required_argument, NULL, 's'},  {"days", required_argument, NULL, 'd'},
                                     {"out", required_argument, NULL, 'O'},  {"force", no_argument, NULL, 'f'},
                                     {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
  mu_pki_issue_opts o = {0};
  char sans[8192] = "";
  int opt;
  while ((opt = getopt_long(argc, argv, ":ho:", lo, NULL)) != -1) {
    int rc = common_opt(opt, "issue", issue_usage, argv);
    if (rc >= 0) return rc;
    if (opt == 'c') o.ca_dir = optarg;
    if (opt == 'k') o.kind = optarg;
    if (opt == 'n') o.name = optarg;
    if (opt == 'r') o.role = optarg;
    if (opt == 'O') o.out = optarg;
    if (opt == 'f') o.force = 1;
    if (opt == 'd') {
      rc = parse_days("issue", issue_usage, optarg, &o.days);
      if (rc != 0) return rc;
    }
    if (opt == 's') {
      /* --san repeats: the lists join */
      size_t used = strlen(sans);
      if (used + strlen(optarg) + 2 > sizeof sans) {
        return usage_fail("issue", issue_usage, "--san: more than %zu characters", sizeof sans);
      }
      snprintf(sans + used, sizeof sans - used, "%s%s", used > 0 ? "," : "", optarg);
      o.sans = sans;
    }
  }
  if (optind < argc) {
    return usage_fail("issue", issue_usage, "unexpected argument '%s'", argv[optind]);
  }
  if (o.ca_dir == NULL || o.kind == NULL || o.name == NULL || o.out == NULL) {
    return usage_fail("issue", issue_usage, "--ca, --kind, --name and --out are required");
  }
  mu_err err = {0};
  int rc = mu_pki_issue(&o, &err);
  if (rc == MU_EEXIST) return fail_hint("issue", &err, "--force replaces them");
  if (rc != 0) return fail("issue", &err);
  char path[4096];
  snprintf(path, sizeof path, "%s.crt", o.out);
  mu_pki_cert_info info;
  rc = read_info("issue", path, &info);
  if (rc != 0) return rc;
  char until[32];
  time_text(info.not_after, until, sizeof until);
  if (opts->json) {
    print_json("certificate", json_pack("{s:s+, s:s+, s:s, s:s, s:s, s:o, s:s, s:s}", "cert", o.out, ".crt", "key",
                                        o.out, ".key", "cert_kind", info.kind, "name", info.name, "role", info.role,
                                        "sans", sans_array(&info), "serial", info.serial_hex, "not_after", until));
  } else if (!opts->quiet) {
    printf("wrote %s.crt, %s.key (0600)\n%s '%s'%s%s, serial %s, valid until %s\n", o.out, o.out, info.kind, info.name,
           info.role[0] != '\0' ? ", role " : "", info.role, info.serial_hex, until);
  }
  return 0;
}

static int pki_crl(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"ca", required_argument, NULL, 'c'},  {"revoke", required_argument, NULL, 'R'},
                                     {"out", required_argument, NULL, 'O'}, {"days", required_argument, NULL, 'd'},
                                     {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
  const char *ca_dir = NULL, *revoke = NULL, *out = NULL;
  int days = 0, opt;
  while ((opt = getopt_long(argc, argv, ":ho:", lo, NULL)) != -1) {
    int rc = common_opt(opt, "crl", crl_usage, argv);
    if (rc >= 0) return rc;
    if (opt == 'c') ca_dir = optarg;
    if (opt == 'R') revoke = optarg;
    if (opt == 'O') out = optarg;
    if (opt == 'd') {
      rc = parse_days("crl", crl_usage, optarg, &days);
      if (rc != 0) return rc;
    }
  }
  if (optind < argc) return usage_fail("crl", crl_usage, "unexpected argument '%s'", argv[optind]);
  if (ca_dir == NULL || ca_dir[0] == '\0') return usage_fail("crl", crl_usage, "--ca DIR is required");
  mu_err err = {0};
  if (mu_pki_crl(ca_dir, revoke, out, days, &err) != 0) return fail("crl", &err);
  /* The serial as the CRL lists it; the certificate need not be a valid muster identity. */
  char serial[MU_PKI_SERIAL_HEX_SIZE] = "";
  if (revoke != NULL) {
    static char pem[1 << 16];
    uint8_t bytes[MU_PKI_SERIAL_MAX];
    size_t len = 0;
    int rc = read_pem("crl", revoke, pem, sizeof pem);
    if (rc != 0) return rc;
    if (mu_pki_cert_serial_from_pem(pem, bytes, sizeof bytes, &len, &err) != 0) {
      return fail("crl", &err);
    }
    for (size_t i = 0; i < len; i++) snprintf(serial + 2 * i, 3, "%02X", bytes[i]);
  }
  char crl_path[4096], ca_path[4096];
  if (out != NULL) {
    snprintf(crl_path, sizeof crl_path, "%s", out);
  } else {
    snprintf(crl_path, sizeof crl_path, "%s/ca.crl", ca_dir);
  }
  snprintf(ca_path, sizeof ca_path, "%s/ca.crt", ca_dir);
  /* Read back what was written: the count, and proof that it verifies. */
  mu_pki_crl_set *set = NULL;
  if (mu_pki_crl_set_load(crl_path, ca_path, &set, &err) != 0) return fail("crl", &err);
  char next[32];
  time_text(set->next_update, next, sizeof next);
  if (opts->json) {
    print_json("crl",
               json_pack("{s:s, s:s?, s:I, s:I, s:s}", "crl", crl_path, "revoked", revoke != NULL ? serial : NULL,
                         "number", (json_int_t)set->number, "entries", (json_int_t)set->n, "next_update", next));
  } else if (!opts->quiet) {
    if (revoke != NULL) printf("revoked %s (serial %s)\n", revoke, serial);
    printf("wrote %s (CRL number %lld, %zu revoked, next update %s)\n", crl_path, (long long)set->number, set->n, next);
  }
  mu_pki_crl_set_free(set);
  return 0;
}

static void show_text(const mu_pki_cert_info *i) {
  char from[32], until[32];
  time_text(i->not_before, from, sizeof from);
  time_text(i->not_after, until, sizeof until);
  int64_t now = (int64_t)time(NULL);
  const char *state = now < i->not_before ? " (not yet valid)" : now > i->not_after ? " (EXPIRED)" : "";
  const char *usage = i->server_auth && i->client_auth ? "serverAuth, clientAuth"
                      : i->server_auth                 ? "serverAuth"
                      : i->client_auth                 ? "clientAuth"
                                                       : "-";
  printf("kind     %s\n", i->kind[0] != '\0' ? i->kind : "- (not a muster identity)");
  printf("name     %s\n", i->name[0] != '\0' ? i->name : "-");
  printf("role     %s\n", i->role[0] != '\0' ? i->role : "-");
  printf("subject  CN=%s\n", i->cn);
  printf("issuer   CN=%s\n", i->issuer_cn);
  printf("sans     %s%s\n", i->sans[0] != '\0' ? i->sans : "-", i->sans_truncated ? ",..." : "");
  printf("serial   %s\n", i->serial_hex);
  printf("valid    %s .. %s%s\n", from, until, state);
  printf("usage    %s%s\n", usage, i->is_ca ? " (CA)" : "");
}

static void show_json(const mu_pki_cert_info *i) {
  char from[32], until[32];
  time_text(i->not_before, from, sizeof from);
  time_text(i->not_after, until, sizeof until);
  print_json("certificate",
             json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:s, s:b, s:b, s:b}", "cert_kind", i->kind,
                       "name", i->name, "role", i->role, "cn", i->cn, "issuer_cn", i->issuer_cn, "sans", sans_array(i),
                       "sans_truncated", i->sans_truncated, "serial", i->serial_hex, "not_before", from, "not_after",
                       until, "server_auth", i->server_auth, "client_auth", i->client_auth, "ca", i->is_ca));
}

static int pki_show(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, ":ho:", lo, NULL)) != -1) {
    int rc = common_opt(opt, "show", show_usage, argv);
    if (rc >= 0) return rc;
  }
  if (optind + 1 != argc) {
    return usage_fail("show", show_usage, optind == argc ? "%s is required" : "one %s only", "CERT");
  }
  mu_pki_cert_info info;
  int rc = read_info("show", argv[optind], &info);
  if (rc != 0) return rc;
  if (opts->json) {
    show_json(&info);
  } else {
    show_text(&info);
  }
  return 0;
}

int mu_cmd_pki(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(const mu_cli_opts *, int, char **);
  } subs[] = {{"init", pki_init}, {"issue", pki_issue}, {"crl", pki_crl}, {"show", pki_show}};
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(pki_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
    if (strcmp(argv[1], subs[i].name) != 0) continue;
    optind = 1;
    opterr = 0;
    return subs[i].run(opts, argc - 1, argv + 1);
  }
  fprintf(stderr, "muster pki: unknown subcommand '%s'\n%s", argv[1], pki_usage);
  return 2;
}
