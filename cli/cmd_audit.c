/* muster audit: the audit trail (muster.v1.Audit/ListAudit), newest first — when, who, what,
 * on what, and how it ended; filters by age, caller and action. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "lib/base/clock.h"
#include "muster/v1/audit.pb-c.h"

static const char audit_usage[] =
    "usage: muster audit [--since DUR] [--who NAME] [--action ACTION] [--limit N] [-o json]\n"
    "\n"
    "Lists audit records, newest first: admin actions, authorization denials and task starts,\n"
    "each with its caller, target and outcome. Needs the admin role.\n"
    "  --since DUR      only records from the last DUR (\"1h\", \"30m\", \"7d\")\n"
    "  --who NAME       callers whose name, token id or address contains NAME\n"
    "  --action ACTION  one action (job.cancel), or a family with a trailing dot (job.)\n"
    "  --limit N        at most N records (default 100, at most 10000)\n";

/* "anonymous", "token:ci-bot", "agent:web-1". */
static void who_of(const Muster__V1__AuditCaller *c, char *buf, size_t size) {
  if (c == NULL) {
    snprintf(buf, size, "-");
  } else if (c->name[0] == '\0' || strcmp(c->name, c->kind) == 0) {
    snprintf(buf, size, "%s", c->kind);
  } else {
    snprintf(buf, size, "%s:%s", c->kind, c->name);
  }
}

static void print_table(const Muster__V1__ListAuditResponse *r, int header) {
  if (header) printf("%-19s  %-24s  %-20s  %-32s  %s\n", "TIME", "WHO", "ACTION", "TARGET", "OUTCOME");
  for (size_t i = 0; i < r->n_records; i++) {
    const Muster__V1__AuditRecord *a = r->records[i];
    char when[32] = "-", who[200];
    time_t t = (time_t)(a->time_ms / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm) != NULL) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    who_of(a->caller, who, sizeof who);
    printf("%-19s  %-24s  %-20s  %-32s  %s\n", when, who, a->action, a->target[0] ? a->target : "-", a->outcome);
  }
}

/* The value of --NAME VALUE or --NAME=VALUE at argv[*i] (advancing *i), or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] == '\0' && *i + 1 < argc) return argv[++*i];
  return NULL;
}

int mu_cmd_audit(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__ListAuditRequest req = MUSTER__V1__LIST_AUDIT_REQUEST__INIT;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(audit_usage, stdout);
      return 0;
    }
    v = flag_value(argc, argv, &i, "--since");
    if (v != NULL) {
      int64_t ms = 0;
      mu_err err = {0};
      if (mu_duration_parse(v, &ms, &err) != 0) {
        fprintf(stderr, "muster audit: --since: %s\n%s", err.msg, audit_usage);
        return 2;
      }
      req.since = (char *)v;
      continue;
    }
    v = flag_value(argc, argv, &i, "--who");
    if (v != NULL) {
      req.who = (char *)v;
      continue;
    }
    v = flag_value(argc, argv, &i, "--action");
    if (v != NULL) {
      req.action = (char *)v;
      continue;
    }
    v = flag_value(argc, argv, &i, "--limit");
    if (v != NULL) {
      char *end = NULL;
      long n = strtol(v, &end, 10);
      if (end == v || *end != '\0' || n < 1 || n > 10000) {
        fprintf(stderr, "muster audit: --limit: expected 1..10000, got '%s'\n%s", v, audit_usage);
        return 2;
      }
      req.limit = (uint32_t)n;
      continue;
    }
    fprintf(stderr, "muster audit: unexpected argument '%s'\n%s", argv[i], audit_usage);
    return 2;
  }
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Audit/ListAudit", &req.base, &muster__v1__list_audit_response__descriptor, &reply,
                   &err) != 0) {
    fprintf(stderr, "muster audit: %s\n", err.msg);
    return err.code == MU_EINVAL ? 2 : 1;
  }
  const Muster__V1__ListAuditResponse *r = (const Muster__V1__ListAuditResponse *)reply;
  if (opts->json) {
    for (size_t i = 0; i < r->n_records; i++) mu_cli_print_json(&r->records[i]->base);
  } else {
    print_table(r, !opts->quiet); /* -q: the rows alone, no hint */
  }
  if (r->truncated && !opts->json && !opts->quiet)
    fprintf(stderr, "(more records match: narrow with --since, --who or --action, or raise --limit)\n");
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}
