/* The agent's connection to the control plane: one AgentGateway/Connect stream. Sends Hello,
 * waits for Welcome, then heartbeats with host metrics (gathered off the loop). When the
 * stream ends it reconnects with exponential backoff and jitter, trying the configured
 * addresses in turn and a leader address from NotLeader first (at once, for a few redirects
 * in a row; then with the backoff). For cfg.reconnect_fast_ms after a working stream drops
 * it retries every 250-500 ms instead of backing off: a failover takes a lease TTL, and an
 * agent that had backed off to seconds meanwhile would find the new leader seconds late. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/plugin_config.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"

#define MU_CONN_BACKOFF_MIN_MS 200
#define MU_CONN_FAST_MIN_MS 250 /* retry delay in the fast window: 250..500 ms */

static void conn_connect(mu_conn *conn);

static uint32_t conn_rand(mu_conn *conn) {
  /* xorshift32: jitter only, not security */
  uint32_t x = conn->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  conn->rng = x;
  return x;
}

int mu_conn_send(mu_conn *conn, const Muster__V1__AgentMessage *msg, mu_err *err) {
  if (conn->call == NULL || (!conn->welcomed && msg->msg_case != MUSTER__V1__AGENT_MESSAGE__MSG_HELLO))
    return mu_err_set(err, MU_EAGAIN, "no stream to the control plane");
  return mu_pb_send(conn->call, &msg->base, err);
}

/* Hello and heartbeats: a queue so full that a heartbeat cannot go means the stream is stuck;
 * it is ended and the agent reconnects. */
static int conn_send(mu_conn *conn, const Muster__V1__AgentMessage *msg) {
  mu_err err = {0};
  int rc = mu_conn_send(conn, msg, &err);
  if (rc != 0) {
    mu_warn("conn", "send to %s: %s", conn->target, err.msg);
    if (rc == MU_ENOSPC) mu_rpc_call_cancel(conn->call, MU_RPC_CANCELLED, err.msg);
  }
  return rc;
}

/* --- heartbeats: metrics are gathered on the thread pool (statvfs may block) --- */

static void metrics_work(uv_work_t *req) {
  mu_conn *conn = req->data;
  mu_err err = {0};
  conn->metrics_rc = mu_host_metrics_get(conn->agent->cfg.spool_dir, &conn->metrics, &err);
  if (conn->metrics_rc != 0) {
    /* A missing spool dir should not stop heartbeats: report what we have. */
    mu_host_metrics_get(NULL, &conn->metrics, NULL);
  }
}

static void metrics_done(uv_work_t *req, int status) {
  mu_conn *conn = req->data;
  conn->metrics_busy = 0;
  if (status != 0 || conn->call == NULL || !conn->welcomed || conn->closing) return;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  Muster__V1__Heartbeat hb = MUSTER__V1__HEARTBEAT__INIT;
  Muster__V1__HostMetrics m = MUSTER__V1__HOST_METRICS__INIT;
  m.load1 = conn->metrics.load1;
  m.load5 = conn->metrics.load5;
  m.load15 = conn->metrics.load15;
  m.memory_total_bytes = conn->agent->facts.memory_bytes;
  m.memory_available_bytes = conn->metrics.memory_available_bytes;
  m.spool_disk_total_bytes = conn->metrics.disk_total_bytes;
  m.spool_disk_free_bytes = conn->metrics.disk_free_bytes;
  m.agent_rss_bytes = conn->metrics.rss_bytes;
  m.running_tasks = conn->agent->runner ? mu_runner_running_count(conn->agent->runner) : 0;
  hb.sent_at_ms = mu_now_ms();
  hb.metrics = &m;
  void *health = NULL; /* SDK v2: the plugins' health, for doctor */
  mu_err herr = {0};
  if (conn->agent->plugins != NULL) mu_agent_plugin_health_fill(conn->agent, &hb, &health, &herr);
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
  msg.heartbeat = &hb;
  conn_send(conn, &msg);
  free(health);
}

static void on_heartbeat_timer(uv_timer_t *t) {
  mu_conn *conn = t->data;
  if (conn->metrics_busy || conn->call == NULL) return;
  conn->metrics_busy = 1;
  conn->metrics_work.data = conn;
  if (uv_queue_work(conn->agent->loop, &conn->metrics_work, metrics_work, metrics_done) != 0) conn->metrics_busy = 0;
}

/* --- the stream --- */

static void on_reconnect_timer(uv_timer_t *t) { conn_connect(t->data); }

static void conn_schedule(mu_conn *conn, int64_t delay_ms) {
  if (conn->closing) return;
  uv_timer_start(&conn->reconnect_timer, on_reconnect_timer, (uint64_t)delay_ms, 0);
}

