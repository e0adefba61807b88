/* Tests for hello.c: what the gateway refuses on an agent's stream, with the message the stream
 * is closed with: a bad Hello, anything but a Hello first, a second Hello, an empty message, a
 * Heartbeat without metrics, a string that is not UTF-8; and what it lets through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/hello.h"

static const char *check(const Muster__V1__AgentMessage *m, int hello_seen) {
  static mu_err err;
  memset(&err, 0, sizeof err);
  return mu_agent_message_check(m, hello_seen, &err) == 0 ? "" : err.msg;
}

static void the_stream_rules(void **state) {
  (void)state;
  Muster__V1__AgentMessage m = MUSTER__V1__AGENT_MESSAGE__INIT;
  Muster__V1__Hello h = MUSTER__V1__HELLO__INIT;
  Muster__V1__Heartbeat hb = MUSTER__V1__HEARTBEAT__INIT;
  Muster__V1__HostMetrics metrics = MUSTER__V1__HOST_METRICS__INIT;
  assert_string_equal(check(&m, 0), "the first message on a Connect stream must be Hello (got field 0)");
  assert_string_equal(check(&m, 1), "empty AgentMessage (no field set)");
  m.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
  m.heartbeat = &hb;
  assert_string_equal(check(&m, 0), "the first message on a Connect stream must be Hello (got field 2)");
  assert_string_equal(check(&m, 1), "Heartbeat without metrics");
  hb.metrics = &metrics;
  assert_string_equal(check(&m, 1), "");
  m.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_HELLO;
  m.hello = &h;
  h.agent_id = "web 1";
  assert_non_null(strstr(check(&m, 0), "agent_id"));
  h.agent_id = "web-1";
  assert_string_equal(check(&m, 0), "");
  assert_string_equal(check(&m, 1), "Hello sent twice on one stream");
  h.hostname = "bad\xff";
  assert_non_null(strstr(check(&m, 0), "malformed AgentMessage: "));
  assert_non_null(strstr(check(&m, 0), "UTF-8; closing this stream"));
  /* PluginsChanged (a deploy changed the agent's versions) is bounded like what it replaces */
  Muster__V1__PluginInfo pi = MUSTER__V1__PLUGIN_INFO__INIT;
  Muster__V1__PluginInfo *list[1] = {&pi};
  Muster__V1__PluginsChanged pc = MUSTER__V1__PLUGINS_CHANGED__INIT;
  pc.plugins = list;
  pc.n_plugins = 1;
  m.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_PLUGINS_CHANGED;
  m.plugins_changed = &pc;
  assert_string_equal(check(&m, 1), "PluginsChanged.plugins[0]: type must be 1-64 bytes, version at most 64");
  pi.type = "sleep-echo";
  pi.version = "2.0.0";
  assert_string_equal(check(&m, 1), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_stream_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
