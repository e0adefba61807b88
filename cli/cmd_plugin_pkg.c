/* `muster plugin pack|push|ls|rm`: plugin bundles. A plugin bundle is a task bundle named
 * "plugin-TYPE" at the plugin's version holding plugin.yaml and the .so (lib/plugpkg), signed
 * with the same keys as task bundles and stored in the same bundle store. pack refuses a bad
 * plugin.yaml and a .so whose descriptor disagrees with it before writing anything; ls joins
 * the stored versions with what each agent reports it runs; rm refuses a version some agent
 * still runs unless --force. */
#include <dlfcn.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/output_json.h"
#include "lib/bundle/keys.h"
#include "lib/bundle/pack.h"
#include "lib/bundle/verify.h"
#include "lib/bundle/version.h"
#include "lib/plugpkg/plugin_yaml.h"
#include "plugins/sdk/muster_plugin.h"

#define MU_PLUGIN_MAX_AGENTS_SHOWN 5

static const char pack_usage[] =
    "usage: muster plugin pack DIR --out FILE [--key KEY] [--no-load-check]\n"
    "Packs DIR (plugin.yaml and the .so it names) into a plugin bundle \"plugin-TYPE\"@VERSION,\n"
    "signed with --key (default $MUSTER_SIGNING_KEY; FILE.sig beside it). The .so is loaded\n"
    "once to check that its descriptor's type, version and ABI are plugin.yaml's\n"
    "(--no-load-check skips that, e.g. for another architecture).\n";

/* Loads the .so and compares its descriptor with plugin.yaml. */
static int load_check(const char *so, const mu_plugin_pkg *p, mu_err *err) {
  void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL)
    return mu_err_set(err, MU_EINVAL, "%s: cannot load it to check: %s (--no-load-check skips)", so, dlerror());
  const muster_plugin *d = dlsym(dl, MUSTER_PLUGIN_SYMBOL);
  int rc = 0;
  if (d == NULL) rc = mu_err_set(err, MU_EINVAL, "%s: no %s symbol: not a Muster plugin", so, MUSTER_PLUGIN_SYMBOL);
  else if (d->type == NULL || strcmp(d->type, p->type) != 0)
    rc = mu_err_set(err, MU_EINVAL, "%s: its descriptor says type \"%s\", plugin.yaml says \"%s\"", so,
                    d->type ? d->type : "", p->type);
  else if (d->version == NULL || mu_bundle_version_cmp(d->version, p->version) != 0)
    rc = mu_err_set(err, MU_EINVAL, "%s: its descriptor says version %s, plugin.yaml says %s", so,
                    d->version ? d->version : "(none)", p->version);
  else if (d->abi_version != p->abi_version)
    rc = mu_err_set(err, MU_EINVAL, "%s: built for ABI version %u, plugin.yaml says %u", so, d->abi_version,
                    p->abi_version);
  dlclose(dl);
  return rc;
}

int mu_cmd_plugin_pack(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"out", required_argument, NULL, 'o'},
                                     {"key", required_argument, NULL, 'k'},
                                     {"no-load-check", no_argument, NULL, 'n'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  const char *out = NULL, *key = getenv("MUSTER_SIGNING_KEY");
  int no_check = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case 'o': out = optarg; break;
      case 'k': key = optarg; break;
      case 'n': no_check = 1; break;
      case 'h': fputs(pack_usage, stdout); return 0;
      default:
        fprintf(stderr, "muster plugin pack: unknown or incomplete option '%s'\n%s", argv[optind - 1], pack_usage);
        return 2;
    }
  }
  if (optind != argc - 1 || out == NULL) {
    fprintf(stderr, "muster plugin pack: expected DIR and --out FILE\n%s", pack_usage);
    return 2;
  }
  const char *dir = argv[optind];
  char yaml[4200], so[4400], name[96], digest[MU_BUNDLE_DIGEST_SIZE];
  snprintf(yaml, sizeof yaml, "%s/plugin.yaml", dir);
  mu_plugin_pkg *p = NULL;
  mu_err err = {0};
  int status = 2;
  if (mu_plugin_pkg_load(yaml, &p, &err) != 0) goto fail;
  snprintf(so, sizeof so, "%s/%s", dir, p->library);
  if (access(so, R_OK) != 0) {
    mu_err_set(&err, MU_EINVAL, "%s: plugin.yaml's library %s is not in %s", yaml, p->library, dir);
    goto fail;
  }
  if (!no_check && load_check(so, p, &err) != 0) goto fail;
  mu_plugin_pkg_bundle_name(p->type, name, sizeof name);
  const char *epoch = getenv("SOURCE_DATE_EPOCH");
  mu_pack_opts po = {.name = name, .version = p->version, .created_at = epoch ? atoll(epoch) : 0};
  status = 1;
  if (mu_bundle_pack(dir, &po, out, digest, &err) != 0) goto fail;
  char *sig_path = NULL;
  if (key != NULL) {
    mu_seckey sk;
    if (mu_seckey_load_file(key, &sk, &err) != 0) goto fail;
    int rc = mu_bundle_sign_file(out, &sk, NULL, &sig_path, &err);
    mu_seckey_wipe(&sk);
    if (rc != 0) goto fail;
  }
  if (opts->json) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "type", p->type, "version", p->version, "bundle", name,
                          "digest", digest, "file", out, "sig", sig_path);
    mu_cli_json_emit("pluginBundle", o);
  } else {
    printf("%s\n", digest);
    if (!opts->quiet)
      fprintf(stderr, "packed %s %s as %s@%s%s%s\n", p->type, p->version, name, p->version,
              sig_path ? ", signed: " : " (unsigned: pass --key or set MUSTER_SIGNING_KEY)", sig_path ? sig_path : "");
  }
  free(sig_path);
  mu_plugin_pkg_free(p);
  return 0;
