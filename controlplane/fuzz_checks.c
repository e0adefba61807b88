/* The checks the control plane's fuzz targets share (fuzz_checks.h). */
#include "controlplane/fuzz_checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/jobspec.h"
#include "controlplane/jobspec_refs.h"
#include "controlplane/resources.h"
#include "controlplane/stages.h"
#include "lib/bundle/bundle.h"
#include "lib/fuzz/fuzz_util.h"
#include "lib/pbjson/pbjson.h"

static int type_known(void *ud, const char *type) {
  (void)ud;
  return strcmp(type, "sleep") == 0; /* a plugin type some agent reported */
}

static int bundle_resolve(void *ud, const char *ref, char *msg, size_t msg_size) {
  (void)ud;
  if (strcmp(ref, "etl@2.3.0") == 0 || mu_bundle_digest_check(ref, NULL) == 0) return 0;
  snprintf(msg, msg_size, "bundle '%s' not found", ref);
  return MU_ENOENT;
}

void mu_fuzz_storable(const ProtobufCMessage *msg) {
  json_t *j = NULL;
  mu_err err = {0};
  int rc = mu_pbjson_to_json(msg, 0, &j, &err);
  if (rc != 0) fprintf(stderr, "accepted but not storable: %s\n", err.msg);
  MU_FUZZ_CHECK(rc == 0);
  json_decref(j);
}

/* Every ${stages.*} value is "v". */
static int value_v(void *ud, const mu_stage_ref *ref, char **ret_value, char *why, size_t why_size) {
  (void)ud, (void)why, (void)why_size;
  MU_FUZZ_CHECK(ref->kind != MU_STAGE_REF_OUTPUT || (ref->host_len > 0 && ref->key_len > 0));
  *ret_value = strdup("v");
  return *ret_value == NULL ? -1 : 0;
}

/* A job with stages that passed: no tasks or target of its own, and each stage's job spec,
 * with its ${stages.*} values put in, is a valid job of its own. */
static void staged_submit(const Muster__V1__JobSpec *spec, const mu_jobspec_limits *limits) {
  MU_FUZZ_CHECK(spec->n_tasks == 0 && spec->target == NULL && spec->n_stages <= MU_STAGES_MAX);
  for (size_t k = 0; k < spec->n_stages; k++) {
    Muster__V1__JobSpec *child = mu_stages_spec(spec, k);
    if (child == NULL) continue;
    mu_err err = {0};
    mu_rollout ro;
    MU_FUZZ_CHECK(mu_stages_substitute(child, spec, k, value_v, NULL, &err) == 0);
    if (mu_jobspec_validate(child, limits, &ro, &err) != 0) fprintf(stderr, "stage %zu: %s\n", k, err.msg);
    MU_FUZZ_CHECK(err.code == 0);
    protobuf_c_message_free_unpacked(&child->base, NULL);
  }
  mu_fuzz_storable(&spec->base);
}

void mu_fuzz_jobspec_submit(Muster__V1__JobSpec *spec) {
  MU_FUZZ_CHECK(spec != NULL);
  mu_jobspec_limits limits = {
      .max_tasks = 64, .max_task_runs = 200000, .type_known = type_known, .bundle_resolve = bundle_resolve};
  mu_rollout rollout;
  mu_err err = {0};
  if (spec->n_stages > 0 && mu_jobspec_validate(spec, &limits, &rollout, &err) == 0) {
    staged_submit(spec, &limits);
  } else if (spec->n_stages > 0) {
    MU_FUZZ_CHECK(err.code == MU_EINVAL && err.msg[0] != '\0');
  } else if (mu_jobspec_validate(spec, &limits, &rollout, &err) == 0) {
    MU_FUZZ_CHECK(spec->n_tasks >= 1 && spec->n_tasks <= 64 && spec->target != NULL);
    for (size_t i = 0; i < spec->n_tasks; i++)
      MU_FUZZ_CHECK(spec->tasks[i]->name[0] != '\0' && spec->tasks[i]->type[0] != '\0');
    MU_FUZZ_CHECK(mu_rollout_concurrency(&rollout, 7) >= 1);
    mu_res need; /* resources.requests: what placement reserves (resources.h) */
    mu_err rerr = {0};
    if (mu_res_request(spec, &need, &rerr) == 0)
      MU_FUZZ_CHECK(need.slots >= 1 && need.cpu >= 0 && need.mem >= 0 && need.n_dev <= MU_RES_MAX_DEVICES);
    else MU_FUZZ_CHECK(rerr.code == MU_EINVAL && rerr.msg[0] != '\0');
    MU_FUZZ_CHECK(mu_res_strategy_parse(spec->target->strategy) >= -1);
    mu_fuzz_storable(&spec->base);
  } else {
    MU_FUZZ_CHECK(err.code == MU_EINVAL && err.msg[0] != '\0');
  }
  protobuf_c_message_free_unpacked(&spec->base, NULL);
}