static int on_control_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  mu_conn *conn = ud;
  Muster__V1__ControlMessage *msg = muster__v1__control_message__unpack(NULL, len, data);
  if (msg == NULL) {
    mu_warn("conn", "malformed ControlMessage (%zu bytes) from %s; reconnecting", len, conn->target);
    mu_rpc_call_cancel(call, MU_RPC_INVALID_ARGUMENT, "malformed ControlMessage");
    return 1;
  }
  switch (msg->msg_case) {
    case MUSTER__V1__CONTROL_MESSAGE__MSG_WELCOME:
      conn->welcomed = 1;
      conn->attempts = 0;
      conn->redirect_hops = 0;
      conn->backoff_ms = MU_CONN_BACKOFF_MIN_MS;
      mu_info("conn", "connected to %s (session %s)", conn->target, msg->welcome->session_id);
      uv_timer_start(&conn->heartbeat_timer, on_heartbeat_timer, 0, (uint64_t)conn->agent->cfg.heartbeat_interval_ms);
      mu_tasks_on_welcome(conn->agent);
      break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN: mu_tasks_on_assign(conn->agent, msg->assign); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_CANCEL: mu_tasks_on_cancel(conn->agent, msg->cancel); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_TASK_ACTION: mu_tasks_on_action(conn->agent, msg->task_action); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_BUNDLE_CHUNK:
      mu_agent_bundles_on_chunk(conn->agent, msg->bundle_chunk);
      break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_ACK: mu_tasks_on_ack(conn->agent, msg->ack->sequence); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_NOT_LEADER:
      mu_info("conn", "%s is not the leader; leader is '%s'", conn->target, msg->not_leader->leader_address);
      if (strcmp(msg->not_leader->leader_address, conn->redirect_named) != 0 &&
          mu_mono_ms() - conn->redirect_news_mono > 1000) {
        conn->redirect_news_mono = mu_mono_ms();
        /* news: a leader we have not been sent to yet (a failover ended); go there at once */
        snprintf(conn->redirect_named, sizeof conn->redirect_named, "%s", msg->not_leader->leader_address);
        conn->redirect_hops = 0;
      }
      /* a member still naming the leader that just refused us (its lease has not expired):
       * try the next configured address instead */
      if (strcmp(msg->not_leader->leader_address, conn->refused) != 0 || mu_mono_ms() - conn->refused_at_mono > 2000)
        snprintf(conn->redirect, sizeof conn->redirect, "%s", msg->not_leader->leader_address);
      /* a live member answered: no reason to back off far (a failover is under way) */
      conn->backoff_ms = MU_CONN_BACKOFF_MIN_MS;
      mu_rpc_call_cancel(call, MU_RPC_CANCELLED, "redirected to the leader");
      protobuf_c_message_free_unpacked(&msg->base, NULL);
      return 1;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_LOG_REQUEST: mu_logs_on_request(conn->agent, msg->log_request); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_IMAGE_POLICY: mu_image_policy_on_push(conn->agent, msg->image_policy); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_PLUGIN_CONFIG: {
      mu_err pe = {0};
      const Muster__V1__PluginConfigPush *pc = msg->plugin_config;
      if (mu_agent_plugin_config_push(conn->agent, pc->type, pc->config_json, &pe) != 0)
        mu_warn("conn", "central config for plugin '%s' not applied: %s", pc->type, pe.msg);
      break;
    }
    case MUSTER__V1__CONTROL_MESSAGE__MSG_IMAGES_REQUEST: mu_images_on_request(conn->agent, msg->images_request); break;
    case MUSTER__V1__CONTROL_MESSAGE__MSG_DRAIN:
      /* The control plane stops sending new work; what runs here finishes. Nothing to change
       * on this side but the operator's view in the log. */
      mu_info(
          "conn", "%s",
          msg->drain->drain ? "draining: the control plane starts no new tasks here" : "undrained: taking tasks again");
      break;
    default: mu_debug("conn", "control message %d not handled", (int)msg->msg_case); break;
  }
  protobuf_c_message_free_unpacked(&msg->base, NULL);
  return 0;
}

