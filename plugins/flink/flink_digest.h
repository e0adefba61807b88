/* The SHA-256 of a program file, computed on libuv's thread pool so a large jar never blocks
 * the agent's loop. The Flink task names its upload after it ("<digest16>-<name>.jar"), so a jar
 * already on the cluster with the same content is reused and one with the same name but other
 * content is never taken for it. */
#ifndef MU_FLINK_DIGEST_H
#define MU_FLINK_DIGEST_H

#include <uv.h>

typedef struct mu_flink_digest mu_flink_digest;

/* Called on the loop: rc 0 with hex (64 lowercase characters) or a negative errno. */
typedef void (*mu_flink_digest_cb)(void *arg, int rc, const char *hex);

/* Starts hashing path; cb runs once on the loop unless the digest is orphaned first. Returns 0
 * (*ret set) or a negative errno. */
int mu_flink_digest_start(uv_loop_t *loop, const char *path, mu_flink_digest_cb cb, void *arg, mu_flink_digest **ret);
/* The owner goes away: cb will not run; the digest frees itself when the work ends. */
void mu_flink_digest_orphan(mu_flink_digest *d);

#endif
