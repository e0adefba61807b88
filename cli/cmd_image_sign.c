/* muster image sign / verify (docs/images.md "Signing and verifying"): offline commands that
 * talk to the image's registry only, never to the control plane. sign resolves REF's manifest
 * (or index) digest, signs {repository, digest, expiry} with a bundle key and stores the
 * signature as an OCI referrer artifact (or under the fallback tag sha256-<hex>.sig);
 * verify finds the signatures and says who signed which digest until when. The formats and the
 * registry work are plugins/container/imagesig*.h, shared with the agent's require_signed. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/output_json.h"
#include "lib/base/clock.h"
#include "plugins/container/imagesig_registry.h"

#define MAX_PUBS 32

static const char sign_usage[] =
    "usage: muster image sign REF --key PREFIX.key [--expires 90d] [--max-signatures N]\n"
    "                         [--insecure] [--ca FILE] [--auth-env VAR] [-o json]\n"
    "  Signs REF's manifest digest (an index's own digest for a multi-platform image) for its\n"
    "  repository until the expiry, with an Ed25519 key from `muster keygen`, and stores the\n"
    "  signature in the registry as an OCI referrer artifact (registries without the referrers\n"
    "  API: under the tag sha256-<hex>.sig). --insecure: plain http (loopback registries only);\n"
    "  --auth-env VAR: registry credentials user:password from the environment variable VAR.\n";

static const char verify_usage[] =
    "usage: muster image verify REF --pub PREFIX.pub [--pub ...] [--max-signatures N]\n"
    "                           [--insecure] [--ca FILE] [--auth-env VAR] [-o json]\n"
    "  Finds REF's signatures in its registry and checks them against the given public keys:\n"
    "  exit 0 when one is valid (prints who signed which digest until when), 1 with the reason\n"
    "  otherwise (unsigned, signature over another digest, untrusted key, expired, malformed).\n";

typedef struct reg_flags {
  const char *ca, *auth_env;
  bool insecure;
  long max_signatures;
  char auth[1024];
} reg_flags;

static int usage(const char *cmd, const char *text, const char *fmt, const char *arg) {
  fprintf(stderr, "muster image %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", text);
  return MU_EXIT_USAGE;
}

/* The registry options shared by sign and verify; 1 when argv[*i] was one of them (consumed),
 * 0 when not, -1 when it lacked its value. */
static int reg_flag(int argc, char **argv, int *i, reg_flags *f) {
  const char *a = argv[*i];
  if (strcmp(a, "--insecure") == 0) {
    f->insecure = true;
    return 1;
  }
  const char **slot = strcmp(a, "--ca") == 0 ? &f->ca : strcmp(a, "--auth-env") == 0 ? &f->auth_env : NULL;
  bool is_max = strcmp(a, "--max-signatures") == 0;
  if (slot == NULL && !is_max) return 0;
  if (*i + 1 >= argc) return -1;
  const char *v = argv[++*i];
  if (is_max) {
    char *end;
    f->max_signatures = strtol(v, &end, 10);
    if (*end != '\0' || f->max_signatures < 1 || f->max_signatures > MU_IMAGESIG_MAX_LAYERS) return -1;
  } else {
    *slot = v;
  }
  return 1;
}

/* The reference and a registry client for it; 0 or an exit code (message printed). */
static int open_registry(const char *cmd, const char *text, reg_flags *f, mu_imgref *ref, mu_registry **ret) {
  mu_err err = {0};
  if (mu_imgref_parse(text, NULL, ref, &err) != 0) {
    fprintf(stderr, "muster image %s: %s\n", cmd, err.msg);
    return MU_EXIT_USAGE;
  }
  if (f->insecure && !mu_registry_is_loopback(ref->registry)) {
    fprintf(stderr, "muster image %s: --insecure (plain http) is for loopback registries only, not %s\n", cmd,
            ref->registry);
    return MU_EXIT_USAGE;
  }
  mu_registry_opts o = {.ca_file = f->ca, .insecure = f->insecure};
  if (f->auth_env != NULL) {
    const char *v = getenv(f->auth_env);
    char *colon = v ? strchr(v, ':') : NULL;
    if (colon == NULL || strlen(v) >= sizeof f->auth) {
      fprintf(stderr, "muster image %s: --auth-env %s: the variable must hold user:password\n", cmd, f->auth_env);
      return MU_EXIT_USAGE;
    }
    snprintf(f->auth, sizeof f->auth, "%s", v);
    f->auth[colon - v] = '\0';
    o.username = f->auth;
    o.password = f->auth + (colon - v) + 1;
  }
  if (mu_registry_new(ref, &o, ret, &err) != 0) {
    fprintf(stderr, "muster image %s: %s\n", cmd, err.msg);
    return MU_EXIT_FAILED;
  }
  return 0;
}

