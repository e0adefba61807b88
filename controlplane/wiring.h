/* How musterd's modules are put together (wiring.c): created, given their hooks, and
 * subscribed to the events (events.h) in the order that matters. main.c's only view of it. */
#ifndef MU_CP_WIRING_H
#define MU_CP_WIRING_H

#include "controlplane/daemon.h"
#include "lib/base/err.h"

/* Creates the modules (SINGLE role when no_etcd) and subscribes their listeners. */
int mu_wiring_new(mu_daemon *d, int no_etcd, mu_err *err);
void mu_wiring_free(mu_daemon *d);
/* Starts the scheduler on d->loop with its hooks wired to the other modules. */
void mu_wiring_start_scheduler(mu_daemon *d);
/* etcd mode: persist and presence timers, then the cluster (mu_cluster_start). */
int mu_wiring_start_cluster(mu_daemon *d, mu_err *err);

#endif
