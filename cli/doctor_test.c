/* `muster doctor`'s decisions for situations built by hand: a healthy cluster and agent, then
 * each broken condition on its own (etcd down, no leader, a skewed clock, an expired and an
 * expiring certificate, a disconnected agent, no task types, a full disk, no cgroups, no exec
 * helper), each giving the right status and a fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/doctor.h"

#define NOW 1800000000000LL
#define GIB (1024ull * 1024 * 1024)

static const mu_doctor_check *find(const mu_doctor *d, const char *scope, const char *name) {
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->checks[i].scope, scope) == 0 && strcmp(d->checks[i].name, name) == 0) return &d->checks[i];
  fail_msg("no check %s / %s", scope, name);
  return NULL;
}

static void expect(const mu_doctor *d, const char *scope, const char *name, mu_doctor_status status, const char *says) {
  const mu_doctor_check *c = find(d, scope, name);
  if (c->status != status || strstr(c->message, says) == NULL)
    fail_msg("%s/%s: %s '%s', want %s with '%s'", scope, name, mu_doctor_status_name(c->status), c->message,
             mu_doctor_status_name(status), says);
  if (status != MU_DOCTOR_OK && c->fix[0] == '\0') fail_msg("%s/%s: no fix", scope, name);
}

static Muster__V1__Cluster healthy_cluster(void) {
  Muster__V1__Cluster c = MUSTER__V1__CLUSTER__INIT;
  c.version = "0.1.0";
  c.member_id = "cp-a";
  c.leader = 1;
  c.leader_address = "10.0.0.1:7400";
  c.leader_term = 3;
  c.etcd_healthy = 1;
  c.etcd_error = "";
  c.agents_connected = 2;
  c.agents_total = 2;
  c.healthy = 1;
  c.security = "mtls";
  c.caller = "admin cert alice (admin)";
  c.now_ms = NOW + 10;
  return c;
}

static void test_cluster(void **state) {
  (void)state;
  mu_doctor d = {0};
  Muster__V1__Cluster c = healthy_cluster();
  mu_doctor_check_cluster(&d, "cp:7400", &c, NOW, NOW + 20);
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_OK);
  expect(&d, "cluster", "connectivity", MU_DOCTOR_OK, "answered in 20 ms");
  expect(&d, "client", "clock-skew", MU_DOCTOR_OK, "0 ms");
  mu_doctor_free(&d);

  c.etcd_healthy = 0;
  c.etcd_error = "etcd range: unreachable";
  c.leader_address = "";
  c.healthy = 0;
  c.agents_connected = 1;
  c.now_ms = NOW - 45000; /* musterd 45 s behind */
  mu_doctor_check_cluster(&d, "cp:7400", &c, NOW, NOW + 20);
  expect(&d, "cluster", "etcd", MU_DOCTOR_FAIL, "etcd range: unreachable");
  expect(&d, "cluster", "leader", MU_DOCTOR_FAIL, "no leader");
  expect(&d, "cluster", "health", MU_DOCTOR_FAIL, "cannot do its job");
  expect(&d, "client", "clock-skew", MU_DOCTOR_FAIL, "45.0 s ahead of");
  expect(&d, "cluster", "agents", MU_DOCTOR_WARN, "1 of 2 agents connected");
  mu_doctor_free(&d);

  c = healthy_cluster();
  c.etcd_healthy = 0;
  c.etcd_error = "etcd is not used (--no-etcd: state is in memory only)";
  c.security = "insecure";
  c.now_ms = NOW + 3000;
  mu_doctor_check_cluster(&d, "cp:7400", &c, NOW, NOW);
  expect(&d, "cluster", "etcd", MU_DOCTOR_WARN, "--no-etcd");
  expect(&d, "cluster", "security", MU_DOCTOR_WARN, "plaintext");
  expect(&d, "client", "clock-skew", MU_DOCTOR_WARN, "3.0 s behind");
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_WARN);
  mu_doctor_free(&d);
}