static void utc(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) snprintf(out, 32, "?");
}

int mu_cmd_image_sign(const mu_cli_opts *opts, int argc, char **argv) {
  const char *ref_text = NULL, *key = NULL, *expires_text = "90d";
  reg_flags f = {0};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(sign_usage, stdout);
      return 0;
    }
    int r = reg_flag(argc, argv, &i, &f);
    if (r < 0) return usage("sign", sign_usage, "%s needs a value (--max-signatures: 1..64)", argv[i]);
    if (r > 0) continue;
    if (strcmp(argv[i], "--key") == 0 || strcmp(argv[i], "--expires") == 0) {
      if (i + 1 >= argc) return usage("sign", sign_usage, "%s needs a value", argv[i]);
      *(strcmp(argv[i], "--key") == 0 ? &key : &expires_text) = argv[i + 1];
      i++;
      continue;
    }
    if (argv[i][0] == '-' || ref_text != NULL) return usage("sign", sign_usage, "unexpected argument '%s'", argv[i]);
    ref_text = argv[i];
  }
  if (ref_text == NULL || key == NULL) return usage("sign", sign_usage, "%s are required", "REF and --key");
  int64_t ttl_ms = 0;
  mu_err err = {0};
  if (mu_duration_parse(expires_text, &ttl_ms, &err) != 0 || ttl_ms < 1000)
    return usage("sign", sign_usage, "--expires: \"%s\" is not a duration of at least 1s (90d, 12h)", expires_text);
  mu_seckey sk;
  if (mu_seckey_load_file(key, &sk, &err) != 0) {
    fprintf(stderr, "muster image sign: %s\n", err.msg);
    return MU_EXIT_USAGE;
  }
  mu_imgref ref;
  mu_registry *reg = NULL;
  int rc = open_registry("sign", ref_text, &f, &ref, &reg);
  if (rc != 0) {
    mu_seckey_wipe(&sk);
    return rc;
  }
  int64_t expires = (int64_t)time(NULL) + ttl_ms / 1000;
  mu_imagesig_sign_result res;
  rc = mu_imagesig_sign(reg, &ref, &sk, expires, (size_t)f.max_signatures, &res, &err);
  mu_seckey_wipe(&sk);
  mu_registry_free(reg);
  explicit_bzero(f.auth, sizeof f.auth);
  if (rc != 0) {
    fprintf(stderr, "muster image sign: %s: %s\n", ref_text, err.msg);
    return MU_EXIT_FAILED;
  }
  char name[MU_IMAGESIG_NAME_MAX], when[32];
  mu_imagesig_name(&ref, name);
  utc(expires, when);
  if (opts->json) {
    mu_cli_json_emit_camel(
        "imageSignature",
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s?, s:I}", "image", ref_text, "repository", name,
                  "digest", res.subject.digest, "media_type", res.subject.media_type, "key_id", res.key_id, "expires",
                  (json_int_t)expires, "expires_at", when, "artifact", res.artifact_digest, "fallback_tag",
                  res.tag[0] ? res.tag : NULL, "signatures", (json_int_t)res.n_signatures));
  } else {
    printf("signed %s@%s with key %s until %s\n", name, res.subject.digest, res.key_id, when);
    if (res.tag[0])
      printf("stored under the fallback tag %s (the registry has no referrers API; %zu signature%s there)\n", res.tag,
             res.n_signatures, res.n_signatures == 1 ? "" : "s");
    else printf("stored as referrer %s\n", res.artifact_digest);
  }
  return MU_EXIT_OK;
}

