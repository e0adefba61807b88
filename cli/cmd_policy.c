/* muster policy set / show / test: the cluster's image admission policy (muster.v1.ImagePolicies,
 * docs/images.md#admission-policy). set checks the file here first (lib/imagepolicy: the same
 * parser musterd and the agents use), so a bad file is refused naming its line before any
 * call. test resolves what it can of the image from its registry (manifest, config: user,
 * size; never a layer) with the agent's registry client and asks musterd to evaluate those
 * facts against the cluster policy. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/policy_scan.h"
#include "lib/imagepolicy/imagepolicy.h"
#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"
#include "plugins/container/registry.h"

#define MAX_VOLUMES 64

static const char policy_usage[] =
    "usage: muster policy set FILE | set --clear\n"
    "       muster policy show\n"
    "       muster policy test REF [--network none|host] [--volume HOST_PATH]... [--user USER]\n"
    "                          [--insecure] [--ca FILE] [--auth-env VAR] [--platform OS/ARCH[/VARIANT]]\n"
    "                          [--offline] [--feed DIR]\n"
    "\n"
    "The cluster's image admission policy (YAML or JSON; an unknown key is refused):\n"
    "  registries: [reg.internal:5000/team/*]   # allowed REGISTRY/REPOSITORY globs (* ** ? [a-z])\n"
    "  digests_only: true                       # refuse images named by tag alone\n"
    "  require_signed: true                     # (trusted_keys: [...])\n"
    "  max_severity: HIGH                       # worst unfixed finding allowed (severity_grace_days: N)\n"
    "  allow_root_user: false\n"
    "  allow_host_network: false\n"
    "  allowed_volumes: [/srv/data/**]          # host paths container tasks may mount\n"
    "  max_image_size: 2G                       # compressed size from the manifest\n"
    "set (admin) stores it in etcd and pushes it to every agent; each agent applies it together\n"
    "with its own (container_policy): both must allow an image. show and test need viewer.\n"
    "test REF reads the image's manifest and config from its registry (no layer), unless\n"
    "--offline, and prints every violation; it exits 1 when the policy refuses the image.\n"
    "--feed DIR scans REF as `muster image scan REF --feed DIR` does (its layers are fetched\n"
    "into the scan's store) and tests the findings against max_severity, as an agent with that\n"
    "feed (container_scan_feed_dir) would; without it max_severity says no scan is available.\n";

static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "muster policy: %s%s\n%s", what, arg ? arg : "", policy_usage);
  return MU_EXIT_USAGE;
}

static int call(const mu_cli_opts *opts, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply) {
  mu_err err = {0};
  if (mu_cli_unary(opts, method, req, reply_desc, ret_reply, &err) == 0) return 0;
  fprintf(stderr, "muster policy: %s\n", err.msg);
  return err.code == MU_EINVAL ? MU_EXIT_USAGE : MU_EXIT_FAILED;
}

static int policy_set(const mu_cli_opts *opts, int argc, char **argv) {
  int clear = argc == 3 && strcmp(argv[2], "--clear") == 0;
  if (argc != 3) return usage_error("set takes FILE or --clear", NULL);
  Muster__V1__SetImagePolicyRequest req = MUSTER__V1__SET_IMAGE_POLICY_REQUEST__INIT;
  char *text = NULL;
  size_t len = 0;
  if (!clear) {
    mu_imgpolicy *p = NULL;
    mu_err err = {0};
    if (mu_imgpolicy_read_file(argv[2], &text, &len, &err) != 0 ||
        mu_imgpolicy_parse(argv[2], text, len, &p, &err) != 0) {
      fprintf(stderr, "muster policy set: %s (nothing changed)\n", err.msg);
      free(text);
      return MU_EXIT_USAGE;
    }
    mu_imgpolicy_free(p);
    req.document = text;
    req.name = argv[2];
  }
  req.clear = clear;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.ImagePolicies/SetImagePolicy", &req.base, &muster__v1__image_policy_info__descriptor,
                &reply);
  free(text);
  if (rc != 0) return rc;
  const Muster__V1__ImagePolicyInfo *info = (const Muster__V1__ImagePolicyInfo *)reply;
  if (opts->json) mu_cli_print_json(reply);
  else if (clear) printf("cluster image policy cleared; every agent is told\n");
  else printf("cluster image policy set (%s); every agent is told\n", info->sha256);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int policy_show(const mu_cli_opts *opts) {
  Muster__V1__GetImagePolicyRequest req = MUSTER__V1__GET_IMAGE_POLICY_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.ImagePolicies/GetImagePolicy", &req.base, &muster__v1__image_policy_info__descriptor,
                &reply);
  if (rc != 0) return rc;
  const Muster__V1__ImagePolicyInfo *info = (const Muster__V1__ImagePolicyInfo *)reply;
  if (opts->json) {
    mu_cli_print_json(reply);
  } else if (info->policy_json[0] == '\0') {
    printf("no cluster image policy (agents apply only their own container_policy)\n");
  } else {
    char ago[64];
    printf("# cluster image policy %s, set by %s %s\n", info->sha256, info->set_by[0] ? info->set_by : "?",
           mu_cli_ago(info->set_at_ms, ago, sizeof ago));
    printf("# in effect: %s\n", info->policy_json);
    fputs(info->document, stdout);
    size_t n = strlen(info->document);
    if (n > 0 && info->document[n - 1] != '\n') putchar('\n');
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

/* --- test --- */

