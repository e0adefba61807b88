/* `muster keygen` and `muster bundle pack|sign|verify`: thin command-line shells over
 * //lib/bundle that parse flags, map errors to exit codes (2 for bad usage or input, 1 for a
 * failed command) and print results as text or, with -o json, one JSON object per line. */
#define _GNU_SOURCE /* asprintf */
#include "cli/bundle_local.h"
#include "cli/output_json.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/base/err.h"
#include "lib/bundle/bundle.h"
#include "lib/bundle/keys.h"
#include "lib/bundle/pack.h"
#include "lib/bundle/verify.h"

#define MAX_PUB_KEYS 64

/* If argv[*i] is "NAME VALUE" or "NAME=VALUE", stores VALUE in *ret, advances *i past what it
 * used and returns 1; returns -1 when the value is missing, 0 when argv[*i] is not NAME. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **ret) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *ret = a + n + 1;
    return 1;
  }
  if (a[n] != '\0') return 0;
  if (*i + 1 >= argc) return -1;
  *ret = argv[++*i];
  return 1;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* Handles -o/--output; returns 1 when consumed, 0 when not this option, -1 on a bad value. */
static int opt_output(int argc, char **argv, int *i, bool *json, const char *cmd) {
  const char *v = NULL;
  int r = opt_value(argc, argv, i, "-o", &v);
  if (r == 0) r = opt_value(argc, argv, i, "--output", &v);
  if (r <= 0) {
    if (r < 0) fprintf(stderr, "muster %s: -o needs a value (json or table)\n", cmd);
    return r;
  }
  if (strcmp(v, "json") == 0 || strcmp(v, "table") == 0) {
    *json = strcmp(v, "json") == 0;
    return 1;
  }
  fprintf(stderr, "muster %s: -o: expected json or table, got '%s'\n", cmd, v);
  return -1;
}

static int usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg) {
  fprintf(stderr, "muster %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return 2;
}

/* Bad input (a missing file, an invalid name or bundle) is 2; anything else failed: 1. */
static int exit_for(int code) { return code == MU_EINVAL || code == MU_ENOENT ? 2 : 1; }

/* One line in the CLI's JSON shape (cli/output_json.h): schema, kind, lowerCamelCase names. */
static void print_json(const char *kind, json_t *obj) { mu_cli_json_emit_camel(kind, obj); }

static const char keygen_usage[] =
    "usage: muster keygen --out PREFIX [-o json]\n"
    "  Makes an Ed25519 key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub.\n"
    "  Refuses to overwrite existing files.\n";

int mu_cli_keygen(int argc, char **argv) {
  const char *cmd = "keygen";
  const char *prefix = NULL;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    int r;
    if (is_help(argv[i])) {
      fputs(keygen_usage, stdout);
      return 0;
    }
    r = opt_output(argc, argv, &i, &json, cmd);
    if (r != 0) {
      if (r < 0) return 2;
      continue;
    }
    r = opt_value(argc, argv, &i, "--out", &prefix);
    if (r != 0) {
      if (r < 0) return usage_error(cmd, keygen_usage, "%s needs a value", "--out");
      continue;
    }
    return usage_error(cmd, keygen_usage, "unexpected argument '%s'", argv[i]);
  }
  if (prefix == NULL || prefix[0] == '\0') {
    return usage_error(cmd, keygen_usage, "%s is required", "--out PREFIX");
  }
  mu_err err = {0};
  mu_seckey sk;
  mu_pubkey pk;
  int rc = mu_key_generate(&sk, &pk, &err);
  if (rc == 0) rc = mu_key_write_files(prefix, &sk, &pk, &err);
  mu_seckey_wipe(&sk);
  if (rc != 0) {
    fprintf(stderr, "muster keygen: %s\n", err.msg);
    return 1;
  }
  if (json) {
    print_json("key",
               json_pack("{s:s, s:s+, s:s+}", "key_id", pk.key_id, "key", prefix, ".key", "pub", prefix, ".pub"));
  } else {
    printf("wrote %s.key (secret, mode 0600) and %s.pub\nkey id %s\n", prefix, prefix, pk.key_id);
  }
  return 0;
}

