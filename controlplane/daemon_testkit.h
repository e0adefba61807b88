/* Test support: a musterd daemon (its modules wired as main wires them) on an ha_testenv loop,
 * standing as a member of a real etcd election, for module tests against a real etcd
 * (persist_test, presence_test). */
#ifndef MU_CP_DAEMON_TESTKIT_H
#define MU_CP_DAEMON_TESTKIT_H

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/ha/ha_testenv.h"

/* Fills d (zeroed first) with prefix, the member's client, election and term, in role with
 * its state loaded; presence and persist initialised (a granted presence lease kicks a flush,
 * as wiring.c has it), the scheduler started. Fails the test on error. */
void mu_tk_daemon_start(mu_daemon *d, ha_env *e, ha_member *m, const char *prefix, mu_role role);
/* Closes what the start opened (the store through the loop) and frees d's modules. Agents'
 * session pointers are cleared first: tests stand something else in for a stream. */
void mu_tk_daemon_stop(mu_daemon *d, ha_env *e);

#endif
