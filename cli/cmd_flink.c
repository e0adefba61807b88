/* Flink commands (docs/task-flink.md): `muster savepoints [TASK]` lists the savepoint
 * catalogue; `muster flink savepoint TASK|JOB/TASK` triggers a savepoint of the running job
 * without stopping it; `muster flink upgrade TASK|JOB/TASK --bundle REF` submits the next
 * version of a running streaming task with upgrade_mode and upgrade_from set (the plugin then
 * stops or cancels the old version and starts the new one from its state). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/output_json.h"
#include "muster/v1/admin.pb-c.h"

/* ---- muster savepoints ---- */

int mu_cmd_savepoints(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    int help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    fprintf(help ? stdout : stderr,
            "usage: muster savepoints [TASK]\n\nThe savepoint catalogue: every completed savepoint of the task "
            "name TASK (or of all), newest first: when, kind (stop, drain, trigger, upgrade), location, the Flink "
            "JobID and the task run.\n");
    return help ? 0 : 2;
  }
  Muster__V1__ListSavepointsRequest req = MUSTER__V1__LIST_SAVEPOINTS_REQUEST__INIT;
  req.task_name = argc == 2 ? argv[1] : "";
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/ListSavepoints", &req.base,
                   &muster__v1__list_savepoints_response__descriptor, &reply, &err) != 0) {
    fprintf(stderr, "muster savepoints: %s\n", err.msg);
    return 1;
  }
  Muster__V1__ListSavepointsResponse *r = (Muster__V1__ListSavepointsResponse *)reply;
  if (opts->json) {
    for (size_t i = 0; i < r->n_savepoints; i++) mu_cli_print_json(&r->savepoints[i]->base);
  } else if (r->n_savepoints == 0) {
    if (!opts->quiet) printf("no savepoints recorded%s%s\n", argc == 2 ? " for task " : "", argc == 2 ? argv[1] : "");
  } else {
    printf("%-20s %-20s %-8s %-34s %s\n", "TASK", "TIME (UTC)", "KIND", "FLINK JOB", "LOCATION");
    for (size_t i = 0; i < r->n_savepoints; i++) {
      const Muster__V1__Savepoint *s = r->savepoints[i];
      time_t t = (time_t)(s->at_ms / 1000);
      struct tm tm;
      char when[32];
      gmtime_r(&t, &tm);
      strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
      printf("%-20s %-20s %-8s %-34s %s\n", s->task_name, when, s->kind, s->flink_job_id[0] ? s->flink_job_id : "-",
             s->location);
    }
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

/* ---- muster flink ---- */

/* "JOB/TASK" or "TASK" into job ("" when none) and task. */
static void split_ref(const char *ref, char *job, size_t job_size, char *task, size_t task_size) {
  const char *slash = strrchr(ref, '/');
  if (slash == NULL) {
    snprintf(job, job_size, "%s", "");
    snprintf(task, task_size, "%s", ref);
  } else {
    snprintf(job, job_size, "%.*s", (int)(slash - ref), ref);
    snprintf(task, task_size, "%s", slash + 1);
  }
}

static int flink_savepoint(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: muster flink savepoint TASK|JOB/TASK\n");
    return 2;
  }
  char job[256], task[256];
  split_ref(argv[1], job, sizeof job, task, sizeof task);
  Muster__V1__TaskActionRequest req = MUSTER__V1__TASK_ACTION_REQUEST__INIT;
  req.job_id = job;
  req.task_name = task;
  req.action = "savepoint";
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/TaskAction", &req.base, &muster__v1__task_action_response__descriptor,
                   &reply, &err) != 0) {
    fprintf(stderr, "muster flink savepoint: %s\n", err.msg);
    return err.code == MU_EINVAL || err.code == MU_ENOENT ? 2 : 1;
  }
  Muster__V1__TaskActionResponse *r = (Muster__V1__TaskActionResponse *)reply;
  if (opts->json) {
    mu_cli_print_json(reply);
  } else {
    for (size_t i = 0; i < r->n_task_ids; i++) printf("savepoint triggered: %s (job %s)\n", r->task_ids[i], r->job_id);
    if (!opts->quiet) printf("the task's output says when it completes; `muster savepoints %s` lists it then\n", task);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static const char *param_of(const Muster__V1__TaskRun *run, const char *key) {
  for (size_t i = 0; i < run->n_output_params; i++)
    if (strcmp(run->output_params[i]->key, key) == 0) return run->output_params[i]->value;
  return NULL;
}

/* The newest job (named, or any running one) with a RUNNING run of task; *ret_job and its
 * run. */
static int find_running(const mu_cli_opts *opts, const char *job_id, const char *task, Muster__V1__Job **ret_job,
                        const Muster__V1__TaskRun **ret_run, mu_err *err) {
  char **ids = NULL;
  size_t n_ids = 0;
  ProtobufCMessage *list = NULL;
  if (job_id[0] == '\0') {
    Muster__V1__ListJobsRequest lr = MUSTER__V1__LIST_JOBS_REQUEST__INIT;
    lr.state = MUSTER__V1__JOB_STATE__JOB_RUNNING;
    lr.page_size = 200;
    if (mu_cli_unary(opts, "/muster.v1.Admin/ListJobs", &lr.base, &muster__v1__list_jobs_response__descriptor, &list,
                     err) != 0)
      return err->code;
    Muster__V1__ListJobsResponse *l = (Muster__V1__ListJobsResponse *)list;
    ids = calloc(l->n_jobs + 1, sizeof *ids);
    for (size_t i = 0; ids != NULL && i < l->n_jobs; i++) ids[n_ids++] = l->jobs[i]->id;
  } else {
    ids = calloc(1, sizeof *ids);
    if (ids != NULL) ids[n_ids++] = (char *)job_id;
  }
  int rc = ids == NULL ? mu_err_set(err, MU_ENOMEM, "out of memory") : 0;
  for (size_t i = 0; rc == 0 && i < n_ids && *ret_job == NULL; i++) {
    Muster__V1__GetJobRequest gr = MUSTER__V1__GET_JOB_REQUEST__INIT;
    gr.job_id = ids[i];
    gr.include_tasks = 1;
    ProtobufCMessage *got = NULL;
    rc = mu_cli_unary(opts, "/muster.v1.Admin/GetJob", &gr.base, &muster__v1__job__descriptor, &got, err);
    if (rc != 0) break;
    Muster__V1__Job *j = (Muster__V1__Job *)got;
    for (size_t t = 0; t < j->n_tasks; t++)
      if (strcmp(j->tasks[t]->task_name, task) == 0 && j->tasks[t]->state == MUSTER__V1__TASK_STATE__RUNNING) {
        *ret_job = j;
        *ret_run = j->tasks[t];
        break;
      }
    if (*ret_job == NULL) protobuf_c_message_free_unpacked(got, NULL);
  }
  free(ids);
  if (list != NULL) protobuf_c_message_free_unpacked(list, NULL);
  if (rc == 0 && *ret_job == NULL)
    rc = mu_err_set(err, MU_ENOENT, "no RUNNING task named '%s'%s%s", task, job_id[0] ? " in job " : "", job_id);
  return rc;
}

static int flink_upgrade(const mu_cli_opts *opts, int argc, char **argv) {
  const char *ref = NULL, *bundle = NULL, *mode = "savepoint";
  int force = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bundle") == 0 && i + 1 < argc) bundle = argv[++i];
    else if (strcmp(argv[i], "--upgrade-mode") == 0 && i + 1 < argc) mode = argv[++i];
    else if (strcmp(argv[i], "--force") == 0) force = 1;
    else if (argv[i][0] != '-' && ref == NULL) ref = argv[i];
    else {
      fprintf(stderr, "muster flink upgrade: unexpected argument '%s'\n", argv[i]);
      ref = NULL;
      break;
    }
  }
  if (ref == NULL || bundle == NULL) {
    fprintf(stderr,
            "usage: muster flink upgrade TASK|JOB/TASK --bundle NAME@VERSION "
            "[--upgrade-mode stateless|savepoint|last-state] [--force]\n");
    return 2;
  }
  if (strcmp(mode, "stateless") != 0 && strcmp(mode, "savepoint") != 0 && strcmp(mode, "last-state") != 0) {
    fprintf(stderr, "muster flink upgrade: --upgrade-mode: \"%s\" is not one of stateless, savepoint, last-state\n",
            mode);
    return 2;
  }
  char job[256], task[256];
  split_ref(ref, job, sizeof job, task, sizeof task);
  Muster__V1__Job *old = NULL;
  const Muster__V1__TaskRun *run = NULL;
  mu_err err = {0};
  if (find_running(opts, job, task, &old, &run, &err) != 0) {
    fprintf(stderr, "muster flink upgrade: %s\n", err.msg);
    return err.code == MU_ENOENT ? 2 : 1;
  }
  Muster__V1__TaskSpec *ts = NULL;
  for (size_t i = 0; old->spec != NULL && i < old->spec->n_tasks; i++)
    if (strcmp(old->spec->tasks[i]->name, task) == 0) ts = old->spec->tasks[i];
  const char *flink_job = param_of(run, "job_id");
  int rc = 0;
  if (ts == NULL || ts->kind_case != MUSTER__V1__TASK_SPEC__KIND_FLINK || ts->flink == NULL) {
    fprintf(stderr, "muster flink upgrade: task '%s' of job %s is not a flink task\n", task, old->id);
    rc = 2;
  } else if (flink_job == NULL) {
    fprintf(stderr, "muster flink upgrade: task %s has not recorded its Flink JobID (output param job_id) yet\n",
            run->task_id);
    rc = 1;
  }
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&old->base, NULL);
    return rc;
  }
  /* The next version: the same job with only this task, its bundle replaced, upgrading the
   * running JobID. The unpacked message's own strings are put back before it is freed. */
  Muster__V1__FlinkTask *f = ts->flink;
  char *saved_bundle = ts->bundle, *saved_mode = f->upgrade_mode, *saved_from = f->upgrade_from;
  char *saved_sp = f->savepoint_path, *saved_jid = f->job_id;
  protobuf_c_boolean saved_force = f->force_upgrade;
  size_t saved_n = old->spec->n_tasks;
  Muster__V1__TaskSpec **saved_tasks = old->spec->tasks;
  Muster__V1__TaskSpec *only[1] = {ts};
  ts->bundle = (char *)bundle;
  f->upgrade_mode = (char *)mode;
  f->upgrade_from = (char *)flink_job;
  f->force_upgrade = force || f->force_upgrade;
  f->savepoint_path = ""; /* restored from what the upgrade keeps */
  f->job_id = "";         /* a pinned JobID is the old version's: Flink refuses it twice */
  old->spec->tasks = only;
  old->spec->n_tasks = 1;
  Muster__V1__SubmitJobRequest req = MUSTER__V1__SUBMIT_JOB_REQUEST__INIT;
  req.spec = old->spec;
  ProtobufCMessage *reply = NULL;
  rc = mu_cli_unary(opts, "/muster.v1.Admin/SubmitJob", &req.base, &muster__v1__submit_job_response__descriptor, &reply,
                    &err);
  ts->bundle = saved_bundle;
  f->upgrade_mode = saved_mode;
  f->upgrade_from = saved_from;
  f->force_upgrade = saved_force;
  f->savepoint_path = saved_sp;
  f->job_id = saved_jid;
  old->spec->tasks = saved_tasks;
  old->spec->n_tasks = saved_n;
  if (rc != 0) {
    fprintf(stderr, "muster flink upgrade: %s\n", err.msg);
    protobuf_c_message_free_unpacked(&old->base, NULL);
    return err.code == MU_EINVAL ? 2 : 1;
  }
  Muster__V1__SubmitJobResponse *r = (Muster__V1__SubmitJobResponse *)reply;
  if (opts->json) {
    json_t *o = json_object();
    json_object_set_new(o, "jobId", json_string(r->job_id));
    json_object_set_new(o, "upgradedJob", json_string(old->id));
    json_object_set_new(o, "upgradeFrom", json_string(flink_job));
    json_object_set_new(o, "upgradeMode", json_string(mode));
    mu_cli_json_emit("flinkUpgrade", o);
  } else {
    printf("job %s: upgrading task %s (Flink job %s, %s) to %s\n", r->job_id, task, flink_job, mode, bundle);
    if (!opts->quiet)
      printf("follow it with `muster watch %s`; the old version's job %s ends when it stops\n", r->job_id, old->id);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  protobuf_c_message_free_unpacked(&old->base, NULL);
  return 0;
}

int mu_cmd_flink(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "savepoint") == 0) return flink_savepoint(opts, argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "upgrade") == 0) return flink_upgrade(opts, argc - 1, argv + 1);
  int help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
  fprintf(
      help ? stdout : stderr,
      "usage: muster flink savepoint TASK|JOB/TASK\n"
      "       muster flink upgrade TASK|JOB/TASK --bundle NAME@VERSION [--upgrade-mode stateless|savepoint|last-state] "
      "[--force]\n\n"
      "savepoint: a savepoint of the running Flink job without stopping it (recorded in `muster savepoints`).\n"
      "upgrade: submits the next version of a running streaming task (default mode savepoint: stop with a "
      "savepoint, start from it; last-state: from the latest checkpoint, refused past max_checkpoint_age unless "
      "--force; stateless: cancel, start empty).\n");
  return help ? 0 : 2;
}
