/* musterd: the control plane. Parses its config file and flags (flags win), serves the agent
 * gateway, the admin API, health and reflection on one gRPC port, and stops cleanly on
 * SIGINT/SIGTERM. Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controlplane/agent_gc.h"
#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/cluster.h"
#include "controlplane/console/console.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules.h"
#include "controlplane/templates/templates.h"
#include "controlplane/imagepolicy/imagepolicy.h"
#include "controlplane/queues_admin.h"
#include "controlplane/wiring.h"
#include "controlplane/tokens.h"
#include "controlplane/secrets.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/version/version.h"

static const char usage[] =
    "usage: musterd [--config FILE] [--listen HOST:PORT] [--advertise HOST:PORT]\n"
    "               [--etcd URL[,URL...] | --etcd none | --no-etcd] [--etcd-prefix PREFIX]\n"
    "               [--state-dir DIR]\n"
    "               [--metrics-listen HOST:PORT] [--heartbeat-timeout DUR]\n"
    "               [--metrics-tls-cert FILE --metrics-tls-key FILE [--metrics-tls-ca FILE]]\n"
    "               [--leader-ttl DUR] [--takeover-grace DUR] [--presence-ttl DUR]\n"
    "               [--max-agents N] [--max-tokens N] [--agent-gc-after DUR]\n"
    "               [--max-message SIZE] [--rpc-queues N] [--member-id ID] [--log-level LEVEL] [--log-format "
    "text|json]\n"
    "               [--max-job-tasks N] [--max-task-runs N] [--max-jobs-kept N]\n"
    "               [--jobs-kept-min-age DUR] [--max-jobs-kept-hard N]\n"
    "               [--schedule-slots-kept N] [--max-schedules N]\n"
    "               [--audit-max-records N] [--audit-retention DUR]\n"
    "               [--audit-denials-per-second N]\n"
    "               [--trust-key FILE]... [--allow-unsigned-bundles]\n"
    "               [--max-bundle-size SIZE] [--bundle-store-size SIZE]\n"
    "               [--bundle-etcd-chunk SIZE] [--bundle-serve-queue SIZE]\n"
    "               --tls-ca FILE --tls-cert FILE --tls-key FILE [--tls-crl FILE]\n"
    "               [--tls-client-cert-optional] | --insecure\n"
    "               [--etcd-ca FILE --etcd-cert FILE --etcd-key FILE]\n"
    "               [--secret-key FILE]\n"
    "               [--web-listen HOST:PORT [--web-tls-cert FILE --web-tls-key FILE]]\n"
    "               [--web-max-connections N] [--web-stream-buffer BYTES]\n"
    "       musterd --version\n"
    "\n"
    "The Muster control plane: agents connect to it, the CLI and grpcurl talk to it.\n"
    "Flags override the config file, MUSTER_ETCD sets the etcd endpoints; see\n"
    "docs/configuration.md and docs/operations.md. Without etcd (--no-etcd) the state is in\n"
    "memory only and this is the one member. It serves mTLS only (make the files with\n"
    "`muster pki`, see docs/security.md); --insecure serves plaintext to anyone.\n";

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"listen", required_argument, NULL, 0},
    {"advertise", required_argument, NULL, 0},
    {"etcd", required_argument, NULL, 0},
    {"no-etcd", no_argument, NULL, 0},
    {"etcd-prefix", required_argument, NULL, 0},
    {"state-dir", required_argument, NULL, 0},
    {"metrics-listen", required_argument, NULL, 0},
    {"metrics-tls-cert", required_argument, NULL, 0},
    {"metrics-tls-key", required_argument, NULL, 0},
    {"metrics-tls-ca", required_argument, NULL, 0},
    {"heartbeat-timeout", required_argument, NULL, 0},
    {"leader-ttl", required_argument, NULL, 0},
    {"takeover-grace", required_argument, NULL, 0},
    {"presence-ttl", required_argument, NULL, 0},
    {"max-agents", required_argument, NULL, 0},
    {"rpc-queues", required_argument, NULL, 0},
    {"agent-gc-after", required_argument, NULL, 0},
    {"max-message", required_argument, NULL, 0},
    {"max-job-tasks", required_argument, NULL, 0},
    {"max-task-runs", required_argument, NULL, 0},
    {"max-jobs-kept", required_argument, NULL, 0},
    {"schedule-slots-kept", required_argument, NULL, 0},
    {"max-schedules", required_argument, NULL, 0},
    {"jobs-kept-min-age", required_argument, NULL, 0},
    {"max-jobs-kept-hard", required_argument, NULL, 0},
    {"allow-unsigned-bundles", no_argument, NULL, 0},
    {"max-tokens", required_argument, NULL, 0},
    {"audit-max-records", required_argument, NULL, 0},
    {"audit-retention", required_argument, NULL, 0},
    {"audit-denials-per-second", required_argument, NULL, 0},
    {"member-id", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"log-format", required_argument, NULL, 0},
    {"trust-key", required_argument, NULL, 0},
    {"max-bundle-size", required_argument, NULL, 0},
    {"bundle-store-size", required_argument, NULL, 0},
    {"bundle-etcd-chunk", required_argument, NULL, 0},
    {"bundle-serve-queue", required_argument, NULL, 0},
    {"tls-ca", required_argument, NULL, 0},
    {"tls-cert", required_argument, NULL, 0},
    {"tls-key", required_argument, NULL, 0},
    {"tls-crl", required_argument, NULL, 0},
    {"tls-client-cert-optional", no_argument, NULL, 0},
    {"insecure", no_argument, NULL, 0},
    {"etcd-ca", required_argument, NULL, 0},
    {"etcd-cert", required_argument, NULL, 0},
    {"etcd-key", required_argument, NULL, 0},
    {"secret-key", required_argument, NULL, 0},
    {"web-listen", required_argument, NULL, 0},
    {"web-tls-cert", required_argument, NULL, 0},
    {"web-tls-key", required_argument, NULL, 0},
    {"web-max-connections", required_argument, NULL, 0},
    {"web-stream-buffer", required_argument, NULL, 0},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Secure by default: TLS needs all three files; plaintext must be asked for. */
