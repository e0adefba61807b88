/* Job commands: run (ad hoc), submit (job file), watch, status, cancel and jobs (logs is in
 * cmd_logs.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/jobfile.h"
#include "cli/output_json.h"
#include "cli/output_text.h"
#include "cli/plan_print.h"
#include "cli/run_flags.h"
#include "cli/watch.h"
#include "lib/base/clock.h"
#include "lib/jobcounts/jobcounts.h"
#include "muster/v1/admin.pb-c.h"

static int usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg) {
  fprintf(stderr, "muster %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return 2;
}

/* jobfile: the submitted file, whose lines and columns then lead the refusal's problems. */
int mu_cli_submit_and_watch(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                            const mu_watch_opts *w, int detach, uint32_t n_tasks, const char *jobfile) {
  ProtobufCMessage *reply_msg = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, path, req, &muster__v1__submit_job_response__descriptor, &reply_msg, &err) != 0) {
    /* "ADDR: INVALID_ARGUMENT: tasks[0].timeout: ...; tasks[1]...": one line per problem */
    const char *problems = strstr(err.msg, ": INVALID_ARGUMENT: ");
    if (problems != NULL) problems += 20;
    if (jobfile != NULL && problems != NULL && mu_jobfile_path_prefix(problems) > 0) {
      fprintf(stderr, "muster submit: refused by the control plane:\n");
      mu_jobfile_explain_file(jobfile, problems, stderr);
    } else {
      fprintf(stderr, "muster: %s\n", err.msg);
    }
    return err.code == MU_EINVAL ? 2 : 1;
  }
  Muster__V1__SubmitJobResponse *r = (Muster__V1__SubmitJobResponse *)reply_msg;
  if (r->plan != NULL) { /* a dry run: nothing was started */
    if (opts->json) mu_cli_print_json(&r->plan->base);
    else mu_plan_print(r->plan, stdout);
    protobuf_c_message_free_unpacked(reply_msg, NULL);
    return 0;
  }
  char job_id[128];
  snprintf(job_id, sizeof job_id, "%s", r->job_id);
  uint32_t targets = r->targets;
  protobuf_c_message_free_unpacked(reply_msg, NULL);
  if (detach) {
    if (opts->json) {
      json_t *o = json_object();
      json_object_set_new(o, "jobId", json_string(job_id));
      json_object_set_new(o, "targets", json_integer(targets));
      return mu_cli_json_emit("submitted", o);
    }
    printf("%s\n", job_id);
    return 0;
  }
  char tn[48];
  if (!opts->json && !w->quiet) fprintf(stderr, "job %s: %s\n", job_id, mu_plural(targets, "target", tn, sizeof tn));
  return mu_watch_job(opts, w, job_id, targets, n_tasks);
}

static const char run_usage[] =
    "usage: muster run [-t SELECTOR | --all | --hosts NODESET | --any SELECTOR]\n"
    "                  [--count N] [--strategy spread|binpack] [--request-cpu MILLICORES]\n"
    "                  [--max-concurrency N|P%] [--max-errors N|P%] [--batch N]\n"
    "                  [--timeout DUR] [--retries N] [--env K=V]... [--memory SIZE]\n"
    "                  [--pids N] [--user NAME] [--wait DUR] [--skip-unreachable] [--detach]\n"
    "                  [--type shell|python|http] [--bundle NAME@VERSION|DIGEST]\n" MU_WATCH_USAGE
    "                  [--dry-run] [-o json] -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND on every matching agent now and shows each host's result and output as it\n"
    "ends, each line prefixed 'HOST: ' (--lines N: the first N lines, --tail N: the last N;\n"
    "--group: identical results together under a node set; --summary-only: the counts and the\n"
    "hosts that did not succeed). On a terminal a live panel shows progress.\n"
    "--dry-run prints the targets in rollout order, batches and error budget; nothing runs.\n"
    "--hosts takes ids, globs (* ?) and clush node sets: web[01-05],db1 (brackets are ranges).\n"
    "--skip-unreachable: targets still disconnected after --wait are skipped, not failures.\n"
    "shell (default): one argument is a command line, several are run directly (no shell).\n"
    "python: -c CODE | -m MODULE | SCRIPT, then ARGS.  http: [METHOD] URL.\n"
    "Exit code 0 only when every target succeeded. Ctrl-C asks whether to cancel or detach.\n";

