/* Fuzzes dispatch args and template text as users give them: the first line is the text, the
 * others key=value args against params a (required), b (default "B"). A refusal says why; an
 * accepted replacement leaves no ${param.a} or ${param.b} outside "$${" escapes... unless a
 * value brought one in, which is kept as given (one pass). */
#include <stdlib.h>
#include <string.h>

#include "controlplane/templates/params.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  MU_FUZZ_CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = '\0';
  const char *args[8];
  size_t n_args = 0;
  char *save = NULL, *line = strtok_r(text, "\n", &save);
  const char *body = line ? line : "";
  for (line = strtok_r(NULL, "\n", &save); line != NULL && n_args < 8; line = strtok_r(NULL, "\n", &save))
    args[n_args++] = line;
  const mu_template_param decls[] = {{.name = "a", .required = 1}, {.name = "b", .default_value = "B"}};
  mu_template_values v;
  mu_err err = {0};
  int rc = mu_template_values_resolve(decls, 2, args, n_args, &v, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(err.msg[0] != '\0' && v.n == 0);
  } else {
    MU_FUZZ_CHECK(v.n == 2);
    char *out = NULL;
    rc = mu_template_subst_text(body, &v, &out, &err);
    MU_FUZZ_CHECK(rc == 0 || (rc == MU_EINVAL && err.msg[0] != '\0' && out == NULL));
    if (rc == 0 && out == NULL)
      MU_FUZZ_CHECK(strstr(body, "${param.a}") == NULL || strstr(body, "$${param.a}") != NULL);
    free(out);
    mu_template_values_free(&v);
  }
  free(text);
  return 0;
}
