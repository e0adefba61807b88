/* URL resources, fetched and checked (spark_fetch.h). */
#include "spark_fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/http/http_multi.h"

struct mu_spark_fetch {
  mu_http_multi *multi;
  mu_http_xfer xfer;
  FILE *fp;
  char *path;
  char want[65];
  crypto_hash_sha256_state sha;
  uint64_t got, max;
  bool over, write_failed;
  char err[CURL_ERROR_SIZE];
  mu_spark_fetch_cb cb;
  void *arg;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg) {
  mu_spark_fetch *f = arg;
  size_t n = size * nmemb;
  if (f->got + n > f->max) {
    f->over = true;
    return 0;
  }
  if (fwrite(data, 1, n, f->fp) != n) {
    f->write_failed = true;
    return 0;
  }
  crypto_hash_sha256_update(&f->sha, (const unsigned char *)data, n);
  f->got += n;
  return n;
}

static void destroy(mu_spark_fetch *f, bool keep) {
  if (f->xfer.easy != NULL) {
    mu_http_multi_remove(&f->xfer);
    curl_easy_cleanup(f->xfer.easy);
  }
  mu_http_multi_release(f->multi);
  if (f->fp != NULL) fclose(f->fp);
  if (!keep && f->path != NULL) unlink(f->path);
  free(f->path);
  free(f);
}

static void on_done(void *arg, CURLcode result) {
  mu_spark_fetch *f = arg;
  long status = 0;
  curl_easy_getinfo(f->xfer.easy, CURLINFO_RESPONSE_CODE, &status);
  char msg[700];
  int rc = 0;
  if (f->over) {
    rc = -EFBIG;
    snprintf(msg, sizeof msg, "larger than %llu bytes", (unsigned long long)f->max);
  } else if (f->write_failed) {
    rc = -EIO;
    snprintf(msg, sizeof msg, "cannot write %s: %s", f->path, strerror(errno));
  } else if (result != CURLE_OK) {
    rc = -EIO;
    snprintf(msg, sizeof msg, "%s%s%s", curl_easy_strerror(result), f->err[0] ? ": " : "", f->err);
  } else if (status != 200) {
    rc = -EIO;
    snprintf(msg, sizeof msg, "HTTP %ld", status);
  } else if (fflush(f->fp) != 0) {
    rc = -EIO;
    snprintf(msg, sizeof msg, "cannot write %s: %s", f->path, strerror(errno));
  } else {
    unsigned char d[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256_final(&f->sha, d);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    if (strcmp(hex, f->want) != 0) {
      rc = -EBADMSG;
      snprintf(msg, sizeof msg, "sha256 mismatch: got %s (%llu bytes), want %s", hex, (unsigned long long)f->got,
               f->want);
    } else {
      snprintf(msg, sizeof msg, "%llu bytes, sha256 %s", (unsigned long long)f->got, hex);
    }
  }
  f->cb(f->arg, rc, msg);
  destroy(f, rc == 0);
}

int mu_spark_fetch_start(uv_loop_t *loop, const char *url, const char *path, const char *sha256_hex, uint64_t max_bytes,
                         long timeout_ms, mu_spark_fetch_cb cb, void *arg, mu_spark_fetch **ret, char *msg) {
  if (sodium_init() < 0) {
    snprintf(msg, 512, "libsodium failed to initialise");
    return -EIO;
  }
  mu_spark_fetch *f = calloc(1, sizeof *f);
  if (f != NULL) f->path = strdup(path);
  if (f == NULL || f->path == NULL) {
    free(f);
    snprintf(msg, 512, "out of memory");
    return -ENOMEM;
  }
  f->cb = cb;
  f->arg = arg;
  f->max = max_bytes ? max_bytes : MU_SPARK_FETCH_MAX_BYTES;
  snprintf(f->want, sizeof f->want, "%s", sha256_hex);
  crypto_hash_sha256_init(&f->sha);
  if (mu_http_multi_acquire(loop, &f->multi) != 0) {
    free(f->path);
    free(f);
    snprintf(msg, 512, "out of memory");
    return -ENOMEM;
  }
  f->fp = fopen(path, "wbe");
  if (f->fp == NULL) {
    int e = errno;
    snprintf(msg, 512, "cannot create %s: %s", path, strerror(e));
    destroy(f, true);
    return -e;
  }
  CURL *e = curl_easy_init();
  if (e == NULL) {
    snprintf(msg, 512, "out of memory");
    destroy(f, false);
    return -ENOMEM;
  }
  f->xfer = (mu_http_xfer){.easy = e, .done = on_done, .arg = f};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->err);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "muster-spark/1.0");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  if (mu_http_multi_add(f->multi, &f->xfer) != 0) {
    snprintf(msg, 512, "curl refused the transfer");
    destroy(f, false);
    return -EIO;
  }
  *ret = f;
  return 0;
}

void mu_spark_fetch_cancel(mu_spark_fetch *f) {
  if (f != NULL) destroy(f, false);
}
