/* `muster image build` (docs/images.md): builds an image from DIR/Musterfile.
 *
 * Here (default): checks the arguments, finds the muster-image-build helper
 * (plugins/container/build_main.c; it needs root for RUN steps) and execs it; the helper
 * prints the steps, RUN output and the image digest.
 * On an agent (--on SEL): DIR is packed into a bundle "build-<user>-<ms>"@1.0.0, signed with
 * --sign-key (or $MUSTER_SIGNING_KEY), pushed, and built by a one-task job on one agent that
 * SEL matches (a selector: any one of them; else an agent id), which runs the helper from the
 * verified, unpacked bundle; the job's output and exit code are the build's. The bundle is
 * removed from the control plane when the job ends (as `muster cp` does). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/temp_bundle.h"
#include "cli/watch.h"
#include "lib/base/clock.h"
#include "lib/bundle/bundle.h"
#include "lib/bundle/keys.h"
#include "lib/bundle/pack.h"
#include "lib/bundle/verify.h"

#define MU_BUILD_MAX_CONTEXT_BUNDLE (1ull << 30)

static const char build_usage[] =
    "usage: muster image build DIR -t REGISTRY/REPO:TAG [--push] [--network none|host]\n"
    "                          [--build-arg K=V]... [--oci-archive FILE] [-f MUSTERFILE]\n"
    "                          [--store DIR] [--no-cache] [--insecure] [--auth-env VAR]\n"
    "                          [--base-layout DIR] [--epoch N] [--max-context-bytes N]\n"
    "                          [--max-layer-bytes N] [--step-timeout-ms N]\n"
    "\n"
    "Builds an OCI image from DIR/Musterfile (a subset of the Dockerfile syntax: FROM, COPY,\n"
    "ADD of local files, RUN, ENV, ARG, WORKDIR, USER, ENTRYPOINT, CMD, LABEL, EXPOSE) on this\n"
    "host, daemonless: each RUN runs in muster's container runtime (network none unless\n"
    "--network host), each COPY/ADD/RUN becomes a reproducible layer, unchanged steps come from\n"
    "the layer cache. The image goes into the image store (--store, default\n"
    "$MUSTER_IMAGE_STORE or /var/lib/muster/images) under the tag; --push sends it to the\n"
    "tag's registry, --oci-archive writes an OCI layout tar. --insecure allows plain http to\n"
    "loopback registries; --auth-env VAR names an environment variable holding user:password.\n"
    "Mtimes and created times are --epoch (default $SOURCE_DATE_EPOCH, else 0). Needs root\n"
    "(RUN uses namespaces and mounts). The helper muster-image-build is looked up in\n"
    "$MUSTER_IMAGE_BUILD, beside this binary, then on PATH.\n"
    "\n"
    "--on SEL [--sign-key KEY] [--builder PATH] [--timeout DUR] builds on one agent instead:\n"
    "DIR goes there as a bundle signed with --sign-key (default $MUSTER_SIGNING_KEY), and a\n"
    "job on one agent matching SEL (a label selector, or an agent id) runs the helper (--builder:\n"
    "its path on the agent; default muster-image-build on the task's PATH) with the other\n"
    "options; --store is then the agent's store. The job's output and exit code are the build's.\n";

/* The helper: $MUSTER_IMAGE_BUILD, beside /proc/self/exe, the Bazel tree, the installed
 * PREFIX/libexec/muster (scripts/install), then PATH. */
static void find_helper(char *out, size_t cap) {
  const char *env = getenv("MUSTER_IMAGE_BUILD");
  if (env && *env) {
    snprintf(out, cap, "%s", env);
    return;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    const char *rel[] = {"/muster-image-build", "/../plugins/container/muster-image-build",
                         "/../libexec/muster/muster-image-build"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
      snprintf(out, cap, "%s%s", self, rel[i]);
      if (access(out, X_OK) == 0) return;
    }
  }
  snprintf(out, cap, "muster-image-build");
}

/* The job's script: the helper from --builder (MUSTER_IMAGE_BUILD) or PATH, in the unpacked
 * bundle (the task's working directory), the build options after it. */
