/* The console's request parsing: routes and their ids, refusals of bad paths and methods,
 * the Authorization header and query values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/console/request.h"

static int route(const char *method, const char *path, mu_console_route *r) {
  char msg[128];
  return mu_console_route_parse(method, path, r, msg, sizeof msg);
}

static void api_routes(void **state) {
  (void)state;
  mu_console_route r;
  assert_int_equal(route("GET", "/api/v1/agents", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_AGENTS);
  assert_int_equal(route("GET", "/api/v1/jobs", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_JOBS);
  assert_int_equal(route("GET", "/api/v1/schedules", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_SCHEDULES);
  assert_int_equal(route("HEAD", "/api/v1/whoami", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_WHOAMI);
  assert_int_equal(route("GET", "/api/v1/jobs/j-20261202-1", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_JOB);
  assert_string_equal(r.job_id, "j-20261202-1");
  assert_int_equal(route("GET", "/api/v1/jobs/j-1/", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_JOB);
  assert_int_equal(route("GET", "/api/v1/jobs/j-1/events", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_JOB_EVENTS);
  assert_string_equal(r.job_id, "j-1");
  /* a task name keeps its slashes (it was %2F in the URL) */
  assert_int_equal(route("GET", "/api/v1/jobs/j-1/logs/web-1/deploy/step", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_TASK_LOG);
  assert_string_equal(r.host, "web-1");
  assert_string_equal(r.task, "deploy/step");
  assert_int_equal(route("GET", "/api/v1/jobs/j-1/nope", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_UNKNOWN);
  assert_int_equal(route("GET", "/api/v2/agents", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_API_UNKNOWN);
}

static void pages_and_static(void **state) {
  (void)state;
  mu_console_route r;
  assert_int_equal(route("GET", "/", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_PAGE);
  assert_false(r.page_is_404);
  assert_int_equal(route("GET", "/jobs/j-7", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_PAGE);
  assert_false(r.page_is_404);
  assert_string_equal(r.job_id, "j-7");
  assert_int_equal(route("GET", "/no/such/page", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_PAGE);
  assert_true(r.page_is_404);
  assert_int_equal(route("GET", "/static/app.js", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_STATIC);
  assert_string_equal(r.static_name, "app.js");
  /* no way out of the embedded table */
  assert_int_equal(route("GET", "/static/../etc/passwd", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_NOT_FOUND);
  assert_int_equal(route("GET", "/static/.hidden", &r), 200);
  assert_int_equal(r.kind, MU_CONSOLE_NOT_FOUND);
}

static void refusals(void **state) {
  (void)state;
  mu_console_route r;
  assert_int_equal(route("POST", "/api/v1/jobs", &r), 405);
  assert_int_equal(route("DELETE", "/", &r), 405);
  assert_int_equal(route("GET", "/api/v1/jobs/../events", &r), 400);
  assert_int_equal(route("GET", "/api/v1/jobs/./events", &r), 400);
  assert_int_equal(route("GET", "/api/v1/jobs//events", &r), 400);
  assert_int_equal(route("GET", "/api/v1/jobs/j-1/logs/web-1", &r), 400);
  assert_int_equal(route("GET", "/api/v1/jobs/j-1/logs/web-1/", &r), 400);
  assert_int_equal(route("GET", "/api/v1/jobs/a\nb", &r), 400);
  assert_int_equal(route("GET", "relative", &r), 400);
  char id[200];
  memset(id, 'x', sizeof id - 1);
  id[sizeof id - 1] = '\0';
  char path[300];
  snprintf(path, sizeof path, "/api/v1/jobs/%s", id);
  assert_int_equal(route("GET", path, &r), 400); /* id past MU_CONSOLE_ID_MAX */
  char longpath[MU_CONSOLE_PATH_MAX + 10];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(route("GET", longpath, &r), 414);
}

static void bearer(void **state) {
  (void)state;
  char t[MU_CONSOLE_TOKEN_MAX + 1];
  assert_int_equal(mu_console_bearer(NULL, t, sizeof t), 0);
  assert_int_equal(mu_console_bearer("", t, sizeof t), 0);
  assert_int_equal(mu_console_bearer("Bearer mst_abc_DEF-123", t, sizeof t), 1);
  assert_string_equal(t, "mst_abc_DEF-123");
  assert_int_equal(mu_console_bearer("bearer   mst_x  ", t, sizeof t), 1);
  assert_string_equal(t, "mst_x");
  assert_int_equal(mu_console_bearer("Basic Zm9vOmJhcg==", t, sizeof t), -1);
  assert_int_equal(mu_console_bearer("Bearer", t, sizeof t), -1);
  assert_int_equal(mu_console_bearer("Bearer ", t, sizeof t), -1);
  assert_int_equal(mu_console_bearer("Bearer a b", t, sizeof t), -1);
  assert_int_equal(mu_console_bearer("Bearer <script>", t, sizeof t), -1);
  assert_int_equal(mu_console_bearer("Bearertoken", t, sizeof t), -1);
  char big[MU_CONSOLE_TOKEN_MAX + 20] = "Bearer ";
  memset(big + 7, 'a', MU_CONSOLE_TOKEN_MAX + 5);
  big[sizeof big - 1] = '\0';
  assert_int_equal(mu_console_bearer(big, t, sizeof t), -1);
}

static void query_values(void **state) {
  (void)state;
  uint64_t v;
  assert_int_equal(mu_console_param_uint(NULL, 42, 100, &v), 0);
  assert_int_equal(v, 42);
  assert_int_equal(mu_console_param_uint("100", 42, 100, &v), 0);
  assert_int_equal(v, 100);
  assert_int_equal(mu_console_param_uint("101", 42, 100, &v), -1);
  assert_int_equal(mu_console_param_uint("-1", 42, 100, &v), -1);
  assert_int_equal(mu_console_param_uint("", 42, 100, &v), -1);
  assert_int_equal(mu_console_param_uint(" 1", 42, 100, &v), -1);
  assert_int_equal(mu_console_param_uint("99999999999999999999999", 0, UINT64_MAX, &v), -1);
  int s;
  assert_int_equal(mu_console_param_job_state("running", &s), 0);
  assert_int_equal(s, 2);
  assert_int_equal(mu_console_param_job_state("JOB_CANCELLED", &s), 0);
  assert_int_equal(s, 5);
  assert_int_equal(mu_console_param_job_state("all", &s), 0);
  assert_int_equal(s, 0);
  assert_int_equal(mu_console_param_job_state("bogus", &s), -1);
  char out[MU_CONSOLE_SELECTOR_MAX + 1];
  assert_int_equal(mu_console_param_selector("role=web,dc=eu*", out, sizeof out), 0);
  assert_string_equal(out, "role=web,dc=eu*");
  assert_int_equal(mu_console_param_selector("a\tb", out, sizeof out), -1);
  char id[MU_CONSOLE_ID_MAX + 1];
  assert_int_equal(mu_console_param_id("web-1", id, sizeof id), 0);
  assert_int_equal(mu_console_param_id("..", id, sizeof id), -1);
  assert_int_equal(mu_console_param_id("a/b", id, sizeof id), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(api_routes), cmocka_unit_test(pages_and_static), cmocka_unit_test(refusals),
      cmocka_unit_test(bearer),     cmocka_unit_test(query_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
