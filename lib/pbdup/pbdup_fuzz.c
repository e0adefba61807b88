/* Fuzzes mu_pb_dup on whatever protobuf-c unpacks from arbitrary bytes (a JobSpec: nested and
 * repeated messages, maps, oneofs; an Assign: bytes fields; unknown fields in both). Property:
 * the copy packs to exactly the original's bytes, and is whole after the original is freed
 * (ASan catches a shared pointer, a leak or a double free). */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/pbdup/pbdup.h"
#include "muster/v1/agent.pb-c.h"
#include "muster/v1/job.pb-c.h"

static void copy_checks(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size) {
  ProtobufCMessage *orig = protobuf_c_message_unpack(desc, NULL, size, data);
  if (orig == NULL) return;
  ProtobufCMessage *copy = mu_pb_dup(orig);
  MU_FUZZ_CHECK(copy != NULL);
  size_t n = protobuf_c_message_get_packed_size(orig);
  uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
  MU_FUZZ_CHECK(a != NULL && b != NULL);
  protobuf_c_message_pack(orig, a);
  protobuf_c_message_free_unpacked(orig, NULL);
  MU_FUZZ_CHECK(protobuf_c_message_get_packed_size(copy) == n);
  protobuf_c_message_pack(copy, b);
  MU_FUZZ_CHECK(memcmp(a, b, n) == 0);
  protobuf_c_message_free_unpacked(copy, NULL);
  free(a);
  free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  copy_checks(&muster__v1__job_spec__descriptor, data, size);
  copy_checks(&muster__v1__assign__descriptor, data, size);
  return 0;
}
