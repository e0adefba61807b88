/* The bundle admin calls: UploadBundle (client-streaming: a header with digest, size and
 * signature, then chunks; unsigned ones refused unless allow_unsigned_bundles; verified off
 * the loop; stored only when complete and valid; the same digest twice is stored once),
 * ListBundles and DeleteBundle (refused while an unfinished job references the bundle). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/bundles/bundles_int.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/bundle/verify.h"
#include "lib/pbjson/pbjson.h"
#include "lib/rpc/pb.h"

typedef struct upload {
  mu_bundles *b;
  mu_rpc_call *call;
  int started;   /* header accepted: counts in b->uploads */
  int finished;  /* we answered */
  int working;   /* verification running on the thread pool */
  int call_done; /* on_done ran: free after the work */
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint64_t total;
  uint8_t *buf;
  size_t len;
  uint8_t *sig;
  size_t sig_len;
  char key_id[MU_KEY_ID_SIZE];
  uv_work_t work;
  int verify_rc;
  mu_err verify_err;
  mu_bundle_info *info;
  mu_caller caller; /* for the audit record, which may come after the call is gone */
} upload;

static void upload_free(upload *u) {
  if (u->started) u->b->uploads--;
  free(u->buf);
  free(u->sig);
  mu_bundle_info_free(u->info);
  free(u);
}

static void fill_info(Muster__V1__BundleInfo *bi, const mu_bundle_meta *m) {
  bi->digest = (char *)m->digest;
  bi->name = m->name;
  bi->version = m->version;
  bi->size = m->size;
  bi->key_id = (char *)m->key_id;
  bi->uploaded_at_ms = m->uploaded_at_ms;
}

static void upload_fail(upload *u, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void upload_fail(upload *u, int code, const char *fmt, ...) {
  char msg[MU_ERR_MSG_MAX + 200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mu_audit_record_as(u->b->d, &u->caller, "bundle.upload", u->digest, MU_AUDIT_REFUSED, msg, NULL);
  u->finished = 1;
  mu_rpc_call_finish(u->call, code, msg, NULL);
}

static void reply_info(upload *u, const mu_bundle_meta *m, int already) {
  Muster__V1__BundleInfo bi = MUSTER__V1__BUNDLE_INFO__INIT;
  fill_info(&bi, m);
  bi.already_present = already;
  u->finished = 1;
  mu_pb_reply(u->call, &bi.base);
}

/* The first message: what is coming. Returns 0 to keep reading. */
static int on_header(upload *u, const Muster__V1__UploadBundleRequest *r) {
  mu_bundles *b = u->b;
  mu_err err = {0};
  if (mu_bundle_digest_check(r->digest, &err) != 0) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "UploadBundleRequest.digest: %s", err.msg);
    return 1;
  }
  snprintf(u->digest, sizeof u->digest, "%s", r->digest);
  const mu_bundle_meta *have = mu_bundles_find(b, r->digest);
  if (have != NULL) {
    mu_info("bundles", "upload of %s (%s@%s): already stored", have->digest, have->name, have->version);
    reply_info(u, have, 1);
    return 1;
  }
  /* Refused before any byte is read: otherwise an unsigned upload could claim a name@version
   * first and its signed push would get ALREADY_EXISTS. */
  if (r->signature.len == 0 && !b->d->cfg.allow_unsigned_bundles) {
    upload_fail(u, MU_RPC_PERMISSION_DENIED,
                "bundle is unsigned (unsigned uploads are refused); sign it with `muster bundle sign "
                "FILE --key KEY`, or start musterd with --allow-unsigned-bundles "
                "(allow_unsigned_bundles: true)");
    return 1;
  }
  if (r->total_size == 0) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "UploadBundleRequest.total_size: required in the first message");
    return 1;
  }
  if (r->total_size > b->cfg->max_bundle_bytes) {
    upload_fail(u, MU_RPC_RESOURCE_EXHAUSTED, "bundle is %llu bytes, over the cap of %llu",
                (unsigned long long)r->total_size, (unsigned long long)b->cfg->max_bundle_bytes);
    return 1;
  }
  if (b->uploads >= b->cfg->max_uploads) {
    upload_fail(u, MU_RPC_RESOURCE_EXHAUSTED, "%zu uploads are already in progress (the limit); try again", b->uploads);
    return 1;
  }
  u->buf = malloc(r->total_size);
  if (r->signature.len > 64 * 1024) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "UploadBundleRequest.signature: %zu bytes, at most 64K", r->signature.len);
    return 1;
  }
  if (r->signature.len > 0) {
    u->sig = malloc(r->signature.len);
    if (u->sig != NULL) memcpy(u->sig, r->signature.data, r->signature.len);
    u->sig_len = r->signature.len;
  }
  if (u->buf == NULL || (r->signature.len > 0 && u->sig == NULL)) {
    upload_fail(u, MU_RPC_RESOURCE_EXHAUSTED, "out of memory for a %llu-byte bundle",
                (unsigned long long)r->total_size);
    return 1;
  }
  snprintf(u->key_id, sizeof u->key_id, "%s", r->key_id);
  u->total = r->total_size;
  u->started = 1;
  b->uploads++;
  return 0;
}

