/* Tests for lib/config: YAML loading with FILE:LINE errors, both daemons' configs (defaults,
 * good files, every kind of bad file, flag overrides), label sets, addresses and lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config/addr.h"
#include "lib/config/agent_config.h"
#include "lib/config/labels.h"
#include "lib/config/server_config.h"
#include "lib/config/strlist.h"
#include "lib/config/yaml_doc.h"

static char g_path[512]; /* the last file write_file made; tests run one at a time */

static const char *write_file(const char *name, const char *text) {
  const char *dir = getenv("TEST_TMPDIR");
  snprintf(g_path, sizeof g_path, "%s/%s", dir ? dir : "/tmp", name);
  FILE *f = fopen(g_path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return g_path;
}

/* Asserts msg contains needle, printing both when it does not. */
static void assert_has(const char *msg, const char *needle) {
  if (strstr(msg, needle) == NULL) {
    print_error("message: %s\nexpected to contain: %s\n", msg, needle);
    fail();
  }
}

/* Loads yaml as an agent config, expects failure with "FILE:LINE: field 'FIELD':" and detail
 * in the message. */
static void expect_agent_error(const char *yaml, int line, const char *field, const char *detail) {
  mu_agent_config cfg;
  mu_err err = {0};
  char where[700];
  const char *path = write_file("agent.yaml", yaml);
  mu_agent_config_init(&cfg);
  int rc = mu_agent_config_load(&cfg, path, &err);
  assert_int_equal(rc, MU_EINVAL);
  assert_int_equal(err.code, MU_EINVAL);
  if (field != NULL) snprintf(where, sizeof where, "%s:%d: field '%s': ", path, line, field);
  else snprintf(where, sizeof where, "%s:%d: ", path, line);
  assert_has(err.msg, where);
  assert_has(err.msg, detail);
  assert_true(strncmp(err.msg, where, strlen(where)) == 0); /* location comes first */
  mu_agent_config_free(&cfg);
}

static void agent_defaults(void **state) {
  (void)state;
  mu_agent_config cfg;
  char host[256] = "";
  mu_agent_config_init(&cfg);
  gethostname(host, sizeof host);
  assert_true(strlen(cfg.id) > 0);
  if (host[0] != '\0') assert_true(strncmp(cfg.id, host, strlen(cfg.id)) == 0);
  assert_int_equal(cfg.control.n, 1);
  assert_string_equal(cfg.control.items[0], "127.0.0.1:7400");
  assert_string_equal(cfg.plugin_dir, "/var/lib/muster/plugins");
  assert_string_equal(cfg.spool_dir, "/var/lib/muster/spool");
  assert_int_equal(cfg.heartbeat_interval_ms, 5000);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  assert_int_equal(cfg.slots, (uint32_t)(cpus * 2));
  assert_int_equal(cfg.trust_keys.n, 0);
  assert_false(cfg.allow_unsigned);
  assert_string_equal(cfg.metrics_listen, "");
  assert_int_equal(cfg.log_level, MU_LOG_INFO);
  assert_int_equal(cfg.reconnect_max_ms, 30000);
  assert_int_equal(cfg.max_message, 16 * 1024 * 1024);
  assert_int_equal(cfg.labels.n, 0);
  mu_agent_config_free(&cfg);
}

static void agent_good_file(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_err err = {0};
  const char *path = write_file("good.yaml",
                                "# a full agent config\n"
                                "id: web-01.eu\n"
                                "labels:\n"
                                "  role: web\n"
                                "  dc: eu-1\n"
                                "  rack: 12\n"
                                "control:\n"
                                "  - 10.0.0.1:7400\n"
                                "  - \"[::1]:7401\"\n"
                                "  - cp.internal:7402\n"
                                "plugin_dir: /opt/muster/plugins\n"
                                "spool_dir: /srv/spool\n"
                                "heartbeat_interval: 1500ms\n"
                                "slots: 7\n"
                                "trust_keys: [/etc/muster/a.pub, /etc/muster/b.pub]\n"
                                "allow_unsigned: yes\n"
                                "metrics_listen: 0.0.0.0:9100\n"
                                "log_level: debug\n"
                                "reconnect_max: 1m\n"
                                "max_message: 4M\n"
                                "container_scan_feed_dir: /var/lib/muster/feed\n");
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), 0);
  assert_string_equal(cfg.id, "web-01.eu");
  assert_int_equal(cfg.labels.n, 3);
  assert_string_equal(mu_labels_get(&cfg.labels, "role"), "web");
  assert_string_equal(mu_labels_get(&cfg.labels, "dc"), "eu-1");
  assert_string_equal(mu_labels_get(&cfg.labels, "rack"), "12");
  assert_int_equal(cfg.control.n, 3);
  assert_string_equal(cfg.control.items[1], "[::1]:7401");
  assert_string_equal(cfg.control.items[2], "cp.internal:7402");
  assert_string_equal(cfg.plugin_dir, "/opt/muster/plugins");
  assert_string_equal(cfg.spool_dir, "/srv/spool");
  assert_int_equal(cfg.heartbeat_interval_ms, 1500);
  assert_int_equal(cfg.slots, 7);
  assert_int_equal(cfg.trust_keys.n, 2);
  assert_string_equal(cfg.trust_keys.items[1], "/etc/muster/b.pub");
  assert_true(cfg.allow_unsigned);
  assert_string_equal(cfg.metrics_listen, "0.0.0.0:9100");
  assert_int_equal(cfg.log_level, MU_LOG_DEBUG);
  assert_int_equal(cfg.reconnect_max_ms, 60000);
  assert_int_equal(cfg.max_message, 4 * 1024 * 1024);
  assert_string_equal(cfg.container_scan_feed_dir, "/var/lib/muster/feed");
  mu_agent_config_free(&cfg);
}

