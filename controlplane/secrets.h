/* The secret store of musterd (docs/security.md#secrets): named values kept encrypted in etcd
 * `secrets/<name>` (in memory with --no-etcd) under the key given with --secret-key (config
 * secret_key), each with a version, a scope (an agent selector: the only agents the value is
 * ever sent to) and who changed it when. Records are sealed and opened by lib/secrets/secret_box.h; writes
 * go through the leader's fenced store one at a time; followers keep the sealed records from
 * their watch and decrypt nothing. A value is decrypted only at dispatch, for the one agent
 * that runs the task, and travels only in that Assign (Assign.secrets): never in a job or task
 * record, GetJob, WatchJob, a log line or an audit line.
 *
 * The Secrets service (SetSecret, ListSecrets, DeleteSecret, RotateSecretKey) is in
 * secrets_admin.c. Without --secret-key every secret call and every job that references a
 * secret is refused with a message saying so. Everything runs on the loop thread. */
#ifndef MU_CP_SECRETS_H
#define MU_CP_SECRETS_H

#include <stddef.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"
#include "muster/v1/job.pb-c.h"

struct mu_daemon;

/* Creates d->secrets and loads the --secret-key file when one is configured. A key file that
 * is missing, of the wrong size or too open (mode wider than 0600) is an error naming it:
 * musterd does not start. */
int mu_secrets_init(struct mu_daemon *d, mu_err *err);
/* Fails the queued secret calls (musterd is stopping), wipes the keys, frees the store. */
void mu_secrets_close(struct mu_daemon *d);

/* persist.c: the record secrets/<name> as read from etcd (value, len), or deleted (value
 * NULL). A bad record is logged naming its key and skipped; one sealed under a key this member
 * does not hold is kept, with a warning naming both key ids. */
void mu_secrets_apply(struct mu_daemon *d, const char *name, const char *value, size_t len);
/* A fresh snapshot follows: forget every record. */
void mu_secrets_reset(struct mu_daemon *d);

/* At submit, after the targets are resolved (ids as mu_targets_resolve gives them, NULL for an
 * "any" target): 0 when every secret the spec's tasks reference exists and its scope covers
 * every target host; an "any" target is narrowed to the secrets' scopes. Otherwise MU_EINVAL
 * naming each unknown secret and each host outside a scope, or saying that secrets are
 * disabled on this control plane. */
int mu_secrets_check_job(struct mu_daemon *d, Muster__V1__JobSpec *spec, char *const *ids, size_t n_ids, mu_err *err);

/* At dispatch: decrypts the secrets task references for agent. On success *ret (n entries;
 * NULL when the task has none) is the caller's, released with mu_secrets_resolved_free once
 * the Assign is sent; each entry's name borrows from task. MU_ENOENT (deleted since submit),
 * MU_EPERM (agent outside the scope, or a key this member does not hold: the message names the
 * key id the record needs) or MU_EINVAL (secrets disabled), with a message for the task. */
int mu_secrets_resolve(struct mu_daemon *d, const Muster__V1__TaskSpec *task, const mu_agent *agent,
                       Muster__V1__ResolvedSecret ***ret, size_t *ret_n, mu_err *err);
/* Wipes the values and frees what mu_secrets_resolve returned (NULL is fine). */
void mu_secrets_resolved_free(Muster__V1__ResolvedSecret **r, size_t n);

/* secrets_admin.c: registers muster.v1.Secrets on d->server. */
int mu_secrets_register(struct mu_daemon *d, mu_err *err);

#endif