fail:
  fprintf(stderr, "muster plugin pack: %s\n", err.msg);
  mu_plugin_pkg_free(p);
  return status;
}

int mu_cmd_plugin_push(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(
        "usage: muster plugin push FILE [--sig PATH] [--no-progress]\n"
        "Uploads a plugin bundle made by `muster plugin pack` (and FILE.sig) like `muster bundle push`.\n",
        stdout);
    return 0;
  }
  return mu_cmd_bundle_push(opts, argc, argv);
}

/* Agents (id list) that report type at version; ListAgents reply owned by the caller. */
static int agents_running(const mu_cli_opts *opts, Muster__V1__ListAgentsResponse **ret, mu_err *err) {
  Muster__V1__ListAgentsRequest req = MUSTER__V1__LIST_AGENTS_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  int rc = mu_cli_unary(opts, "/muster.v1.Admin/ListAgents", &req.base, &muster__v1__list_agents_response__descriptor,
                        &reply, err);
  if (rc == 0) *ret = (Muster__V1__ListAgentsResponse *)reply;
  return rc;
}

/* "a1, a2, ... (N)" of the agents running type at version into buf; returns how many. */
static size_t who_runs(const Muster__V1__ListAgentsResponse *agents, const char *type, const char *version, char *buf,
                       size_t size) {
  size_t n = 0, off = 0;
  buf[0] = '\0';
  for (size_t i = 0; agents != NULL && i < agents->n_agents; i++) {
    const Muster__V1__AgentInfo *a = agents->agents[i];
    for (size_t k = 0; k < a->n_plugins; k++) {
      if (strcmp(a->plugins[k]->type, type) != 0 || mu_bundle_version_cmp(a->plugins[k]->version, version) != 0)
        continue;
      if (n < MU_PLUGIN_MAX_AGENTS_SHOWN && off < size)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", n ? "," : "", a->agent_id);
      n++;
    }
  }
  if (n > MU_PLUGIN_MAX_AGENTS_SHOWN && off < size)
    snprintf(buf + off, size - off, ",+%zu", n - MU_PLUGIN_MAX_AGENTS_SHOWN);
  return n;
}

