/* Audit lines for admin actions (see audit.h). */
#include "controlplane/audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/base/log.h"

void mu_audit(mu_rpc_call *call, const char *action, const char *fmt, ...) {
  char details[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(details, sizeof details, fmt, ap);
  va_end(ap);
  char *peer = call != NULL ? mu_rpc_call_peer(call) : NULL;
  mu_info("audit", "peer=%s action=%s %s", peer ? peer : "-", action, details);
  free(peer);
}
