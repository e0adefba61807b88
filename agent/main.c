/* muster-agent: runs on every host. Reads its YAML config and flags (flags win), connects to
 * the control plane and stays connected. Exit codes: 0 clean stop, 1 runtime failure, 2 bad
 * configuration or flags. */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/plugin_deploy.h"
#include "agent/plugin/plugin_set.h"
#include "agent/task_audit.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/pki/peer.h"
#include "lib/version/version.h"

static const char usage[] =
    "usage: muster-agent [--config FILE] [--control HOST:PORT[,HOST:PORT...]] [--id ID]\n"
    "                    [--labels k=v[,k=v...]] [--spool-dir DIR] [--plugin-dir DIR]\n"
    "                    [--heartbeat-interval DUR] [--slots N] [--trust-key FILE]...\n"
    "                    [--allow-unsigned] [--allow-downgrade] [--bundle-cache-size SIZE]\n"
    "                    [--metrics-listen HOST:PORT]\n"
    "                    [--metrics-tls-cert FILE --metrics-tls-key FILE [--metrics-tls-ca FILE]]\n"
    "                    [--reconnect-max DUR] [--reconnect-fast DUR] [--max-message SIZE] [--log-level LEVEL] "
    "[--log-format text|json]\n"
    "                    [--exec-helper PATH] [--run-as USER[:GROUP]] [--type-slots TYPE=N[,TYPE=N...]]\n"
    "                    [--queue-max N] [--output-spool-size SIZE] [--output-retention DUR]\n"
    "                    [--sandbox-types T,..] [--sandbox-network none|host]\n"
    "                    [--sandbox-read-only-root BOOL] [--sandbox-writable P,..] [--sandbox-hidden P,..]\n"
    "                    [--container-policy FILE]\n"
    "                    --tls-ca FILE --tls-cert FILE --tls-key FILE [--tls-server-name NAME]\n"
    "                    | --insecure\n"
    "       muster-agent --version\n"
    "\n"
    "The Muster agent: connects to the control plane and runs the tasks it is given.\n"
    "Flags override the config file; see docs/configuration.md for every field.\n";

/* The agent's id is its certificate's (muster://agent/ID): without --id/id it is taken from
 * there; a different explicit id is refused here, before the control plane would. */
