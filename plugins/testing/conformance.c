/* The plugin conformance suite (conformance.h): a few real tasks through the real runner,
 * each result checked against the contract every plugin owes the agent. */
#include "plugins/testing/conformance.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BOUND_PROGRESS_MSG 4096
#define BOUND_PARAMS 256
#define BOUND_PARAM_VALUE 4096

/* LeakSanitizer's on-demand check, present only in sanitizer builds. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

typedef struct suite {
  const muster_pt_conformance_opts *o;
  FILE *out;
  int failed;
  int64_t max_stall;
  int leak_runs, leaky_runs;
  int bounded_failed;
} suite;

static void report(suite *s, const char *verdict, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(suite *s, const char *verdict, const char *check, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(s->out, "%-4s %-9s ", verdict, check);
  vfprintf(s->out, fmt, ap);
  fputc('\n', s->out);
  va_end(ap);
  if (strcmp(verdict, "skip") == 0) { /* as MU_SKIP: counted by scripts/test, a failure under CI=true */
    const char *ci = getenv("CI");
    fprintf(s->out, "MU_TEST_SKIPPED: conformance %s\n", check);
    if (ci != NULL && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0)) {
      fprintf(s->out, "FAIL %-9s would skip under CI=true\n", check);
      s->failed++;
    }
  }
  if (strcmp(verdict, "FAIL") == 0) s->failed++;
  if (strcmp(verdict, "FAIL") == 0 && strcmp(check, "bounded") == 0) s->bounded_failed++;
}

/* The checks every run gets: leftovers, bounds, stall, leaks. Returns false after reporting
 * a failure under check's name. */
static bool common_checks(suite *s, const char *check, const muster_pt_result *r) {
  if (r->leftover_pids > 0) {
    report(s, "FAIL", check,
           "%d process(es) still running after the task ended (pid %d, now killed): "
           "everything a task starts must end with it (use host->spawn)",
           r->leftover_pids, r->leftover_pid);
    return false;
  }
  if (r->event_after_final) {
    report(s, "FAIL", check, "events after the final state");
    return false;
  }
  if (r->max_progress_msg > BOUND_PROGRESS_MSG || r->n_params > BOUND_PARAMS) {
    report(s, "FAIL", "bounded", "%s: progress message of %zu bytes (bound %d) or %zu params (bound %d)", check,
           r->max_progress_msg, BOUND_PROGRESS_MSG, r->n_params, BOUND_PARAMS);
    return false;
  }
  for (size_t i = 0; i < r->n_params; i++)
    if (strlen(r->param_values[i]) > BOUND_PARAM_VALUE) {
      report(s, "FAIL", "bounded", "%s: param %s is %zu bytes (bound %d)", check, r->param_keys[i],
             strlen(r->param_values[i]), BOUND_PARAM_VALUE);
      return false;
    }
  uint64_t limit = s->o->world.output_limit ? s->o->world.output_limit : 16u * 1024 * 1024;
  if (r->out_total + r->err_total > limit + 4096) {
    report(s, "FAIL", "bounded", "%s: %llu bytes of output past the %llu-byte limit", check,
           (unsigned long long)(r->out_total + r->err_total), (unsigned long long)limit);
    return false;
  }
  if (__lsan_do_recoverable_leak_check != NULL) {
    s->leak_runs++;
    if (__lsan_do_recoverable_leak_check() != 0) s->leaky_runs++;
  }
  return true;
}

static int64_t w_grace(const suite *s) { return s->o->world.grace_ms > 0 ? s->o->world.grace_ms : 1000; }

static int run_one(suite *s, muster_pt_world *w, const char *spec, int64_t cancel_after, muster_pt_result *r,
                   mu_err *err) {
  muster_pt_run_opts ro = {.spec_json = spec,
                           .params = s->o->params,
                           .n_params = s->o->n_params,
                           .cancel_after_ms = cancel_after,
                           .deadline_ms = 120000};
  return muster_pt_run(w, &ro, r, err);
}

