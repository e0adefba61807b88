/* Watches: a long-lived POST to /v3/watch whose newline-delimited JSON messages are parsed as
 * they arrive. A dropped stream is re-opened (backoff, all endpoints) from the last delivered
 * revision + 1, and events at or below it are filtered, so callers see each event once.
 * Compaction, refused auth and bad requests end the watch with one error callback. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/etcd/internal.h"

#define RETRY_MIN_MS 100

struct mu_etcd_watch {
  mu_etcd_client *c;
  mu_etcd_watch *prev, *next; /* c->watches */
  json_t *create;             /* create_request without start_revision, owned */
  int64_t next_rev;           /* resume point; 0 → "now" until the first creation */
  mu_etcd_watch_cb cb;
  void *ud;
  mu_etcd_req *req; /* the live stream, or NULL while waiting to retry */
  uv_timer_t retry;
  int64_t backoff_ms;
  int reauth_tries;
  char *buf; /* received bytes not yet parsed, owned, bounded */
  size_t len, cap;
  bool has_data, created_sent, delivering, cancelled, lost;
  mu_err term; /* terminal error waiting for delivery */
  char what[160];
};

static void watch_destroy(mu_etcd_watch *w);
static void watch_deliver(mu_etcd_watch *w);

static int watch_connect(mu_etcd_watch *w, mu_err *err) {
  mu_etcd_req *r = NULL;
  json_t *cr = json_deep_copy(w->create);
  json_t *body = json_object();
  char *text = NULL;
  int rc;
  if (cr == NULL || body == NULL) goto nomem;
  if (w->next_rev > 0 && json_object_set_new(cr, "start_revision", json_integer((json_int_t)w->next_rev)) != 0) {
    goto nomem;
  }
  if (json_object_set(body, "create_request", cr) != 0) goto nomem;
  text = json_dumps(body, JSON_COMPACT);
  if (text == NULL) goto nomem;
  json_decref(cr);
  json_decref(body);
  rc = mu__etcd_client_req_new(w->c, "/v3/watch", text, w->what, &r, err);
  if (rc != 0) return rc;
  r->watch = w;
  w->req = r;
  w->len = 0;
  w->has_data = false;
  rc = mu__etcd_client_req_submit(r, err);
  if (rc != 0) {
    mu__etcd_client_req_drop(r);
    w->req = NULL;
  }
  return rc;
nomem:
  json_decref(cr);
  json_decref(body);
  return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", w->what);
}

static void on_retry(uv_timer_t *t) {
  mu_etcd_watch *w = t->data;
  mu_etcd_client *c = w->c;
  mu__etcd_client_enter(c);
  if (!w->cancelled && !c->closing && w->req == NULL && watch_connect(w, &w->term) != 0) {
    watch_deliver(w);
  }
  mu__etcd_client_leave(c);
}

static void watch_schedule_retry(mu_etcd_watch *w, const char *why) {
  if (w->req != NULL) mu__etcd_client_req_drop(w->req);
  w->req = NULL;
  if (!w->lost) {
    mu_warn("etcd", "%s: stream lost (%s); resuming from revision %lld", w->what, why, (long long)w->next_rev);
    w->lost = true;
  }
  uv_timer_start(&w->retry, on_retry, (uint64_t)w->backoff_ms, 0);
  w->backoff_ms *= 2;
  if (w->backoff_ms > w->c->opts.watch_retry_max_ms) w->backoff_ms = w->c->opts.watch_retry_max_ms;
}

