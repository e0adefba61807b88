/* A registry v2 client on libcurl's easy interface, for the `muster-container` helper (a
 * process of its own under the agent's supervisor, so blocking here blocks no agent loop).
 *
 * - Manifests: Accept for OCI + Docker manifests and indexes; at most MU_MANIFEST_MAX_BYTES
 *   read; the body's sha256 must equal the digest asked for, and Docker-Content-Digest when
 *   the registry sends one.
 * - Blobs: streamed to "<dest>.partial" (flock'd: one writer per blob) while hashed; refused as soon as more bytes than the
 *   descriptor's size arrive; renamed to dest only when size and sha256 match. A partial file
 *   left by a dropped connection is resumed with Range (its bytes are hashed again first).
 * - Auth: on 401 the WWW-Authenticate challenge is answered once: Bearer (token from the
 *   realm, with Basic credentials when configured) or Basic. Credentials go through libcurl's
 *   auth options, which it never sends to another host after a redirect.
 * - Transport: https, with a CA file when given; http only when `insecure` (the caller allows
 *   that for loopback registries only). Protocols limited to http(s), redirects included. */
#ifndef MU_REGISTRY_H
#define MU_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"

typedef struct mu_registry_opts {
  const char *ca_file;             /* NULL: the system's CAs */
  bool insecure;                   /* plain http */
  const char *username, *password; /* NULL: anonymous */
  int64_t deadline_ms;             /* absolute, CLOCK_MONOTONIC ms; 0 = none */
  int64_t stall_ms;                /* abort a transfer with no byte for this long; 0 = 30000 */
  /* Called as bytes arrive (may be NULL). */
  void (*on_bytes)(void *arg, uint64_t n);
  void *arg;
} mu_registry_opts;

typedef struct mu_registry mu_registry;

int mu_registry_new(const mu_imgref *ref, const mu_registry_opts *opts, mu_registry **ret, mu_err *err);
void mu_registry_free(mu_registry *r);
/* libcurl's global init (implicit in the first request otherwise); call before threads. */
void mu_registry_global_init(void);
/* A copy (the token obtained so far included) for another thread; NULL when out of memory. */
mu_registry *mu_registry_clone(const mu_registry *r);
void mu_registry_set_progress(mu_registry *r, void (*on_bytes)(void *, uint64_t), void *arg);

/* GETs manifests/<reference> (a tag or a digest). On success *ret_body (malloc'd, caller
 * frees; NUL-terminated) holds len bytes, ctype the Content-Type and digest the body's
 * "sha256:<hex>". */
int mu_registry_get_manifest(mu_registry *r, const char *reference, char **ret_body, size_t *ret_len, char ctype[128],
                             char digest[72], mu_err *err);

/* GETs blobs/<d->digest> into dest (see above). MU_EIO names the digest on a mismatch. */
int mu_registry_get_blob(mu_registry *r, const mu_descriptor *d, const char *dest, mu_err *err);

/* Monotonic clock in ms, for deadlines. */
int64_t mu_registry_now_ms(void);

#endif
