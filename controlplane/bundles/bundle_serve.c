/* Serving bundles to agents: a BundleRequest starts a transfer that sends BundleChunks on the
 * agent's own stream, a window at a time (more only once the stream's send queue has drained
 * below cfg->window_bytes), so heartbeats, assigns and acks on the same stream never wait
 * behind a whole bundle. Every transfer of one digest shares one in-memory copy: the store is
 * read once however many agents ask at the same time. All streams together hold at most
 * cfg->serve_queue_bytes of chunks: transfers take turns a chunk at a time under that cap, so
 * a thousand agents asking at once cost the cap in memory, not a window each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/bundles/bundles_int.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#define MU_PUMP_INTERVAL_MS 5

static void send_error(mu_agent *agent, const char *digest, const char *message) {
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__BundleChunk ch = MUSTER__V1__BUNDLE_CHUNK__INIT;
  ch.digest = (char *)digest;
  ch.error = (char *)message;
  ch.last = 1;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_BUNDLE_CHUNK;
  msg.bundle_chunk = &ch;
  mu_err err = {0};
  if (mu_gateway_send(agent, &msg, &err) != 0) mu_debug("bundles", "error to %s not sent: %s", agent->id, err.msg);
}

static void entry_release(mu_bundles *b, mu_serve_entry *e) {
  e->refs--;
  e->last_used_mono = mu_mono_ms();
  /* Keep unreferenced copies while they fit the cache, dropping the least recently used. */
  while (b->entry_bytes > b->cfg->serve_cache_bytes) {
    mu_serve_entry **victim = NULL;
    for (mu_serve_entry **pp = &b->entries; *pp != NULL; pp = &(*pp)->next)
      if ((*pp)->refs == 0 && !(*pp)->loading && (victim == NULL || (*pp)->last_used_mono < (*victim)->last_used_mono))
        victim = pp;
    if (victim == NULL) break;
    mu_serve_entry *v = *victim;
    *victim = v->next;
    b->entry_bytes -= v->len;
    free(v->data);
    free(v);
  }
}