/* Lists and labels may also be written as the comma strings the flags take. */
static void agent_string_forms(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_err err = {0};
  const char *path = write_file("strings.yaml",
                                "labels: \"role=db, dc=us-2\"\n"
                                "control: a.example:1,b.example:2\n"
                                "trust_keys:\n"
                                "metrics_listen: ~\n");
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), 0);
  assert_string_equal(mu_labels_get(&cfg.labels, "dc"), "us-2");
  assert_int_equal(cfg.control.n, 2);
  assert_string_equal(cfg.control.items[1], "b.example:2");
  assert_int_equal(cfg.trust_keys.n, 0);
  assert_string_equal(cfg.metrics_listen, "");
  mu_agent_config_free(&cfg);
}

static void agent_empty_file(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_err err = {0};
  const char *path = write_file("empty.yaml", "# nothing here\n");
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), 0);
  assert_int_equal(cfg.heartbeat_interval_ms, 5000);
  mu_agent_config_free(&cfg);
}

static void agent_bad_files(void **state) {
  (void)state;
  /* YAML syntax errors name the file and line of the problem. */
  expect_agent_error("id: a\nlabels: {role: web\nslots: 3\n", 3, NULL, "YAML syntax error");
  expect_agent_error("id: a\n  slots: 3\n", 2, NULL, "YAML syntax error");
  expect_agent_error("id: \"unterminated\n", 2, NULL, "YAML syntax error");
  /* Top level and documents. */
  expect_agent_error("- a\n- b\n", 1, NULL, "top level must be a mapping of fields, got a list");
  expect_agent_error("just a string\n", 1, NULL, "top level must be a mapping");
  expect_agent_error("id: a\n---\nid: b\n", 3, NULL, "more than one YAML document");
  /* Unknown and repeated fields. */
  expect_agent_error("id: a\nheartbeat: 5s\n", 2, "heartbeat", "unknown field in agent config");
  expect_agent_error("id: a\nheartbeat: 5s\n", 2, "heartbeat", "heartbeat_interval");
  expect_agent_error("trust_key: /a.pub\n", 1, "trust_key", "unknown field");
  expect_agent_error("slots: 1\nid: a\nslots: 2\n", 3, "slots", "given twice (first at line 1)");
  expect_agent_error("[a, b]: 1\n", 1, NULL, "field names must be strings, got a list");
  /* Durations. */
  expect_agent_error("id: a\n\n\n\n\n\nheartbeat_interval: 5x\n", 7, "heartbeat_interval", "bad duration \"5x\"");
  expect_agent_error("heartbeat_interval: 5ms\n", 1, "heartbeat_interval",
                     "duration \"5ms\" is out of range 100ms..10m");
  expect_agent_error("heartbeat_interval: 11m\n", 1, "heartbeat_interval", "out of range");
  expect_agent_error("reconnect_max: -1s\n", 1, "reconnect_max", "bad duration");
  expect_agent_error("heartbeat_interval:\n", 1, "heartbeat_interval", "empty duration");
  /* Addresses, in a list (the error points at the bad item's line) and as a string. */
  expect_agent_error("control:\n  - 10.0.0.1:7400\n  - 10.0.0.2\n", 3, "control", "bad address \"10.0.0.2\": no port");
  expect_agent_error("control: \"a:1,b:0\"\n", 1, "control", "port 0 is out of range 1..65535");
  expect_agent_error("control: [\"a:70000\"]\n", 1, "control", "out of range 1..65535");
  expect_agent_error("control: [\"a:http\"]\n", 1, "control", "is not a number");
  expect_agent_error("control: [\"::1:7400\"]\n", 1, "control", "must be in brackets");
  expect_agent_error("control: []\n", 1, "control", "needs at least 1 item");
  expect_agent_error("control: \"a:1,,b:2\"\n", 1, "control", "item 2 is empty");
  expect_agent_error("metrics_listen: \"bad host!:9\"\n", 1, "metrics_listen", "bad host");
  /* Ids. */
  expect_agent_error("id: \"web 01\"\n", 1, "id", "bad id \"web 01\": character 4");
  expect_agent_error("id: \"\"\n", 1, "id", "empty id");
  char long_id[300];
  memset(long_id, 'x', 200);
  snprintf(long_id + 200, 100, "\n");
  char yaml[400];
  snprintf(yaml, sizeof yaml, "id: %s", long_id);
  expect_agent_error(yaml, 1, "id", "200 bytes long (max 128)");
  /* Wrong types. */
  expect_agent_error("id: [a, b]\n", 1, "id", "expected an id, got a list");
  expect_agent_error("heartbeat_interval: {s: 5}\n", 1, "heartbeat_interval",
                     "expected a duration such as \"5s\", got a mapping");
  expect_agent_error("control: {a: b}\n", 1, "control", "got a mapping");
  expect_agent_error("control:\n  - a:1\n  - [b, c]\n", 3, "control", "item 2: expected a string, got a list");
  expect_agent_error("labels: [a, b]\n", 1, "labels", "got a list");
  expect_agent_error("labels:\n  role: web\n  dc: [eu]\n", 3, "labels",
                     "label 'dc': expected a string value, got a list");
  /* Labels. */
  expect_agent_error("labels:\n  role: web\n  \"bad key\": x\n", 3, "labels",
                     "label key 'bad key' has a bad character at position 4");
  expect_agent_error("labels: {role: \"a b\"}\n", 1, "labels", "label 'role': value \"a b\"");
  expect_agent_error("labels: \"role=web,dc\"\n", 1, "labels", "label 'dc': expected KEY=VALUE");
  expect_agent_error("labels: \"role=web,role=db\"\n", 1, "labels", "label 'role' given twice");
  /* Numbers, booleans, log levels, sizes. */
  expect_agent_error("slots: 0\n", 1, "slots", "0 is out of range 1..4096");
  expect_agent_error("slots: 5000\n", 1, "slots", "out of range 1..4096");
  expect_agent_error("slots: many\n", 1, "slots", "bad number \"many\"");
  expect_agent_error("slots: -3\n", 1, "slots", "bad number \"-3\"");
  expect_agent_error("allow_unsigned: maybe\n", 1, "allow_unsigned", "bad boolean \"maybe\"");
  expect_agent_error("log_level: loud\n", 1, "log_level", "bad log level \"loud\"");
  expect_agent_error("max_message: 12Q\n", 1, "max_message", "bad size \"12Q\"");
  expect_agent_error("max_message: 2G\n", 1, "max_message", "out of range 64K..1G");
  expect_agent_error("plugin_dir: \"\"\n", 1, "plugin_dir", "empty path");
}

