/* muster.v1.Secrets (secrets.h): SetSecret, ListSecrets, DeleteSecret, RotateSecretKey. Writes
 * are queued and run one at a time on the leader, each a fenced etcd batch (or at once in
 * memory with --no-etcd), so versions never race; the record in memory changes only once etcd
 * has it. No reply, log or audit line ever holds a value. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/secrets_int.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "lib/selector/selector.h"
#include "muster/v1/secret.pb-c.h"

#define MU_SECRETS_MAX_QUEUED 64

typedef enum { OP_SET, OP_DELETE, OP_ROTATE } op_kind;

struct mu_secret_op {
  mu_secret_op *next;
  mu_daemon *d;
  op_kind kind;
  mu_rpc_call *call;
  uint64_t gen; /* d->cluster->gen when the write was sent */
  char *name, *scope, *key_file;
  char by[200];
  char *value; /* SET: wiped once sealed */
  size_t len;
  mu_secret_record *rec;   /* SET: the record etcd is given */
  uint64_t version;        /* DELETE: the version removed */
  mu_secret_record **recs; /* ROTATE: the records re-sealed under new_key */
  size_t n_recs;
  uint32_t reencrypted;
  mu_secret_key new_key;
  char old_key_id[MU_SECRET_KEY_ID_SIZE];
};

static void op_free(mu_secret_op *op) {
  free(op->name);
  free(op->scope);
  free(op->key_file);
  mu_secret_value_free(op->value, op->len);
  mu_secret_record_free(op->rec);
  for (size_t i = 0; i < op->n_recs; i++) mu_secret_record_free(op->recs[i]);
  free(op->recs);
  mu_secret_key_wipe(&op->new_key);
  free(op);
}

static void run_next(mu_daemon *d);

/* Answers op's call: the reply for its kind, or err (from_store: etcd refused the write). */
static void reply(mu_secret_op *op, const mu_err *err, int from_store) {
  mu_rpc_call *call = op->call;
  if (err != NULL && from_store) {
    if (err->code == MU_EPERM && mu_cluster_check_write(op->d, call) != 0)
      return; /* deposed: answered with the leader's address */
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "etcd: %s (the change was not made)", err->msg);
    return;
  }
  if (err != NULL) {
    mu_pb_fail(call, mu_rpc_code_from_err(err->code), "%s", err->msg);
    return;
  }
  if (op->kind == OP_SET) {
    Muster__V1__SetSecretResponse r = MUSTER__V1__SET_SECRET_RESPONSE__INIT;
    r.name = op->name;
    r.version = op->version;
    mu_pb_reply(call, &r.base);
  } else if (op->kind == OP_DELETE) {
    Muster__V1__DeleteSecretResponse r = MUSTER__V1__DELETE_SECRET_RESPONSE__INIT;
    r.name = op->name;
    r.version = op->version;
    mu_pb_reply(call, &r.base);
  } else {
    Muster__V1__RotateSecretKeyResponse r = MUSTER__V1__ROTATE_SECRET_KEY_RESPONSE__INIT;
    r.old_key_id = op->old_key_id;
    r.new_key_id = op->new_key.id;
    r.reencrypted = op->reencrypted;
    mu_pb_reply(call, &r.base);
  }
}

/* The write is in etcd (or memory): change the records here, answer, audit. */
static void apply_done(mu_daemon *d, mu_secret_op *op) {
  mu_secrets *s = d->secrets;
  mu_err err = {0};
  int current = op->gen == d->cluster->gen; /* else a new load brings the records */
  if (op->kind == OP_SET) {
    mu_audit(op->call, "secret.set", "name=%s version=%" PRIu64 " scope='%s'", op->name, op->version, op->scope);
    if (current && mu_secrets_put(s, op->rec, &err) != 0)
      mu_warn("secrets", "secret '%s' stored but not kept in memory: %s", op->name, err.msg);
    if (current) op->rec = NULL;
  } else if (op->kind == OP_DELETE) {
    mu_audit(op->call, "secret.delete", "name=%s version=%" PRIu64, op->name, op->version);
    if (current) mu_secrets_remove(s, op->name);
  } else {
    mu_audit(op->call, "secret.rotate_key", "old_key_id=%s new_key_id=%s reencrypted=%u", op->old_key_id,
             op->new_key.id, op->reencrypted);
    for (size_t i = 0; current && i < op->n_recs; i++) {
      if (mu_secrets_put(s, op->recs[i], &err) != 0)
        mu_warn("secrets", "re-encrypted secret not kept in memory: %s", err.msg);
      op->recs[i] = NULL;
    }
    mu_secrets_add_key(s, &op->new_key, 1);
    mu_info("secrets", "secret key rotated: key id %s -> %s, %u records re-encrypted", op->old_key_id, op->new_key.id,
            op->reencrypted);
    if (op->key_file != NULL && strcmp(op->key_file, s->key_path) != 0) {
      snprintf(s->key_path, sizeof s->key_path, "%s", op->key_file);
      mu_warn("secrets",
              "the current key now comes from %s: set secret_key (--secret-key) to "
              "it on every member before they restart",
              s->key_path);
    }
  }
  reply(op, NULL, 0);
}

