/* The CLI's subcommands. Each takes (argc, argv) with argv[0] the subcommand name and the
 * global options already parsed, prints to stdout (errors to stderr) and returns the exit
 * code, one of cli/exit_codes.h. */
#ifndef MU_CLI_COMMANDS_H
#define MU_CLI_COMMANDS_H

#include "cli/client.h"
#include "muster/v1/admin.pb-c.h"

int mu_cmd_agents(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_images(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_cluster(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_drain(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_dev(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_run(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_submit(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_watch(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_status(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_logs(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_cancel(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_hold(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_queue(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_release(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_jobs(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_doctor.c: checks of the control plane and the agents. */
int mu_cmd_doctor(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_stats.c: figures and anomaly flags of finished task runs. */
int mu_cmd_stats(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_image.c routes `muster image SUB`; each SUB lives in its own file. */
int mu_cmd_image(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_image_build.c */
int mu_cmd_image_build(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_image_sign.c */
int mu_cmd_image_sign(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_image_verify(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_image_scan.c */
int mu_cmd_image_scan(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_image_feed(const mu_cli_opts *opts, int argc, char **argv);
/* The muster-scan helper's path into out (0, or -1 when /proc/self/exe cannot be read). */
int mu_cli_scan_helper_path(char *out, size_t cap);
/* cmd_policy.c: the cluster's image admission policy. */
int mu_cmd_policy(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_flink.c: the savepoint catalogue, flink savepoint / upgrade. */
int mu_cmd_savepoints(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_flink(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_explain.c: why task runs failed or wait. */
int mu_cmd_explain(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_audit.c: the audit trail. */
int mu_cmd_audit(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_bundle_remote.c: bundle push / ls / rm against the control plane. */
int mu_cmd_bundle_push(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_bundle_ls(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_bundle_rm(const mu_cli_opts *opts, int argc, char **argv);
/* Uploads bundle bytes (and the .sig text, NULL when unsigned) with a progress bar on a
 * terminal when progress is set; label names it there. On success *ret_info is the caller's
 * (protobuf_c_message_free_unpacked). *ret_status is the exit code the command should give:
 * 0, 2 for a refusal (invalid, denied, too large), 1 otherwise. */
int mu_cli_bundle_upload(const mu_cli_opts *opts, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len,
                         const char *label, int progress, Muster__V1__BundleInfo **ret_info, int *ret_status,
                         mu_err *err);
/* cmd_plugin.c routes `muster plugin SUB`: pack/push/ls/rm (cmd_plugin_pkg.c), deploy and
 * rollback (cmd_plugin_deploy.c). */
int mu_cmd_plugin(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_plugin_pack(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_plugin_push(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_plugin_ls(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_plugin_rm(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_plugin_deploy(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_plugin_rollback(const mu_cli_opts *opts, int argc, char **argv);
/* TYPE@VERSION into type and version (cmd_plugin_pkg.c); 0, or -1 when malformed. */
int mu_cli_plugin_ref(const char *ref, char *type, size_t type_size, char *version, size_t version_size);
/* cmd_cp.c: muster cp (to hosts through a signed bundle; --from-hosts back through logs). */
int mu_cmd_cp(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_pki.c: pki init / issue / crl / show (local: no server; -o json from opts). */
int mu_cmd_pki(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_token.c: token create / ls / revoke. */
int mu_cmd_token(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_jobs.c: calls path (SubmitJob, RunAdhoc, Dispatch: a SubmitJobResponse) and follows
 * the job as `muster run` does, or prints its id when detach. */
struct mu_watch_opts;
int mu_cli_submit_and_watch(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                            const struct mu_watch_opts *w, int detach, uint32_t n_tasks, const char *jobfile);

/* cmd_template.c: job template create / ls / show / rm, and dispatch. */
int mu_cmd_job(const mu_cli_opts *opts, int argc, char **argv);
int mu_cmd_dispatch(const mu_cli_opts *opts, int argc, char **argv);

/* cmd_schedule.c: schedule create / ls / show / pause / resume / rm / trigger. */
int mu_cmd_schedule(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_secret.c: secret set / ls / rm / rotate-key / keygen. */
int mu_cmd_secret(const mu_cli_opts *opts, int argc, char **argv);

/* cmd_bundle.c: bundle pack / sign / verify (local) and push / ls / rm (remote). */
int mu_cmd_bundle(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_config.c: the CLI config file's contexts (local). */
int mu_cmd_config(const mu_cli_opts *opts, int argc, char **argv);
/* cmd_completion.c: bash and zsh completion scripts from the command table (local). */
int mu_cmd_completion(const mu_cli_opts *opts, int argc, char **argv);

/* Shared by commands: prints msg as one JSON line in the CLI's shape (output_json.h: every
 * field, numbers as numbers, "schema" and "kind"). */
int mu_cli_print_json(const ProtobufCMessage *msg);
/* "3s ago", "5m ago", "-" for 0; into buf. */
const char *mu_cli_ago(int64_t then_ms, char *buf, size_t size);

#endif
