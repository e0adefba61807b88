/* `muster doctor`'s checks (doctor.h). Thresholds are here, once: a certificate within 14
 * days of expiry, a clock 2 s off (WARN; 30 s FAIL: tokens, certificates and `muster logs
 * --since` start to disagree), a heartbeat 3 intervals late, a spool with less than 10 % or
 * 1 GiB free (WARN; 2 % or 256 MiB FAIL). */
#include "cli/doctor.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S 86400
#define SKEW_WARN_MS 2000
#define SKEW_FAIL_MS 30000
#define GIB (1024.0 * 1024 * 1024)

void mu_doctor_free(mu_doctor *d) {
  free(d->checks);
  memset(d, 0, sizeof *d);
}

void mu_doctor_add(mu_doctor *d, const char *scope, const char *name, mu_doctor_status status, const char *fix,
                   const char *fmt, ...) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 32;
    mu_doctor_check *g = cap <= MU_DOCTOR_MAX_CHECKS ? realloc(d->checks, cap * sizeof *g) : NULL;
    if (g == NULL) {
      d->dropped++;
      return;
    }
    d->checks = g;
    d->cap = cap;
  }
  mu_doctor_check *c = &d->checks[d->n++];
  snprintf(c->scope, sizeof c->scope, "%s", scope);
  snprintf(c->name, sizeof c->name, "%s", name);
  c->status = status;
  snprintf(c->fix, sizeof c->fix, "%s", status == MU_DOCTOR_OK || fix == NULL ? "" : fix);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->message, sizeof c->message, fmt, ap);
  va_end(ap);
}

mu_doctor_status mu_doctor_worst(const mu_doctor *d) {
  mu_doctor_status w = MU_DOCTOR_OK;
  for (size_t i = 0; i < d->n; i++)
    if (d->checks[i].status > w) w = d->checks[i].status;
  return w;
}

const char *mu_doctor_status_name(mu_doctor_status s) {
  return s == MU_DOCTOR_FAIL ? "FAIL" : s == MU_DOCTOR_WARN ? "WARN" : "OK";
}

static void human_ms(int64_t ms, char *buf, size_t size) {
  int64_t a = ms < 0 ? -ms : ms;
  if (a < 1000) snprintf(buf, size, "%lld ms", (long long)a);
  else if (a < 120000) snprintf(buf, size, "%.1f s", (double)a / 1000.0);
  else if (a < 7200000) snprintf(buf, size, "%lld min", (long long)(a / 60000));
  else if (a < 2 * 86400000LL) snprintf(buf, size, "%lld h", (long long)(a / 3600000));
  else snprintf(buf, size, "%lld days", (long long)(a / 86400000));
}

static void human_bytes(uint64_t b, char *buf, size_t size) {
  if (b < 1024 * 1024) snprintf(buf, size, "%llu KiB", (unsigned long long)(b / 1024));
  else if (b < 1024ull * 1024 * 1024) snprintf(buf, size, "%.1f MiB", (double)b / 1048576.0);
  else snprintf(buf, size, "%.2f GiB", (double)b / 1073741824.0);
}

static void check_skew(mu_doctor *d, const char *scope, const char *whose, int64_t skew_ms, const char *fix) {
  char t[32];
  human_ms(skew_ms, t, sizeof t);
  int64_t a = skew_ms < 0 ? -skew_ms : skew_ms;
  mu_doctor_status s = a >= SKEW_FAIL_MS ? MU_DOCTOR_FAIL : a >= SKEW_WARN_MS ? MU_DOCTOR_WARN : MU_DOCTOR_OK;
  mu_doctor_add(d, scope, "clock-skew", s, fix, "%s clock is %s %s musterd's", whose, t,
                skew_ms >= 0 ? "ahead of" : "behind");
}

