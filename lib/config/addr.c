/* HOST:PORT and endpoint URL validation for config files and flags, with messages that say
 * which part is wrong. No DNS: a host name is checked for shape only. */
#include "lib/config/addr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECT "expected HOST:PORT, e.g. \"10.0.0.5:7400\" or \"[::1]:7400\""

static int host_check(const char *host, size_t len, int bracketed) {
  if (len == 0 || len > MU_HOST_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)host[i];
    if (bracketed) {
      if (!isxdigit(c) && c != ':' && c != '.') return 0;
    } else if (!isalnum(c) && c != '.' && c != '-' && c != '_') {
      return 0;
    }
  }
  return 1;
}

int mu_hostport_parse(const char *text, char *ret_host, size_t host_size, uint16_t *ret_port, mu_err *err) {
  const char *host = text;
  size_t host_len;
  const char *port;
  int bracketed = 0;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':') return mu_err_set(err, MU_EINVAL, "bad address \"%s\" (%s)", text, EXPECT);
    host = text + 1;
    host_len = (size_t)(close - host);
    port = close + 2;
    bracketed = 1;
  } else {
    const char *colon = strrchr(text, ':');
    if (colon == NULL) return mu_err_set(err, MU_EINVAL, "bad address \"%s\": no port (%s)", text, EXPECT);
    if (memchr(text, ':', (size_t)(colon - text)) != NULL)
      return mu_err_set(err, MU_EINVAL, "bad address \"%s\": an IPv6 host must be in brackets (%s)", text, EXPECT);
    host_len = (size_t)(colon - text);
    port = colon + 1;
  }
  if (host_len == 0) return mu_err_set(err, MU_EINVAL, "bad address \"%s\": no host (%s)", text, EXPECT);
  if (!host_check(host, host_len, bracketed))
    return mu_err_set(err, MU_EINVAL, "bad address \"%s\": bad host \"%.*s\" (%s)", text,
                      (int)(host_len > 64 ? 64 : host_len), host, EXPECT);
  if (*port == '\0') return mu_err_set(err, MU_EINVAL, "bad address \"%s\": no port (%s)", text, EXPECT);
  long value = 0;
  for (const char *p = port; *p != '\0'; p++) {
    if (!isdigit((unsigned char)*p))
      return mu_err_set(err, MU_EINVAL, "bad address \"%s\": port \"%s\" is not a number", text, port);
    value = value * 10 + (*p - '0');
    if (value > 65535) break;
  }
  if (value < 1 || value > 65535)
    return mu_err_set(err, MU_EINVAL, "bad address \"%s\": port %s is out of range 1..65535", text, port);
  if (ret_host != NULL) {
    if (host_size <= host_len) return mu_err_set(err, MU_EINVAL, "bad address \"%s\": host is too long", text);
    memcpy(ret_host, host, host_len);
    ret_host[host_len] = '\0';
  }
  if (ret_port != NULL) *ret_port = (uint16_t)value;
  return 0;
}

int mu_url_check(const char *text, mu_err *err) {
  const char *rest;
  if (strncmp(text, "http://", 7) == 0) {
    rest = text + 7;
  } else if (strncmp(text, "https://", 8) == 0) {
    rest = text + 8;
  } else {
    return mu_err_set(err, MU_EINVAL, "bad endpoint URL \"%s\" (expected http://HOST:PORT or https://HOST:PORT)", text);
  }
  size_t len = strlen(rest);
  if (len > 0 && rest[len - 1] == '/') len--;
  if (len == 0 || len > MU_HOST_MAX + 6 || memchr(rest, '/', len) != NULL)
    return mu_err_set(err, MU_EINVAL,
                      "bad endpoint URL \"%s\" (expected http://HOST:PORT or https://HOST:PORT, "
                      "no path)",
                      text);
  char hostport[MU_HOST_MAX + 8];
  memcpy(hostport, rest, len);
  hostport[len] = '\0';
  /* A URL without a port is fine ("http://etcd"); with one, check it as HOST:PORT. */
  int has_port = hostport[0] == '[' ? strstr(hostport, "]:") != NULL : strchr(hostport, ':') != NULL;
  if (has_port) return mu_hostport_parse(hostport, NULL, 0, NULL, err);
  if (hostport[0] == '[' ? hostport[len - 1] != ']' || !host_check(hostport + 1, len - 2, 1)
                         : !host_check(hostport, len, 0))
    return mu_err_set(err, MU_EINVAL, "bad endpoint URL \"%s\": bad host", text);
  return 0;
}

int mu_host_is_wildcard(const char *host) { return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0; }
