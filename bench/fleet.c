/* bench/fleet: the simulated agents behind fleet_load and fanout. One struct per agent holds
 * its stream, heartbeat timer and event sequence; the fleet owns them all in one array, and
 * counts what happens so the benchmarks can time registration, heartbeats and task fan-out
 * without touching musterd. */
#include "bench/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "muster/v1/agent.pb-c.h"

typedef struct sim_agent {
  mu_fleet *fleet;
  mu_rpc_call *call; /* NULL once its on_done has run */
  uv_timer_t heartbeat;
  uv_timer_t task_timer;        /* task_ms: ends the timed task */
  char *timed_job, *timed_task; /* the timed task's ids (NULL: none runs) */
  uint32_t timed_attempt;
  size_t index;
  int welcomed;
  uint64_t sequence; /* last TaskEvent sequence sent; the next one is sequence + 1 */
  char id[64];
  /* mu_fleet_request_bundle */
  uint64_t bundle_asked_ns, bundle_done_ns;
  uint64_t bundle_next; /* the offset the next chunk must start at */
  int bundle_state;     /* 0 idle, 1 receiving, 2 done, 3 failed */
  /* a plugin deploy (muster-plugin-install task) waiting for its bundle: ids, type, version */
  char *inst_job, *inst_task;
  uint32_t inst_attempt;
  char inst_type[65], inst_version[65];
  char *cert_pem, *key_pem; /* mu_fleet_use_tls; NULL in plaintext */
} sim_agent;

struct mu_fleet {
  mu_rpc_engine *engine;
  char *target;
  char *id_prefix;
  size_t agents_per_channel;
  int64_t heartbeat_interval_ms;
  int64_t task_ms;
  const uint32_t *cpu_mix;
  size_t n_cpu_mix;
  sim_agent *agents; /* n_agents entries */
  size_t n_agents;
  mu_rpc_channel **channels;
  size_t n_channels;
  mu_fleet_stats stats;
  char *ca_pem;      /* mu_fleet_use_tls: the CA trusted; NULL in plaintext */
  char *server_name; /* NULL: the target's host */
  int connected;     /* mu_fleet_connect ran: timers initialised */
  int stopping;
  size_t live_calls;
  size_t open_timers;
  void (*done_cb)(void *ud);
  void *done_ud;
};

/* Packs msg and queues it on the agent's stream; counts refusals. */
static int agent_send(sim_agent *a, const Muster__V1__AgentMessage *msg) {
  uint8_t stack[512];
  size_t len = muster__v1__agent_message__get_packed_size(msg);
  uint8_t *buf = len <= sizeof stack ? stack : malloc(len);
  if (buf == NULL) return MU_ENOMEM;
  muster__v1__agent_message__pack(msg, buf);
  mu_err err = {0};
  int rc = mu_rpc_call_send(a->call, buf, len, &err);
  if (buf != stack) free(buf);
  if (rc != 0) a->fleet->stats.send_errors++;
  return rc;
}

static void send_hello(sim_agent *a) {
  mu_fleet *f = a->fleet;
  char host[96], shard[16];
  snprintf(host, sizeof host, "%s.bench.invalid", a->id);
  snprintf(shard, sizeof shard, "%zu", a->index % 16);
  Muster__V1__Hello__LabelsEntry e[3];
  Muster__V1__Hello__LabelsEntry *ep[3] = {&e[0], &e[1], &e[2]};
  const char *kv[3][2] = {{"role", "sim"}, {"dc", "bench"}, {"shard", shard}};
  for (int i = 0; i < 3; i++) {
    muster__v1__hello__labels_entry__init(&e[i]);
    e[i].key = (char *)kv[i][0];
    e[i].value = (char *)kv[i][1];
  }
  Muster__V1__Capacity cap = MUSTER__V1__CAPACITY__INIT;
  cap.slots = 4;
  if (f->n_cpu_mix > 0) cap.cpu_millis = f->cpu_mix[a->index % f->n_cpu_mix];
  Muster__V1__Hello h = MUSTER__V1__HELLO__INIT;
  h.agent_id = a->id;
  h.hostname = host;
  h.labels = ep;
  h.n_labels = 3;
  h.os = "Linux 6.1.0-bench";
  h.arch = "x86_64";
  h.cpu_count = 2;
  h.memory_bytes = 8ULL << 30;
  h.agent_version = "0.1.0-fleet_load";
  h.capacity = &cap;
  /* Simulated agents run any task as shell does; saying so lets submit check task types. */
  Muster__V1__PluginInfo shell = MUSTER__V1__PLUGIN_INFO__INIT;
  shell.type = "shell";
  shell.version = "sim";
  shell.abi_version = 1;
  Muster__V1__PluginInfo *plugins[1] = {&shell};
  h.plugins = plugins;
  h.n_plugins = 1;
  h.heartbeat_interval_ms = (uint64_t)f->heartbeat_interval_ms;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HELLO;
  msg.hello = &h;
  agent_send(a, &msg);
}