void mu_doctor_check_cluster(mu_doctor *d, const char *addr, const Muster__V1__Cluster *c, int64_t sent_ms,
                             int64_t recv_ms) {
  char rtt[32];
  human_ms(recv_ms - sent_ms, rtt, sizeof rtt);
  mu_doctor_add(d, "cluster", "connectivity", MU_DOCTOR_OK, NULL,
                "musterd %s at %s (member %s) answered in %s; security %s, you are %s", c->version, addr,
                c->member_id[0] ? c->member_id : "-", rtt, c->security, c->caller);
  if (c->now_ms > 0)
    check_skew(d, "client", "this machine's", (sent_ms + recv_ms) / 2 - c->now_ms,
               "run NTP (chrony or systemd-timesyncd) on this machine and on musterd's");
  if (strstr(c->etcd_error, "--no-etcd") != NULL) {
    mu_doctor_add(d, "cluster", "etcd", MU_DOCTOR_WARN,
                  "run musterd with --etcd for durable state and failover (docs/operations.md)", "%s", c->etcd_error);
  } else if (!c->etcd_healthy) {
    mu_doctor_add(d, "cluster", "etcd", MU_DOCTOR_FAIL,
                  "check etcd (etcdctl endpoint health) and musterd's --etcd endpoints and TLS",
                  "etcd is not healthy: %s", c->etcd_error[0] ? c->etcd_error : "no reason given");
  } else {
    mu_doctor_add(d, "cluster", "etcd", MU_DOCTOR_OK, NULL, "etcd answers");
  }
  if (c->leader_address[0] == '\0')
    mu_doctor_add(d, "cluster", "leader", MU_DOCTOR_FAIL,
                  "no member holds the lease: check etcd and that a musterd member runs",
                  "no leader is known: nothing is dispatched");
  else
    mu_doctor_add(d, "cluster", "leader", MU_DOCTOR_OK, NULL, "leader %s%s (term %llu)", c->leader_address,
                  c->leader ? " (this member)" : "", (unsigned long long)c->leader_term);
  if (!c->healthy)
    mu_doctor_add(d, "cluster", "health", MU_DOCTOR_FAIL, "see the etcd and leader checks and musterd's log",
                  "musterd says it cannot do its job (not serving, or no etcd or leader)");
  if (strcmp(c->security, "insecure") == 0)
    mu_doctor_add(d, "cluster", "security", MU_DOCTOR_WARN,
                  "set up mTLS (muster pki init; docs/security.md) and drop --insecure",
                  "plaintext gRPC: anyone who reaches %s is an admin", addr);
  mu_doctor_status s = c->agents_total == 0                    ? MU_DOCTOR_WARN
                       : c->agents_connected < c->agents_total ? MU_DOCTOR_WARN
                                                               : MU_DOCTOR_OK;
  mu_doctor_add(d, "cluster", "agents", s,
                c->agents_total == 0 ? "start muster-agent --control ADDR on the hosts"
                                     : "see the agent checks below (muster agents --state disconnected)",
                "%u of %u agents connected", c->agents_connected, c->agents_total);
}

void mu_doctor_check_cert(mu_doctor *d, const char *scope, const char *name, const char *what, int64_t not_after,
                          int64_t now_ms) {
  int64_t left_ms = not_after * 1000 - now_ms;
  char t[32];
  human_ms(left_ms, t, sizeof t);
  if (left_ms <= 0)
    mu_doctor_add(d, scope, name, MU_DOCTOR_FAIL,
                  "issue a new one (muster pki issue ...; docs/security.md) and restart or reload", "%s expired %s ago",
                  what, t);
  else if (left_ms < 14LL * DAY_S * 1000)
    mu_doctor_add(d, scope, name, MU_DOCTOR_WARN, "renew it now (muster pki issue ...; docs/security.md)",
                  "%s expires in %s", what, t);
  else mu_doctor_add(d, scope, name, MU_DOCTOR_OK, NULL, "%s valid for %s", what, t);
}

static void check_disk(mu_doctor *d, const char *scope, const Muster__V1__HostMetrics *m) {
  if (m == NULL || m->spool_disk_total_bytes == 0) {
    mu_doctor_add(d, scope, "spool-disk", MU_DOCTOR_WARN,
                  "wait for a heartbeat, or check the agent can statvfs its --spool-dir",
                  "no disk figures for the spool yet");
    return;
  }
  double free_b = (double)m->spool_disk_free_bytes, total = (double)m->spool_disk_total_bytes;
  double pct = 100.0 * free_b / total;
  mu_doctor_status s = pct < 2 || free_b < 0.25 * GIB   ? MU_DOCTOR_FAIL
                       : pct < 10 || free_b < 1.0 * GIB ? MU_DOCTOR_WARN
                                                        : MU_DOCTOR_OK;
  mu_doctor_add(d, scope, "spool-disk", s,
                "free space where --spool-dir lives (output spool, journal, bundle cache), or "
                "lower output_spool_size / bundle_cache_size",
                "%.1f GiB free of %.1f GiB (%.0f%%) in the spool's filesystem", free_b / GIB, total / GIB, pct);
}

