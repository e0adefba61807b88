/* ListImages (`muster images`) and PruneImages (`muster images prune`): asks every connected
 * agent the selector matches for its container image store (ControlMessage.ImagesRequest;
 * for a prune, after the store's GC with the given bounds) and answers once all replied
 * (AgentMessage.ImagesReply) or MU_IMAGES_WAIT_MS passed; an agent that did not answer, or
 * whose stream dropped, is listed with an error saying so. Requests in flight are the
 * daemon's (d->images_pending), each bounded by its timer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "lib/selector/selector.h"

#define MU_IMAGES_WAIT_MS 20000
#define MU_IMAGES_MAX_AGENTS 10000

typedef struct img_target {
  char *agent_id;
  int64_t stamp;                  /* the agent's connected_at_ms when asked */
  Muster__V1__ImagesReply *reply; /* NULL until it answers */
} img_target;

struct mu_images_req {
  struct mu_images_req *next;
  mu_daemon *d;
  mu_rpc_call *call;
  char id[48];
  uv_timer_t timer;
  img_target *t;
  size_t n, waiting;
  bool answered;
};

static void req_closed(uv_handle_t *h) {
  struct mu_images_req *r = h->data;
  for (size_t i = 0; i < r->n; i++) {
    free(r->t[i].agent_id);
    if (r->t[i].reply != NULL) protobuf_c_message_free_unpacked(&r->t[i].reply->base, NULL);
  }
  free(r->t);
  free(r);
}

static void answer(struct mu_images_req *r) {
  if (r->answered) return;
  r->answered = true;
  for (struct mu_images_req **pp = &r->d->images_pending; *pp != NULL; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  Muster__V1__AgentImages *ai = calloc(r->n ? r->n : 1, sizeof *ai);
  Muster__V1__AgentImages **ptrs = calloc(r->n ? r->n : 1, sizeof *ptrs);
  char(*why)[64] = calloc(r->n ? r->n : 1, sizeof *why);
  if (ai == NULL || ptrs == NULL || why == NULL) {
    mu_pb_fail(r->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing images");
  } else {
    Muster__V1__ListImagesResponse resp = MUSTER__V1__LIST_IMAGES_RESPONSE__INIT;
    for (size_t i = 0; i < r->n; i++) {
      muster__v1__agent_images__init(&ai[i]);
      ai[i].agent_id = r->t[i].agent_id;
      if (r->t[i].reply != NULL) {
        ai[i].images = r->t[i].reply->images;
        ai[i].n_images = r->t[i].reply->n_images;
        ai[i].error = r->t[i].reply->error;
        ai[i].removed = r->t[i].reply->removed;
        ai[i].bytes_before = r->t[i].reply->bytes_before;
        ai[i].bytes_after = r->t[i].reply->bytes_after;
      } else {
        snprintf(why[i], sizeof why[i], "no answer within %d s", MU_IMAGES_WAIT_MS / 1000);
        ai[i].error = why[i];
      }
      ptrs[i] = &ai[i];
    }
    resp.agents = ptrs;
    resp.n_agents = r->n;
    mu_pb_reply(r->call, &resp.base);
  }
  free(ai);
  free(ptrs);
  free(why);
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, req_closed);
}

static void on_timeout(uv_timer_t *t) { answer(t->data); }

void mu_images_stop(mu_daemon *d) {
  while (d->images_pending != NULL) {
    struct mu_images_req *r = d->images_pending;
    d->images_pending = r->next;
    r->answered = true;
    mu_pb_fail(r->call, MU_RPC_UNAVAILABLE, "musterd is stopping");
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, req_closed);
  }
}

void mu_images_on_reply(mu_daemon *d, mu_agent *a, Muster__V1__ImagesReply *rep) {
  for (struct mu_images_req *r = d->images_pending; r != NULL; r = r->next) {
    if (strcmp(r->id, rep->request_id) != 0) continue;
    for (size_t i = 0; i < r->n; i++) {
      img_target *t = &r->t[i];
      if (t->reply != NULL || strcmp(t->agent_id, a->id) != 0 || t->stamp != a->connected_at_ms) continue;
      /* keep a copy: the message is freed after this call */
      size_t len = muster__v1__images_reply__get_packed_size(rep);
      uint8_t *buf = malloc(len ? len : 1);
      if (buf != NULL) {
        muster__v1__images_reply__pack(rep, buf);
        t->reply = muster__v1__images_reply__unpack(NULL, len, buf);
        free(buf);
      }
      if (t->reply == NULL) continue;
      if (--r->waiting == 0) answer(r);
      return;
    }
    return;
  }
}

