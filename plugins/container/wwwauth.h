/* WWW-Authenticate challenges from a registry (RFC 7235 auth-params, as distribution sends
 * them): `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"`
 * or `Basic realm="..."`. */
#ifndef MU_WWWAUTH_H
#define MU_WWWAUTH_H

#include <stddef.h>

#include "lib/base/err.h"

typedef enum { MU_AUTH_NONE = 0, MU_AUTH_BASIC, MU_AUTH_BEARER } mu_auth_scheme;

typedef struct mu_challenge {
  mu_auth_scheme scheme;
  char realm[1024];
  char service[256];
  char scope[512];
} mu_challenge;

/* Parses one header value (without "WWW-Authenticate:"). Unknown params are ignored, a
 * Bearer challenge needs a realm. MU_EINVAL on anything malformed, MU_ENOTSUP for another
 * scheme. */
int mu_challenge_parse(const char *value, size_t len, mu_challenge *ret, mu_err *err);

#endif