/* The run-as users of the agent's configuration: FAIL for each that does not resolve. */
static void check_run_as(mu_doctor *d, const char *scope, const Muster__V1__AgentEnv *env) {
  for (size_t i = 0; i < env->n_run_as_missing; i++)
    mu_doctor_add(d, scope, "run-as", MU_DOCTOR_FAIL,
                  "create the user on the host (useradd --system NAME), or change the agent's "
                  "run_as (--run-as, docs/configuration.md)",
                  "%s: tasks without their own run_as fail", env->run_as_missing[i]);
  if (env->n_run_as_users > 0 && env->n_run_as_missing == 0)
    mu_doctor_add(d, scope, "run-as", MU_DOCTOR_OK, NULL, "tasks run as %s by default", env->run_as_users[0]);
}

/* The python plugin's venv cache: a FAIL when it cannot be written (every python task
 * building an environment fails), else its size. */
/* The health of plugin p now: the last heartbeat lists the unhealthy plugins of an SDK v2
 * agent (not listed: ok); before any heartbeat, the Hello's. */
static const Muster__V1__PluginInfo *health_now(const Muster__V1__AgentInfo *a, const Muster__V1__PluginInfo *p) {
  static const Muster__V1__PluginInfo ok = {.base = PROTOBUF_C_MESSAGE_INIT(&muster__v1__plugin_info__descriptor),
                                            .type = "",
                                            .version = "",
                                            .health = "ok",
                                            .health_reason = "",
                                            .schema_json = ""};
  if (a->last_heartbeat_sent_at_ms <= 0) return p;
  for (size_t i = 0; i < a->n_plugin_health; i++)
    if (strcmp(a->plugin_health[i]->type, p->type) == 0) return a->plugin_health[i];
  return &ok;
}

/* SDK v2: each plugin's own health() (an agent or plugin older than SDK v2 reports none:
 * nothing to say). One line per plugin that is not ok, one line for the rest. */
static void check_plugin_health(mu_doctor *d, const char *scope, const Muster__V1__AgentInfo *a) {
  size_t ok = 0, reported = 0;
  for (size_t i = 0; i < a->n_plugins; i++) {
    const Muster__V1__PluginInfo *p = a->plugins[i];
    if (p->health == NULL || p->health[0] == '\0') continue; /* not SDK v2 */
    const Muster__V1__PluginInfo *h = health_now(a, p);
    reported++;
    if (strcmp(h->health, "ok") == 0) {
      ok++;
      continue;
    }
    char name[80];
    snprintf(name, sizeof name, "plugin-%s", p->type);
    mu_doctor_add(d, scope, name, strcmp(h->health, "warn") == 0 ? MU_DOCTOR_WARN : MU_DOCTOR_FAIL,
                  "see docs/plugins.md for the type's configuration (muster plugin config TYPE --show)",
                  "plugin %s %s: %s", p->type, p->version, h->health_reason[0] ? h->health_reason : h->health);
  }
  if (reported > 0 && ok == reported)
    mu_doctor_add(d, scope, "plugin-health", MU_DOCTOR_OK, NULL, "%zu plugin%s report healthy", ok, ok == 1 ? "" : "s");
}

static void check_python_cache(mu_doctor *d, const char *scope, const Muster__V1__AgentEnv *env) {
  if (env->python_cache_dir == NULL || env->python_cache_dir[0] == '\0') return;
  char size[32];
  human_bytes(env->python_cache_bytes, size, sizeof size);
  if (!env->python_cache_writable)
    mu_doctor_add(d, scope, "python-venvs", MU_DOCTOR_FAIL,
                  "fix the owner and mode of the cache dir (MUSTER_PYTHON_CACHE) so the agent's "
                  "user can write it",
                  "the venv cache %s is not writable: python tasks that need an environment "
                  "fail",
                  env->python_cache_dir);
  else
    mu_doctor_add(d, scope, "python-venvs", MU_DOCTOR_OK, NULL, "venv cache %s writable, %s", env->python_cache_dir,
                  size);
}

