/* `muster image build` (docs/images.md): builds an image from DIR/Musterfile on this host by
 * running the muster-image-build helper (plugins/container/build_main.c), which needs root for
 * RUN steps (namespaces, mounts). The CLI checks the arguments, finds the helper and execs it;
 * the helper prints the steps, RUN output and the image digest. Building on an agent
 * (--on) is not there yet and says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"

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
    "$MUSTER_IMAGE_BUILD, beside this binary, then on PATH.\n";

/* The helper: $MUSTER_IMAGE_BUILD, beside /proc/self/exe, the Bazel tree, then PATH. */
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
                         "/../lib/muster/muster-image-build"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
      snprintf(out, cap, "%s%s", self, rel[i]);
      if (access(out, X_OK) == 0) return;
    }
  }
  snprintf(out, cap, "muster-image-build");
}

int mu_cmd_image_build(const mu_cli_opts *opts, int argc, char **argv) {
  (void)opts;
  const char *dir = NULL, *tag = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(build_usage, stdout);
      return 0;
    }
    if (strcmp(a, "--on") == 0 || strncmp(a, "--on=", 5) == 0) {
      fprintf(stderr,
              "muster image build: --on (building on an agent) is not implemented yet; "
              "build on this host and --push, then run the image on the agents\n");
      return 2;
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
        return 2;
      }
      if (strcmp(a, "-t") == 0 || strcmp(a, "--tag") == 0) tag = argv[i + 1];
      if (strcmp(a, "--network") == 0 && strcmp(argv[i + 1], "none") != 0 && strcmp(argv[i + 1], "host") != 0) {
        fprintf(stderr, "muster image build: --network is none or host, not %s\n", argv[i + 1]);
        return 2;
      }
      i++;
    } else if (strcmp(a, "--push") == 0 || strcmp(a, "--no-cache") == 0 || strcmp(a, "--insecure") == 0) {
    } else if (a[0] == '-') {
      fprintf(stderr, "muster image build: unknown option %s (see --help)\n", a);
      return 2;
    } else if (dir == NULL) {
      dir = a;
    } else {
      fprintf(stderr, "muster image build: one build directory only (got %s and %s)\n", dir, a);
      return 2;
    }
  }
  if (dir == NULL || tag == NULL) {
    fputs(build_usage, stderr);
    return 2;
  }
  char helper[PATH_MAX];
  find_helper(helper, sizeof helper);
  char **args = calloc((size_t)argc + 1, sizeof *args);
  if (args == NULL) return 1;
  args[0] = "muster-image-build";
  for (int i = 1; i < argc; i++) args[i] = argv[i];
  fflush(stdout);
  if (strchr(helper, '/')) execv(helper, args);
  else execvp(helper, args);
  fprintf(stderr, "muster image build: cannot run %s: %s (set MUSTER_IMAGE_BUILD or install it beside muster)\n",
          helper, strerror(errno));
  free(args);
  return 1;
}