static const char remote_script[] = "exec \"${MUSTER_IMAGE_BUILD:-muster-image-build}\" \"$@\" .\n";

/* The temporary directory pack_context made: the bundle file, then the directory. */
static void remove_work(const char *work) {
  char bundle[PATH_MAX];
  snprintf(bundle, sizeof bundle, "%s/context.bundle", work);
  unlink(bundle);
  rmdir(work);
}

/* Packs dir as name@1.0.0 into work/context.bundle, signed when sign_key is set. */
static int pack_context(const char *dir, const char *work, const char *name, const char *sign_key, uint8_t **ret_data,
                        size_t *ret_len, char **ret_sig, mu_err *err) {
  char out[PATH_MAX], digest[MU_BUNDLE_DIGEST_SIZE];
  snprintf(out, sizeof out, "%s/context.bundle", work);
  mu_pack_opts po = {.name = name, .version = "1.0.0", .created_at = mu_now_ms() / 1000};
  int rc = mu_bundle_pack(dir, &po, out, digest, err);
  if (rc == 0) rc = mu_bundle_read_file(out, MU_BUILD_MAX_CONTEXT_BUNDLE, ret_data, ret_len, err);
  if (rc != 0 || sign_key == NULL) return rc;
  mu_seckey sk;
  rc = mu_seckey_load_file(sign_key, &sk, err);
  if (rc != 0) return rc;
  rc = mu_bundle_sign(*ret_data, *ret_len, &sk, NULL, ret_sig, err);
  mu_seckey_wipe(&sk);
  return rc;
}

/* --on: the build as a one-task job on one agent (see the top of the file). build_args are
 * the options for the helper (DIR, --on, --sign-key, --builder and --timeout taken out). */
/* --network host on an agent: RUN steps share the agent's network, which the cluster's image
 * admission policy may forbid (allow_host_network, docs/images.md): asked of the control plane
 * (ImagePolicies/TestImagePolicy) before anything is sent. 0 when allowed, else an exit code. */
static int host_network_allowed(const mu_cli_opts *opts, const char *tag) {
  Muster__V1__ImageFacts f = MUSTER__V1__IMAGE_FACTS__INIT;
  char registry[256] = "", repository[512] = "";
  const char *slash = strchr(tag, '/');
  if (slash != NULL) {
    snprintf(registry, sizeof registry, "%.*s", (int)(slash - tag), tag);
    snprintf(repository, sizeof repository, "%.*s", (int)strcspn(slash + 1, ":@"), slash + 1);
  }
  f.registry = registry;
  f.repository = repository;
  f.network = "host";
  f.signature = "not_checked";
  Muster__V1__TestImagePolicyRequest req = MUSTER__V1__TEST_IMAGE_POLICY_REQUEST__INIT;
  req.facts = &f;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.ImagePolicies/TestImagePolicy", &req.base,
                   &muster__v1__test_image_policy_response__descriptor, &reply, &err) != 0) {
    fprintf(stderr, "muster image build: --network host: the cluster image policy could not be read: %s\n", err.msg);
    return 1;
  }
  const Muster__V1__TestImagePolicyResponse *r = (const Muster__V1__TestImagePolicyResponse *)reply;
  int status = 0;
  for (size_t i = 0; i < r->n_violations; i++)
    if (strcmp(r->violations[i]->rule, "allow_host_network") == 0) {
      fprintf(stderr,
              "muster image build: --network host: refused by the cluster image policy %s (allow_host_network is "
              "false)\n",
              r->policy_sha256);
      status = 2;
    }
  protobuf_c_message_free_unpacked(reply, NULL);
  return status;
}

