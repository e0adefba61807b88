/* The agent gateway: one muster.v1.AgentGateway/Connect stream per agent. The first message
 * must be a valid Hello; then heartbeats keep the agent's metrics fresh. A malformed message
 * closes that one stream with INVALID_ARGUMENT. With TLS the agent id is its certificate's: a
 * Hello claiming another id is refused (PERMISSION_DENIED, audited) and a new stream from the
 * same certificate replaces the old one; without TLS a second stream for a connected id is
 * refused with ALREADY_EXISTS. Silence past the heartbeat timeout disconnects the agent.
 * What agents do is published as agent events (events.h: up, down, heartbeat, task events,
 * log replies, bundle requests); the scheduler, persist.c, task logs and bundles listen. */
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/gateway.h"

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/events.h"
#include "controlplane/hello.h"
#include "controlplane/persist.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"

struct mu_agent_session {
  mu_daemon *daemon;
  mu_rpc_call *call;
  mu_agent *agent;      /* set once Hello is accepted */
  char *close_reason;   /* why we ended the stream, if we did */
  char session_id[160]; /* the registry's a->session_id, sent in Welcome */
};

static void session_close(mu_agent_session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void session_close(mu_agent_session *s, int code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (s->close_reason == NULL) s->close_reason = strdup(msg);
  mu_rpc_call_finish(s->call, code, msg, NULL);
}

static void send_welcome(mu_agent_session *s) {
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__Welcome w = MUSTER__V1__WELCOME__INIT;
  w.session_id = s->session_id;
  w.leader_term = s->daemon->cluster->term;
  w.heartbeat_timeout_ms = (uint64_t)s->daemon->cfg.heartbeat_timeout_ms;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_WELCOME;
  msg.welcome = &w;
  mu_err err = {0};
  if (mu_pb_send(s->call, &msg.base, &err) != 0) mu_warn("gateway", "welcome to %s: %s", s->agent->id, err.msg);
}

int mu_gateway_send(mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err) {
  if (agent->session == NULL) return mu_err_set(err, MU_EAGAIN, "agent %s is not connected", agent->id);
  return mu_pb_send(agent->session->call, &msg->base, err);
}

void mu_gateway_send_drain(mu_agent *agent) {
  if (agent->session == NULL) return;
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__Drain dr = MUSTER__V1__DRAIN__INIT;
  dr.drain = agent->draining;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_DRAIN;
  msg.drain = &dr;
  mu_err err = {0};
  if (mu_gateway_send(agent, &msg, &err) != 0)
    mu_warn("gateway", "drain notice to %s not sent: %s", agent->id, err.msg);
}

size_t mu_gateway_queued_bytes(const mu_agent *agent) {
  return agent->session == NULL ? SIZE_MAX : mu_rpc_call_queued_bytes(agent->session->call);
}

/* msg passed mu_agent_message_check (hello.h) as a stream's first message. */
static void on_hello(mu_agent_session *s, Muster__V1__AgentMessage *msg) {
  mu_daemon *d = s->daemon;
  const char *id = msg->hello->agent_id;
  const mu_caller *caller = mu_authz_caller(s->call);
  int proven = caller != NULL && caller->kind == MU_CALLER_AGENT;
  if (proven && strcmp(caller->name, id) != 0) {
    mu_audit_record(d, s->call, "agent.impersonation", id, MU_AUDIT_DENIED, "the agent certificate names another agent",
                    "certificate=%s", caller->name);
    session_close(s, MU_RPC_PERMISSION_DENIED, "this agent certificate is for '%s'; its Hello claims to be '%s'",
                  caller->name, id);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    return;
  }
  mu_agent *a = mu_registry_find(&d->registry, id);
  if (a != NULL && a->session != NULL && proven) {
    /* The same proven agent again (it restarted, or its old stream is half dead): the new
     * stream wins, so nobody can lock the real agent out. */
    mu_agent_session *old = a->session;
    const char *why = "replaced by a new stream from the same agent certificate";
    mu_info("gateway", "agent %s: %s (old stream from %s)", id, why, a->peer ? a->peer : "?");
    mu_registry_set_disconnected(&d->registry, a, why);
    old->agent = NULL;
    mu_events_agent_down(&d->events, a, 0);
    if (old->close_reason == NULL) old->close_reason = strdup(why);
    mu_rpc_call_cancel(old->call, MU_RPC_UNAVAILABLE, why);
  }
  if (a != NULL && a->session != NULL) {
    session_close(s, MU_RPC_ALREADY_EXISTS, "agent '%s' is already connected (stream from %s); refusing a second one",
                  id, a->peer ? a->peer : "?");
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    return;
  }
  mu_err err = {0};
  if (a == NULL && mu_registry_upsert(&d->registry, id, &a, &err) != 0) {
    session_close(s, MU_RPC_RESOURCE_EXHAUSTED, "%s", err.msg);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    return;
  }
  char *peer = mu_rpc_call_peer(s->call);
  mu_registry_set_connected(&d->registry, a, msg, peer, s, mu_now_ms(), mu_mono_ms());
  free(peer);
  s->agent = a;
  snprintf(s->session_id, sizeof s->session_id, "%s", a->session_id); /* = presence record's */
  mu_info("gateway", "agent %s connected from %s (%zu labels, %zu plugins)", a->id, a->peer, msg->hello->n_labels,
          msg->hello->n_plugins);
  send_welcome(s);
  if (a->draining) mu_gateway_send_drain(a);
  mu_events_agent_up(&d->events, a);
}

/* A deploy or rollback changed the agent's plugin versions: its list takes the place of the
 * one in the kept Hello (both unpacked with the default allocator, so the arrays move over). */
static void plugins_changed(mu_daemon *d, mu_agent *a, Muster__V1__PluginsChanged *pc) {
  Muster__V1__Hello *h = a->hello_msg != NULL ? a->hello_msg->hello : NULL;
  if (h == NULL) return;
  for (size_t i = 0; i < h->n_plugins; i++) protobuf_c_message_free_unpacked(&h->plugins[i]->base, NULL);
  free(h->plugins);
  h->plugins = pc->plugins;
  h->n_plugins = pc->n_plugins;
  pc->plugins = NULL;
  pc->n_plugins = 0;
  char list[512] = "";
  size_t off = 0;
  for (size_t i = 0; i < h->n_plugins && off < sizeof list; i++)
    off += (size_t)snprintf(list + off, sizeof list - off, "%s%s %s", i ? ", " : "", h->plugins[i]->type,
                            h->plugins[i]->version);
  mu_info("gateway", "agent %s: plugins now %s", a->id, list);
  mu_persist_agent(d, a); /* followers and a restarted leader see the new versions */
}

static int on_agent_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  mu_agent_session *s = ud;
  (void)call;
  if (s->close_reason != NULL) return 1; /* we are ending this stream */
  Muster__V1__AgentMessage *msg = muster__v1__agent_message__unpack(NULL, len, data);
  if (msg == NULL) {
    session_close(s, MU_RPC_INVALID_ARGUMENT, "malformed AgentMessage (%zu bytes): cannot decode; closing this stream",
                  len);
    return 1;
  }
  mu_err bad = {0};
  if (mu_agent_message_check(msg, s->agent != NULL, &bad) != 0) { /* hello.h */
    session_close(s, MU_RPC_INVALID_ARGUMENT, "%s", bad.msg);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    return 1;
  }
  if (s->agent == NULL) {
    on_hello(s, msg); /* takes msg */
    return s->agent == NULL;
  }
  mu_agent *a = s->agent;
  a->last_seen_mono_ms = mu_mono_ms();
  switch (msg->msg_case) {
    case MUSTER__V1__AGENT_MESSAGE__MSG_HEARTBEAT: /* with metrics (checked above) */
      if (a->heartbeat_msg) protobuf_c_message_free_unpacked(&a->heartbeat_msg->base, NULL);
      a->heartbeat_msg = msg;
      a->last_heartbeat_ms = mu_now_ms();
      mu_events_agent_heartbeat(&s->daemon->events, a, msg->heartbeat);
      return 0;
    case MUSTER__V1__AGENT_MESSAGE__MSG_EVENT:
      mu_audit_task_start(s->daemon, a, s->call, msg->event);
      mu_events_agent_task_event(&s->daemon->events, a, msg->event);
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 0;
    case MUSTER__V1__AGENT_MESSAGE__MSG_BUNDLE_REQUEST:
      mu_events_agent_bundle_request(&s->daemon->events, a, msg->bundle_request);
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 0;
    case MUSTER__V1__AGENT_MESSAGE__MSG_LOG_REPLY:
      mu_events_agent_log_reply(&s->daemon->events, a, msg->log_reply);
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 0;
    case MUSTER__V1__AGENT_MESSAGE__MSG_IMAGES_REPLY:
      mu_images_on_reply(s->daemon, a, msg->images_reply);
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 0;
    case MUSTER__V1__AGENT_MESSAGE__MSG_PLUGINS_CHANGED:
      plugins_changed(s->daemon, a, msg->plugins_changed);
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 0;
    default:
      mu_debug("gateway", "agent %s: message %d ignored", a->id, (int)msg->msg_case);
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 0;
  }
}

