/* The one daemon context of muster-agent: configuration, host facts, the rpc engine and the
 * connection to the control plane. Owned by main. */
#ifndef MU_AGENT_H
#define MU_AGENT_H

#include <uv.h>

#include "agent/bundles.h"
#include "agent/exec/journal.h"
#include "agent/exec/plugin_host.h"
#include "agent/exec/runner.h"
#include "agent/output_spool.h"
#include "lib/config/agent_config.h"
#include "lib/host/hostinfo.h"
#include "lib/metrics/httpd.h"
#include "lib/rpc/rpc.h"
#include "muster/v1/agent.pb-c.h"

#define MU_AGENT_VERSION "0.1.0"

typedef struct mu_agent_daemon mu_agent_daemon;

/* The control-plane connection: one Connect stream, reconnecting with exponential backoff
 * and jitter, following NotLeader redirects, heartbeating once welcomed. */
typedef struct mu_conn {
  mu_agent_daemon *agent;
  mu_rpc_channel *channel;
  char target[300];           /* address of channel */
  char redirect[300];         /* leader address from NotLeader, tried next */
  char redirect_named[300];   /* the leader the previous NotLeader named */
  uint32_t redirect_hops;     /* redirects followed at once since the named leader changed */
  int64_t redirect_news_mono; /* when the named leader last changed (at most once a second) */
  char refused[300];          /* the last address that refused connections ... */
  int64_t refused_at_mono;    /* ... and when */
  size_t next_addr;           /* index into cfg.control for the next attempt */
  mu_rpc_call *call;          /* the live stream, NULL between attempts */
  int welcomed;
  int64_t backoff_ms;   /* next reconnect delay before jitter */
  uint32_t attempts;    /* consecutive failed attempts */
  int64_t lost_at_mono; /* when the last welcomed stream dropped; 0 = never welcomed */
  uv_timer_t heartbeat_timer;
  uv_timer_t reconnect_timer;
  uv_work_t metrics_work;
  int metrics_busy;
  mu_host_metrics metrics;
  int metrics_rc;
  uint32_t rng;
  int closing;
} mu_conn;

struct mu_agent_daemon {
  uv_loop_t *loop;
  mu_agent_config cfg;
  mu_host_facts facts;
  mu_rpc_engine *engine;
  mu_conn conn;
  uv_signal_t sigint, sigterm;
  int stopping;
  uv_timer_t stop_timer; /* on stop: waits for the final events' acks (stop_flush_timeout) */
  int64_t stop_deadline_ms;
  mu_plugin_host *plugins;
  struct mu_plugin_set *plugin_set; /* agent/plugin/plugin_set.h: isolation, host processes */
  struct mu_agent_pconf *pconf;     /* plugin_config.h: central plugin configs pushed */
  mu_runner *runner;
  mu_journal *journal;
  uint64_t sent_seq;                                        /* highest journal record sent on the current stream */
  mu_metrics_server *metrics;                               /* NULL unless metrics_listen is set */
  struct mu_agent_meters *meters;                           /* meters.h: NULL unless metrics_listen is set */
  int plugins_refused;                                      /* plugins refused at start (metrics, Hello.env) */
  int exec_helper_found;                                    /* muster-exec found at start (Hello.env) */
  int spool_writable;                                       /* the spool dir was writable at start (Hello.env) */
  mu_runner_type_slot type_slots[MU_RUNNER_MAX_TYPE_SLOTS]; /* from cfg.type_slots */
  size_t n_type_slots;

  /* the pushed cluster image policy, kept in the spool (image_policy.c) */
  char cluster_policy_path[MU_CFG_PATH_MAX + 32];
  char cluster_policy_sha[80];
  int cluster_policy_seen;

