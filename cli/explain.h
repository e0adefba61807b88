/* `muster explain JOB [AGENT/TASK]`: why each task run that did not succeed ended the way it
 * did, or why it is still waiting, in one sentence with its reason class (exit code, signal,
 * out of memory, timeout, lost, unreachable, cancelled, refused), the last lines of its output
 * and the agent's state when that is the reason. Built from GetJob and ListAgents only. */
#ifndef MU_CLI_EXPLAIN_H
#define MU_CLI_EXPLAIN_H

#include <stdint.h>
#include <stdio.h>

#include "muster/v1/admin.pb-c.h"

#define MU_EXPLAIN_TAIL_LINES 5 /* lines of a failed run's output shown */

/* Writes the explanation to out. task (NULL: every run that did not succeed) is "AGENT/NAME"
 * or a full task id, and then that run is explained whatever its state. now_ms is for ages.
 * brief (-q): one line per run ("AGENT/TASK STATE CLASS: why"), no job line, no output.
 * Returns the number of runs explained. */
size_t mu_explain_job(const Muster__V1__Job *job, Muster__V1__AgentInfo *const *agents, size_t n_agents,
                      const char *task, int64_t now_ms, int brief, FILE *out);

#endif
