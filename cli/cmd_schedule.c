/* `muster schedule create|ls|show|pause|resume|rm|trigger` (muster.v1.Schedules, see
 * docs/scheduling.md): a job file, or a command given as `muster run` takes it, fired at the
 * times of a cron expression in a time zone. ls shows the next 3 fire times and the last
 * slot's outcome; -o json prints each schedule as one "kind":"schedule" line. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/jobfile.h"
#include "cli/run_flags.h"
#include "lib/base/clock.h"
#include "muster/v1/schedule.pb-c.h"

static const char schedule_usage[] =
    "usage: muster schedule create NAME --cron EXPR [--tz ZONE] [--jitter DUR]\n"
    "                              [--overlap skip|queue|cancel-previous]\n"
    "                              [--catch-up none|latest|all] [--catch-up-window DUR]\n"
    "                              [--paused] (FILE | --template T [KEY=VALUE...] |\n"
    "                              RUN-FLAGS -- CMD...)\n"
    "       muster schedule ls [PREFIX]\n"
    "       muster schedule show NAME\n"
    "       muster schedule pause|resume|rm|trigger NAME\n"
    "RUN-FLAGS, as `muster run` takes them:\n"
    "    " MU_RUN_USAGE
    "\n"
    "A schedule creates a job (FILE, a job spec as `muster submit` takes it, or a one-task job\n"
    "built like `muster run` builds it) at every time of a cron expression: 5 fields (minute\n"
    "hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @daily, @weekly,\n"
    "@monthly, @yearly. --tz: a zone of the tz database (default UTC); --jitter: a delay of up to\n"
    "DUR per slot; --overlap: what a slot does while the previous job still runs (default skip);\n"
    "--catch-up: which slots missed while no leader ran are fired late (default none), if not\n"
    "older than --catch-up-window (default 1h). Every slot fires exactly once, across failovers.\n"
    "trigger fires it now (paused or not). rm keeps the jobs it created. --template T: each slot\n"
    "dispatches job template T (read at that time) with the KEY=VALUE params, checked against\n"
    "the template now.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "muster schedule: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n%s", schedule_usage);
  va_end(ap);
  return 2;
}

static int call(const mu_cli_opts *opts, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply) {
  return mu_cli_unary_exit(opts, "schedule", method, req, reply_desc, ret_reply);
}

/* "2026-03-29 03:00:00Z" for an instant (UTC). */
static const char *utc(int64_t t, char *buf, size_t size) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

static const char *outcome(const Muster__V1__ScheduleSlot *s, char *buf, size_t size) {
  if (s == NULL) return "-";
  if (strcmp(s->state, "created") == 0)
    snprintf(buf, size, "%s %s", s->job_id, s->job_state[0] ? s->job_state + 4 : "");
  else if (s->reason[0] != '\0') snprintf(buf, size, "%s: %s", s->state, s->reason);
  else snprintf(buf, size, "%s %s", s->state, s->job_id);
  return buf;
}

