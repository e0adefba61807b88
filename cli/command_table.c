/* The command and global option tables (command_table.h) and the usage text built from them. */
#include "cli/command_table.h"

#include <string.h>

#include "cli/bundle_local.h"
#include "cli/commands.h"

const mu_cli_command mu_cli_commands[] = {
    {"run", "run a command on many agents now: muster run -t SELECTOR -- CMD", NULL, mu_cmd_run, NULL},
    {"submit", "submit a job file (YAML or JSON) and follow it", NULL, mu_cmd_submit, NULL},
    {"watch", "follow a job: results so far, then live", NULL, mu_cmd_watch, NULL},
    {"status", "show a job and its task runs", NULL, mu_cmd_status, NULL},
    {"logs", "print a job's task output (-f follows)", NULL, mu_cmd_logs, NULL},
    {"cp", "copy files to many hosts through a signed bundle, or --from-hosts back", NULL, mu_cmd_cp, NULL},
    {"explain", "say why a job's task runs failed, were cancelled or still wait", NULL, mu_cmd_explain, NULL},
    {"stats", "figures and anomaly flags (SLOW, NEAR_OOM, ...) of a task's finished runs", NULL, mu_cmd_stats, NULL},
    {"doctor", "check the control plane and agents: each OK, WARN or FAIL with a fix", NULL, mu_cmd_doctor, NULL},
    {"cancel", "cancel a job", NULL, mu_cmd_cancel, NULL},
    {"hold", "hold a job: HELD, no new hosts start until released", NULL, mu_cmd_hold, NULL},
    {"release", "release a job held with muster hold", NULL, mu_cmd_release, NULL},
    {"jobs", "list jobs", NULL, mu_cmd_jobs, NULL},
    {"savepoints", "list the savepoint catalogue: completed savepoints per task name", NULL, mu_cmd_savepoints, NULL},
    {"flink", "Flink tasks: trigger a savepoint, upgrade a running job (flink --help)", "savepoint upgrade",
     mu_cmd_flink, NULL},
    {"agents", "list agents: id, state, labels, last seen, load, tasks; rm forgets one", "rm", mu_cmd_agents, NULL},
    {"image", "build, sign, verify and scan container images (image --help)", "build sign verify scan feed",
     mu_cmd_image, NULL},
    {"policy", "the cluster's image admission policy: set, show, test a reference (policy --help)", "set show test",
     mu_cmd_policy, NULL},
    {"images", "container images per agent: digest, tags, size, in use; prune", NULL, mu_cmd_images, NULL},
    {"drain", "drain an agent (no new tasks start there) or --undrain it", NULL, mu_cmd_drain, NULL},
    {"cluster", "show the control plane: leader, members, etcd, agent counts", NULL, mu_cmd_cluster, NULL},
    {"dev", "run a local etcd, control plane and agents in the foreground (Ctrl-C stops all)", NULL, mu_cmd_dev, NULL},
    {"audit", "list the audit trail: who did what, when, and how it ended", NULL, mu_cmd_audit, NULL},
    {"keygen", "write an Ed25519 key pair for signing bundles", NULL, NULL, mu_cli_keygen},
    {"bundle", "pack, sign, verify, push, list or remove task bundles (bundle --help)", "pack sign verify push ls rm",
     mu_cmd_bundle, NULL},
    {"plugin", "plugin bundles: pack, push, ls, rm, deploy to the fleet, rollback (plugin --help)",
     "pack push ls rm deploy rollback", mu_cmd_plugin, NULL},
    {"pki", "make a CA, issue and revoke certificates, show one (pki --help)", "init issue crl show", mu_cmd_pki, NULL},
    {"job", "job templates: job template create|ls|show|rm (job --help)", "template", mu_cmd_job, NULL},
    {"dispatch", "create a job from a template: dispatch NAME key=value ...", NULL, mu_cmd_dispatch, NULL},
    {"queue", "named queues: weights and running limits (queue --help)", "set ls rm", mu_cmd_queue, NULL},
    {"schedule", "run a job at cron times, each slot exactly once (schedule --help)",
     "create ls show pause resume rm trigger", mu_cmd_schedule, NULL},
    {"token", "create, list or revoke bearer tokens for admin callers (token --help)", "create ls revoke", mu_cmd_token,
     NULL},
    {"secret", "set, list, remove secrets or rotate their key (secret --help)", "set ls rm rotate-key keygen",
     mu_cmd_secret, NULL},
    {"config", "list the contexts of the CLI config file and pick one (config --help)",
     "get-contexts current-context use-context path", mu_cmd_config, NULL},
    {"completion", "print a shell completion script: muster completion bash|zsh", "bash zsh", mu_cmd_completion, NULL},
};
const size_t mu_cli_n_commands = sizeof mu_cli_commands / sizeof mu_cli_commands[0];

