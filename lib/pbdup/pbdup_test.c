/* mu_pb_dup: a copy packs to the same bytes as the original, shares no memory with it (the
 * original is freed first and the copy is still whole, under ASan), and keeps strings, bytes,
 * maps, repeated and nested messages, the active oneof member and unknown fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/pbdup/pbdup.h"
#include "muster/v1/agent.pb-c.h"
#include "muster/v1/job.pb-c.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_len) {
  *ret_len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*ret_len + 1);
  assert_non_null(buf);
  protobuf_c_message_pack(m, buf);
  return buf;
}

static void assert_same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t la, lb;
  uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(pa, pb, la);
  free(pa);
  free(pb);
}

/* A message built on the stack over borrowed strings, as RunAdhoc builds its job. */
static void stack_built_job(void **state) {
  (void)state;
  Muster__V1__JobSpec spec = MUSTER__V1__JOB_SPEC__INIT;
  Muster__V1__TaskSpec task = MUSTER__V1__TASK_SPEC__INIT;
  Muster__V1__ShellTask shell = MUSTER__V1__SHELL_TASK__INIT;
  Muster__V1__Target target = MUSTER__V1__TARGET__INIT;
  Muster__V1__TaskSpec__EnvEntry env = MUSTER__V1__TASK_SPEC__ENV_ENTRY__INIT;
  Muster__V1__TaskSpec__EnvEntry *envs[1] = {&env};
  Muster__V1__TaskSpec *tasks[1] = {&task};
  char *cmd[2] = {"ls", "-l"};
  char name[] = "run: ls";
  spec.name = name;
  target.any = "web-*";
  spec.target = &target;
  task.name = "run";
  task.type = "shell";
  task.timeout = "30s";
  task.kind_case = MUSTER__V1__TASK_SPEC__KIND_SHELL;
  task.shell = &shell;
  shell.command = cmd;
  shell.n_command = 2;
  env.key = "A";
  env.value = "1";
  task.env = envs;
  task.n_env = 1;
  spec.tasks = tasks;
  spec.n_tasks = 1;
  Muster__V1__JobSpec *copy = (Muster__V1__JobSpec *)mu_pb_dup(&spec.base);
  assert_non_null(copy);
  assert_same_wire(&spec.base, &copy->base);
  memset(name, 'x', sizeof name - 1); /* the copy owns its strings */
  assert_string_equal(copy->name, "run: ls");
  assert_ptr_not_equal(copy->tasks[0]->shell->command, cmd);
  assert_string_equal(copy->tasks[0]->shell->command[1], "-l");
  assert_int_equal(copy->tasks[0]->kind_case, MUSTER__V1__TASK_SPEC__KIND_SHELL);
  assert_string_equal(copy->tasks[0]->env[0]->value, "1");
  assert_string_equal(copy->rollout == NULL ? "" : "rollout", ""); /* absent stays absent */
  protobuf_c_message_free_unpacked(&copy->base, NULL);
}

/* An unpacked message (bytes, a map, unknown fields), freed before its copy is used. */
static void unpacked_assign(void **state) {
  (void)state;
  Muster__V1__Assign as = MUSTER__V1__ASSIGN__INIT;
  Muster__V1__ResolvedSecret sec = MUSTER__V1__RESOLVED_SECRET__INIT;
  Muster__V1__ResolvedSecret *secs[1] = {&sec};
  Muster__V1__Assign__ParamsEntry p = MUSTER__V1__ASSIGN__PARAMS_ENTRY__INIT;
  Muster__V1__Assign__ParamsEntry *ps[1] = {&p};
  uint8_t value[4] = {0, 1, 2, 255};
  as.job_id = "job-1";
  as.attempt = 2;
  sec.name = "TOKEN";
  sec.value.data = value;
  sec.value.len = sizeof value;
  as.secrets = secs;
  as.n_secrets = 1;
  p.key = "build.version";
  p.value = "1.2.3";
  as.params = ps;
  as.n_params = 1;
  size_t len;
  uint8_t *wire = pack(&as.base, &len);
  /* a field this build does not know (number 1000, varint 7) rides along */
  uint8_t *ext = realloc(wire, len + 3);
  assert_non_null(ext);
  ext[len] = (uint8_t)(((1000 << 3) & 0x7f) | 0x80); /* tag 8000 as a varint: 0xc0 0x3e */
  ext[len + 1] = (uint8_t)((1000 << 3) >> 7);
  ext[len + 2] = 7;
  Muster__V1__Assign *orig = muster__v1__assign__unpack(NULL, len + 3, ext);
  assert_non_null(orig);
  assert_int_equal(orig->base.n_unknown_fields, 1);
  Muster__V1__Assign *copy = (Muster__V1__Assign *)mu_pb_dup(&orig->base);
  assert_non_null(copy);
  assert_same_wire(&orig->base, &copy->base);
  muster__v1__assign__free_unpacked(orig, NULL);
  free(ext);
  assert_int_equal(copy->attempt, 2);
  assert_int_equal(copy->secrets[0]->value.len, 4);
  assert_memory_equal(copy->secrets[0]->value.data, value, 4);
  assert_string_equal(copy->params[0]->value, "1.2.3");
  assert_int_equal(copy->base.n_unknown_fields, 1);
  size_t clen;
  uint8_t *cw = pack(&copy->base, &clen);
  assert_int_equal(clen, len + 3);
  free(cw);
  muster__v1__assign__free_unpacked(copy, NULL);
}

static void null_and_empty(void **state) {
  (void)state;
  assert_null(mu_pb_dup(NULL));
  Muster__V1__Assign empty = MUSTER__V1__ASSIGN__INIT;
  Muster__V1__Assign *copy = (Muster__V1__Assign *)mu_pb_dup(&empty.base);
  assert_non_null(copy);
  assert_string_equal(copy->job_id, "");
  assert_null(copy->spec);
  assert_int_equal(copy->n_secrets, 0);
  muster__v1__assign__free_unpacked(copy, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stack_built_job),
      cmocka_unit_test(unpacked_assign),
      cmocka_unit_test(null_and_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