  mu_sandbox_policy sandbox;        /* from cfg.sandbox_* (tasks.c) */
  struct mu_agent_bundles *bundles; /* bundles.c */
  uv_timer_t metrics_timer;
  mu_output_spool *spool;             /* every attempt's output, <spool_dir>/output (tasks.c) */
  struct mu_agent_logs *logs;         /* logs.c */
  struct mu_task_audits *task_audits; /* task_audit.h: start facts until STARTING (tasks.c) */
  /* Attempts the previous process was running when it ended (tasks.c), listed in Hello until
   * the control plane acks the LOST events journaled for them (up to lost_seq). */
  Muster__V1__LostAttempt **lost, *lost_items;
  size_t n_lost;
  uint64_t lost_seq;
};

/* metrics.c: /metrics and /healthz when cfg.metrics_listen is set. */
int mu_agent_metrics_start(mu_agent_daemon *a, mu_err *err);
void mu_agent_metrics_stop(mu_agent_daemon *a);

/* tasks.c: the task path between the stream, the runner and the journal. */
int mu_tasks_start(mu_agent_daemon *a, const char *helper_path, mu_err *err);
/* Runs (or, waiting for its bundle, keeps a copy of) assign, then zeroes assign's secret
 * values: the caller's message holds none once this returns. */
void mu_tasks_on_assign(mu_agent_daemon *a, Muster__V1__Assign *assign);
void mu_tasks_on_cancel(mu_agent_daemon *a, const Muster__V1__Cancel *cancel);
/* A TaskAction: handed to the attempt's plugin; a refusal is logged. */
void mu_tasks_on_action(mu_agent_daemon *a, const Muster__V1__TaskAction *action);
void mu_tasks_on_ack(mu_agent_daemon *a, uint64_t seq);
void mu_tasks_on_welcome(mu_agent_daemon *a);
/* Frees the lost attempts list (a->lost); at exit, or once acked. */
void mu_tasks_lost_free(mu_agent_daemon *a);
/* params.c: substitutes ${task.key} in the spec and adds MUSTER_PARAM_* env entries. */
#include <jansson.h>
void mu_params_apply(const Muster__V1__Assign *assign, json_t *spec);
/* Sends journaled events that are durable and not yet sent on this stream. */
void mu_tasks_flush(mu_agent_daemon *a);

void mu_conn_init(mu_conn *conn, mu_agent_daemon *agent);
/* The one way a message goes to the control plane: packs msg (mu_pb_send) and queues it on the
 * live stream. MU_EAGAIN when there is no welcomed stream (a Hello needs only the stream),
 * MU_ENOSPC when the stream's send queue is full (wait for its drain), MU_ENOMEM; err says
 * why. Journaled task events are the exception: they go out as the journal's bytes (tasks.c),
 * packed once when journaled. */
int mu_conn_send(mu_conn *conn, const Muster__V1__AgentMessage *msg, mu_err *err);
/* Starts connecting (now). */
void mu_conn_start(mu_conn *conn);
/* Stops timers and cancels the stream; handles close on the loop. */
void mu_conn_stop(mu_conn *conn);

/* logs.c: LogRequests from the control plane, answered from the output spool. */
int mu_logs_start(mu_agent_daemon *a, mu_err *err);
void mu_logs_on_request(mu_agent_daemon *a, const Muster__V1__LogRequest *req);

/* images.c: ListImages' ImagesRequest, answered from the container plugin's helper */
void mu_images_on_request(mu_agent_daemon *a, const Muster__V1__ImagesRequest *req);
/* Drops every read (the stream ended; the control plane asks again on the next one). */
void mu_logs_on_stream_end(mu_agent_daemon *a);
/* Drops every read and frees the log server (its timer closes on the loop). */
void mu_logs_stop(mu_agent_daemon *a);

/* image_policy.c: the agent's own image policy checked and both policies' paths put in the
 * container plugin's environment (before the plugins load); the cluster's pushed policy
 * written to the spool. */
int mu_image_policy_setup(mu_agent_daemon *a, mu_err *err);
void mu_image_policy_on_push(mu_agent_daemon *a, const Muster__V1__ImagePolicyPush *push);

/* hello.c: the Hello this agent sends; caller frees with mu_hello_free. */
Muster__V1__Hello *mu_hello_build(const mu_agent_daemon *agent);
void mu_hello_free(Muster__V1__Hello *hello);

#endif