static void missing_file(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_server_config scfg;
  mu_err err = {0};
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, "/nonexistent/agent.yaml", &err), MU_ENOENT);
  assert_string_equal(err.msg,
                      "/nonexistent/agent.yaml: cannot open config file: "
                      "No such file or directory");
  mu_agent_config_free(&cfg);
  mu_server_config_init(&scfg);
  const char *dir = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  assert_true(mu_server_config_load(&scfg, dir, &err) < 0); /* a directory */
  assert_has(err.msg, dir);
  assert_has(err.msg, "Is a directory");
  mu_server_config_free(&scfg);
}

static void file_too_big(void **state) {
  (void)state;
  size_t n = MU_CFG_FILE_MAX_BYTES + 10;
  char *text = malloc(n + 1);
  assert_non_null(text);
  memset(text, '#', n);
  text[n] = '\0';
  const char *path = write_file("big.yaml", text);
  free(text);
  mu_agent_config cfg;
  mu_err err = {0};
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), MU_ENOSPC);
  assert_has(err.msg, path);
  assert_has(err.msg, "larger than");
  mu_agent_config_free(&cfg);
}

static void agent_flags(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_err err = {0};
  const char *path = write_file("flags.yaml",
                                "heartbeat_interval: 2s\n"
                                "labels: {role: web}\n"
                                "trust_keys: [/k/a.pub]\n");
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), 0);
  /* Flags override the file. */
  assert_int_equal(mu_agent_config_set(&cfg, "heartbeat-interval", "250ms", &err), 0);
  assert_int_equal(cfg.heartbeat_interval_ms, 250);
  assert_int_equal(mu_agent_config_set(&cfg, "labels", "dc=eu,tier=1", &err), 0);
  assert_int_equal(cfg.labels.n, 2);
  assert_null(mu_labels_get(&cfg.labels, "role"));
  assert_int_equal(mu_agent_config_set(&cfg, "control", "h1:1, h2:2", &err), 0);
  assert_int_equal(cfg.control.n, 2);
  assert_string_equal(cfg.control.items[0], "h1:1");
  assert_int_equal(mu_agent_config_set(&cfg, "trust-key", "/k/b.pub", &err), 0);
  assert_int_equal(cfg.trust_keys.n, 2);
  assert_string_equal(cfg.trust_keys.items[1], "/k/b.pub");
  assert_int_equal(mu_agent_config_set(&cfg, "spool_dir", "/tmp/sp", &err), 0);
  assert_string_equal(cfg.spool_dir, "/tmp/sp");
  assert_int_equal(mu_agent_config_set(&cfg, "id", "agent-7", &err), 0);
  assert_string_equal(cfg.id, "agent-7");
  assert_int_equal(mu_agent_config_set(&cfg, "allow-unsigned", "true", &err), 0);
  assert_true(cfg.allow_unsigned);
  assert_int_equal(mu_agent_config_set(&cfg, "metrics-listen", "127.0.0.1:9100", &err), 0);
  assert_string_equal(cfg.metrics_listen, "127.0.0.1:9100");

  /* Bad flag values name the flag and leave the field as it was. */
  assert_int_equal(mu_agent_config_set(&cfg, "heartbeat-interval", "5x", &err), MU_EINVAL);
  assert_has(err.msg, "--heartbeat-interval: bad duration \"5x\"");
  assert_int_equal(cfg.heartbeat_interval_ms, 250);
  assert_int_equal(mu_agent_config_set(&cfg, "heartbeat_interval", "1h", &err), MU_EINVAL);
  assert_has(err.msg, "--heartbeat-interval: duration \"1h\" is out of range");
  assert_int_equal(mu_agent_config_set(&cfg, "control", "h1:1,nope", &err), MU_EINVAL);
  assert_has(err.msg, "--control: bad address \"nope\"");
  assert_int_equal(cfg.control.n, 2);
  assert_int_equal(mu_agent_config_set(&cfg, "control", "", &err), MU_EINVAL);
  assert_has(err.msg, "--control: needs at least 1 item");
  assert_int_equal(mu_agent_config_set(&cfg, "id", "a/b", &err), MU_EINVAL);
  assert_has(err.msg, "--id: bad id \"a/b\"");
  assert_string_equal(cfg.id, "agent-7");
  assert_int_equal(mu_agent_config_set(&cfg, "labels", "a=b,,c=d", &err), MU_EINVAL);
  assert_has(err.msg, "--labels: label 2 is empty");
  assert_int_equal(cfg.labels.n, 2);
  assert_int_equal(mu_agent_config_set(&cfg, "slots", "0", &err), MU_EINVAL);
  assert_has(err.msg, "--slots: 0 is out of range 1..4096");
  assert_int_equal(mu_agent_config_set(&cfg, "frobnicate", "1", &err), MU_EINVAL);
  assert_string_equal(err.msg, "--frobnicate: unknown option");
  assert_int_equal(mu_agent_config_set(&cfg, "log-level", "trace", &err), MU_EINVAL);
  assert_has(err.msg, "--log-level: bad log level \"trace\"");
  mu_agent_config_free(&cfg);
}

