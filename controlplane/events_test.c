/* Tests for events.c: listeners are called in the order they subscribed, only for the members
 * they set, with what was published; the table is bounded and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/events.h"

static char trace[512];

static void note(const char *what, void *ud) {
  size_t n = strlen(trace);
  snprintf(trace + n, sizeof trace - n, "%s%s:%s", n ? " " : "", (const char *)ud, what);
}

static void up(void *ud, mu_agent *a) { note(a->id, ud); }
static void down(void *ud, mu_agent *a, int stopping) { note(stopping ? "stop" : a->id, ud); }
static void elected(void *ud, uint64_t term) { note(term == 7 ? "t7" : "t?", ud); }
static void deposed(void *ud, const char *reason, const char *to) { note(to ? to : reason, ud); }
static void record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  (void)len, (void)leading;
  note(value ? rel : "deleted", ud);
}

static void listeners_run_in_order(void **state) {
  (void)state;
  mu_events ev = {0};
  mu_err err = {0};
  mu_agent_listener a = {.ud = "first", .up = up};
  mu_agent_listener b = {.ud = "second", .up = up, .down = down};
  assert_int_equal(mu_events_on_agent(&ev, &a, &err), 0);
  assert_int_equal(mu_events_on_agent(&ev, &b, &err), 0);
  mu_agent agent = {.id = "web-1"};
  trace[0] = '\0';
  mu_events_agent_up(&ev, &agent);
  mu_events_agent_down(&ev, &agent, 1);
  mu_events_agent_heartbeat(&ev, &agent, NULL); /* nobody listens: nothing happens */
  assert_string_equal(trace, "first:web-1 second:web-1 second:stop");

  mu_cluster_listener c = {.ud = "sched", .elected = elected, .deposed = deposed};
  mu_cluster_listener p = {.ud = "persist", .record = record, .deposed = deposed};
  assert_int_equal(mu_events_on_cluster(&ev, &c, &err), 0);
  assert_int_equal(mu_events_on_cluster(&ev, &p, &err), 0);
  trace[0] = '\0';
  mu_events_elected(&ev, 7);
  mu_events_deposed(&ev, "lease lost", NULL);
  mu_events_deposed(&ev, "lease lost", "m2:7000");
  mu_events_record(&ev, "jobs/j-1", "{}", 2, 0);
  mu_events_record(&ev, "jobs/j-1", NULL, 0, 0);
  mu_events_snapshot_begin(&ev);
  mu_events_takeover(&ev, 7, 1000);
  assert_string_equal(trace,
                      "sched:t7 sched:lease lost persist:lease lost sched:m2:7000 "
                      "persist:m2:7000 persist:jobs/j-1 persist:deleted");
}

static void the_table_is_bounded(void **state) {
  (void)state;
  mu_events ev = {0};
  mu_err err = {0};
  mu_agent_listener a = {.ud = "x", .up = up};
  for (int i = 0; i < MU_EVENTS_MAX_LISTENERS; i++) assert_int_equal(mu_events_on_agent(&ev, &a, &err), 0);
  assert_int_equal(mu_events_on_agent(&ev, &a, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "agent event listeners"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(listeners_run_in_order),
      cmocka_unit_test(the_table_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
