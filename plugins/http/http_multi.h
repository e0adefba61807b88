/* One libcurl multi handle per libuv loop, shared by every HTTP task on that loop and driven
 * by it: curl's sockets are watched with uv_poll, its timeout with a uv_timer, and
 * curl_multi_socket_action does the work. No thread per request. The multi is created by the
 * first acquire on a loop and destroyed (handles closed on the loop) after the last release. */
#ifndef MU_HTTP_MULTI_H
#define MU_HTTP_MULTI_H

#include <curl/curl.h>
#include <uv.h>

typedef struct mu_http_multi mu_http_multi;

/* Called on the loop when a transfer ends, after its easy handle left the multi. */
typedef void (*mu_http_done_cb)(void *arg, CURLcode result);

/* One transfer; owned by the caller, who keeps it alive until done runs or it is removed. */
typedef struct mu_http_xfer {
  CURL *easy;
  mu_http_done_cb done;
  void *arg;
  mu_http_multi *multi; /* set while in a multi */
} mu_http_xfer;

/* Returns the loop's multi with one more reference (creating it if needed). 0 or -ENOMEM. */
int mu_http_multi_acquire(uv_loop_t *loop, mu_http_multi **ret);
/* Drops a reference; the last one closes the multi and its handles (asynchronously). */
void mu_http_multi_release(mu_http_multi *m);

/* Starts x->easy. 0, or -EIO when curl refuses it. */
int mu_http_multi_add(mu_http_multi *m, mu_http_xfer *x);
/* Aborts a transfer at once; done is not called. Safe when x is not in a multi. */
void mu_http_multi_remove(mu_http_xfer *x);

/* Transfers under way on this multi (for tests and the bench). */
int mu_http_multi_active(const mu_http_multi *m);

#endif