const mu_cli_flag mu_cli_global_flags[] = {
    {"--addr", NULL, "HOST:PORT", "control plane address, or a comma list (default 127.0.0.1:7400)"},
    {"--context", NULL, "NAME", "use this context of the CLI config file"},
    {"--ca", NULL, "FILE", "CA certificate: talk mTLS (none: plaintext)"},
    {"--cert", NULL, "FILE", "client certificate"},
    {"--key", NULL, "FILE", "client key"},
    {"--token", NULL, "TOKEN", "bearer token sent with every call"},
    {"--output", "-o", "json|table", "json: one JSON object per line instead of tables"},
    {"--timeout", NULL, "DUR", "per-call deadline (default 10s)"},
    {"--quiet", "-q", NULL, "print results and errors only: no progress, notes or hints"},
    {"--verbose", "-v", NULL, "show gRPC's own log of connection and TLS failures"},
    {"--version", NULL, NULL, "print the version and git commit, and exit"},
    {"--help", "-h", NULL, "print this help, and exit"},
};
const size_t mu_cli_n_global_flags = sizeof mu_cli_global_flags / sizeof mu_cli_global_flags[0];

const mu_cli_command *mu_cli_command_find(const char *name) {
  for (size_t i = 0; i < mu_cli_n_commands; i++)
    if (strcmp(mu_cli_commands[i].name, name) == 0) return &mu_cli_commands[i];
  return NULL;
}

void mu_cli_usage(FILE *out) {
  fputs(
      "usage: muster [--context NAME] [--addr HOST:PORT] [--ca F --cert F --key F]\n"
      "              [--token TOKEN] [-o json] [--timeout DUR] [-q] [-v] COMMAND [ARGS...]\n"
      "       muster --version\n"
      "\n"
      "Global options (before the command; a flag wins over the environment, which wins over\n"
      "the context):\n",
      out);
  for (size_t i = 0; i < mu_cli_n_global_flags; i++) {
    const mu_cli_flag *f = &mu_cli_global_flags[i];
    char left[64];
    snprintf(left, sizeof left, "%s%s%s%s%s", f->short_name ? f->short_name : "", f->short_name ? ", " : "", f->name,
             f->arg ? " " : "", f->arg ? f->arg : "");
    fprintf(out, "  %-24s %s\n", left, f->help);
  }
  fputs(
      "\nEnvironment: MUSTER_ADDR, MUSTER_CA, MUSTER_CERT, MUSTER_KEY, MUSTER_TOKEN,\n"
      "MUSTER_CONTEXT, MUSTER_CONFIG (the CLI config file, default\n"
      "~/.config/muster/config.yaml), NO_COLOR.\n"
      "\nCommands:\n",
      out);
  for (size_t i = 0; i < mu_cli_n_commands; i++)
    fprintf(out, "  %-11s %s\n", mu_cli_commands[i].name, mu_cli_commands[i].summary);
  fputs(
      "\nExit codes: 0 ok, 1 a task run or the command failed, 2 bad usage or input,\n"
      "3 some targets unreachable, 4 cancelled.\n"
      "\nRun 'muster COMMAND --help' for a command's options.\n",
      out);
}
