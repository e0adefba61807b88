/* Checks and splits network addresses as configs and flags spell them: HOST:PORT (with
 * [IPv6]:PORT) and http(s) endpoint URLs. Pure string work: nothing is resolved. */
#ifndef MU_ADDR_H
#define MU_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_HOST_MAX 253 /* bytes of a host name, as DNS allows */

/* Parses "host:port", "1.2.3.4:port" or "[::1]:port" (port 1..65535). On success writes the
 * host (without brackets) to ret_host (host_size bytes, at least MU_HOST_MAX + 1 to fit any
 * host) and the port to *ret_port; either may be NULL. MU_EINVAL with a message quoting text
 * and saying what is wrong. */
int mu_hostport_parse(const char *text, char *ret_host, size_t host_size, uint16_t *ret_port, mu_err *err);

/* An endpoint URL "http://host[:port][/]" or "https://...". MU_EINVAL otherwise. */
int mu_url_check(const char *text, mu_err *err);

/* 1 when host is a wildcard listen address ("0.0.0.0", "::"), else 0. */
int mu_host_is_wildcard(const char *host);

#endif
