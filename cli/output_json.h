/* The CLI's JSON for scripts (`-o json`, docs/cli.md "JSON output"): one object per line,
 * every field present (zero values, empty lists and unset messages included), 64-bit
 * numbers as numbers, one name per concept across commands (a job's id is "jobId" wherever
 * it appears, an agent's "agentId"), and on every line "schema" (MU_CLI_JSON_SCHEMA, raised
 * when a field changes meaning or goes away) and "kind" (what the line describes: "job",
 * "task", "summary", "agent", ...). An unset nested object is null. */
#ifndef MU_CLI_OUTPUT_JSON_H
#define MU_CLI_OUTPUT_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "muster/v1/job.pb-c.h"

#define MU_CLI_JSON_SCHEMA 1

/* msg as a new JSON object in the CLI's shape, without schema and kind: proto field names in
 * lowerCamelCase with every field present, ids renamed ("id" of a Job is "jobId"), a Job's
 * flat count fields left out (they repeat "counts") and its unreachable hosts under
 * "unreachableHosts"; a TaskRun's "exitCode" is null when the run has no exit code
 * (mu_task_run_exit). NULL when out of memory. */
json_t *mu_cli_json_of(const ProtobufCMessage *msg);

/* Prints obj as one line with "schema" and "kind" first, and releases it (a NULL obj prints
 * nothing). Returns 0, or 1 when it could not be printed (said on stderr). */
int mu_cli_json_emit(const char *kind, json_t *obj);

/* mu_cli_json_emit for objects built by hand with snake_case names (the local commands: pki,
 * keygen, bundle pack/sign/verify): the top-level names are turned to lowerCamelCase first. */
int mu_cli_json_emit_camel(const char *kind, json_t *obj);

/* mu_cli_json_emit(kind, mu_cli_json_of(msg)); kind NULL: the kind of the message's type
 * ("agent" for AgentInfo, "job", "task", "audit", "bundle", "token", "secret", "cluster",
 * "log"; other types by their name in lowerCamelCase, "cancelJobResponse"). */
int mu_cli_json_message(const char *kind, const ProtobufCMessage *msg);

/* The line mu_cli_json_emit would print (no newline) as a new string the caller frees, and
 * obj released; NULL when out of memory or obj is NULL. */
char *mu_cli_json_line(const char *kind, json_t *obj);
/* The line of msg with its type's kind, as mu_cli_json_message prints it; caller frees. */
char *mu_cli_json_message_line(const ProtobufCMessage *msg);

#endif
