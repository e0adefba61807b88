/* muster-agent's config: the field table (names, kinds, bounds) and the defaults. Parsing and
 * validation are config_field.c's, shared with musterd's config. */
#include "lib/config/agent_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config/yaml_json.h"

#define F(name, kind, member, lo, hi) \
  { name, kind, offsetof(mu_agent_config, member), sizeof(((mu_agent_config *)0)->member), lo, hi }

static const mu_cfg_field agent_fields[] = {
    F("id", MU_CF_ID, id, 0, 0),
    F("labels", MU_CF_LABELS, labels, 0, 0),
    F("control", MU_CF_ADDR_LIST, control, 1, 0),
    F("plugin_dir", MU_CF_PATH, plugin_dir, 0, 0),
    F("spool_dir", MU_CF_PATH, spool_dir, 0, 0),
    F("heartbeat_interval", MU_CF_DURATION, heartbeat_interval_ms, 100, 10 * 60 * 1000),
    F("slots", MU_CF_COUNT, slots, 1, 4096),
    F("trust_keys", MU_CF_PATH_LIST, trust_keys, 0, 0),
    F("trust_key", MU_CF_PATH_APPEND, trust_keys, 0, 0),
    F("tls_ca", MU_CF_PATH, tls_ca, 0, 0),
    F("tls_cert", MU_CF_PATH, tls_cert, 0, 0),
    F("tls_key", MU_CF_PATH, tls_key, 0, 0),
    F("tls_server_name", MU_CF_PATH, tls_server_name, 0, 0),
    F("insecure", MU_CF_BOOL, insecure, 0, 0),
    F("allow_unsigned", MU_CF_BOOL, allow_unsigned, 0, 0),
    F("allow_downgrade", MU_CF_BOOL, allow_downgrade, 0, 0),
    F("bundle_cache_size", MU_CF_SIZE, bundle_cache_size, 1024 * 1024, (int64_t)1 << 50),
    F("metrics_listen", MU_CF_OPT_ADDR, metrics_listen, 0, 0),
    F("metrics_tls_cert", MU_CF_PATH, metrics_tls_cert, 0, 0),
    F("metrics_tls_key", MU_CF_PATH, metrics_tls_key, 0, 0),
    F("metrics_tls_ca", MU_CF_PATH, metrics_tls_ca, 0, 0),
    F("log_level", MU_CF_LOG_LEVEL, log_level, 0, 0),
    F("log_format", MU_CF_LOG_FORMAT, log_format, 0, 0),
    F("reconnect_max", MU_CF_DURATION, reconnect_max_ms, 1000, 3600 * 1000),
    F("reconnect_fast", MU_CF_DURATION, reconnect_fast_ms, 0, 3600 * 1000),
    F("max_message", MU_CF_SIZE, max_message, 64 * 1024, 1024 * 1024 * 1024),
    F("output_spool_size", MU_CF_SIZE, output_spool_size, 1024 * 1024, (int64_t)1 << 50),
    F("output_retention", MU_CF_DURATION, output_retention_ms, 1000, 365LL * 24 * 3600 * 1000),
    F("stop_flush_timeout", MU_CF_DURATION, stop_flush_timeout_ms, 0, 10 * 60 * 1000),
    F("exec_helper", MU_CF_PATH, exec_helper, 0, 0),
    F("run_as", MU_CF_MEMBER_ID, run_as, 0, 0),
    F("type_slots", MU_CF_LABELS, type_slots, 0, 0),
    F("queue_max", MU_CF_COUNT, queue_max, 1, 1000000),
    F("plugins", MU_CF_PLUGINS, plugins, 0, 0),
    F("sandbox_types", MU_CF_PATH_LIST, sandbox_types, 0, 0),
    F("sandbox_network", MU_CF_ID, sandbox_network, 0, 0),
    F("sandbox_read_only_root", MU_CF_BOOL, sandbox_read_only_root, 0, 0),
    F("sandbox_writable", MU_CF_PATH_LIST, sandbox_writable, 0, 0),
    F("sandbox_hidden", MU_CF_PATH_LIST, sandbox_hidden, 0, 0),
    F("container_policy", MU_CF_PATH, container_policy, 0, 0),
    F("container_require_signed", MU_CF_BOOL, container_require_signed, 0, 0),
    F("container_signature_keys", MU_CF_PATH_LIST, container_signature_keys, 0, 0),
    F("container_scan_feed_dir", MU_CF_PATH, container_scan_feed_dir, 0, 0),
};

static const mu_cfg_table agent_table = {
    .what = "agent",
    .fields = agent_fields,
    .n = sizeof agent_fields / sizeof agent_fields[0],
    .after_set = NULL,
};

