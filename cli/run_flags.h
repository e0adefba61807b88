/* The flags that build a one-task job (a RunAdhocRequest), shared by `muster run` and
 * `muster schedule create` (whose job may be built exactly as `muster run` builds it):
 * targets, rollout, timeout, retries, env, resources, user, type and bundle. Each flag's value
 * is checked as it is read, naming the flag. */
#ifndef MU_CLI_RUN_FLAGS_H
#define MU_CLI_RUN_FLAGS_H

#include <stddef.h>

#include "lib/base/err.h"
#include "muster/v1/admin.pb-c.h"

#define MU_RUN_FLAGS_MAX_ENV 64

/* getopt_long entries (codes 't' and 1101..1120); put them in the command's table. */
#define MU_RUN_LONG_OPTIONS                                                                              \
  {"selector", required_argument, NULL, 't'}, {"all", no_argument, NULL, 1101},                          \
      {"hosts", required_argument, NULL, 1102}, {"any", required_argument, NULL, 1103},                  \
      {"max-concurrency", required_argument, NULL, 1104}, {"max-errors", required_argument, NULL, 1105}, \
      {"batch", required_argument, NULL, 1106}, {"timeout", required_argument, NULL, 1107},              \
      {"retries", required_argument, NULL, 1108}, {"env", required_argument, NULL, 1109},                \
      {"memory", required_argument, NULL, 1110}, {"pids", required_argument, NULL, 1111},                \
      {"user", required_argument, NULL, 1112}, {"wait", required_argument, NULL, 1113},                  \
      {"type", required_argument, NULL, 1114}, {"bundle", required_argument, NULL, 1115},                \
      {"skip-unreachable", no_argument, NULL, 1116}, {"count", required_argument, NULL, 1117},           \
      {"strategy", required_argument, NULL, 1118}, {                                                     \
    "request-cpu", required_argument, NULL, 1119                                                         \
  }

#define MU_RUN_USAGE                                                         \
  "[-t SELECTOR | --all | --hosts NODESET | --any SELECTOR]\n"               \
  "    [--count N] [--strategy spread|binpack] [--request-cpu MILLICORES]\n" \
  "    [--max-concurrency N|P%] [--max-errors N|P%] [--batch N]\n"           \
  "    [--timeout DUR] [--retries N] [--env K=V]... [--memory SIZE]\n"       \
  "    [--pids N] [--user NAME] [--wait DUR] [--skip-unreachable]\n"         \
  "    [--type shell|python|http] [--bundle NAME@VERSION|DIGEST]\n"

/* The request being built. req's target, rollout and resources point into this struct, and
 * its strings into argv: do not copy it, and keep argv while req is used. */
typedef struct mu_run_flags {
  Muster__V1__RunAdhocRequest req;
  Muster__V1__Target target;
  Muster__V1__Rollout rollout;
  Muster__V1__Resources res;
  Muster__V1__ResourceRequests requests;
  Muster__V1__RunAdhocRequest__EnvEntry env[MU_RUN_FLAGS_MAX_ENV];
  Muster__V1__RunAdhocRequest__EnvEntry *env_ptrs[MU_RUN_FLAGS_MAX_ENV];
  char **hosts; /* --hosts expanded (owned) */
  size_t n_hosts;
  int targets_given; /* how many of -t, --all, --hosts, --any */
  int given;         /* how many run flags in all */
} mu_run_flags;

void mu_run_flags_init(mu_run_flags *f);
/* Applies getopt code c with its argument (--env's is changed in place): 1 when c is one of
 * MU_RUN_LONG_OPTIONS, 0 when not, -1 with err naming the flag for a bad value. */
int mu_run_flags_apply(mu_run_flags *f, int c, char *arg, mu_err *err);
/* The checks across flags (one target kind; --batch without --max-concurrency), then the
 * request is complete with command[0..n) (no target given: --all). 0, or MU_EINVAL. */
int mu_run_flags_finish(mu_run_flags *f, char **command, size_t n, mu_err *err);
void mu_run_flags_free(mu_run_flags *f);

#endif