static void server_defaults_and_derived(void **state) {
  (void)state;
  mu_server_config cfg;
  mu_err err = {0};
  char host[256] = "";
  char want[300];
  gethostname(host, sizeof host);
  mu_server_config_init(&cfg);
  assert_string_equal(cfg.listen, "127.0.0.1:7400");
  assert_string_equal(cfg.advertise, "127.0.0.1:7400");
  assert_int_equal(cfg.etcd.n, 1);
  assert_string_equal(cfg.etcd.items[0], "http://127.0.0.1:2379");
  assert_string_equal(cfg.etcd_prefix, "/muster/");
  assert_string_equal(cfg.metrics_listen, "");
  assert_int_equal(cfg.heartbeat_timeout_ms, 15000);
  assert_int_equal(cfg.leader_ttl_ms, 5000);
  assert_int_equal(cfg.takeover_grace_ms, 10000);
  assert_int_equal(cfg.max_agents, 10000);
  assert_int_equal(cfg.max_tokens, 10000);
  assert_int_equal(cfg.max_message, 16 * 1024 * 1024);
  assert_int_equal(cfg.log_level, MU_LOG_INFO);
  assert_int_equal(cfg.audit_max_records, 100000);
  assert_true(cfg.audit_retention_ms == 30LL * 24 * 3600 * 1000);
  assert_int_equal(cfg.audit_denials_per_second, 10);
  snprintf(want, sizeof want, "%s:7400", host);
  assert_string_equal(cfg.member_id, want);

  /* advertise and member_id follow listen; a wildcard host becomes this host's name. */
  assert_int_equal(mu_server_config_set(&cfg, "listen", "0.0.0.0:8100", &err), 0);
  snprintf(want, sizeof want, "%s:8100", host);
  assert_string_equal(cfg.advertise, want);
  assert_string_equal(cfg.member_id, want);
  /* ... until they are set explicitly. */
  assert_int_equal(mu_server_config_set(&cfg, "advertise", "cp1.example:8100", &err), 0);
  assert_int_equal(mu_server_config_set(&cfg, "member-id", "cp1", &err), 0);
  assert_int_equal(mu_server_config_set(&cfg, "listen", "10.1.1.1:9000", &err), 0);
  assert_string_equal(cfg.advertise, "cp1.example:8100");
  assert_string_equal(cfg.member_id, "cp1");
  mu_server_config_free(&cfg);
}

