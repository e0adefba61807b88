/* Tests for targets.c: a job is refused at submit when none of its resolved targets serves a
 * task's type (the message names the task, the type and at most 10 hosts); an agent whose
 * Hello is not known yet is given the benefit of the doubt, and "any" is left to dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/targets.h"

/* Adds agent id to reg, connected with a Hello listing types (NULL: no Hello). */
static void add_agent(mu_registry *reg, const char *id, const char *const *types, size_t n) {
  mu_agent *a = NULL;
  mu_err err = {0};
  assert_int_equal(mu_registry_upsert(reg, id, &a, &err), 0);
  if (types == NULL) return;
  Muster__V1__AgentMessage *m = calloc(1, sizeof *m);
  Muster__V1__Hello *h = calloc(1, sizeof *h);
  muster__v1__agent_message__init(m);
  muster__v1__hello__init(h);
  m->msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HELLO;
  m->hello = h;
  h->agent_id = strdup(id);
  h->plugins = calloc(n + 1, sizeof *h->plugins);
  h->n_plugins = n;
  for (size_t i = 0; i < n; i++) {
    h->plugins[i] = calloc(1, sizeof *h->plugins[i]);
    muster__v1__plugin_info__init(h->plugins[i]);
    h->plugins[i]->type = strdup(types[i]);
  }
  a->hello_msg = m;
}

static Muster__V1__JobSpec *spec_of(const char *name, const char *type) {
  Muster__V1__JobSpec *s = calloc(1, sizeof *s);
  muster__v1__job_spec__init(s);
  s->tasks = calloc(1, sizeof *s->tasks);
  s->tasks[0] = calloc(1, sizeof *s->tasks[0]);
  muster__v1__task_spec__init(s->tasks[0]);
  s->tasks[0]->name = strdup(name);
  s->tasks[0]->type = strdup(type);
  s->n_tasks = 1;
  return s;
}

static void free_hello(mu_agent *a) {
  if (a->hello_msg != NULL) protobuf_c_message_free_unpacked(&a->hello_msg->base, NULL);
  a->hello_msg = NULL;
}

static void refused_when_no_target_serves_the_type(void **state) {
  (void)state;
  mu_registry reg_store, *reg = &reg_store;
  mu_registry_init(reg, 100);
  static const char *const web[] = {"shell", "http"};
  add_agent(reg, "web-1", web, 2);
  add_agent(reg, "web-2", web, 1);
  add_agent(reg, "bare-1", web, 0);
  add_agent(reg, "new-1", NULL, 0);
  char *ids[12] = {"web-1", "web-2"};
  mu_err err = {0};
  Muster__V1__JobSpec *spark = spec_of("build", "spark");
  assert_int_equal(mu_targets_check_types(reg, spark, ids, 2, &err), MU_EINVAL);
  assert_string_equal(err.msg, "task 'build': no targeted agent serves type \"spark\" (web-1, web-2)");
  Muster__V1__JobSpec *http = spec_of("ping", "http");
  assert_int_equal(mu_targets_check_types(reg, http, ids, 2, &err), 0); /* web-1 serves it */
  ids[0] = "bare-1";
  Muster__V1__JobSpec *shell = spec_of("run", "shell");
  assert_int_equal(mu_targets_check_types(reg, shell, ids, 1, &err), MU_EINVAL);
  assert_string_equal(err.msg, "task 'run': no targeted agent serves type \"shell\" (bare-1)");
  ids[1] = "new-1"; /* no Hello yet: cannot tell, so not refused */
  assert_int_equal(mu_targets_check_types(reg, shell, ids, 2, &err), 0);
  ids[0] = NULL; /* "any": placed at dispatch */
  assert_int_equal(mu_targets_check_types(reg, spark, ids, 1, &err), 0);
  /* at most 10 hosts are named */
  for (size_t i = 0; i < 12; i++) ids[i] = "bare-1";
  assert_int_equal(mu_targets_check_types(reg, spark, ids, 12, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg,
                         "(bare-1, bare-1, bare-1, bare-1, bare-1, bare-1, bare-1, "
                         "bare-1, bare-1, bare-1, ... 2 more)"));
  protobuf_c_message_free_unpacked(&spark->base, NULL);
  protobuf_c_message_free_unpacked(&http->base, NULL);
  protobuf_c_message_free_unpacked(&shell->base, NULL);
  for (size_t i = 0; i < reg->n; i++) free_hello(reg->agents[i]);
  mu_registry_free(reg);
}

/* Sets the version agent id reports for its first plugin. */
static void set_version(mu_registry *reg, const char *id, const char *version) {
  Muster__V1__PluginInfo *p = mu_registry_find(reg, id)->hello_msg->hello->plugins[0];
  p->version = strdup(version);
}

/* plugin_version pins: targets without a matching version are dropped; a range no agent has
 * is refused naming what the agents have; "any" is checked against the whole registry. */
static void pins_filter_targets(void **state) {
  (void)state;
  mu_registry reg_store, *reg = &reg_store;
  mu_registry_init(reg, 100);
  static const char *const echo[] = {"sleep-echo"};
  add_agent(reg, "a1", echo, 1);
  add_agent(reg, "a2", echo, 1);
  add_agent(reg, "a3", echo, 0);
  set_version(reg, "a1", "1.0.0");
  set_version(reg, "a2", "2.1.0");
  Muster__V1__JobSpec *s = spec_of("echo", "sleep-echo");
  char *ids[3] = {"a1", "a2", "a3"};
  size_t n = 3;
  mu_err err = {0};
  assert_int_equal(mu_targets_filter_pins(reg, s, ids, &n, &err), 0); /* no pin: untouched */
  assert_int_equal(n, 3);
  s->tasks[0]->plugin_version = strdup(">=2 <3");
  assert_int_equal(mu_targets_filter_pins(reg, s, ids, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(ids[0], "a2");
  assert_true(mu_targets_agent_fits_pins(mu_registry_find(reg, "a2"), s));
  assert_false(mu_targets_agent_fits_pins(mu_registry_find(reg, "a1"), s));
  free(s->tasks[0]->plugin_version);
  s->tasks[0]->plugin_version = strdup(">=3");
  char *all[3] = {"a1", "a2", "a3"};
  n = 3;
  assert_int_equal(mu_targets_filter_pins(reg, s, all, &n, &err), MU_EINVAL);
  assert_string_equal(err.msg,
                      "task 'echo': plugin_version '>=3': no targeted agent has a matching version of "
                      "sleep-echo (agents have: a1: 1.0.0, a2: 2.1.0, a3: none)");
  char *any[1] = {NULL};
  n = 1;
  assert_int_equal(mu_targets_filter_pins(reg, s, any, &n, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "no agent has a matching version"));
  free(s->tasks[0]->plugin_version);
  s->tasks[0]->plugin_version = strdup("<2");
  assert_int_equal(mu_targets_filter_pins(reg, s, any, &n, &err), 0);
  protobuf_c_message_free_unpacked(&s->base, NULL);
  for (size_t i = 0; i < reg->n; i++) free_hello(reg->agents[i]);
  mu_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(refused_when_no_target_serves_the_type),
      cmocka_unit_test(pins_filter_targets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
