/* `muster stats JOB [--task NAME]` and `muster stats --task NAME [--last N]`: the figures and
 * anomaly flags of finished task runs (stats.c), from GetJob with tasks — one job, or the
 * newest N jobs musterd holds that ran task NAME. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/output_json.h"
#include "cli/stats.h"

#define STATS_MAX_JOBS 500

static const char stats_usage[] =
    "usage: muster stats JOB [--task NAME]\n"
    "       muster stats --task NAME [--last N]\n"
    "\n"
    "Figures of finished task runs: per task, runs and p50 / p90 / max of duration, CPU, peak\n"
    "memory and output, and the trend of its duration; then the runs flagged against that\n"
    "task's earlier runs: SLOW and MEM_HIGH (over median + 4 MAD of at least 10 earlier runs),\n"
    "NEAR_OOM (peak within 10% of resources.memory), TRUNCATED (output dropped), SLOW_HOST\n"
    "(the host's runs are over that threshold). With --task, from musterd's run history (the\n"
    "flags it raised when each run ended; kept past job retention), else across the newest N\n"
    "jobs musterd holds (default 50, at most 500). -o json prints one line per run with its\n"
    "flags.\n";

static int fetch_job(const mu_cli_opts *opts, const char *id, ProtobufCMessage **ret, mu_err *err) {
  Muster__V1__GetJobRequest req = MUSTER__V1__GET_JOB_REQUEST__INIT;
  req.job_id = (char *)id;
  req.include_tasks = 1;
  return mu_cli_unary(opts, "/muster.v1.Admin/GetJob", &req.base, &muster__v1__job__descriptor, ret, err);
}

static void emit_json(const mu_stats_run *runs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const mu_stats_run *r = &runs[i];
    char f[64];
    mu_stats_flag_names(r->flags, f, sizeof f);
    mu_cli_json_emit(
        "taskStats",
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "jobId", r->job_id, "agentId", r->agent_id,
                  "taskName", r->task_name, "durationMs", (json_int_t)(r->finished_ms - r->started_ms), "cpuMs",
                  (json_int_t)r->cpu_ms, "peakMemoryBytes", (json_int_t)r->peak_bytes, "outputBytes",
                  (json_int_t)r->output_bytes, "memoryLimitBytes", (json_int_t)r->memory_limit, "flags", f));
  }
}

static int fetch_history(const mu_cli_opts *opts, const char *task, const char *job_id, ProtobufCMessage **ret,
                         mu_err *err) {
  Muster__V1__ListRunHistoryRequest req = MUSTER__V1__LIST_RUN_HISTORY_REQUEST__INIT;
  req.task_name = (char *)task;
  req.job_id = (char *)(job_id != NULL ? job_id : "");
  return mu_cli_unary(opts, "/muster.v1.Admin/ListRunHistory", &req.base,
                      &muster__v1__list_run_history_response__descriptor, ret, err);
}

/* The runs of the history entries or of the jobs, flagged and printed. */
static int print_runs(const mu_cli_opts *opts, Muster__V1__RunHistoryEntry *const *entries, size_t n_entries,
                      ProtobufCMessage *const *jobs, size_t n_jobs, const char *task) {
  mu_stats_run *runs = NULL;
  size_t n = 0, cap = 0;
  mu_stats_collect_history(entries, n_entries, &runs, &n, &cap);
  for (size_t i = 0; i < n_jobs; i++) mu_stats_collect((const Muster__V1__Job *)jobs[i], task, &runs, &n, &cap);
  mu_stats_flag(runs, n);
  if (opts->json) emit_json(runs, n);
  else mu_stats_print(runs, n, stdout);
  free(runs);
  return MU_EXIT_OK;
}

int mu_cmd_stats(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"task", required_argument, NULL, 'T'},
                                     {"last", required_argument, NULL, 'n'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  const char *task = NULL;
  long last = 50;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case 'T': task = optarg; break;
      case 'n': {
        char *end = NULL;
        last = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || last < 1 || last > STATS_MAX_JOBS) {
          fprintf(stderr, "muster stats: --last: a number from 1 to %d, got '%s'\n", STATS_MAX_JOBS, optarg);
          return MU_EXIT_USAGE;
        }
        break;
      }
      case 'h': fputs(stats_usage, stdout); return 0;
      default:
        fprintf(stderr, "muster stats: unknown option '%s'\n%s", argv[optind - 1], stats_usage);
        return MU_EXIT_USAGE;
    }
  }
  const char *job_id = optind < argc ? argv[optind++] : NULL;
  if (optind < argc || (job_id == NULL && task == NULL)) {
    fprintf(stderr, "muster stats: %s\n%s", optind < argc ? "unexpected argument" : "JOB or --task NAME is required",
            stats_usage);
    return MU_EXIT_USAGE;
  }
  mu_err err = {0};
  if (task != NULL) { /* musterd's run history, when it keeps one (older servers do not) */
    ProtobufCMessage *hist = NULL;
    int hrc = fetch_history(opts, task, job_id, &hist, &err);
    const Muster__V1__ListRunHistoryResponse *h = (const Muster__V1__ListRunHistoryResponse *)hist;
    if (hrc == 0 && h->n_runs > 0) {
      int out = print_runs(opts, h->runs, h->n_runs, NULL, 0, task);
      protobuf_c_message_free_unpacked(hist, NULL);
      return out;
    }
    if (hist != NULL) protobuf_c_message_free_unpacked(hist, NULL);
    memset(&err, 0, sizeof err);
  }
  ProtobufCMessage **jobs = calloc(STATS_MAX_JOBS, sizeof *jobs);
  size_t n_jobs = 0;
  ProtobufCMessage *list = NULL;
  int rc = jobs == NULL ? MU_ENOMEM : 0;
  if (rc == 0 && job_id != NULL) {
    rc = fetch_job(opts, job_id, &jobs[0], &err);
    n_jobs = rc == 0;
  } else if (rc == 0) {
    Muster__V1__ListJobsRequest lreq = MUSTER__V1__LIST_JOBS_REQUEST__INIT;
    lreq.page_size = (uint32_t)last;
    rc = mu_cli_unary(opts, "/muster.v1.Admin/ListJobs", &lreq.base, &muster__v1__list_jobs_response__descriptor, &list,
                      &err);
    const Muster__V1__ListJobsResponse *l = (const Muster__V1__ListJobsResponse *)list;
    for (size_t i = 0; rc == 0 && i < l->n_jobs && n_jobs < (size_t)last; i++) {
      const Muster__V1__JobSpec *sp = l->jobs[i]->spec;
      int has = sp == NULL; /* only jobs that have the task (when the list carries specs) */
      for (size_t t = 0; sp != NULL && t < sp->n_tasks && !has; t++) has = strcmp(sp->tasks[t]->name, task) == 0;
      if (has && fetch_job(opts, l->jobs[i]->id, &jobs[n_jobs], &err) == 0) n_jobs++;
    }
  }
  if (rc != 0) {
    fprintf(stderr, "muster stats: %s\n", err.msg[0] ? err.msg : "out of memory");
    free(jobs);
    if (list != NULL) protobuf_c_message_free_unpacked(list, NULL);
    return MU_EXIT_FAILED;
  }
  print_runs(opts, NULL, 0, jobs, n_jobs, task);
  for (size_t i = 0; i < n_jobs; i++) protobuf_c_message_free_unpacked(jobs[i], NULL);
  free(jobs);
  if (list != NULL) protobuf_c_message_free_unpacked(list, NULL);
  return MU_EXIT_OK;
}
