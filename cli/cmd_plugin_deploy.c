/* `muster plugin deploy TYPE@VERSION` and `muster plugin rollback TYPE`: one job of the
 * agent-internal task type muster-plugin-install (agent/plugin_deploy.h) on the targets, so
 * the job rollout controls apply as to any job (--max-concurrency, --max-errors, --batch) and
 * `muster watch/status/explain` follow it. deploy names the stored bundle plugin-TYPE@VERSION;
 * rollback has no bundle: each agent goes back to the version it ran before. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/nodeset.h"
#include "cli/watch.h"
#include "lib/plugpkg/plugin_yaml.h"

static const char deploy_usage[] =
    "usage: muster plugin deploy TYPE@VERSION [-t SELECTOR | --all | --hosts NODESET]\n"
    "                            [--max-concurrency N|P%] [--max-errors N|P%] [--batch N]\n"
    "                            [--allow-downgrade] [--timeout DUR] [--detach]\n"
    "       muster plugin rollback TYPE [-t SELECTOR | --all | --hosts NODESET] [same rollout flags]\n" MU_WATCH_USAGE
    "\n"
    "deploy: every target downloads the stored bundle plugin-TYPE@VERSION, verifies its\n"
    "signature, checks ABI, os/arch and requirements, and loads it without a restart: tasks\n"
    "running on the old version finish on it, new ones start on the new one. A target whose\n"
    "check or load fails keeps its old version and counts as an error (--max-errors stops the\n"
    "rollout). A version lower than the one a target runs is refused unless --allow-downgrade.\n"
    "rollback: every target goes back to the version it ran before the last deploy.\n";

typedef struct deploy_args {
  Muster__V1__Target target;
  Muster__V1__Rollout rollout;
  char **hosts;
  size_t n_hosts;
  const char *timeout;
  int allow_downgrade, detach;
  mu_watch_opts w;
  const char *ref;
} deploy_args;

static int usage(const char *cmd, const char *fmt, const char *arg) {
  fprintf(stderr, "muster plugin %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", deploy_usage);
  return 2;
}

static int parse(const char *cmd, int argc, char **argv, deploy_args *a) {
  static const struct option lo[] = {{"all", no_argument, NULL, 'a'},
                                     {"hosts", required_argument, NULL, 'H'},
                                     {"max-concurrency", required_argument, NULL, 'c'},
                                     {"max-errors", required_argument, NULL, 'e'},
                                     {"batch", required_argument, NULL, 'b'},
                                     {"allow-downgrade", no_argument, NULL, 'D'},
                                     {"timeout", required_argument, NULL, 'T'},
                                     {"detach", no_argument, NULL, 'd'},
                                     {"help", no_argument, NULL, 'h'},
                                     MU_WATCH_LONG_OPTIONS,
                                     {NULL, 0, NULL, 0}};
  int c, targets = 0;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "t:h", lo, NULL)) != -1) {
    mu_err err = {0};
    int w = mu_watch_opts_apply(&a->w, c, optarg, &err);
    if (w < 0) return usage(cmd, "%s", err.msg);
    if (w > 0) continue;
    switch (c) {
      case 't':
        a->target.selector = optarg;
        targets++;
        break;
      case 'a':
        a->target.all = 1;
        targets++;
        break;
      case 'H':
        mu_nodeset_names_free(a->hosts, a->n_hosts);
        a->hosts = NULL;
        a->n_hosts = 0;
        if (mu_nodeset_expand(optarg, MU_NODESET_MAX_HOSTS, &a->hosts, &a->n_hosts, &err) != 0)
          return usage(cmd, "--hosts: %s", err.msg);
        a->target.hosts = a->hosts;
        a->target.n_hosts = a->n_hosts;
        targets++;
        break;
      case 'c': a->rollout.max_concurrency = optarg; break;
      case 'e': a->rollout.max_errors = optarg; break;
      case 'b': a->rollout.batch = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'D': a->allow_downgrade = 1; break;
      case 'T': a->timeout = optarg; break;
      case 'd': a->detach = 1; break;
      case 'h': fputs(deploy_usage, stdout); return 0;
      default: return usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (targets > 1) return usage(cmd, "%s", "give only one of -t, --all, --hosts");
  if (targets == 0) a->target.all = 1;
  if (optind != argc - 1) return usage(cmd, "%s", "expected one plugin (deploy TYPE@VERSION, rollback TYPE)");
  a->ref = argv[optind];
  return -1;
}

static int submit(const mu_cli_opts *opts, deploy_args *a, const char *type, const char *version, int rollback) {
  json_t *cfg = json_pack("{s:s}", "type", type);
  if (cfg == NULL) return 1;
  if (rollback) json_object_set_new(cfg, "rollback", json_true());
  else json_object_set_new(cfg, "version", json_string(version));
  if (a->allow_downgrade) json_object_set_new(cfg, "allowDowngrade", json_true());
  char *cfg_text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(cfg);
  char name[200], bundle[200];
  if (rollback) snprintf(name, sizeof name, "plugin-rollback-%s", type);
  else snprintf(name, sizeof name, "plugin-deploy-%s-%s", type, version);
  snprintf(bundle, sizeof bundle, "plugin-%s@%s", type, version);
  Muster__V1__PluginTask pt = MUSTER__V1__PLUGIN_TASK__INIT;
  pt.type = MU_PLUGIN_INSTALL_TYPE;
  pt.config_json = cfg_text;
  Muster__V1__TaskSpec ts = MUSTER__V1__TASK_SPEC__INIT;
  ts.name = rollback ? "rollback" : "install";
  ts.type = MU_PLUGIN_INSTALL_TYPE;
  ts.timeout = (char *)(a->timeout ? a->timeout : "5m");
  if (!rollback) ts.bundle = bundle;
  ts.kind_case = MUSTER__V1__TASK_SPEC__KIND_PLUGIN;
  ts.plugin = &pt;
  Muster__V1__TaskSpec *tasks[] = {&ts};
  Muster__V1__JobSpec spec = MUSTER__V1__JOB_SPEC__INIT;
  spec.name = name;
  spec.target = &a->target;
  spec.rollout = &a->rollout;
  spec.tasks = tasks;
  spec.n_tasks = 1;
  Muster__V1__SubmitJobRequest req = MUSTER__V1__SUBMIT_JOB_REQUEST__INIT;
  req.spec = &spec;
  a->w.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  int rc = mu_cli_submit_and_watch(opts, "/muster.v1.Admin/SubmitJob", &req.base, &a->w, a->detach, 1, NULL);
  free(cfg_text);
  return rc;
}

static int run(const mu_cli_opts *opts, int argc, char **argv, int rollback) {
  const char *cmd = rollback ? "rollback" : "deploy";
  deploy_args a;
  memset(&a, 0, sizeof a);
  muster__v1__target__init(&a.target);
  muster__v1__rollout__init(&a.rollout);
  a.w.quiet = opts->quiet;
  int rc = parse(cmd, argc, argv, &a);
  if (rc < 0) {
    char type[80], version[80] = "";
    if (rollback && (strchr(a.ref, '@') != NULL || strlen(a.ref) >= sizeof type)) {
      rc = usage(cmd, "expected a plugin TYPE, got '%s'", a.ref);
    } else if (!rollback && mu_cli_plugin_ref(a.ref, type, sizeof type, version, sizeof version) != 0) {
      rc = usage(cmd, "expected TYPE@VERSION (e.g. sleep-echo@2.0.0), got '%s'", a.ref);
    } else {
      if (rollback) snprintf(type, sizeof type, "%s", a.ref);
      rc = submit(opts, &a, type, version, rollback);
    }
  }
  mu_nodeset_names_free(a.hosts, a.n_hosts);
  return rc;
}

int mu_cmd_plugin_deploy(const mu_cli_opts *opts, int argc, char **argv) { return run(opts, argc, argv, 0); }

int mu_cmd_plugin_rollback(const mu_cli_opts *opts, int argc, char **argv) { return run(opts, argc, argv, 1); }
