/* Fetches an application resource given as an http(s) URL into the task dir on the agent's
 * loop (libcurl multi, plugins/http/http_multi.h), hashing it as it arrives: the file is kept
 * only when its SHA-256 is the one the spec names, so what spark-submit runs is what the job's
 * author pinned. Bounded by max_bytes and a timeout. */
#ifndef MU_SPARK_FETCH_H
#define MU_SPARK_FETCH_H

#include <stdint.h>
#include <uv.h>

#define MU_SPARK_FETCH_MAX_BYTES (2ull * 1024 * 1024 * 1024)

typedef struct mu_spark_fetch mu_spark_fetch;

/* Runs once on the loop: rc 0 (path holds the verified file) or negative with msg (the file
 * is removed). */
typedef void (*mu_spark_fetch_cb)(void *arg, int rc, const char *msg);

/* Starts fetching url to path (created 0644, replaced). sha256_hex: 64 lowercase hex digits.
 * 0, or -ENOMEM / -EIO / -errno (cannot create path) with msg (size 512) and cb never called. */
int mu_spark_fetch_start(uv_loop_t *loop, const char *url, const char *path, const char *sha256_hex, uint64_t max_bytes,
                         long timeout_ms, mu_spark_fetch_cb cb, void *arg, mu_spark_fetch **ret, char *msg);
/* Stops a fetch: cb is not called, the partial file is removed. Safe with NULL. */
void mu_spark_fetch_cancel(mu_spark_fetch *f);

#endif