static void server_file(void **state) {
  (void)state;
  mu_server_config cfg;
  mu_err err = {0};
  const char *path = write_file("musterd.yaml",
                                "listen: 10.0.0.5:7400\n"
                                "etcd:\n"
                                "  - http://e1:2379\n"
                                "  - https://[fd00::2]:2379/\n"
                                "  - http://e3\n"
                                "etcd_prefix: /prod/muster/\n"
                                "state_dir: /srv/musterd\n"
                                "metrics_listen: 10.0.0.5:9101\n"
                                "heartbeat_timeout: 20s\n"
                                "leader_ttl: 3s\n"
                                "takeover_grace: 0s\n"
                                "max_agents: 500\n"
                                "max_message: 32M\n"
                                "audit_max_records: 50\n"
                                "audit_retention: 7d\n"
                                "audit_denials_per_second: 3\n"
                                "log_level: warn\n");
  mu_server_config_init(&cfg);
  assert_int_equal(mu_server_config_load(&cfg, path, &err), 0);
  assert_string_equal(cfg.listen, "10.0.0.5:7400");
  assert_string_equal(cfg.advertise, "10.0.0.5:7400");
  assert_int_equal(cfg.etcd.n, 3);
  assert_string_equal(cfg.etcd.items[1], "https://[fd00::2]:2379/");
  assert_string_equal(cfg.etcd_prefix, "/prod/muster/");
  assert_string_equal(cfg.state_dir, "/srv/musterd");
  assert_int_equal(cfg.heartbeat_timeout_ms, 20000);
  assert_int_equal(cfg.leader_ttl_ms, 3000);
  assert_int_equal(cfg.takeover_grace_ms, 0);
  assert_int_equal(cfg.max_agents, 500);
  assert_int_equal(cfg.max_message, 32 * 1024 * 1024);
  assert_int_equal(cfg.log_level, MU_LOG_WARN);
  assert_int_equal(cfg.audit_max_records, 50);
  assert_true(cfg.audit_retention_ms == 7LL * 24 * 3600 * 1000);
  assert_int_equal(cfg.audit_denials_per_second, 3);
  assert_int_equal(mu_server_config_set(&cfg, "audit-max-records", "5", &err), MU_EINVAL);
  assert_int_equal(mu_server_config_set(&cfg, "audit-retention", "10s", &err), MU_EINVAL);
  /* Flags after the file. */
  assert_int_equal(mu_server_config_set(&cfg, "etcd", "http://x:1,http://y:2", &err), 0);
  assert_int_equal(cfg.etcd.n, 2);
  assert_int_equal(mu_server_config_set(&cfg, "etcd", "x:1", &err), MU_EINVAL);
  assert_has(err.msg, "--etcd: bad endpoint URL \"x:1\"");
  assert_int_equal(cfg.etcd.n, 2);
  mu_server_config_free(&cfg);

  static const struct {
    const char *yaml;
    int line;
    const char *field;
    const char *detail;
  } bad[] = {
      {"listen: 7400\n", 1, "listen", "bad address \"7400\": no port"},
      {"etcd:\n  - http://a:2379\n  - ftp://b\n", 3, "etcd", "bad endpoint URL \"ftp://b\""},
      {"etcd: \"http://a:2379/v3\"\n", 1, "etcd", "no path"},
      {"etcd: \"http://a:99999\"\n", 1, "etcd", "out of range"},
      {"etcd_prefix: muster\n", 1, "etcd_prefix", "must start and end with '/'"},
      {"leader_ttl: 500ms\n", 1, "leader_ttl", "out of range 1s..5m"},
      {"max_agents: 0\n", 1, "max_agents", "out of range 1..1000000"},
      {"max_tokens: 0\n", 1, "max_tokens", "out of range 1..1000000"},
      {"member_id: \"a b\"\n", 1, "member_id", "bad id"},
      {"state_dir: [a]\n", 1, "state_dir", "expected a path, got a list"},
      {"listen: 1.2.3.4:1\nadvertize: x:1\n", 2, "advertize", "unknown field in server config"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char where[700];
    path = write_file("bad-server.yaml", bad[i].yaml);
    mu_server_config_init(&cfg);
    assert_int_equal(mu_server_config_load(&cfg, path, &err), MU_EINVAL);
    snprintf(where, sizeof where, "%s:%d: field '%s': ", path, bad[i].line, bad[i].field);
    assert_has(err.msg, where);
    assert_has(err.msg, bad[i].detail);
    mu_server_config_free(&cfg);
  }
}

static void labels_api(void **state) {
  (void)state;
  mu_labels l;
  mu_err err = {0};
  char buf[64];
  mu_labels_init(&l);
  assert_int_equal(mu_labels_parse(&l, " role = web , dc=eu-1 ", 0, &err), 0);
  assert_int_equal(l.n, 2);
  assert_string_equal(mu_labels_get(&l, "role"), "web");
  assert_string_equal(mu_labels_get(&l, "dc"), "eu-1");
  assert_null(mu_labels_get(&l, "nope"));
  assert_int_equal(mu_labels_format(&l, buf, sizeof buf), strlen("role=web,dc=eu-1"));
  assert_string_equal(buf, "role=web,dc=eu-1");
  /* A short buffer still gets a terminated prefix and the needed length back. */
  assert_int_equal(mu_labels_format(&l, buf, 5), strlen("role=web,dc=eu-1"));
  assert_string_equal(buf, "role");
  /* Parse adds to the set, replacing existing keys; errors leave it unchanged. */
  assert_int_equal(mu_labels_parse(&l, "role=db,empty=", 0, &err), 0);
  assert_int_equal(l.n, 3);
  assert_string_equal(mu_labels_get(&l, "role"), "db");
  assert_string_equal(mu_labels_get(&l, "empty"), "");
  assert_int_equal(mu_labels_parse(&l, "x=1,dc=eu*", 0, &err), MU_EINVAL);
  assert_has(err.msg, "label 'dc': value \"eu*\" has a bad character at position 3");
  assert_null(mu_labels_get(&l, "x"));
  assert_int_equal(mu_labels_parse(&l, "dc=eu*,host=web-[0-9]?", MU_LABELS_GLOB, &err), 0);
  assert_string_equal(mu_labels_get(&l, "dc"), "eu*");
  assert_int_equal(mu_labels_parse(&l, "=v", 0, &err), MU_EINVAL);
  assert_has(err.msg, "empty label key");
  assert_int_equal(mu_labels_parse(&l, "-a=v", 0, &err), MU_EINVAL);
  assert_has(err.msg, "must start with a letter or digit");
  assert_int_equal(mu_labels_parse(&l, "", 0, &err), 0);
  assert_int_equal(l.n, 4);
  mu_labels_free(&l);

  /* The bound holds. */
  mu_labels_init_max(&l, 2);
  assert_int_equal(mu_labels_parse(&l, "a=1,b=2", 0, &err), 0);
  assert_int_equal(mu_labels_parse(&l, "c=3", 0, &err), MU_ENOSPC);
  assert_has(err.msg, "too many labels (max 2)");
  assert_int_equal(mu_labels_set(&l, "a", "9", 0, &err), 0); /* replacing fits */
  assert_string_equal(mu_labels_get(&l, "a"), "9");
  mu_labels copy;
  mu_labels_init(&copy);
  assert_int_equal(mu_labels_copy(&copy, &l, &err), 0);
  assert_int_equal(copy.n, 2);
  assert_string_equal(mu_labels_get(&copy, "b"), "2");
  mu_labels_free(&copy);
  mu_labels_free(&l);

  char key[100];
  memset(key, 'k', 64);
  key[64] = '\0';
  assert_int_equal(mu_label_key_check(key, &err), MU_EINVAL);
  assert_has(err.msg, "64 bytes long (max 63)");
  char value[300];
  memset(value, 'v', 256);
  value[256] = '\0';
  assert_int_equal(mu_label_value_check("k", value, 0, &err), MU_EINVAL);
  assert_has(err.msg, "label 'k': value is 256 bytes long (max 255)");
}

static void addr_api(void **state) {
  (void)state;
  char host[MU_HOST_MAX + 1];
  uint16_t port = 0;
  mu_err err = {0};
  assert_int_equal(mu_hostport_parse("example.com:443", host, sizeof host, &port, &err), 0);
  assert_string_equal(host, "example.com");
  assert_int_equal(port, 443);
  assert_int_equal(mu_hostport_parse("[fe80::1]:65535", host, sizeof host, &port, &err), 0);
  assert_string_equal(host, "fe80::1");
  assert_int_equal(port, 65535);
  assert_int_equal(mu_hostport_parse(":80", host, sizeof host, &port, &err), MU_EINVAL);
  assert_has(err.msg, "no host");
  assert_int_equal(mu_hostport_parse("h:", host, sizeof host, &port, &err), MU_EINVAL);
  assert_has(err.msg, "no port");
  assert_int_equal(mu_hostport_parse("[fe80::1]80", host, sizeof host, &port, &err), MU_EINVAL);
  assert_int_equal(mu_hostport_parse("h:99999999999999999999", NULL, 0, NULL, &err), MU_EINVAL);
  assert_has(err.msg, "out of range");
  assert_true(mu_host_is_wildcard("0.0.0.0"));
  assert_true(mu_host_is_wildcard("::"));
  assert_false(mu_host_is_wildcard("127.0.0.1"));
  assert_int_equal(mu_url_check("http://etcd", &err), 0);
  assert_int_equal(mu_url_check("https://[::1]", &err), 0);
  assert_int_equal(mu_url_check("http://", &err), MU_EINVAL);
  assert_int_equal(mu_url_check("https://[", &err), MU_EINVAL);
}

static void strlist_api(void **state) {
  (void)state;
  mu_strlist l;
  mu_err err = {0};
  char buf[32];
  mu_strlist_init(&l);
  l.max = 3;
  assert_int_equal(mu_strlist_split(&l, " a , b", &err), 0);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.items[0], "a");
  assert_string_equal(l.items[1], "b");
  assert_int_equal(mu_strlist_split(&l, "c,d", &err), MU_ENOSPC);
  assert_int_equal(l.n, 2);
  assert_int_equal(mu_strlist_split(&l, "c,", &err), MU_EINVAL);
  assert_has(err.msg, "item 2 is empty");
  assert_int_equal(mu_strlist_join(&l, ", ", buf, sizeof buf), 4);
  assert_string_equal(buf, "a, b");
  mu_strlist_free(&l);
}

