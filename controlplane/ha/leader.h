/* Leader election for musterd over etcd (one libuv loop, callbacks only).
 *
 * Every musterd campaigns on "<prefix>leader": it grants a lease, then puts
 * {"member_id":..,"address":..} there under that lease only if the key does not exist. The
 * winner's term is the key's create revision, which every leader write is fenced on (see
 * controlplane/ha/store.h). The leader refreshes its lease every TTL/3 and computes the lease's
 * end locally from the last refresh that etcd confirmed (time the refresh was *sent* + TTL), so
 * a leader cut off from etcd stops acting as leader at that deadline even if it never hears
 * from etcd again. etcd's own expiry of the lease is never earlier than that deadline, so the
 * old leader has stepped down before any other member can win. Followers watch the key and
 * campaign when it goes away.
 *
 * Callback contract: callbacks run on the loop, never from inside a mu_leader_* call (except
 * mu_leader_step_down). From the
 * callbacks' point of view on_elected(term) and on_deposed() alternate strictly, starting with
 * on_elected. Callbacks may call mu_leader_close.
 */
#ifndef MU_HA_LEADER_H
#define MU_HA_LEADER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"
#include "lib/etcd/etcd.h"

typedef struct mu_leader mu_leader;

#define MU_LEADER_DEFAULT_PREFIX "/muster/"
#define MU_LEADER_DEFAULT_TTL_MS 5000

typedef struct mu_leader_options {
  const char *prefix;    /* key prefix; NULL → "/muster/"; the key is prefix "leader" */
  const char *member_id; /* this daemon's id; required, non-empty */
  const char *address;   /* where clients and agents reach this daemon; required */
  int64_t ttl_ms;        /* lease TTL; 0 → 5000; at least 1000 (etcd counts seconds) */
  int64_t retry_max_ms;  /* cap of the campaign retry backoff; 0 → ttl_ms */
} mu_leader_options;

typedef struct mu_leader_callbacks {
  /* This member won; it may act as leader and write with term (fenced) until on_deposed. */
  void (*on_elected)(void *ud, int64_t term);
  /* This member must stop acting as leader now (lease lost, keepalive deadline passed, key
   * deleted, a fenced write refused). reason is borrowed for the call. */
  void (*on_deposed)(void *ud, const char *reason);
  /* The known leader changed: its address, or "" (and term 0) when no leader is known. Also
   * called for this member's own election. address is borrowed for the call. */
  void (*on_leader_changed)(void *ud, const char *address, int64_t term);
} mu_leader_callbacks;

/* etcd health as seen by the election (for GetCluster and /healthz). */
typedef struct mu_leader_health {
  bool healthy;            /* the last etcd call of the election succeeded */
  int64_t last_ok_mono_ms; /* mu_mono_ms() of the last success, 0 if none yet */
  mu_err last_err;         /* the last etcd error (code 0 if none yet) */
} mu_leader_health;

/* Creates the election and starts campaigning (the first etcd call goes out from the loop).
 * client is borrowed and must outlive the election's close callback; opts and cbs are copied.
 * Errors: MU_EINVAL (missing member_id/address, TTL below 1 s), MU_ENOMEM.
 * Caller releases with mu_leader_close. */
int mu_leader_new(uv_loop_t *loop, mu_etcd_client *client, const mu_leader_options *opts,
                  const mu_leader_callbacks *cbs, void *ud, mu_leader **ret_leader, mu_err *err);

/* Resigns (revokes the lease when leading, so the next leader is elected at once instead of
 * after the TTL), stops watching, and frees the election. No callback of cbs runs after this
 * call (on_deposed is not called for a resignation). close_cb (may be NULL) runs from the loop
 * once in-flight etcd calls have finished and the election is freed. */
void mu_leader_close(mu_leader *l, void (*close_cb)(void *ud), void *ud);

/* True while this member is leader (between on_elected and on_deposed). */
bool mu_leader_is_leader(const mu_leader *l);
/* This member's term while leader, else 0. */
int64_t mu_leader_term(const mu_leader *l);
/* The leader key ("/muster/leader"). Borrowed, stable. */
const char *mu_leader_key(const mu_leader *l);
/* The known leader's address ("" when unknown) and term (0 when unknown). Borrowed until the
 * next callback. */
const char *mu_leader_address(const mu_leader *l);
int64_t mu_leader_known_term(const mu_leader *l);
void mu_leader_get_health(const mu_leader *l, mu_leader_health *ret_health);

/* Steps down at once if this member is leader with exactly term; a no-op otherwise, so a late
 * failure of an old term never deposes a newer one. Used by the store when etcd refuses a
 * fenced write. The one exception to the callback rule: on_deposed(reason) runs from inside
 * this call. The member campaigns again afterwards like after any other loss. */
void mu_leader_step_down(mu_leader *l, int64_t term, const char *reason);

#endif
