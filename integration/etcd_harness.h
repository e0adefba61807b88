/* Test harness: a real single-node etcd (/usr/bin/etcd) on free loopback ports with a fresh
 * temporary data dir, for unit and integration tests. Calls block (they poll /health); use
 * them from test code, never from a daemon's loop thread.
 *
 *   mu_etcd_harness *h;
 *   mu_etcd_harness_start(NULL, &h, &err);
 *   ... mu_etcd_harness_endpoint(h) → "http://127.0.0.1:PORT" ...
 *   mu_etcd_harness_stop(h, false, &err);     // outage: SIGTERM, then SIGKILL after a grace
 *   mu_etcd_harness_restart(h, &err);         // same ports, same data
 *   mu_etcd_harness_free(h);                  // stops it and removes the data dir
 */
#ifndef MU_ETCD_HARNESS_H
#define MU_ETCD_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/base/err.h"

typedef struct mu_etcd_harness mu_etcd_harness;

typedef struct mu_etcd_harness_opts {
  const char *etcd_path;         /* NULL → $MU_ETCD_BIN, else /usr/bin/etcd */
  const char *const *extra_args; /* NULL-terminated extra flags, or NULL */
  int64_t start_timeout_ms;      /* wait for health; 0 → 15000 */
  int64_t stop_grace_ms;         /* SIGTERM → SIGKILL delay; 0 → 5000 */
} mu_etcd_harness_opts;

/* Starts etcd and waits until /health says true. The data dir lives under $TEST_TMPDIR (or
 * /tmp). etcd's own log goes to a file in that dir; a failed start quotes its tail.
 * Caller frees with mu_etcd_harness_free. opts may be NULL (copied). */
int mu_etcd_harness_start(const mu_etcd_harness_opts *opts, mu_etcd_harness **ret_h, mu_err *err);

/* "http://127.0.0.1:PORT" of the client listener. Borrowed, stable across restarts. */
const char *mu_etcd_harness_endpoint(const mu_etcd_harness *h);
const char *mu_etcd_harness_data_dir(const mu_etcd_harness *h);
/* The running etcd's pid, or 0 when stopped. */
pid_t mu_etcd_harness_pid(const mu_etcd_harness *h);

/* Stops etcd (hard: SIGKILL at once; else SIGTERM, SIGKILL after the grace) and reaps it.
 * The data dir is kept. No-op when already stopped. */
int mu_etcd_harness_stop(mu_etcd_harness *h, bool hard, mu_err *err);

/* Freezes etcd (SIGSTOP, returns once it is stopped): connections are accepted by the kernel
 * but nothing answers — a hung server. mu_etcd_harness_resume (SIGCONT) undoes it. */
int mu_etcd_harness_pause(mu_etcd_harness *h, mu_err *err);
int mu_etcd_harness_resume(mu_etcd_harness *h, mu_err *err);

/* Stops etcd if running, starts it again on the same ports and data, waits for health. */
int mu_etcd_harness_restart(mu_etcd_harness *h, mu_err *err);

/* Stops etcd and removes the temporary dir. NULL is fine. */
void mu_etcd_harness_free(mu_etcd_harness *h);

/* cmocka group fixtures: one etcd (default options) for a whole test group, in *state as a
 * mu_etcd_harness *. Setup returns -1 (after printing why) when etcd cannot start. */
int mu_etcd_harness_group_setup(void **state);
int mu_etcd_harness_group_teardown(void **state);

#endif
