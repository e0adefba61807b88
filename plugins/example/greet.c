/* greet: an example SDK v2 (ABI 2) plugin built against muster_plugin.h alone.
 * Plugin-wide config (configure(): the agent's `plugins: {greet: {config: ...}}` or the central
 * `muster plugin config greet`): {"greeting": "hello", "punctuation": "!"}.
 * Task config (PluginTask.config_json): {"name": "world", "delayMs": 0}. A task writes
 * "<greeting>, <name><punctuation>" to stdout, sets the output param `greeting` to the
 * greeting it used, and succeeds. Metrics: muster_plugin_greet_greetings_total{outcome} and
 * muster_plugin_greet_name_length_bytes (histogram). Health warns while the greeting is "" */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"

typedef struct greet_state {
  char greeting[128];
  char punctuation[8];
  muster_metric *greetings; /* greetings_total{outcome} */
  muster_metric *name_len;  /* name_length histogram */
  const muster_plugin_api *api;
} greet_state;

static const double len_buckets[] = {1, 4, 16, 64};

static int greet_configure(muster_plugin_env *env, const muster_plugin_api *api, const char *config_json,
                           char *errbuf) {
  json_error_t je;
  json_t *c = json_loads(config_json, 0, &je);
  json_t *g = json_object_get(c, "greeting");
  json_t *p = json_object_get(c, "punctuation");
  int rc = -EINVAL;
  if (!json_is_object(c)) snprintf(errbuf, MUSTER_ERRBUF_SIZE, "greet: config is not a JSON object");
  else if (g != NULL && (!json_is_string(g) || json_string_length(g) > 127))
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "greet: config.greeting: want a string of at most 127 bytes");
  else if (p != NULL && (!json_is_string(p) || json_string_length(p) > 7))
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "greet: config.punctuation: want a string of at most 7 bytes");
  else rc = 0;
  if (rc != 0) {
    json_decref(c);
    return rc;
  }
  greet_state *st = api->state(env);
  if (st == NULL) {
    st = calloc(1, sizeof *st);
    if (st == NULL) {
      json_decref(c);
      return -ENOMEM;
    }
    static const char *const outcome[] = {"outcome", NULL};
    muster_metric_desc d1 = {
        "greetings_total", "Greetings written, by outcome.", MUSTER_METRIC_COUNTER, outcome, NULL, 0};
    muster_metric_desc d2 = {
        "name_length_bytes", "Length of the names greeted.", MUSTER_METRIC_HISTOGRAM, NULL, len_buckets, 4};
    char eb[MUSTER_ERRBUF_SIZE] = "";
    if (api->metric_register(env, &d1, &st->greetings, eb) != 0 ||
        api->metric_register(env, &d2, &st->name_len, eb) != 0)
      api->log(env, MUSTER_LOG_WARN, "metrics: %s", eb);
    st->api = api;
    api->set_state(env, st);
  }
  snprintf(st->greeting, sizeof st->greeting, "%s", g != NULL ? json_string_value(g) : "hello");
  snprintf(st->punctuation, sizeof st->punctuation, "%s", p != NULL ? json_string_value(p) : "!");
  api->log(env, MUSTER_LOG_INFO, "greeting is now \"%s\"", st->greeting);
  json_decref(c);
  return 0;
}

static int greet_health(muster_plugin_env *env, const muster_plugin_api *api, char *errbuf) {
  greet_state *st = api->state(env);
  if (st == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "not configured");
    return MUSTER_HEALTH_FAIL;
  }
  if (st->greeting[0] == '\0') {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "the greeting is empty; set plugins.greet.config.greeting");
    return MUSTER_HEALTH_WARN;
  }
  return MUSTER_HEALTH_OK;
}

