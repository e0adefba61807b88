/* Fuzzes job files as `muster submit FILE` reads them (mu_jobfile_parse: YAML, or JSON when
 * the text starts with '{'), then follows a spec that loads the way it travels: packed by the
 * CLI, unpacked by the control plane, validated by mu_jobspec_validate (pure: the daemon's
 * target resolution is not part of it). A refusal must say why; an accepted spec must pack and
 * unpack. Field paths are looked up in the text as a refusal's FILE:LINE:COL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/jobfile.h"
#include "controlplane/fuzz_checks.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  int rc = mu_jobfile_parse("job.yaml", (const char *)data, size, &spec, &err);
  /* the positions `muster submit` prints for a refusal's field paths */
  static const char *const paths[] = {"tasks[0].shell.script", "tasks[1].env.A.B", "target", "tasks[0]"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    unsigned line = 0, col = 0;
    if (mu_jobfile_locate((const char *)data, size, paths[i], strlen(paths[i]), &line, &col) == 0)
      MU_FUZZ_CHECK(line >= 1 && col >= 1);
  }
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

  mu_fuzz_jobspec_submit(got);
  return 0;
}
