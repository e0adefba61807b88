/* WWW-Authenticate parsing (see wwwauth.h). */
#include "plugins/container/wwwauth.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool is_ws(char c) { return c == ' ' || c == '\t'; }
static bool is_token(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int mu_challenge_parse(const char *value, size_t len, mu_challenge *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  size_t i = 0;
  while (i < len && is_ws(value[i])) i++;
  size_t s0 = i;
  while (i < len && is_token(value[i])) i++;
  size_t slen = i - s0;
  if (slen == 6 && strncasecmp(value + s0, "Bearer", 6) == 0) ret->scheme = MU_AUTH_BEARER;
  else if (slen == 5 && strncasecmp(value + s0, "Basic", 5) == 0) ret->scheme = MU_AUTH_BASIC;
  else if (slen == 0) return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: no scheme");
  else
    return mu_err_set(err, MU_ENOTSUP, "WWW-Authenticate: unsupported scheme \"%.*s\"", (int)(slen > 32 ? 32 : slen),
                      value + s0);
  while (i < len) {
    while (i < len && (is_ws(value[i]) || value[i] == ',')) i++;
    if (i >= len) break;
    size_t k0 = i;
    while (i < len && is_token(value[i])) i++;
    size_t klen = i - k0;
    while (i < len && is_ws(value[i])) i++;
    if (klen == 0 || i >= len || value[i] != '=')
      return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: malformed parameter");
    i++;
    while (i < len && is_ws(value[i])) i++;
    char val[1024];
    size_t vlen = 0;
    if (i < len && value[i] == '"') {
      i++;
      bool closed = false;
      while (i < len) {
        char c = value[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < len) c = value[i++];
        if (c == '\0' || c == '\r' || c == '\n')
          return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: control character in a value");
        if (vlen + 1 >= sizeof val)
          return mu_err_set(err, MU_ENOSPC, "WWW-Authenticate: value longer than %zu bytes", sizeof val - 1);
        val[vlen++] = c;
      }
      if (!closed) return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: unterminated quoted value");
    } else {
      while (i < len && is_token(value[i])) {
        if (vlen + 1 >= sizeof val) return mu_err_set(err, MU_ENOSPC, "WWW-Authenticate: value too long");
        val[vlen++] = value[i++];
      }
    }
    val[vlen] = '\0';
    char *dst = NULL;
    size_t cap = 0;
    if (klen == 5 && strncasecmp(value + k0, "realm", 5) == 0) dst = ret->realm, cap = sizeof ret->realm;
    else if (klen == 7 && strncasecmp(value + k0, "service", 7) == 0) dst = ret->service, cap = sizeof ret->service;
    else if (klen == 5 && strncasecmp(value + k0, "scope", 5) == 0) dst = ret->scope, cap = sizeof ret->scope;
    if (dst != NULL) {
      if (vlen >= cap)
        return mu_err_set(err, MU_ENOSPC, "WWW-Authenticate: %.*s longer than %zu bytes", (int)klen, value + k0,
                          cap - 1);
      memcpy(dst, val, vlen + 1);
    }
    while (i < len && is_ws(value[i])) i++;
    if (i < len && value[i] != ',') return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: junk after a parameter");
  }
  if (ret->scheme == MU_AUTH_BEARER) {
    if (ret->realm[0] == '\0') return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: Bearer challenge without a realm");
    if (strncmp(ret->realm, "http://", 7) != 0 && strncmp(ret->realm, "https://", 8) != 0)
      return mu_err_set(err, MU_EINVAL, "WWW-Authenticate: realm is not an http(s) URL");
  }
  return 0;
}