static void on_heartbeat(uv_timer_t *t) {
  sim_agent *a = t->data;
  mu_fleet *f = a->fleet;
  if (a->call == NULL || f->stopping) return;
  Muster__V1__HostMetrics m = MUSTER__V1__HOST_METRICS__INIT;
  m.load1 = 0.25 + (double)(a->index % 7) / 10.0;
  m.load5 = 0.2;
  m.load15 = 0.15;
  m.memory_total_bytes = 8ULL << 30;
  m.memory_available_bytes = (5ULL << 30) + a->index * 4096;
  m.spool_disk_total_bytes = 100ULL << 30;
  m.spool_disk_free_bytes = 60ULL << 30;
  m.agent_rss_bytes = 5ULL << 20;
  Muster__V1__Heartbeat hb = MUSTER__V1__HEARTBEAT__INIT;
  hb.sent_at_ms = mu_now_ms();
  hb.metrics = &m;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
  msg.heartbeat = &hb;
  if (agent_send(a, &msg) == 0) f->stats.heartbeats++;
}

/* One TaskEvent for the assignment; ev carries the event's oneof already set. */
static void send_task_event(sim_agent *a, const Muster__V1__Assign *as, Muster__V1__TaskEvent *ev) {
  ev->job_id = as->job_id;
  ev->task_id = as->task_id;
  ev->attempt = as->attempt;
  ev->sequence = ++a->sequence;
  ev->at_ms = mu_now_ms();
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_EVENT;
  msg.event = ev;
  if (agent_send(a, &msg) == 0) a->fleet->stats.task_events++;
}

static void send_state(sim_agent *a, const Muster__V1__Assign *as, Muster__V1__TaskState state,
                       const Muster__V1__TaskMetrics *metrics) {
  Muster__V1__StateChange sc = MUSTER__V1__STATE_CHANGE__INIT;
  sc.state = state;
  sc.exit_code = 0;
  sc.metrics = (Muster__V1__TaskMetrics *)metrics;
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_STATE;
  ev.state = &sc;
  send_task_event(a, as, &ev);
}

/* The end of a `hostname` run: its output line and SUCCEEDED. */
static void finish_assign(sim_agent *a, const Muster__V1__Assign *as) {
  mu_fleet *f = a->fleet;
  char out[80];
  int n = snprintf(out, sizeof out, "%s\n", a->id);
  Muster__V1__OutputChunk oc = MUSTER__V1__OUTPUT_CHUNK__INIT;
  oc.stream = MUSTER__V1__OUTPUT_CHUNK__STREAM__STDOUT;
  oc.data.data = (uint8_t *)out;
  oc.data.len = (size_t)n;
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_OUTPUT;
  ev.output = &oc;
  send_task_event(a, as, &ev);
  Muster__V1__TaskMetrics m = MUSTER__V1__TASK_METRICS__INIT;
  m.wall_ms = 1;
  m.output_bytes = n;
  send_state(a, as, MUSTER__V1__TASK_STATE__SUCCEEDED, &m);
  f->stats.last_task_done_ns = uv_hrtime();
}

static void on_task_timer(uv_timer_t *t) {
  sim_agent *a = t->data;
  if (a->timed_task == NULL) return;
  Muster__V1__Assign as = MUSTER__V1__ASSIGN__INIT;
  as.job_id = a->timed_job;
  as.task_id = a->timed_task;
  as.attempt = a->timed_attempt;
  if (a->call != NULL && !a->fleet->stopping) finish_assign(a, &as);
  free(a->timed_job);
  free(a->timed_task);
  a->timed_job = a->timed_task = NULL;
}