static int on_upload_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  upload *u = ud;
  (void)call;
  if (u->finished) return 1;
  Muster__V1__UploadBundleRequest *r = muster__v1__upload_bundle_request__unpack(NULL, len, data);
  if (r == NULL) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "malformed UploadBundleRequest (%zu bytes)", len);
    return 1;
  }
  mu_err bad = {0};
  if (mu_pbjson_proto3_check(&r->base, &bad) != 0) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "malformed UploadBundleRequest: %s", bad.msg);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 1;
  }
  int stop = 0;
  if (!u->started) stop = on_header(u, r);
  if (!stop && r->chunk.len > 0) {
    if (u->len + r->chunk.len > u->total) {
      upload_fail(u, MU_RPC_INVALID_ARGUMENT, "more bytes than total_size (%llu) were sent",
                  (unsigned long long)u->total);
      stop = 1;
    } else {
      memcpy(u->buf + u->len, r->chunk.data, r->chunk.len);
      u->len += r->chunk.len;
    }
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return stop;
}

static void verify_work(uv_work_t *w) {
  upload *u = w->data;
  mu_bundles *b = u->b;
  mu_unpack_limits limits;
  mu_unpack_limits_default(&limits);
  limits.max_archive_bytes = b->cfg->max_bundle_bytes;
  mu_bundle_check check = {.expected_digest = u->digest, .trust = b->trust};
  if (b->trust != NULL) {
    check.sig = u->sig;
    check.sig_len = u->sig_len;
    check.allow_unsigned = b->d->cfg.allow_unsigned_bundles; /* a signature, when given, must verify */
  } else {
    /* No trust keys here: agents judge signatures; we check the digest and manifest. */
    check.allow_unsigned = true;
  }
  u->verify_rc = mu_bundle_verify(u->buf, u->len, &check, &limits, &u->info, &u->verify_err);
  if (u->verify_rc == 0 && b->trust == NULL && u->sig_len > 0) {
    mu_sig sig;
    u->verify_rc = mu_sig_parse((const char *)u->sig, u->sig_len, &sig, &u->verify_err);
    if (u->verify_rc == 0) snprintf(u->info->key_id, sizeof u->info->key_id, "%s", sig.key_id);
  }
}

typedef struct put_ctx {
  upload *u;
  mu_bundle_meta *meta;
} put_ctx;

static void on_put(void *arg, int rc, const char *msg) {
  put_ctx *pc = arg;
  upload *u = pc->u;
  if (rc != 0) {
    /* a full store is the caller's problem; etcd trouble or a lost leadership is worth a retry */
    if (!u->call_done)
      upload_fail(u, rc == MU_ENOSPC || rc == MU_ENOMEM ? MU_RPC_RESOURCE_EXHAUSTED : MU_RPC_UNAVAILABLE,
                  "storing the bundle: %s", msg);
  } else if (mu_bundles_index_add(u->b, pc->meta) != 0) {
    if (!u->call_done) upload_fail(u, MU_RPC_RESOURCE_EXHAUSTED, "out of memory indexing the bundle");
  } else {
    char ref[300];
    snprintf(ref, sizeof ref, "%s@%s", pc->meta->name, pc->meta->version);
    mu_audit_record_as(u->b->d, &u->caller, "bundle.upload", ref, MU_AUDIT_OK, NULL, "digest=%s bytes=%llu key=%s",
                       pc->meta->digest, (unsigned long long)pc->meta->size,
                       pc->meta->key_id[0] ? pc->meta->key_id : "unsigned");
    if (!u->call_done) reply_info(u, pc->meta, 0);
  }
  mu_bundle_meta_free(pc->meta);
  free(pc);
  u->working = 0;
  if (u->call_done) upload_free(u);
}

