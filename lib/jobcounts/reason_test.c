/* Reason classes: one case per class, including the OOM evidence both ways. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/jobcounts/reason.h"

static void test_classes(void **state) {
  (void)state;
  struct {
    mu_run_end e;
    const char *want;
  } cases[] = {
      {{MUSTER__V1__TASK_STATE__SUCCEEDED, 0, 0, NULL, 0, 0}, "none"},
      {{MUSTER__V1__TASK_STATE__FAILED, 3, 0, "", 0, 0}, "exit_code"},
      {{MUSTER__V1__TASK_STATE__FAILED, 0, SIGSEGV, "", 0, 0}, "signal"},
      {{MUSTER__V1__TASK_STATE__FAILED, 0, SIGKILL, "", 0, 0}, "signal"},
      {{MUSTER__V1__TASK_STATE__FAILED, 137, 0, "", 95u << 20, 100u << 20}, "oom"},
      {{MUSTER__V1__TASK_STATE__FAILED, 137, 0, "", 50u << 20, 100u << 20}, "exit_code"},
      {{MUSTER__V1__TASK_STATE__FAILED, 0, SIGKILL, "hit its memory limit of 64M", 0, 0}, "oom"},
      {{MUSTER__V1__TASK_STATE__FAILED, 0, 0, "no such plugin", 0, 0}, "refused"},
      {{MUSTER__V1__TASK_STATE__TIMED_OUT, 0, SIGKILL, "", 0, 0}, "timeout"},
      {{MUSTER__V1__TASK_STATE__LOST, 0, 0, NULL, 0, 0}, "lost"},
      {{MUSTER__V1__TASK_STATE__CANCELLED, 0, 0, "agent unreachable for 5m", 0, 0}, "unreachable"},
      {{MUSTER__V1__TASK_STATE__CANCELLED, 0, 0, "cancelled by alice", 0, 0}, "cancelled"},
      {{MUSTER__V1__TASK_STATE__UNREACHABLE, 0, 0, "agent disconnected for 30s", 0, 0}, "unreachable"},
      {{MUSTER__V1__TASK_STATE__UNREACHABLE, 0, 0, "skipped: agent disconnected", 0, 0}, "skipped"},
      {{MUSTER__V1__TASK_STATE__PENDING, 0, 0, NULL, 0, 0}, "waiting"},
      {{MUSTER__V1__TASK_STATE__RUNNING, 0, 0, NULL, 0, 0}, "running"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (strcmp(mu_run_reason(&cases[i].e), cases[i].want) != 0)
      fail_msg("case %zu: %s, want %s", i, mu_run_reason(&cases[i].e), cases[i].want);
  assert_string_equal(mu_task_state_label(MUSTER__V1__TASK_STATE__TIMED_OUT), "timed_out");
  assert_string_equal(mu_task_state_label((Muster__V1__TaskState)99), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_classes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