static int schedule_create(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"cron", required_argument, NULL, 'c'},
                                     {"tz", required_argument, NULL, 'z'},
                                     {"jitter", required_argument, NULL, 'j'},
                                     {"overlap", required_argument, NULL, 'o'},
                                     {"catch-up", required_argument, NULL, 'u'},
                                     {"catch-up-window", required_argument, NULL, 'w'},
                                     {"paused", no_argument, NULL, 'p'},
                                     {"template", required_argument, NULL, 'M'},
                                     MU_RUN_LONG_OPTIONS,
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  Muster__V1__CreateScheduleRequest req = MUSTER__V1__CREATE_SCHEDULE_REQUEST__INIT;
  Muster__V1__ScheduleSpec spec = MUSTER__V1__SCHEDULE_SPEC__INIT;
  mu_run_flags run;
  mu_run_flags_init(&run);
  Muster__V1__JobSpec *job = NULL;
  int rc = 2, c;
  mu_err err = {0};
  int64_t ms;
  optind = 1;
  opterr = 0;
  /* "+": stop at the first non-option (NAME, FILE or the command after --); NAME first */
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      fputs(schedule_usage, stdout);
      return 0;
    }
    return usage_error("create: expected NAME first");
  }
  spec.name = argv[1];
  optind = 2;
  while ((c = getopt_long(argc, argv, "+t:h", lo, NULL)) != -1) {
    int used = mu_run_flags_apply(&run, c, optarg, &err);
    if (used < 0) {
      rc = usage_error("%s", err.msg);
      goto out;
    }
    if (used > 0) continue;
    switch (c) {
      case 'c': spec.cron = optarg; break;
      case 'z': spec.tz = optarg; break;
      case 'j':
      case 'w':
        if (mu_duration_parse(optarg, &ms, &err) != 0) {
          rc = usage_error("--%s: %s", c == 'j' ? "jitter" : "catch-up-window", err.msg);
          goto out;
        }
        if (c == 'j') spec.jitter = optarg;
        else spec.catch_up_window = optarg;
        break;
      case 'o': spec.overlap = optarg; break;
      case 'u': spec.catch_up = optarg; break;
      case 'p': spec.paused = 1; break;
      case 'M': spec.template_ = optarg; break;
      case 'h':
        fputs(schedule_usage, stdout);
        rc = 0;
        goto out;
      default: rc = usage_error("create: unknown or incomplete option '%s'", argv[optind - 1]); goto out;
    }
  }
  if (spec.cron[0] == '\0') {
    rc = usage_error("create: --cron is required");
    goto out;
  }
  int dashdash = optind > 0 && optind <= argc && strcmp(argv[optind - 1], "--") == 0;
  if (spec.template_[0] != '\0') { /* KEY=VALUE params of the template */
    if (dashdash || run.given > 0) {
      rc = usage_error("create: --template takes KEY=VALUE params, not a command or run flags");
      goto out;
    }
    for (int i = optind; i < argc; i++)
      if (strchr(argv[i], '=') == NULL) {
        rc = usage_error("create: expected KEY=VALUE after --template, got '%s'", argv[i]);
        goto out;
      }
    spec.template_params = &argv[optind];
    spec.n_template_params = (size_t)(argc - optind);
  } else if (dashdash || run.given > 0) { /* a command, as `muster run` takes it */
    if (optind >= argc) {
      rc = usage_error("create: expected a command after --, or a job FILE");
      goto out;
    }
    if (mu_run_flags_finish(&run, &argv[optind], (size_t)(argc - optind), &err) != 0) {
      rc = usage_error("create: %s", err.msg);
      goto out;
    }
    req.run = &run.req;
  } else {
    if (optind != argc - 1) {
      rc = usage_error("create: expected one job FILE (or -t SELECTOR -- CMD)");
      goto out;
    }
    if (mu_jobfile_load(argv[optind], &job, &err) != 0) {
      fprintf(stderr, "muster schedule: %s\n", err.msg);
      goto out;
    }
    spec.job = job;
  }
  req.spec = &spec;
  ProtobufCMessage *reply = NULL;
  rc = call(opts, "/muster.v1.Schedules/CreateSchedule", &req.base, &muster__v1__schedule__descriptor, &reply);
  if (rc != 0) goto out;
  const Muster__V1__Schedule *s = (const Muster__V1__Schedule *)reply;
  if (opts->json) {
    mu_cli_print_json(reply);
  } else {
    char when[40];
    printf("schedule %s created: %s (%s)%s", s->spec->name, s->spec->cron, s->spec->tz,
           s->spec->paused ? ", paused\n" : "");
    if (!s->spec->paused)
      printf(", next %s (%s)\n", s->n_next_fire_s ? utc(s->next_fire_s[0], when, sizeof when) : "never",
             s->next_fire_local);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
out:
  mu_run_flags_free(&run);
  if (job != NULL) protobuf_c_message_free_unpacked(&job->base, NULL);
  return rc;
}

static void print_row(const Muster__V1__Schedule *s) {
  char n[3][40], out[200];
  for (int i = 0; i < 3; i++) snprintf(n[i], sizeof n[i], "%s", i < (int)s->n_next_fire_s ? "" : "-");
  for (size_t i = 0; i < s->n_next_fire_s && i < 3; i++) utc(s->next_fire_s[i], n[i], sizeof n[i]);
  printf("%-20s %-18s %-14s %-7s %-21s %-21s %-21s %s\n", s->spec->name, s->spec->cron, s->spec->tz,
         s->spec->paused ? "paused" : "active", n[0], n[1], n[2], outcome(s->last, out, sizeof out));
}