static void verify_done(uv_work_t *w, int status) {
  upload *u = w->data;
  mu_bundles *b = u->b;
  u->working = 0;
  if (u->call_done) {
    upload_free(u);
    return;
  }
  if (status != 0 || b->closing) {
    upload_fail(u, MU_RPC_UNAVAILABLE, "the control plane is stopping");
    return;
  }
  if (u->verify_rc != 0) {
    upload_fail(u, u->verify_rc == MU_EPERM ? MU_RPC_PERMISSION_DENIED : MU_RPC_INVALID_ARGUMENT, "bundle refused: %s",
                u->verify_err.msg);
    return;
  }
  const mu_manifest *mf = u->info->manifest;
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->metas[i]->name, mf->name) == 0 && strcmp(b->metas[i]->version, mf->version) == 0) {
      upload_fail(u, MU_RPC_ALREADY_EXISTS,
                  "bundle %s@%s is already stored with digest %s; bump the version or remove it first", mf->name,
                  mf->version, b->metas[i]->digest);
      return;
    }
  if (mu_bundles_find(b, u->digest) != NULL) { /* a concurrent upload of the same bytes won */
    reply_info(u, mu_bundles_find(b, u->digest), 1);
    return;
  }
  mu_bundle_meta meta = {.size = u->len,
                         .uploaded_at_ms = mu_now_ms(),
                         .sig = u->sig,
                         .sig_len = u->sig_len,
                         .name = mf->name,
                         .version = mf->version};
  snprintf(meta.digest, sizeof meta.digest, "%s", u->digest);
  snprintf(meta.key_id, sizeof meta.key_id, "%s", u->info->key_id);
  put_ctx *pc = calloc(1, sizeof *pc);
  if (pc != NULL) pc->meta = mu_bundle_meta_dup(&meta);
  if (pc == NULL || pc->meta == NULL) {
    free(pc);
    upload_fail(u, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  pc->u = u;
  u->working = 1; /* the store holds u until on_put */
  b->store->ops->put(b->store, &meta, u->buf, on_put, pc);
}

static void on_upload_read_end(mu_rpc_call *call, void *ud) {
  upload *u = ud;
  (void)call;
  if (u->finished || u->working) return;
  if (!u->started) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "empty upload: the first message must carry digest and total_size");
    return;
  }
  if (u->len != u->total) {
    upload_fail(u, MU_RPC_INVALID_ARGUMENT, "upload ended after %zu of %llu bytes; nothing stored", u->len,
                (unsigned long long)u->total);
    return;
  }
  u->working = 1;
  u->work.data = u;
  if (uv_queue_work(u->b->d->loop, &u->work, verify_work, verify_done) != 0) {
    u->working = 0;
    upload_fail(u, MU_RPC_INTERNAL, "cannot start verification");
  }
}

static void on_upload_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  upload *u = ud;
  (void)call;
  if (!u->finished && u->started)
    mu_warn("bundles", "upload of %s stopped after %zu of %llu bytes (%s: %s); nothing stored", u->digest, u->len,
            (unsigned long long)u->total, mu_rpc_code_name(st->code), st->message);
  u->call_done = 1;
  if (!u->working) upload_free(u);
}

static void on_upload(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return; /* a follower redirects to the leader */
  upload *u = calloc(1, sizeof *u);
  if (u == NULL || d->bundles == NULL) {
    free(u);
    mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  u->b = d->bundles;
  u->call = call;
  mu_audit_caller_copy(call, &u->caller);
  mu_rpc_call_handlers h = {
      .on_message = on_upload_message, .on_read_end = on_upload_read_end, .on_done = on_upload_done};
  mu_rpc_call_start(call, &h, u);
}

static void list_bundles(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  mu_bundles *b = d->bundles;
  const Muster__V1__ListBundlesRequest *req = (const Muster__V1__ListBundlesRequest *)req_msg;
  (void)md;
  if (b == NULL) {
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "bundles are not loaded yet; retry shortly");
    return;
  }
  Muster__V1__BundleInfo *infos = calloc(b->n + 1, sizeof *infos);
  Muster__V1__BundleInfo **ptrs = calloc(b->n + 1, sizeof *ptrs);
  if (infos == NULL || ptrs == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing %zu bundles", b->n);
    goto out;
  }
  Muster__V1__ListBundlesResponse resp = MUSTER__V1__LIST_BUNDLES_RESPONSE__INIT;
  for (size_t i = 0; i < b->n; i++) {
    if (req->name[0] != '\0' && strcmp(req->name, b->metas[i]->name) != 0) continue;
    muster__v1__bundle_info__init(&infos[resp.n_bundles]);
    fill_info(&infos[resp.n_bundles], b->metas[i]);
    ptrs[resp.n_bundles] = &infos[resp.n_bundles];
    resp.n_bundles++;
  }
  resp.bundles = ptrs;
  mu_pb_reply(call, &resp.base);
out:
  free(infos);
  free(ptrs);
}

