/* Image references: "registry/repo[:tag][@sha256:hex]" parsed and checked against the
 * distribution grammar (docker/distribution reference/regexp.go).
 *
 * The first component is a registry when it holds a '.' or a ':' or is "localhost"; anything
 * else is a short name ("busybox", "library/busybox"), refused unless a default registry is
 * configured (then the name is looked up there; with "docker.io" a one-component name gets
 * the "library/" prefix, as Docker Hub expects). A reference with neither tag nor digest
 * means ":latest". A digest pins the image: the tag, if any, is only a label. */
#ifndef MU_IMAGEREF_H
#define MU_IMAGEREF_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"

#define MU_IMGREF_MAX 512      /* whole reference, bytes */
#define MU_IMGREF_NAME_MAX 255 /* registry + "/" + repository (distribution's bound) */
#define MU_IMGREF_TAG_MAX 128
#define MU_DIGEST_HEX 64

typedef struct mu_imgref {
  char registry[MU_IMGREF_NAME_MAX + 1];   /* "host[:port]" */
  char repository[MU_IMGREF_NAME_MAX + 1]; /* "path/name" */
  char tag[MU_IMGREF_TAG_MAX + 1];         /* "" when only a digest was given */
  char digest[8 + MU_DIGEST_HEX];          /* "sha256:<hex>" or "" */
} mu_imgref;

/* Parses text. default_registry (NULL or "" = none) resolves short names. MU_EINVAL with a
 * message naming the bad part. */
int mu_imgref_parse(const char *text, const char *default_registry, mu_imgref *ret, mu_err *err);

/* "registry/repository:tag@digest" (the parts present) into buf; returns snprintf's count. */
int mu_imgref_format(const mu_imgref *ref, char *buf, size_t cap);

/* The reference to ask the registry for: the digest when there is one, else the tag. */
const char *mu_imgref_reference(const mu_imgref *ref);

/* True when s is "sha256:" followed by exactly 64 lowercase hex digits. */
bool mu_digest_valid(const char *s);

/* True when host (a registry "host[:port]") names the loopback: localhost, 127.x.y.z, [::1]. */
bool mu_registry_is_loopback(const char *registry);

#endif
