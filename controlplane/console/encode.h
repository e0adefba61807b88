/* The console's JSON shapes, built with jansson from the admin API's own views (TaskRun,
 * AgentInfo, JobEvent): one place that says what a task run, an agent or a live event looks
 * like to the browser (docs/console.md lists the fields). No daemon state; any thread. */
#ifndef MU_CONSOLE_ENCODE_H
#define MU_CONSOLE_ENCODE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "muster/v1/admin.pb-c.h"
#include "muster/v1/job.pb-c.h"

/* Lower-case names shown and filtered on: "running", "succeeded", "connected", ... */
const char *mu_console_task_state_name(int state);
const char *mu_console_job_state_name(int state);
const char *mu_console_agent_state_name(int state);

/* {"host","task","state","attempt","exit_code","signal","started_at_ms","finished_at_ms",
 * "message","retry_pending","anomalies":[flag names]}: a new reference, NULL when out of memory. Strings are cut to
 * 1 KiB (message) so a task run stays small whatever its agent said. */
json_t *mu_console_task_run_json(const Muster__V1__TaskRun *run);
/* {"id","hostname","state","labels":{},"os","arch","cpus","memory_bytes","load1","load5",
 * "running","last_heartbeat_ms","connected_at_ms","disconnect_reason"}. running: task
 * attempts the control plane has assigned there and not seen finish. */
json_t *mu_console_agent_json(const Muster__V1__AgentInfo *info, uint32_t running);

/* A packed JobEvent (as WatchJob sends it) as one server-sent event: *ret_name is "task"
 * (data: a task run), "anomaly" ({"host","task","attempt","flags":[],"detail"}: a run
 * flagged when it ended), "output" ({"host","task","stream","data","dropped_bytes"}, data as
 * UTF-8 text with invalid bytes replaced, cut to max_output bytes) or "job" ({"state",
 * "at_ms"}); *ret_data is compact JSON (malloc). MU_EINVAL for bytes that are no JobEvent,
 * MU_ENOMEM. */
int mu_console_event_json(const uint8_t *packed, size_t len, size_t max_output, const char **ret_name, char **ret_data);

/* Text as a JSON-safe UTF-8 string: invalid sequences become U+FFFD, at most max bytes of
 * input are read. A new reference. */
json_t *mu_console_text_json(const char *data, size_t len, size_t max);

/* {"error": msg, "status": status} as compact JSON (malloc; NULL when out of memory). */
char *mu_console_error_json(unsigned int status, const char *msg);
/* Dumps v compactly (malloc) and drops the reference; NULL when out of memory. */
char *mu_console_dump(json_t *v);

#endif