static int check_tls_config(const mu_server_config *cfg, mu_err *err) {
  int given = (cfg->tls_ca[0] != '\0') + (cfg->tls_cert[0] != '\0') + (cfg->tls_key[0] != '\0');
  if (cfg->insecure && given > 0) return mu_err_set(err, MU_EINVAL, "--insecure and --tls-* exclude each other");
  if (cfg->insecure) return 0;
  if (given == 0)
    return mu_err_set(err, MU_EINVAL,
                      "no TLS configured: give --tls-ca, --tls-cert and --tls-key (make them with "
                      "`muster pki init` and `muster pki issue --kind server`, docs/security.md), "
                      "or --insecure to serve plaintext, where anyone who reaches the port can "
                      "run commands on every agent");
  if (given < 3)
    return mu_err_set(err, MU_EINVAL, "TLS needs all of --tls-ca, --tls-cert and --tls-key (%s missing)",
                      cfg->tls_ca[0] == '\0'     ? "--tls-ca"
                      : cfg->tls_cert[0] == '\0' ? "--tls-cert"
                                                 : "--tls-key");
  return 0;
}

/* Loads the config file (if any), then MUSTER_ETCD, then applies every flag over them.
 * *ret_no_etcd: --no-etcd or an etcd of "none" (flag or environment) was given. */
static int parse_config(int argc, char **argv, mu_server_config *cfg, mu_bundles_config *bcfg, mu_console_config *web,
                        int *ret_no_etcd, mu_err *err) {
  const char *config_path = NULL;
  int idx;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "c:h", long_opts, &idx)) != -1) {
    if (c == 'c') config_path = optarg;
    if (c == 'h') {
      fputs(usage, stdout);
      exit(0);
    }
    if (c == '?') return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (config_path != NULL && mu_server_config_load(cfg, config_path, err) != 0) return err->code;
  const char *env = getenv("MUSTER_ETCD");
  *ret_no_etcd = 0;
  if (env != NULL && strcmp(env, "none") == 0) {
    *ret_no_etcd = 1;
  } else if (env != NULL && env[0] != '\0' && mu_server_config_set(cfg, "etcd", env, err) != 0) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return mu_err_set(err, MU_EINVAL, "MUSTER_ETCD: %s", msg);
  }
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:h", long_opts, &idx)) != -1) {
    if (c != 0) continue;
    const char *name = long_opts[idx].name;
    if (mu_bundles_config_has(name)) {
      if (mu_bundles_config_set(bcfg, name, optarg, err) != 0) return err->code;
      continue;
    }
    if (mu_console_config_has(name)) {
      if (mu_console_config_set(web, name, optarg, err) != 0) return err->code;
      continue;
    }
    if (strcmp(name, "no-etcd") == 0 || (strcmp(name, "etcd") == 0 && strcmp(optarg, "none") == 0)) {
      *ret_no_etcd = 1;
      continue;
    }
    if (strcmp(name, "etcd") == 0) *ret_no_etcd = 0;
    const char *value = long_opts[idx].has_arg == no_argument ? "true" : optarg;
    if (mu_server_config_set(cfg, name, value, err) != 0) return err->code;
  }
  if (cfg->max_jobs_kept_hard < cfg->max_jobs_kept)
    return mu_err_set(err, MU_EINVAL, "max_jobs_kept_hard (%u) must be at least max_jobs_kept (%u)",
                      cfg->max_jobs_kept_hard, cfg->max_jobs_kept);
  mu_metrics_options metrics = {cfg->metrics_listen, cfg->metrics_tls_cert, cfg->metrics_tls_key, cfg->metrics_tls_ca};
  if (mu_metrics_options_check(&metrics, err) != 0) return err->code;
  if (mu_console_config_check(web, cfg->insecure, err) != 0) return err->code;
  return check_tls_config(cfg, err);
}