static void check_run(suite *s, muster_pt_world *w, int *ret_state) {
  muster_pt_result r;
  mu_err e = {0};
  int rc = run_one(s, w, s->o->spec_json, -1, &r, &e);
  *ret_state = r.state;
  if (rc != 0) {
    report(s, "FAIL", "run", "%s", e.msg);
  } else if (r.n_states < 3 || r.states[0] != MU_TASK_STARTING || r.states[1] != MU_TASK_RUNNING) {
    report(s, "FAIL", "run", "states were not STARTING, RUNNING, final (%d states, last %s: %s)", r.n_states,
           muster_pt_state_name(r.state), r.message);
  } else if (common_checks(s, "run", &r)) {
    bool ok = true;
    for (const char *const *a = s->o->expect; a != NULL && *a != NULL && ok; a++) {
      char why[1024];
      int x = muster_pt_expect(&r, *a, why, sizeof why);
      if (x != 0) {
        report(s, "FAIL", "run", "expect %s: %s", *a, why);
        ok = false;
      }
    }
    if (ok)
      report(s, "ok", "run", "%s in %lld ms (%s)", muster_pt_state_name(r.state), (long long)r.wall_ms, r.message);
  }
  s->max_stall = r.max_stall_ms;
  muster_pt_result_free(&r);
  /* A loop stall must repeat to count: on a busy machine one slow iteration can be the
   * scheduler's doing. A plugin that blocks does so every time; the best of three is kept. */
  for (int i = 0; i < 2 && s->max_stall > s->o->max_stall_ms; i++) {
    mu_err e = {0};
    if (run_one(s, w, s->o->spec_json, -1, &r, &e) == 0 && r.max_stall_ms < s->max_stall) s->max_stall = r.max_stall_ms;
    muster_pt_result_free(&r);
  }
}

/* cancel (timeout_spec NULL) or timeout (the spec with a short timeout). */
static void check_stop(suite *s, muster_pt_world *w, const char *check, const char *timeout_spec) {
  int64_t after = s->o->cancel_after_ms;
  muster_pt_result r;
  mu_err e = {0};
  int want = timeout_spec ? MU_TASK_TIMED_OUT : MU_TASK_CANCELLED;
  const char *spec = timeout_spec ? timeout_spec : s->o->cancel_spec_json ? s->o->cancel_spec_json : s->o->spec_json;
  int rc = run_one(s, w, spec, timeout_spec ? -1 : after, &r, &e);
  int64_t bound = after + w_grace(s) + 2000;
  if (rc != 0) {
    report(s, "FAIL", check, "%s", e.msg);
  } else if (r.state != want) {
    report(s, "FAIL", check, "ended %s (%s), wanted %s%s", muster_pt_state_name(r.state), r.message,
           muster_pt_state_name(want),
           r.state == MU_TASK_SUCCEEDED ? ": give the test a cancel spec that runs longer than the cancel delay" : "");
  } else if (strstr(r.message, "did not stop in time") != NULL || r.wall_ms > bound) {
    report(s, "FAIL", check, "the plugin did not stop within the grace period (%lld ms; %s)", (long long)r.wall_ms,
           r.message);
  } else if (common_checks(s, check, &r)) {
    report(s, "ok", check, "%s after %lld ms, nothing left running", muster_pt_state_name(r.state),
           (long long)r.wall_ms);
  }
  muster_pt_result_free(&r);
}