static void on_stream_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  mu_conn *conn = ud;
  (void)call;
  conn->call = NULL;
  uv_timer_stop(&conn->heartbeat_timer);
  mu_logs_on_stream_end(conn->agent);
  if (conn->closing) return;
  int64_t delay;
  if (!conn->welcomed && st->code == MU_RPC_UNAVAILABLE) {
    snprintf(conn->refused, sizeof conn->refused, "%s", conn->target);
    conn->refused_at_mono = mu_mono_ms();
  }
  if (conn->redirect[0] != '\0' && conn->redirect_hops < 3) {
    /* follow a redirect at once, but not forever: members that disagree on who leads (an
     * election in progress) would bounce us back and forth */
    conn->redirect_hops++;
    conn->attempts++;
    delay = 0;
  } else if (conn->welcomed ||
             (conn->lost_at_mono > 0 && mu_mono_ms() - conn->lost_at_mono < conn->agent->cfg.reconnect_fast_ms)) {
    /* A stream that worked and dropped: retry soon and often, the control plane may be
     * restarting or failing over; jitter spreads a whole fleet's retries. */
    if (conn->welcomed) {
      conn->lost_at_mono = mu_mono_ms();
      conn->attempts = 0;
    }
    conn->backoff_ms = MU_CONN_BACKOFF_MIN_MS;
    conn->attempts++;
    delay = MU_CONN_FAST_MIN_MS + (int64_t)(conn_rand(conn) % (MU_CONN_FAST_MIN_MS + 1));
  } else {
    conn->attempts++;
    delay = conn->backoff_ms / 2 + (int64_t)(conn_rand(conn) % (uint32_t)(conn->backoff_ms / 2 + 1));
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > conn->agent->cfg.reconnect_max_ms) conn->backoff_ms = conn->agent->cfg.reconnect_max_ms;
  }
  mu_log(conn->welcomed ? MU_LOG_WARN : MU_LOG_INFO, "conn", "stream to %s ended: %s: %s; reconnecting in %lldms",
         conn->target, mu_rpc_code_name(st->code), st->message, (long long)delay);
  conn->welcomed = 0;
  conn_schedule(conn, delay);
}

static void conn_connect(mu_conn *conn) {
  mu_agent_daemon *agent = conn->agent;
  char target[300];
  if (conn->closing) return;
  if (conn->redirect[0] != '\0') {
    snprintf(target, sizeof target, "%s", conn->redirect);
    conn->redirect[0] = '\0';
  } else {
    size_t n = agent->cfg.control.n;
    snprintf(target, sizeof target, "%s", agent->cfg.control.items[conn->next_addr % n]);
    conn->next_addr = (conn->next_addr + 1) % n;
  }
  mu_err err = {0};
  if (conn->channel == NULL || strcmp(target, conn->target) != 0) {
    if (conn->channel != NULL) mu_rpc_channel_close(conn->channel);
    conn->channel = NULL;
    mu_rpc_options opts = {.max_message = agent->cfg.max_message, .keepalive_ms = 10000};
    /* the files are read anew for every channel: a renewed certificate is used on the next
     * connection */
    const mu_agent_config *cfg = &agent->cfg;
    mu_rpc_creds creds = {.tls = !cfg->insecure,
                          .ca_file = cfg->tls_ca,
                          .cert_file = cfg->tls_cert,
                          .key_file = cfg->tls_key,
                          .server_name = cfg->tls_server_name[0] ? cfg->tls_server_name : NULL};
    if (mu_rpc_channel_new(agent->engine, target, &creds, &opts, &conn->channel, &err) != 0) {
      mu_error("conn", "%s", err.msg);
      conn_schedule(conn, agent->cfg.reconnect_max_ms);
      return;
    }
    snprintf(conn->target, sizeof conn->target, "%s", target);
  }
  mu_rpc_call_handlers h = {.on_message = on_control_message, .on_done = on_stream_done};
  if (mu_rpc_call_new(conn->channel, "/muster.v1.AgentGateway/Connect", 0, NULL, &h, conn, &conn->call, &err) != 0) {
    mu_error("conn", "%s", err.msg);
    conn_schedule(conn, conn->backoff_ms);
    return;
  }
  Muster__V1__Hello *hello = mu_hello_build(agent);
  if (hello == NULL) {
    mu_rpc_call_cancel(conn->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory building Hello");
    return;
  }
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HELLO;
  msg.hello = hello;
  conn_send(conn, &msg);
  mu_hello_free(hello);
}

void mu_conn_init(mu_conn *conn, mu_agent_daemon *agent) {
  memset(conn, 0, sizeof *conn);
  conn->agent = agent;
  conn->backoff_ms = MU_CONN_BACKOFF_MIN_MS;
  conn->rng = (uint32_t)uv_hrtime() | 1u;
  uv_timer_init(agent->loop, &conn->heartbeat_timer);
  uv_timer_init(agent->loop, &conn->reconnect_timer);
  conn->heartbeat_timer.data = conn;
  conn->reconnect_timer.data = conn;
}

void mu_conn_start(mu_conn *conn) { conn_schedule(conn, 0); }

void mu_conn_stop(mu_conn *conn) {
  conn->closing = 1;
  uv_timer_stop(&conn->heartbeat_timer);
  uv_timer_stop(&conn->reconnect_timer);
  uv_close((uv_handle_t *)&conn->heartbeat_timer, NULL);
  uv_close((uv_handle_t *)&conn->reconnect_timer, NULL);
  if (conn->call != NULL) mu_rpc_call_cancel(conn->call, MU_RPC_CANCELLED, "agent stopping");
}
