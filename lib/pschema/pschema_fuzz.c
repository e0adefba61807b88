/* Fuzzes plugin schemas and the values checked against them (pschema.h): both come from
 * outside (an agent's Hello, an operator's file). Input: schema, a NUL byte, the value. A
 * refusal always says why; help text is always NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/pschema/pschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 2);
  if (buf == NULL) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  buf[size + 1] = '\0';
  const char *schema = buf;
  const char *value = buf + strlen(buf) + 1;
  if (value > buf + size) value = buf + size;
  mu_err err = {0};
  int rc = mu_pschema_check(schema, "params", value, "t", &err);
  MU_FUZZ_CHECK(rc == 0 || (rc == MU_EINVAL && err.msg[0] != '\0'));
  rc = mu_pschema_check(schema, "config", value, "t", &err);
  MU_FUZZ_CHECK(rc == 0 || (rc == MU_EINVAL && err.msg[0] != '\0'));
  char *help = NULL;
  if (mu_pschema_help(schema, "params", &help, &err) == 0) {
    MU_FUZZ_CHECK(help != NULL);
    (void)strlen(help);
    free(help);
  }
  free(buf);
  return 0;
}
