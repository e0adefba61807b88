/* Tests for lib/reflect against the real embedded descriptor set (//protos:descriptor_set):
 * list services, symbol lookups of every kind, files by name with their transitive
 * dependencies, extensions on a hand-built set, not-found answers, and garbage input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "descriptor_set.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "lib/reflect/reflect.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

static int setup(void **state) {
  mu_reflect_index *idx = NULL;
  mu_err err = {0};
  if (mu_reflect_index_new(mu_descriptor_set, mu_descriptor_set_len, &idx, &err) != 0) {
    return -1;
  }
  *state = idx;
  return 0;
}

static int teardown(void **state) {
  mu_reflect_index_free(*state);
  return 0;
}

/* Packs rq, runs the handler, checks the echo fields, returns the unpacked response. */
static resp_t *ask(const mu_reflect_index *idx, req_t *rq) {
  size_t len = grpc__reflection__v1__server_reflection_request__get_packed_size(rq);
  uint8_t *in = malloc(len + 1);
  assert_non_null(in);
  grpc__reflection__v1__server_reflection_request__pack(rq, in);
  uint8_t *out = NULL;
  size_t out_len = 0;
  mu_err err = {0};
  assert_int_equal(mu_reflect_handle(idx, in, len, &out, &out_len, &err), 0);
  resp_t *r = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
  assert_non_null(r);
  assert_string_equal(r->valid_host, rq->host);
  assert_non_null(r->original_request);
  size_t echo_len = grpc__reflection__v1__server_reflection_request__get_packed_size(r->original_request);
  uint8_t *echo = malloc(echo_len + 1);
  assert_non_null(echo);
  grpc__reflection__v1__server_reflection_request__pack(r->original_request, echo);
  assert_int_equal(echo_len, len);
  assert_memory_equal(echo, in, len);
  free(echo);
  free(in);
  free(out);
  return r;
}

static resp_t *ask_symbol(const mu_reflect_index *idx, const char *sym) {
  req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  rq.host = "localhost:7070";
  rq.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  rq.file_containing_symbol = (char *)sym;
  return ask(idx, &rq);
}

static resp_t *ask_file(const mu_reflect_index *idx, const char *name) {
  req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  rq.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  rq.file_by_filename = (char *)name;
  return ask(idx, &rq);
}

