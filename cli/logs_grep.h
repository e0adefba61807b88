/* `muster logs JOB --grep REGEX`: the lines of a job's output that match, across its hosts,
 * with hosts whose matching lines are the same printed once as a group (clubak-style), the
 * biggest group first, so the odd host out stands out at the end. */
#ifndef MU_CLI_LOGS_GREP_H
#define MU_CLI_LOGS_GREP_H

#include <stddef.h>
#include <stdio.h>

#include "lib/base/err.h"

#define MU_GREP_MAX_LINES 10000 /* matching lines kept per host; more are counted */
#define MU_GREP_MAX_LINE 4096   /* bytes of one line kept */
#define MU_GREP_MAX_HOSTS 100000

typedef struct mu_logs_grep mu_logs_grep;

/* regex is a POSIX extended regular expression; hosts (NULL: all) a comma list of agent ids
 * whose output counts. MU_EINVAL naming a bad regex. */
int mu_logs_grep_new(const char *regex, const char *hosts, mu_logs_grep **ret, mu_err *err);
void mu_logs_grep_free(mu_logs_grep *g);

/* Output of task_id ("JOB/AGENT/TASK" or "AGENT/TASK"), in order; lines are assembled per
 * task across calls. */
void mu_logs_grep_feed(mu_logs_grep *g, const char *task_id, const char *data, size_t len);

/* Prints the groups and the hosts without a match; returns the number of matching lines. */
size_t mu_logs_grep_print(mu_logs_grep *g, FILE *out);

#endif