static int schedule_ls(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(schedule_usage, stdout);
    return 0;
  }
  if (argc > 2) return usage_error("ls: unexpected argument '%s'", argv[2]);
  Muster__V1__ListSchedulesRequest req = MUSTER__V1__LIST_SCHEDULES_REQUEST__INIT;
  if (argc == 2) req.name_prefix = argv[1];
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Schedules/ListSchedules", &req.base, &muster__v1__list_schedules_response__descriptor,
                &reply);
  if (rc != 0) return rc;
  const Muster__V1__ListSchedulesResponse *r = (const Muster__V1__ListSchedulesResponse *)reply;
  if (!opts->json)
    printf("%-20s %-18s %-14s %-7s %-21s %-21s %-21s %s\n", "NAME", "CRON", "TZ", "STATE", "NEXT", "THEN", "THEN",
           "LAST");
  for (size_t i = 0; i < r->n_schedules; i++) {
    if (opts->json) mu_cli_print_json(&r->schedules[i]->base);
    else print_row(r->schedules[i]);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int schedule_show(const mu_cli_opts *opts, const char *name) {
  Muster__V1__GetScheduleRequest req = MUSTER__V1__GET_SCHEDULE_REQUEST__INIT;
  req.name = (char *)name;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Schedules/GetSchedule", &req.base, &muster__v1__schedule__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__Schedule *s = (const Muster__V1__Schedule *)reply;
  if (opts->json) {
    mu_cli_print_json(reply);
    protobuf_c_message_free_unpacked(reply, NULL);
    return 0;
  }
  const Muster__V1__ScheduleSpec *p = s->spec;
  char when[40], out[200];
  printf("name:       %s\ncron:       %s\ntz:         %s\njitter:     %s\n", p->name, p->cron, p->tz, p->jitter);
  printf("overlap:    %s\ncatch-up:   %s (window %s)\nstate:      %s\n", p->overlap, p->catch_up, p->catch_up_window,
         p->paused ? "paused" : "active");
  if (p->template_[0] != '\0') {
    printf("template:   %s", p->template_);
    for (size_t i = 0; i < p->n_template_params; i++) printf(" %s", p->template_params[i]);
    printf("\n");
  } else {
    printf("job:        %s (%zu tasks)\n", p->job ? p->job->name : "-", p->job ? p->job->n_tasks : 0);
  }
  printf("created:    %s by %s\n", mu_cli_ago(s->created_at_ms, when, sizeof when),
         s->created_by[0] ? s->created_by : "-");
  printf("next:      ");
  for (size_t i = 0; i < s->n_next_fire_s; i++) printf(" %s", utc(s->next_fire_s[i], when, sizeof when));
  printf("%s%s%s\n", s->n_next_fire_s ? " (" : " -", s->next_fire_local, s->n_next_fire_s ? " local)" : "");
  printf("slots (newest first):\n");
  for (size_t i = 0; i < s->n_recent; i++) {
    const Muster__V1__ScheduleSlot *sl = s->recent[i];
    printf("  %s%s  %s\n", utc(sl->slot_s, when, sizeof when), sl->manual ? " (trigger)" : "",
           outcome(sl, out, sizeof out));
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int schedule_named(const mu_cli_opts *opts, const char *sub, const char *name) {
  Muster__V1__ScheduleNameRequest req = MUSTER__V1__SCHEDULE_NAME_REQUEST__INIT;
  req.name = (char *)name;
  ProtobufCMessage *reply = NULL;
  int rc;
  if (strcmp(sub, "rm") == 0) {
    rc = call(opts, "/muster.v1.Schedules/DeleteSchedule", &req.base, &muster__v1__delete_schedule_response__descriptor,
              &reply);
    if (rc != 0) return rc;
    const Muster__V1__DeleteScheduleResponse *r = (const Muster__V1__DeleteScheduleResponse *)reply;
    if (opts->json) mu_cli_print_json(reply);
    else printf("schedule %s removed (%u slot records; its jobs are kept)\n", r->name, r->slots_deleted);
  } else if (strcmp(sub, "trigger") == 0) {
    rc = call(opts, "/muster.v1.Schedules/TriggerSchedule", &req.base,
              &muster__v1__trigger_schedule_response__descriptor, &reply);
    if (rc != 0) return rc;
    const Muster__V1__TriggerScheduleResponse *r = (const Muster__V1__TriggerScheduleResponse *)reply;
    if (opts->json) mu_cli_print_json(reply);
    else printf("%s\n", r->job_id); /* JOB=$(muster schedule trigger NAME) */
  } else {
    int pause = strcmp(sub, "pause") == 0;
    rc = call(opts, pause ? "/muster.v1.Schedules/PauseSchedule" : "/muster.v1.Schedules/ResumeSchedule", &req.base,
              &muster__v1__schedule__descriptor, &reply);
    if (rc != 0) return rc;
    const Muster__V1__Schedule *s = (const Muster__V1__Schedule *)reply;
    char when[40];
    if (opts->json) mu_cli_print_json(reply);
    else if (pause) printf("schedule %s paused\n", s->spec->name);
    else
      printf("schedule %s resumed: next %s\n", s->spec->name,
             s->n_next_fire_s ? utc(s->next_fire_s[0], when, sizeof when) : "never");
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_schedule(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(schedule_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "create") == 0) return schedule_create(opts, argc - 1, argv + 1);
  if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) return schedule_ls(opts, argc - 1, argv + 1);
  if (strcmp(sub, "show") == 0 || strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 || strcmp(sub, "rm") == 0 ||
      strcmp(sub, "trigger") == 0) {
    if (argc != 3 || argv[2][0] == '-') {
      if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(schedule_usage, stdout);
        return 0;
      }
      return usage_error("%s: expected one NAME", sub);
    }
    return strcmp(sub, "show") == 0 ? schedule_show(opts, argv[2]) : schedule_named(opts, sub, argv[2]);
  }
  return usage_error("unknown subcommand '%s'", sub);
}