static void test_certs(void **state) {
  (void)state;
  mu_doctor d = {0};
  mu_doctor_check_cert(&d, "client", "a", "cert a", NOW / 1000 + 90 * 86400, NOW);
  mu_doctor_check_cert(&d, "client", "b", "cert b", NOW / 1000 + 3 * 86400, NOW);
  mu_doctor_check_cert(&d, "client", "c", "cert c", NOW / 1000 - 3600, NOW);
  expect(&d, "client", "a", MU_DOCTOR_OK, "valid for 90 days");
  expect(&d, "client", "b", MU_DOCTOR_WARN, "expires in 3 days");
  expect(&d, "client", "c", MU_DOCTOR_FAIL, "expired 60 min ago");
  mu_doctor_free(&d);
}

typedef struct agent_fixture {
  Muster__V1__AgentInfo a;
  Muster__V1__AgentEnv env;
  Muster__V1__HostMetrics m;
  Muster__V1__PluginInfo p;
  Muster__V1__PluginInfo *pp[1];
} agent_fixture;

static void healthy_agent(agent_fixture *f) {
  muster__v1__agent_info__init(&f->a);
  muster__v1__agent_env__init(&f->env);
  muster__v1__host_metrics__init(&f->m);
  muster__v1__plugin_info__init(&f->p);
  f->a.agent_id = "web-1";
  f->a.state = MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
  f->a.peer = "ipv4:10.0.0.5:4100";
  f->a.agent_version = "0.1.0";
  f->p.type = "shell";
  f->pp[0] = &f->p;
  f->a.plugins = f->pp;
  f->a.n_plugins = 1;
  f->a.last_heartbeat_ms = NOW - 1000;
  f->a.last_heartbeat_sent_at_ms = NOW - 1100;
  f->m.spool_disk_total_bytes = 100 * GIB;
  f->m.spool_disk_free_bytes = 40 * GIB;
  f->a.metrics = &f->m;
  f->env.limits = "cgroup-v2";
  f->env.exec_helper = 1;
  f->env.spool_writable = 1;
  f->env.trust_keys = 1;
  f->a.env = &f->env;
}

static void test_agent(void **state) {
  (void)state;
  mu_doctor d = {0};
  agent_fixture f;
  healthy_agent(&f);
  mu_doctor_check_agent(&d, &f.a, NOW);
  if (mu_doctor_worst(&d) != MU_DOCTOR_OK) {
    mu_doctor_print(&d, stderr);
    fail_msg("a healthy agent is not OK");
  }
  expect(&d, "agent web-1", "spool-disk", MU_DOCTOR_OK, "40.0 GiB free of 100.0 GiB (40%)");
  expect(&d, "agent web-1", "cgroups", MU_DOCTOR_OK, "cgroup-v2");
  mu_doctor_free(&d);

  f.a.n_plugins = 0;
  f.a.last_heartbeat_sent_at_ms = NOW - 1000 + 120000; /* the agent is 2 min ahead */
  f.m.spool_disk_free_bytes = GIB / 10;
  f.env.limits = "rlimit";
  f.env.exec_helper = 0;
  f.env.trust_keys = 0;
  f.env.spool_writable = 0;
  mu_doctor_check_agent(&d, &f.a, NOW);
  expect(&d, "agent web-1", "task-types", MU_DOCTOR_FAIL, "no task types");
  expect(&d, "agent web-1", "clock-skew", MU_DOCTOR_FAIL, "2 min ahead of");
  expect(&d, "agent web-1", "spool-disk", MU_DOCTOR_FAIL, "0.1 GiB free");
  expect(&d, "agent web-1", "cgroups", MU_DOCTOR_WARN, "rlimits");
  expect(&d, "agent web-1", "exec-helper", MU_DOCTOR_FAIL, "muster-exec");
  expect(&d, "agent web-1", "bundle-trust", MU_DOCTOR_WARN, "no bundle trust keys");
  expect(&d, "agent web-1", "spool-writable", MU_DOCTOR_FAIL, "not writable");
  mu_doctor_free(&d);

  healthy_agent(&f);
  f.env.plugins_refused = 2;
  mu_doctor_check_agent(&d, &f.a, NOW);
  expect(&d, "agent web-1", "task-types", MU_DOCTOR_WARN, "2 plugins failed to load");
  mu_doctor_free(&d);

  healthy_agent(&f);
  f.a.state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
  f.a.disconnect_reason = "agent closed its stream";
  f.a.last_heartbeat_ms = NOW - 300000;
  mu_doctor_check_agent(&d, &f.a, NOW);
  expect(&d, "agent web-1", "connected", MU_DOCTOR_FAIL,
         "disconnected (agent closed its stream), last heard 5 min ago");
  assert_int_equal(d.n, 1); /* nothing else is judged from stale figures */
  mu_doctor_free(&d);
}

