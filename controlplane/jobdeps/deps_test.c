/* Dependency decisions against tables: wait/run/skip with the reason a user sees for
 * on: success and on: completion, after-list checks, and cycles among schedules refused
 * naming the cycle (no network, no daemon). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/jobdeps/deps.h"

#define P MUSTER__V1__JOB_STATE__JOB_PENDING
#define R MUSTER__V1__JOB_STATE__JOB_RUNNING
#define S MUSTER__V1__JOB_STATE__JOB_SUCCEEDED
#define F MUSTER__V1__JOB_STATE__JOB_FAILED
#define C MUSTER__V1__JOB_STATE__JOB_CANCELLED

typedef struct decide_case {
  const char *what;
  mu_dep_state deps[3];
  size_t n;
  mu_dep_on on;
  mu_dep_verdict want;
  const char *reason;
} decide_case;

static const decide_case cases[] = {
    {"none", {{0}}, 0, MU_DEP_ON_SUCCESS, MU_DEP_RUN, "no dependencies"},
    {"A running", {{"j-a", "j-a", R, 0}}, 1, MU_DEP_ON_SUCCESS, MU_DEP_WAIT, "waiting for job j-a (JOB_RUNNING)"},
    {"A pending, B done",
     {{"j-a", "j-a", P, 0}, {"j-b", "j-b", S, 0}},
     2,
     MU_DEP_ON_SUCCESS,
     MU_DEP_WAIT,
     "waiting for job j-a (JOB_PENDING)"},
    {"two waiting",
     {{"j-a", "j-a", P, 0}, {"j-b", "j-b", R, 0}},
     2,
     MU_DEP_ON_COMPLETION,
     MU_DEP_WAIT,
     "waiting for job j-a (JOB_PENDING) and 1 more"},
    {"A succeeded", {{"j-a", "j-a", S, 0}}, 1, MU_DEP_ON_SUCCESS, MU_DEP_RUN, "dependencies done (on: success)"},
    {"A failed, on success",
     {{"j-a", "j-a", F, 0}},
     1,
     MU_DEP_ON_SUCCESS,
     MU_DEP_SKIP,
     "not run: dependency job j-a ended JOB_FAILED (on: success)"},
    {"A cancelled, on success",
     {{"j-a", "j-a", C, 0}},
     1,
     MU_DEP_ON_SUCCESS,
     MU_DEP_SKIP,
     "not run: dependency job j-a ended JOB_CANCELLED (on: success)"},
    {"A failed, B still running: skip now",
     {{"j-b", "j-b", R, 0}, {"j-a", "j-a", F, 0}},
     2,
     MU_DEP_ON_SUCCESS,
     MU_DEP_SKIP,
     "not run: dependency job j-a ended JOB_FAILED (on: success)"},
    {"A failed, on completion",
     {{"j-a", "j-a", F, 0}},
     1,
     MU_DEP_ON_COMPLETION,
     MU_DEP_RUN,
     "dependencies done (on: completion)"},
    {"A failed, B running, on completion",
     {{"j-a", "j-a", F, 0}, {"j-b", "j-b", R, 0}},
     2,
     MU_DEP_ON_COMPLETION,
     MU_DEP_WAIT,
     "waiting for job j-b (JOB_RUNNING)"},
    {"schedule's latest job failed",
     {{"nightly", "j-9", F, 0}},
     1,
     MU_DEP_ON_SUCCESS,
     MU_DEP_SKIP,
     "not run: dependency 'nightly' (job j-9) ended JOB_FAILED (on: success)"},
    {"forgotten, on success",
     {{"j-a", "j-a", 0, 1}},
     1,
     MU_DEP_ON_SUCCESS,
     MU_DEP_SKIP,
     "not run: dependency job j-a was forgotten, its outcome is unknown (on: success)"},
    {"forgotten, on completion",
     {{"j-a", "j-a", 0, 1}},
     1,
     MU_DEP_ON_COMPLETION,
     MU_DEP_RUN,
     "dependencies done (on: completion)"},
};

static void test_decide(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char reason[MU_DEP_REASON_MAX];
    mu_dep_verdict v = mu_dep_decide(cases[i].deps, cases[i].n, cases[i].on, reason, sizeof reason);
    if (v != cases[i].want || strcmp(reason, cases[i].reason) != 0)
      fail_msg("%s: got %d '%s', want %d '%s'", cases[i].what, v, reason, cases[i].want, cases[i].reason);
  }
}

static void test_reason_truncated(void **state) {
  (void)state;
  mu_dep_state d = {"j-a", "j-a", R, 0};
  char reason[8];
  assert_int_equal(mu_dep_decide(&d, 1, MU_DEP_ON_SUCCESS, reason, sizeof reason), MU_DEP_WAIT);
  assert_string_equal(reason, "waiting");
}

static void test_on_parse(void **state) {
  (void)state;
  mu_dep_on on = MU_DEP_ON_COMPLETION;
  mu_err err = {0};
  assert_int_equal(mu_dep_on_parse(NULL, &on, &err), 0);
  assert_int_equal(on, MU_DEP_ON_SUCCESS);
  assert_int_equal(mu_dep_on_parse("completion", &on, &err), 0);
  assert_int_equal(on, MU_DEP_ON_COMPLETION);
  assert_int_equal(mu_dep_on_parse("failure", &on, &err), MU_EINVAL);
  assert_string_equal(err.msg, "on: 'failure' is not success or completion");
}

static void test_after_check(void **state) {
  (void)state;
  mu_err err = {0};
  const char *ok[] = {"j-1", "nightly"};
  assert_int_equal(mu_dep_after_check(ok, 2, &err), 0);
  const char *dup[] = {"j-1", "nightly", "j-1"};
  assert_int_equal(mu_dep_after_check(dup, 3, &err), MU_EINVAL);
  assert_string_equal(err.msg, "after[2]: 'j-1' listed twice");
  const char *empty[] = {""};
  assert_int_equal(mu_dep_after_check(empty, 1, &err), MU_EINVAL);
  assert_string_equal(err.msg, "after[0]: empty (a job id or a schedule name)");
  const char *many[MU_DEP_AFTER_MAX + 1];
  for (size_t i = 0; i <= MU_DEP_AFTER_MAX; i++) many[i] = "x";
  assert_int_equal(mu_dep_after_check(many, MU_DEP_AFTER_MAX + 1, &err), MU_EINVAL);
  assert_string_equal(err.msg, "after: 33 entries, at most 32");
}

/* A graph of named things and their after lists. */
typedef struct graph {
  const char *node[8];
  const char *after[8][3];
  size_t n;
} graph;