static int id_from_certificate(mu_agent_config *cfg, mu_err *err) {
  mu_pki_cert_info info;
  mu_err perr = {0};
  if (mu_pki_cert_info_from_file(cfg->tls_cert, &info, &perr) != 0)
    return mu_err_set(err, MU_EINVAL, "--tls-cert %s", perr.msg);
  if (strcmp(info.kind, "agent") != 0)
    return mu_err_set(err, MU_EINVAL,
                      "--tls-cert %s is %s%s%s, not an agent's (issue one with `muster pki issue "
                      "--kind agent --name ID`)",
                      cfg->tls_cert, info.kind[0] ? "a certificate of kind '" : "not a Muster certificate", info.kind,
                      info.kind[0] ? "'" : "");
  char host_id[sizeof cfg->id];
  mu_cfg_default_id(host_id, sizeof host_id);
  if (strcmp(cfg->id, info.name) == 0) return 0;
  if (strcmp(cfg->id, host_id) != 0)
    return mu_err_set(err, MU_EINVAL,
                      "--id %s does not match the certificate, which is for agent '%s' (drop --id "
                      "or issue a certificate for %s)",
                      cfg->id, info.name, cfg->id);
  snprintf(cfg->id, sizeof cfg->id, "%s", info.name);
  return 0;
}

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"control", required_argument, NULL, 0},
    {"id", required_argument, NULL, 0},
    {"labels", required_argument, NULL, 0},
    {"spool-dir", required_argument, NULL, 0},
    {"plugin-dir", required_argument, NULL, 0},
    {"heartbeat-interval", required_argument, NULL, 0},
    {"slots", required_argument, NULL, 0},
    {"trust-key", required_argument, NULL, 0},
    {"allow-unsigned", no_argument, NULL, 0},
    {"allow-downgrade", no_argument, NULL, 0},
    {"bundle-cache-size", required_argument, NULL, 0},
    {"metrics-listen", required_argument, NULL, 0},
    {"metrics-tls-cert", required_argument, NULL, 0},
    {"metrics-tls-key", required_argument, NULL, 0},
    {"metrics-tls-ca", required_argument, NULL, 0},
    {"reconnect-max", required_argument, NULL, 0},
    {"reconnect-fast", required_argument, NULL, 0},
    {"max-message", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"log-format", required_argument, NULL, 0},
    {"exec-helper", required_argument, NULL, 0},
    {"run-as", required_argument, NULL, 0},
    {"type-slots", required_argument, NULL, 0},
    {"queue-max", required_argument, NULL, 0},
    {"sandbox-types", required_argument, NULL, 0},
    {"sandbox-network", required_argument, NULL, 0},
    {"sandbox-read-only-root", required_argument, NULL, 0},
    {"sandbox-writable", required_argument, NULL, 0},
    {"sandbox-hidden", required_argument, NULL, 0},
    {"container-policy", required_argument, NULL, 0},
    {"output-spool-size", required_argument, NULL, 0},
    {"output-retention", required_argument, NULL, 0},
    {"tls-ca", required_argument, NULL, 0},
    {"tls-cert", required_argument, NULL, 0},
    {"tls-key", required_argument, NULL, 0},
    {"tls-server-name", required_argument, NULL, 0},
    {"insecure", no_argument, NULL, 0},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* --exec-helper, or muster-exec beside this binary (installed) or in exec/ (Bazel tree). */

/* type_slots {python: 2, http: 64} (config) / --type-slots python=2,http=64: per-type caps on
 * concurrent attempts; the entries point into a->cfg.type_slots. */
static int parse_type_slots(mu_agent_daemon *a, mu_err *err) {
  const mu_labels *l = &a->cfg.type_slots;
  if (l->n > MU_RUNNER_MAX_TYPE_SLOTS)
    return mu_err_set(err, MU_EINVAL, "type_slots: more than %d types", MU_RUNNER_MAX_TYPE_SLOTS);
  for (size_t i = 0; i < l->n; i++) {
    char *end = NULL;
    unsigned long max = strtoul(l->items[i].value, &end, 10);
    if (l->items[i].value[0] == '\0' || *end != '\0' || max == 0 || max > 4096)
      return mu_err_set(err, MU_EINVAL, "type_slots: %s: expected 1..4096 slots, got '%s'", l->items[i].key,
                        l->items[i].value);
    a->type_slots[i].type = l->items[i].key;
    a->type_slots[i].max = (uint32_t)max;
  }
  a->n_type_slots = l->n;
  return 0;
}

static int find_beside_self(const char *const *rel, size_t n, char *out, size_t size) {
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return 0;
  self[len] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return 0;
  *slash = '\0';
  for (size_t i = 0; i < n; i++) {
    snprintf(out, size, "%s/%s", self, rel[i]);
    if (access(out, F_OK) == 0) return 1;
  }
  return 0;
}

/* Where plugins come from, first existing dir wins: plugin_dir when configured, plugins/ beside
 * the binary, ../lib/muster/plugins beside it (installed layout), the compiled-in default. A
 * configured dir that is missing is only a warning so a fresh install still runs. The types
 * that ship with Muster are then taken from any of those dirs, beside the binary or from the
 * Bazel tree, so an agent started with no flags always serves them when their .so exists. */