int mu_etcd_watch_start(mu_etcd_client *c, const mu_etcd_watch_req *req, mu_etcd_watch_cb cb, void *ud,
                        mu_etcd_watch **ret_watch, mu_err *err) {
  size_t payload = 0;
  char shown[100];
  int rc;
  if (c->closing) return mu_err_set(err, MU_ECANCELED, "etcd watch: client is closing");
  if (req == NULL || req->key == NULL || cb == NULL || req->start_revision < 0) {
    return mu_err_set(err, MU_EINVAL,
                      "etcd watch: key, callback and a start revision >= 0 "
                      "are required");
  }
  mu_etcd_watch *w = calloc(1, sizeof(*w));
  if (w == NULL) return mu_err_set(err, MU_ENOMEM, "etcd watch: out of memory");
  w->create = json_object();
  if (w->create == NULL) {
    free(w);
    return mu_err_set(err, MU_ENOMEM, "etcd watch: out of memory");
  }
  rc = mu__etcd_codec_key_range(w->create, req->key, req->key_len, req->range_end, req->range_end_len, req->prefix,
                                &payload, err);
  if (rc == 0 && req->prev_kv && json_object_set_new(w->create, "prev_kv", json_true()) != 0) {
    rc = mu_err_set(err, MU_ENOMEM, "etcd watch: out of memory");
  }
  if (rc == 0 && uv_timer_init(c->loop, &w->retry) != 0) {
    rc = mu_err_set(err, MU_EIO, "etcd watch: uv_timer_init failed");
  }
  if (rc != 0) {
    json_decref(w->create);
    free(w);
    return rc;
  }
  mu__etcd_codec_show_key(req->key, req->key_len != 0 ? req->key_len : strlen(req->key), shown, sizeof(shown));
  snprintf(w->what, sizeof(w->what), "watch '%s'%s", shown, req->prefix ? " (prefix)" : "");
  w->c = c;
  w->retry.data = w;
  w->cb = cb;
  w->ud = ud;
  w->next_rev = req->start_revision;
  w->backoff_ms = RETRY_MIN_MS;
  w->next = c->watches;
  if (c->watches != NULL) c->watches->prev = w;
  c->watches = w;
  rc = watch_connect(w, err);
  if (rc != 0) {
    watch_destroy(w);
    return rc;
  }
  *ret_watch = w;
  return 0;
}

int64_t mu_etcd_watch_next_revision(const mu_etcd_watch *w) { return w->next_rev; }

void mu_etcd_watch_cancel(mu_etcd_watch *w) {
  if (w == NULL || w->cancelled) return;
  w->cancelled = true;
  if (!w->delivering) watch_destroy(w);
}

static void on_watch_closed(uv_handle_t *h) {
  mu_etcd_watch *w = h->data;
  mu_etcd_client *c = w->c;
  free(w);
  mu__etcd_client_handle_closed(c);
}

static void watch_destroy(mu_etcd_watch *w) {
  mu_etcd_client *c = w->c;
  if (w->req != NULL) mu__etcd_client_req_drop(w->req);
  w->req = NULL;
  if (w->prev != NULL) w->prev->next = w->next;
  else c->watches = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  json_decref(w->create);
  free(w->buf);
  uv_timer_stop(&w->retry);
  c->pending_closes++;
  uv_close((uv_handle_t *)&w->retry, on_watch_closed);
}

size_t mu__etcd_watch_write(mu_etcd_watch *w, const char *data, size_t len) {
  if (w->len + len > w->c->opts.max_response_bytes) return 0; /* → CURLE_WRITE_ERROR */
  if (w->len + len > w->cap) {
    size_t cap = w->cap == 0 ? 4096 : w->cap;
    while (cap < w->len + len) cap *= 2;
    char *p = realloc(w->buf, cap);
    if (p == NULL) return 0;
    w->buf = p;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, data, len);
  w->len += len;
  if (memchr(data, '\n', len) != NULL) w->has_data = true;
  return len;
}

void mu__etcd_watch_on_done(mu_etcd_watch *w, const mu_err *err) {
  w->req = NULL;
  if (w->c->closing || w->cancelled) return;
  /* Keep the complete messages (delivered next), drop a torn last one. */
  while (w->len > 0 && w->buf[w->len - 1] != '\n') w->len--;
  if (err != NULL && (err->code == MU_ENOSPC || err->code == MU_EPERM)) {
    w->term = *err;
    return;
  }
  watch_schedule_retry(w, err != NULL ? err->msg : "closed by etcd");
}

