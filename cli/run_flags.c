/* The flags of a one-task job (run_flags.h): what `muster run` and `muster schedule create`
 * both read, checked here once. */
#include "cli/run_flags.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/nodeset.h"
#include "lib/base/clock.h"
#include "lib/base/count_or_pct.h"

void mu_run_flags_init(mu_run_flags *f) {
  memset(f, 0, sizeof *f);
  muster__v1__run_adhoc_request__init(&f->req);
  muster__v1__target__init(&f->target);
  muster__v1__rollout__init(&f->rollout);
  muster__v1__resources__init(&f->res);
  muster__v1__resource_requests__init(&f->requests);
}

void mu_run_flags_free(mu_run_flags *f) {
  mu_nodeset_names_free(f->hosts, f->n_hosts);
  f->hosts = NULL;
  f->n_hosts = 0;
}

/* A whole number in [lo, hi] into *ret, else -1 with err naming the flag and what it takes. */
static int count_arg(const char *flag, const char *arg, unsigned long lo, unsigned long hi, const char *what,
                     unsigned long *ret, mu_err *err) {
  char *end;
  unsigned long v = strtoul(arg, &end, 10);
  if (*end || end == arg || v < lo || v > hi) {
    mu_err_set(err, MU_EINVAL, "%s: expected %s, got '%s'", flag, what, arg);
    return -1;
  }
  *ret = v;
  return 0;
}

static int target_arg(mu_run_flags *f, int c, char *arg, mu_err *err) {
  switch (c) {
    case 't': f->target.selector = arg; break;
    case 1101: f->target.all = 1; break;
    case 1103: f->target.any = arg; break;
    default: /* 1102: node sets as clush takes them: web[01-05],db1 */
      mu_nodeset_names_free(f->hosts, f->n_hosts);
      f->hosts = NULL;
      f->n_hosts = 0;
      if (mu_nodeset_expand(arg, MU_NODESET_MAX_HOSTS, &f->hosts, &f->n_hosts, err) != 0) {
        mu_err_prefix(err, "--hosts");
        return -1;
      }
      f->target.hosts = f->hosts;
      f->target.n_hosts = f->n_hosts;
  }
  f->targets_given++;
  return 1;
}

static int env_arg(mu_run_flags *f, char *arg, mu_err *err) {
  char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg || f->req.n_env >= MU_RUN_FLAGS_MAX_ENV) {
    mu_err_set(err, MU_EINVAL, "--env: expected K=V, got '%s'", arg);
    return -1;
  }
  *eq = '\0';
  size_t i = f->req.n_env++;
  muster__v1__run_adhoc_request__env_entry__init(&f->env[i]);
  f->env[i].key = arg;
  f->env[i].value = eq + 1;
  f->env_ptrs[i] = &f->env[i];
  f->req.env = f->env_ptrs;
  return 1;
}

int mu_run_flags_apply(mu_run_flags *f, int c, char *arg, mu_err *err) {
  unsigned long v;
  int64_t ms;
  uint64_t bytes;
  uint32_t n, p;
  if (c != 't' && (c < 1101 || c > 1119)) return 0;
  f->given++;
  switch (c) {
    case 't':
    case 1101:
    case 1102:
    case 1103: return target_arg(f, c, arg, err);
    case 1104:
    case 1105:
      if (mu_count_or_pct_parse(arg, &n, &p, err) != 0) {
        mu_err_prefix(err, c == 1104 ? "--max-concurrency" : "--max-errors");
        return -1;
      }
      if (c == 1104) f->rollout.max_concurrency = arg;
      else f->rollout.max_errors = arg;
      return 1;
    case 1106:
      if (count_arg("--batch", arg, 1, 100000, "a positive count", &v, err) != 0) return -1;
      f->rollout.batch = (uint32_t)v;
      return 1;
    case 1107:
    case 1113:
      if (mu_duration_parse(arg, &ms, err) != 0) {
        mu_err_prefix(err, c == 1107 ? "--timeout" : "--wait");
        return -1;
      }
      if (c == 1107) f->req.timeout = arg;
      else f->rollout.disconnected_wait = arg;
      return 1;
    case 1108:
      if (count_arg("--retries", arg, 0, 100, "0..100", &v, err) != 0) return -1;
      f->req.retries = (uint32_t)v;
      return 1;
    case 1109: return env_arg(f, arg, err);
    case 1110:
      if (mu_size_parse(arg, &bytes, err) != 0) {
        mu_err_prefix(err, "--memory");
        return -1;
      }
      f->res.memory = arg;
      f->req.resources = &f->res;
      return 1;
    case 1111:
      if (count_arg("--pids", arg, 1, 1000000, "a positive count", &v, err) != 0) return -1;
      f->res.pids = (uint32_t)v;
      f->req.resources = &f->res;
      return 1;
    case 1112: f->req.run_as = arg; return 1;
    case 1114: f->req.type = arg; return 1;
    case 1115: f->req.bundle = arg; return 1;
    case 1116: f->rollout.skip_unreachable = 1; return 1;
    case 1117:
      if (count_arg("--count", arg, 1, 100000000, "a positive number", &v, err) != 0) return -1;
      f->target.count = (uint32_t)v;
      return 1;
    case 1118: f->target.strategy = arg; return 1;
    default: /* 1119 */
      if (count_arg("--request-cpu", arg, 1, 100000000, "millicores (1000 = a core)", &v, err) != 0) return -1;
      f->requests.cpu = (uint32_t)v;
      f->res.requests = &f->requests;
      f->req.resources = &f->res;
      return 1;
  }
}

int mu_run_flags_finish(mu_run_flags *f, char **command, size_t n, mu_err *err) {
  if (f->targets_given > 1) return mu_err_set(err, MU_EINVAL, "give only one of -t, --all, --hosts, --any");
  if (f->rollout.batch > 0 && f->rollout.max_concurrency[0] != '\0')
    return mu_err_set(err, MU_EINVAL, "--batch and --max-concurrency conflict");
  if (f->targets_given == 0) f->target.all = 1;
  f->req.target = &f->target;
  f->req.rollout = &f->rollout;
  f->req.command = command;
  f->req.n_command = n;
  return 0;
}
