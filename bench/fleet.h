/* bench/fleet: many simulated agents in one process. Each is one AgentGateway/Connect stream
 * that sends a Hello like muster-agent's, counts the Welcome, then heartbeats with made-up
 * host metrics every interval. It answers each Assign at once (or after task_ms) as `hostname` would end:
 * STARTING, RUNNING, one stdout chunk "<agent id>\n", SUCCEEDED (exit 0), with sequence
 * numbers increasing per agent. Streams are spread over several channels (each its own HTTP/2
 * connection), agents_per_channel per channel. Everything runs on the rpc engine's loop.
 * Optionally (mu_fleet_request_bundle) every agent asks for a bundle as muster-agent does on a
 * cache miss and counts the BundleChunk bytes it receives, without keeping them. Over mTLS
 * (mu_fleet_use_tls) every agent has a certificate of its own and a channel of its own. A plugin
 * deploy (a muster-plugin-install task) is played as muster-agent plays it: the agent fetches
 * the task's bundle, reports the new version in a PluginsChanged, then succeeds. */
#ifndef MU_BENCH_FLEET_H
#define MU_BENCH_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/pki/pki.h"
#include "lib/rpc/rpc.h"

typedef struct mu_fleet_config {
  const char *target;            /* musterd HOST:PORT */
  size_t agents;                 /* streams to open, >= 1 */
  size_t agents_per_channel;     /* >= 1 */
  int64_t heartbeat_interval_ms; /* > 0 */
  const char *id_prefix;         /* agent ids are "<prefix>-00042" */
  int64_t task_ms;               /* > 0: a task runs this long (STARTING and RUNNING at once,
                                    output and SUCCEEDED after it); an Assign arriving while
                                    the agent's one timed task runs is answered at once */
  const uint32_t *cpu_mix;       /* borrowed, may be NULL: agent i declares capacity.cpu_millis
                                    cpu_mix[i % n_cpu_mix] (placement tests) */
  size_t n_cpu_mix;
} mu_fleet_config;

typedef struct mu_fleet_stats {
  size_t channels;
  size_t opened;              /* streams opened */
  size_t welcomed;            /* Welcome messages received */
  size_t failed;              /* streams that ended before mu_fleet_stop */
  uint64_t heartbeats;        /* heartbeats queued and accepted by lib/rpc */
  uint64_t send_errors;       /* sends lib/rpc refused */
  uint64_t assigns;           /* Assign messages received (each answered at once) */
  uint64_t task_events;       /* TaskEvents queued (4 per Assign) */
  uint64_t acks;              /* Ack messages received */
  uint64_t last_task_done_ns; /* uv_hrtime() when the latest SUCCEEDED was queued; 0 = none */
  uint64_t start_ns;          /* uv_hrtime() just before the first Connect */
  uint64_t all_welcomed_ns;   /* uv_hrtime() at the last Welcome; 0 until then */
  char first_error[256];      /* why the first failed stream ended; "" when none did */
  size_t certs;               /* agent certificates issued (mu_fleet_use_tls) */
  uint64_t cert_issue_ns;     /* the time issuing them took (set-up, before any Connect) */
  /* bundles (only after mu_fleet_request_bundle) */
  uint64_t bundle_requests;         /* BundleRequests sent */
  uint64_t bundle_bytes;            /* BundleChunk data bytes received, all agents */
  size_t bundles_done;              /* agents that got a chunk with last set and every byte */
  size_t bundle_errors;             /* agents that got an error chunk or a gap in the offsets */
  uint64_t bundle_first_request_ns; /* uv_hrtime() of the first request */
  uint64_t bundle_last_done_ns;     /* uv_hrtime() when the last agent finished; 0 until then */
  char bundle_error[256];           /* the first error chunk's text */
  uint64_t plugins_changed;         /* plugin deploys answered (muster-plugin-install tasks) */
} mu_fleet_stats;

typedef struct mu_fleet mu_fleet;

/* Allocates the fleet (no I/O yet); cfg strings are copied. Caller frees with mu_fleet_free
 * after mu_fleet_stop's callback has run (or at once if mu_fleet_connect was never called). */
int mu_fleet_new(mu_rpc_engine *engine, const mu_fleet_config *cfg, mu_fleet **ret_fleet, mu_err *err);
/* mTLS: issues every agent a certificate for its id from ca (kind agent, in memory with
 * mu_pki_issue_ca; about 0.4 ms each) and makes mu_fleet_connect give every agent a TLS
 * channel of its own (agents_per_channel becomes 1: a TLS connection has one identity) that
 * presents it and trusts ca_cert_pem. server_name (may be NULL: the target's host) is checked
 * against musterd's certificate. ca is only used during the call. Before mu_fleet_connect and
 * once: MU_EINVAL otherwise; lib/pki's errors as they come (the fleet then stays plaintext). */
int mu_fleet_use_tls(mu_fleet *fleet, mu_pki_ca *ca, const char *ca_cert_pem, const char *server_name, mu_err *err);
/* Creates the channels and opens every stream now, each sending its Hello. MU_EIO or
 * MU_ENOMEM when a channel or call cannot be created (streams already open stay open). */
int mu_fleet_connect(mu_fleet *fleet, mu_err *err);
/* Every welcomed agent sends BundleRequest{digest, offset 0} now (agents not yet welcomed
 * send nothing). Chunks are counted per agent; an agent is done at the chunk with last set if
 * it has received every byte in order. MU_EINVAL when digest is empty, MU_EAGAIN when no agent
 * is welcomed. */
int mu_fleet_request_bundle(mu_fleet *fleet, const char *digest, mu_err *err);
/* Agent i's time from its BundleRequest to its last chunk in ns; 0 when not done. */
uint64_t mu_fleet_bundle_time_ns(const mu_fleet *fleet, size_t i);

/* Counters so far; valid until mu_fleet_free. */
const mu_fleet_stats *mu_fleet_stats_get(const mu_fleet *fleet);
/* Stops heartbeats, cancels every stream and closes the channels; done_cb runs on the loop
 * once every stream has reported done and every timer is closed. Call once. */
void mu_fleet_stop(mu_fleet *fleet, void (*done_cb)(void *ud), void *ud);
void mu_fleet_free(mu_fleet *fleet);

#endif