static void transfer_drop(mu_bundles *b, mu_transfer *t) {
  for (mu_transfer **pp = &b->transfers; *pp != NULL; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  entry_release(b, t->entry);
  free(t);
}

/* Sends one chunk if the agent's window allows. Returns 1 when the transfer is over (done or
 * dropped); *ret_sent is the bytes queued (0 when the window or a load held it back). */
static int transfer_pump_one(mu_bundles *b, mu_transfer *t, size_t *ret_sent) {
  mu_agent *a = t->agent;
  *ret_sent = 0;
  if (a->session == NULL || a->connected_at_ms != t->stream_stamp) return 1;
  mu_serve_entry *e = t->entry;
  if (e->loading || mu_gateway_queued_bytes(a) >= b->cfg->window_bytes) return 0;
  const mu_bundle_meta *meta = mu_bundles_find(b, e->digest);
  size_t n = e->len - (size_t)t->offset;
  if (n > b->cfg->chunk_bytes) n = b->cfg->chunk_bytes;
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__BundleChunk ch = MUSTER__V1__BUNDLE_CHUNK__INIT;
  ch.digest = e->digest;
  ch.offset = t->offset;
  ch.data.data = e->data + t->offset;
  ch.data.len = n;
  ch.total_size = e->len;
  ch.last = t->offset + n >= e->len;
  if (!t->sent_header && meta != NULL) {
    ch.signature.data = meta->sig;
    ch.signature.len = meta->sig_len;
    ch.name = meta->name;
    ch.version = meta->version;
  }
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_BUNDLE_CHUNK;
  msg.bundle_chunk = &ch;
  mu_err err = {0};
  if (mu_gateway_send(a, &msg, &err) != 0) {
    mu_warn("bundles", "%s to %s: %s; the agent asks again", e->digest, a->id, err.msg);
    return 1;
  }
  *ret_sent = n ? n : 1;
  t->sent_header = 1;
  t->offset += n;
  b->served_bytes += n;
  if (ch.last) {
    b->served_bundles++;
    mu_info("bundles", "%s sent to %s (%zu bytes)", e->digest, a->id, e->len);
    return 1;
  }
  return 0;
}

/* Round robin, a chunk per transfer per round, while the streams together hold less than
 * serve_queue_bytes and some transfer could send. */
static void pump_all(mu_bundles *b) {
  uint64_t queued = 0;
  for (mu_transfer *t = b->transfers; t != NULL; t = t->next)
    if (t->agent->session != NULL) queued += mu_gateway_queued_bytes(t->agent);
  int progress = 1;
  while (progress && queued < b->cfg->serve_queue_bytes) {
    progress = 0;
    mu_transfer *t = b->transfers;
    while (t != NULL && queued < b->cfg->serve_queue_bytes) {
      mu_transfer *next = t->next;
      size_t sent = 0;
      if (transfer_pump_one(b, t, &sent)) transfer_drop(b, t);
      queued += sent;
      progress |= sent > 0;
      t = next;
    }
  }
  if (b->transfers == NULL) uv_timer_stop(&b->pump);
}

static void on_pump(uv_timer_t *timer) { pump_all(timer->data); }

static void kick(mu_bundles *b) {
  pump_all(b);
  if (b->transfers != NULL && !uv_is_active((uv_handle_t *)&b->pump))
    uv_timer_start(&b->pump, on_pump, MU_PUMP_INTERVAL_MS, MU_PUMP_INTERVAL_MS);
}

static mu_serve_entry *entry_find(mu_bundles *b, const char *digest) {
  for (mu_serve_entry *e = b->entries; e != NULL; e = e->next)
    if (strcmp(e->digest, digest) == 0) return e;
  return NULL;
}

typedef struct load_ctx {
  mu_bundles *b;
  char digest[MU_BUNDLE_DIGEST_SIZE];
} load_ctx;

static void on_loaded(void *arg, int rc, const char *msg, uint8_t *data, size_t len) {
  load_ctx *lc = arg;
  mu_bundles *b = lc->b;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  memcpy(digest, lc->digest, sizeof digest);
  free(lc);
  mu_serve_entry *e = entry_find(b, digest);
  if (e == NULL || b->closing) { /* forgotten (deleted) while loading */
    free(data);
    return;
  }
  if (rc == 0) {
    e->data = data;
    e->len = len;
    e->loading = 0;
    b->entry_bytes += len;
    kick(b);
    return;
  }
  mu_warn("bundles", "reading %s from the store: %s", digest, msg);
  char text[400];
  snprintf(text, sizeof text, "bundle %s cannot be read on the control plane: %s", digest, msg);
  mu_bundles_serve_forget(b, digest, text);
}

void mu_bundles_on_request(mu_daemon *d, mu_agent *agent, const Muster__V1__BundleRequest *req) {
  mu_bundles *b = d->bundles;
  char text[400];
  mu_err err = {0};
  if (b == NULL || b->closing) return;
  if (mu_bundle_digest_check(req->digest, &err) != 0) {
    snprintf(text, sizeof text, "bad BundleRequest: %s", err.msg);
    send_error(agent, req->digest, text);
    return;
  }
  const mu_bundle_meta *meta = mu_bundles_find(b, req->digest);
  if (meta == NULL) {
    snprintf(text, sizeof text, "bundle %s is not stored on the control plane", req->digest);
    send_error(agent, req->digest, text);
    return;
  }
  if (req->offset > meta->size) {
    snprintf(text, sizeof text, "BundleRequest offset %llu is past the end (%llu bytes)",
             (unsigned long long)req->offset, (unsigned long long)meta->size);
    send_error(agent, req->digest, text);
    return;
  }
  /* A repeated request from the same agent restarts its transfer at the new offset. */
  for (mu_transfer *t = b->transfers; t != NULL; t = t->next)
    if (t->agent == agent && strcmp(t->entry->digest, req->digest) == 0) {
      t->offset = req->offset;
      t->stream_stamp = agent->connected_at_ms;
      t->sent_header = 0;
      kick(b);
      return;
    }
  mu_serve_entry *e = entry_find(b, req->digest);
  int load = 0;
  if (e == NULL) {
    e = calloc(1, sizeof *e);
    if (e == NULL) {
      send_error(agent, req->digest, "control plane out of memory");
      return;
    }
    snprintf(e->digest, sizeof e->digest, "%s", req->digest);
    e->loading = 1;
    e->next = b->entries;
    b->entries = e;
    load = 1;
  }
  mu_transfer *t = calloc(1, sizeof *t);
  if (t == NULL) {
    send_error(agent, req->digest, "control plane out of memory");
    return;
  }
  t->agent = agent;
  t->stream_stamp = agent->connected_at_ms;
  t->entry = e;
  t->offset = req->offset;
  e->refs++;
  t->next = b->transfers;
  b->transfers = t;
  mu_info("bundles", "%s: %s asks from offset %llu%s", req->digest, agent->id, (unsigned long long)req->offset,
          load ? " (reading the store)" : "");
  if (load) {
    load_ctx *lc = calloc(1, sizeof *lc);
    if (lc == NULL) {
      mu_bundles_serve_forget(b, req->digest, "control plane out of memory");
      return;
    }
    lc->b = b;
    snprintf(lc->digest, sizeof lc->digest, "%s", req->digest);
    b->store->ops->read(b->store, req->digest, on_loaded, lc);
  }
  kick(b);
}

void mu_bundles_on_agent_forgotten(mu_daemon *d, mu_agent *agent) {
  mu_bundles *b = d->bundles;
  if (b == NULL) return;
  mu_transfer *t = b->transfers;
  while (t != NULL) {
    mu_transfer *next = t->next;
    if (t->agent == agent) transfer_drop(b, t);
    t = next;
  }
}

void mu_bundles_serve_forget(mu_bundles *b, const char *digest, const char *why) {
  mu_transfer *t = b->transfers;
  while (t != NULL) {
    mu_transfer *next = t->next;
    if (strcmp(t->entry->digest, digest) == 0) {
      send_error(t->agent, digest, why);
      transfer_drop(b, t);
    }
    t = next;
  }
  for (mu_serve_entry **pp = &b->entries; *pp != NULL; pp = &(*pp)->next)
    if (strcmp((*pp)->digest, digest) == 0) {
      mu_serve_entry *e = *pp;
      *pp = e->next;
      if (!e->loading) b->entry_bytes -= e->len;
      free(e->data);
      free(e);
      break;
    }
}

void mu_bundles_serve_init(mu_bundles *b) {
  uv_timer_init(b->d->loop, &b->pump);
  b->pump.data = b;
}

void mu_bundles_serve_close(mu_bundles *b) {
  b->closing = 1;
  while (b->transfers != NULL) transfer_drop(b, b->transfers);
  while (b->entries != NULL) {
    mu_serve_entry *e = b->entries;
    b->entries = e->next;
    free(e->data);
    free(e);
  }
  b->entry_bytes = 0;
  uv_timer_stop(&b->pump);
  uv_close((uv_handle_t *)&b->pump, NULL);
}