/* The cancel spec with "timeout" set to ms. NULL when it is not a JSON object. */
static char *with_timeout(const char *spec, int64_t ms) {
  json_t *j = json_loads(spec, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  char t[32];
  snprintf(t, sizeof t, "%lldms", (long long)ms);
  json_object_set_new(j, "timeout", json_string(t));
  char *out = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return out;
}

int muster_pt_conformance(const muster_pt_conformance_opts *o, FILE *out, mu_err *err) {
  suite s = {.o = o, .out = out};
  muster_pt_conformance_opts defaults = *o;
  if (defaults.cancel_after_ms <= 0) defaults.cancel_after_ms = 300;
  if (defaults.max_stall_ms <= 0) defaults.max_stall_ms = 10;
  s.o = &defaults;
  muster_pt_opts wo = o->world;
  wo.host_path = NULL;
  muster_pt_world *w = NULL;
  int rc = muster_pt_world_new(o->plugin_so, &wo, &w, err);
  if (rc != 0) return rc;
  const mu_plugin_info *pi = muster_pt_world_plugin(w);
  fprintf(out, "conformance of %s %s (%s)\n", pi->type, pi->version, o->plugin_so);
  int state = 0;
  check_run(&s, w, &state);
  if (defaults.skip_cancel != NULL) {
    report(&s, "skip", "cancel", "%s", defaults.skip_cancel);
    report(&s, "skip", "timeout", "%s", defaults.skip_cancel);
  } else {
    check_stop(&s, w, "cancel", NULL);
    char *ts = with_timeout(defaults.cancel_spec_json ? defaults.cancel_spec_json : defaults.spec_json,
                            defaults.cancel_after_ms);
    if (ts == NULL) report(&s, "FAIL", "timeout", "the cancel spec is not a JSON object");
    else check_stop(&s, w, "timeout", ts);
    free(ts);
  }
  muster_pt_world_free(w);
  if (__lsan_do_recoverable_leak_check == NULL)
    report(&s, "skip", "cleanup",
           "not a sanitizer build: run under --config=asan to check that cleanup() frees "
           "what start() allocated");
  else if (s.leaky_runs > 0)
    report(&s, "FAIL", "cleanup", "LeakSanitizer found memory not freed after %d of %d tasks (report above)",
           s.leaky_runs, s.leak_runs);
  else report(&s, "ok", "cleanup", "no leaks after %d tasks (LeakSanitizer)", s.leak_runs);
  if (s.max_stall > defaults.max_stall_ms)
    report(&s, "FAIL", "stall",
           "the loop was busy %lld ms in one iteration, in each of 3 runs (bound %lld ms): "
           "something in the plugin blocks it",
           (long long)s.max_stall, (long long)defaults.max_stall_ms);
  else
    report(&s, "ok", "stall", "longest loop iteration %lld ms in a run (bound %lld ms)", (long long)s.max_stall,
           (long long)defaults.max_stall_ms);
  if (s.bounded_failed == 0)
    report(&s, "ok", "bounded", "progress messages <= %d bytes, <= %d params of <= %d bytes, output within its limit",
           BOUND_PROGRESS_MSG, BOUND_PARAMS, BOUND_PARAM_VALUE);
  if (o->world.host_path == NULL) {
    report(&s, "skip", "isolation", "no muster-plugin-host given (--plugin-host)");
  } else {
    mu_err e = {0};
    if (muster_pt_world_new(o->plugin_so, &o->world, &w, &e) != 0) {
      report(&s, "FAIL", "isolation", "%s", e.msg);
    } else {
      muster_pt_result r;
      if (run_one(&s, w, defaults.spec_json, -1, &r, &e) != 0) report(&s, "FAIL", "isolation", "%s", e.msg);
      else if (r.state != state)
        report(&s, "FAIL", "isolation", "out of process it ended %s (%s), in-process %s", muster_pt_state_name(r.state),
               r.message, muster_pt_state_name(state));
      else if (r.leftover_pids > 0)
        report(&s, "FAIL", "isolation", "%d process(es) left behind out of process", r.leftover_pids);
      else
        report(&s, "ok", "isolation", "out of process: %s in %lld ms", muster_pt_state_name(r.state),
               (long long)r.wall_ms);
      muster_pt_result_free(&r);
      muster_pt_world_free(w);
    }
  }
  fprintf(out, "%s: %d check(s) failed\n", s.failed ? "NOT CONFORMANT" : "conformant", s.failed);
  return s.failed;
}