/* The string value of "key" in a flat JSON object (the deploy task's config), or "". */
static void json_str(const char *json, const char *key, char *out, size_t size) {
  char pat[40];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = json != NULL ? strstr(json, pat) : NULL;
  out[0] = '\0';
  if (p == NULL) return;
  p += strlen(pat);
  const char *end = strchr(p, '"');
  if (end != NULL && (size_t)(end - p) < size) snprintf(out, size, "%.*s", (int)(end - p), p);
}

/* The deploy's bundle arrived: report the new version (PluginsChanged) as muster-agent does
 * once it loaded it, then end the task. */
static void finish_install(sim_agent *a) {
  Muster__V1__PluginInfo shell = MUSTER__V1__PLUGIN_INFO__INIT, dep = MUSTER__V1__PLUGIN_INFO__INIT;
  shell.type = "shell";
  shell.version = "sim";
  shell.abi_version = 1;
  dep.type = a->inst_type;
  dep.version = a->inst_version;
  dep.abi_version = 1;
  Muster__V1__PluginInfo *list[2] = {&shell, &dep};
  Muster__V1__PluginsChanged pc = MUSTER__V1__PLUGINS_CHANGED__INIT;
  pc.plugins = list;
  pc.n_plugins = 2;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_PLUGINS_CHANGED;
  msg.plugins_changed = &pc;
  if (agent_send(a, &msg) == 0) a->fleet->stats.plugins_changed++;
  Muster__V1__Assign as = MUSTER__V1__ASSIGN__INIT;
  as.job_id = a->inst_job;
  as.task_id = a->inst_task;
  as.attempt = a->inst_attempt;
  finish_assign(a, &as);
  free(a->inst_job);
  free(a->inst_task);
  a->inst_job = a->inst_task = NULL;
}

/* A plugin deploy: fetch its bundle like muster-agent, then finish_install. 0 when it took
 * the assign (the task ends later), -1 when it is not a deploy with a bundle. */
static int start_install(sim_agent *a, const Muster__V1__Assign *as) {
  const Muster__V1__TaskSpec *spec = as->spec;
  if (spec == NULL || strcmp(spec->type, "muster-plugin-install") != 0 || as->bundle_digest[0] == '\0' ||
      a->inst_task != NULL || a->bundle_state == 1)
    return -1;
  const char *cfg = spec->kind_case == MUSTER__V1__TASK_SPEC__KIND_PLUGIN ? spec->plugin->config_json : "";
  json_str(cfg, "type", a->inst_type, sizeof a->inst_type);
  json_str(cfg, "version", a->inst_version, sizeof a->inst_version);
  a->inst_job = strdup(as->job_id);
  a->inst_task = strdup(as->task_id);
  a->inst_attempt = as->attempt;
  Muster__V1__BundleRequest br = MUSTER__V1__BUNDLE_REQUEST__INIT;
  br.digest = as->bundle_digest;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_BUNDLE_REQUEST;
  msg.bundle_request = &br;
  a->bundle_state = 1;
  a->bundle_next = 0;
  a->bundle_asked_ns = uv_hrtime();
  if (a->inst_job == NULL || a->inst_task == NULL || agent_send(a, &msg) != 0) {
    a->bundle_state = 3;
    free(a->inst_job);
    free(a->inst_task);
    a->inst_job = a->inst_task = NULL;
    return -1;
  }
  a->fleet->stats.bundle_requests++;
  return 0;
}

/* Plays a whole `hostname` run: at once (the task costs the simulated host nothing, so what
 * fanout measures is the control plane, the wire and the client), or over task_ms. */
static void run_assign(sim_agent *a, const Muster__V1__Assign *as) {
  mu_fleet *f = a->fleet;
  f->stats.assigns++;
  send_state(a, as, MUSTER__V1__TASK_STATE__STARTING, NULL);
  send_state(a, as, MUSTER__V1__TASK_STATE__RUNNING, NULL);
  if (start_install(a, as) == 0) return;
  if (f->task_ms > 0 && a->timed_task == NULL) {
    a->timed_job = strdup(as->job_id);
    a->timed_task = strdup(as->task_id);
    a->timed_attempt = as->attempt;
    if (a->timed_job != NULL && a->timed_task != NULL) {
      uv_timer_start(&a->task_timer, on_task_timer, (uint64_t)f->task_ms, 0);
      return;
    }
    free(a->timed_job);
    free(a->timed_task);
    a->timed_job = a->timed_task = NULL;
  }
  finish_assign(a, as);
}