typedef struct delete_ctx {
  mu_bundles *b;
  mu_rpc_call *call;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  char what[400];
  char ref[300];
  mu_caller caller;
} delete_ctx;

static void on_removed(void *arg, int rc, const char *msg) {
  delete_ctx *dc = arg;
  if (rc != 0) {
    mu_audit_record_as(dc->b->d, &dc->caller, "bundle.delete", dc->ref, MU_AUDIT_REFUSED, msg, "digest=%s", dc->digest);
    mu_pb_fail(dc->call, MU_RPC_UNAVAILABLE, "removing %s: %s", dc->what, msg);
  } else {
    mu_bundles_index_remove(dc->b, dc->digest);
    char why[300];
    snprintf(why, sizeof why, "bundle %s was removed from the control plane", dc->digest);
    mu_bundles_serve_forget(dc->b, dc->digest, why);
    mu_audit_record_as(dc->b->d, &dc->caller, "bundle.delete", dc->ref, MU_AUDIT_OK, NULL, "digest=%s", dc->digest);
    Muster__V1__DeleteBundleResponse resp = MUSTER__V1__DELETE_BUNDLE_RESPONSE__INIT;
    mu_pb_reply(dc->call, &resp.base);
  }
  free(dc);
}

static void delete_bundle(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  mu_bundles *b = d->bundles;
  const Muster__V1__DeleteBundleRequest *req = (const Muster__V1__DeleteBundleRequest *)req_msg;
  (void)md;
  char msg[400];
  if (mu_cluster_check_write(d, call) != 0) return;
  if (b == NULL || b->closing) {
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "the control plane is stopping");
    return;
  }
  if (req->ref[0] == '\0') {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "ref: required (NAME@VERSION or sha256:<hex>)");
    return;
  }
  const mu_bundle_meta *m = mu_bundles_lookup(b, req->ref, msg, sizeof msg);
  if (m == NULL) {
    mu_pb_fail(call, strstr(msg, "not found") ? MU_RPC_NOT_FOUND : MU_RPC_INVALID_ARGUMENT, "%s", msg);
    return;
  }
  const char *job = mu_bundles_used_by(b, m->digest);
  if (job != NULL) {
    mu_audit_record(d, call, "bundle.delete", req->ref, MU_AUDIT_REFUSED, "used by an unfinished job", "job=%s", job);
    mu_pb_fail(call, MU_RPC_FAILED_PRECONDITION,
               "bundle %s@%s (%s) is used by job %s, which has not finished; cancel it or wait", m->name, m->version,
               m->digest, job);
    return;
  }
  delete_ctx *dc = calloc(1, sizeof *dc);
  if (dc == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  dc->b = b;
  dc->call = call;
  snprintf(dc->digest, sizeof dc->digest, "%s", m->digest);
  snprintf(dc->what, sizeof dc->what, "%s@%s (%s)", m->name, m->version, m->digest);
  snprintf(dc->ref, sizeof dc->ref, "%s@%s", m->name, m->version);
  mu_audit_caller_copy(call, &dc->caller);
  b->store->ops->remove(b->store, dc->digest, on_removed, dc);
}

int mu_bundles_register(mu_daemon *d, mu_err *err) {
  int rc = mu_rpc_server_add_method(d->server, "/muster.v1.Admin/UploadBundle", on_upload, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/ListBundles", &muster__v1__list_bundles_request__descriptor,
                         list_bundles, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Admin/DeleteBundle", &muster__v1__delete_bundle_request__descriptor,
                         delete_bundle, d, err);
  return rc;
}