static void yaml_doc_api(void **state) {
  (void)state;
  mu_yaml_doc *doc = NULL;
  mu_err err = {0};
  const char *text = "a: 1\nb:\n  - x\n  - {k: v}\nc: ~\n";
  assert_int_equal(mu_yaml_doc_parse("mem.yaml", text, strlen(text), &doc, &err), 0);
  mu_yaml_node root = mu_yaml_doc_root(doc);
  assert_int_equal(mu_yaml_node_kind(root), MU_YAML_MAP);
  assert_int_equal(mu_yaml_node_len(root), 3);
  mu_yaml_node b = mu_yaml_node_value(root, 1);
  assert_int_equal(mu_yaml_node_kind(b), MU_YAML_LIST);
  assert_int_equal(mu_yaml_node_line(mu_yaml_node_item(b, 1)), 4);
  assert_int_equal(mu_yaml_node_kind(mu_yaml_node_item(b, 1)), MU_YAML_MAP);
  assert_null(mu_yaml_node_text(b));
  assert_int_equal(mu_yaml_node_kind(mu_yaml_node_value(root, 2)), MU_YAML_NULL);
  assert_string_equal(mu_yaml_node_text(mu_yaml_node_value(root, 2)), "");
  assert_int_equal(mu_yaml_node_kind(mu_yaml_node_item(b, 9)), MU_YAML_NULL);
  mu_yaml_doc_free(doc);

  /* A NUL inside a quoted string is refused rather than silently cut. */
  const char *nul = "a: \"x\\0y\"\n";
  assert_int_equal(mu_yaml_doc_parse("nul.yaml", nul, strlen(nul), &doc, &err), MU_EINVAL);
  assert_has(err.msg, "nul.yaml:1: string contains a NUL byte");
  /* Bad UTF-8 is a syntax error with a line. */
  const char *bad = "a: 1\nb: \xff\xfe\n";
  assert_int_equal(mu_yaml_doc_parse("utf.yaml", bad, strlen(bad), &doc, &err), MU_EINVAL);
  assert_has(err.msg, "utf.yaml:2: YAML syntax error");
  /* Deep nesting is refused before libyaml's loader (quadratic in flow depth) sees it. */
  char deep[4096] = "a: ";
  memset(deep + 3, '[', 2000);
  memset(deep + 2003, ']', 2000);
  deep[4003] = '\n';
  deep[4004] = '\0';
  assert_int_equal(mu_yaml_doc_parse("deep.yaml", deep, strlen(deep), &doc, &err), MU_EINVAL);
  assert_has(err.msg, "deep.yaml:1: nesting deeper than 64 levels");
}

