/* Bearer tokens: not built yet; every token is refused (see tokens.h). */
#include "controlplane/tokens.h"

int mu_tokens_authenticate(struct mu_daemon *d, const char *bearer, mu_caller *ret, mu_err *err) {
  (void)d;
  (void)bearer;
  (void)ret;
  return mu_err_set(err, MU_EPERM, "unknown token");
}
