/* sleep-echo: an example third-party task type built against muster_plugin.h alone.
 * Config (PluginTask.config_json): {"message": "hi", "count": 3, "intervalMs": 100}.
 * Every interval it writes the message to stdout and reports progress; at the end it sets
 * the output param `echoed` and succeeds. A cancel or timeout stops it at once. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"

/* Built as other versions for the deploy tests (-DSLEEP_ECHO_VERSION=...), which then also
 * report the version that ran a task as its output param `version`. */
#ifdef SLEEP_ECHO_VERSION
#define SLEEP_ECHO_REPORTS_VERSION 1
#else
#define SLEEP_ECHO_VERSION "0.1.0"
#define SLEEP_ECHO_REPORTS_VERSION 0
#endif

typedef struct echo_task {
  const muster_host_api *host;
  muster_timer *timer;
  char *message;
  long count, done;
} echo_task;

/* Reads and checks the config; on success *ret_msg is a malloc'd copy of the message. */
static int parse_config(const char *config_json, char **ret_msg, long *ret_count, long *ret_interval, char *errbuf) {
  json_error_t je;
  json_t *cfg = json_loads(config_json, 0, &je);
  if (cfg == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "sleep-echo: config is not JSON: %s", je.text);
    return -EINVAL;
  }
  int rc = -EINVAL;
  json_t *msg = json_object_get(cfg, "message");
  json_t *count = json_object_get(cfg, "count");
  json_t *interval = json_object_get(cfg, "intervalMs");
  if (!json_is_string(msg)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "sleep-echo: config.message: required string");
  } else if (count != NULL &&
             (!json_is_integer(count) || json_integer_value(count) < 1 || json_integer_value(count) > 1000)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "sleep-echo: config.count: must be a whole number from 1 to 1000");
  } else if (interval != NULL &&
             (!json_is_integer(interval) || json_integer_value(interval) < 0 || json_integer_value(interval) > 60000)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "sleep-echo: config.intervalMs: must be 0 to 60000");
  } else {
    *ret_count = count ? (long)json_integer_value(count) : 1;
    *ret_interval = interval ? (long)json_integer_value(interval) : 100;
    *ret_msg = ret_msg ? strdup(json_string_value(msg)) : NULL;
    rc = *ret_msg ? 0 : -ENOMEM;
  }
  json_decref(cfg);
  return rc;
}

static int echo_validate(const char *spec_json, const char *config_json, char *errbuf) {
  (void)spec_json;
  char *msg = NULL;
  long count, interval;
  int rc = parse_config(config_json, &msg, &count, &interval, errbuf);
  free(msg);
  return rc;
}

static void on_tick(muster_task *task, muster_timer *timer, void *user) {
  (void)timer;
  echo_task *et = user;
  char line[4200];
  int n = snprintf(line, sizeof line, "%s\n", et->message);
  et->host->emit_output(task, MUSTER_STDOUT, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  et->done++;
  char progress[64];
  snprintf(progress, sizeof progress, "echo %ld of %ld", et->done, et->count);
  et->host->report_progress(task, 100.0 * (double)et->done / (double)et->count, progress);
  if (et->done < et->count) return;
  et->host->timer_stop(task, et->timer);
  et->timer = NULL;
  char value[32];
  snprintf(value, sizeof value, "%ld", et->done);
  et->host->set_param(task, "echoed", value);
  muster_result r = {MUSTER_STATE_SUCCEEDED, 0, 0, "echoed"};
  et->host->finish(task, &r);
}

static int echo_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  echo_task *et = calloc(1, sizeof *et);
  if (et == NULL) return -ENOMEM;
  et->host = host;
  host->set_user_data(task, et); /* freed in cleanup, whatever happens next */
  long interval;
  int rc = parse_config(host->context(task)->config_json, &et->message, &et->count, &interval, errbuf);
  if (rc != 0) return rc;
  host->log(task, MUSTER_LOG_INFO, "echoing %ld times every %ld ms", et->count, interval);
  if (SLEEP_ECHO_REPORTS_VERSION) host->set_param(task, "version", SLEEP_ECHO_VERSION);
  return host->timer_start(task, (uint64_t)interval, (uint64_t)(interval > 0 ? interval : 1), on_tick, et, &et->timer);
}

static void echo_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  echo_task *et = host->user_data(task);
  if (et->timer != NULL) host->timer_stop(task, et->timer);
  et->timer = NULL;
  muster_result r = {reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, -1, 0,
                     "stopped early"};
  host->finish(task, &r);
}

static void echo_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  echo_task *et = user_data;
  if (et == NULL) return;
  free(et->message);
  free(et);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "sleep-echo",
    .version = SLEEP_ECHO_VERSION,
    .description = "echoes a message N times, one per interval, with progress",
    .validate = echo_validate,
    .start = echo_start,
    .cancel = echo_cancel,
    .cleanup = echo_cleanup,
};
