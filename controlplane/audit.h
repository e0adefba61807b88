/* The audit trail of admin actions: one log line per mutating admin call, with the caller's
 * address, the action and its outcome, under the "audit" component (grep `audit:`), next to
 * the agents' own audit line for every task start. Until callers authenticate (mTLS, roles)
 * the caller is its peer address. */
#ifndef MU_CP_AUDIT_H
#define MU_CP_AUDIT_H

#include "lib/rpc/rpc.h"

/* Logs "audit: peer=ADDR action=ACTION <details>"; call may be NULL (peer "-"). */
void mu_audit(mu_rpc_call *call, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
