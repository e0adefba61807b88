/* Fuzzes the Musterfile parser. Input: "BUILD_ARG\nMUSTERFILE". Properties: an accepted file
 * starts with FROM (after ARGs), every step has a line within the file and its arguments;
 * COPY/ADD sources never climb out of the context; a refusal always says why. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "plugins/container/musterfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[2];
  size_t lens[2];
  if (mu_fuzz_split(data, size, "\n", parts, lens, 2) != 0) return 0;
  const char *args[] = {parts[0], NULL};
  mu_musterfile mf;
  mu_err err = {0};
  mu_mf_limits lim = {.max_steps = 200};
  if (mu_musterfile_parse(parts[1], lens[1], strchr(parts[0], '=') ? args : NULL, &lim, &mf, &err) == 0) {
    MU_FUZZ_CHECK(mf.n_steps > 0 && mf.n_steps <= 200);
    bool from = false;
    int lines = 1;
    for (size_t i = 0; i < lens[1]; i++) lines += parts[1][i] == '\n';
    for (size_t i = 0; i < mf.n_steps; i++) {
      const mu_mf_step *st = &mf.steps[i];
      MU_FUZZ_CHECK(st->line >= 1 && st->line <= lines && st->text != NULL);
      MU_FUZZ_CHECK(from || st->kind == MU_MF_FROM || st->kind == MU_MF_ARG);
      from |= st->kind == MU_MF_FROM;
      if (st->kind == MU_MF_COPY || st->kind == MU_MF_ADD) {
        MU_FUZZ_CHECK(st->n_args >= 2);
        for (size_t k = 0; k + 1 < st->n_args; k++)
          MU_FUZZ_CHECK(st->args[k][0] != '/' && strncmp(st->args[k], "../", 3) != 0 && strcmp(st->args[k], "..") != 0);
      }
      if (st->kind == MU_MF_RUN || st->kind == MU_MF_CMD || st->kind == MU_MF_ENTRYPOINT)
        MU_FUZZ_CHECK(st->n_args >= 1 && st->args[st->n_args] == NULL);
    }
    MU_FUZZ_CHECK(from);
    mu_musterfile_free(&mf);
  } else {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  mu_fuzz_split_free(parts, 2);
  return 0;
}