static const char pack_usage[] =
    "usage: muster bundle pack DIR --name NAME --version VERSION --out FILE\n"
    "                          [--entry PATH] [--created-at SECS] [--compress zstd|gzip]\n"
    "                          [--level N]\n"
    "                          [-o json]\n"
    "  Packs DIR into a reproducible bundle and prints its digest. --created-at (default\n"
    "  $SOURCE_DATE_EPOCH, else 0) is the manifest time and every entry's mtime. --level:\n"
    "  compression level (zstd 1..19, default 3; gzip 1..9, default 6).\n";

/* Parses a non-negative decimal count of seconds. */
static int parse_epoch(const char *text, int64_t *ret) {
  if (text == NULL || text[0] == '\0' || strspn(text, "0123456789") != strlen(text) || strlen(text) > 18) {
    return -1;
  }
  *ret = strtoll(text, NULL, 10);
  return 0;
}

int mu_cli_bundle_pack(int argc, char **argv) {
  const char *cmd = "bundle pack";
  const char *dir = NULL;
  const char *out = NULL;
  const char *created = NULL;
  const char *compress = NULL;
  const char *level = NULL;
  bool json = false;
  mu_pack_opts o = {0};
  for (int i = 1; i < argc; i++) {
    int r;
    if (is_help(argv[i])) {
      fputs(pack_usage, stdout);
      return 0;
    }
    r = opt_output(argc, argv, &i, &json, cmd);
    if (r != 0) {
      if (r < 0) return 2;
      continue;
    }
    static const char *const names[] = {"--name",       "--version",  "--entry", "--out",
                                        "--created-at", "--compress", "--level"};
    const char **slots[] = {&o.name, &o.version, &o.entry, &out, &created, &compress, &level};
    bool matched = false;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !matched; k++) {
      r = opt_value(argc, argv, &i, names[k], slots[k]);
      if (r < 0) return usage_error(cmd, pack_usage, "%s needs a value", names[k]);
      matched = r > 0;
    }
    if (matched) continue;
    if (argv[i][0] == '-' || dir != NULL) {
      return usage_error(cmd, pack_usage, "unexpected argument '%s'", argv[i]);
    }
    dir = argv[i];
  }
  if (dir == NULL || o.name == NULL || o.version == NULL || out == NULL) {
    return usage_error(cmd, pack_usage, "%s are required", "DIR, --name, --version and --out");
  }
  if (created != NULL) {
    if (parse_epoch(created, &o.created_at) != 0) {
      return usage_error(cmd, pack_usage, "--created-at '%s': want seconds since the epoch", created);
    }
  } else if (getenv("SOURCE_DATE_EPOCH") != NULL && getenv("SOURCE_DATE_EPOCH")[0] != '\0') {
    if (parse_epoch(getenv("SOURCE_DATE_EPOCH"), &o.created_at) != 0) {
      return usage_error(cmd, pack_usage, "SOURCE_DATE_EPOCH '%s': want seconds since the epoch",
                         getenv("SOURCE_DATE_EPOCH"));
    }
  }
  if (compress == NULL) {
    o.compress = MU_BUNDLE_COMPRESS_AUTO;
  } else if (strcmp(compress, "zstd") == 0) {
    o.compress = MU_BUNDLE_COMPRESS_ZSTD;
  } else if (strcmp(compress, "gzip") == 0) {
    o.compress = MU_BUNDLE_COMPRESS_GZIP;
  } else {
    return usage_error(cmd, pack_usage, "--compress '%s': want zstd or gzip", compress);
  }
  if (level != NULL) {
    char *end = NULL;
    long v = strtol(level, &end, 10);
    if (end == level || *end != '\0' || v < 1 || v > 19)
      return usage_error(cmd, pack_usage, "--level '%s': want 1..19 (zstd) or 1..9 (gzip)", level);
    o.level = (int)v;
  }
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_err err = {0};
  int rc = mu_bundle_pack(dir, &o, out, digest, &err);
  if (rc != 0) {
    fprintf(stderr, "muster bundle pack: %s\n", err.msg);
    return exit_for(rc);
  }
  if (json) {
    print_json("bundleFile", json_pack("{s:s, s:s, s:s, s:s, s:I}", "digest", digest, "file", out, "name", o.name,
                                       "version", o.version, "created_at", (json_int_t)o.created_at));
  } else {
    printf("%s\n", digest);
  }
  return 0;
}