bool mu__etcd_watch_wants_delivery(const mu_etcd_watch *w) {
  return !w->cancelled && (w->has_data || w->term.code != 0);
}

static bool event_revision_ok(int64_t rev) { return rev >= 1 && rev < INT64_MAX; }

static void deliver_events(mu_etcd_watch *w, json_t *arr, int64_t revision) {
  size_t n = json_array_size(arr);
  mu_etcd_event *ev = calloc(n, sizeof(*ev));
  size_t k = 0;
  int64_t max_rev = 0;
  if (ev == NULL) {
    mu_err_set(&w->term, MU_ENOMEM, "etcd %s: out of memory", w->what);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *j = json_array_get(arr, i);
    mu_etcd_event *e = &ev[k];
    const char *type = json_string_value(json_object_get(j, "type"));
    e->type = type != NULL && strcmp(type, "DELETE") == 0 ? MU_ETCD_EVENT_DELETE : MU_ETCD_EVENT_PUT;
    if (mu__etcd_codec_kv(json_object_get(j, "kv"), &e->kv) != 0) {
      mu_err_set(&w->term, MU_EIO, "etcd %s: malformed event", w->what);
      goto out;
    }
    /* Revisions start at 1; resuming needs revision + 1. Anything else is not from etcd, and
     * would defeat the once-only filter below (or overflow it). */
    if (!event_revision_ok(e->kv.mod_revision)) {
      mu_err_set(&w->term, MU_EIO, "etcd %s: malformed event (mod_revision %lld)", w->what,
                 (long long)e->kv.mod_revision);
      goto out;
    }
    json_t *p = json_object_get(j, "prev_kv");
    if (p != NULL && mu__etcd_codec_kv(p, &e->prev_kv) == 0) e->has_prev_kv = true;
    if (e->kv.mod_revision < w->next_rev) { /* already delivered before a resume */
      mu__etcd_codec_kv_clear(&e->kv);
      mu__etcd_codec_kv_clear(&e->prev_kv);
      continue;
    }
    if (e->kv.mod_revision > max_rev) max_rev = e->kv.mod_revision;
    k++;
  }
  if (k > 0) {
    mu_etcd_watch_batch b = {.revision = revision, .events = ev, .n_events = k};
    w->next_rev = max_rev + 1;
    w->cb(w->ud, &b, NULL);
  }
out:
  for (size_t i = 0; i < n; i++) {
    mu__etcd_codec_kv_clear(&ev[i].kv);
    mu__etcd_codec_kv_clear(&ev[i].prev_kv);
  }
  free(ev);
}

/* A cancel (not compaction) from etcd: a stale token is retried, anything else is final. */
static void watch_canceled(mu_etcd_watch *w, const char *reason) {
  mu_etcd_client *c = w->c;
  if (reason == NULL) reason = "no reason given";
  if (strstr(reason, "Unauthenticated") != NULL && c->opts.username != NULL && w->reauth_tries < 2) {
    w->reauth_tries++;
    free(c->token);
    c->token = NULL;
    watch_schedule_retry(w, reason);
    return;
  }
  bool denied = strstr(reason, "Unauthenticated") != NULL || strstr(reason, "PermissionDenied") != NULL ||
                strstr(reason, "permission denied") != NULL;
  int code = denied ? MU_EPERM : MU_EINVAL;
  mu_err_set(&w->term, code, "etcd %s: canceled by etcd: %s", w->what, reason);
}

