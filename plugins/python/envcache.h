/* The python plugin's environment cache: one virtual environment per (interpreter, version,
 * normalised requirements), kept under <dir>/venvs/<sha256 key>, built once even when many
 * tasks ask at the same moment (waiters join the build in this process; an flock on
 * <key>.lock serialises agents sharing the dir), built in a temp dir and renamed into place
 * when complete, evicted least-recently-used past a size cap. Builds run as the agent (not
 * the task's run-as user) so tasks can read the cache but never write it. All functions run
 * on the loop thread; file work goes to libuv's thread pool. Internal to the plugin. */
#ifndef PY_ENVCACHE_H
#define PY_ENVCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct py_cache py_cache;
typedef struct py_env_waiter py_env_waiter;

typedef struct py_cache_config {
  const char *dir;          /* cache root (copied); venvs go in <dir>/venvs */
  uint64_t max_bytes;       /* LRU size cap over all environments; 0 = 2 GiB */
  int64_t build_timeout_ms; /* one build's wall-clock limit; 0 = 10 min */
  size_t log_max;           /* build output kept for tasks that join late; 0 = 64 KiB */
} py_cache_config;

typedef struct py_cache_stats {
  uint64_t builds;    /* builds started by this process */
  uint64_t hits;      /* requests served by a complete environment already on disk */
  uint64_t joins;     /* requests that joined a build already under way */
  uint64_t failures;  /* builds that failed */
  uint64_t evictions; /* environments removed by the size cap */
} py_cache_stats;

/* What to build. All strings borrowed for the duration of the call. */
typedef struct py_env_request {
  const char *interpreter;  /* absolute path of the base interpreter */
  const char *version;      /* its version, part of the key */
  const char *requirements; /* normalised requirement lines (reqs.h) */
  const char *wheelhouse;   /* absolute directory of wheels, or NULL */
  const char *index_url;    /* pip index, or NULL (then --no-index) */
  int require_hashes;
} py_env_request;

/* Build output for a waiting task (stream 1 stdout, 2 stderr). */
typedef void (*py_env_output_cb)(void *user, int stream, const char *data, size_t len);
/* The end of a request: status 0 and the environment's directory (valid during the call;
 * the task then holds a use of `key` and must py_cache_unuse it), or a negative errno and a
 * message (pip's error lines when pip failed). Called once, never from inside acquire. */
typedef void (*py_env_done_cb)(void *user, int status, const char *key, const char *venv_dir, const char *message);

/* Creates the cache object (no I/O). *ret is the caller's; py_cache_free once no build runs. */
int py_cache_new(const py_cache_config *cfg, py_cache **ret);
void py_cache_free(py_cache *c);

/* The hex sha256 key of a request (65 bytes with the NUL). */
void py_cache_key(const py_env_request *req, char key[65]);

/* Asks for an environment. out and done are called on the loop until done; *ret_waiter lets
 * the task give up with py_cache_cancel. Returns 0, or -ENOMEM. */
int py_cache_acquire(py_cache *c, uv_loop_t *loop, const py_env_request *req, py_env_output_cb out, py_env_done_cb done,
                     void *user, py_env_waiter **ret_waiter);

/* The task no longer waits (cancel, timeout, cleanup): no more callbacks for it. When no
 * waiter is left the build is killed and its temp dir removed. */
void py_cache_cancel(py_cache *c, py_env_waiter *w);

/* The task has stopped using the environment it was given (eviction may now take it). */
void py_cache_unuse(py_cache *c, const char *key);

py_cache_stats py_cache_get_stats(const py_cache *c);
/* cb(arg, ok, seconds) when a build this process ran ends (committed or failed), on the loop:
 * for the plugin's env build time metric. NULL cb: none. */
void py_cache_on_build(py_cache *c, void (*cb)(void *arg, int ok, double seconds), void *arg);
const char *py_cache_dir(const py_cache *c);

#endif
