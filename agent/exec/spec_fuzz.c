/* libFuzzer target: a task spec's JSON as the agent parses it (spec.c, the sandbox section of
 * sandbox.c) and, when it parses, the sandbox options made from it under a small policy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/exec/sandbox.h"
#include "agent/exec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  mu_task_spec *s = NULL;
  mu_err err = {0};
  if (mu_task_spec_parse(text, &s, &err) == 0) {
    static const char *const forced[] = {"shell"};
    static const char *const rw[] = {"/srv"};
    mu_sandbox_policy pol = {.force_types = forced, .n_force_types = 1, .writable = rw, .n_writable = 1};
    char **argv = NULL;
    if (mu_sandbox_args(&s->sandbox, s->type, &pol, "/var/lib/muster/spool", "/var/lib/muster/spool/work/t", &argv,
                        &err) == 0)
      for (size_t i = 0; argv != NULL && argv[i] != NULL; i++) free(argv[i]);
    free(argv);
    mu_task_spec_free(s);
  }
  free(text);
  return 0;
}