static void load_plugins(mu_agent_daemon *a) {
  mu_err err = {0};
  char self[PATH_MAX] = "";
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len > 0) {
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) *slash = '\0';
  }
  char dirs[4][PATH_MAX + 32];
  size_t n = 0;
  int configured = strcmp(a->cfg.plugin_dir, MU_AGENT_DEFAULT_PLUGIN_DIR) != 0;
  if (configured) snprintf(dirs[n++], sizeof dirs[0], "%s", a->cfg.plugin_dir);
  if (self[0] != '\0') {
    snprintf(dirs[n++], sizeof dirs[0], "%s/plugins", self);
    snprintf(dirs[n++], sizeof dirs[0], "%s/../lib/muster/plugins", self);
  }
  snprintf(dirs[n++], sizeof dirs[0], "%s", MU_AGENT_DEFAULT_PLUGIN_DIR);
  struct stat st;
  if (configured && (stat(dirs[0], &st) != 0 || !S_ISDIR(st.st_mode)))
    mu_warn("agent", "plugin dir %s: %s; looking beside the agent and in %s instead", dirs[0],
            stat(dirs[0], &st) != 0 ? strerror(errno) : "not a directory", MU_AGENT_DEFAULT_PLUGIN_DIR);
  for (size_t i = 0; i < n; i++) {
    if (stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    int refused = 0;
    if (mu_plugin_set_load_dir(a->plugin_set, dirs[i], &refused, &err) != 0)
      mu_warn("agent", "plugin dir %s: %s", dirs[i], err.msg);
    else mu_info("agent", "plugin dir %s", dirs[i]);
    a->plugins_refused += refused;
    break;
  }
  static const char *const bundled_types[] = {"shell", "http", "python", "container", "spark", "flink"};
  for (size_t i = 0; i < sizeof bundled_types / sizeof bundled_types[0]; i++) {
    const char *t = bundled_types[i];
    if (mu_plugin_host_find(a->plugins, t) != NULL) continue;
    char path[PATH_MAX + 96];
    int found = 0;
    for (size_t k = 0; k < n && !found; k++) {
      snprintf(path, sizeof path, "%s/libmuster_%s.so", dirs[k], t);
      found = access(path, F_OK) == 0;
    }
    if (!found) {
      char rel_here[96], rel_tree[128];
      snprintf(rel_here, sizeof rel_here, "libmuster_%s.so", t);
      snprintf(rel_tree, sizeof rel_tree, "../plugins/%s/libmuster_%s.so", t, t);
      const char *const rel[] = {rel_here, rel_tree};
      found = find_beside_self(rel, 2, path, sizeof path);
    }
    if (found && mu_plugin_set_load(a->plugin_set, path, &err) != 0)
      mu_warn("agent", "bundled %s plugin %s: %s", t, path, err.msg);
  }
}

static int parse_config(int argc, char **argv, mu_agent_config *cfg, mu_err *err) {
  const char *config_path = NULL;
  int idx, c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "c:h", long_opts, &idx)) != -1) {
    if (c == 'c') config_path = optarg;
    if (c == 'h') {
      fputs(usage, stdout);
      exit(0);
    }
    if (c == 'V') {
      mu_version_print(stdout, "muster-agent");
      exit(0);
    }
    if (c == '?') return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (config_path != NULL && mu_agent_config_load(cfg, config_path, err) != 0) return err->code;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:h", long_opts, &idx)) != -1) {
    if (c != 0) continue;
    const char *value = optarg != NULL ? optarg : "true";
    if (mu_agent_config_set(cfg, long_opts[idx].name, value, err) != 0) return err->code;
  }
  mu_metrics_options metrics = {cfg->metrics_listen, cfg->metrics_tls_cert, cfg->metrics_tls_key, cfg->metrics_tls_ca};
  if (mu_metrics_options_check(&metrics, err) != 0) return err->code;
  /* secure by default, like musterd */
  int given = (cfg->tls_ca[0] != '\0') + (cfg->tls_cert[0] != '\0') + (cfg->tls_key[0] != '\0');
  if (cfg->insecure && given > 0) return mu_err_set(err, MU_EINVAL, "--insecure and --tls-* exclude each other");
  if (!cfg->insecure && given < 3)
    return mu_err_set(err, MU_EINVAL,
                      "the control plane is reached over mTLS: give --tls-ca, --tls-cert and "
                      "--tls-key (an agent certificate from `muster pki issue --kind agent --name "
                      "%s`, docs/security.md), or --insecure for a plaintext control plane",
                      cfg->id);
  return cfg->insecure ? 0 : id_from_certificate(cfg, err);
}

