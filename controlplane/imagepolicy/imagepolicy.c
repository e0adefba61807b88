/* The cluster's image admission policy (see imagepolicy.h): the record in memory, the admin
 * calls, and the pushes to agents. A set is parsed by lib/imagepolicy before anything is
 * written, so a refused document leaves the stored policy as it was. */
#include "controlplane/imagepolicy/imagepolicy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/records.h"
#include "controlplane/schedules/schedules_int.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/bundle/bundle.h"
#include "lib/imagepolicy/imagepolicy.h"
#include "lib/rpc/pb.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/store.pb-c.h"

#define LOG "imagepolicy"
#define KEY "imagepolicy/cluster"

typedef struct mu_cp_imgpolicy {
  Muster__V1__ImagePolicyRecord *rec; /* owned (unpacked); NULL: no cluster policy */
  mu_imgpolicy *policy;               /* rec's, parsed; NULL with rec */
} mu_cp_imgpolicy;

int mu_imagepolicy_init(mu_daemon *d, mu_err *err) {
  d->imgpolicy = calloc(1, sizeof *d->imgpolicy);
  if (d->imgpolicy == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return 0;
}

static void reset(mu_cp_imgpolicy *st) {
  if (st->rec != NULL) protobuf_c_message_free_unpacked(&st->rec->base, NULL);
  mu_imgpolicy_free(st->policy);
  st->rec = NULL;
  st->policy = NULL;
}

void mu_imagepolicy_free(mu_daemon *d) {
  if (d->imgpolicy == NULL) return;
  reset(d->imgpolicy);
  free(d->imgpolicy);
  d->imgpolicy = NULL;
}

static const char *policy_json(const mu_cp_imgpolicy *st) {
  return st->rec && st->rec->info && st->rec->info->policy_json ? st->rec->info->policy_json : "";
}

static void push(mu_agent *a, const mu_cp_imgpolicy *st) {
  if (a->session == NULL) return;
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__ImagePolicyPush p = MUSTER__V1__IMAGE_POLICY_PUSH__INIT;
  p.policy_json = (char *)policy_json(st);
  p.sha256 = st->rec && st->rec->info ? st->rec->info->sha256 : "";
  p.set_at_ms = st->rec && st->rec->info ? st->rec->info->set_at_ms : 0;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_IMAGE_POLICY;
  msg.image_policy = &p;
  mu_err err = {0};
  if (mu_gateway_send(a, &msg, &err) != 0) mu_warn(LOG, "image policy to %s not sent: %s", a->id, err.msg);
}

static void push_all(mu_daemon *d) {
  for (size_t i = 0; i < d->registry.n; i++) push(d->registry.agents[i], d->imgpolicy);
}

/* Before the state is loaded the policy is not known yet: the agent keeps the one it has, and
 * takeover (after the records, before any assignment) sends it. */
void mu_imagepolicy_on_agent_up(mu_daemon *d, mu_agent *a) {
  if (d->cluster->state_ready) push(a, d->imgpolicy);
}

void mu_imagepolicy_on_takeover(mu_daemon *d) { push_all(d); }

/* Takes the record JSON into the state (the old one dropped); pushes when the policy changed. */
static int adopt(mu_daemon *d, const char *json, size_t len, mu_err *err) {
  ProtobufCMessage *m = NULL;
  int rc = mu_record_decode(&muster__v1__image_policy_record__descriptor, json, len, &m, err);
  if (rc != 0) return rc;
  Muster__V1__ImagePolicyRecord *rec = (Muster__V1__ImagePolicyRecord *)m;
  mu_imgpolicy *p = NULL;
  const char *pj = rec->info && rec->info->policy_json ? rec->info->policy_json : "";
  if (pj[0] != '\0') rc = mu_imgpolicy_parse(KEY, pj, strlen(pj), &p, err);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return rc;
  }
  mu_cp_imgpolicy *st = d->imgpolicy;
  int changed = strcmp(policy_json(st), pj) != 0;
  reset(st);
  if (pj[0] != '\0') {
    st->rec = rec;
    st->policy = p;
  } else {
    protobuf_c_message_free_unpacked(&rec->base, NULL);
  }
  if (changed) {
    mu_info(LOG, "cluster image policy %s", pj[0] ? pj : "cleared");
    push_all(d);
  }
  return 0;
}

/* The record comes again in the snapshot (or the policy was removed meanwhile); agents are
 * sent it again when adopted, which they take as unchanged when it is. */
