#include "lib/hash/sha256.h"

#include <errno.h>
#include <openssl/evp.h>

int mu_sha256_init(mu_sha256 *h) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL) return -ENOMEM;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return -ENOMEM;
  }
  h->ctx = ctx;
  return 0;
}

void mu_sha256_update(mu_sha256 *h, const void *data, size_t len) {
  if (len > 0) EVP_DigestUpdate(h->ctx, data, len);
}

void mu_sha256_final(mu_sha256 *h, uint8_t out[MU_SHA256_BYTES]) {
  unsigned int n = 0;
  EVP_DigestFinal_ex(h->ctx, out, &n);
  mu_sha256_discard(h);
}

void mu_sha256_discard(mu_sha256 *h) {
  EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}

int mu_sha256_once(const void *data, size_t len, uint8_t out[MU_SHA256_BYTES]) {
  unsigned int n = 0;
  return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}