/* Run-as users, the python venv cache, the container runtime: each with its fix. */
/* SDK v2: a plugin's health() from the Hello: warn and fail named with the plugin's reason,
 * healthy ones summed up in one line. */
static void test_plugin_health(void **state) {
  (void)state;
  mu_doctor d = {0};
  agent_fixture f;
  healthy_agent(&f);
  f.a.last_heartbeat_sent_at_ms = 0; /* no heartbeat yet: the Hello's health */
  f.p.health = "ok";
  f.p.health_reason = "";
  mu_doctor_check_agent(&d, &f.a, NOW);
  expect(&d, "agent web-1", "plugin-health", MU_DOCTOR_OK, "1 plugin report healthy");
  mu_doctor_free(&d);
  memset(&d, 0, sizeof d);
  f.p.type = "greet";
  f.p.version = "2.0.0";
  f.p.health = "warn";
  f.p.health_reason = "the greeting is empty";
  mu_doctor_check_agent(&d, &f.a, NOW);
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_WARN);
  expect(&d, "agent web-1", "plugin-greet", MU_DOCTOR_WARN, "plugin greet 2.0.0: the greeting is empty");
  mu_doctor_free(&d);
  memset(&d, 0, sizeof d);
  f.p.health = "fail";
  mu_doctor_check_agent(&d, &f.a, NOW);
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_FAIL);
  mu_doctor_free(&d);
  /* after a heartbeat: its list of unhealthy plugins is the truth (greet not in it: ok) */
  memset(&d, 0, sizeof d);
  f.a.last_heartbeat_sent_at_ms = NOW - 500;
  mu_doctor_check_agent(&d, &f.a, NOW);
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_OK);
  expect(&d, "agent web-1", "plugin-health", MU_DOCTOR_OK, "1 plugin report healthy");
  mu_doctor_free(&d);
  memset(&d, 0, sizeof d);
  Muster__V1__PluginInfo now = MUSTER__V1__PLUGIN_INFO__INIT, *nowp[] = {&now};
  now.type = "greet";
  now.health = "warn";
  now.health_reason = "the greeting is empty now";
  f.a.plugin_health = nowp;
  f.a.n_plugin_health = 1;
  mu_doctor_check_agent(&d, &f.a, NOW);
  expect(&d, "agent web-1", "plugin-greet", MU_DOCTOR_WARN, "plugin greet 2.0.0: the greeting is empty now");
  mu_doctor_free(&d);
}

