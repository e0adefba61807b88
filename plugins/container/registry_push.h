/* Pushing an image from the store to a registry v2 (`muster image build --push`): every blob
 * (layers, config) is first checked with HEAD and uploaded only when missing (a cross-repo
 * mount from the base image's repository when possible, else POST an upload, then a
 * monolithic PUT ...?digest=), then the manifest is PUT under the tag and the
 * registry's Docker-Content-Digest checked against ours.
 * Auth: on 401 the WWW-Authenticate challenge is answered once per push: Bearer (a token for
 * "repository:REPO:pull,push" from the realm, with Basic credentials when given) or Basic.
 * Transport as registry.h: https, http only when insecure (callers allow that for loopback).
 * Kept apart from registry.c (the pull client) for now; a shared request layer is a merge
 * away (the signing helper adds uploads too). */
#ifndef MU_REGISTRY_PUSH_H
#define MU_REGISTRY_PUSH_H

#include <stdint.h>

#include "lib/base/err.h"
#include "plugins/container/imageref.h"
#include "plugins/container/registry.h"

typedef struct mu_push_result {
  int blobs_uploaded, blobs_present, blobs_mounted;
  uint64_t bytes_uploaded;
} mu_push_result;

/* Pushes the image whose manifest is manifest_digest in the store at root to ref (its
 * registry, repository and tag). mount_from (NULL: none) names another repository of the same
 * registry (the base image's): a missing blob is first asked for as a cross-repository mount
 * from there (`POST .../uploads/?mount=DIGEST&from=REPO`, 201 = mounted, nothing sent), else
 * uploaded. Only a repository name from the grammar of imageref.h may be given. MU_EPERM for refused credentials, MU_EIO otherwise, with
 * the URL and the registry's answer in err. */
int mu_registry_push(const char *root, const char *manifest_digest, const mu_imgref *ref, const char *mount_from,
                     const mu_registry_opts *opts, mu_push_result *ret, mu_err *err);

#endif