static void op_end(mu_daemon *d, mu_secret_op *op, const mu_err *err, int from_store) {
  if (err == NULL) apply_done(d, op);
  else reply(op, err, from_store);
  op_free(op);
  if (d->secrets != NULL) {
    d->secrets->op_running = 0;
    run_next(d);
  }
}

static void on_committed(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  mu_secret_op *op = ud;
  mu_daemon *d = op->d;
  (void)res;
  if (d->secrets == NULL) { /* musterd stopped meanwhile */
    mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "musterd is stopping");
    op_free(op);
    return;
  }
  if (err != NULL) mu_warn("secrets", "secret write failed: %s", err->msg);
  op_end(d, op, err, 1);
}

static void key_of(const mu_daemon *d, const char *name, char *buf, size_t size) {
  snprintf(buf, size, "%ssecrets/%s", d->cfg.etcd_prefix, name);
}

/* Builds the write of op; b gets its puts/deletes. */
static int build_set(mu_daemon *d, mu_secret_op *op, mu_store_batch *b, mu_err *err) {
  mu_secrets *s = d->secrets;
  const mu_secret_record *old = mu_secrets_find(s, op->name);
  op->version = old ? old->version + 1 : 1;
  op->rec = mu_secret_record_new(op->name, op->version, op->scope, op->by, mu_now_ms());
  if (op->rec == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (old != NULL) {
    free(op->rec->created_by);
    op->rec->created_by = strdup(old->created_by);
    op->rec->created_at_ms = old->created_at_ms;
    if (op->rec->created_by == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  int rc = mu_secret_record_seal(op->rec, &s->keys[0], op->value, op->len, err);
  mu_secret_value_free(op->value, op->len);
  op->value = NULL;
  if (rc != 0 || b == NULL) return rc;
  char key[400];
  char *json = mu_secret_record_encode(op->rec);
  if (json == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  key_of(d, op->name, key, sizeof key);
  rc = mu_store_batch_put(b, key, json, 0, err);
  free(json);
  return rc;
}

static int build_delete(mu_daemon *d, mu_secret_op *op, mu_store_batch *b, mu_err *err) {
  const mu_secret_record *old = mu_secrets_find(d->secrets, op->name);
  if (old == NULL) return mu_err_set(err, MU_ENOENT, "no secret named '%s'", op->name);
  op->version = old->version;
  char key[400];
  key_of(d, op->name, key, sizeof key);
  return b != NULL ? mu_store_batch_delete(b, key, false, err) : 0;
}

/* Every record re-sealed under the new key: decrypted with the key it names, sealed again
 * with the same name and version. A record under a key this member lacks stops the rotation,
 * named: nothing is written. */
static int build_rotate(mu_daemon *d, mu_secret_op *op, mu_store_batch *b, mu_err *err) {
  mu_secrets *s = d->secrets;
  const char *path = op->key_file != NULL ? op->key_file : s->key_path;
  if (mu_secret_key_load(path, &op->new_key, err) != 0) return err->code;
  snprintf(op->old_key_id, sizeof op->old_key_id, "%s", s->keys[0].id);
  if (strcmp(op->new_key.id, s->keys[0].id) == 0)
    return mu_err_set(err, MU_EINVAL,
                      "%s holds the key already in use (key id %s): write the "
                      "new key there first (muster secret keygen --out FILE), or name it with "
                      "--new-key FILE",
                      path, op->new_key.id);
  op->recs = calloc(s->n + 1, sizeof *op->recs);
  if (op->recs == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  mu_secrets_add_key(s, &op->new_key, 0); /* records a partial write leaves stay readable */
  for (size_t i = 0; i < s->n; i++) {
    const mu_secret_record *rec = s->recs[i];
    if (strcmp(rec->key_id, op->new_key.id) == 0) continue; /* a retried rotation */
    const mu_secret_key *key = mu_secrets_key(s, rec->key_id);
    if (key == NULL)
      return mu_err_set(err, MU_EINVAL,
                        "cannot re-encrypt secret '%s': it is encrypted with key "
                        "id %s, which this member does not hold (its current key is %s): start "
                        "it with that key and give the new one with --new-key FILE",
                        rec->name, rec->key_id, op->old_key_id);
    char *value = NULL;
    size_t len = 0;
    mu_secret_record *copy = mu_secret_record_dup(rec);
    int rc =
        copy == NULL ? mu_err_set(err, MU_ENOMEM, "out of memory") : mu_secret_record_open(rec, key, &value, &len, err);
    if (rc == 0) rc = mu_secret_record_seal(copy, &op->new_key, value, len, err);
    mu_secret_value_free(value, len);
    if (copy != NULL) op->recs[op->n_recs++] = copy;
    if (rc != 0) return rc;
    char k[400];
    char *json = b != NULL ? mu_secret_record_encode(copy) : NULL;
    if (b != NULL && json == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    key_of(d, copy->name, k, sizeof k);
    rc = b != NULL ? mu_store_batch_put(b, k, json, 0, err) : 0;
    free(json);
    if (rc != 0) return rc;
  }
  op->reencrypted = (uint32_t)op->n_recs;
  return 0;
}

/* Runs the next queued write, if none is running. */
static void run_next(mu_daemon *d) {
  mu_secrets *s = d->secrets;
  if (s->op_running || s->ops_head == NULL) return;
  mu_secret_op *op = s->ops_head;
  s->ops_head = op->next;
  if (s->ops_head == NULL) s->ops_tail = NULL;
  s->n_ops--;
  s->op_running = 1;
  op->gen = d->cluster->gen;
  mu_err err = {0};
  int etcd = d->cluster->role != MU_ROLE_SINGLE;
  mu_store_batch *b = etcd ? mu_store_batch_new(d->cluster->store) : NULL;
  int rc = etcd && b == NULL ? mu_err_set(&err, MU_ENOMEM, "out of memory") : 0;
  if (rc == 0 && etcd && !mu_cluster_leading(d)) { /* deposed while it waited */
    mu_store_batch_free(b);
    mu_err_set(&err, MU_EPERM, "not the leader any more");
    op_end(d, op, &err, 1);
    return;
  }
  if (rc == 0)
    rc = op->kind == OP_SET      ? build_set(d, op, b, &err)
         : op->kind == OP_DELETE ? build_delete(d, op, b, &err)
                                 : build_rotate(d, op, b, &err);
  if (rc == 0 && etcd && mu_store_batch_ops(b) == 0) { /* a rotation with nothing to write */
    mu_store_batch_free(b);
    b = NULL;
    etcd = 0;
  }
  if (rc != 0 || !etcd) {
    mu_store_batch_free(b);
    op_end(d, op, rc != 0 ? &err : NULL, 0);
    return;
  }
  if (mu_store_batch_commit(b, on_committed, op, &err) != 0) op_end(d, op, &err, 1);
}

/* --- handlers --- */

/* Common checks; 0 when the call may go on (otherwise it has been answered). */
static int check_call(mu_daemon *d, mu_rpc_call *call, int write) {
  if (d->secrets == NULL || !d->secrets->enabled) {
    mu_pb_fail(call, MU_RPC_FAILED_PRECONDITION, "%s", mu_secrets_disabled_msg);
    return -1;
  }
  return write ? mu_cluster_check_write(d, call) : 0;
}

static mu_secret_op *op_new(mu_daemon *d, mu_rpc_call *call, op_kind kind, const char *name) {
  mu_secret_op *op = calloc(1, sizeof *op);
  if (op != NULL && name != NULL) op->name = strdup(name);
  if (op == NULL || (name != NULL && op->name == NULL)) {
    free(op);
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  op->d = d;
  op->kind = kind;
  op->call = call;
  const mu_caller *caller = mu_authz_caller(call);
  snprintf(op->by, sizeof op->by, "anonymous");
  if (caller != NULL) mu_caller_describe(caller, op->by, sizeof op->by);
  return op;
}

static void enqueue(mu_daemon *d, mu_secret_op *op) {
  mu_secrets *s = d->secrets;
  if (s->n_ops >= MU_SECRETS_MAX_QUEUED) {
    mu_pb_fail(op->call, MU_RPC_RESOURCE_EXHAUSTED,
               "%d secret changes are waiting already; "
               "retry",
               MU_SECRETS_MAX_QUEUED);
    op_free(op);
    return;
  }
  if (s->ops_tail != NULL) s->ops_tail->next = op;
  else s->ops_head = op;
  s->ops_tail = op;
  s->n_ops++;
  run_next(d);
}

static void set_secret(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__SetSecretRequest *req = (const Muster__V1__SetSecretRequest *)req_msg;
  (void)md;
  if (check_call(d, call, 1) != 0) return;
  mu_err err = {0};
  mu_selector *sel = NULL;
  if (mu_secret_check_name(req->name, &err) != 0 || mu_secret_check_value(req->value.data, req->value.len, &err) != 0 ||
      mu_selector_parse(req->scope, &sel, &err) != 0) {
    if (err.msg[0] != '\0' && strncmp(err.msg, "secret name", 11) != 0)
      mu_err_prefix(&err, "secret '%.140s'", req->name);
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "%s", err.msg);
    return;
  }
  mu_selector_free(sel);
  mu_secret_op *op = op_new(d, call, OP_SET, req->name);
  if (op == NULL) return;
  op->scope = strdup(req->scope);
  op->value = malloc(req->value.len + 1);
  if (op->scope == NULL || op->value == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    op_free(op);
    return;
  }
  memcpy(op->value, req->value.data, req->value.len);
  op->len = req->value.len;
  enqueue(d, op);
}

static void delete_secret(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__DeleteSecretRequest *req = (const Muster__V1__DeleteSecretRequest *)req_msg;
  (void)md;
  if (check_call(d, call, 1) != 0) return;
  mu_secret_op *op = op_new(d, call, OP_DELETE, req->name);
  if (op != NULL) enqueue(d, op);
}

static void rotate_key(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__RotateSecretKeyRequest *req = (const Muster__V1__RotateSecretKeyRequest *)req_msg;
  (void)md;
  if (check_call(d, call, 1) != 0) return;
  mu_secret_op *op = op_new(d, call, OP_ROTATE, NULL);
  if (op == NULL) return;
  if (req->new_key_file[0] != '\0') op->key_file = strdup(req->new_key_file);
  if (req->new_key_file[0] != '\0' && op->key_file == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    op_free(op);
    return;
  }
  enqueue(d, op);
}

static void list_secrets(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__ListSecretsRequest *req = (const Muster__V1__ListSecretsRequest *)req_msg;
  (void)md;
  if (check_call(d, call, 0) != 0) return;
  mu_secrets *s = d->secrets;
  Muster__V1__SecretInfo *infos = calloc(s->n + 1, sizeof *infos);
  Muster__V1__SecretInfo **ptrs = calloc(s->n + 1, sizeof *ptrs);
  if (infos == NULL || ptrs == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing %zu secrets", s->n);
  } else {
    Muster__V1__ListSecretsResponse resp = MUSTER__V1__LIST_SECRETS_RESPONSE__INIT;
    size_t plen = strlen(req->name_prefix);
    for (size_t i = 0; i < s->n; i++) {
      const mu_secret_record *r = s->recs[i];
      if (strncmp(r->name, req->name_prefix, plen) != 0) continue;
      Muster__V1__SecretInfo *in = &infos[resp.n_secrets];
      muster__v1__secret_info__init(in);
      in->name = r->name;
      in->version = r->version;
      in->scope = r->scope;
      in->created_at_ms = r->created_at_ms;
      in->created_by = r->created_by;
      in->updated_at_ms = r->updated_at_ms;
      in->updated_by = r->updated_by;
      in->key_id = (char *)r->key_id;
      ptrs[resp.n_secrets++] = in;
    }
    resp.secrets = ptrs;
    resp.key_id = s->keys[0].id;
    mu_pb_reply(call, &resp.base);
  }
  free(infos);
  free(ptrs);
}

int mu_secrets_register(mu_daemon *d, mu_err *err) {
  static const mu_pb_method methods[] = {
      {"/muster.v1.Secrets/SetSecret", &muster__v1__set_secret_request__descriptor, set_secret},
      {"/muster.v1.Secrets/ListSecrets", &muster__v1__list_secrets_request__descriptor, list_secrets},
      {"/muster.v1.Secrets/DeleteSecret", &muster__v1__delete_secret_request__descriptor, delete_secret},
      {"/muster.v1.Secrets/RotateSecretKey", &muster__v1__rotate_secret_key_request__descriptor, rotate_key},
  };
  return mu_pb_add_unaries(d->server, methods, sizeof methods / sizeof methods[0], d, err);
}

void mu_secrets_fail_queued(mu_daemon *d) {
  mu_secrets *s = d->secrets;
  while (s != NULL && s->ops_head != NULL) {
    mu_secret_op *op = s->ops_head;
    s->ops_head = op->next;
    mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "musterd is stopping; the change was not made");
    op_free(op);
  }
  if (s != NULL) {
    s->ops_tail = NULL;
    s->n_ops = 0;
  }
}