int mu_cmd_run(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {MU_RUN_LONG_OPTIONS,
                                     MU_WATCH_LONG_OPTIONS,
                                     {"detach", no_argument, NULL, 'd'},
                                     {"dry-run", no_argument, NULL, 'n'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  mu_run_flags f;
  mu_run_flags_init(&f);
  mu_watch_opts w = {0};
  int detach = 0, rc = 2;
  mu_err err = {0};
  int c;
  optind = 1;
  opterr = 0;
  /* "+" stops at the first non-option: everything after belongs to the command */
  while ((c = getopt_long(argc, argv, "+t:h", lo, NULL)) != -1) {
    if (c == 'd') {
      detach = 1;
      continue;
    }
    if (c == 'n') {
      f.req.dry_run = 1;
      continue;
    }
    if (c == 'h') {
      fputs(run_usage, stdout);
      for (int i = 1; i + 1 < argc; i++) /* --type X --help: the type's parameters too */
        if (strcmp(argv[i], "--type") == 0) mu_cli_type_help(opts, argv[i + 1], stdout);
      rc = 0;
      goto out;
    }
    int used = mu_run_flags_apply(&f, c, optarg, &err);
    if (used == 0) used = mu_watch_opts_apply(&w, c, optarg, &err);
    if (used < 0) {
      rc = usage_error("run", run_usage, "%s", err.msg);
      goto out;
    }
    if (used == 0) {
      rc = usage_error("run", run_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
      goto out;
    }
  }
  if (optind < argc && strcmp(argv[optind], "--") == 0) optind++;
  if (optind >= argc) {
    rc = usage_error("run", run_usage, "%s", "no command given (put it after --)");
    goto out;
  }
  if (mu_run_flags_finish(&f, argv + optind, (size_t)(argc - optind), &err) != 0) {
    rc = usage_error("run", run_usage, "%s", err.msg);
    goto out;
  }
  w.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  rc = mu_cli_submit_and_watch(opts, "/muster.v1.Admin/RunAdhoc", &f.req.base, &w, detach, 1, NULL);
out:
  mu_run_flags_free(&f);
  return rc;
}

static const char submit_usage[] =
    "usage: muster submit FILE [--plan] [--detach] [--skip-unreachable] [-o json]\n" MU_WATCH_USAGE
    "\n"
    "Submits a job file (YAML or JSON, see docs/job-spec.md; '-' reads stdin) and follows it\n"
    "like `muster run`. --plan (or --dry-run) checks it against the live fleet and prints\n"
    "the targets in rollout order, batches and error budget; nothing is stored or started.\n"
    "--skip-unreachable sets rollout.skip_unreachable: targets still disconnected after\n"
    "rollout.disconnected_wait are skipped, not failures.\n";

int mu_cmd_submit(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"detach", no_argument, NULL, 'd'},
                                     {"plan", no_argument, NULL, 'n'},
                                     {"dry-run", no_argument, NULL, 'n'},
                                     {"skip-unreachable", no_argument, NULL, 'S'},
                                     MU_WATCH_LONG_OPTIONS,
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  mu_watch_opts w = {0};
  int detach = 0, dry_run = 0, skip_unreachable = 0, c;
  mu_err oerr = {0};
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    int used;
    if (c == 'd') detach = 1;
    else if (c == 'n') dry_run = 1;
    else if (c == 'S') skip_unreachable = 1;
    else if (c == 'h') {
      fputs(submit_usage, stdout);
      return 0;
    } else {
      used = mu_watch_opts_apply(&w, c, optarg, &oerr);
      if (used < 0) return usage_error("submit", submit_usage, "%s", oerr.msg);
      if (used == 0) return usage_error("submit", submit_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (optind != argc - 1) return usage_error("submit", submit_usage, "%s", "expected one FILE");
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_jobfile_load(argv[optind], &spec, &err) != 0) {
    fprintf(stderr, "muster submit: %s\n", err.msg);
    return 2;
  }
  if (skip_unreachable) { /* over the file's rollout.skip_unreachable */
    if (spec->rollout == NULL) {
      spec->rollout = malloc(sizeof *spec->rollout);
      if (spec->rollout != NULL) muster__v1__rollout__init(spec->rollout); /* freed with the spec */
    }
    if (spec->rollout == NULL) {
      fprintf(stderr, "muster submit: out of memory\n");
      protobuf_c_message_free_unpacked(&spec->base, NULL);
      return 1;
    }
    spec->rollout->skip_unreachable = 1;
  }
  Muster__V1__SubmitJobRequest req = MUSTER__V1__SUBMIT_JOB_REQUEST__INIT;
  req.spec = spec;
  req.dry_run = dry_run;
  w.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  int rc = mu_cli_submit_and_watch(opts, "/muster.v1.Admin/SubmitJob", &req.base, &w, detach, (uint32_t)spec->n_tasks,
                                   argv[optind]);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  return rc;
}

static Muster__V1__Job *get_job(const mu_cli_opts *opts, const char *id, int with_tasks, const char *cmd) {
  Muster__V1__GetJobRequest req = MUSTER__V1__GET_JOB_REQUEST__INIT;
  req.job_id = (char *)id;
  req.include_tasks = with_tasks;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/GetJob", &req.base, &muster__v1__job__descriptor, &reply, &err) != 0) {
    fprintf(stderr, "muster %s: %s\n", cmd, err.msg);
    return NULL;
  }
  return (Muster__V1__Job *)reply;
}

static const char watch_usage[] =
    "usage: muster watch JOB\n" MU_WATCH_USAGE
    "\nFollows a job from its start: results so far, then live (as `muster run` shows them).\n";

int mu_cmd_watch(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {MU_WATCH_LONG_OPTIONS, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  mu_watch_opts w = {0};
  mu_err err = {0};
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    int used;
    if (c == 'h') {
      fputs(watch_usage, stdout);
      return 0;
    } else {
      used = mu_watch_opts_apply(&w, c, optarg, &err);
      if (used < 0) {
        return usage_error("watch", watch_usage, "%s", err.msg);
      } else if (used == 0) {
        return usage_error("watch", watch_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
      }
    }
  }
  if (optind != argc - 1) return usage_error("watch", watch_usage, "%s", "expected one JOB");
  const char *id = argv[optind];
  Muster__V1__Job *job = get_job(opts, id, 0, "watch");
  if (job == NULL) return 1;
  uint32_t targets = job->targets;
  uint32_t n_tasks = job->spec ? (uint32_t)job->spec->n_tasks : 1;
  protobuf_c_message_free_unpacked(&job->base, NULL);
  w.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  return mu_watch_job(opts, &w, id, targets, n_tasks);
}

/* "EXIT" column: the code where there is one, "signal N", or "-". */
static const char *exit_column(const Muster__V1__TaskRun *t, char *buf, size_t size) {
  int code;
  if (mu_task_run_exit(t, &code)) snprintf(buf, size, "%d", code);
  else if (t->signal != 0) snprintf(buf, size, "sig %d", t->signal);
  else snprintf(buf, size, "-");
  return buf;
}

static const char *run_duration(const Muster__V1__TaskRun *t, char *buf, size_t size) {
  if (t->started_at_ms > 0 && t->finished_at_ms >= t->started_at_ms)
    return mu_duration_format(t->finished_at_ms - t->started_at_ms, buf, size);
  if (t->started_at_ms > 0) /* still running */
    return mu_duration_format(mu_now_ms() - t->started_at_ms, buf, size);
  snprintf(buf, size, "-");
  return buf;
}

/* The counts of a job as every command prints them (lib/jobcounts). */
static const char *job_counts_text(const Muster__V1__Job *job, char *buf, size_t size) {
  Muster__V1__JobCounts c = MUSTER__V1__JOB_COUNTS__INIT;
  if (job->counts != NULL) c = *job->counts;
  else c.targets = job->targets;
  return mu_job_counts_format(&c, buf, size);
}

static void print_runs(const Muster__V1__Job *job) {
  printf("%-32s %-10s %6s %7s %8s  %s\n", "TASK", "STATE", "EXIT", "ATTEMPT", "DURATION", "MESSAGE");
  for (size_t i = 0; i < job->n_tasks; i++) {
    const Muster__V1__TaskRun *t = job->tasks[i];
    char ex[32], dur[32];
    const ProtobufCEnumValue *sv =
        protobuf_c_enum_descriptor_get_value(&muster__v1__task_state__descriptor, (int)t->state);
    printf("%-32s %-10s %6s %7u %8s  %s", t->task_id, sv ? sv->name : "?", exit_column(t, ex, sizeof ex), t->attempt,
           run_duration(t, dur, sizeof dur), t->message);
    for (size_t k = 0; k < t->n_anomalies; k++) /* run history flags (docs/observability.md) */
      printf("%s%s%s",
             k               ? ","
             : t->message[0] ? " [flagged "
                             : "[flagged ",
             t->anomalies[k], k + 1 == t->n_anomalies ? "]" : "");
    putchar('\n');
  }
}

/* A job with stages: one line per stage (state, counts, its job), then each started stage's
 * task runs, read from the stage's own job. */
static void print_stages(const mu_cli_opts *opts, const Muster__V1__Job *job) {
  printf("%-20s %-10s %-40s %s\n", "STAGE", "STATE", "JOB", "TARGETS");
  for (size_t k = 0; k < job->n_stages; k++) {
    const Muster__V1__StageStatus *st = job->stages[k];
    char counts[256] = "-";
    if (st->job_id[0] != '\0' && st->counts != NULL) mu_job_counts_format(st->counts, counts, sizeof counts);
    printf("%-20s %-10s %-40s %s%s%s\n", st->name, st->state, st->job_id[0] ? st->job_id : "-", counts,
           st->message[0] ? "  " : "", st->message);
  }
  for (size_t k = 0; k < job->n_stages; k++) {
    const Muster__V1__StageStatus *st = job->stages[k];
    if (st->job_id[0] == '\0') continue;
    Muster__V1__Job *sj = get_job(opts, st->job_id, 1, "status");
    if (sj == NULL) continue;
    printf("\nstage %s:\n", st->name);
    print_runs(sj);
    protobuf_c_message_free_unpacked(&sj->base, NULL);
  }
}

int mu_cmd_status(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      puts(
          "usage: muster status JOB\n\nShows a job, its targets by state, and every task run: "
          "state, exit code, attempt, duration.\n-o json: one line for the job, then one per "
          "task run. -q: the job's state word only (succeeded, failed, running, ...).");
      return 0;
    }
    fprintf(stderr, "usage: muster status JOB\n");
    return 2;
  }
  Muster__V1__Job *job = get_job(opts, argv[1], 1, "status");
  if (job == NULL) return 1;
  if (opts->json) {
    /* one object per line: the job (without its runs), then each run */
    size_t n_tasks = job->n_tasks;
    Muster__V1__TaskRun **tasks = job->tasks;
    job->n_tasks = 0;
    job->tasks = NULL;
    mu_cli_json_message("job", &job->base);
    for (size_t i = 0; i < n_tasks; i++) mu_cli_json_message("task", &tasks[i]->base);
    job->n_tasks = n_tasks;
    job->tasks = tasks;
  } else if (opts->quiet) { /* the job's state alone: succeeded, failed, running, ... */
    printf("%s\n", mu_job_state_word(job->state));
  } else {
    char ago[32], counts[256];
    printf("job %s '%s': %s, %s; created %s\n", job->id, job->spec ? job->spec->name : "",
           mu_job_state_word(job->state), job_counts_text(job, counts, sizeof counts),
           mu_cli_ago(job->created_at_ms, ago, sizeof ago));
    if (job->waiting_for[0] != '\0') printf("%s\n", job->waiting_for); /* after: */
    if (job->parent_job[0] != '\0') printf("stage '%s' of job %s\n", job->stage, job->parent_job);
    if (job->n_stages > 0) print_stages(opts, job);
    else print_runs(job);
  }
  int rc = job->state == MUSTER__V1__JOB_STATE__JOB_FAILED || job->state == MUSTER__V1__JOB_STATE__JOB_CANCELLED;
  protobuf_c_message_free_unpacked(&job->base, NULL);
  return rc;
}

int mu_cmd_cancel(const mu_cli_opts *opts, int argc, char **argv) {
  int force = 0;
  if (argc >= 2 && strcmp(argv[1], "--force") == 0) {
    force = 1;
    argv[1] = argv[0];
    argc--;
    argv++;
  }
  if (argc >= 3 && strcmp(argv[argc - 1], "--force") == 0) {
    force = 1;
    argc--;
  }
  if (argc < 2 || argc > 3 || argv[1][0] == '-') {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      puts(
          "usage: muster cancel [--force] JOB [REASON]\n\nCancels what has not finished; running tasks are "
          "stopped (TERM, grace, KILL). A task type with a graceful stop does it first (a Flink task's\n"
          "on_cancel: savepoint|drain); --force skips it (a Flink job is cancelled without a savepoint),\n"
          "also for a job whose cancel is under way.");
      return 0;
    }
    fprintf(stderr, "usage: muster cancel [--force] JOB [REASON]\n");
    return 2;
  }
  Muster__V1__CancelJobRequest req = MUSTER__V1__CANCEL_JOB_REQUEST__INIT;
  req.job_id = argv[1];
  req.reason = argc == 3 ? argv[2] : force ? "cancelled with muster cancel --force" : "cancelled with muster cancel";
  req.force = force;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/CancelJob", &req.base, &muster__v1__cancel_job_response__descriptor, &reply,
                   &err) != 0) {
    fprintf(stderr, "muster cancel: %s\n", err.msg);
    return 1;
  }
  Muster__V1__CancelJobResponse *r = (Muster__V1__CancelJobResponse *)reply;
  char tn[48];
  if (opts->json) {
    json_t *o = json_object();
    json_object_set_new(o, "jobId", json_string(argv[1]));
    json_object_set_new(o, "cancelledTargets", json_integer(r->cancelled_tasks));
    mu_cli_json_emit("cancel", o);
  } else if (!opts->quiet) {
    printf("job %s: cancelling %s%s\n", argv[1], mu_plural(r->cancelled_tasks, "target", tn, sizeof tn),
           force ? " (forced: no graceful stop)" : "");
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_jobs(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__ListJobsRequest req = MUSTER__V1__LIST_JOBS_REQUEST__INIT;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      puts(
          "usage: muster jobs [--state running|succeeded|failed|cancelled] [--limit N]\n\n"
          "Lists jobs, newest first. -q prints job ids only.");
      return 0;
    } else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
      char name[64];
      snprintf(name, sizeof name, "JOB_%s", argv[++i]);
      for (char *p = name; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
      const ProtobufCEnumValue *v =
          protobuf_c_enum_descriptor_get_value_by_name(&muster__v1__job_state__descriptor, name);
      if (v == NULL) {
        fprintf(stderr, "muster jobs: --state: unknown state '%s'\n", argv[i]);
        return 2;
      }
      req.state = (Muster__V1__JobState)v->value;
    } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
      req.page_size = (uint32_t)strtoul(argv[++i], NULL, 10);
    } else {
      fprintf(stderr, "muster jobs: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/ListJobs", &req.base, &muster__v1__list_jobs_response__descriptor, &reply,
                   &err) != 0) {
    fprintf(stderr, "muster jobs: %s\n", err.msg);
    return 1;
  }
  Muster__V1__ListJobsResponse *r = (Muster__V1__ListJobsResponse *)reply;
  if (!opts->json && !opts->quiet)
    printf("%-24s %-24s %-10s %7s %7s %9s %6s %9s %11s %7s  %s\n", "ID", "NAME", "STATE", "TARGETS", "RUNNING",
           "SUCCEEDED", "FAILED", "CANCELLED", "UNREACHABLE", "SKIPPED", "CREATED");
  for (size_t i = 0; i < r->n_jobs; i++) {
    const Muster__V1__Job *j = r->jobs[i];
    char ago[32];
    Muster__V1__JobCounts c = MUSTER__V1__JOB_COUNTS__INIT;
    if (j->counts != NULL) c = *j->counts;
    if (opts->json) mu_cli_json_message("job", &j->base);
    else if (opts->quiet) /* ids only */ printf("%s\n", j->id);
    else
      printf("%-24s %-24.24s %-10s %7u %7u %9u %6u %9u %11u %7u  %s\n", j->id, j->spec ? j->spec->name : "",
             mu_job_state_word(j->state), j->targets, c.running, c.succeeded, c.failed, c.cancelled, c.unreachable,
             c.skipped, mu_cli_ago(j->created_at_ms, ago, sizeof ago));
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}