void mu_imagepolicy_on_snapshot_begin(mu_daemon *d) { reset(d->imgpolicy); }

void mu_imagepolicy_on_record(mu_daemon *d, const char *rel, const char *value, size_t len) {
  if (strcmp(rel, KEY) != 0) return;
  mu_err err = {0};
  if (value == NULL) {
    int had = d->imgpolicy->rec != NULL;
    reset(d->imgpolicy);
    if (had) push_all(d);
    return;
  }
  if (adopt(d, value, len, &err) != 0) mu_warn(LOG, "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
}

/* --- calls --- */

typedef struct set_op {
  mu_daemon *d;
  mu_rpc_call *call;
  char *json; /* the record */
  char sha[MU_BUNDLE_DIGEST_SIZE];
  int clear;
} set_op;

static void on_written(void *ud, const mu_err *err) {
  set_op *op = ud;
  mu_daemon *d = op->d;
  mu_err aerr = {0};
  const char *action = op->clear ? "imagepolicy.clear" : "imagepolicy.set";
  if (err != NULL) {
    mu_audit_record(d, op->call, action, "cluster", MU_AUDIT_REFUSED, err->msg, NULL);
    if (!(err->code == MU_EPERM && mu_cluster_check_write(d, op->call) != 0))
      mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "image policy not stored: %s", err->msg);
  } else if (adopt(d, op->json, strlen(op->json), &aerr) != 0) {
    mu_audit_record(d, op->call, action, "cluster", MU_AUDIT_REFUSED, aerr.msg, NULL);
    mu_pb_fail(op->call, MU_RPC_INTERNAL, "%s", aerr.msg);
  } else {
    mu_audit_record(d, op->call, action, "cluster", MU_AUDIT_OK, NULL, "policy=%s agents=%zu", op->sha,
                    d->registry.connected);
    Muster__V1__ImagePolicyInfo empty = MUSTER__V1__IMAGE_POLICY_INFO__INIT;
    const mu_cp_imgpolicy *st = d->imgpolicy;
    mu_pb_reply(op->call, st->rec && st->rec->info ? &st->rec->info->base : &empty.base);
  }
  free(op->json);
  free(op);
}

static void set_policy(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__SetImagePolicyRequest *req = (const Muster__V1__SetImagePolicyRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  const char *action = req->clear ? "imagepolicy.clear" : "imagepolicy.set";
  const char *name = req->name && req->name[0] ? req->name : "policy";
  mu_err err = {0};
  mu_imgpolicy *p = NULL;
  char *pj = NULL, *json = NULL;
  int rc = 0;
  if (!req->clear) rc = mu_imgpolicy_parse(name, req->document, strlen(req->document), &p, &err);
  if (rc == 0 && !req->clear) {
    pj = mu_imgpolicy_to_json(p);
    if (pj == NULL) rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
  }
  set_op *op = rc == 0 ? calloc(1, sizeof *op) : NULL;
  if (rc == 0 && op == NULL) rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
  if (rc == 0) {
    char who[200] = "";
    const mu_caller *c = mu_authz_caller(call);
    if (c != NULL) mu_caller_describe(c, who, sizeof who);
    Muster__V1__ImagePolicyInfo info = MUSTER__V1__IMAGE_POLICY_INFO__INIT;
    Muster__V1__ImagePolicyRecord rec = MUSTER__V1__IMAGE_POLICY_RECORD__INIT;
    op->d = d;
    op->call = call;
    op->clear = req->clear;
    if (pj != NULL) mu_bundle_digest((const uint8_t *)pj, strlen(pj), op->sha);
    info.policy_json = pj != NULL ? pj : "";
    info.document = req->clear ? "" : req->document;
    info.set_at_ms = mu_now_ms();
    info.set_by = who;
    info.sha256 = op->sha;
    rec.v = MU_RECORD_VERSION;
    rec.info = &info;
    if (mu_record_encode(&rec.base, &json, &err) != 0) rc = err.code;
  }
  mu_imgpolicy_free(p);
  free(pj);
  if (rc != 0) {
    free(json);
    free(op);
    mu_audit_record(d, call, action, "cluster", MU_AUDIT_REFUSED, err.msg, NULL);
    mu_pb_fail(call, mu_rpc_code_from_err(rc), "%s", err.msg);
    return;
  }
  op->json = json;
  mu_schedules_write_put(d->schedules, KEY, json, on_written, op);
}

static void get_policy(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)req_msg, (void)md;
  Muster__V1__ImagePolicyInfo empty = MUSTER__V1__IMAGE_POLICY_INFO__INIT;
  const mu_cp_imgpolicy *st = d->imgpolicy;
  mu_pb_reply(call, st->rec && st->rec->info ? &st->rec->info->base : &empty.base);
}