static size_t edges(void *ud, const char *node, const char *const **ret_after) {
  const graph *g = ud;
  for (size_t i = 0; i < g->n; i++) {
    if (strcmp(g->node[i], node) != 0) continue;
    size_t n = 0;
    while (n < 3 && g->after[i][n] != NULL) n++;
    *ret_after = g->after[i];
    return n;
  }
  return 0;
}

static void test_cycles(void **state) {
  (void)state;
  graph g = {.node = {"a", "b", "c", "d"}, .after = {{"b", NULL}, {"c", NULL}, {NULL}, {"b", "c", NULL}}, .n = 4};
  mu_err err = {0};
  const char *to_a[] = {"a"};
  const char *to_d[] = {"d", "c"};
  /* c after a: c -> a -> b -> c */
  assert_int_equal(mu_dep_cycle_check("c", to_a, 1, edges, &g, &err), MU_EINVAL);
  assert_string_equal(err.msg, "dependency cycle: c -> a -> b -> c");
  /* e after d, c: no cycle (a diamond is fine) */
  assert_int_equal(mu_dep_cycle_check("e", to_d, 2, edges, &g, &err), 0);
  /* a job naming itself */
  const char *self[] = {"x"};
  assert_int_equal(mu_dep_cycle_check("x", self, 1, edges, &g, &err), MU_EINVAL);
  assert_string_equal(err.msg, "dependency cycle: x -> x");
  /* a new job (no name) after a: no cycle; a cycle among others is still found */
  assert_int_equal(mu_dep_cycle_check(NULL, to_a, 1, edges, &g, &err), 0);
  graph loop = {.node = {"p", "q"}, .after = {{"q", NULL}, {"p", NULL}}, .n = 2};
  const char *to_p[] = {"p"};
  assert_int_equal(mu_dep_cycle_check(NULL, to_p, 1, edges, &loop, &err), MU_EINVAL);
  assert_string_equal(err.msg, "dependency cycle: p -> q -> p");
}

/* An endless chain n0 -> n1 -> n2 -> ...: refused at MU_DEP_DEPTH_MAX, not followed forever. */
typedef struct chain {
  char names[MU_DEP_DEPTH_MAX + 8][8];
  const char *lists[MU_DEP_DEPTH_MAX + 8][1];
} chain;

static size_t chain_edges(void *ud, const char *node, const char *const **ret_after) {
  chain *c = ud;
  int i = atoi(node + 1);
  if (i + 1 >= MU_DEP_DEPTH_MAX + 8) return 0;
  *ret_after = c->lists[i];
  return 1;
}

static void test_depth_bound(void **state) {
  (void)state;
  static chain c;
  for (int i = 0; i < MU_DEP_DEPTH_MAX + 8; i++) snprintf(c.names[i], sizeof c.names[i], "n%d", i);
  for (int i = 0; i + 1 < MU_DEP_DEPTH_MAX + 8; i++) c.lists[i][0] = c.names[i + 1];
  const char *to_n0[] = {"n0"};
  mu_err err = {0};
  assert_int_equal(mu_dep_cycle_check("new", to_n0, 1, chain_edges, &c, &err), MU_EINVAL);
  assert_string_equal(err.msg, "after: a dependency chain from 'new' is longer than 64");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decide),      cmocka_unit_test(test_reason_truncated), cmocka_unit_test(test_on_parse),
      cmocka_unit_test(test_after_check), cmocka_unit_test(test_cycles),           cmocka_unit_test(test_depth_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
