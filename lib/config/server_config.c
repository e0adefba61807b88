/* musterd's config: the field table, the defaults, and the two derived defaults (advertise
 * and member_id follow listen until set explicitly). Parsing and validation are
 * config_field.c's, shared with the agent's config. */
#include "lib/config/server_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/config/addr.h"

#define F(name, kind, member, lo, hi) \
  { name, kind, offsetof(mu_server_config, member), sizeof(((mu_server_config *)0)->member), lo, hi }

static const mu_cfg_field server_fields[] = {
    F("listen", MU_CF_ADDR, listen, 0, 0),
    F("advertise", MU_CF_ADDR, advertise, 0, 0),
    F("etcd", MU_CF_URL_LIST, etcd, 1, 0),
    F("etcd_prefix", MU_CF_PREFIX, etcd_prefix, 0, 0),
    F("state_dir", MU_CF_PATH, state_dir, 0, 0),
    F("metrics_listen", MU_CF_OPT_ADDR, metrics_listen, 0, 0),
    F("metrics_tls_cert", MU_CF_PATH, metrics_tls_cert, 0, 0),
    F("metrics_tls_key", MU_CF_PATH, metrics_tls_key, 0, 0),
    F("metrics_tls_ca", MU_CF_PATH, metrics_tls_ca, 0, 0),
    F("heartbeat_timeout", MU_CF_DURATION, heartbeat_timeout_ms, 1000, 3600 * 1000),
    F("leader_ttl", MU_CF_DURATION, leader_ttl_ms, 1000, 300 * 1000),
    F("takeover_grace", MU_CF_DURATION, takeover_grace_ms, 0, 3600 * 1000),
    F("presence_ttl", MU_CF_DURATION, presence_ttl_ms, 1000, 3600 * 1000),
    F("max_agents", MU_CF_COUNT, max_agents, 1, 1000000),
    F("agent_gc_after", MU_CF_DURATION, agent_gc_after_ms, 0, 3650LL * 24 * 3600 * 1000),
    F("max_job_tasks", MU_CF_COUNT, max_job_tasks, 1, 10000),
    F("max_task_runs", MU_CF_COUNT, max_task_runs, 1, 10000000),
    F("max_jobs_kept", MU_CF_COUNT, max_jobs_kept, 1, 1000000),
    F("schedule_slots_kept", MU_CF_COUNT, schedule_slots_kept, 1, 100000),
    F("max_schedules", MU_CF_COUNT, max_schedules, 1, 1000000),
    F("type_limits", MU_CF_LABELS, type_limits, 0, 0),
    F("queues", MU_CF_QUEUES, queues, 0, 0),
    F("hold_above", MU_CF_COUNT, hold_above, 0, 100),
    F("hold_priority_floor", MU_CF_COUNT, hold_priority_floor, 0, 1000000),
    F("priority_aging", MU_CF_DURATION, priority_aging_ms, 0, 30LL * 24 * 3600 * 1000),
    F("savepoints_kept_per_task", MU_CF_COUNT, savepoints_kept_per_task, 1, 10000),
    F("run_history_per_task", MU_CF_COUNT, run_history_per_task, 10, 10000),
    F("run_history_max", MU_CF_COUNT, run_history_max, 10, 100000),
    F("jobs_kept_min_age", MU_CF_DURATION, jobs_kept_min_age_ms, 0, 30LL * 24 * 3600 * 1000),
    F("max_jobs_kept_hard", MU_CF_COUNT, max_jobs_kept_hard, 1, 10000000),
    F("allow_unsigned_bundles", MU_CF_BOOL, allow_unsigned_bundles, 0, 0),
    F("max_tokens", MU_CF_COUNT, max_tokens, 1, 1000000),
    F("max_message", MU_CF_SIZE, max_message, 64 * 1024, 1024 * 1024 * 1024),
    F("rpc_queues", MU_CF_COUNT, rpc_queues, 0, 64),
    F("audit_max_records", MU_CF_COUNT, audit_max_records, 10, 10000000),
    F("audit_retention", MU_CF_DURATION, audit_retention_ms, 60 * 1000, 3650LL * 24 * 3600 * 1000),
    F("audit_denials_per_second", MU_CF_COUNT, audit_denials_per_second, 1, 10000),
    F("log_level", MU_CF_LOG_LEVEL, log_level, 0, 0),
    F("log_format", MU_CF_LOG_FORMAT, log_format, 0, 0),
    F("member_id", MU_CF_MEMBER_ID, member_id, 0, 0),
    F("tls_ca", MU_CF_PATH, tls_ca, 0, 0),
    F("tls_cert", MU_CF_PATH, tls_cert, 0, 0),
    F("tls_key", MU_CF_PATH, tls_key, 0, 0),
    F("tls_crl", MU_CF_PATH, tls_crl, 0, 0),
    F("tls_client_cert_optional", MU_CF_BOOL, tls_client_cert_optional, 0, 0),
    F("insecure", MU_CF_BOOL, insecure, 0, 0),
    F("etcd_ca", MU_CF_PATH, etcd_ca, 0, 0),
    F("etcd_cert", MU_CF_PATH, etcd_cert, 0, 0),
    F("etcd_key", MU_CF_PATH, etcd_key, 0, 0),
    F("secret_key", MU_CF_PATH, secret_key, 0, 0),
};

