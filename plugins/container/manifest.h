/* Image manifests, indexes and configs (OCI image-spec and Docker v2 schema 2), parsed from
 * registry bytes with jansson: media types, descriptors checked (digest grammar, size),
 * platform selection from an index, and the runtime part of the image config. */
#ifndef MU_MANIFEST_H
#define MU_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MU_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MU_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MU_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
/* The Accept header a pull sends for manifests (every kind we can read). */
#define MU_MANIFEST_ACCEPT MU_MT_OCI_INDEX ", " MU_MT_OCI_MANIFEST ", " MU_MT_DOCKER_LIST ", " MU_MT_DOCKER_MANIFEST

#define MU_MANIFEST_MAX_LAYERS 128
#define MU_MANIFEST_MAX_BYTES (4u << 20) /* manifests, indexes and configs */

typedef enum { MU_LAYER_TAR = 0, MU_LAYER_GZIP, MU_LAYER_ZSTD } mu_layer_compression;

typedef struct mu_descriptor {
  char media_type[128];
  char digest[72];
  int64_t size;
} mu_descriptor;

typedef enum { MU_DOC_MANIFEST = 1, MU_DOC_INDEX = 2 } mu_doc_kind;

typedef struct mu_manifest {
  mu_descriptor config;
  mu_descriptor layers[MU_MANIFEST_MAX_LAYERS];
  mu_layer_compression compression[MU_MANIFEST_MAX_LAYERS];
  size_t n_layers;
} mu_manifest;

typedef struct mu_platform {
  char os[32], arch[32], variant[32];
} mu_platform;

/* The platform of this build (linux + GOARCH name of the machine, variant for arm). */
void mu_platform_host(mu_platform *ret);

/* "sha256:<64 hex>" of a 32-byte sha256 into out. */
void mu_sha256_format(const unsigned char h[32], char out[72]);
/* "os/arch[/variant]" into ret; MU_EINVAL when malformed. */
int mu_platform_parse(const char *text, mu_platform *ret, mu_err *err);

/* What kind of document: from the Content-Type (when given and known), else the body's
 * "mediaType", else its shape ("manifests" array = index). MU_ENOTSUP for an unknown type. */
int mu_doc_kind_of(const char *content_type, const char *body, size_t len, mu_doc_kind *ret, mu_err *err);

/* Parses an image manifest. Layer media types must be tar, tar+gzip or tar+zstd (OCI or
 * Docker spellings, non-distributable variants included); anything else is MU_ENOTSUP. */
int mu_image_manifest_parse(const char *body, size_t len, mu_manifest *ret, mu_err *err);

/* Picks the first manifest of an index that matches want (os, arch, then variant when want
 * has one; an index entry without variant matches any). MU_ENOENT names the platforms seen. */
int mu_index_select(const char *body, size_t len, const mu_platform *want, mu_descriptor *ret, mu_err *err);

/* From an OCI layout's index.json: the entry whose org.opencontainers.image.ref.name
 * annotation is tag (tag "" or NULL: the only entry). MU_ENOENT lists the names there are. */
int mu_layout_select(const char *body, size_t len, const char *tag, mu_descriptor *ret, mu_err *err);

/* The runtime part of an image config. Arrays are NULL-terminated, strings owned by it. */
typedef struct mu_image_config {
  char **entrypoint, **cmd, **env;
  char *working_dir, *user, *stop_signal;
  char os[32], arch[32];
  size_t n_diff_ids;
  char (*diff_ids)[72];
} mu_image_config;

int mu_image_config_parse(const char *body, size_t len, mu_image_config *ret, mu_err *err);
void mu_image_config_free(mu_image_config *c);

#endif