static void test_policy(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__TestImagePolicyRequest *req = (const Muster__V1__TestImagePolicyRequest *)req_msg;
  (void)md;
  const Muster__V1__ImageFacts *in = req->facts;
  if (in == NULL) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "facts: required");
    return;
  }
  if (in->n_volumes > MU_IMGPOLICY_MAX_LIST) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "facts.volumes: %zu, at most %d", in->n_volumes, MU_IMGPOLICY_MAX_LIST);
    return;
  }
  mu_imgfacts f = {.registry = in->registry,
                   .repository = in->repository,
                   .tag = in->tag,
                   .digest = in->digest,
                   .manifest_digest = in->manifest_digest,
                   .config_known = in->config_known,
                   .config_user = in->config_user,
                   .run_user = in->run_user,
                   .compressed_bytes = in->compressed_bytes,
                   .uncompressed_bytes = in->uncompressed_bytes,
                   .network = in->network,
                   .volumes = (const char *const *)in->volumes,
                   .n_volumes = in->n_volumes,
                   .signature_detail = in->signature_detail};
  if (in->signature[0] != '\0' && mu_imgsig_status_parse(in->signature, &f.signature) != 0) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "facts.signature: \"%.32s\" is not a signature status", in->signature);
    return;
  }
  mu_imgscan_summary scan = {{0}, {0}};
  if (in->scanned) {
    for (size_t i = 0; i < MU_SEV_COUNT && i < in->n_unfixed; i++) scan.unfixed[i] = in->unfixed[i];
    for (size_t i = 0; i < MU_SEV_COUNT && i < in->n_oldest_days; i++) scan.oldest_days[i] = in->oldest_days[i];
    f.scan = &scan;
  }
  const mu_cp_imgpolicy *st = d->imgpolicy;
  mu_imgpolicy_result *res = calloc(1, sizeof *res);
  Muster__V1__ImagePolicyViolation *vs = calloc(MU_IMGPOLICY_MAX_VIOLATIONS, sizeof *vs);
  Muster__V1__ImagePolicyViolation **vp = calloc(MU_IMGPOLICY_MAX_VIOLATIONS, sizeof *vp);
  if (res == NULL || vs == NULL || vp == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  if (st->policy != NULL) mu_imgpolicy_eval(st->policy, &f, res);
  Muster__V1__TestImagePolicyResponse resp = MUSTER__V1__TEST_IMAGE_POLICY_RESPONSE__INIT;
  resp.has_policy = st->policy != NULL;
  resp.allowed = res->n == 0 && res->dropped == 0;
  resp.policy_sha256 = st->rec && st->rec->info ? st->rec->info->sha256 : "";
  for (size_t i = 0; i < res->n; i++) {
    muster__v1__image_policy_violation__init(&vs[i]);
    vs[i].rule = res->v[i].rule;
    vs[i].message = res->v[i].msg;
    vp[i] = &vs[i];
  }
  resp.violations = vp;
  resp.n_violations = res->n;
  mu_audit_record(d, call, "imagepolicy.test", in->repository, MU_AUDIT_OK, NULL, "violations=%zu", res->n);
  mu_pb_reply(call, &resp.base);
done:
  free(res);
  free(vs);
  free(vp);
}

int mu_imagepolicy_register(mu_daemon *d, mu_err *err) {
  static const struct {
    const char *path;
    const ProtobufCMessageDescriptor *desc;
    mu_pb_unary_fn fn;
  } methods[] = {
      {"/muster.v1.ImagePolicies/SetImagePolicy", &muster__v1__set_image_policy_request__descriptor, set_policy},
      {"/muster.v1.ImagePolicies/GetImagePolicy", &muster__v1__get_image_policy_request__descriptor, get_policy},
      {"/muster.v1.ImagePolicies/TestImagePolicy", &muster__v1__test_image_policy_request__descriptor, test_policy},
  };
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    int rc = mu_pb_add_unary(d->server, methods[i].path, methods[i].desc, methods[i].fn, d, err);
    if (rc != 0) return rc;
  }
  return 0;
}
