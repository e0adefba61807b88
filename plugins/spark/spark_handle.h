/* The application handle of a task, kept on the agent's disk across agent restarts so a later
 * attempt of the same task re-attaches to the application instead of submitting a second one.
 * One small JSON file per (agent, job, task) under the state dir (MUSTER_SPARK_STATE_DIR):
 * written before anything is submitted ("submitting", with the tag to search by), rewritten
 * once the cluster's id is known ("submitted"), and marked "done" when the attempt saw the
 * application's end. Writes go through a libuv worker (write, fsync, rename, fsync the dir), so
 * the loop never waits on the disk; loads are one small read at the task's start. */
#ifndef MU_SPARK_HANDLE_H
#define MU_SPARK_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef enum { MU_SPARK_H_SUBMITTING = 1, MU_SPARK_H_SUBMITTED = 2, MU_SPARK_H_DONE = 3 } mu_spark_h_phase;

typedef struct mu_spark_handle {
  mu_spark_h_phase phase;
  unsigned attempt;   /* the attempt that submitted it */
  char kind[16];      /* "yarn", "standalone", "k8s", "local" */
  char app_id[256];   /* YARN application id, standalone driver id, ns:pod; "" when unknown */
  char cluster[1024]; /* where to ask: RM URLs (comma-separated), REST URL */
  char tag[128];      /* the task tag it was submitted with */
  char tracking_url[512];
} mu_spark_handle;

/* The handle file's path for (agent, job, task) under dir, in buf (size >= 4096). */
void mu_spark_handle_path(const char *dir, const char *agent_id, const char *job_id, const char *task_id, char *buf,
                          size_t size);

/* Reads the handle at path. 1 when found, 0 when there is none, -1 with why (size 256) when
 * the file exists but cannot be read or parsed. */
int mu_spark_handle_load(const char *path, mu_spark_handle *ret, char *why);

/* Serialises h (for tests and the writer). Caller frees. */
char *mu_spark_handle_json(const mu_spark_handle *h);
int mu_spark_handle_parse(const char *text, size_t len, mu_spark_handle *ret);

/* Writes h durably at path on a worker; cb runs on the loop with 0 or a negative errno and a
 * message. The write owns copies: h and path may go away after the call. A write in flight
 * cannot be stopped; cb still runs (pass a context that outlives it). */
typedef void (*mu_spark_handle_cb)(void *arg, int rc, const char *msg);
int mu_spark_handle_save(uv_loop_t *loop, const char *path, const mu_spark_handle *h, mu_spark_handle_cb cb, void *arg);

#endif