typedef struct test_opts {
  const char *ref, *network, *user, *ca, *auth_env, *platform, *feed;
  const char *volumes[MAX_VOLUMES];
  size_t n_volumes;
  int insecure, offline;
} test_opts;

typedef struct resolved {
  char manifest_digest[72];
  char *config_user; /* malloc'd */
  int config_known;
  uint64_t compressed;
} resolved;

/* The manifest (an index resolved for the platform) and the config, never a layer. */
static int resolve(const test_opts *t, const mu_imgref *ref, resolved *out, mu_err *err) {
  mu_registry_opts ro = {.ca_file = t->ca, .insecure = t->insecure, .deadline_ms = mu_registry_now_ms() + 30000};
  char auth[1024] = "";
  const char *a = t->auth_env ? getenv(t->auth_env) : NULL;
  if (a != NULL) {
    snprintf(auth, sizeof auth, "%s", a);
    char *colon = strchr(auth, ':');
    if (colon == NULL) return mu_err_set(err, MU_EINVAL, "$%s must hold user:password", t->auth_env);
    *colon = '\0';
    ro.username = auth;
    ro.password = colon + 1;
  }
  if (t->insecure && !mu_registry_is_loopback(ref->registry))
    return mu_err_set(err, MU_EINVAL, "--insecure (plain http) is for loopback registries only, not %s", ref->registry);
  mu_platform plat;
  if (t->platform == NULL) mu_platform_host(&plat);
  else if (mu_platform_parse(t->platform, &plat, err) != 0) return MU_EINVAL;
  mu_registry *r = NULL;
  char *body = NULL, *cfg = NULL;
  char ctype[128] = "", digest[72] = "", dir[] = "/tmp/muster-policy-XXXXXX", path[64] = "";
  size_t len = 0;
  mu_manifest m;
  mu_image_config conf;
  memset(&conf, 0, sizeof conf);
  int rc = mu_registry_new(ref, &ro, &r, err);
  if (rc == 0) rc = mu_registry_get_manifest(r, mu_imgref_reference(ref), &body, &len, ctype, digest, err);
  mu_doc_kind kind = MU_DOC_MANIFEST;
  if (rc == 0) rc = mu_doc_kind_of(ctype, body, len, &kind, err);
  if (rc == 0 && kind == MU_DOC_INDEX) {
    mu_descriptor d;
    rc = mu_index_select(body, len, &plat, &d, err);
    free(body);
    body = NULL;
    if (rc == 0) rc = mu_registry_get_manifest(r, d.digest, &body, &len, ctype, digest, err);
  }
  if (rc == 0) rc = mu_image_manifest_parse(body, len, &m, err);
  if (rc == 0 && mkdtemp(dir) == NULL) rc = mu_err_set(err, MU_EIO, "mkdtemp: %m");
  if (rc == 0) {
    snprintf(path, sizeof path, "%s/config", dir);
    rc = mu_registry_get_blob(r, &m.config, path, err);
  }
  if (rc == 0) {
    FILE *f = fopen(path, "re");
    cfg = malloc((size_t)m.config.size + 1);
    size_t n = f && cfg ? fread(cfg, 1, (size_t)m.config.size, f) : 0;
    if (f) fclose(f);
    rc = cfg == NULL || n != (size_t)m.config.size ? mu_err_set(err, MU_EIO, "config %s: short read", m.config.digest)
                                                   : mu_image_config_parse(cfg, n, &conf, err);
  }
  if (rc == 0) {
    snprintf(out->manifest_digest, sizeof out->manifest_digest, "%s", digest);
    out->config_user = strdup(conf.user ? conf.user : "");
    out->config_known = 1;
    out->compressed = (uint64_t)m.config.size;
    for (size_t i = 0; i < m.n_layers; i++) out->compressed += (uint64_t)m.layers[i].size;
  }
  if (path[0]) unlink(path);
  if (path[0]) rmdir(dir);
  explicit_bzero(auth, sizeof auth);
  mu_image_config_free(&conf);
  free(cfg);
  free(body);
  mu_registry_free(r);
  return rc;
}

