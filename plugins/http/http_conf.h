/* The HTTP type's SDK v2 side: its plugin-wide configuration (configure()), its metrics
 * (responses by status class, request latency), its health and its parameter schema. The
 * state lives in the plugin env (muster_plugin_api.set_state); a task reads it at start. */
#ifndef MU_HTTP_CONF_H
#define MU_HTTP_CONF_H

#include "muster_plugin.h"

typedef struct mu_http_conf {
  char user_agent[256];        /* config "userAgent"; default "muster-http/1.0" */
  muster_metric *responses;    /* responses_total{code="2xx"|...|"error"} */
  muster_metric *duration;     /* request_duration_seconds{code} */
  unsigned consecutive_errors; /* requests in a row that got no response (health) */
  unsigned warn_after_errors;  /* config "warnAfterErrors"; default 10, 0 = never */
  const muster_plugin_api *api;
} mu_http_conf;

/* The descriptor's v2 hooks. */
int mu_http_configure(muster_plugin_env *env, const muster_plugin_api *api, const char *config_json, char *errbuf);
int mu_http_health(muster_plugin_env *env, const muster_plugin_api *api, char *errbuf);
const char *mu_http_describe(muster_plugin_env *env, const muster_plugin_api *api);
void mu_http_shutdown(muster_plugin_env *env, const muster_plugin_api *api);

/* The plugin's state for a task, NULL when the agent is older than SDK v2 or never
 * configured the plugin (then defaults apply and nothing is counted). */
mu_http_conf *mu_http_conf_of(muster_task *task, const muster_host_api *host);

/* One attempt ended: status (0 = no response) after seconds. conf may be NULL. */
void mu_http_conf_count(mu_http_conf *conf, long status, double seconds);

#endif