static int build_on_agent(const mu_cli_opts *opts, const char *dir, const char *on, const char *sign_key,
                          const char *builder, const char *timeout, char **build_args, size_t n_build_args) {
  char work[] = "/tmp/muster-build-XXXXXX";
  if (mkdtemp(work) == NULL) {
    fprintf(stderr, "muster image build: a temporary directory: %s\n", strerror(errno));
    return 1;
  }
  char name[96], ref[128];
  mu_cli_temp_bundle_name("build", name, sizeof name, ref, sizeof ref);
  uint8_t *data = NULL;
  size_t len = 0;
  char *sig = NULL;
  char **command = NULL;
  mu_err err = {0};
  int status = 2;
  Muster__V1__BundleInfo *bi = NULL;
  if (pack_context(dir, work, name, sign_key, &data, &len, &sig, &err) != 0) {
    fprintf(stderr, "muster image build: build context %s: %s\n", dir, err.msg);
    goto out;
  }
  if (mu_cli_bundle_upload(opts, data, len, (const uint8_t *)sig, sig ? strlen(sig) : 0, ref, !opts->json, &bi, &status,
                           &err) != 0) {
    fprintf(stderr, "muster image build: %s%s\n", err.msg,
            sig == NULL ? " (unsigned: pass --sign-key or set MUSTER_SIGNING_KEY)" : "");
    goto out;
  }
  protobuf_c_message_free_unpacked(&bi->base, NULL);
  command = calloc(n_build_args + 4, sizeof *command);
  if (command == NULL) {
    status = 1;
    goto out;
  }
  size_t n = 0;
  command[n++] = "sh";
  command[n++] = "-c";
  command[n++] = (char *)remote_script;
  command[n++] = "muster-image-build";
  for (size_t i = 0; i < n_build_args; i++) command[n++] = build_args[i];
  Muster__V1__RunAdhocRequest req = MUSTER__V1__RUN_ADHOC_REQUEST__INIT;
  Muster__V1__Target target = MUSTER__V1__TARGET__INIT;
  Muster__V1__Rollout rollout = MUSTER__V1__ROLLOUT__INIT;
  char *host[] = {(char *)on};
  if (strpbrk(on, "=!,") != NULL) target.any = (char *)on; /* a selector: any one agent of it */
  else {
    target.hosts = host;
    target.n_hosts = 1;
  }
  req.target = &target;
  req.rollout = &rollout;
  req.command = command;
  req.n_command = n;
  req.bundle = ref;
  if (timeout != NULL) req.timeout = (char *)timeout;
  Muster__V1__RunAdhocRequest__EnvEntry env_entry = MUSTER__V1__RUN_ADHOC_REQUEST__ENV_ENTRY__INIT;
  Muster__V1__RunAdhocRequest__EnvEntry *envs[] = {&env_entry};
  if (builder != NULL) {
    env_entry.key = "MUSTER_IMAGE_BUILD";
    env_entry.value = (char *)builder;
    req.env = envs;
    req.n_env = 1;
  }
  mu_watch_opts w = {.quiet = opts->quiet};
  status = mu_cli_submit_and_watch(opts, "/muster.v1.Admin/RunAdhoc", &req.base, &w, 0, 1, NULL);
  mu_cli_temp_bundle_delete(opts, "muster image build", ref);
out:
  free(command);
  free(data);
  free(sig);
  remove_work(work);
  return status;
}

