/* Text for a dry run's plan (see plan_print.h). */
#include "cli/plan_print.h"

#include <inttypes.h>

static const char *plural(size_t n, const char *one, const char *many) { return n == 1 ? one : many; }

/* Hosts [from, to) as "a, b, c" with at most MU_PLAN_HOSTS_SHOWN names. */
static void host_list(char *const *hosts, size_t from, size_t to, FILE *out) {
  for (size_t i = from; i < to; i++) {
    if (i - from == MU_PLAN_HOSTS_SHOWN) {
      fprintf(out, " ... and %zu more", to - i);
      break;
    }
    fprintf(out, "%s%s", i > from ? ", " : "", hosts[i]);
  }
}

/* A job with stages: one line per stage with its hosts, in the order they run. */
static void print_stages(const Muster__V1__JobPlan *plan, FILE *out) {
  fprintf(out,
          "plan for job '%s': %zu %s, %zu %s on %zu %s (%" PRIu32
          " task %s); each stage starts when the one before ended; nothing was started\n",
          plan->name, plan->n_stages, plural(plan->n_stages, "stage", "stages"), plan->n_tasks,
          plural(plan->n_tasks, "task", "tasks"), plan->n_targets, plural(plan->n_targets, "target", "targets"),
          plan->task_runs, plural(plan->task_runs, "run", "runs"));
  for (size_t k = 0; k < plan->n_stages; k++) {
    const Muster__V1__StageStatus *st = plan->stages[k];
    fprintf(out, "  stage %s: %zu %s: ", st->name, st->n_hosts, plural(st->n_hosts, "host", "hosts"));
    host_list(st->hosts, 0, st->n_hosts, out);
    fprintf(out, "\n");
  }
  fprintf(out, "tasks: ");
  for (size_t t = 0; t < plan->n_tasks; t++) fprintf(out, "%s%s", t ? ", " : "", plan->tasks[t]);
  fprintf(out, "\n");
}

void mu_plan_print(const Muster__V1__JobPlan *plan, FILE *out) {
  if (plan->n_stages > 0) {
    print_stages(plan, out);
    return;
  }
  size_t n = plan->n_targets;
  size_t tasks = plan->n_tasks;
  if (plan->any)
    fprintf(out,
            "plan for job '%s': %zu %s on one agent picked at dispatch from %zu connected "
            "%s; nothing was started\n",
            plan->name, tasks, plural(tasks, "task", "tasks"), n, plural(n, "candidate", "candidates"));
  else
    fprintf(out,
            "plan for job '%s': %zu %s on %zu %s (%" PRIu32
            " task %s); nothing was "
            "started\n",
            plan->name, tasks, plural(tasks, "task", "tasks"), n, plural(n, "target", "targets"), plan->task_runs,
            plural(plan->task_runs, "run", "runs"));
  fprintf(out, "tasks: ");
  for (size_t t = 0; t < tasks; t++) fprintf(out, "%s%s", t ? ", " : "", plan->tasks[t]);
  fprintf(out, "\n");
  if (plan->any) {
    fprintf(out, "candidates: ");
    host_list(plan->targets, 0, n, out);
    fprintf(out, "\n");
    return;
  }
  fprintf(out, "rollout: ");
  if (plan->concurrency >= n) fprintf(out, "all at once");
  else fprintf(out, "%" PRIu32 " %s at a time", plan->concurrency, plural(plan->concurrency, "host", "hosts"));
  if (plan->error_budget < 0) fprintf(out, ", no error limit");
  else if (plan->error_budget == 0) fprintf(out, ", the first failed host cancels the rest");
  else
    fprintf(out, ", %" PRId64 " failed %s tolerated (one more cancels the rest)", plan->error_budget,
            plural((size_t)plan->error_budget, "host", "hosts"));
  fprintf(out, "\n");
  if (plan->batch > 0) {
    size_t batches = (n + plan->batch - 1) / plan->batch;
    for (size_t b = 0; b < batches; b++) {
      size_t from = b * plan->batch, to = from + plan->batch < n ? from + plan->batch : n;
      fprintf(out, "  batch %zu: ", b + 1);
      host_list(plan->targets, from, to, out);
      fprintf(out, "\n");
    }
  } else {
    fprintf(out, "order: ");
    host_list(plan->targets, 0, n, out);
    fprintf(out, "\n");
  }
  if (plan->n_disconnected > 0) {
    fprintf(out, "disconnected now: ");
    host_list(plan->disconnected, 0, plan->n_disconnected, out);
    fprintf(out, " (%s unless %s within rollout.disconnected_wait)\n",
            plan->skip_unreachable ? "skipped" : "unreachable",
            plural(plan->n_disconnected, "it reconnects", "they reconnect"));
  }
}