static const char sign_usage[] =
    "usage: muster bundle sign FILE --key PREFIX.key [-o json]\n"
    "  Signs the bundle's digest and manifest with an Ed25519 key; writes FILE.sig.\n";

int mu_cli_bundle_sign(int argc, char **argv) {
  const char *cmd = "bundle sign";
  const char *file = NULL;
  const char *key = NULL;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    int r;
    if (is_help(argv[i])) {
      fputs(sign_usage, stdout);
      return 0;
    }
    r = opt_output(argc, argv, &i, &json, cmd);
    if (r != 0) {
      if (r < 0) return 2;
      continue;
    }
    r = opt_value(argc, argv, &i, "--key", &key);
    if (r != 0) {
      if (r < 0) return usage_error(cmd, sign_usage, "%s needs a value", "--key");
      continue;
    }
    if (argv[i][0] == '-' || file != NULL) {
      return usage_error(cmd, sign_usage, "unexpected argument '%s'", argv[i]);
    }
    file = argv[i];
  }
  if (file == NULL || key == NULL) {
    return usage_error(cmd, sign_usage, "%s are required", "FILE and --key");
  }
  mu_err err = {0};
  mu_seckey sk;
  int rc = mu_seckey_load_file(key, &sk, &err);
  if (rc != 0) {
    fprintf(stderr, "muster bundle sign: %s\n", err.msg);
    return 2;
  }
  char *sig_path = NULL;
  char key_id[MU_KEY_ID_SIZE];
  memcpy(key_id, sk.key_id, sizeof key_id);
  rc = mu_bundle_sign_file(file, &sk, NULL, &sig_path, &err);
  mu_seckey_wipe(&sk);
  if (rc != 0) {
    fprintf(stderr, "muster bundle sign: %s\n", err.msg);
    return exit_for(rc);
  }
  if (json) {
    print_json("signature", json_pack("{s:s, s:s, s:s}", "file", file, "sig", sig_path, "key_id", key_id));
  } else {
    printf("signed %s with key %s -> %s\n", file, key_id, sig_path);
  }
  free(sig_path);
  return 0;
}

static const char verify_usage[] =
    "usage: muster bundle verify FILE --pub PREFIX.pub [--pub ...] [--sig FILE.sig]\n"
    "                            [--digest sha256:HEX] [--allow-unsigned] [-o json]\n"
    "  Checks the digest, manifest and signature (FILE.sig by default) against the given\n"
    "  public keys, and prints a summary of the manifest. Nothing is unpacked.\n";

static void print_summary(const char *file, const mu_bundle_info *info, bool json) {
  const mu_manifest *m = info->manifest;
  size_t counts[3] = {0, 0, 0};
  uint64_t bytes = 0;
  for (size_t i = 0; i < m->n_files; i++) {
    counts[m->files[i].type]++;
    bytes += m->files[i].size;
  }
  if (json) {
    print_json("verification",
               json_pack("{s:b, s:s, s:s, s:s?, s:s, s:s, s:s?, s:I, s:I, s:I, s:I}", "ok", 1, "file", file, "digest",
                         info->digest, "key_id", info->key_id[0] != '\0' ? info->key_id : NULL, "name", m->name,
                         "version", m->version, "entry", m->entry, "created_at", (json_int_t)m->created_at, "entries",
                         (json_int_t)m->n_files, "unpacked_bytes", (json_int_t)bytes, "archive_bytes",
                         (json_int_t)info->archive_bytes));
    return;
  }
  char when[32] = "?";
  time_t t = (time_t)m->created_at;
  struct tm tm;
  if (gmtime_r(&t, &tm) != NULL) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  printf("ok       %s\n", file);
  printf("bundle   %s %s\n", m->name, m->version);
  printf("digest   %s\n", info->digest);
  if (info->key_id[0] != '\0') {
    printf("signed   by key %s\n", info->key_id);
  } else {
    printf("signed   no (allowed by --allow-unsigned)\n");
  }
  printf("entry    %s\n", m->entry != NULL ? m->entry : "-");
  printf("created  %s (%lld)\n", when, (long long)m->created_at);
  printf("contents %zu files, %zu dirs, %zu symlinks; %llu bytes unpacked, %zu packed\n", counts[MU_BUNDLE_FILE],
         counts[MU_BUNDLE_DIR], counts[MU_BUNDLE_SYMLINK], (unsigned long long)bytes, info->archive_bytes);
}

