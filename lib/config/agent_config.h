/* muster-agent's configuration: defaults, then a YAML file, then command-line flags, all
 * through the same validators. See docs/configuration.md for every field. */
#ifndef MU_AGENT_CONFIG_H
#define MU_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/base/log.h"
#include "lib/config/config_field.h"
#include "lib/config/labels.h"
#include "lib/config/strlist.h"

#define MU_AGENT_DEFAULT_CONTROL "127.0.0.1:7400"
#define MU_AGENT_PLUGIN_CONFIG_MAX (256 * 1024) /* bytes of plugin configuration as JSON */
#define MU_AGENT_DEFAULT_PLUGIN_DIR "/var/lib/muster/plugins"
#define MU_AGENT_DEFAULT_SPOOL_DIR "/var/lib/muster/spool"

/* Owns its lists and labels: release with mu_agent_config_free. */
typedef struct mu_agent_config {
  char id[MU_CFG_ID_MAX + 1]; /* default: the hostname */
  mu_labels labels;           /* this agent's labels */
  mu_strlist control;         /* HOST:PORT control-plane addresses, >= 1 */
  char plugin_dir[MU_CFG_PATH_MAX];
  char spool_dir[MU_CFG_PATH_MAX];
  int64_t heartbeat_interval_ms; /* 100ms..10m, default 5s */
  uint32_t slots;                /* max concurrent tasks, 1..4096, default 2 x CPUs */
  mu_strlist trust_keys;         /* public key file paths */
  /* mTLS to the control plane (docs/security.md): CA, this agent's certificate and key
   * ("" = none; then insecure must be set), the name the server certificate must carry when
   * it is not the --control host. */
  char tls_ca[MU_CFG_PATH_MAX];
  char tls_cert[MU_CFG_PATH_MAX];
  char tls_key[MU_CFG_PATH_MAX];
  char tls_server_name[MU_CFG_PATH_MAX];
  bool insecure;                        /* plaintext to the control plane */
  bool allow_unsigned;                  /* run unsigned / unknown-key bundles (default no) */
  bool allow_downgrade;                 /* run a lower bundle version when the job pins it by
                                         * digest (default no: rollback refused) */
  uint64_t bundle_cache_size;           /* bytes of bundles cached in the spool, default 1G */
  char metrics_listen[MU_CFG_ADDR_MAX]; /* HOST:PORT, "" = no metrics endpoint */
  /* metrics over HTTPS: certificate and key (both or neither), and a CA that client
   * certificates must chain to ("" = any client); lib/metrics/httpd.h */
  char metrics_tls_cert[MU_CFG_PATH_MAX];
  char metrics_tls_key[MU_CFG_PATH_MAX];
  char metrics_tls_ca[MU_CFG_PATH_MAX];
  mu_log_level log_level;   /* default info */
  mu_log_format log_format; /* default text; json: one object per line */
  int64_t reconnect_max_ms; /* max reconnect backoff, 1s..1h, default 30s */
  /* after a working stream drops: retry every 250-500 ms (no backoff) for this long, so a
   * control-plane failover is followed at once; 0..1h, default 15s, 0 = backoff at once */
  int64_t reconnect_fast_ms;
  uint64_t max_message;              /* bytes per gRPC message, 64K..1G, default 16M */
  uint64_t output_spool_size;        /* task output kept in the spool, >= 1M, default 1G */
  int64_t output_retention_ms;       /* finished output kept, 1s..365d, default 7d */
  int64_t stop_flush_timeout_ms;     /* on stop, wait this long for the control plane to ack
                                           the runs' final events, 0..10m, default 5s */
  char exec_helper[MU_CFG_PATH_MAX]; /* muster-exec; "" = beside the agent binary */
  char run_as[MU_CFG_ID_MAX + 1];    /* default USER[:GROUP] of tasks without run_as; "" = the
                                           agent's own user */
  mu_labels type_slots;              /* per task type caps: {python: 2, http: 64} */
  uint32_t queue_max;                /* attempts waiting for a slot, 1..1000000, 1024 */
  /* per plugin type settings, plugins: {TYPE: {isolation: in-process|process}}, kept as
   * "TYPE.isolation" -> value (docs/plugins.md, Isolation) */
  mu_labels plugins;
  /* SDK v2 plugin configuration, plugins: {TYPE: {config: {...}}}, as one JSON object
   * {"TYPE": {...}, ...} (NULL = none): what the agent hands each plugin's configure(). Owned;
   * bounded by MU_AGENT_PLUGIN_CONFIG_MAX. */
  char *plugin_config_json;
  /* Task sandboxes (agent/exec/sandbox.h, docs/security.md#task-sandboxes): types always
   * sandboxed, the network a sandbox gets by default ("none" or "host"; "none" also forbids
   * "host" to forced types), read-only host files by default, paths every sandbox may write
   * (and under which a forced type's own `writable` must lie), paths every sandbox hides. */
  mu_strlist sandbox_types;
  char sandbox_network[MU_CFG_ID_MAX + 1];
  bool sandbox_read_only_root; /* default true */
  mu_strlist sandbox_writable;
  mu_strlist sandbox_hidden;
  /* The agent's own image admission policy for container tasks (lib/imagepolicy; "" = none),
   * checked at start; the cluster's applies too (docs/images.md#admission-policy). */
  char container_policy[MU_CFG_PATH_MAX];
  /* Container tasks run only registry images signed (`muster image sign`) by one of
   * container_signature_keys (docs/images.md); checked at start: the keys must load. */
  bool container_require_signed;
  mu_strlist container_signature_keys;           /* public key files */
  char container_scan_feed_dir[MU_CFG_PATH_MAX]; /* the feed a policy's max_severity scans with */
} mu_agent_config;

/* Fills cfg with the defaults. Never fails: should the one allocation (the default control
 * address) fail, control is left empty, which mu_agent_config_load/set never produce. */
void mu_agent_config_init(mu_agent_config *cfg);

/* Overlays the YAML file at path onto cfg (fields absent from the file keep their values).
 * MU_EINVAL with "FILE:LINE: field 'NAME': ..." for a bad or unknown field, a file-level error
 * naming the file otherwise (see yaml_doc.h). On error cfg is still valid to free, but fields
 * before the bad one may have been applied. */
int mu_agent_config_load(mu_agent_config *cfg, const char *path, mu_err *err);

/* Sets one field from a command-line flag: key is the field name with dashes or underscores
 * ("heartbeat-interval"); lists take "a,b,c" and replace; labels take "k=v,k2=v2" and replace;
 * key "trust-key" appends one path. Errors read "--heartbeat-interval: bad duration ...". */
int mu_agent_config_set(mu_agent_config *cfg, const char *key, const char *value, mu_err *err);

void mu_agent_config_free(mu_agent_config *cfg);

#endif