/* Counts one BundleChunk as muster-agent would receive it (bytes in order, then last). */
static void on_bundle_chunk(sim_agent *a, const Muster__V1__BundleChunk *ch) {
  mu_fleet *f = a->fleet;
  if (a->bundle_state != 1) return;
  f->stats.bundle_bytes += ch->data.len;
  if (ch->error[0] != '\0' || ch->offset != a->bundle_next) {
    a->bundle_state = 3;
    f->stats.bundle_errors++;
    if (f->stats.bundle_error[0] == '\0')
      snprintf(f->stats.bundle_error, sizeof f->stats.bundle_error, "%s: %s", a->id,
               ch->error[0] ? ch->error : "chunk offsets have a gap");
    return;
  }
  a->bundle_next += ch->data.len;
  if (!ch->last) return;
  if (a->bundle_next != ch->total_size) {
    a->bundle_state = 3;
    f->stats.bundle_errors++;
    return;
  }
  a->bundle_state = 2;
  a->bundle_done_ns = uv_hrtime();
  f->stats.bundles_done++;
  f->stats.bundle_last_done_ns = a->bundle_done_ns;
  if (a->inst_task != NULL) finish_install(a);
}

static int on_control(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  sim_agent *a = ud;
  mu_fleet *f = a->fleet;
  (void)call;
  Muster__V1__ControlMessage *msg = muster__v1__control_message__unpack(NULL, len, data);
  if (msg == NULL) return 0; /* not ours to judge: the benchmark only counts */
  if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_WELCOME && !a->welcomed) {
    a->welcomed = 1;
    f->stats.welcomed++;
    if (f->stats.welcomed == f->n_agents) f->stats.all_welcomed_ns = uv_hrtime();
    /* As muster-agent does: the first heartbeat right away, then every interval. */
    uv_timer_start(&a->heartbeat, on_heartbeat, 0, (uint64_t)f->heartbeat_interval_ms);
  } else if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN && !f->stopping) {
    run_assign(a, msg->assign);
  } else if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_ACK) {
    f->stats.acks++;
  } else if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_BUNDLE_CHUNK) {
    on_bundle_chunk(a, msg->bundle_chunk);
  }
  protobuf_c_message_free_unpacked(&msg->base, NULL);
  return 0;
}

static void fleet_maybe_done(mu_fleet *f) {
  if (!f->stopping || f->live_calls > 0 || f->open_timers > 0 || f->done_cb == NULL) return;
  void (*cb)(void *) = f->done_cb;
  f->done_cb = NULL;
  cb(f->done_ud);
}

static void on_stream_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  sim_agent *a = ud;
  mu_fleet *f = a->fleet;
  (void)call;
  a->call = NULL;
  f->live_calls--;
  if (!f->stopping) {
    f->stats.failed++;
    uv_timer_stop(&a->heartbeat);
    if (f->stats.first_error[0] == '\0')
      snprintf(f->stats.first_error, sizeof f->stats.first_error, "%s: %s: %s", a->id, mu_rpc_code_name(st->code),
               st->message);
  }
  fleet_maybe_done(f);
}

