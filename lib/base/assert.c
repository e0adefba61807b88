/* The one place MU_ASSERT (assert.h) reports and stops. It writes with a plain fprintf, not
 * mu_log: the process is about to abort and the logger's state may be what broke. */
#include "lib/base/assert.h"

#include <stdio.h>
#include <stdlib.h>

void mu_assert_fail(const char *cond, const char *file, int line, const char *func) {
  fprintf(stderr, "assertion failed: %s (%s:%d, in %s)\n", cond, file, line, func);
  fflush(stderr);
  abort();
}
