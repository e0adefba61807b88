/* The secret store's state, shared by secrets.c (records, keys, submit and dispatch) and
 * secrets_admin.c (the Secrets service). Not part of the API: everything else uses secrets.h. */
#ifndef MU_CP_SECRETS_INT_H
#define MU_CP_SECRETS_INT_H

#include "lib/secrets/secret_box.h"
#include "controlplane/secrets.h"
#include "lib/config/config_field.h"

#define MU_SECRETS_MAX 10000  /* records */
#define MU_SECRETS_MAX_KEYS 4 /* the current key and older ones still named by records */

typedef struct mu_secret_op mu_secret_op; /* a queued write (secrets_admin.c) */

typedef struct mu_secrets {
  int enabled;                    /* a key was given */
  char key_path[MU_CFG_PATH_MAX]; /* where the current key came from (re-read on a mismatch) */
  mu_secret_key *keys;            /* sodium_malloc'd: [0] current, then older ones */
  size_t n_keys;
  mu_secret_record **recs; /* sorted by name */
  size_t n, cap;
  char warned_key_id[MU_SECRET_KEY_ID_SIZE]; /* last missing key id warned about */
  mu_secret_op *ops_head, *ops_tail;         /* writes run one at a time, in order */
  size_t n_ops;
  int op_running;
} mu_secrets;

/* The record called name, or NULL. */
mu_secret_record *mu_secrets_find(const mu_secrets *s, const char *name);
/* Installs rec (taking it) in place of any record of the same name. MU_ENOSPC past
 * MU_SECRETS_MAX (rec freed). */
int mu_secrets_put(mu_secrets *s, mu_secret_record *rec, mu_err *err);
/* Removes and frees the record called name (no-op when absent). */
void mu_secrets_remove(mu_secrets *s, const char *name);
/* The key with id, or NULL: looks in memory, then re-reads the key file once (the operator may
 * have installed a new key there). */
const mu_secret_key *mu_secrets_key(mu_secrets *s, const char *id);
/* Adds key to the keyring: as the current one (the others move down, the oldest beyond
 * MU_SECRETS_MAX_KEYS is dropped) or, current 0, right after it. Copies key. */
void mu_secrets_add_key(mu_secrets *s, const mu_secret_key *key, int current);
/* secrets_admin.c: answers every queued (not yet running) write UNAVAILABLE (stopping). */
void mu_secrets_fail_queued(struct mu_daemon *d);
/* "secrets are disabled: ..." for callers that need the key. */
extern const char mu_secrets_disabled_msg[];

#endif