/* The metrics TLS keys of both daemons, from a file and as flags (lib/metrics checks that
 * they come together). */
static void metrics_tls_keys(void **state) {
  (void)state;
  mu_err err = {0};
  mu_agent_config a;
  mu_agent_config_init(&a);
  assert_string_equal(a.metrics_tls_cert, "");
  const char *path = write_file("agent-metrics.yaml",
                                "metrics_listen: 0.0.0.0:9101\n"
                                "metrics_tls_cert: /etc/muster/agent.crt\n"
                                "metrics_tls_key: /etc/muster/agent.key\n"
                                "metrics_tls_ca: /etc/muster/ca.crt\n");
  assert_int_equal(mu_agent_config_load(&a, path, &err), 0);
  assert_string_equal(a.metrics_tls_cert, "/etc/muster/agent.crt");
  assert_string_equal(a.metrics_tls_key, "/etc/muster/agent.key");
  assert_string_equal(a.metrics_tls_ca, "/etc/muster/ca.crt");
  assert_int_equal(mu_agent_config_set(&a, "metrics-tls-ca", "/other/ca.crt", &err), 0);
  assert_string_equal(a.metrics_tls_ca, "/other/ca.crt");
  mu_agent_config_free(&a);
  mu_server_config s;
  mu_server_config_init(&s);
  assert_string_equal(s.metrics_tls_ca, "");
  assert_int_equal(mu_server_config_set(&s, "metrics-tls-cert", "/m.crt", &err), 0);
  assert_int_equal(mu_server_config_set(&s, "metrics_tls_key", "/m.key", &err), 0);
  assert_string_equal(s.metrics_tls_cert, "/m.crt");
  assert_string_equal(s.metrics_tls_key, "/m.key");
  assert_int_equal(mu_server_config_set(&s, "metrics-tls-ca", "", &err), MU_EINVAL);
  assert_has(err.msg, "--metrics-tls-ca");
  mu_server_config_free(&s);
}

