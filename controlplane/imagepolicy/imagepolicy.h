/* The cluster's image admission policy on every member (docs/images.md#admission-policy): one
 * record, imagepolicy/cluster (store.proto ImagePolicyRecord), replaced by SetImagePolicy
 * through the fenced store the schedules use and read back by every member from the cluster's
 * record events, so it survives a restart and a failover. muster.v1.ImagePolicies: set
 * (checked by lib/imagepolicy first: a bad document changes nothing), get, test (a dry run of
 * image facts). The policy is pushed to every connected agent when it changes, and to each
 * agent when its stream comes up (before any assignment). Loop thread only. */
#ifndef MU_CP_IMAGEPOLICY_H
#define MU_CP_IMAGEPOLICY_H

#include "controlplane/registry.h"
#include "lib/base/err.h"

struct mu_daemon;

int mu_imagepolicy_init(struct mu_daemon *d, mu_err *err);
void mu_imagepolicy_free(struct mu_daemon *d);

/* Cluster events (events.h): a fresh snapshot follows; one record (value NULL: deleted). */
void mu_imagepolicy_on_snapshot_begin(struct mu_daemon *d);
void mu_imagepolicy_on_record(struct mu_daemon *d, const char *rel_key, const char *value, size_t len);
/* Agent event: its stream is up; it is sent the policy (an empty one when there is none) once
 * the state is loaded. */
void mu_imagepolicy_on_agent_up(struct mu_daemon *d, mu_agent *a);
/* Cluster event: this member leads with its state loaded; every connected agent is sent it. */
void mu_imagepolicy_on_takeover(struct mu_daemon *d);

/* muster.v1.ImagePolicies. */
int mu_imagepolicy_register(struct mu_daemon *d, mu_err *err);

#endif
