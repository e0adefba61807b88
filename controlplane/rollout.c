/* rollout.h */
#include "controlplane/rollout.h"

#include <stdio.h>

#include "lib/base/clock.h"
#include "lib/base/count_or_pct.h"

static void say(void (*problem)(void *, const char *), void *ud, int *n, const char *fmt, const char *a) {
  char msg[MU_ERR_MSG_MAX + 64];
  snprintf(msg, sizeof msg, fmt, a);
  problem(ud, msg);
  (*n)++;
}

int mu_rollout_parse(const Muster__V1__Rollout *ro, mu_rollout *ret, void (*problem)(void *ud, const char *msg),
                     void *ud) {
  mu_rollout r = {.max_errors = -1};
  int n = 0;
  if (ro != NULL) {
    mu_err e = {0};
    if (ro->max_concurrency[0] != '\0' &&
        mu_count_or_pct_parse(ro->max_concurrency, &r.max_concurrency, &r.max_concurrency_pct, &e) != 0)
      say(problem, ud, &n, "rollout.max_concurrency: %s", e.msg);
    if (ro->max_concurrency[0] != '\0' && r.max_concurrency == 0 && r.max_concurrency_pct == 0)
      say(problem, ud, &n, "%s", "rollout.max_concurrency: must be at least 1");
    if (ro->max_errors[0] != '\0') {
      uint32_t c = 0, pct = 0;
      if (mu_count_or_pct_parse(ro->max_errors, &c, &pct, &e) != 0) {
        say(problem, ud, &n, "rollout.max_errors: %s", e.msg);
      } else {
        r.max_errors = (int32_t)c;
        r.max_errors_pct = pct;
      }
    }
    r.batch = ro->batch;
    r.skip_unreachable = ro->skip_unreachable;
    if (ro->batch > 0 && ro->max_concurrency[0] != '\0')
      say(problem, ud, &n, "%s", "rollout: batch and max_concurrency conflict (a batch is its own concurrency)");
    if (ro->disconnected_wait[0] != '\0') {
      if (mu_duration_parse(ro->disconnected_wait, &r.disconnected_wait_ms, &e) != 0) {
        r.disconnected_wait_ms = 0;
        say(problem, ud, &n, "rollout.disconnected_wait: %s", e.msg);
      }
    }
  }
  *ret = r;
  return n;
}

uint32_t mu_rollout_concurrency(const mu_rollout *r, uint32_t n) {
  if (r->max_concurrency_pct > 0) {
    uint32_t c = (uint32_t)(((uint64_t)n * r->max_concurrency_pct) / 100);
    return c ? c : 1;
  }
  if (r->batch > 0) return r->batch;
  return r->max_concurrency ? r->max_concurrency : (n ? n : 1);
}

int64_t mu_rollout_error_budget(const mu_rollout *r, uint32_t n) {
  if (r->max_errors_pct > 0) return (int64_t)(((uint64_t)n * r->max_errors_pct) / 100);
  return r->max_errors;
}

size_t mu_rollout_batch_of(const mu_rollout *r, size_t host_index) { return r->batch ? host_index / r->batch : 0; }

int mu_rollout_over_budget(int64_t budget, uint32_t failed, char *why, size_t size) {
  if (budget < 0 || (int64_t)failed <= budget) return 0;
  snprintf(why, size, "not started: max errors reached (%u failed, %lld allowed)", failed, (long long)budget);
  return 1;
}