static void on_agent_read_end(mu_rpc_call *call, void *ud) {
  mu_agent_session *s = ud;
  (void)call;
  session_close(s, MU_RPC_OK, "agent closed its stream");
}

static void on_agent_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  mu_agent_session *s = ud;
  (void)call;
  if (s->agent != NULL && s->agent->session == s) {
    char reason[700];
    if (s->close_reason != NULL) snprintf(reason, sizeof reason, "%s", s->close_reason);
    else snprintf(reason, sizeof reason, "stream ended: %s %s", mu_rpc_code_name(st->code), st->message);
    mu_registry_set_disconnected(&s->daemon->registry, s->agent, reason);
    mu_info("gateway", "agent %s disconnected: %s", s->agent->id, reason);
    mu_events_agent_down(&s->daemon->events, s->agent, s->daemon->stopping);
  }
  free(s->close_reason);
  free(s);
}

static void on_connect(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  mu_daemon *d = ud;
  mu_agent_session *s = calloc(1, sizeof *s);
  if (s == NULL) {
    mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  s->daemon = d;
  s->call = call;
  mu_rpc_call_handlers h = {.on_message = on_agent_message, .on_read_end = on_agent_read_end, .on_done = on_agent_done};
  mu_rpc_call_start(call, &h, s);
  if (!mu_cluster_leading(d)) {
    if (d->cluster->role == MU_ROLE_LEADER) {
      session_close(s, MU_RPC_UNAVAILABLE, "the leader is loading its state; retry shortly");
      return;
    }
    Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
    Muster__V1__NotLeader nl = MUSTER__V1__NOT_LEADER__INIT;
    nl.leader_address = d->cluster->leader_address;
    msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_NOT_LEADER;
    msg.not_leader = &nl;
    mu_pb_send(call, &msg.base, NULL);
    session_close(s, MU_RPC_OK, "not the leader; the leader is '%s'", d->cluster->leader_address);
  }
}

void mu_gateway_end_all(mu_daemon *d, const char *leader_address, const char *reason) {
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    mu_agent_session *s = a->session;
    if (s == NULL) continue;
    mu_registry_set_disconnected(&d->registry, a, reason);
    s->agent = NULL; /* its end no longer concerns the registry */
    if (leader_address != NULL) {
      Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
      Muster__V1__NotLeader nl = MUSTER__V1__NOT_LEADER__INIT;
      nl.leader_address = (char *)leader_address;
      msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_NOT_LEADER;
      msg.not_leader = &nl;
      mu_pb_send(s->call, &msg.base, NULL);
      session_close(s, MU_RPC_OK, "not the leader any more; the leader is '%s'", leader_address);
    } else {
      if (s->close_reason == NULL) s->close_reason = strdup(reason);
      mu_rpc_call_cancel(s->call, MU_RPC_UNAVAILABLE, reason);
    }
  }
}