static void on_engine_closed(void *ud) {
  mu_daemon *d = ud;
  uv_stop(d->loop);
}

static void on_cluster_stopped(mu_daemon *d) { mu_rpc_engine_close(d->engine, on_engine_closed, d); }

static void daemon_stop(mu_daemon *d) {
  if (d->stopping) return;
  d->stopping = 1;
  mu_info("musterd", "stopping");
  mu_sched_close(d->sched);
  mu_schedules_close(d);
  mu_bundles_stop(d);
  mu_metrics_stop(d);
  mu_console_stop(d);
  mu_images_stop(d);
  mu_audit_close(d);
  mu_authz_close(d);
  mu_secrets_close(d);
  mu_gateway_stop(d);
  mu_agent_gc_stop(d);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  /* etcd first (resigns, so a follower takes over at once; answers pending submits), then
   * the rpc engine */
  if (d->cluster->role != MU_ROLE_SINGLE) mu_cluster_stop(d, on_cluster_stopped);
  else on_cluster_stopped(d);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  daemon_stop(h->data);
}

static int listen_on(mu_daemon *d, mu_err *err) {
  mu_rpc_creds creds = {.tls = !d->cfg.insecure,
                        .ca_file = d->cfg.tls_ca,
                        .cert_file = d->cfg.tls_cert,
                        .key_file = d->cfg.tls_key,
                        .require_client_cert = !d->cfg.tls_client_cert_optional};
  int rc = mu_authz_reload_crl(d, err);
  if (rc == 0) rc = mu_rpc_server_listen(d->server, d->cfg.listen, &creds, &d->port, err);
  if (rc != 0) return rc;
  mu_authz_install(d);
  if (d->cfg.insecure)
    mu_warn("musterd",
            "INSECURE: serving plaintext gRPC without authentication; anyone who reaches %s can "
            "run any command as root on every agent (--insecure)",
            d->cfg.listen);
  return 0;
}

static int daemon_start(mu_daemon *d, const mu_console_config *web, mu_err *err) {
  mu_rpc_options opts = {.max_message = d->cfg.max_message};
  int rc = mu_rpc_engine_new(d->loop, &d->engine, err);
  if (rc == 0) rc = mu_audit_open(d, err);
  if (rc != 0) return rc;
  /* More completion queues, each with a thread: TLS handshakes run where gRPC polls, and a
   * queue's cost per completion grows with its calls in Debian's gRPC (lib/rpc/rpc.h). */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t queues = d->cfg.rpc_queues ? d->cfg.rpc_queues : cpus > 8 ? (size_t)cpus : 8;
  rc = mu_rpc_engine_add_queues(d->engine, queues - 1, err);
  if (rc != 0) return rc;
  mu_bundle_store *store = NULL;
  if (d->cluster->role == MU_ROLE_SINGLE) {
    rc = mu_bundle_store_mem_new(d->bundle_cfg->max_store_bytes, &store, err);
    if (rc == 0) rc = mu_bundles_start(d, store, err);
    if (rc != 0) return rc;
  }
  rc = mu_rpc_server_new(d->engine, &opts, &d->server, err);
  if (rc == 0) rc = mu_bundles_register(d, err);
  if (rc == 0) rc = mu_gateway_register(d, err);
  if (rc == 0) rc = mu_admin_register(d, err);
  if (rc == 0) rc = mu_agent_gc_register(d, err);
  if (rc == 0) rc = mu_admin_jobs_register(d, err);
  if (rc == 0) rc = mu_tokens_register(d, err);
  if (rc == 0) rc = mu_secrets_register(d, err);
  if (rc == 0) rc = mu_audit_register(d, err);
  if (rc == 0) rc = mu_schedules_register(d, err);
  if (rc == 0) rc = mu_templates_register(d, err);
  if (rc == 0) rc = mu_imagepolicy_register(d, err);
  if (rc == 0) rc = mu_queues_register(d, err);
  if (rc == 0) rc = mu_health_register(d, err);
  if (rc == 0) rc = mu_reflection_register(d, err);
  if (rc == 0) rc = listen_on(d, err);
  if (rc == 0) rc = mu_rpc_server_start(d->server, err);
  if (rc != 0) return rc;
  mu_wiring_start_scheduler(d);
  if (d->cluster->role != MU_ROLE_SINGLE) {
    /* bundles in etcd, written through the leader's fenced store; listed once the cluster
     * has loaded its state (mu_bundles_reload), before this member leads or watches */
    mu_bundle_store_etcd_config bc = {.prefix = d->cfg.etcd_prefix,
                                      .chunk_bytes = d->bundle_cfg->store_chunk_bytes,
                                      .max_bytes = d->bundle_cfg->max_store_bytes};
    rc = mu_wiring_start_cluster(d, err);
    if (rc == 0) rc = mu_bundle_store_etcd_new(d->loop, d->cluster->etcd, d->cluster->store, &bc, &store, err);
    if (rc == 0) rc = mu_bundles_start(d, store, err);
    if (rc != 0) return rc;
  }
  rc = mu_metrics_start(d, err);
  if (rc != 0) return rc;
  rc = mu_console_start(d, web, err);
  if (rc != 0) return rc;
  mu_gateway_start(d);
  mu_agent_gc_start(d);
  uv_signal_init(d->loop, &d->sigint);
  uv_signal_init(d->loop, &d->sigterm);
  d->sigint.data = d->sigterm.data = d;
  uv_signal_start(&d->sigint, on_signal, SIGINT);
  uv_signal_start(&d->sigterm, on_signal, SIGTERM);
  return 0;
}