int mu_fleet_new(mu_rpc_engine *engine, const mu_fleet_config *cfg, mu_fleet **ret_fleet, mu_err *err) {
  if (cfg->agents == 0 || cfg->agents_per_channel == 0 || cfg->heartbeat_interval_ms <= 0)
    return mu_err_set(err, MU_EINVAL,
                      "fleet: agents (%zu), agents per channel (%zu) and heartbeat interval "
                      "(%lldms) must be positive",
                      cfg->agents, cfg->agents_per_channel, (long long)cfg->heartbeat_interval_ms);
  mu_fleet *f = calloc(1, sizeof *f);
  if (f == NULL) return mu_err_set(err, MU_ENOMEM, "fleet: out of memory");
  f->engine = engine;
  f->n_agents = cfg->agents;
  f->agents_per_channel = cfg->agents_per_channel;
  f->heartbeat_interval_ms = cfg->heartbeat_interval_ms;
  f->task_ms = cfg->task_ms;
  f->cpu_mix = cfg->cpu_mix;
  f->n_cpu_mix = cfg->n_cpu_mix;
  f->n_channels = (cfg->agents + cfg->agents_per_channel - 1) / cfg->agents_per_channel;
  f->target = strdup(cfg->target);
  f->id_prefix = strdup(cfg->id_prefix ? cfg->id_prefix : "sim");
  f->agents = calloc(f->n_agents, sizeof *f->agents);
  f->channels = calloc(f->n_channels, sizeof *f->channels);
  if (!f->target || !f->id_prefix || !f->agents || !f->channels) {
    mu_fleet_free(f);
    return mu_err_set(err, MU_ENOMEM, "fleet: out of memory for %zu agents", cfg->agents);
  }
  for (size_t i = 0; i < f->n_agents; i++) {
    sim_agent *a = &f->agents[i];
    a->fleet = f;
    a->index = i;
    snprintf(a->id, sizeof a->id, "%.40s-%05zu", f->id_prefix, i);
  }
  *ret_fleet = f;
  return 0;
}

/* Drops every certificate issued so far: the fleet is plaintext again. */
static void fleet_drop_tls(mu_fleet *f) {
  for (size_t i = 0; i < f->n_agents; i++) {
    free(f->agents[i].cert_pem);
    free(f->agents[i].key_pem);
    f->agents[i].cert_pem = f->agents[i].key_pem = NULL;
  }
  free(f->ca_pem);
  free(f->server_name);
  f->ca_pem = f->server_name = NULL;
}

int mu_fleet_use_tls(mu_fleet *f, mu_pki_ca *ca, const char *ca_cert_pem, const char *server_name, mu_err *err) {
  if (f->connected || f->ca_pem != NULL) return mu_err_set(err, MU_EINVAL, "fleet: TLS is set once, before connecting");
  mu_rpc_channel **channels = calloc(f->n_agents, sizeof *channels);
  f->ca_pem = strdup(ca_cert_pem);
  f->server_name = server_name ? strdup(server_name) : NULL;
  if (channels == NULL || f->ca_pem == NULL || (server_name && f->server_name == NULL)) {
    free(channels);
    fleet_drop_tls(f);
    return mu_err_set(err, MU_ENOMEM, "fleet: out of memory for %zu TLS channels", f->n_agents);
  }
  uint64_t t0 = uv_hrtime();
  for (size_t i = 0; i < f->n_agents; i++) {
    sim_agent *a = &f->agents[i];
    mu_pki_issue_opts o = {.kind = "agent", .name = a->id};
    int rc = mu_pki_issue_ca(ca, &o, &a->cert_pem, &a->key_pem, err);
    if (rc != 0) {
      free(channels);
      fleet_drop_tls(f);
      return mu_err_prefix(err, "fleet: certificate for %s", a->id);
    }
  }
  f->stats.cert_issue_ns = uv_hrtime() - t0;
  f->stats.certs = f->n_agents;
  free(f->channels);
  f->channels = channels;
  f->n_channels = f->n_agents;
  f->agents_per_channel = 1;
  return 0;
}

