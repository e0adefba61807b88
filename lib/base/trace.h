/* Trace ids for jobs and task runs, W3C Trace Context shaped (https://www.w3.org/TR/trace-context/).
 * They are derived from the ids, not stored: the control plane, the agent and a task compute
 * the same trace id from the job id, and the same span id from the task id and attempt, so
 * every log line and every request a task makes can be tied to its job without any new field
 * on the wire. Derivation (documented in docs/observability.md, reproducible anywhere):
 *   trace id = hex of FNV-1a-64(job id, basis A) then FNV-1a-64(job id, basis B), mixed
 *   span id  = hex of FNV-1a-64("<task id>#<attempt>", basis A), mixed
 * where "mixed" is splitmix64's finaliser and an all-zero result (invalid in W3C) becomes 1. */
#ifndef MU_BASE_TRACE_H
#define MU_BASE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define MU_TRACE_ID_HEX 33    /* 32 hex digits and a NUL */
#define MU_SPAN_ID_HEX 17     /* 16 hex digits and a NUL */
#define MU_TRACEPARENT_LEN 56 /* "00-<32>-<16>-01" and a NUL */

void mu_trace_id(const char *job_id, char out[MU_TRACE_ID_HEX]);
void mu_span_id(const char *task_id, uint32_t attempt, char out[MU_SPAN_ID_HEX]);
/* "00-TRACE-SPAN-01" (version 00, sampled) for the run. */
void mu_traceparent(const char *job_id, const char *task_id, uint32_t attempt, char out[MU_TRACEPARENT_LEN]);

/* The first job id ("j-<hex>-<n>") in text, copied into out (NUL-terminated); 0 or -1. */
int mu_trace_find_job_id(const char *text, char *out, size_t out_size);

#endif