void mu_gateway_disconnect(mu_daemon *d, mu_agent *a, const char *reason) {
  mu_agent_session *s = a->session;
  if (s == NULL) return;
  mu_warn("gateway", "agent %s: %s", a->id, reason);
  mu_registry_set_disconnected(&d->registry, a, reason);
  s->agent = NULL; /* its end no longer concerns the registry */
  mu_events_agent_down(&d->events, a, 0);
  if (s->close_reason == NULL) s->close_reason = strdup(reason);
  mu_rpc_call_cancel(s->call, MU_RPC_UNAVAILABLE, reason);
}

void mu_gateway_sweep(mu_daemon *d) {
  int64_t now = mu_mono_ms();
  int64_t timeout = d->cfg.heartbeat_timeout_ms;
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    if (a->session == NULL || now - a->last_seen_mono_ms <= timeout) continue;
    char reason[200];
    snprintf(reason, sizeof reason, "no heartbeat for %.1fs (timeout %.1fs)",
             (double)(now - a->last_seen_mono_ms) / 1000.0, (double)timeout / 1000.0);
    mu_gateway_disconnect(d, a, reason);
  }
}

int mu_gateway_register(mu_daemon *d, mu_err *err) {
  return mu_rpc_server_add_method(d->server, "/muster.v1.AgentGateway/Connect", on_connect, d, err);
}

static void on_sweep(uv_timer_t *t) { mu_gateway_sweep(t->data); }

void mu_gateway_start(mu_daemon *d) {
  mu_gateway *g = d->gateway;
  uv_timer_init(d->loop, &g->sweep_timer);
  g->sweep_timer.data = d;
  g->started = 1;
  int64_t every = d->cfg.heartbeat_timeout_ms / 4;
  if (every < 100) every = 100;
  if (every > 1000) every = 1000;
  uv_timer_start(&g->sweep_timer, on_sweep, (uint64_t)every, (uint64_t)every);
}

void mu_gateway_stop(mu_daemon *d) {
  mu_gateway *g = d->gateway;
  if (!g->started) return;
  g->started = 0;
  uv_timer_stop(&g->sweep_timer);
  uv_close((uv_handle_t *)&g->sweep_timer, NULL);
}

/* --- cluster events (events.h) --- */

void mu_gateway_on_elected(mu_daemon *d) {
  mu_gateway_end_all(d, NULL, "the control plane was elected again; reconnect");
}

void mu_gateway_on_deposed(mu_daemon *d, const char *reason, const char *redirect_to) {
  if (redirect_to != NULL) mu_gateway_end_all(d, redirect_to, reason);
}

void mu_gateway_on_leader_elsewhere(mu_daemon *d, const char *address) {
  mu_gateway_end_all(d, address, "another member leads");
}
