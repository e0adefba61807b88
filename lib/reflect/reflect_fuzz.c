/* Fuzzes gRPC server reflection requests as any client on the network sends them (grpcurl
 * list/describe), answered from musterd's own descriptor set by mu_reflect_handle. Properties:
 * an answer is a ServerReflectionResponse (readable, as a client reads it) that echoes the
 * host, and a refusal is a request that does not parse or breaks proto3. */
#include <stdlib.h>
#include <string.h>

#include "descriptor_set.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "lib/fuzz/fuzz_util.h"
#include "lib/pbjson/pbjson.h"
#include "lib/reflect/reflect.h"

static mu_reflect_index *g_index;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  mu_err err = {0};
  int rc = mu_reflect_index_new(mu_descriptor_set, mu_descriptor_set_len, &g_index, &err);
  MU_FUZZ_CHECK(rc == 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  mu_err err = {0};
  int rc = mu_reflect_handle(g_index, data, size, &resp, &resp_len, &err);
  Grpc__Reflection__V1__ServerReflectionRequest *req =
      grpc__reflection__v1__server_reflection_request__unpack(NULL, size, data);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc == MU_EINVAL && err.msg[0] != '\0');
    MU_FUZZ_CHECK(req == NULL || mu_pbjson_proto3_check(&req->base, NULL) != 0);
    if (req != NULL) protobuf_c_message_free_unpacked(&req->base, NULL);
    return 0;
  }
  MU_FUZZ_CHECK(req != NULL);
  Grpc__Reflection__V1__ServerReflectionResponse *r =
      grpc__reflection__v1__server_reflection_response__unpack(NULL, resp_len, resp);
  MU_FUZZ_CHECK(r != NULL);
  MU_FUZZ_CHECK(strcmp(r->valid_host, req->host) == 0);
  MU_FUZZ_CHECK(r->original_request != NULL);
  MU_FUZZ_CHECK(r->message_response_case !=
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  free(resp);
  return 0;
}