int mu_fleet_connect(mu_fleet *f, mu_err *err) {
  uv_loop_t *loop = mu_rpc_engine_loop(f->engine);
  for (size_t i = 0; i < f->n_agents; i++) {
    uv_timer_init(loop, &f->agents[i].heartbeat);
    f->agents[i].heartbeat.data = &f->agents[i];
    uv_timer_init(loop, &f->agents[i].task_timer);
    f->agents[i].task_timer.data = &f->agents[i];
    f->open_timers += 2;
  }
  f->connected = 1;
  for (size_t c = 0; c < f->n_channels; c++) {
    /* gRPC core shares one connection (subchannel) between channels whose target and args
     * are equal. A per-channel max_message (16 MiB + c bytes) makes each channel's args
     * distinct, so each channel gets its own HTTP/2 connection, as separate hosts would. */
    mu_rpc_options opts = {.max_message = (16u << 20) + c, .keepalive_ms = 10000};
    const sim_agent *a = &f->agents[c * f->agents_per_channel];
    mu_rpc_creds creds = {
        .tls = 1, .ca_pem = f->ca_pem, .cert_pem = a->cert_pem, .key_pem = a->key_pem, .server_name = f->server_name};
    int rc = mu_rpc_channel_new(f->engine, f->target, f->ca_pem ? &creds : NULL, &opts, &f->channels[c], err);
    if (rc != 0) return rc;
    f->stats.channels++;
  }
  mu_rpc_call_handlers h = {.on_message = on_control, .on_done = on_stream_done};
  f->stats.start_ns = uv_hrtime();
  for (size_t i = 0; i < f->n_agents; i++) {
    sim_agent *a = &f->agents[i];
    mu_rpc_channel *ch = f->channels[i / f->agents_per_channel];
    int rc = mu_rpc_call_new(ch, "/muster.v1.AgentGateway/Connect", 0, NULL, &h, a, &a->call, err);
    if (rc != 0) return mu_err_prefix(err, "agent %s", a->id);
    f->live_calls++;
    f->stats.opened++;
    send_hello(a);
  }
  return 0;
}

int mu_fleet_request_bundle(mu_fleet *f, const char *digest, mu_err *err) {
  if (digest == NULL || digest[0] == '\0') return mu_err_set(err, MU_EINVAL, "fleet: empty bundle digest");
  Muster__V1__BundleRequest br = MUSTER__V1__BUNDLE_REQUEST__INIT;
  br.digest = (char *)digest;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_BUNDLE_REQUEST;
  msg.bundle_request = &br;
  size_t asked = 0;
  f->stats.bundle_first_request_ns = uv_hrtime();
  for (size_t i = 0; i < f->n_agents; i++) {
    sim_agent *a = &f->agents[i];
    if (a->call == NULL || !a->welcomed) continue;
    a->bundle_state = 1;
    a->bundle_next = 0;
    a->bundle_done_ns = 0;
    a->bundle_asked_ns = uv_hrtime();
    if (agent_send(a, &msg) != 0) {
      a->bundle_state = 3;
      continue;
    }
    f->stats.bundle_requests++;
    asked++;
  }
  if (asked == 0) return mu_err_set(err, MU_EAGAIN, "fleet: no welcomed agent to ask for %s", digest);
  return 0;
}

uint64_t mu_fleet_bundle_time_ns(const mu_fleet *f, size_t i) {
  if (i >= f->n_agents || f->agents[i].bundle_state != 2) return 0;
  return f->agents[i].bundle_done_ns - f->agents[i].bundle_asked_ns;
}

const mu_fleet_stats *mu_fleet_stats_get(const mu_fleet *f) { return &f->stats; }

static void on_timer_closed(uv_handle_t *h) {
  sim_agent *a = h->data;
  mu_fleet *f = a->fleet;
  f->open_timers--;
  fleet_maybe_done(f);
}

void mu_fleet_stop(mu_fleet *f, void (*done_cb)(void *ud), void *ud) {
  f->stopping = 1;
  f->done_cb = done_cb;
  f->done_ud = ud;
  if (f->connected) {
    for (size_t i = 0; i < f->n_agents; i++) {
      uv_close((uv_handle_t *)&f->agents[i].heartbeat, on_timer_closed);
      uv_close((uv_handle_t *)&f->agents[i].task_timer, on_timer_closed);
    }
  }
  /* Closing a channel cancels its calls; their on_done runs later, from the engine. */
  for (size_t c = 0; c < f->n_channels; c++) {
    if (f->channels[c] != NULL) mu_rpc_channel_close(f->channels[c]);
    f->channels[c] = NULL;
  }
  fleet_maybe_done(f);
}

void mu_fleet_free(mu_fleet *f) {
  if (f == NULL) return;
  if (f->agents != NULL) fleet_drop_tls(f);
  for (size_t i = 0; f->agents != NULL && i < f->n_agents; i++) {
    free(f->agents[i].timed_job);
    free(f->agents[i].timed_task);
    free(f->agents[i].inst_job);
    free(f->agents[i].inst_task);
  }
  free(f->agents);
  free(f->channels);
  free(f->target);
  free(f->id_prefix);
  free(f);
}