int mu_cmd_image_build(const mu_cli_opts *opts, int argc, char **argv) {
  const char *dir = NULL, *tag = NULL, *on = NULL, *builder = NULL, *timeout = NULL;
  const char *sign_key = getenv("MUSTER_SIGNING_KEY");
  if (sign_key != NULL && *sign_key == '\0') sign_key = NULL;
  char **helper_args = calloc((size_t)argc + 1, sizeof *helper_args); /* the options the helper gets */
  size_t n_helper = 0;
  if (helper_args == NULL) return 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(build_usage, stdout);
      free(helper_args);
      return 0;
    }
    const char **own = strcmp(a, "--on") == 0         ? &on
                       : strcmp(a, "--sign-key") == 0 ? &sign_key
                       : strcmp(a, "--builder") == 0  ? &builder
                       : strcmp(a, "--timeout") == 0  ? &timeout
                                                      : NULL;
    if (own != NULL) { /* options of the remote build itself, not the helper's */
      if (i + 1 >= argc) {
        fprintf(stderr, "muster image build: %s needs a value\n", a);
        free(helper_args);
        return 2;
      }
      *own = argv[++i];
      continue;
    }
    bool takes_value = strcmp(a, "-t") == 0 || strcmp(a, "--tag") == 0 || strcmp(a, "-f") == 0 ||
                       strcmp(a, "--file") == 0 || strcmp(a, "--store") == 0 || strcmp(a, "--build-arg") == 0 ||
                       strcmp(a, "--network") == 0 || strcmp(a, "--oci-archive") == 0 || strcmp(a, "--auth-env") == 0 ||
                       strcmp(a, "--base-layout") == 0 || strcmp(a, "--epoch") == 0 ||
                       strcmp(a, "--max-context-bytes") == 0 || strcmp(a, "--max-layer-bytes") == 0 ||
                       strcmp(a, "--step-timeout-ms") == 0;
    if (takes_value) {
      if (i + 1 >= argc) {
        fprintf(stderr, "muster image build: %s needs a value\n", a);
        free(helper_args);
        return 2;
      }
      if (strcmp(a, "-t") == 0 || strcmp(a, "--tag") == 0) tag = argv[i + 1];
      if (strcmp(a, "--network") == 0 && strcmp(argv[i + 1], "none") != 0 && strcmp(argv[i + 1], "host") != 0) {
        fprintf(stderr, "muster image build: --network is none or host, not %s\n", argv[i + 1]);
        free(helper_args);
        return 2;
      }
      helper_args[n_helper++] = argv[i++];
      helper_args[n_helper++] = argv[i];
    } else if (strcmp(a, "--push") == 0 || strcmp(a, "--no-cache") == 0 || strcmp(a, "--insecure") == 0) {
      helper_args[n_helper++] = argv[i];
    } else if (a[0] == '-') {
      fprintf(stderr, "muster image build: unknown option %s (see --help)\n", a);
      free(helper_args);
      return 2;
    } else if (dir == NULL) {
      dir = a;
    } else {
      fprintf(stderr, "muster image build: one build directory only (got %s and %s)\n", dir, a);
      free(helper_args);
      return 2;
    }
  }
  if (dir == NULL || tag == NULL) {
    fputs(build_usage, stderr);
    free(helper_args);
    return 2;
  }
  if (on != NULL) {
    /* -f names a file of DIR: the agent sees it relative to the unpacked context */
    for (size_t i = 0; i + 1 < n_helper; i++) {
      if (strcmp(helper_args[i], "-f") != 0 && strcmp(helper_args[i], "--file") != 0) continue;
      size_t dl = strlen(dir);
      while (dl > 1 && dir[dl - 1] == '/') dl--;
      const char *f = helper_args[i + 1];
      if (strncmp(f, dir, dl) != 0 || f[dl] != '/' || strstr(f + dl, "/../") != NULL) {
        fprintf(stderr, "muster image build: with --on, -f must name a file inside %s (the context sent)\n", dir);
        free(helper_args);
        return 2;
      }
      helper_args[i + 1] = (char *)f + dl + 1;
    }
    int st = 0;
    for (size_t i = 0; i + 1 < n_helper && st == 0; i++)
      if (strcmp(helper_args[i], "--network") == 0 && strcmp(helper_args[i + 1], "host") == 0)
        st = host_network_allowed(opts, tag);
    if (st == 0) st = build_on_agent(opts, dir, on, sign_key, builder, timeout, helper_args, n_helper);
    free(helper_args);
    return st;
  }
  if (builder != NULL || timeout != NULL) {
    fprintf(stderr, "muster image build: --builder and --timeout go with --on\n");
    free(helper_args);
    return 2;
  }
  char helper[PATH_MAX];
  find_helper(helper, sizeof helper);
  char **args = calloc(n_helper + 3, sizeof *args);
  if (args == NULL) {
    free(helper_args);
    return 1;
  }
  args[0] = "muster-image-build";
  for (size_t i = 0; i < n_helper; i++) args[i + 1] = helper_args[i];
  args[n_helper + 1] = (char *)dir;
  free(helper_args);
  fflush(stdout);
  if (strchr(helper, '/')) execv(helper, args);
  else execvp(helper, args);
  fprintf(stderr, "muster image build: cannot run %s: %s (set MUSTER_IMAGE_BUILD or install it beside muster)\n",
          helper, strerror(errno));
  free(args);
  return 1;
}
