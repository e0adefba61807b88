/* A framed message channel on one end of a socketpair, on a libuv loop: sends are queued and
 * written as the socket takes them (uv_poll, never a blocking write on the loop), received
 * bytes are cut into frames and decoded (pmsg.h) and handed to on_msg one by one. Both sides
 * bound what they hold: a frame over max_body, or more than max_pending bytes queued for a
 * peer that does not read, is an error that ends the channel.
 *
 * mu_pchan_call() is for the plugin host process only: it sends a request and waits for its
 * MU_PM_REPLY with poll(2), blocking that process's loop (never use it in the agent).
 * Messages arriving meanwhile are kept and delivered, in order, once the loop runs again. */
#ifndef MU_PLUGIN_PCHAN_H
#define MU_PLUGIN_PCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/plugin/pmsg.h"
#include "lib/base/err.h"

typedef struct mu_pchan mu_pchan;

typedef struct mu_pchan_cb {
  /* One decoded message; the handler owns it (free()). */
  void (*on_msg)(mu_pchan *ch, mu_pmsg *m, void *arg);
  /* The channel failed (peer closed: MU_EIO "closed by the peer"; bad frame: MU_EINVAL;
   * over max_pending: MU_ENOSPC). Called once; no on_msg after it. The owner then calls
   * mu_pchan_close. */
  void (*on_error)(mu_pchan *ch, const mu_err *err, void *arg);
  void *arg;
} mu_pchan_cb;

typedef struct mu_pchan_limits {
  size_t max_body;    /* 0 = MU_PM_DEFAULT_MAX_BODY */
  size_t max_pending; /* bytes queued for writing; 0 = 64 MiB */
} mu_pchan_limits;

/* Takes fd (made non-blocking; closed by mu_pchan_close). *ret is the caller's, released with
 * mu_pchan_close. */
int mu_pchan_open(uv_loop_t *loop, int fd, const mu_pchan_limits *lim, const mu_pchan_cb *cb, mu_pchan **ret,
                  mu_err *err);

/* Encodes and queues one message; the queue is written on the loop's next poll, so messages
 * sent from one callback leave in one write. MU_ENOSPC (message over max_body, or the queue over
 * max_pending: the channel is then failed too), MU_EIO after an error. */
int mu_pchan_send(mu_pchan *ch, uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs,
                  size_t n_strs, mu_err *err);

/* Host process only: sends, then waits up to timeout_ms for the MU_PM_REPLY whose ints[0]
 * is call (the caller puts call in the request). *ret: free(). MU_ETIMEDOUT, MU_EIO. */
int mu_pchan_call(mu_pchan *ch, uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs,
                  size_t n_strs, int64_t call, int timeout_ms, mu_pmsg **ret, mu_err *err);

/* Host process only: writes what is queued, waiting with poll(2) up to timeout_ms (before it
 * exits). 0, MU_ETIMEDOUT, MU_EIO. */
int mu_pchan_flush(mu_pchan *ch, int timeout_ms);

/* Bytes waiting to be written. */
size_t mu_pchan_pending(const mu_pchan *ch);

/* Stops, closes the fd, frees after the handles close (cb may be NULL). No callbacks after. */
void mu_pchan_close(mu_pchan *ch, void (*cb)(void *arg), void *arg);

#endif