int mu_cmd_plugin_ls(const mu_cli_opts *opts, int argc, char **argv) {
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs("usage: muster plugin ls [TYPE]\nStored plugin versions, and which agents run each.\n", stdout);
      return 0;
    }
    if (argv[i][0] == '-' || only != NULL) {
      fprintf(stderr, "muster plugin ls: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
    only = argv[i];
  }
  Muster__V1__ListBundlesRequest req = MUSTER__V1__LIST_BUNDLES_REQUEST__INIT;
  char name[96];
  if (only != NULL) {
    mu_plugin_pkg_bundle_name(only, name, sizeof name);
    req.name = name;
  }
  ProtobufCMessage *reply = NULL;
  Muster__V1__ListAgentsResponse *agents = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/ListBundles", &req.base, &muster__v1__list_bundles_response__descriptor,
                   &reply, &err) != 0 ||
      agents_running(opts, &agents, &err) != 0) {
    fprintf(stderr, "muster plugin ls: %s\n", err.msg);
    if (reply != NULL) protobuf_c_message_free_unpacked(reply, NULL);
    return 1;
  }
  const Muster__V1__ListBundlesResponse *resp = (const Muster__V1__ListBundlesResponse *)reply;
  if (!opts->json && !opts->quiet) printf("%-20s %-12s %-20s %-16s %s\n", "TYPE", "VERSION", "DIGEST", "KEY", "AGENTS");
  for (size_t i = 0; i < resp->n_bundles; i++) {
    const Muster__V1__BundleInfo *b = resp->bundles[i];
    if (strncmp(b->name, "plugin-", 7) != 0) continue;
    const char *type = b->name + 7;
    char who[256];
    size_t n = who_runs(agents, type, b->version, who, sizeof who);
    if (opts->json) {
      json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "type", type, "version", b->version, "digest", b->digest,
                            "keyId", b->key_id, "agents", (json_int_t)n, "agentIds", who);
      mu_cli_json_emit("plugin", o);
    } else if (opts->quiet) {
      printf("%s@%s\n", type, b->version);
    } else {
      printf("%-20s %-12s %-20.19s %-16s %zu%s%s\n", type, b->version, b->digest, b->key_id[0] ? b->key_id : "-", n,
             n ? " " : "", who);
    }
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  protobuf_c_message_free_unpacked(&agents->base, NULL);
  return 0;
}

/* TYPE@VERSION into type and version; 0, or -1 when malformed. */
int mu_cli_plugin_ref(const char *ref, char *type, size_t type_size, char *version, size_t version_size) {
  const char *at = strchr(ref, '@');
  if (at == NULL || at == ref || at[1] == '\0' || (size_t)(at - ref) >= type_size || strlen(at + 1) >= version_size)
    return -1;
  snprintf(type, type_size, "%.*s", (int)(at - ref), ref);
  snprintf(version, version_size, "%s", at + 1);
  return mu_bundle_version_check(version, NULL) == 0 ? 0 : -1;
}

int mu_cmd_plugin_rm(const mu_cli_opts *opts, int argc, char **argv) {
  static const char rm_usage[] =
      "usage: muster plugin rm TYPE@VERSION [--force]\n"
      "Removes a stored plugin version; refused while an agent runs it, unless --force.\n";
  const char *ref = NULL;
  int force = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(rm_usage, stdout);
      return 0;
    }
    if (strcmp(argv[i], "--force") == 0) force = 1;
    else if (argv[i][0] != '-' && ref == NULL) ref = argv[i];
    else {
      fprintf(stderr, "muster plugin rm: unexpected argument '%s'\n%s", argv[i], rm_usage);
      return 2;
    }
  }
  char type[80], version[80];
  if (ref == NULL || mu_cli_plugin_ref(ref, type, sizeof type, version, sizeof version) != 0) {
    fprintf(stderr, "muster plugin rm: expected TYPE@VERSION\n%s", rm_usage);
    return 2;
  }
  mu_err err = {0};
  Muster__V1__ListAgentsResponse *agents = NULL;
  if (!force) {
    if (agents_running(opts, &agents, &err) != 0) {
      fprintf(stderr, "muster plugin rm: %s\n", err.msg);
      return 1;
    }
    char who[256];
    size_t n = who_runs(agents, type, version, who, sizeof who);
    protobuf_c_message_free_unpacked(&agents->base, NULL);
    if (n > 0) {
      fprintf(stderr,
              "muster plugin rm: %s %s is deployed on %zu agent%s (%s); roll them forward or back first, or "
              "rm --force\n",
              type, version, n, n == 1 ? "" : "s", who);
      return 2;
    }
  }
  char bref[200];
  snprintf(bref, sizeof bref, "plugin-%s@%s", type, version);
  Muster__V1__DeleteBundleRequest req = MUSTER__V1__DELETE_BUNDLE_REQUEST__INIT;
  req.ref = bref;
  ProtobufCMessage *reply = NULL;
  if (mu_cli_unary(opts, "/muster.v1.Admin/DeleteBundle", &req.base, &muster__v1__delete_bundle_response__descriptor,
                   &reply, &err) != 0) {
    fprintf(stderr, "muster plugin rm: %s\n", err.msg);
    return err.code == MU_EINVAL || err.code == MU_ENOENT ? 2 : 1;
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  if (!opts->json && !opts->quiet) printf("removed %s %s\n", type, version);
  return 0;
}