static void on_engine_closed(void *ud) {
  mu_agent_daemon *a = ud;
  uv_stop(a->loop);
}

static void on_journal_closed(void *ud) {
  mu_agent_daemon *a = ud;
  a->journal = NULL; /* freed: an ack arriving while the engine closes must not reach it */
  mu_rpc_engine_close(a->engine, on_engine_closed, a);
}

static void on_spool_closed(void *ud) {
  mu_agent_daemon *a = ud;
  a->spool = NULL;
  if (a->journal != NULL) mu_journal_close(a->journal, on_journal_closed, a);
  else on_journal_closed(a);
}

static void on_plugins_closed(void *ud) {
  mu_agent_daemon *a = ud;
  a->plugin_set = NULL;
  mu_agent_bundles_stop(a);
  if (a->spool != NULL) mu_output_spool_close(a->spool, on_spool_closed, a); /* after the runner's final events */
  else on_spool_closed(a);
}

/* The runner has closed: its cancelled runs' final events are in the journal. The stream stays
 * open until the control plane acks them (or stop_flush_timeout passes, or there is no stream),
 * so a stopped agent's runs end CANCELLED at once instead of LOST after the heartbeat grace. */
static bool final_events_settled(mu_agent_daemon *a) {
  if (a->journal == NULL || a->conn.call == NULL || !a->conn.welcomed) return true;
  if (mu_mono_ms() >= a->stop_deadline_ms) {
    mu_warn("agent", "stopping without the control plane's ack of every final event (stop_flush_timeout)");
    return true;
  }
  mu_journal_stats st;
  mu_journal_stats_get(a->journal, &st);
  return st.acked_seq + 1 >= st.next_seq;
}

static void finish_stop(mu_agent_daemon *a) {
  mu_conn_stop(&a->conn);
  mu_plugin_set_close(a->plugin_set, on_plugins_closed, a); /* host processes after their tasks */
}

static void on_stop_tick(uv_timer_t *t) {
  mu_agent_daemon *a = t->data;
  if (!final_events_settled(a)) return;
  uv_close((uv_handle_t *)t, NULL);
  finish_stop(a);
}

static void on_runner_closed(void *ud) {
  mu_agent_daemon *a = ud;
  a->runner = NULL;
  a->stop_deadline_ms = mu_mono_ms() + a->cfg.stop_flush_timeout_ms;
  if (final_events_settled(a)) {
    finish_stop(a);
    return;
  }
  mu_tasks_flush(a);
  uv_timer_init(a->loop, &a->stop_timer);
  a->stop_timer.data = a;
  uv_timer_start(&a->stop_timer, on_stop_tick, 20, 20);
}

static void on_signal(uv_signal_t *h, int signum) {
  mu_agent_daemon *a = h->data;
  (void)signum;
  if (a->stopping) return;
  a->stopping = 1;
  mu_info("agent", "stopping");
  mu_agent_metrics_stop(a);
  mu_logs_stop(a);
  /* the stream stays up until the runs' final events are acked (on_runner_closed) */
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  if (a->runner != NULL) mu_runner_close(a->runner, on_runner_closed, a);
  else on_runner_closed(a);
}