/* Sends ir (request_id filled in here) to the connected agents selector matches and waits. */
static void ask_agents(mu_daemon *d, mu_rpc_call *call, const char *selector, Muster__V1__ImagesRequest *ir) {
  mu_selector *sel = NULL;
  mu_err err = {0};
  if (mu_selector_parse(selector, &sel, &err) != 0) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "selector: %s", err.msg);
    return;
  }
  struct mu_images_req *r = calloc(1, sizeof *r);
  size_t cap = d->registry.n < MU_IMAGES_MAX_AGENTS ? d->registry.n : MU_IMAGES_MAX_AGENTS;
  if (r != NULL) r->t = calloc(cap ? cap : 1, sizeof *r->t);
  if (r == NULL || r->t == NULL) {
    free(r);
    mu_selector_free(sel);
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing images");
    return;
  }
  r->d = d;
  r->call = call;
  snprintf(r->id, sizeof r->id, "images-%lld-%llu", (long long)d->started_at_ms, (unsigned long long)++d->images_seq);
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  ir->request_id = r->id;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_IMAGES_REQUEST;
  msg.images_request = ir;
  for (size_t i = 0; i < d->registry.n && r->n < cap; i++) {
    mu_agent *a = d->registry.agents[i];
    if (a->session == NULL || !mu_selector_matches(sel, mu_agent_label, a)) continue;
    img_target *t = &r->t[r->n];
    t->agent_id = strdup(a->id);
    if (t->agent_id == NULL) break;
    t->stamp = a->connected_at_ms;
    r->n++;
    mu_err serr = {0};
    if (mu_gateway_send(a, &msg, &serr) == 0) {
      r->waiting++;
    } else {
      t->reply = muster__v1__images_reply__unpack(NULL, 0, NULL); /* an empty reply holding the error */
      if (t->reply != NULL) t->reply->error = strdup(serr.msg[0] ? serr.msg : "could not ask the agent");
    }
  }
  mu_selector_free(sel);
  r->next = d->images_pending;
  d->images_pending = r;
  uv_timer_init(d->loop, &r->timer);
  r->timer.data = r;
  if (r->waiting == 0) answer(r);
  else uv_timer_start(&r->timer, on_timeout, MU_IMAGES_WAIT_MS, 0);
}

static void list_images(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  const Muster__V1__ListImagesRequest *req = (const Muster__V1__ListImagesRequest *)req_msg;
  (void)md;
  Muster__V1__ImagesRequest ir = MUSTER__V1__IMAGES_REQUEST__INIT;
  ask_agents(ud, call, req->selector, &ir);
}

static void prune_images(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__PruneImagesRequest *req = (const Muster__V1__PruneImagesRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  Muster__V1__ImagesRequest ir = MUSTER__V1__IMAGES_REQUEST__INIT;
  ir.prune = 1;
  ir.max_bytes = req->max_bytes;
  mu_err err = {0};
  int64_t age_ms = 0;
  if (req->max_age[0] != '\0' && (mu_duration_parse(req->max_age, &age_ms, &err) != 0 || age_ms <= 0)) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "max_age: %s", err.msg[0] ? err.msg : "must be more than 0");
    return;
  }
  ir.max_age_s = age_ms / 1000 > 0 ? age_ms / 1000 : (age_ms > 0 ? 1 : 0);
  if (ir.max_bytes == 0 && ir.max_age_s == 0) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "give max_bytes or max_age (what the stores are pruned to)");
    return;
  }
  mu_audit_record(d, call, "images.prune", req->selector[0] ? req->selector : "*", MU_AUDIT_OK, NULL,
                  "max_bytes=%llu max_age=%s", (unsigned long long)req->max_bytes,
                  req->max_age[0] ? req->max_age : "-");
  ask_agents(d, call, req->selector, &ir);
}

int mu_images_register(mu_daemon *d, mu_err *err) {
  int rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/ListImages", &muster__v1__list_images_request__descriptor,
                           list_images, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/PruneImages", &muster__v1__prune_images_request__descriptor,
                         prune_images, d, err);
  return rc;
}