static int parse_test_opts(int argc, char **argv, test_opts *t) {
  static const struct option longopts[] = {
      {"network", required_argument, NULL, 'n'},  {"volume", required_argument, NULL, 'v'},
      {"user", required_argument, NULL, 'u'},     {"insecure", no_argument, NULL, 'k'},
      {"ca", required_argument, NULL, 'c'},       {"auth-env", required_argument, NULL, 'a'},
      {"platform", required_argument, NULL, 'p'}, {"offline", no_argument, NULL, 'o'},
      {"feed", required_argument, NULL, 'f'},     {NULL, 0, NULL, 0},
  };
  optind = 1;
  int c;
  while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'n': t->network = optarg; break;
      case 'v':
        if (t->n_volumes >= MAX_VOLUMES) return usage_error("too many --volume", NULL);
        t->volumes[t->n_volumes++] = optarg;
        break;
      case 'u': t->user = optarg; break;
      case 'k': t->insecure = 1; break;
      case 'c': t->ca = optarg; break;
      case 'a': t->auth_env = optarg; break;
      case 'p': t->platform = optarg; break;
      case 'o': t->offline = 1; break;
      case 'f': t->feed = optarg; break;
      default: return usage_error("bad option for test", NULL);
    }
  }
  if (argc - 1 - optind != 1) return usage_error("test takes one REF", NULL);
  t->ref = argv[1 + optind];
  if (t->network != NULL && strcmp(t->network, "none") != 0 && strcmp(t->network, "host") != 0)
    return usage_error("--network is none or host, not ", t->network);
  return 0;
}

static void human(uint64_t b, char *buf, size_t cap) {
  if (b >= (1ull << 20)) snprintf(buf, cap, "%.1f MiB", (double)b / (1ull << 20));
  else if (b >= 1024) snprintf(buf, cap, "%.1f KiB", (double)b / 1024);
  else snprintf(buf, cap, "%llu bytes", (unsigned long long)b);
}

