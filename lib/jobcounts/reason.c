/* The reason class of an attempt's end (reason.h): the OOM test is the one `muster explain`
 * always used — the agent's "memory limit of" message, or a SIGKILL with memory.peak within
 * 10 % of the limit; a cancellation for an agent that never came is "unreachable". */
#include "lib/jobcounts/reason.h"

#include <signal.h>
#include <string.h>

static int has(const char *msg, const char *what) { return msg != NULL && strstr(msg, what); }

const char *mu_run_reason(const mu_run_end *e) {
  switch (e->state) {
    case MUSTER__V1__TASK_STATE__SUCCEEDED: return "none";
    case MUSTER__V1__TASK_STATE__FAILED: {
      int killed = e->signal == SIGKILL || e->exit_code == 128 + SIGKILL;
      if (has(e->message, "memory limit of") ||
          (killed && e->memory_limit_bytes > 0 && e->memory_peak_bytes * 10 >= e->memory_limit_bytes * 9))
        return "oom";
      if (e->signal != 0) return "signal";
      if (e->exit_code != 0) return "exit_code";
      return "refused";
    }
    case MUSTER__V1__TASK_STATE__TIMED_OUT: return "timeout";
    case MUSTER__V1__TASK_STATE__LOST: return "lost";
    case MUSTER__V1__TASK_STATE__UNREACHABLE: return has(e->message, "skipped") ? "skipped" : "unreachable";
    case MUSTER__V1__TASK_STATE__CANCELLED: /* records from before UNREACHABLE said CANCELLED */
      if (has(e->message, "unreachable") || has(e->message, "disconnected") || has(e->message, "no matching"))
        return "unreachable";
      return "cancelled";
    case MUSTER__V1__TASK_STATE__PENDING: return "waiting";
    default: return "running";
  }
}

const char *mu_task_state_label(Muster__V1__TaskState state) {
  static const char *const names[] = {"unknown", "pending",   "assigned",  "starting", "running",    "succeeded",
                                      "failed",  "timed_out", "cancelled", "lost",     "unreachable"};
  return (int)state >= 0 && (int)state <= MUSTER__V1__TASK_STATE__UNREACHABLE ? names[state] : names[0];
}