/* plugins: {TYPE: {isolation: ...}} (docs/plugins.md, Isolation), from a file and a flag. */
static void agent_plugin_isolation(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_err err = {0};
  const char *path = write_file("plugins.yaml",
                                "plugins:\n  sleep-echo: {isolation: in-process}\n"
                                "  shell:\n    isolation: process\n");
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), 0);
  assert_string_equal(mu_labels_get(&cfg.plugins, "sleep-echo.isolation"), "in-process");
  assert_string_equal(mu_labels_get(&cfg.plugins, "shell.isolation"), "process");
  assert_int_equal(mu_agent_config_set(&cfg, "plugins", "x.isolation=process", &err), 0);
  assert_int_equal(cfg.plugins.n, 1);
  assert_int_equal(mu_agent_config_set(&cfg, "plugins", "x.isolation=sandbox", &err), MU_EINVAL);
  assert_has(err.msg, "--plugins: plugin 'x': isolation \"sandbox\": expected in-process or process");
  mu_agent_config_free(&cfg);
  expect_agent_error("plugins:\n  http:\n    isolaton: process\n", 3, "plugins",
                     "plugin 'http': unknown setting 'isolaton' (known: isolation, config)");
  expect_agent_error("plugins:\n  http: process\n", 2, "plugins", "expected TYPE: {isolation: ...}");
}

/* plugins: {TYPE: {config: ...}} (SDK v2, docs/plugins.md): each type's config as JSON. */
static void agent_plugin_config(void **state) {
  (void)state;
  mu_agent_config cfg;
  mu_err err = {0};
  const char *path = write_file("pconf.yaml",
                                "plugins:\n  http:\n    isolation: in-process\n    config:\n"
                                "      timeoutMs: 2500\n      userAgent: \"muster \\\"x\\\"\"\n"
                                "      allow: [a, 1.5, true, ~]\n      nested: {k: -3e2}\n"
                                "  shell: {config: }\n");
  mu_agent_config_init(&cfg);
  assert_int_equal(mu_agent_config_load(&cfg, path, &err), 0);
  assert_string_equal(mu_labels_get(&cfg.plugins, "http.isolation"), "in-process");
  assert_string_equal(cfg.plugin_config_json,
                      "{\"http\":{\"timeoutMs\":2500,\"userAgent\":\"muster \\\"x\\\"\","
                      "\"allow\":[\"a\",1.5,true,null],\"nested\":{\"k\":-3e2}},\"shell\":{}}");
  mu_agent_config_free(&cfg);
  expect_agent_error("plugins:\n  http:\n    config: [1]\n", 3, "plugins", "config: expected a mapping");
}

/* queues: {NAME: {weight: N, max_running: N}} (docs/scheduling.md, Queues), file and flag. */
static void server_queues(void **state) {
  (void)state;
  mu_server_config cfg;
  mu_err err = {0};
  const char *path = write_file("queues.yaml",
                                "etcd: [http://127.0.0.1:2379]\n"
                                "queues:\n  etl: {weight: 3, max_running: 4}\n  adhoc:\n    weight: 1\n");
  mu_server_config_init(&cfg);
  assert_int_equal(mu_server_config_load(&cfg, path, &err), 0);
  assert_string_equal(mu_labels_get(&cfg.queues, "etl.weight"), "3");
  assert_string_equal(mu_labels_get(&cfg.queues, "etl.max_running"), "4");
  assert_string_equal(mu_labels_get(&cfg.queues, "adhoc.weight"), "1");
  assert_int_equal(mu_server_config_set(&cfg, "queues", "x.weight=0", &err), MU_EINVAL);
  assert_has(err.msg, "queue 'x': weight \"0\": expected 1..1000");
  assert_int_equal(mu_server_config_set(&cfg, "queues", "x.weight=2,x.max_running=7", &err), 0);
  assert_int_equal(cfg.queues.n, 2);
  assert_int_equal(mu_server_config_set(&cfg, "queues", "x.colour=red", &err), MU_EINVAL);
  assert_has(err.msg, "unknown setting 'colour' (known: weight, max_running)");
  mu_server_config_free(&cfg);
  const char *bad = write_file("queues-bad.yaml", "etcd: [http://127.0.0.1:2379]\nqueues:\n  etl: 3\n");
  mu_server_config_init(&cfg);
  assert_int_equal(mu_server_config_load(&cfg, bad, &err), MU_EINVAL);
  assert_has(err.msg, "expected NAME: {weight: N, max_running: N}");
  mu_server_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(agent_defaults),
      cmocka_unit_test(agent_good_file),
      cmocka_unit_test(agent_string_forms),
      cmocka_unit_test(agent_empty_file),
      cmocka_unit_test(agent_bad_files),
      cmocka_unit_test(missing_file),
      cmocka_unit_test(file_too_big),
      cmocka_unit_test(agent_flags),
      cmocka_unit_test(server_defaults_and_derived),
      cmocka_unit_test(server_file),
      cmocka_unit_test(server_queues),
      cmocka_unit_test(labels_api),
      cmocka_unit_test(addr_api),
      cmocka_unit_test(strlist_api),
      cmocka_unit_test(yaml_doc_api),
      cmocka_unit_test(metrics_tls_keys),
      cmocka_unit_test(agent_plugin_isolation),
      cmocka_unit_test(agent_plugin_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