/* The container runtime: each missing prerequisite is a WARN (only container tasks fail). */
static void check_container(mu_doctor *d, const char *scope, const Muster__V1__AgentEnv *env) {
  if (!env->container_plugin) return;
  for (size_t i = 0; i < env->n_container_missing; i++) {
    const char *m = env->container_missing[i];
    const char *paren = strstr(m, " (");
    char fix[320] = "";
    if (paren != NULL && m[strlen(m) - 1] == ')')
      snprintf(fix, sizeof fix, "%.*s", (int)(strlen(paren) - 3), paren + 2);
    mu_doctor_add(d, scope, "container", MU_DOCTOR_WARN, fix[0] ? fix : "see docs/task-container.md",
                  "%.*s: container tasks fail here", paren ? (int)(paren - m) : (int)strlen(m), m);
  }
  if (env->n_container_missing == 0)
    mu_doctor_add(d, scope, "container", MU_DOCTOR_OK, NULL, "container runtime ready (helper, overlay, namespaces)");
}

void mu_doctor_check_agent(mu_doctor *d, const Muster__V1__AgentInfo *a, int64_t now_ms) {
  char scope[160], t[32];
  snprintf(scope, sizeof scope, "agent %s", a->agent_id);
  if (a->state == MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED) {
    human_ms(now_ms - a->last_heartbeat_ms, t, sizeof t);
    mu_doctor_add(d, scope, "connected", MU_DOCTOR_FAIL,
                  "start muster-agent on the host, or check its log and the network to musterd",
                  "disconnected (%s), last heard %s ago",
                  a->disconnect_reason[0] ? a->disconnect_reason : "no reason known",
                  a->last_heartbeat_ms > 0 ? t : "never");
    return; /* the rest would be stale */
  }
  if (a->state == MUSTER__V1__AGENT_STATE__AGENT_DRAINING)
    mu_doctor_add(d, scope, "connected", MU_DOCTOR_WARN, "muster drain AGENT --undrain when its maintenance is over",
                  "connected but draining: no new host runs start there");
  else
    mu_doctor_add(d, scope, "connected", MU_DOCTOR_OK, NULL, "connected from %s, version %s", a->peer,
                  a->agent_version);
  const Muster__V1__AgentEnv *env = a->env;
  if (a->n_plugins == 0)
    mu_doctor_add(d, scope, "task-types", MU_DOCTOR_FAIL,
                  "install the plugins (libmuster_*.so) where plugin_dir points; "
                  "docs/configuration.md lists the search order",
                  "no task types: every task sent here fails");
  else if (env != NULL && env->plugins_refused > 0)
    mu_doctor_add(d, scope, "task-types", MU_DOCTOR_WARN,
                  "see the agent's log for why (ABI version, missing symbol, duplicate type)",
                  "%zu task types; %u plugins failed to load", a->n_plugins, env->plugins_refused);
  else mu_doctor_add(d, scope, "task-types", MU_DOCTOR_OK, NULL, "%zu task types", a->n_plugins);
  if (a->last_heartbeat_ms > 0 && a->last_heartbeat_sent_at_ms > 0)
    check_skew(d, scope, "its", a->last_heartbeat_sent_at_ms - a->last_heartbeat_ms,
               "run NTP (chrony or systemd-timesyncd) on the agent's host");
  check_disk(d, scope, a->metrics);
  if (env == NULL) {
    mu_doctor_add(d, scope, "environment", MU_DOCTOR_WARN,
                  "upgrade the agent: this one does not report its environment",
                  "no environment report (an agent older than musterd)");
    return;
  }
  if (!env->spool_writable)
    mu_doctor_add(d, scope, "spool-writable", MU_DOCTOR_FAIL,
                  "fix the owner and mode of --spool-dir (the agent's user must write it)",
                  "the spool directory was not writable when the agent started");
  if (strcmp(env->limits, "rlimit") == 0)
    mu_doctor_add(d, scope, "cgroups", MU_DOCTOR_WARN,
                  "run the agent as root on cgroup v2 with a delegated subtree (systemd "
                  "Delegate=yes; packaging/systemd)",
                  "no writable cgroup hierarchy: memory and CPU limits fall back to rlimits, "
                  "and memory peaks and OOM kills are not measured");
  else if (env->limits[0] != '\0')
    mu_doctor_add(d, scope, "cgroups", MU_DOCTOR_OK, NULL, "task limits through %s", env->limits);
  if (!env->exec_helper)
    mu_doctor_add(d, scope, "exec-helper", MU_DOCTOR_FAIL,
                  "install muster-exec beside the agent or pass --exec-helper PATH",
                  "muster-exec was not found: tasks that run processes fail");
  if (env->trust_keys == 0 && !env->allow_unsigned)
    mu_doctor_add(d, scope, "bundle-trust", MU_DOCTOR_WARN,
                  "give the agent --trust-key FILE (docs/bundles.md), or allow_unsigned",
                  "no bundle trust keys: tasks with a signed bundle are refused");
  check_run_as(d, scope, env);
  check_python_cache(d, scope, env);
  check_container(d, scope, env);
  check_plugin_health(d, scope, a);
}