void mu_agent_config_init(mu_agent_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  mu_cfg_default_id(cfg->id, sizeof cfg->id);
  mu_labels_init(&cfg->labels);
  mu_labels_init(&cfg->type_slots);
  mu_labels_init(&cfg->plugins);
  cfg->queue_max = 1024;
  mu_strlist_init(&cfg->control);
  mu_strlist_append(&cfg->control, MU_AGENT_DEFAULT_CONTROL, NULL);
  strcpy(cfg->plugin_dir, MU_AGENT_DEFAULT_PLUGIN_DIR);
  strcpy(cfg->spool_dir, MU_AGENT_DEFAULT_SPOOL_DIR);
  cfg->heartbeat_interval_ms = 5000;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  cfg->slots = cpus * 2 > 4096 ? 4096 : (uint32_t)(cpus * 2);
  mu_strlist_init(&cfg->trust_keys);
  cfg->allow_unsigned = false;
  cfg->allow_downgrade = false;
  cfg->bundle_cache_size = 1ull << 30;
  cfg->metrics_listen[0] = '\0';
  cfg->log_level = MU_LOG_INFO;
  cfg->reconnect_max_ms = 30000;
  cfg->reconnect_fast_ms = 15000;
  cfg->max_message = 16 * 1024 * 1024;
  cfg->output_spool_size = 1ull << 30;
  cfg->output_retention_ms = 7LL * 24 * 3600 * 1000;
  cfg->stop_flush_timeout_ms = 5000;
  mu_strlist_init(&cfg->sandbox_types);
  strcpy(cfg->sandbox_network, "none");
  cfg->sandbox_read_only_root = true;
  mu_strlist_init(&cfg->sandbox_writable);
  mu_strlist_init(&cfg->sandbox_hidden);
  mu_strlist_init(&cfg->container_signature_keys);
}

/* plugins: {TYPE: {config: ANY}} -> {"TYPE": ANY, ...} (the field walk skipped the configs). */
static int load_plugin_configs(mu_agent_config *cfg, const char *path, mu_err *err) {
  mu_yaml_doc *doc = NULL;
  int rc = mu_yaml_doc_load(path, 0, &doc, err);
  if (rc != 0) return rc;
  mu_yaml_node root = mu_yaml_doc_root(doc), plugins = {0};
  for (size_t i = 0; i < mu_yaml_node_len(root); i++)
    if (strcmp(mu_yaml_node_text(mu_yaml_node_key(root, i)), "plugins") == 0) plugins = mu_yaml_node_value(root, i);
  char *all = NULL;
  size_t len = 0;
  if (mu_yaml_node_kind(plugins) != MU_YAML_MAP) goto done;
  for (size_t i = 0; i < mu_yaml_node_len(plugins); i++) {
    mu_yaml_node t = mu_yaml_node_value(plugins, i);
    if (mu_yaml_node_kind(t) != MU_YAML_MAP) continue;
    for (size_t j = 0; j < mu_yaml_node_len(t); j++) {
      mu_yaml_node k = mu_yaml_node_key(t, j), v = mu_yaml_node_value(t, j);
      if (strcmp(mu_yaml_node_text(k), "config") != 0) continue;
      if (mu_yaml_node_kind(v) != MU_YAML_MAP && mu_yaml_node_kind(v) != MU_YAML_NULL) {
        rc = mu_err_set(err, MU_EINVAL, "%s:%d: field 'plugins': plugin '%s': config: expected a mapping", path,
                        mu_yaml_node_line(k), mu_yaml_node_text(mu_yaml_node_key(plugins, i)));
        goto done;
      }
      char *one = NULL;
      rc = mu_yaml_node_json(v, MU_AGENT_PLUGIN_CONFIG_MAX, &one, err);
      if (rc == 0 && mu_yaml_node_kind(v) == MU_YAML_NULL) {
        free(one);
        one = strdup("{}");
        if (one == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      }
      if (rc != 0) {
        mu_err_prefix(err, "%s: field 'plugins': plugin '%s': config", path,
                      mu_yaml_node_text(mu_yaml_node_key(plugins, i)));
        goto done;
      }
      const char *type = mu_yaml_node_text(mu_yaml_node_key(plugins, i));
      size_t need = len + strlen(type) + strlen(one) + 8;
      if (need > MU_AGENT_PLUGIN_CONFIG_MAX) {
        free(one);
        rc = mu_err_set(err, MU_ENOSPC, "%s: field 'plugins': plugin configs over %d bytes as JSON", path,
                        MU_AGENT_PLUGIN_CONFIG_MAX);
        goto done;
      }
      char *nb = realloc(all, need);
      if (nb == NULL) {
        free(one);
        rc = mu_err_set(err, MU_ENOMEM, "out of memory");
        goto done;
      }
      all = nb;
      len += (size_t)sprintf(all + len, "%s\"%s\":%s", len == 0 ? "{" : ",", type, one);
      free(one);
    }
  }
  if (all != NULL) {
    strcpy(all + len, "}");
    free(cfg->plugin_config_json);
    cfg->plugin_config_json = all;
    all = NULL;
  }
done:
  free(all);
  mu_yaml_doc_free(doc);
  return rc;
}

int mu_agent_config_load(mu_agent_config *cfg, const char *path, mu_err *err) {
  int rc = mu_cfg_load(cfg, &agent_table, path, err);
  if (rc == 0) rc = load_plugin_configs(cfg, path, err);
  return rc;
}

int mu_agent_config_set(mu_agent_config *cfg, const char *key, const char *value, mu_err *err) {
  return mu_cfg_set(cfg, &agent_table, key, value, err);
}

void mu_agent_config_free(mu_agent_config *cfg) {
  mu_cfg_free(cfg, &agent_table);
  free(cfg->plugin_config_json);
  cfg->plugin_config_json = NULL;
}
