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

/* ---- any request: the writes (registry_write.h) and lookups build on this ---- */

typedef struct mu_registry_req {
  const char *method;         /* "GET", "HEAD", "POST", "PUT", "PATCH" */
  const char *path;           /* "/v2/..." on the registry, or a Location it gave (absolute URLs
                                * must be on the registry's own scheme://host:port: refused
                                * otherwise, so credentials never go elsewhere) */
  const char *const *headers; /* NULL-terminated "Name: value" lines; may be NULL */
  const void *body;           /* PUT/POST/PATCH body (borrowed) */
  size_t body_len;
  size_t max_response; /* bytes of a 2xx body kept at most; 0 = 64 KiB (over: MU_ENOSPC) */
} mu_registry_req;

typedef struct mu_registry_resp {
  long status;
  char *body; /* a 2xx body (NUL-terminated) or NULL; mu_registry_resp_free */
  size_t len;
  int64_t content_length; /* -1 when not sent */
  char ctype[128];
  char digest[80]; /* Docker-Content-Digest, "" when not sent */
  char location[2048];
  char errbody[512]; /* the start of a >= 300 answer's body, to quote */
} mu_registry_resp;

/* Sends one request; a 401 is answered (a token for the challenge's scopes, or Basic) and the
 * request sent once more. Any HTTP status is a success here: the caller judges ret->status
 * (mu_registry_status_error words a bad one). Transport failures, a refused Location or an
 * over-long answer are errors. ret is filled even on error (free it with
 * mu_registry_resp_free). */
int mu_registry_request(mu_registry *r, const mu_registry_req *q, mu_registry_resp *ret, mu_err *err);
void mu_registry_resp_free(mu_registry_resp *resp);
/* "registry HOST: WHAT: HTTP 401 (credentials refused): <body>"; MU_EPERM for 401/403,
 * MU_ENOENT for 404, else MU_EIO. */
int mu_registry_status_error(mu_registry *r, const char *what, long status, const char *body, mu_err *err);
/* The reference the client was made for. */
const mu_imgref *mu_registry_ref(const mu_registry *r);

/* Monotonic clock in ms, for deadlines. */
int64_t mu_registry_now_ms(void);

#endif
