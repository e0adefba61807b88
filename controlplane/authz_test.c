/* The permission table and the authorization decision: every RPC in the served protos has a
 * line in the table, each role gets exactly what the roles table promises, and certificates
 * name their caller only through muster:// URIs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/authz.h"
#include "descriptor_set.h"
#include "google/protobuf/descriptor.pb-c.h"

static void every_served_method_is_in_the_table(void **state) {
  (void)state;
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(NULL, mu_descriptor_set_len, mu_descriptor_set);
  assert_non_null(set);
  size_t methods = 0;
  for (size_t f = 0; f < set->n_file; f++) {
    const Google__Protobuf__FileDescriptorProto *file = set->file[f];
    for (size_t s = 0; s < file->n_service; s++) {
      for (size_t m = 0; m < file->service[s]->n_method; m++) {
        char path[400];
        snprintf(path, sizeof path, "/%s.%s/%s", file->package, file->service[s]->name,
                 file->service[s]->method[m]->name);
        if (mu_authz_method_perm(path) == 0) fail_msg("%s has no line in authz_table.c", path);
        methods++;
      }
    }
  }
  assert_true(methods >= 15);
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  assert_int_equal(mu_authz_method_perm("/muster.v1.Admin/NoSuchMethod"), 0);
  assert_int_equal(mu_authz_method_perm(""), 0);
}

static int verdict(mu_caller_kind kind, mu_access role, const char *method, int insecure) {
  mu_caller c = {.kind = kind, .role = role};
  snprintf(c.name, sizeof c.name, "x");
  char msg[300];
  return mu_authz_judge(&c, mu_authz_method_perm(method), method, insecure, msg, sizeof msg);
}

static void roles_get_what_the_table_promises(void **state) {
  (void)state;
  const char *read = "/muster.v1.Admin/ListAgents", *run = "/muster.v1.Admin/RunAdhoc",
             *admin = "/muster.v1.Admin/UploadBundle", *agent = "/muster.v1.AgentGateway/Connect",
             *health = "/grpc.health.v1.Health/Check",
             *refl = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
  /* viewer < operator < admin */
  assert_int_equal(verdict(MU_CALLER_ADMIN_CERT, MU_ACCESS_VIEWER, read, 0), 0);
  assert_int_equal(verdict(MU_CALLER_ADMIN_CERT, MU_ACCESS_VIEWER, run, 0), 7);
  assert_int_equal(verdict(MU_CALLER_TOKEN, MU_ACCESS_OPERATOR, run, 0), 0);
  assert_int_equal(verdict(MU_CALLER_TOKEN, MU_ACCESS_OPERATOR, admin, 0), 7);
  assert_int_equal(verdict(MU_CALLER_ADMIN_CERT, MU_ACCESS_ADMIN, admin, 0), 0);
  /* certificate kinds stay in their lane */
  assert_int_equal(verdict(MU_CALLER_AGENT, MU_ACCESS_NONE, read, 0), 7);
  assert_int_equal(verdict(MU_CALLER_SERVER, MU_ACCESS_NONE, read, 0), 7);
  assert_int_equal(verdict(MU_CALLER_AGENT, MU_ACCESS_NONE, agent, 0), 0);
  assert_int_equal(verdict(MU_CALLER_ADMIN_CERT, MU_ACCESS_ADMIN, agent, 0), 7);
  assert_int_equal(verdict(MU_CALLER_TOKEN, MU_ACCESS_ADMIN, agent, 0), 7);
  /* health is open, reflection needs any proven identity */
  assert_int_equal(verdict(MU_CALLER_ANONYMOUS, MU_ACCESS_NONE, health, 0), 0);
  assert_int_equal(verdict(MU_CALLER_ANONYMOUS, MU_ACCESS_NONE, refl, 0), 16);
  assert_int_equal(verdict(MU_CALLER_AGENT, MU_ACCESS_NONE, refl, 0), 0);
  assert_int_equal(verdict(MU_CALLER_ANONYMOUS, MU_ACCESS_NONE, read, 0), 16);
  /* --insecure: the anonymous caller is an admin and may be an agent */
  assert_int_equal(verdict(MU_CALLER_ANONYMOUS, MU_ACCESS_ADMIN, admin, 1), 0);
  assert_int_equal(verdict(MU_CALLER_ANONYMOUS, MU_ACCESS_ADMIN, agent, 1), 0);
}

static int from_uris(mu_caller *c, const char *a, const char *b) {
  mu_rpc_peer p = {.tls = 1, .verified = 1};
  snprintf(p.common_name, sizeof p.common_name, "cn");
  if (a) snprintf(p.uris[p.n_uris++], sizeof p.uris[0], "%s", a);
  if (b) snprintf(p.uris[p.n_uris++], sizeof p.uris[0], "%s", b);
  memset(c, 0, sizeof *c);
  char msg[300];
  return mu_authz_caller_from_cert(&p, c, msg, sizeof msg);
}

static void certificates_name_callers_by_uri(void **state) {
  (void)state;
  mu_caller c;
  assert_int_equal(from_uris(&c, "muster://agent/web-1", NULL), 0);
  assert_int_equal(c.kind, MU_CALLER_AGENT);
  assert_string_equal(c.name, "web-1");
  assert_int_equal(from_uris(&c, "muster://role/operator", "muster://admin/alice"), 0);
  assert_int_equal(c.kind, MU_CALLER_ADMIN_CERT);
  assert_int_equal(c.role, MU_ACCESS_OPERATOR);
  assert_int_equal(from_uris(&c, "muster://admin/bob", NULL), 0);
  assert_int_equal(c.role, MU_ACCESS_VIEWER); /* no role URI: the least */
  assert_int_equal(from_uris(&c, "muster://admin/eve", "muster://role/root"), 7);
  assert_int_equal(from_uris(&c, "https://example/agent/x", NULL), 7);
  assert_int_equal(from_uris(&c, "muster://agent/", NULL), 7);
  assert_int_equal(from_uris(&c, NULL, NULL), 7);
  char buf[200];
  assert_string_equal(mu_caller_describe(&(mu_caller){.kind = MU_CALLER_TOKEN, .role = MU_ACCESS_VIEWER, .name = "ci"},
                                         buf, sizeof buf),
                      "token ci (viewer)");
}

static void bearer_tokens_from_metadata(void **state) {
  (void)state;
  mu_rpc_metadata md = {0};
  assert_null(mu_authz_bearer_token(&md));
  mu_rpc_metadata_add(&md, "authorization", "Bearer  mst_abc_def");
  assert_string_equal(mu_authz_bearer_token(&md), "mst_abc_def");
  mu_rpc_metadata md2 = {0};
  mu_rpc_metadata_add(&md2, "authorization", "Basic dXNlcjpwYXNz");
  assert_string_equal(mu_authz_bearer_token(&md2), "");
  assert_int_equal(mu_access_parse("operator"), MU_ACCESS_OPERATOR);
  assert_int_equal(mu_access_parse("root"), MU_ACCESS_NONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_served_method_is_in_the_table),
      cmocka_unit_test(roles_get_what_the_table_promises),
      cmocka_unit_test(certificates_name_callers_by_uri),
      cmocka_unit_test(bearer_tokens_from_metadata),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