/* Recomputes advertise and member_id from listen unless they were given. listen is always
 * valid here (it is checked before it is stored), so parsing cannot fail. */
static void derive(mu_server_config *cfg) {
  char host[MU_HOST_MAX + 1];
  char me[MU_CFG_ID_MAX + 1];
  uint16_t port = 0;
  if (mu_hostport_parse(cfg->listen, host, sizeof host, &port, NULL) < 0) return;
  mu_cfg_default_id(me, sizeof me - 6); /* room for ":65535" */
  if (!cfg->advertise_given) {
    if (mu_host_is_wildcard(host)) snprintf(cfg->advertise, sizeof cfg->advertise, "%s:%u", me, port);
    else snprintf(cfg->advertise, sizeof cfg->advertise, "%s", cfg->listen);
  }
  if (!cfg->member_id_given) snprintf(cfg->member_id, sizeof cfg->member_id, "%s:%u", me, port);
}

static void after_set(void *arg, const mu_cfg_field *f) {
  mu_server_config *cfg = arg;
  if (strcmp(f->name, "advertise") == 0) cfg->advertise_given = true;
  if (strcmp(f->name, "member_id") == 0) cfg->member_id_given = true;
  derive(cfg);
}

static const mu_cfg_table server_table = {
    .what = "server",
    .fields = server_fields,
    .n = sizeof server_fields / sizeof server_fields[0],
    .after_set = after_set,
};

void mu_server_config_init(mu_server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  strcpy(cfg->listen, MU_SERVER_DEFAULT_LISTEN);
  mu_strlist_init(&cfg->etcd);
  mu_strlist_append(&cfg->etcd, MU_SERVER_DEFAULT_ETCD, NULL);
  strcpy(cfg->etcd_prefix, MU_SERVER_DEFAULT_PREFIX);
  strcpy(cfg->state_dir, MU_SERVER_DEFAULT_STATE_DIR);
  cfg->metrics_listen[0] = '\0';
  cfg->heartbeat_timeout_ms = 15000;
  cfg->leader_ttl_ms = 5000;
  cfg->takeover_grace_ms = 10000;
  cfg->presence_ttl_ms = 10000;
  cfg->max_agents = 10000;
  cfg->agent_gc_after_ms = 7LL * 24 * 3600 * 1000;
  cfg->max_job_tasks = 64;
  cfg->max_task_runs = 200000;
  cfg->max_jobs_kept = 1000;
  cfg->schedule_slots_kept = 100;
  cfg->max_schedules = 10000;
  mu_labels_init(&cfg->type_limits);
  mu_labels_init(&cfg->queues);
  cfg->priority_aging_ms = 60 * 1000;
  cfg->savepoints_kept_per_task = 20;
  cfg->run_history_per_task = 100;
  cfg->run_history_max = 10000;
  cfg->jobs_kept_min_age_ms = 3600 * 1000;
  cfg->max_jobs_kept_hard = 10000;
  cfg->max_tokens = 10000;
  cfg->max_message = 16 * 1024 * 1024;
  cfg->audit_max_records = 100000;
  cfg->audit_retention_ms = 30LL * 24 * 3600 * 1000;
  cfg->audit_denials_per_second = 10;
  cfg->log_level = MU_LOG_INFO;
  derive(cfg);
}

int mu_server_config_load(mu_server_config *cfg, const char *path, mu_err *err) {
  return mu_cfg_load(cfg, &server_table, path, err);
}

int mu_server_config_set(mu_server_config *cfg, const char *key, const char *value, mu_err *err) {
  return mu_cfg_set(cfg, &server_table, key, value, err);
}

void mu_server_config_free(mu_server_config *cfg) { mu_cfg_free(cfg, &server_table); }