int mu_cmd_image_verify(const mu_cli_opts *opts, int argc, char **argv) {
  const char *ref_text = NULL, *pubs[MAX_PUBS];
  size_t n_pubs = 0;
  reg_flags f = {0};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(verify_usage, stdout);
      return 0;
    }
    int r = reg_flag(argc, argv, &i, &f);
    if (r < 0) return usage("verify", verify_usage, "%s needs a value (--max-signatures: 1..64)", argv[i]);
    if (r > 0) continue;
    if (strcmp(argv[i], "--pub") == 0) {
      if (i + 1 >= argc) return usage("verify", verify_usage, "%s needs a value", argv[i]);
      if (n_pubs == MAX_PUBS) return usage("verify", verify_usage, "at most 32 %s", "--pub");
      pubs[n_pubs++] = argv[++i];
      continue;
    }
    if (argv[i][0] == '-' || ref_text != NULL)
      return usage("verify", verify_usage, "unexpected argument '%s'", argv[i]);
    ref_text = argv[i];
  }
  if (ref_text == NULL || n_pubs == 0) return usage("verify", verify_usage, "%s are required", "REF and --pub");
  mu_err err = {0};
  mu_trust_set *trust = NULL;
  mu_pubkey pks[MAX_PUBS];
  if (mu_trust_set_new(n_pubs, &trust, &err) != 0) {
    fprintf(stderr, "muster image verify: %s\n", err.msg);
    return MU_EXIT_FAILED;
  }
  for (size_t k = 0; k < n_pubs; k++)
    if (mu_pubkey_load_file(pubs[k], &pks[k], &err) != 0 || mu_trust_set_add(trust, &pks[k], &err) != 0) {
      fprintf(stderr, "muster image verify: %s\n", err.msg);
      mu_trust_set_free(trust);
      return MU_EXIT_USAGE;
    }
  mu_imgref ref;
  mu_registry *reg = NULL;
  int rc = open_registry("verify", ref_text, &f, &ref, &reg);
  if (rc != 0) {
    mu_trust_set_free(trust);
    return rc;
  }
  mu_imagesig_check_opts o = {.trust = trust, .max_signatures = (size_t)f.max_signatures};
  mu_imagesig_verdict v;
  mu_imagesig_status st = mu_imagesig_check(reg, &ref, &o, &v);
  mu_registry_free(reg);
  mu_trust_set_free(trust);
  explicit_bzero(f.auth, sizeof f.auth);
  const char *key_file = NULL;
  for (size_t k = 0; k < n_pubs; k++)
    if (strcmp(pks[k].key_id, v.best.key_id) == 0) key_file = pubs[k];
  char when[32] = "";
  if (v.best.payload.expires) utc(v.best.payload.expires, when);
  if (opts->json) {
    mu_cli_json_emit_camel(
        "imageVerification",
        json_pack("{s:b, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:I}", "ok", st == MU_IMAGESIG_OK, "status",
                  mu_imagesig_status_name(st), "image", ref_text, "repository", v.name, "digest",
                  v.subject.digest[0] ? v.subject.digest : NULL, "key_id", v.best.key_id[0] ? v.best.key_id : NULL,
                  "key_file", key_file, "expires_at", when[0] ? when : NULL, "found_via",
                  v.found_via[0] ? v.found_via : NULL, "message", v.msg, "signatures_checked",
                  (json_int_t)v.n_checked));
  } else if (st == MU_IMAGESIG_OK) {
    printf("%s@%s: signed by key %s (%s) until %s\n", v.name, v.subject.digest, v.best.key_id,
           key_file ? key_file : "?", when);
    printf("found via %s; %zu signature%s checked\n", v.found_via, v.n_checked, v.n_checked == 1 ? "" : "s");
  }
  if (st != MU_IMAGESIG_OK)
    fprintf(stderr, "muster image verify: %s: %s: %s\n", ref_text, mu_imagesig_status_name(st), v.msg);
  return st == MU_IMAGESIG_OK ? MU_EXIT_OK : MU_EXIT_FAILED;
}