int main(int argc, char **argv) {
  mu_daemon d;
  mu_bundles_config bundle_cfg;
  mu_err err = {0};
  memset(&d, 0, sizeof d);
  d.bundle_cfg = &bundle_cfg;
  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; i++) /* --version: release and git commit, nothing else */
    if (strcmp(argv[i], "--version") == 0) return mu_version_print(stdout, "musterd"), 0;
  mu_server_config_init(&d.cfg);
  mu_bundles_config_init(d.bundle_cfg);
  mu_console_config web;
  mu_console_config_init(&web);
  int no_etcd = 0;
  if (parse_config(argc, argv, &d.cfg, d.bundle_cfg, &web, &no_etcd, &err) != 0) {
    fprintf(stderr, "musterd: %s\n%s", err.msg, usage);
    mu_server_config_free(&d.cfg);
    mu_bundles_config_free(d.bundle_cfg);
    return 2;
  }
  mu_log_set_level(d.cfg.log_level);
  mu_log_set_format(d.cfg.log_format);
  if (mu_secrets_init(&d, &err) != 0) { /* a bad --secret-key is bad configuration */
    fprintf(stderr, "musterd: %s\n", err.msg);
    mu_secrets_close(&d);
    mu_server_config_free(&d.cfg);
    mu_bundles_config_free(d.bundle_cfg);
    return 2;
  }
  d.loop = uv_default_loop();
  d.started_at_ms = mu_now_ms();
  mu_registry_init(&d.registry, d.cfg.max_agents);
  if (mu_wiring_new(&d, no_etcd, &err) != 0) {
    fprintf(stderr, "musterd: %s\n", err.msg);
    return 1;
  }
  int status = 0;
  if (daemon_start(&d, &web, &err) != 0) {
    fprintf(stderr, "musterd: %s\n", err.msg);
    status = 1;
    mu_audit_close(&d);
    if (d.cluster->active) {
      d.stopping = 1;
      mu_sched_close(d.sched);
      mu_schedules_close(&d);
      mu_cluster_stop(&d, on_cluster_stopped);
      uv_run(d.loop, UV_RUN_DEFAULT);
    } else if (d.engine != NULL) {
      mu_rpc_engine_close(d.engine, on_engine_closed, &d);
      uv_run(d.loop, UV_RUN_DEFAULT);
    }
  } else {
    mu_info("musterd", "%s serving on %s (port %d), heartbeat timeout %lldms, %s", d.cfg.member_id, d.cfg.listen,
            d.port, (long long)d.cfg.heartbeat_timeout_ms,
            no_etcd ? "no etcd (state in memory, single member)" : "state in etcd");
    uv_run(d.loop, UV_RUN_DEFAULT);
  }
  mu_bundles_stop(&d);
  uv_run(d.loop, UV_RUN_NOWAIT); /* let close callbacks run */
  mu_bundles_free(&d);
  mu_tokens_free(&d);
  mu_secrets_close(&d);
  uv_loop_close(d.loop);
  mu_registry_free(&d.registry);
  mu_wiring_free(&d);
  if (d.reflect != NULL) mu_reflect_index_free(d.reflect);
  mu_server_config_free(&d.cfg);
  mu_bundles_config_free(d.bundle_cfg);
  return status;
}
