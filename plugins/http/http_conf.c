/* The HTTP type's configuration, metrics, health and schema (http_conf.h). */
#include "http_conf.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_UA "muster-http/1.0"

static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

int mu_http_configure(muster_plugin_env *env, const muster_plugin_api *api, const char *config_json, char *errbuf) {
  json_error_t je;
  json_t *c = json_loads(config_json, 0, &je);
  if (!json_is_object(c)) {
    json_decref(c);
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "http config: not a JSON object");
    return -EINVAL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(c, key, v) {
    if (strcmp(key, "userAgent") != 0 && strcmp(key, "warnAfterErrors") != 0) {
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "http config: unknown key \"%s\" (known: userAgent, warnAfterErrors)", key);
      json_decref(c);
      return -EINVAL;
    }
  }
  json_t *ua = json_object_get(c, "userAgent");
  json_t *wa = json_object_get(c, "warnAfterErrors");
  int rc = -EINVAL;
  if (ua != NULL && (!json_is_string(ua) || json_string_length(ua) == 0 || json_string_length(ua) > 255 ||
                     strpbrk(json_string_value(ua), "\r\n") != NULL)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "http config: userAgent: want a string of 1 to 255 bytes on one line");
  } else if (wa != NULL && (!json_is_integer(wa) || json_integer_value(wa) < 0 || json_integer_value(wa) > 1000000)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "http config: warnAfterErrors: want a whole number from 0 to 1000000");
  } else {
    rc = 0;
  }
  if (rc != 0) {
    json_decref(c);
    return rc;
  }
  mu_http_conf *conf = api->state(env);
  if (conf == NULL) { /* first configure: the state and the metric families */
    conf = calloc(1, sizeof *conf);
    if (conf == NULL) {
      json_decref(c);
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "http: out of memory");
      return -ENOMEM;
    }
    static const char *const code[] = {"code", NULL};
    muster_metric_desc responses = {"responses_total",
                                    "HTTP task responses by status class (error: no response).",
                                    MUSTER_METRIC_COUNTER,
                                    code,
                                    NULL,
                                    0};
    muster_metric_desc duration = {"request_duration_seconds",
                                   "HTTP task request time per attempt.",
                                   MUSTER_METRIC_HISTOGRAM,
                                   code,
                                   latency_buckets,
                                   sizeof latency_buckets / sizeof latency_buckets[0]};
    char eb[MUSTER_ERRBUF_SIZE] = "";
    if (api->metric_register(env, &responses, &conf->responses, eb) != 0 ||
        api->metric_register(env, &duration, &conf->duration, eb) != 0)
      api->log(env, MUSTER_LOG_WARN, "metrics not registered: %s", eb);
    conf->api = api;
    api->set_state(env, conf);
  }
  snprintf(conf->user_agent, sizeof conf->user_agent, "%s", ua != NULL ? json_string_value(ua) : DEFAULT_UA);
  conf->warn_after_errors = wa != NULL ? (unsigned)json_integer_value(wa) : 10;
  json_decref(c);
  return 0;
}

int mu_http_health(muster_plugin_env *env, const muster_plugin_api *api, char *errbuf) {
  mu_http_conf *conf = api->state(env);
  if (conf != NULL && conf->warn_after_errors > 0 && conf->consecutive_errors >= conf->warn_after_errors) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "the last %u requests got no response (connection or TLS errors)",
             conf->consecutive_errors);
    return MUSTER_HEALTH_WARN;
  }
  return MUSTER_HEALTH_OK;
}

void mu_http_shutdown(muster_plugin_env *env, const muster_plugin_api *api) {
  free(api->state(env));
  api->set_state(env, NULL);
}

mu_http_conf *mu_http_conf_of(muster_task *task, const muster_host_api *host) {
  if (host->size < offsetof(muster_host_api, plugin_state) + sizeof host->plugin_state) return NULL; /* SDK v1 agent */
  return host->plugin_state != NULL ? host->plugin_state(task) : NULL;
}

void mu_http_conf_count(mu_http_conf *conf, long status, double seconds) {
  if (conf == NULL) return;
  char cls[8];
  if (status >= 100 && status <= 599) snprintf(cls, sizeof cls, "%ldxx", status / 100);
  else snprintf(cls, sizeof cls, "error");
  const char *values[] = {cls};
  conf->api->metric_add(conf->responses, values, 1);
  conf->api->metric_observe(conf->duration, values, seconds);
  conf->consecutive_errors = status == 0 ? conf->consecutive_errors + 1 : 0;
}

const char *mu_http_describe(muster_plugin_env *env, const muster_plugin_api *api) {
  (void)env;
  (void)api;
  return "{\"params\":{"
         "\"url\":{\"type\":\"string\",\"required\":true,\"help\":\"http or https URL; ${param} and ${secret.NAME} "
         "expand\"},"
         "\"method\":{\"type\":\"string\",\"enum\":[\"GET\",\"HEAD\",\"POST\",\"PUT\",\"PATCH\",\"DELETE\",\"OPTIONS\"]"
         ","
         "\"help\":\"default GET\"},"
         "\"query\":{\"type\":\"object\",\"help\":\"query parameters added to the URL\"},"
         "\"headers\":{\"type\":\"object\",\"help\":\"request headers\"},"
         "\"body\":{\"type\":\"string\",\"help\":\"request body\"},"
         "\"bodyJson\":{\"type\":\"string\",\"help\":\"request body sent as application/json\"},"
         "\"form\":{\"type\":\"object\",\"help\":\"urlencoded form fields\"},"
         "\"bodyFile\":{\"type\":\"string\",\"help\":\"file in the task dir sent as the body\"},"
         "\"auth\":{\"type\":\"object\",\"help\":\"basicUser/basicPassword, bearerToken, clientCert/clientKey\"},"
         "\"connectTimeout\":{\"type\":\"string\",\"help\":\"duration, e.g. 5s\"},"
         "\"followRedirects\":{\"type\":\"boolean\"},"
         "\"maxRedirects\":{\"type\":\"integer\",\"minimum\":0},"
         "\"insecureSkipVerify\":{\"type\":\"boolean\"},"
         "\"caFile\":{\"type\":\"string\"},"
         "\"proxy\":{\"type\":\"string\"},"
         "\"expect\":{\"type\":\"object\",\"help\":\"status, bodyContains, bodyMatches, jsonPathEquals, header\"},"
         "\"extract\":{\"type\":\"object\",\"help\":\"output params from JSON paths of the body\"},"
         "\"extractHeaders\":{\"type\":\"object\",\"help\":\"output params from response headers\"},"
         "\"retryOnStatus\":{\"type\":\"array\",\"help\":\"statuses retried with backoff\"},"
         "\"maxRetries\":{\"type\":\"integer\",\"minimum\":0},"
         "\"maxBody\":{\"type\":\"string\",\"help\":\"size cap of the response body kept, e.g. 1MiB\"}},"
         "\"config\":{"
         "\"userAgent\":{\"type\":\"string\",\"help\":\"User-Agent sent unless the task sets one (default "
         "muster-http/1.0)\"},"
         "\"warnAfterErrors\":{\"type\":\"integer\",\"minimum\":0,\"help\":\"health warns after this many requests "
         "in a row got no response (default 10; 0 never)\"}}}";
}
