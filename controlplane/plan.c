/* Dry runs (`muster run --dry-run`, `muster submit --plan`): the job is admitted exactly as a
 * submit would admit it, and the answer says what it would do; nothing is stored or started,
 * so a dry run is also how an operator checks a job file against the live fleet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/daemon.h"
#include "controlplane/scheduler.h"
#include "controlplane/stages.h"
#include "lib/selector/selector.h"

/* An owned copy of text for a JobPlan string field (freed by free_unpacked). */
static int add_string(char ***items, size_t *n, const char *text) {
  char **grown = realloc(*items, (*n + 1) * sizeof *grown);
  if (grown == NULL) return -1;
  *items = grown;
  grown[*n] = strdup(text);
  if (grown[*n] == NULL) return -1;
  (*n)++;
  return 0;
}

/* An `any` target's candidates: connected, not draining, matching agents. */
static int any_candidates(mu_daemon *d, const char *any, Muster__V1__JobPlan *plan, mu_err *err) {
  mu_selector *sel = NULL;
  if (mu_selector_parse(any, &sel, err) != 0) return err->code;
  int rc = 0;
  for (size_t i = 0; i < d->registry.n && rc == 0; i++) {
    const mu_agent *a = d->registry.agents[i];
    if (a->session == NULL || a->draining || !mu_selector_matches(sel, mu_agent_label, a)) continue;
    if (add_string(&plan->targets, &plan->n_targets, a->id) != 0) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  mu_selector_free(sel);
  return rc;
}

/* A job with stages: each stage's targets as a job of its own would have them now (an `any`
 * stage: its candidates), and the whole job's targets and tasks ("STAGE/NAME (TYPE)"). */
static int plan_stages(mu_daemon *d, const Muster__V1__JobSpec *spec, const struct mu_caller *caller,
                       Muster__V1__JobPlan *plan, mu_err *err) {
  plan->stages = calloc(spec->n_stages + 1, sizeof *plan->stages);
  if (plan->stages == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t k = 0; k < spec->n_stages; k++) {
    Muster__V1__StageStatus *st = calloc(1, sizeof *st);
    if (st == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    muster__v1__stage_status__init(st);
    plan->stages[plan->n_stages++] = st;
    st->name = strdup(spec->stages[k]->name);
    st->state = strdup("pending");
    if (st->name == NULL || st->state == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    Muster__V1__JobSpec *child = mu_stages_spec(spec, k);
    if (child == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    mu_rollout ro;
    char **ids = NULL;
    size_t n = 0;
    int rc = mu_sched_admit_stage(d->sched, child, caller, spec, k, &ro, &ids, &n, err); /* takes child on error */
    if (rc != 0) return rc;
    const Muster__V1__Target *t = child->target;
    if (t != NULL && t->any[0] != '\0') {
      Muster__V1__JobPlan cand = MUSTER__V1__JOB_PLAN__INIT;
      rc = any_candidates(d, t->any, &cand, err);
      for (size_t i = 0; i < cand.n_targets; i++) {
        if (rc == 0 && add_string(&st->hosts, &st->n_hosts, cand.targets[i]) != 0)
          rc = mu_err_set(err, MU_ENOMEM, "out of memory");
        free(cand.targets[i]);
      }
      free(cand.targets);
    }
    for (size_t i = 0; rc == 0 && i < n && (t == NULL || t->any[0] == '\0'); i++)
      if (add_string(&st->hosts, &st->n_hosts, ids[i]) != 0) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < st->n_hosts; i++) {
      int seen = 0;
      for (size_t j = 0; j < plan->n_targets && !seen; j++) seen = strcmp(plan->targets[j], st->hosts[i]) == 0;
      if (!seen && add_string(&plan->targets, &plan->n_targets, st->hosts[i]) != 0)
        rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    plan->task_runs += (uint32_t)(st->n_hosts * child->n_tasks);
    for (size_t i = 0; rc == 0 && i < child->n_tasks; i++) {
      char line[300];
      snprintf(line, sizeof line, "%.64s/%.128s (%.64s)", st->name, child->tasks[i]->name, child->tasks[i]->type);
      if (add_string(&plan->tasks, &plan->n_tasks, line) != 0) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    free(ids);
    protobuf_c_message_free_unpacked(&child->base, NULL);
    if (rc != 0) return rc;
  }
  return 0;
}

int mu_sched_plan(mu_daemon *d, Muster__V1__JobSpec *spec, const struct mu_caller *caller,
                  Muster__V1__JobPlan **ret_plan, mu_err *err) {
  mu_rollout rollout;
  char **ids = NULL;
  size_t n = 0;
  int rc = mu_sched_admit(d->sched, spec, caller, &rollout, &ids, &n, err);
  if (rc != 0) return rc;
  Muster__V1__JobPlan *plan = calloc(1, sizeof *plan);
  if (plan == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  muster__v1__job_plan__init(plan);
  plan->name = strdup(spec->name[0] ? spec->name : "job");
  if (plan->name == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  if (spec->n_stages > 0) {
    rc = plan_stages(d, spec, caller, plan, err);
    if (rc != 0) goto fail;
    free(ids);
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    *ret_plan = plan;
    return 0;
  }
  plan->any = spec->target != NULL && spec->target->any[0] != '\0';
  plan->concurrency = mu_rollout_concurrency(&rollout, (uint32_t)n);
  plan->error_budget = mu_rollout_error_budget(&rollout, (uint32_t)n);
  plan->skip_unreachable = rollout.skip_unreachable;
  plan->batch = rollout.batch;
  plan->task_runs = (uint32_t)(n * spec->n_tasks);
  if (plan->any) {
    rc = any_candidates(d, spec->target->any, plan, err);
    if (rc != 0) goto fail;
  }
  for (size_t i = 0; i < n && !plan->any; i++) {
    const mu_agent *a = mu_registry_find(&d->registry, ids[i]);
    if (add_string(&plan->targets, &plan->n_targets, ids[i]) != 0 ||
        ((a == NULL || a->session == NULL) && add_string(&plan->disconnected, &plan->n_disconnected, ids[i]) != 0)) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto fail;
    }
  }
  for (size_t t = 0; t < spec->n_tasks; t++) {
    char line[300];
    snprintf(line, sizeof line, "%.128s (%.64s)", spec->tasks[t]->name, spec->tasks[t]->type);
    if (add_string(&plan->tasks, &plan->n_tasks, line) != 0) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto fail;
    }
  }
  free(ids);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  *ret_plan = plan;
  return 0;
fail:
  if (plan != NULL) protobuf_c_message_free_unpacked(&plan->base, NULL);
  free(ids);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  return rc;
}
