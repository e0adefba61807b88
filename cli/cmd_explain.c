/* `muster explain JOB [AGENT/TASK]`: fetches the job (GetJob with its task runs) and the
 * agents (ListAgents), and prints why each run that did not succeed ended or waits
 * (explain.c). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/list_agents.h"
#include "cli/explain.h"
#include "lib/base/clock.h"

static const char explain_usage[] =
    "usage: muster explain JOB [AGENT/TASK]\n"
    "\n"
    "Says why each task run of JOB that did not succeed failed, was cancelled, was lost or is\n"
    "still waiting: the reason class (exit code, signal, out of memory, timeout, lost,\n"
    "unreachable, cancelled, refused), the limit or agent behind it, and the last lines of its\n"
    "output. With AGENT/TASK (or a task name), that run whatever its state.\n";

int mu_cmd_explain(const mu_cli_opts *opts, int argc, char **argv) {
  const char *pos[2] = {NULL, NULL};
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(explain_usage, stdout);
      return 0;
    }
    if (argv[i][0] == '-' || n == 2) {
      fprintf(stderr, "muster explain: unexpected argument '%s'\n%s", argv[i], explain_usage);
      return 2;
    }
    pos[n++] = argv[i];
  }
  if (n == 0) {
    fprintf(stderr, "muster explain: JOB is required\n%s", explain_usage);
    return 2;
  }
  Muster__V1__GetJobRequest jreq = MUSTER__V1__GET_JOB_REQUEST__INIT;
  jreq.job_id = (char *)pos[0];
  jreq.include_tasks = 1;
  ProtobufCMessage *job = NULL, *agents = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/GetJob", &jreq.base, &muster__v1__job__descriptor, &job, &err) != 0) {
    fprintf(stderr, "muster explain: %s\n", err.msg);
    return 1;
  }
  Muster__V1__ListAgentsRequest areq = MUSTER__V1__LIST_AGENTS_REQUEST__INIT;
  if (mu_cli_list_agents(opts, &areq, &agents, &err) != 0)
    fprintf(stderr, "muster explain: agents unknown (%s)\n", err.msg);
  const Muster__V1__ListAgentsResponse *al = (const Muster__V1__ListAgentsResponse *)agents;
  size_t explained = mu_explain_job((const Muster__V1__Job *)job, al ? al->agents : NULL, al ? al->n_agents : 0, pos[1],
                                    mu_now_ms(), opts->quiet, stdout);
  protobuf_c_message_free_unpacked(job, NULL);
  if (agents != NULL) protobuf_c_message_free_unpacked(agents, NULL);
  return pos[1] != NULL && explained == 0 ? 1 : 0;
}
