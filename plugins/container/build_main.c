/* muster-image-build: the helper `muster image build` runs (needs root: RUN steps use the
 * container launcher's namespaces and mounts, layers are unpacked with owners).
 *
 *   muster-image-build [options] CONTEXT
 *     -t REF                 REGISTRY/REPO:TAG the image is tagged with (store, push, archive)
 *     -f FILE                the Musterfile (default CONTEXT/Musterfile, else CONTEXT/Dockerfile)
 *     --store DIR            the image store (default $MUSTER_IMAGE_STORE or /var/lib/muster/images)
 *     --build-arg K=V        (repeatable)
 *     --network none|host    RUN's network (default none)
 *     --no-cache             run every step again
 *     --insecure             plain http to loopback registries (FROM and --push)
 *     --auth-env VAR         registry credentials "user:password" from the environment VAR
 *     --base-layout DIR      FROM read from an OCI layout directory instead of the registry
 *     --push                 push the image to REF's registry
 *     --oci-archive FILE     also write the image as an OCI layout tar
 *     --epoch N              mtimes and created times (default $SOURCE_DATE_EPOCH, else 0)
 *     --max-context-bytes N  --max-layer-bytes N  --step-timeout-ms N   bounds (build.h)
 * Prints the steps, RUN output and, last, "image sha256:..." on stdout. Exit 0, 1 when the
 * build failed (the message names the Musterfile line), 2 on bad usage. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/container/build.h"
#include "plugins/container/imageref.h"
#include "plugins/container/oci_archive.h"
#include "plugins/container/registry_push.h"

static int usage(void) {
  fprintf(stderr,
          "usage: muster-image-build [-t REF] [-f FILE] [--store DIR] [--build-arg K=V]... [--network none|host]\n"
          "       [--no-cache] [--insecure] [--auth-env VAR] [--base-layout DIR] [--push] [--oci-archive FILE]\n"
          "       [--epoch N] [--max-context-bytes N] [--max-layer-bytes N] [--step-timeout-ms N] CONTEXT\n");
  return 2;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  mu_build_opts o = {.store = getenv("MUSTER_IMAGE_STORE")};
  if (o.store == NULL || *o.store == '\0') o.store = "/var/lib/muster/images";
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  if (sde && *sde) o.epoch = atoll(sde);
  const char **bargs = calloc((size_t)argc + 1, sizeof *bargs);
  size_t nb = 0;
  bool push = false;
  const char *archive = NULL, *context = NULL, *auth_env = NULL;
  if (bargs == NULL) return 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--push") == 0) push = true;
    else if (strcmp(a, "--no-cache") == 0) o.no_cache = true;
    else if (strcmp(a, "--insecure") == 0) o.registry.insecure = true;
    else if (a[0] == '-' && v == NULL) return usage();
    else if (strcmp(a, "-t") == 0 || strcmp(a, "--tag") == 0) o.tag = argv[++i];
    else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) o.musterfile = argv[++i];
    else if (strcmp(a, "--store") == 0) o.store = argv[++i];
    else if (strcmp(a, "--build-arg") == 0) bargs[nb++] = argv[++i];
    else if (strcmp(a, "--network") == 0) {
      const char *n = argv[++i];
      if (strcmp(n, "host") == 0) o.host_network = true;
      else if (strcmp(n, "none") != 0) {
        fprintf(stderr, "muster-image-build: --network is none or host, not %s\n", n);
        return 2;
      }
    } else if (strcmp(a, "--auth-env") == 0) auth_env = argv[++i];
    else if (strcmp(a, "--base-layout") == 0) o.base_layout = argv[++i];
    else if (strcmp(a, "--oci-archive") == 0) archive = argv[++i];
    else if (strcmp(a, "--epoch") == 0) o.epoch = atoll(argv[++i]);
    else if (strcmp(a, "--max-context-bytes") == 0) o.max_context_bytes = strtoull(argv[++i], NULL, 10);
    else if (strcmp(a, "--max-layer-bytes") == 0) o.max_layer_bytes = strtoull(argv[++i], NULL, 10);
    else if (strcmp(a, "--step-timeout-ms") == 0) o.step_timeout_ms = atoll(argv[++i]);
    else if (a[0] == '-') {
      fprintf(stderr, "muster-image-build: unknown option %s\n", a);
      return usage();
    } else if (context == NULL) context = a;
    else return usage();
  }
  if (context == NULL) return usage();
  if ((push || archive) && o.tag == NULL) {
    fprintf(stderr, "muster-image-build: --push and --oci-archive need -t REGISTRY/REPO:TAG\n");
    return 2;
  }
  o.context = context;
  o.build_args = bargs;
  mu_err err = {0};
  mu_imgref ref;
  if (o.tag && mu_imgref_parse(o.tag, NULL, &ref, &err) != 0) {
    fprintf(stderr, "muster-image-build: -t %s: %s\n", o.tag, err.msg);
    return 2;
  }
  char cred[1024] = "";
  if (auth_env) {
    const char *c = getenv(auth_env);
    char *colon = NULL;
    snprintf(cred, sizeof cred, "%s", c ? c : "");
    colon = strchr(cred, ':');
    if (colon == NULL) {
      fprintf(stderr, "muster-image-build: $%s must hold user:password\n", auth_env);
      return 2;
    }
    *colon = '\0';
    o.registry.username = cred;
    o.registry.password = colon + 1;
  }
  mu_build_result res;
  int rc = mu_image_build(&o, &res, &err);
  if (rc != 0) {
    fprintf(stderr, "muster-image-build: %s\nno image was produced\n", err.msg);
    free(bargs);
    return 1;
  }
  if (archive) {
    rc = mu_oci_archive_write(o.store, res.manifest_digest, ref.tag, o.epoch, archive, &err);
    if (rc != 0) {
      fprintf(stderr, "muster-image-build: %s\n", err.msg);
      free(bargs);
      return 1;
    }
    printf("wrote %s\n", archive);
  }
  if (push) {
    if (o.registry.insecure && !mu_registry_is_loopback(ref.registry)) {
      fprintf(stderr, "muster-image-build: plain http is allowed for loopback registries only, not %s\n", ref.registry);
      free(bargs);
      return 2;
    }
    mu_push_result pr;
    mu_imgref base;
    const char *mount_from = NULL; /* the base's repository, when it is on the same registry */
    if (res.base_ref[0] && mu_imgref_parse(res.base_ref, NULL, &base, &err) == 0 &&
        strcmp(base.registry, ref.registry) == 0)
      mount_from = base.repository;
    rc = mu_registry_push(o.store, res.manifest_digest, &ref, mount_from, &o.registry, &pr, &err);
    if (rc != 0) {
      fprintf(stderr, "muster-image-build: push %s: %s\n", o.tag, err.msg);
      free(bargs);
      return 1;
    }
    printf("pushed %s@%s (%d blobs uploaded, %llu bytes; %d already there, %d mounted from %s)\n", o.tag,
           res.manifest_digest, pr.blobs_uploaded, (unsigned long long)pr.bytes_uploaded, pr.blobs_present,
           pr.blobs_mounted, mount_from ? mount_from : "-");
  }
  explicit_bzero(cred, sizeof cred);
  printf("image %s\n", res.manifest_digest);
  free(bargs);
  return 0;
}