void mu_doctor_print(const mu_doctor *d, FILE *out) {
  size_t count[3] = {0, 0, 0};
  for (size_t i = 0; i < d->n; i++) {
    const mu_doctor_check *c = &d->checks[i];
    count[c->status]++;
    fprintf(out, "%-5s %-18s %-14s %s\n", mu_doctor_status_name(c->status), c->scope, c->name, c->message);
    if (c->fix[0]) fprintf(out, "      %-18s %-14s fix: %s\n", "", "", c->fix);
  }
  fprintf(out, "%zu checks: %zu ok, %zu warn, %zu fail%s\n", d->n, count[0], count[1], count[2],
          d->dropped ? " (some checks were dropped: out of memory)" : "");
}

/* Latency over these is a WARN / FAIL (etcd's own guidance: a request well under 100 ms). */
#define ETCD_SLOW_MS 100
#define ETCD_VERY_SLOW_MS 1000
#define ETCD_DEFAULT_QUOTA (2ull * 1024 * 1024 * 1024)

void mu_doctor_check_etcd(mu_doctor *d, const Muster__V1__EtcdStatus *s, int64_t now_ms) {
  if (s == NULL) {
    mu_doctor_add(d, "etcd", "etcd-status", MU_DOCTOR_WARN,
                  "run musterd with --etcd (docs/ha.md); with etcd, ask again in a second",
                  "no etcd status: musterd runs without etcd, or its first probe has not ended");
    return;
  }
  if (s->error[0] != '\0') {
    mu_doctor_add(d, "etcd", "etcd-health", MU_DOCTOR_FAIL,
                  "check that etcd runs and musterd's --etcd endpoints reach it "
                  "(etcdctl endpoint health)",
                  "the status probe failed: %s", s->error);
    return;
  }
  mu_doctor_status ls = s->latency_ms >= ETCD_VERY_SLOW_MS ? MU_DOCTOR_FAIL
                        : s->latency_ms >= ETCD_SLOW_MS    ? MU_DOCTOR_WARN
                                                           : MU_DOCTOR_OK;
  mu_doctor_add(d, "etcd", "etcd-health", ls,
                "etcd needs fast disks (fsync) and a quiet network: see etcd's tuning guide",
                "etcd %s at %s answered Status in %lld ms", s->version, s->endpoint, (long long)s->latency_ms);
  char list[480] = "";
  size_t len = 0;
  for (size_t i = 0; i < s->n_members && len < sizeof list; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", s->members[i]);
  mu_doctor_add(d, "etcd", "etcd-members", s->n_members == 0 ? MU_DOCTOR_FAIL : MU_DOCTOR_OK,
                "check the etcd cluster (etcdctl member list)", "%zu members, leader %s: %s", s->n_members,
                s->leader[0] ? s->leader : "(none)", list);
  char age[32];
  human_ms(now_ms - s->raft_term_since_ms, age, sizeof age);
  mu_doctor_add(d, "etcd", "etcd-term", MU_DOCTOR_OK, NULL, "raft term %llu, unchanged for at least %s",
                (unsigned long long)s->raft_term, age);
  char db[32], used[32], quota[32];
  human_bytes(s->db_size_bytes, db, sizeof db);
  human_bytes(s->db_size_in_use_bytes, used, sizeof used);
  uint64_t q = s->quota_bytes ? s->quota_bytes : ETCD_DEFAULT_QUOTA;
  human_bytes(q, quota, sizeof quota);
  double pct = 100.0 * (double)s->db_size_bytes / (double)q;
  mu_doctor_add(d, "etcd", "etcd-db-size", pct >= 80 ? MU_DOCTOR_WARN : MU_DOCTOR_OK,
                "compact and defragment (etcdctl compact, etcdctl defrag), or raise "
                "--quota-backend-bytes",
                "database %s (%s in use), %.0f%% of %s%s%s", db, used, pct,
                s->quota_bytes ? "the quota " : "etcd's default quota ", quota,
                s->quota_bytes ? "" : " (the real quota is unknown: etcd's Status does not report it)");
}