static const char *greet_describe(muster_plugin_env *env, const muster_plugin_api *api) {
  (void)env;
  (void)api;
  return "{\"params\":{\"name\":{\"type\":\"string\",\"required\":true,\"help\":\"who to greet\"},"
         "\"delayMs\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":600000,\"help\":\"wait this long first\"}},"
         "\"config\":{\"greeting\":{\"type\":\"string\",\"help\":\"the word before the name (default hello)\"},"
         "\"punctuation\":{\"type\":\"string\",\"help\":\"after the name (default !)\"}}}";
}

static void greet_shutdown(muster_plugin_env *env, const muster_plugin_api *api) {
  free(api->state(env));
  api->set_state(env, NULL);
}

static int greet_validate(const char *spec_json, const char *config_json, char *errbuf) {
  (void)spec_json;
  json_error_t je;
  json_t *c = json_loads(config_json, 0, &je);
  int ok = json_is_string(json_object_get(c, "name"));
  json_decref(c);
  if (!ok) snprintf(errbuf, MUSTER_ERRBUF_SIZE, "greet: config.name: required string");
  return ok ? 0 : -EINVAL;
}

/* One task: the line to write, written when the timer fires (delayMs, default 0). */
typedef struct greet_task {
  const muster_host_api *host;
  muster_timer *timer;
  char line[512];
  char greeting[128];
  greet_state *st;
} greet_task;

static void greet_now(muster_task *task, muster_timer *timer, void *user) {
  (void)timer;
  greet_task *gt = user;
  gt->timer = NULL;
  gt->host->emit_output(task, MUSTER_STDOUT, gt->line, strlen(gt->line));
  gt->host->set_param(task, "greeting", gt->greeting);
  if (gt->st != NULL) {
    const char *ok[] = {"ok"};
    gt->st->api->metric_add(gt->st->greetings, ok, 1);
  }
  muster_result r = {MUSTER_STATE_SUCCEEDED, 0, 0, NULL};
  gt->host->finish(task, &r);
}

static int greet_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  if (greet_validate(NULL, host->context(task)->config_json, errbuf) != 0) return -EINVAL;
  greet_task *gt = calloc(1, sizeof *gt);
  if (gt == NULL) return -ENOMEM;
  gt->host = host;
  host->set_user_data(task, gt); /* freed in cleanup */
  json_t *c = json_loads(host->context(task)->config_json, 0, NULL);
  const char *name = json_string_value(json_object_get(c, "name"));
  json_int_t delay = json_integer_value(json_object_get(c, "delayMs"));
  /* SDK v2: the state configure() set; NULL on an agent older than ABI 2 */
  gt->st = host->size >= offsetof(muster_host_api, plugin_state) + sizeof host->plugin_state ? host->plugin_state(task)
                                                                                             : NULL;
  snprintf(gt->greeting, sizeof gt->greeting, "%s", gt->st != NULL ? gt->st->greeting : "hello");
  snprintf(gt->line, sizeof gt->line, "%s, %s%s\n", gt->greeting, name, gt->st != NULL ? gt->st->punctuation : "!");
  if (gt->st != NULL) gt->st->api->metric_observe(gt->st->name_len, NULL, (double)strlen(name));
  json_decref(c);
  if (host->timer_start(task, delay > 0 ? (uint64_t)delay : 0, 0, greet_now, gt, &gt->timer) != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "greet: no timer");
    return -ENOMEM;
  }
  return 0;
}

static void greet_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  greet_task *gt = host->user_data(task);
  if (gt != NULL && gt->timer != NULL) host->timer_stop(task, gt->timer);
  if (gt != NULL) gt->timer = NULL;
  muster_result r = {reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, -1, 0,
                     "greet: cancelled before greeting"};
  host->finish(task, &r);
}

static void greet_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  free(user_data);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "greet",
    .version = "2.0.0",
    .description = "greets a name with the configured greeting (SDK v2 example)",
    .validate = greet_validate,
    .start = greet_start,
    .cancel = greet_cancel,
    .cleanup = greet_cleanup,
    .configure = greet_configure,
    .health = greet_health,
    .describe = greet_describe,
    .shutdown = greet_shutdown,
};
