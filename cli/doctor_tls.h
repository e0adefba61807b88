/* The certificates `muster doctor` checks for expiry: a PEM file's first certificate, and the
 * one musterd presents in a TLS handshake (OpenSSL; the CLI is not an event loop, so this
 * blocks, bounded by a timeout). */
#ifndef MU_CLI_DOCTOR_TLS_H
#define MU_CLI_DOCTOR_TLS_H

#include <stdint.h>

#include "lib/base/err.h"

/* notAfter (unix seconds) of the first certificate in PEM file path. MU_ENOENT, MU_EINVAL. */
int mu_doctor_cert_file(const char *path, int64_t *ret_not_after, mu_err *err);

/* notAfter of the certificate the server at addr (HOST:PORT) presents; cert/key (may be NULL)
 * are offered as the client's. MU_EIO naming the step that failed. */
int mu_doctor_server_cert(const char *addr, const char *cert, const char *key, int64_t timeout_ms,
                          int64_t *ret_not_after, mu_err *err);

#endif