static void test_agent_env(void **state) {
  (void)state;
  mu_doctor d = {0};
  agent_fixture f;
  healthy_agent(&f);
  char *users[] = {"svc"}, *missing[] = {"svc: run_as: user 'svc' does not exist on web-1"};
  char *absent[] = {"overlay: the kernel has no overlay filesystem (modprobe overlay)"};
  f.env.n_run_as_users = 1;
  f.env.run_as_users = users;
  f.env.python_cache_dir = "/var/lib/muster/python";
  f.env.python_cache_writable = 1;
  f.env.python_cache_bytes = 3 * 1024 * 1024;
  f.env.container_plugin = 1;
  mu_doctor_check_agent(&d, &f.a, NOW);
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_OK);
  expect(&d, "agent web-1", "run-as", MU_DOCTOR_OK, "tasks run as svc by default");
  expect(&d, "agent web-1", "python-venvs", MU_DOCTOR_OK, "writable, 3.0 MiB");
  expect(&d, "agent web-1", "container", MU_DOCTOR_OK, "ready");
  mu_doctor_free(&d);

  f.env.n_run_as_missing = 1;
  f.env.run_as_missing = missing;
  f.env.python_cache_writable = 0;
  f.env.n_container_missing = 1;
  f.env.container_missing = absent;
  mu_doctor_check_agent(&d, &f.a, NOW);
  expect(&d, "agent web-1", "run-as", MU_DOCTOR_FAIL, "user 'svc' does not exist");
  expect(&d, "agent web-1", "python-venvs", MU_DOCTOR_FAIL, "not writable");
  expect(&d, "agent web-1", "container", MU_DOCTOR_WARN,
         "overlay: the kernel has no overlay filesystem: container tasks fail here");
  for (size_t i = 0; i < d.n; i++)
    if (strcmp(d.checks[i].name, "container") == 0) assert_string_equal(d.checks[i].fix, "modprobe overlay");
    else if (strcmp(d.checks[i].name, "run-as") == 0) assert_non_null(strstr(d.checks[i].fix, "useradd"));
  mu_doctor_free(&d);
}

static void test_etcd(void **state) {
  (void)state;
  mu_doctor d = {0};
  Muster__V1__EtcdStatus s = MUSTER__V1__ETCD_STATUS__INIT;
  char *members[] = {"a http://10.0.0.1:2379", "b http://10.0.0.2:2379"};
  s.probed_at_ms = NOW;
  s.latency_ms = 3;
  s.error = "";
  s.version = "3.4.23";
  s.endpoint = "http://10.0.0.1:2379";
  s.leader = "b";
  s.members = members;
  s.n_members = 2;
  s.raft_term = 7;
  s.raft_term_since_ms = NOW - 7200000;
  s.db_size_bytes = 20 * 1024 * 1024;
  s.db_size_in_use_bytes = 10 * 1024 * 1024;
  mu_doctor_check_etcd(&d, &s, NOW);
  assert_int_equal(mu_doctor_worst(&d), MU_DOCTOR_OK);
  expect(&d, "etcd", "etcd-health", MU_DOCTOR_OK, "answered Status in 3 ms");
  expect(&d, "etcd", "etcd-members", MU_DOCTOR_OK, "2 members, leader b: a http");
  expect(&d, "etcd", "etcd-term", MU_DOCTOR_OK, "raft term 7, unchanged for at least 2 h");
  expect(&d, "etcd", "etcd-db-size", MU_DOCTOR_OK,
         "20.0 MiB (10.0 MiB in use), 1% of etcd's "
         "default quota 2.00 GiB (the real quota");
  mu_doctor_free(&d);

  s.latency_ms = 250;
  s.quota_bytes = 100 * 1024 * 1024;
  s.db_size_bytes = 90 * 1024 * 1024;
  mu_doctor_check_etcd(&d, &s, NOW);
  expect(&d, "etcd", "etcd-health", MU_DOCTOR_WARN, "250 ms");
  expect(&d, "etcd", "etcd-db-size", MU_DOCTOR_WARN, "90% of the quota 100.0 MiB");
  mu_doctor_free(&d);

  s.error = "connection refused";
  mu_doctor_check_etcd(&d, &s, NOW);
  expect(&d, "etcd", "etcd-health", MU_DOCTOR_FAIL, "probe failed: connection refused");
  assert_int_equal(d.n, 1);
  mu_doctor_free(&d);
  mu_doctor_check_etcd(&d, NULL, NOW);
  expect(&d, "etcd", "etcd-status", MU_DOCTOR_WARN, "no etcd status");
  mu_doctor_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_cluster),       cmocka_unit_test(test_certs),
                                     cmocka_unit_test(test_agent),         cmocka_unit_test(test_agent_env),
                                     cmocka_unit_test(test_plugin_health), cmocka_unit_test(test_etcd)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