static void watch_message(mu_etcd_watch *w, json_t *j) {
  json_t *res = json_object_get(j, "result");
  if (res == NULL) {
    json_t *e = json_object_get(j, "error");
    if (json_is_object(e)) { /* stream error from the gateway */
      const char *msg = json_string_value(json_object_get(e, "message"));
      int64_t code = mu__etcd_codec_int(e, "grpc_code");
      if (code == 14 || code == 4 || (msg != NULL && strstr(msg, "no leader") != NULL)) {
        watch_schedule_retry(w, msg != NULL ? msg : "unavailable");
      } else {
        mu_err_set(&w->term, code == 16 || code == 7 ? MU_EPERM : MU_EIO, "etcd %s: %s (gRPC code %lld)", w->what,
                   msg != NULL ? msg : "stream error", (long long)code);
      }
    } else {
      mu__etcd_client_etcd_error(w->what, 0, j, &w->term);
    }
    return;
  }
  int64_t rev = mu__etcd_codec_int(json_object_get(res, "header"), "revision");
  if (json_is_true(json_object_get(res, "canceled"))) {
    int64_t cr = mu__etcd_codec_int(res, "compact_revision");
    if (cr > 0) {
      mu_err_set(&w->term, MU_EAGAIN, "etcd %s: compacted at revision %lld (wanted %lld); re-list and watch again",
                 w->what, (long long)cr, (long long)w->next_rev);
    } else {
      watch_canceled(w, json_string_value(json_object_get(res, "cancel_reason")));
    }
    return;
  }
  if (json_is_true(json_object_get(res, "created"))) {
    if (rev < 0 || rev == INT64_MAX) {
      mu_err_set(&w->term, MU_EIO, "etcd %s: malformed watch creation (revision %lld)", w->what, (long long)rev);
      return;
    }
    w->backoff_ms = RETRY_MIN_MS;
    w->reauth_tries = 0;
    if (w->next_rev == 0) w->next_rev = rev + 1;
    if (w->lost) mu_info("etcd", "%s: resumed at revision %lld", w->what, (long long)w->next_rev);
    w->lost = false;
    if (!w->created_sent) {
      mu_etcd_watch_batch b = {.revision = rev, .created = true};
      w->created_sent = true;
      w->cb(w->ud, &b, NULL);
    }
    return;
  }
  deliver_events(w, json_object_get(res, "events"), rev);
}

static void watch_deliver(mu_etcd_watch *w) {
  w->delivering = true;
  while (!w->cancelled && w->term.code == 0 && w->has_data) {
    char *nl = memchr(w->buf, '\n', w->len);
    if (nl == NULL) {
      w->has_data = false;
      break;
    }
    size_t line = (size_t)(nl - w->buf);
    json_t *j = json_loadb(w->buf, line, 0, NULL);
    bool blank = strspn(w->buf, " \r\t") >= line;
    memmove(w->buf, nl + 1, w->len - line - 1);
    w->len -= line + 1;
    if (j == NULL) {
      if (!blank) mu_err_set(&w->term, MU_EIO, "etcd %s: malformed stream message", w->what);
      continue;
    }
    watch_message(w, j);
    json_decref(j);
  }
  if (!w->cancelled && w->term.code != 0) {
    if (w->req != NULL) mu__etcd_client_req_drop(w->req);
    w->req = NULL;
    uv_timer_stop(&w->retry);
    w->cb(w->ud, NULL, &w->term);
    w->cancelled = true;
  }
  w->delivering = false;
  if (w->cancelled) watch_destroy(w);
}

void mu__etcd_watch_deliver_all(mu_etcd_client *c) {
  while (!c->closing) {
    mu_etcd_watch *w = c->watches;
    while (w != NULL && !mu__etcd_watch_wants_delivery(w)) w = w->next;
    if (w == NULL) return;
    watch_deliver(w);
  }
}

void mu__etcd_watch_close_all(mu_etcd_client *c) {
  while (c->watches != NULL) {
    mu_etcd_watch *w = c->watches;
    if (!w->cancelled) {
      if (w->req != NULL) mu__etcd_client_req_drop(w->req);
      w->req = NULL;
      mu_err_set(&w->term, MU_ECANCELED, "etcd %s: client closed", w->what);
      w->delivering = true;
      w->cb(w->ud, NULL, &w->term);
      w->delivering = false;
    }
    watch_destroy(w);
  }
}