/* Asserts r is a file answer carrying exactly `want` (NULL-terminated), in that order. */
static void assert_files(resp_t *r, const char *const *want) {
  assert_int_equal(r->message_response_case,
                   GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  size_t n = 0;
  while (want[n] != NULL) {
    n++;
  }
  Grpc__Reflection__V1__FileDescriptorResponse *fr = r->file_descriptor_response;
  assert_int_equal(fr->n_file_descriptor_proto, n);
  for (size_t i = 0; i < n; i++) {
    Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(
        NULL, fr->file_descriptor_proto[i].len, fr->file_descriptor_proto[i].data);
    assert_non_null(fd);
    assert_string_equal(fd->name, want[i]);
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  }
}

static void assert_not_found(resp_t *r, const char *msg) {
  assert_int_equal(r->message_response_case,
                   GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  assert_int_equal(r->error_response->error_code, 5);
  assert_string_equal(r->error_response->error_message, msg);
}

static void test_list_services(void **state) {
  mu_reflect_index *idx = *state;
  req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  rq.host = "h";
  rq.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  rq.list_services = "*";
  resp_t *r = ask(idx, &rq);
  assert_int_equal(r->message_response_case,
                   GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
  const char *want[] = {"muster.v1.AgentGateway",
                        "muster.v1.Admin",
                        "grpc.health.v1.Health",
                        "grpc.reflection.v1alpha.ServerReflection",
                        "grpc.reflection.v1.ServerReflection",
                        "muster.v1.Tokens",
                        "muster.v1.Secrets",
                        "muster.v1.Audit",
                        "muster.v1.Schedules",
                        "muster.v1.Templates",
                        "muster.v1.ImagePolicies",
                        "muster.v1.PluginConfigs",
                        "muster.v1.Queues"};
  const size_t n_want = sizeof want / sizeof want[0];
  assert_int_equal(r->list_services_response->n_service, n_want);
  for (size_t i = 0; i < n_want; i++) {
    bool found = false;
    for (size_t j = 0; j < n_want; j++) {
      found = found || strcmp(r->list_services_response->service[j]->name, want[i]) == 0;
    }
    assert_true(found);
  }
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  const char *const mine[] = {"muster.v1.Admin", "grpc.health.v1.Health"};
  assert_int_equal(mu_reflect_set_services(idx, mine, 2), 0);
  r = ask(idx, &rq);
  assert_int_equal(r->list_services_response->n_service, 2);
  assert_string_equal(r->list_services_response->service[0]->name, "muster.v1.Admin");
  assert_string_equal(r->list_services_response->service[1]->name, "grpc.health.v1.Health");
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_symbols(void **state) {
  mu_reflect_index *idx = *state;
  static const char *const admin[] = {"muster/v1/admin.proto", "muster/v1/task.proto", "muster/v1/job.proto",
                                      "muster/v1/agent.proto", NULL};
  static const char *const job[] = {"muster/v1/job.proto", "muster/v1/task.proto", NULL};
  static const char *const task[] = {"muster/v1/task.proto", NULL};
  static const char *const agent[] = {"muster/v1/agent.proto", "muster/v1/task.proto", "muster/v1/job.proto", NULL};
  static const char *const health[] = {"grpc/health/v1/health.proto", NULL};
  struct {
    const char *sym;
    const char *const *files;
  } cases[] = {
      {"muster.v1.Admin", admin},              /* service */
      {"muster.v1.Admin.SubmitJob", admin},    /* method */
      {".muster.v1.Admin", admin},             /* leading dot tolerated */
      {"muster.v1.JobSpec", job},              /* message */
      {"muster.v1.JobSpec.tasks", job},        /* field */
      {"muster.v1.TaskSpec.EnvEntry", task},   /* nested (map entry) message */
      {"muster.v1.TaskSpec.kind", task},       /* oneof */
      {"muster.v1.TaskState", task},           /* enum */
      {"muster.v1.PENDING", task},             /* enum value, protobuf scoping */
      {"muster.v1.TaskState.PENDING", task},   /* enum value, under its enum */
      {"muster.v1.OutputChunk.Stream", agent}, /* nested enum */
      {"muster.v1.OutputChunk.STDERR", agent}, /* nested enum value */
      {"grpc.health.v1.Health.Check", health},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    resp_t *r = ask_symbol(idx, cases[i].sym);
    assert_files(r, cases[i].files);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  }
}

static void test_by_filename(void **state) {
  mu_reflect_index *idx = *state;
  static const char *const agent[] = {"muster/v1/agent.proto", "muster/v1/task.proto", "muster/v1/job.proto", NULL};
  static const char *const refl[] = {"grpc/reflection/v1/reflection.proto", NULL};
  resp_t *r = ask_file(idx, "muster/v1/agent.proto");
  assert_files(r, agent);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  r = ask_file(idx, "grpc/reflection/v1/reflection.proto");
  assert_files(r, refl);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_not_found(void **state) {
  mu_reflect_index *idx = *state;
  resp_t *r = ask_symbol(idx, "muster.v1.Nope");
  assert_not_found(r, "symbol not found: muster.v1.Nope");
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  r = ask_symbol(idx, "muster.v1"); /* a package is not a symbol */
  assert_not_found(r, "symbol not found: muster.v1");
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  r = ask_file(idx, "nope.proto");
  assert_not_found(r, "file not found: nope.proto");
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  Grpc__Reflection__V1__ExtensionRequest x = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  x.containing_type = "muster.v1.JobSpec";
  x.extension_number = 100;
  rq.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  rq.file_containing_extension = &x;
  r = ask(idx, &rq);
  assert_not_found(r, "extension not found: muster.v1.JobSpec 100");
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  /* A known message with no extensions: an empty list, not an error. */
  rq.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  rq.all_extension_numbers_of_type = "muster.v1.JobSpec";
  r = ask(idx, &rq);
  assert_int_equal(r->message_response_case,
                   GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE);
  assert_string_equal(r->all_extension_numbers_response->base_type_name, "muster.v1.JobSpec");
  assert_int_equal(r->all_extension_numbers_response->n_extension_number, 0);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  rq.all_extension_numbers_of_type = "muster.v1.TaskState"; /* an enum is not a message */
  r = ask(idx, &rq);
  assert_not_found(r, "type not found: muster.v1.TaskState");
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  /* No request kind at all: UNIMPLEMENTED, as grpc's own server answers. */
  req_t empty = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  r = ask(idx, &empty);
  assert_int_equal(r->error_response->error_code, 12);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_garbage(void **state) {
  mu_reflect_index *idx = *state;
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x22, 0x99};
  uint8_t *out = (uint8_t *)0x1;
  size_t out_len = 7;
  mu_err err = {0};
  assert_int_equal(mu_reflect_handle(idx, junk, sizeof(junk), &out, &out_len, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "not a valid ServerReflectionRequest"));
  assert_ptr_equal(out, (uint8_t *)0x1);
  assert_int_equal(out_len, 7);

  mu_reflect_index *bad = NULL;
  assert_int_equal(mu_reflect_index_new(junk, sizeof(junk), &bad, &err), MU_EINVAL);
  assert_null(bad);
  assert_non_null(strstr(err.msg, "descriptor set"));
}

/* Our protos define no extensions, so check that path on a small hand-built set:
 * ext.proto (package t) with message Base and `extend Base { string tag = 100; }` inside
 * message Holder, importing base.proto's nothing. */
static void test_extensions(void **state) {
  (void)state;
  Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
  Google__Protobuf__DescriptorProto base = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
  Google__Protobuf__DescriptorProto holder = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
  Google__Protobuf__FieldDescriptorProto ext1 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
  Google__Protobuf__FieldDescriptorProto ext2 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
  Google__Protobuf__DescriptorProto *msgs[] = {&base, &holder};
  Google__Protobuf__FieldDescriptorProto *top_exts[] = {&ext1};
  Google__Protobuf__FieldDescriptorProto *nested_exts[] = {&ext2};
  f.name = "ext.proto";
  f.package = "t";
  base.name = "Base";
  holder.name = "Holder";
  ext1.name = "top";
  ext1.has_number = 1;
  ext1.number = 100;
  ext1.extendee = ".t.Base";
  ext2.name = "tag";
  ext2.has_number = 1;
  ext2.number = 101;
  ext2.extendee = ".t.Base";
  holder.n_extension = 1;
  holder.extension = nested_exts;
  f.n_message_type = 2;
  f.message_type = msgs;
  f.n_extension = 1;
  f.extension = top_exts;
  Google__Protobuf__FileDescriptorProto *files[] = {&f};
  Google__Protobuf__FileDescriptorSet set = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_SET__INIT;
  set.n_file = 1;
  set.file = files;
  size_t len = google__protobuf__file_descriptor_set__get_packed_size(&set);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  google__protobuf__file_descriptor_set__pack(&set, buf);
  mu_reflect_index *idx = NULL;
  mu_err err = {0};
  assert_int_equal(mu_reflect_index_new(buf, len, &idx, &err), 0);
  free(buf); /* the index keeps its own copy */

  req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  Grpc__Reflection__V1__ExtensionRequest x = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  x.containing_type = "t.Base";
  x.extension_number = 101;
  rq.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  rq.file_containing_extension = &x;
  static const char *const want[] = {"ext.proto", NULL};
  resp_t *r = ask(idx, &rq);
  assert_files(r, want);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  rq.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  rq.all_extension_numbers_of_type = "t.Base";
  r = ask(idx, &rq);
  assert_int_equal(r->all_extension_numbers_response->n_extension_number, 2);
  assert_int_equal(r->all_extension_numbers_response->extension_number[0], 100);
  assert_int_equal(r->all_extension_numbers_response->extension_number[1], 101);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  r = ask_symbol(idx, "t.Holder.tag");
  assert_files(r, want);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  mu_reflect_index_free(idx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_symbols), cmocka_unit_test(test_by_filename), cmocka_unit_test(test_not_found),
      cmocka_unit_test(test_garbage), cmocka_unit_test(test_extensions),  cmocka_unit_test(test_list_services),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