int main(int argc, char **argv) {
  mu_agent_daemon a;
  mu_err err = {0};
  memset(&a, 0, sizeof a);
  signal(SIGPIPE, SIG_IGN);
  mu_agent_config_init(&a.cfg);
  if (parse_config(argc, argv, &a.cfg, &err) != 0 || parse_type_slots(&a, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n%s", err.msg, usage);
    mu_agent_config_free(&a.cfg);
    return 2;
  }
  mu_log_set_level(a.cfg.log_level);
  mu_log_set_format(a.cfg.log_format);
  if (mu_host_facts_get(&a.facts, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    mu_agent_config_free(&a.cfg);
    return 1;
  }
  if (mu_image_policy_setup(&a, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    mu_agent_config_free(&a.cfg);
    return 2;
  }
  a.loop = uv_default_loop();
  a.loop->data = &a; /* the plugin deploy type (plugin_deploy.c) finds the agent through it */
  if (mu_rpc_engine_new(a.loop, &a.engine, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    mu_agent_config_free(&a.cfg);
    return 1;
  }
  if (mu_plugin_host_new(&a.plugins, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    return 1;
  }
  char plugin_host_path[PATH_MAX + 64];
  static const char *const plugin_host_rel[] = {"muster-plugin-host", "plugin/muster-plugin-host",
                                                "../libexec/muster/muster-plugin-host"}; /* installed */
  const char *plugin_host =
      find_beside_self(plugin_host_rel, 3, plugin_host_path, sizeof plugin_host_path) ? plugin_host_path : NULL;
  if (mu_plugin_set_new(a.loop, a.plugins, &a.cfg.plugins, plugin_host, NULL, &a.plugin_set, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    return 1;
  }
  load_plugins(&a);
  if (mu_plugin_deploy_start(&a, &err) != 0) mu_warn("agent", "plugin deploys: %s", err.msg);
  char types[512];
  mu_plugin_host_types(a.plugins, types, sizeof types);
  mu_info("agent", "task types: %s", types[0] ? types : "(none)");
  if (mu_plugin_host_count(a.plugins) == 0)
    mu_warn("agent",
            "no task types: every task sent here would fail, so this agent reports "
            "itself degraded (see the plugin_dir search order in docs/configuration.md)");
  char helper[PATH_MAX + 64];
  static const char *const helper_rel[] = {"muster-exec", "exec/muster-exec",
                                           "../libexec/muster/muster-exec"}; /* installed */
  const char *exec_helper_path = a.cfg.exec_helper[0] ? a.cfg.exec_helper : NULL;
  if (exec_helper_path == NULL && find_beside_self(helper_rel, 3, helper, sizeof helper)) exec_helper_path = helper;
  a.exec_helper_found = exec_helper_path != NULL && access(exec_helper_path, X_OK) == 0;
  if (exec_helper_path == NULL)
    mu_warn("agent",
            "muster-exec not found beside the agent (use --exec-helper): tasks that "
            "run processes will fail");
  if (mkdir(a.cfg.spool_dir, 0750) != 0 && errno != EEXIST) {
    fprintf(stderr, "muster-agent: spool dir %s: %s\n", a.cfg.spool_dir, strerror(errno));
    return 1;
  }
  a.spool_writable = access(a.cfg.spool_dir, W_OK) == 0;
  if (mu_tasks_start(&a, exec_helper_path, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    return 1;
  }
  if (mu_agent_metrics_start(&a, &err) != 0) {
    fprintf(stderr, "muster-agent: %s\n", err.msg);
    return 1;
  }
  mu_conn_init(&a.conn, &a);
  uv_signal_init(a.loop, &a.sigint);
  uv_signal_init(a.loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  mu_info("agent", "agent %s (%zu labels) starting; control plane %s", a.cfg.id, a.cfg.labels.n,
          a.cfg.control.items[0]);
  mu_conn_start(&a.conn);
  uv_run(a.loop, UV_RUN_DEFAULT);
  uv_run(a.loop, UV_RUN_NOWAIT);
  uv_loop_close(a.loop);
  mu_task_audits_free(a.task_audits);
  mu_tasks_lost_free(&a);
  mu_plugin_host_free(a.plugins);
  mu_agent_config_free(&a.cfg);
  return 0;
}
