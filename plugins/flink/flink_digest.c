/* SHA-256 of a file on the thread pool (flink_digest.h), with libcrypto's EVP interface. The
 * work item owns itself: the loop-side callback frees it, after telling its owner if it still
 * has one. */
#include "flink_digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mu_flink_digest {
  uv_work_t req;
  char *path;
  char hex[65];
  int rc;
  mu_flink_digest_cb cb; /* NULL once orphaned */
  void *arg;
};

static void work(uv_work_t *req) {
  mu_flink_digest *d = req->data;
  FILE *f = fopen(d->path, "rb");
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (f == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    d->rc = f == NULL ? -errno : -ENOMEM;
    goto done;
  }
  unsigned char buf[64 * 1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
  if (ferror(f)) {
    d->rc = -EIO;
    goto done;
  }
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  for (unsigned i = 0; i < 32; i++) snprintf(d->hex + 2 * i, 3, "%02x", md[i]);
  d->rc = 0;
done:
  if (f != NULL) fclose(f);
  EVP_MD_CTX_free(ctx);
}

static void after(uv_work_t *req, int status) {
  mu_flink_digest *d = req->data;
  if (d->cb != NULL) d->cb(d->arg, status != 0 ? status : d->rc, d->hex);
  free(d->path);
  free(d);
}

int mu_flink_digest_start(uv_loop_t *loop, const char *path, mu_flink_digest_cb cb, void *arg, mu_flink_digest **ret) {
  mu_flink_digest *d = calloc(1, sizeof *d);
  if (d != NULL) d->path = strdup(path);
  if (d == NULL || d->path == NULL) {
    free(d);
    return -ENOMEM;
  }
  d->cb = cb;
  d->arg = arg;
  d->req.data = d;
  int rc = uv_queue_work(loop, &d->req, work, after);
  if (rc != 0) {
    free(d->path);
    free(d);
    return rc;
  }
  *ret = d;
  return 0;
}

void mu_flink_digest_orphan(mu_flink_digest *d) {
  if (d != NULL) d->cb = NULL;
}
