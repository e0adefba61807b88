/* Certificate expiry for `muster doctor` (doctor_tls.h), with OpenSSL 3. */
#include "cli/doctor_tls.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static int not_after_of(X509 *x, int64_t *ret) {
  struct tm tm;
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) return -1;
  *ret = (int64_t)timegm(&tm);
  return 0;
}

int mu_doctor_cert_file(const char *path, int64_t *ret_not_after, mu_err *err) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return mu_err_set(err, MU_ENOENT, "%s: %s", path, strerror(errno));
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  if (x == NULL) return mu_err_set(err, MU_EINVAL, "%s: not a PEM certificate", path);
  int rc = not_after_of(x, ret_not_after);
  X509_free(x);
  return rc == 0 ? 0 : mu_err_set(err, MU_EINVAL, "%s: unreadable notAfter", path);
}

static int tcp_connect(const char *addr, int64_t timeout_ms, mu_err *err) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
    return mu_err_set(err, MU_EINVAL, "'%s' is not HOST:PORT", addr);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  int g = getaddrinfo(host, colon + 1, &hints, &res);
  if (g != 0) return mu_err_set(err, MU_EIO, "%s: %s", addr, gai_strerror(g));
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return mu_err_set(err, MU_EIO, "connect %s: %s", addr, strerror(e));
  }
  freeaddrinfo(res);
  return fd;
}

int mu_doctor_server_cert(const char *addr, const char *cert, const char *key, int64_t timeout_ms,
                          int64_t *ret_not_after, mu_err *err) {
  int fd = tcp_connect(addr, timeout_ms, err);
  if (fd < 0) return fd;
  int rc = MU_EIO;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = NULL;
  if (ctx == NULL) {
    mu_err_set(err, MU_EIO, "TLS: no context");
    goto out;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* only its dates are read here */
  if (cert != NULL && key != NULL &&
      (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
    mu_err_set(err, MU_EINVAL, "TLS: cannot use %s / %s", cert, key);
    goto out;
  }
  ssl = SSL_new(ctx);
  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
    mu_err_set(err, MU_EIO, "TLS: no session");
    goto out;
  }
  SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3);
  int hs = SSL_connect(ssl);
  X509 *peer = SSL_get1_peer_certificate(ssl);
  if (peer == NULL) {
    mu_err_set(err, MU_EIO, "TLS handshake with %s: %s", addr,
               hs == 1 ? "no certificate presented" : "failed (is it plaintext?)");
    goto out;
  }
  rc = not_after_of(peer, ret_not_after) == 0 ? 0 : mu_err_set(err, MU_EINVAL, "unreadable notAfter");
  X509_free(peer);
out:
  if (ssl != NULL) SSL_free(ssl);
  if (ctx != NULL) SSL_CTX_free(ctx);
  ERR_clear_error();
  close(fd);
  return rc;
}