int mu_cli_bundle_verify(int argc, char **argv) {
  const char *cmd = "bundle verify";
  const char *file = NULL;
  const char *sig_arg = NULL;
  const char *digest = NULL;
  const char *pubs[MAX_PUB_KEYS];
  size_t n_pubs = 0;
  bool allow_unsigned = false;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    int r;
    const char *v = NULL;
    if (is_help(argv[i])) {
      fputs(verify_usage, stdout);
      return 0;
    }
    r = opt_output(argc, argv, &i, &json, cmd);
    if (r != 0) {
      if (r < 0) return 2;
      continue;
    }
    if (strcmp(argv[i], "--allow-unsigned") == 0) {
      allow_unsigned = true;
      continue;
    }
    r = opt_value(argc, argv, &i, "--pub", &v);
    if (r != 0) {
      if (r < 0) return usage_error(cmd, verify_usage, "%s needs a value", "--pub");
      if (n_pubs == MAX_PUB_KEYS) {
        return usage_error(cmd, verify_usage, "at most %s --pub keys", "64");
      }
      pubs[n_pubs++] = v;
      continue;
    }
    r = opt_value(argc, argv, &i, "--sig", &sig_arg);
    if (r == 0) r = opt_value(argc, argv, &i, "--digest", &digest);
    if (r != 0) {
      if (r < 0) return usage_error(cmd, verify_usage, "option '%s' needs a value", argv[i]);
      continue;
    }
    if (argv[i][0] == '-' || file != NULL) {
      return usage_error(cmd, verify_usage, "unexpected argument '%s'", argv[i]);
    }
    file = argv[i];
  }
  if (file == NULL || (n_pubs == 0 && !allow_unsigned)) {
    return usage_error(cmd, verify_usage, "%s are required", "FILE and --pub");
  }
  mu_err err = {0};
  if (digest != NULL && mu_bundle_digest_check(digest, &err) != 0) {
    return usage_error(cmd, verify_usage, "%s", err.msg);
  }
  int code = 2;
  uint8_t *data = NULL;
  size_t len = 0;
  uint8_t *sig = NULL;
  size_t sig_len = 0;
  char *sig_path = NULL;
  mu_trust_set *trust = NULL;
  mu_bundle_info *info = NULL;
  mu_unpack_limits limits;
  mu_unpack_limits_default(&limits);
  int rc = mu_trust_set_new(MAX_PUB_KEYS, &trust, &err);
  for (size_t k = 0; rc == 0 && k < n_pubs; k++) rc = mu_trust_set_add_file(trust, pubs[k], &err);
  if (rc != 0) goto fail;
  rc = mu_bundle_read_file(file, limits.max_archive_bytes, &data, &len, &err);
  if (rc != 0) {
    code = rc == MU_ENOSPC ? 1 : 2;
    goto fail;
  }
  if (sig_arg != NULL) {
    rc = mu_bundle_read_file(sig_arg, 4096, &sig, &sig_len, &err);
    if (rc != 0) goto fail;
  } else {
    if (asprintf(&sig_path, "%s.sig", file) < 0) {
      sig_path = NULL;
      rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
      goto fail;
    }
    /* A missing default FILE.sig means "unsigned", which the check below refuses unless
     * --allow-unsigned was given. */
    rc = mu_bundle_read_file(sig_path, 4096, &sig, &sig_len, &err);
    if (rc == MU_ENOENT) {
      rc = 0;
    } else if (rc != 0) {
      goto fail;
    }
  }
  mu_bundle_check chk = {
      .expected_digest = digest, .trust = trust, .sig = sig, .sig_len = sig_len, .allow_unsigned = allow_unsigned};
  rc = mu_bundle_verify(data, len, &chk, &limits, &info, &err);
  if (rc != 0) {
    code = 1;
    mu_err_prefix(&err, "%s", file);
    goto fail;
  }
  print_summary(file, info, json);
  code = 0;
  goto out;
fail:
  fprintf(stderr, "muster bundle verify: %s\n", err.msg);
out:
  mu_bundle_info_free(info);
  mu_trust_set_free(trust);
  free(sig_path);
  free(sig);
  free(data);
  return code;
}
