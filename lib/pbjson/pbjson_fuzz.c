/* Fuzzes the proto3 JSON mapping both ways, on the message types that cross it for real: job
 * files and grpcurl requests (JSON in), `muster -o json` and the etcd state (JSON out and back
 * in after a failover). Byte 0 picks the type (low 4 bits), the direction (0x10: the rest is a
 * binary protobuf as an agent or client sends it; else JSON) and the printing flags (0xe0).
 * Properties: whatever decodes and prints must read back, and print the same again; a message
 * read from JSON packs to the same bytes after that round trip; a message that passes
 * mu_pbjson_proto3_check prints and survives a pack/unpack copy. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/pbjson/pbjson.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/agent.pb-c.h"
#include "muster/v1/job.pb-c.h"
#include "muster/v1/task.pb-c.h"

static const ProtobufCMessageDescriptor *const types[16] = {
    &muster__v1__job_spec__descriptor,           /* job files, etcd job records */
    &muster__v1__agent_message__descriptor,      /* agent stream; etcd agent records */
    &muster__v1__control_message__descriptor,    /* control plane to agent */
    &muster__v1__task_metrics__descriptor,       /* etcd task records */
    &muster__v1__submit_job_request__descriptor, /* admin requests (grpcurl -d) */
    &muster__v1__run_adhoc_request__descriptor,
    &muster__v1__list_agents_request__descriptor,
    &muster__v1__upload_bundle_request__descriptor,
    &muster__v1__task_logs_request__descriptor,
    &muster__v1__job__descriptor, /* admin replies the CLI prints */
    &muster__v1__job_event__descriptor,
    &muster__v1__list_agents_response__descriptor,
    &muster__v1__cluster__descriptor,
    &muster__v1__log_chunk__descriptor,
    &muster__v1__list_bundles_response__descriptor,
    &muster__v1__task_spec__descriptor,
};

static char *print(const ProtobufCMessage *msg, int flags) {
  json_t *j = NULL;
  mu_err err = {0};
  if (mu_pbjson_to_json(msg, flags, &j, &err) != 0) {
    MU_FUZZ_CHECK(err.code == MU_EINVAL && err.msg[0] != '\0');
    return NULL;
  }
  char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  MU_FUZZ_CHECK(text != NULL);
  json_decref(j);
  return text;
}

static ProtobufCMessage *read_back(const ProtobufCMessageDescriptor *desc, const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  MU_FUZZ_CHECK(j != NULL); /* jansson reads what it wrote */
  ProtobufCMessage *msg = NULL;
  mu_err err = {0};
  int rc = mu_pbjson_from_json(desc, j, &msg, &err);
  if (rc != 0) fprintf(stderr, "read back %s: %s\n", text, err.msg);
  MU_FUZZ_CHECK(rc == 0);
  json_decref(j);
  return msg;
}

static uint8_t *packed(const ProtobufCMessage *msg, size_t *ret_len) {
  *ret_len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(*ret_len ? *ret_len : 1);
  MU_FUZZ_CHECK(buf != NULL);
  MU_FUZZ_CHECK(protobuf_c_message_pack(msg, buf) == *ret_len);
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const ProtobufCMessageDescriptor *desc = types[data[0] & 0x0f];
  int binary = (data[0] & 0x10) != 0;
  int flags = (data[0] >> 5) & (MU_PBJSON_EMIT_DEFAULTS | MU_PBJSON_ORIGINAL_NAMES | MU_PBJSON_ENUMS_AS_INTS);
  data++;
  size--;

  ProtobufCMessage *first = NULL;
  if (binary) {
    first = protobuf_c_message_unpack(desc, NULL, size, data);
  } else {
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, 0, &je);
    mu_err err = {0};
    if (j != NULL && mu_pbjson_from_json(desc, j, &first, &err) != 0) {
      MU_FUZZ_CHECK(first == NULL && err.msg[0] != '\0');
      MU_FUZZ_CHECK(err.code == MU_EINVAL || err.code == MU_ENOMEM);
    }
    json_decref(j);
  }
  if (first == NULL) return 0;

  char *text1 = print(first, flags);
  /* Only an invalid UTF-8 string may stop printing (JSON input has none), and the check
   * servers run on what they unpack says exactly when. */
  MU_FUZZ_CHECK(text1 != NULL || binary);
  mu_err uerr = {0};
  if (mu_pbjson_proto3_check(first, &uerr) == 0) {
    MU_FUZZ_CHECK(text1 != NULL);
    size_t len;
    uint8_t *bytes = packed(first, &len);
    ProtobufCMessage *copy = protobuf_c_message_unpack(desc, NULL, len, bytes);
    MU_FUZZ_CHECK(copy != NULL); /* the copy SubmitJob makes */
    protobuf_c_message_free_unpacked(copy, NULL);
    free(bytes);
  } else {
    MU_FUZZ_CHECK(binary && uerr.code == MU_EINVAL);
  }
  if (text1 != NULL) {
    ProtobufCMessage *second = read_back(desc, text1);
    char *text2 = print(second, flags);
    MU_FUZZ_CHECK(text2 != NULL);
    if (strcmp(text1, text2) != 0) fprintf(stderr, "printed:  %s\nreprinted: %s\n", text1, text2);
    MU_FUZZ_CHECK(strcmp(text1, text2) == 0);
    if (!binary) {
      /* From JSON there are no unknown fields and no repeated map keys: the same message. */
      size_t len1, len2;
      uint8_t *bytes1 = packed(first, &len1), *bytes2 = packed(second, &len2);
      MU_FUZZ_CHECK(len1 == len2 && memcmp(bytes1, bytes2, len1) == 0);
      free(bytes1);
      free(bytes2);
    }
    free(text2);
    protobuf_c_message_free_unpacked(second, NULL);
    free(text1);
  }
  protobuf_c_message_free_unpacked(first, NULL);
  return 0;
}
