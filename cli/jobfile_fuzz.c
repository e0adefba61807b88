/* Fuzzes job files as `muster submit FILE` reads them (mu_jobfile_parse: YAML, or JSON when
 * the text starts with '{'), then follows a spec that loads the way it travels: packed by the
 * CLI, unpacked by the control plane, validated by mu_jobspec_validate (pure: the daemon's
 * target resolution is not part of it). A refusal must say why; an accepted spec must pack and
 * unpack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/jobfile.h"
#include "controlplane/jobspec.h"
#include "lib/fuzz/fuzz_util.h"

static int type_known(void *ud, const char *type) {
  (void)ud;
  return strcmp(type, "sleep") == 0; /* a plugin type some agent reported */
}

static int bundle_resolve(void *ud, const char *ref, char *msg, size_t msg_size) {
  (void)ud;
  if (strchr(ref, '@') != NULL || strncmp(ref, "sha256:", 7) == 0) return 0;
  snprintf(msg, msg_size, "bundle '%s' not found", ref);
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  int rc = mu_jobfile_parse("job.yaml", (const char *)data, size, &spec, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc < 0 && err.code == rc && err.msg[0] != '\0' && spec == NULL);
    return 0;
  }
  size_t len = protobuf_c_message_get_packed_size(&spec->base);
  uint8_t *wire = malloc(len ? len : 1);
  MU_FUZZ_CHECK(wire != NULL);
  MU_FUZZ_CHECK(protobuf_c_message_pack(&spec->base, wire) == len);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  Muster__V1__JobSpec *got = muster__v1__job_spec__unpack(NULL, len, wire);
  free(wire);
  MU_FUZZ_CHECK(got != NULL);

  mu_jobspec_limits limits = {.max_tasks = 64,
                              .max_task_runs = 200000,
                              .type_known = type_known,
                              .bundle_resolve = bundle_resolve};
  mu_rollout rollout;
  rc = mu_jobspec_validate(got, &limits, &rollout, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc == MU_EINVAL && err.msg[0] != '\0');
  } else {
    MU_FUZZ_CHECK(got->n_tasks >= 1 && got->n_tasks <= limits.max_tasks);
    for (size_t i = 0; i < got->n_tasks; i++)
      MU_FUZZ_CHECK(got->tasks[i]->name[0] != '\0' && got->tasks[i]->type[0] != '\0');
    MU_FUZZ_CHECK(mu_rollout_concurrency(&rollout, 7) >= 1);
  }
  protobuf_c_message_free_unpacked(&got->base, NULL);
  return 0;
}
