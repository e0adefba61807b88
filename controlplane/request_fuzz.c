/* Fuzzes every request the control plane accepts, as protobuf-c unpacks it: the agent stream's
 * AgentMessage (and the agent's ControlMessage, its other direction) and each muster.v1.Admin
 * request. Byte 0 picks the type (see `types`), the rest is the message. Each decoded message
 * then goes through the checks the server runs before it touches daemon state: proto3 UTF-8
 * strings, the Hello, job spec validation of SubmitJob and RunAdhoc, selectors, bundle
 * digests. Target resolution and the handlers themselves need the daemon and are not run.
 * Properties: whatever decodes repacks to bytes that decode again (SubmitJob copies specs that
 * way), and what the checks accept can be stored: etcd records are the message's JSON
 * (persist.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/fuzz_checks.h"
#include "controlplane/hello.h"
#include "controlplane/jobspec.h"
#include "lib/bundle/bundle.h"
#include "lib/fuzz/fuzz_util.h"
#include "lib/pbjson/pbjson.h"
#include "lib/selector/selector.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/agent.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &muster__v1__agent_message__descriptor, /* 0: AgentGateway/Connect, agent to us */
    &muster__v1__submit_job_request__descriptor,
    &muster__v1__run_adhoc_request__descriptor,
    &muster__v1__get_job_request__descriptor,
    &muster__v1__list_jobs_request__descriptor,
    &muster__v1__watch_job_request__descriptor,
    &muster__v1__cancel_job_request__descriptor,
    &muster__v1__task_logs_request__descriptor,
    &muster__v1__list_agents_request__descriptor,
    &muster__v1__drain_agent_request__descriptor,
    &muster__v1__upload_bundle_request__descriptor,
    &muster__v1__list_bundles_request__descriptor,
    &muster__v1__delete_bundle_request__descriptor,
    &muster__v1__get_cluster_request__descriptor,
    &muster__v1__control_message__descriptor, /* 14: us to the agent, which unpacks it */
    &muster__v1__remove_agent_request__descriptor,
    &muster__v1__task_action_request__descriptor,
    &muster__v1__list_savepoints_request__descriptor,
    &muster__v1__list_run_history_request__descriptor,
};
#define N_TYPES (sizeof types / sizeof *types)

static void check(const ProtobufCMessage *msg) {
  mu_err err = {0};
  if (msg->descriptor == &muster__v1__agent_message__descriptor) {
    const Muster__V1__AgentMessage *m = (const Muster__V1__AgentMessage *)msg;
    if (m->msg_case == MUSTER__V1__AGENT_MESSAGE__MSG_HELLO) {
      if (mu_hello_check(m->hello, &err) == 0) mu_fuzz_storable(msg); /* the registry keeps it */
      else MU_FUZZ_CHECK(err.code == MU_EINVAL && err.msg[0] != '\0');
    }
  } else if (msg->descriptor == &muster__v1__submit_job_request__descriptor) {
    const Muster__V1__SubmitJobRequest *r = (const Muster__V1__SubmitJobRequest *)msg;
    if (r->spec != NULL) mu_fuzz_jobspec_submit(mu_jobspec_copy(r->spec));
  } else if (msg->descriptor == &muster__v1__run_adhoc_request__descriptor) {
    Muster__V1__JobSpec *spec = NULL;
    int rc = mu_jobspec_adhoc((const Muster__V1__RunAdhocRequest *)msg, &spec, &err);
    if (rc == 0) mu_fuzz_jobspec_submit(spec);
    else MU_FUZZ_CHECK(rc == MU_EINVAL && err.msg[0] != '\0' && spec == NULL);
  } else if (msg->descriptor == &muster__v1__list_agents_request__descriptor) {
    mu_selector *sel = NULL;
    if (mu_selector_parse(((const Muster__V1__ListAgentsRequest *)msg)->selector, &sel, &err) == 0)
      mu_selector_free(sel);
  } else if (msg->descriptor == &muster__v1__upload_bundle_request__descriptor) {
    const Muster__V1__UploadBundleRequest *r = (const Muster__V1__UploadBundleRequest *)msg;
    if (mu_bundle_digest_check(r->digest, &err) == 0) MU_FUZZ_CHECK(strlen(r->digest) == 71);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const ProtobufCMessageDescriptor *desc = types[data[0] % N_TYPES];
  ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
  if (msg == NULL) return 0;
  mu_err err = {0};
  if (mu_pbjson_proto3_check(msg, &err) != 0) { /* refused right after unpacking (lib/rpc/pb.c,
                                                 * gateway.c) */
    MU_FUZZ_CHECK(err.code == MU_EINVAL && err.msg[0] != '\0');
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
  }
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(len ? len : 1);
  MU_FUZZ_CHECK(buf != NULL && protobuf_c_message_pack(msg, buf) == len);
  ProtobufCMessage *again = protobuf_c_message_unpack(desc, NULL, len, buf);
  MU_FUZZ_CHECK(again != NULL);
  MU_FUZZ_CHECK(protobuf_c_message_get_packed_size(again) == len);
  protobuf_c_message_free_unpacked(again, NULL);
  free(buf);
  check(msg);
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}
