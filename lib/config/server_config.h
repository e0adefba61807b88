/* musterd's configuration: defaults, then a YAML file, then command-line flags, all through
 * the same validators. See docs/configuration.md for every field. */
#ifndef MU_SERVER_CONFIG_H
#define MU_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/base/log.h"
#include "lib/config/config_field.h"
#include "lib/config/labels.h"
#include "lib/config/strlist.h"

#define MU_SERVER_DEFAULT_LISTEN "127.0.0.1:7400"
#define MU_SERVER_DEFAULT_ETCD "http://127.0.0.1:2379"
#define MU_SERVER_DEFAULT_PREFIX "/muster/"
#define MU_SERVER_DEFAULT_STATE_DIR "/var/lib/muster/state"

/* Owns its lists: release with mu_server_config_free. */
typedef struct mu_server_config {
  char listen[MU_CFG_ADDR_MAX]; /* HOST:PORT the gRPC server binds */
  /* HOST:PORT given to agents and the CLI in redirects. Unless set explicitly it follows
   * listen (with this host's name in place of a wildcard host such as 0.0.0.0). */
  char advertise[MU_CFG_ADDR_MAX];
  mu_strlist etcd;                     /* etcd endpoint URLs, >= 1 */
  char etcd_prefix[MU_CFG_PREFIX_MAX]; /* starts and ends with '/' */
  char state_dir[MU_CFG_PATH_MAX];
  char metrics_listen[MU_CFG_ADDR_MAX]; /* HOST:PORT, "" = no metrics endpoint */
  /* metrics over HTTPS: certificate and key (both or neither), and a CA that client
   * certificates must chain to ("" = any client); lib/metrics/httpd.h */
  char metrics_tls_cert[MU_CFG_PATH_MAX];
  char metrics_tls_key[MU_CFG_PATH_MAX];
  char metrics_tls_ca[MU_CFG_PATH_MAX];
  int64_t heartbeat_timeout_ms; /* agent silent this long = gone; 1s..1h, default 15s */
  int64_t leader_ttl_ms;        /* leader lease TTL; 1s..5m, default 5s */
  int64_t takeover_grace_ms;    /* new leader waits for agents; 0..1h, default 10s */
  int64_t presence_ttl_ms;      /* lease of agents' presence keys; 1s..1h, default 10s */
  uint32_t max_agents;          /* 1..1000000, default 10000 */
  int64_t agent_gc_after_ms;    /* disconnected agents are forgotten after this; 0 =
                                           never; 0..10y, default 7d (agent_gc.h) */
  uint32_t max_job_tasks;       /* tasks in one job spec; 1..10000, default 64 */
  uint32_t max_task_runs;       /* targets x tasks of one job; 1..10000000, default 200000 */
  uint32_t max_jobs_kept;       /* finished jobs kept in memory; 1..1000000, default 1000 */
  uint32_t schedule_slots_kept; /* slot records kept per schedule; 1..100000, default 100 */
  uint32_t max_schedules;       /* schedules held; 1..1000000, default 10000 */
  uint32_t hold_above;          /* percent of the fleet's slots busy past which jobs below
                                           hold_priority_floor are held; 0 = never */
  uint32_t hold_priority_floor;
  int64_t priority_aging_ms;         /* a waiting job gains 1 priority per this; 0 = off */
  mu_labels type_limits;             /* fleet-wide cap on running tasks per type: {spark: 4} */
  mu_labels queues;                  /* named queues: "etl.weight" = "3", "etl.max_running" = "4" */
  int64_t jobs_kept_min_age_ms;      /* finished jobs younger are kept past max_jobs_kept;
                                           0..30d, default 1h */
  uint32_t max_jobs_kept_hard;       /* jobs held at most, young or not; 1..10000000, default
                                           10000, at least max_jobs_kept */
  uint32_t savepoints_kept_per_task; /* savepoint catalogue per task name; 1..10000, default 20 */
  uint32_t run_history_per_task;     /* finished runs kept per task name; 10..10000, default 100 */
  uint32_t run_history_max;          /* finished runs kept in all; 10..100000, default 10000 */
  uint32_t max_tokens;               /* bearer tokens, dead ones too; 1..1000000, default 10000 */
  uint64_t max_message;              /* bytes per gRPC message, 64K..1G, default 16M */
  uint32_t rpc_queues;               /* gRPC completion queues (a thread each); 0..64, 0 =
                                           the CPU count, at least 8 (lib/rpc/rpc.h) */
  uint32_t audit_max_records;        /* audit records kept; 10..10000000, default 100000 */
  int64_t audit_retention_ms;        /* audit records older are deleted; 1m..10y, default 30d */
  uint32_t audit_denials_per_second; /* gate denials recorded one by one; 1..10000, default 10 */
  mu_log_level log_level;            /* default info */
  mu_log_format log_format;          /* default text; json: one object per line */
  /* This member's name in the cluster; unless set explicitly, "<hostname>:<listen port>". */
  char member_id[MU_CFG_ID_MAX + 1];
  /* TLS (docs/security.md): the CA that signs every certificate, this member's certificate
   * and key, an optional CRL; all "" = none. Without them musterd refuses to start unless
   * insecure is set. */
  char tls_ca[MU_CFG_PATH_MAX];
  char tls_cert[MU_CFG_PATH_MAX];
  char tls_key[MU_CFG_PATH_MAX];
  char tls_crl[MU_CFG_PATH_MAX];
  bool tls_client_cert_optional;    /* admin clients may come with a token and no cert */
  bool allow_unsigned_bundles;      /* store bundle uploads without a signature */
  char secret_key[MU_CFG_PATH_MAX]; /* the 32-byte key secrets are encrypted with; "" = no
                                           secrets (docs/security.md#secrets) */
  bool insecure;                    /* plaintext gRPC, anonymous callers are admins */
  /* TLS to etcd (https:// endpoints): its CA, and our client certificate and key ("" = the
   * system CA store, no client certificate) */
  char etcd_ca[MU_CFG_PATH_MAX];
  char etcd_cert[MU_CFG_PATH_MAX];
  char etcd_key[MU_CFG_PATH_MAX];
  bool advertise_given; /* internal: advertise came from the file or a flag */
  bool member_id_given; /* internal: member_id came from the file or a flag */
} mu_server_config;

/* Fills cfg with the defaults. Never fails: should the one allocation (the default etcd
 * endpoint) fail, etcd is left empty, which mu_server_config_load/set never produce. */
void mu_server_config_init(mu_server_config *cfg);

/* Overlays the YAML file at path onto cfg. MU_EINVAL with "FILE:LINE: field 'NAME': ..." for
 * a bad or unknown field, a file-level error naming the file otherwise. On error cfg is still
 * valid to free, but fields before the bad one may have been applied. */
int mu_server_config_load(mu_server_config *cfg, const char *path, mu_err *err);

/* Sets one field from a command-line flag (dashes or underscores; lists take "a,b" and
 * replace). Errors read "--etcd: bad endpoint URL ...". */
int mu_server_config_set(mu_server_config *cfg, const char *key, const char *value, mu_err *err);

void mu_server_config_free(mu_server_config *cfg);

#endif