static int policy_test(const mu_cli_opts *opts, int argc, char **argv) {
  test_opts t = {0};
  int rc = parse_test_opts(argc, argv, &t);
  if (rc != 0) return rc;
  mu_imgref ref;
  mu_err err = {0};
  if (mu_imgref_parse(t.ref, NULL, &ref, &err) != 0) {
    fprintf(stderr, "muster policy test: %s\n", err.msg);
    return MU_EXIT_USAGE;
  }
  resolved r = {0};
  if (!t.offline && resolve(&t, &ref, &r, &err) != 0)
    fprintf(stderr, "muster policy test: %s/%s: %s; testing the reference alone\n", ref.registry, ref.repository,
            err.msg);
  Muster__V1__ImageFacts f = MUSTER__V1__IMAGE_FACTS__INIT;
  f.registry = ref.registry;
  f.repository = ref.repository;
  f.tag = ref.tag;
  f.digest = ref.digest;
  f.manifest_digest = r.manifest_digest;
  f.config_known = r.config_known;
  f.config_user = r.config_user ? r.config_user : "";
  f.run_user = (char *)(t.user ? t.user : "");
  f.compressed_bytes = r.compressed;
  f.network = (char *)(t.network ? t.network : "none");
  f.volumes = (char **)t.volumes;
  f.n_volumes = t.n_volumes;
  f.signature = "not_checked"; /* wired when image signatures are verified (imagesig) */
  mu_imgscan_summary scan;
  size_t n_findings = 0;
  if (t.feed != NULL) {
    mu_policy_scan_opts so = {.ref = t.ref, .feed = t.feed, .ca = t.ca, .platform = t.platform, .insecure = t.insecure};
    if (mu_policy_scan(&so, &scan, &n_findings, &err) != 0) {
      fprintf(stderr, "muster policy test: scan %s: %s\n", t.ref, err.msg);
      free(r.config_user);
      return err.code == MU_EINVAL ? MU_EXIT_USAGE : MU_EXIT_FAILED;
    }
    f.scanned = 1;
    f.n_unfixed = MU_SEV_COUNT;
    f.unfixed = scan.unfixed;
    f.n_oldest_days = MU_SEV_COUNT;
    f.oldest_days = scan.oldest_days;
  }
  Muster__V1__TestImagePolicyRequest req = MUSTER__V1__TEST_IMAGE_POLICY_REQUEST__INIT;
  req.facts = &f;
  ProtobufCMessage *reply = NULL;
  rc = call(opts, "/muster.v1.ImagePolicies/TestImagePolicy", &req.base,
            &muster__v1__test_image_policy_response__descriptor, &reply);
  if (rc == 0) {
    const Muster__V1__TestImagePolicyResponse *resp = (const Muster__V1__TestImagePolicyResponse *)reply;
    if (opts->json) {
      mu_cli_print_json(reply);
    } else {
      char size[32] = "size unknown";
      if (r.compressed) human(r.compressed, size, sizeof size);
      printf("image %s/%s%s%s%s%s (%s, %s compressed, user \"%s\")\n", ref.registry, ref.repository,
             ref.tag[0] ? ":" : "", ref.tag, ref.digest[0] ? "@" : "", ref.digest,
             r.manifest_digest[0] ? r.manifest_digest : "not read", size, r.config_known ? r.config_user : "unknown");
      if (t.feed != NULL) {
        printf("scan %zu finding%s; unfixed:", n_findings, n_findings == 1 ? "" : "s");
        for (int sev = MU_SEV_CRITICAL; sev >= MU_SEV_UNKNOWN; sev--)
          printf(" %s %u%s", mu_severity_name((mu_severity)sev), scan.unfixed[sev], sev ? "," : "\n");
      }
      if (!resp->has_policy) printf("ALLOWED: there is no cluster image policy\n");
      else if (resp->allowed) printf("ALLOWED by the cluster policy %s\n", resp->policy_sha256);
      else
        printf("REFUSED by the cluster policy %s: %zu violation%s\n", resp->policy_sha256, resp->n_violations,
               resp->n_violations == 1 ? "" : "s");
      for (size_t i = 0; i < resp->n_violations; i++)
        printf("  %s: %s\n", resp->violations[i]->rule, resp->violations[i]->message);
    }
    rc = resp->allowed ? MU_EXIT_OK : MU_EXIT_FAILED;
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  free(r.config_user);
  return rc;
}

int mu_cmd_policy(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(policy_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
  }
  if (strcmp(argv[1], "set") == 0) return policy_set(opts, argc, argv);
  if (strcmp(argv[1], "show") == 0) {
    if (argc != 2) return usage_error("show takes no arguments", NULL);
    return policy_show(opts);
  }
  if (strcmp(argv[1], "test") == 0) return policy_test(opts, argc, argv);
  return usage_error("unknown subcommand ", argv[1]);
}
