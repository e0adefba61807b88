/* The one definition of a job's counts (see jobcounts.h) and the words every CLI surface
 * prints them with. */
#include "lib/jobcounts/jobcounts.h"

#include <stdio.h>
#include <string.h>

static const char *const names[MU_COUNT_STATES] = {"pending",   "running",     "succeeded", "failed",
                                                   "cancelled", "unreachable", "skipped"};

const char *mu_count_state_name(mu_count_state s) { return s < MU_COUNT_STATES ? names[s] : "?"; }

void mu_job_counts_fill(Muster__V1__JobCounts *c, uint32_t targets, const uint32_t by_state[MU_COUNT_STATES]) {
  muster__v1__job_counts__init(c);
  c->targets = targets;
  c->running = by_state[MU_COUNT_RUNNING];
  c->succeeded = by_state[MU_COUNT_SUCCEEDED];
  c->failed = by_state[MU_COUNT_FAILED];
  c->cancelled = by_state[MU_COUNT_CANCELLED];
  c->unreachable = by_state[MU_COUNT_UNREACHABLE];
  c->skipped = by_state[MU_COUNT_SKIPPED];
  uint64_t placed = (uint64_t)c->running + c->succeeded + c->failed + c->cancelled + c->unreachable + c->skipped;
  c->pending = placed < targets ? (uint32_t)(targets - placed) : 0;
}

uint32_t mu_job_counts_get(const Muster__V1__JobCounts *c, mu_count_state s) {
  switch (s) {
    case MU_COUNT_PENDING: return c->pending;
    case MU_COUNT_RUNNING: return c->running;
    case MU_COUNT_SUCCEEDED: return c->succeeded;
    case MU_COUNT_FAILED: return c->failed;
    case MU_COUNT_CANCELLED: return c->cancelled;
    case MU_COUNT_UNREACHABLE: return c->unreachable;
    case MU_COUNT_SKIPPED: return c->skipped;
    default: return 0;
  }
}

uint32_t mu_job_counts_problems(const Muster__V1__JobCounts *c) { return c->failed + c->cancelled + c->unreachable; }

uint32_t mu_job_counts_ended(const Muster__V1__JobCounts *c) {
  return c->succeeded + mu_job_counts_problems(c) + c->skipped;
}

const char *mu_job_counts_format(const Muster__V1__JobCounts *c, char *buf, size_t size) {
  if (size == 0) return buf;
  char t[48];
  size_t off = (size_t)snprintf(buf, size, "%s", mu_plural(c->targets, "target", t, sizeof t));
  const char *sep = ": ";
  for (int s = 0; s < MU_COUNT_STATES && off < size; s++) {
    uint32_t n = mu_job_counts_get(c, (mu_count_state)s);
    if (n == 0) continue;
    off += (size_t)snprintf(buf + off, size - off, "%s%u %s", sep, n, names[s]);
    sep = ", ";
  }
  return buf;
}

int mu_task_run_exit(const Muster__V1__TaskRun *t, int *ret_code) {
  if (t->state == MUSTER__V1__TASK_STATE__SUCCEEDED) {
    *ret_code = t->exit_code;
    return 1;
  }
  if (t->state == MUSTER__V1__TASK_STATE__FAILED && t->signal == 0 && t->exit_code != 0) {
    *ret_code = t->exit_code;
    return 1;
  }
  return 0;
}

const char *mu_plural(uint64_t n, const char *noun, char *buf, size_t size) {
  snprintf(buf, size, "%llu %s%s", (unsigned long long)n, noun, n == 1 ? "" : "s");
  return buf;
}

const char *mu_duration_format(int64_t ms, char *buf, size_t size) {
  if (ms < 0) ms = 0;
  if (ms < 1000) snprintf(buf, size, "%lldms", (long long)ms);
  else if (ms < 10000) /* 1.25s: truncated, so 1999ms is not "2.00s" of a 2s timeout */
    snprintf(buf, size, "%lld.%02llds", (long long)(ms / 1000), (long long)(ms % 1000 / 10));
  else if (ms < 60000) snprintf(buf, size, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
  else if (ms < 3600000) snprintf(buf, size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms % 60000 / 1000));
  else snprintf(buf, size, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms % 3600000 / 60000));
  return buf;
}
