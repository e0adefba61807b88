/* `muster image build`: a Musterfile (musterfile.h) built into an OCI image in the image
 * store (image.h), daemonless.
 *
 * FROM is pulled with the registry client into the store (or read from an OCI layout).
 * Each COPY, ADD, RUN (and a WORKDIR that has to create its directory) makes one layer
 * (layer_writer.h): COPY/ADD from the context (build_copy.h), RUN from the overlay diff of
 * the command run in the container runtime (build_run.h). The other instructions change the
 * image config only. The result: an OCI config (history, Env, Entrypoint, Cmd, User,
 * WorkingDir, Labels, ExposedPorts, rootfs.diff_ids), an OCI manifest, and the tag's ref, all
 * in the store; the rootfs the build made is kept as the image's unpacked rootfs.
 *
 * Layer cache: <store>/build-cache/<key>, key = sha256 of the previous step's key (the first:
 * the base manifest digest), the instruction as written and after substitution, and its
 * inputs (COPY: the content hash of its sources; RUN: Env, ARGs, User, WorkingDir, network).
 * A step whose key is there (and whose layer blob is in the store) is not run again; a fully
 * cached build never unpacks a rootfs. The same Musterfile, context and base give the same
 * manifest digest (reproducible layers, fixed times). */
#ifndef MU_BUILD_H
#define MU_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/base/err.h"
#include "plugins/container/registry.h"

typedef struct mu_build_opts {
  const char *store;             /* the image store root */
  const char *context;           /* the build context directory */
  const char *musterfile;        /* NULL: <context>/Musterfile, else <context>/Dockerfile */
  const char *tag;               /* REGISTRY/REPO:TAG the image is recorded under */
  const char *const *build_args; /* NULL-terminated K=V; may be NULL */
  const char *base_layout;       /* FROM read from this OCI layout dir (its FROM tag); NULL = registry */
  bool host_network;             /* RUN with the host's network (else none) */
  bool no_cache;
  int64_t epoch;              /* every mtime and created time (SOURCE_DATE_EPOCH); 0 = 1970 */
  uint64_t max_context_bytes; /* per COPY/ADD; 0 = 1 GiB */
  uint64_t max_layer_bytes;   /* per layer; 0 = 4 GiB */
  int64_t step_timeout_ms;    /* per RUN; 0 = 30 minutes */
  mu_registry_opts registry;  /* for FROM (insecure: loopback registries only) */
  FILE *log;                  /* steps and RUN output; NULL = stdout */
} mu_build_opts;

typedef struct mu_build_result {
  char manifest_digest[72];
  char config_digest[72];
  int steps;                        /* instructions after FROM */
  int layer_steps;                  /* of them, steps that make a layer (or could: COPY, ADD, RUN, WORKDIR) */
  int cached;                       /* of those, taken from the cache */
  int new_layers;                   /* layers this build made */
  char base_ref[MU_IMGREF_MAX + 1]; /* FROM as given (after substitution); "" from a layout */
} mu_build_result;

/* Builds. On any failure nothing is tagged and no manifest is written; err says which
 * Musterfile line and why (a failing RUN: its exit and the end of its output). */
int mu_image_build(const mu_build_opts *o, mu_build_result *ret, mu_err *err);

#endif
