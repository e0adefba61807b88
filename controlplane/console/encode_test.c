/* The console's JSON shapes: a task run, an agent, each kind of live event from a packed
 * JobEvent (as WatchJob sends it), text that is not UTF-8, error bodies, and the embedded
 * files being there. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/console/assets.h"
#include "controlplane/console/encode.h"

static json_t *parse(const char *s) {
  json_error_t e;
  json_t *v = json_loads(s, 0, &e);
  assert_non_null(v);
  return v;
}

static void task_run(void **state) {
  (void)state;
  Muster__V1__TaskRun run = MUSTER__V1__TASK_RUN__INIT;
  run.agent_id = "web-1";
  run.task_name = "build";
  run.state = MUSTER__V1__TASK_STATE__FAILED;
  run.attempt = 2;
  run.exit_code = 3;
  run.started_at_ms = 1000;
  run.finished_at_ms = 2500;
  run.message = "exit status 3";
  char *s = mu_console_dump(mu_console_task_run_json(&run));
  json_t *v = parse(s);
  assert_string_equal(json_string_value(json_object_get(v, "host")), "web-1");
  assert_string_equal(json_string_value(json_object_get(v, "task")), "build");
  assert_string_equal(json_string_value(json_object_get(v, "state")), "failed");
  assert_int_equal(json_integer_value(json_object_get(v, "attempt")), 2);
  assert_int_equal(json_integer_value(json_object_get(v, "exit_code")), 3);
  assert_int_equal(json_integer_value(json_object_get(v, "finished_at_ms")), 2500);
  assert_string_equal(json_string_value(json_object_get(v, "message")), "exit status 3");
  json_decref(v);
  free(s);
}

static void agent(void **state) {
  (void)state;
  Muster__V1__AgentInfo a = MUSTER__V1__AGENT_INFO__INIT;
  Muster__V1__AgentInfo__LabelsEntry l = MUSTER__V1__AGENT_INFO__LABELS_ENTRY__INIT;
  Muster__V1__AgentInfo__LabelsEntry *lp = &l;
  Muster__V1__HostMetrics m = MUSTER__V1__HOST_METRICS__INIT;
  l.key = "role";
  l.value = "web";
  a.agent_id = "web-1";
  a.state = MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
  a.n_labels = 1;
  a.labels = &lp;
  a.cpu_count = 8;
  m.load1 = 0.5;
  a.metrics = &m;
  char *s = mu_console_dump(mu_console_agent_json(&a, 3));
  json_t *v = parse(s);
  assert_string_equal(json_string_value(json_object_get(v, "state")), "connected");
  assert_string_equal(json_string_value(json_object_get(json_object_get(v, "labels"), "role")), "web");
  assert_int_equal(json_integer_value(json_object_get(v, "running")), 3);
  assert_true(json_real_value(json_object_get(v, "load1")) == 0.5);
  json_decref(v);
  free(s);
  a.metrics = NULL; /* before the first heartbeat: no load */
  s = mu_console_dump(mu_console_agent_json(&a, 0));
  v = parse(s);
  assert_true(json_is_null(json_object_get(v, "load1")));
  json_decref(v);
  free(s);
}

static char *event(const Muster__V1__JobEvent *ev, const char **name) {
  size_t len = muster__v1__job_event__get_packed_size(ev);
  uint8_t *buf = malloc(len + 1);
  muster__v1__job_event__pack(ev, buf);
  char *data = NULL;
  assert_int_equal(mu_console_event_json(buf, len, 8, name, &data), 0);
  free(buf);
  return data;
}

static void events(void **state) {
  (void)state;
  Muster__V1__TaskRun run = MUSTER__V1__TASK_RUN__INIT;
  run.agent_id = "web-2";
  run.task_name = "sleep";
  run.state = MUSTER__V1__TASK_STATE__RUNNING;
  Muster__V1__JobEvent ev = MUSTER__V1__JOB_EVENT__INIT;
  ev.job_id = "j-1";
  ev.task = &run;
  ev.at_ms = 77;
  const char *name;
  char *data = event(&ev, &name);
  assert_string_equal(name, "task");
  json_t *v = parse(data);
  assert_string_equal(json_string_value(json_object_get(v, "state")), "running");
  assert_int_equal(json_integer_value(json_object_get(v, "at_ms")), 77);
  json_decref(v);
  free(data);
  /* output: text cut to max_output (8) bytes, bad UTF-8 replaced */
  Muster__V1__OutputChunk out = MUSTER__V1__OUTPUT_CHUNK__INIT;
  out.stream = MUSTER__V1__OUTPUT_CHUNK__STREAM__STDERR;
  out.data.data = (uint8_t *)"ab\xff" "cdefghijkl";
  out.data.len = 13;
  ev.output = &out;
  data = event(&ev, &name);
  assert_string_equal(name, "output");
  v = parse(data);
  assert_string_equal(json_string_value(json_object_get(v, "stream")), "stderr");
  assert_string_equal(json_string_value(json_object_get(v, "data")),
                      "ab\xef\xbf\xbd"
                      "cdefg");
  assert_string_equal(json_string_value(json_object_get(v, "host")), "web-2");
  json_decref(v);
  free(data);
  Muster__V1__JobEvent js = MUSTER__V1__JOB_EVENT__INIT;
  js.job_id = "j-1";
  js.job_state = MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
  data = event(&js, &name);
  assert_string_equal(name, "job");
  v = parse(data);
  assert_string_equal(json_string_value(json_object_get(v, "state")), "succeeded");
  json_decref(v);
  free(data);
  /* bytes that are no JobEvent */
  char *d2 = NULL;
  assert_int_equal(mu_console_event_json((const uint8_t *)"\xff\xff\xff", 3, 8, &name, &d2), -EINVAL);
}

static void errors_and_assets(void **state) {
  (void)state;
  char *s = mu_console_error_json(404, "no job 'x'");
  json_t *v = parse(s);
  assert_string_equal(json_string_value(json_object_get(v, "error")), "no job 'x'");
  assert_int_equal(json_integer_value(json_object_get(v, "status")), 404);
  json_decref(v);
  free(s);
  const char *names[] = {"index.html", "app.js", "app.css"};
  for (size_t i = 0; i < 3; i++) {
    const mu_console_asset *a = mu_console_asset_find(names[i]);
    assert_non_null(a);
    assert_true(a->len > 100);
    assert_int_equal(strlen((const char *)a->data), a->len);
  }
  assert_null(mu_console_asset_find("nope.js"));
  /* the page loads nothing from elsewhere */
  static const char svg_ns[] = "http://www.w3.org/2000/svg"; /* a name, never fetched */
  for (size_t i = 0; i < mu_console_n_assets; i++) {
    const char *d = (const char *)mu_console_assets[i].data;
    assert_null(strstr(d, "https://"));
    for (const char *p = strstr(d, "http://"); p != NULL; p = strstr(p + 1, "http://"))
      assert_memory_equal(p, svg_ns, sizeof svg_ns - 1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(task_run),
      cmocka_unit_test(agent),
      cmocka_unit_test(events),
      cmocka_unit_test(errors_and_assets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
