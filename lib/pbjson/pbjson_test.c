/* Tests for lib/pbjson on the muster protos: round trips (pack both sides and compare bytes),
 * camelCase vs snake_case input, the proto3 details (64-bit strings, enums, bytes, maps, oneof,
 * defaults), and every error path with its exact message. Runs under ASan, which also checks
 * that protobuf_c_message_free_unpacked frees what from_json built, half-built ones included. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "lib/pbjson/pbjson.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/agent.pb-c.h"
#include "muster/v1/job.pb-c.h"

/* Serialized form, so two messages compare by value. Caller frees. */
static uint8_t *packed(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len + 1);
  assert_non_null(buf);
  assert_int_equal(protobuf_c_message_pack(m, buf), *len);
  return buf;
}

static void assert_same_message(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t la = 0;
  size_t lb = 0;
  uint8_t *pa = packed(a, &la);
  uint8_t *pb = packed(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(pa, pb, la);
  free(pa);
  free(pb);
}

static ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *desc, const char *text) {
  json_error_t jerr;
  json_t *j = json_loads(text, 0, &jerr);
  assert_non_null(j);
  ProtobufCMessage *m = NULL;
  mu_err err = {0};
  int rc = mu_pbjson_from_json(desc, j, &m, &err);
  if (rc != 0) {
    fail_msg("from_json failed: %s", err.msg);
  }
  json_decref(j);
  return m;
}

static void assert_parse_error(const ProtobufCMessageDescriptor *desc, const char *text, const char *want) {
  json_error_t jerr;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
  assert_non_null(j);
  ProtobufCMessage *m = (ProtobufCMessage *)0x1;
  mu_err err = {0};
  int rc = mu_pbjson_from_json(desc, j, &m, &err);
  json_decref(j);
  assert_int_equal(rc, MU_EINVAL);
  assert_int_equal(err.code, MU_EINVAL);
  assert_string_equal(err.msg, want);
  assert_ptr_equal(m, (ProtobufCMessage *)0x1); /* ret_msg untouched on failure */
}

static char *to_text(const ProtobufCMessage *m, int flags) {
  json_t *j = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pbjson_to_json(m, flags, &j, &err), 0);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  assert_non_null(s);
  return s;
}

static const char job_json[] =
    "{\"name\":\"deploy\",\"target\":{\"selector\":\"role=web,dc=eu*\"},"
    "\"rollout\":{\"maxConcurrency\":\"10%\",\"maxErrors\":\"2\",\"batch\":3},"
    "\"tasks\":[{\"name\":\"reload\",\"type\":\"shell\",\"timeout\":\"30s\",\"retries\":2,"
    "\"backoff\":{\"initial\":\"1s\",\"multiplier\":1.5},"
    "\"env\":{\"A\":\"1\",\"B_C\":\"x y\"},\"workingDir\":\"/srv\",\"continueOnError\":true,"
    "\"secrets\":[{\"name\":\"TOKEN\",\"value\":\"s3\",\"asFile\":true}],"
    "\"shell\":{\"interpreter\":\"bash\",\"script\":\"systemctl reload nginx\","
    "\"args\":[\"-x\"]}},"
    "{\"name\":\"check\",\"type\":\"http\",\"priority\":-4,"
    "\"http\":{\"method\":\"GET\",\"url\":\"https://h/health\","
    "\"headers\":{\"Accept\":\"application/json\"},\"followRedirects\":true,"
    "\"expect\":{\"status\":[200,204],\"statusRanges\":[{\"from\":200,\"to\":299}],"
    "\"jsonEquals\":{\"$.ok\":\"true\"}},\"retryOnStatus\":[502,503]}}],"
    "\"priority\":7,\"labels\":{\"team\":\"web\",\"ticket\":\"OPS-1\"}}";

static void test_jobspec_round_trip(void **state) {
  (void)state;
  ProtobufCMessage *m = parse_ok(&muster__v1__job_spec__descriptor, job_json);
  Muster__V1__JobSpec *js = (Muster__V1__JobSpec *)m;
  assert_string_equal(js->name, "deploy");
  assert_string_equal(js->target->selector, "role=web,dc=eu*");
  assert_int_equal(js->rollout->batch, 3);
  assert_int_equal(js->n_tasks, 2);
  assert_int_equal(js->tasks[0]->kind_case, MUSTER__V1__TASK_SPEC__KIND_SHELL);
  assert_string_equal(js->tasks[0]->shell->script, "systemctl reload nginx");
  assert_int_equal(js->tasks[0]->n_env, 2);
  assert_string_equal(js->tasks[0]->env[1]->key, "B_C");
  assert_string_equal(js->tasks[0]->env[1]->value, "x y");
  assert_true(js->tasks[0]->continue_on_error);
  assert_true(js->tasks[0]->secrets[0]->as_file);
  assert_true(js->tasks[0]->backoff->multiplier == 1.5);
  assert_int_equal(js->tasks[1]->kind_case, MUSTER__V1__TASK_SPEC__KIND_HTTP);
  assert_int_equal(js->tasks[1]->priority, -4);
  assert_int_equal(js->tasks[1]->http->expect->status[1], 204);
  assert_int_equal(js->tasks[1]->http->expect->status_ranges[0]->to, 299);
  assert_int_equal(js->tasks[1]->http->n_retry_on_status, 2);
  assert_int_equal(js->n_labels, 2);

  /* Printing gives back the very same text: camelCase names, defaults left out, order kept. */
  char *text = to_text(m, 0);
  assert_string_equal(text, job_json);
  free(text);

  /* And the wire form survives JSON -> message -> JSON -> message. */
  json_t *j = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pbjson_to_json(m, 0, &j, &err), 0);
  ProtobufCMessage *m2 = NULL;
  assert_int_equal(mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, &m2, &err), 0);
  json_decref(j);
  assert_same_message(m, m2);
  protobuf_c_message_free_unpacked(m2, NULL);

  /* The result also survives a real pack/unpack, i.e. it is a well-formed message. */
  size_t len = 0;
  uint8_t *buf = packed(m, &len);
  ProtobufCMessage *m3 = protobuf_c_message_unpack(&muster__v1__job_spec__descriptor, NULL, len, buf);
  assert_non_null(m3);
  assert_same_message(m, m3);
  protobuf_c_message_free_unpacked(m3, NULL);
  free(buf);
  protobuf_c_message_free_unpacked(m, NULL);
}

static void test_snake_and_camel_agree(void **state) {
  (void)state;
  ProtobufCMessage *a = parse_ok(&muster__v1__job_spec__descriptor,
                                 "{\"rollout\":{\"max_concurrency\":\"5\",\"disconnected_wait\":\"30s\"},"
                                 "\"tasks\":[{\"working_dir\":\"/w\",\"run_as\":\"nobody\",\"continue_on_error\":true,"
                                 "\"http\":{\"body_json\":\"{}\",\"retry_on_status\":[429],\"max_body\":\"1M\","
                                 "\"extract_headers\":{\"etag\":\"ETag\"}}}]}");
  ProtobufCMessage *b = parse_ok(&muster__v1__job_spec__descriptor,
                                 "{\"rollout\":{\"maxConcurrency\":\"5\",\"disconnectedWait\":\"30s\"},"
                                 "\"tasks\":[{\"workingDir\":\"/w\",\"runAs\":\"nobody\",\"continueOnError\":true,"
                                 "\"http\":{\"bodyJson\":\"{}\",\"retryOnStatus\":[429],\"maxBody\":\"1M\","
                                 "\"extractHeaders\":{\"etag\":\"ETag\"}}}]}");
  assert_same_message(a, b);
  Muster__V1__JobSpec *js = (Muster__V1__JobSpec *)a;
  assert_string_equal(js->tasks[0]->run_as, "nobody");
  assert_string_equal(js->tasks[0]->http->extract_headers[0]->value, "ETag");

  char *text = to_text(a, MU_PBJSON_ORIGINAL_NAMES);
  assert_non_null(strstr(text, "\"max_concurrency\":\"5\""));
  assert_non_null(strstr(text, "\"retry_on_status\":[429]"));
  assert_null(strstr(text, "maxConcurrency"));
  free(text);
  protobuf_c_message_free_unpacked(a, NULL);
  protobuf_c_message_free_unpacked(b, NULL);
}

static void test_emit_defaults(void **state) {
  (void)state;
  Muster__V1__JobSpec js = MUSTER__V1__JOB_SPEC__INIT;
  char *text = to_text(&js.base, 0);
  assert_string_equal(text, "{}");
  free(text);
  text = to_text(&js.base, MU_PBJSON_EMIT_DEFAULTS);
  /* Scalars, lists and maps appear; unset messages (target, rollout) do not. */
  assert_string_equal(text,
                      "{\"name\":\"\",\"tasks\":[],\"priority\":0,\"labels\":{},\"after\":[],\"on\":\"\",\"queue\":"
                      "\"\",\"stages\":[]}");
  free(text);
  /* With EMIT_UNSET_MESSAGES every field is there, unset messages as null. */
  text = to_text(&js.base, MU_PBJSON_EMIT_DEFAULTS | MU_PBJSON_EMIT_UNSET_MESSAGES);
  assert_string_equal(text,
                      "{\"name\":\"\",\"target\":null,\"rollout\":null,\"tasks\":[],"
                      "\"priority\":0,\"labels\":{},\"after\":[],\"on\":\"\",\"queue\":\"\",\"stages\":[]}");
  free(text);

  Muster__V1__TaskSpec ts = MUSTER__V1__TASK_SPEC__INIT;
  Muster__V1__ShellTask sh = MUSTER__V1__SHELL_TASK__INIT;
  ts.kind_case = MUSTER__V1__TASK_SPEC__KIND_SHELL;
  ts.shell = &sh;
  text = to_text(&ts.base, 0);
  assert_string_equal(text, "{\"shell\":{}}"); /* a set oneof member is printed even if empty */
  free(text);
}

static void test_agents_64bit_and_enums(void **state) {
  (void)state;
  static const char in[] =
      "{\"agents\":[{\"agent_id\":\"a1\",\"state\":1,\"memoryBytes\":17179869184,"
      "\"connectedAtMs\":\"-12\",\"capacity\":{\"slots\":4,\"typeSlots\":{\"shell\":2}},"
      "\"metrics\":{\"load1\":0.5,\"load5\":\"NaN\",\"spoolDiskFreeBytes\":"
      "\"18446744073709551615\"},\"plugins\":[{\"type\":\"http\",\"abiVersion\":1}]},"
      "{\"agentId\":\"a2\",\"state\":\"AGENT_DRAINING\"}]}";
  ProtobufCMessage *m = parse_ok(&muster__v1__list_agents_response__descriptor, in);
  Muster__V1__ListAgentsResponse *r = (Muster__V1__ListAgentsResponse *)m;
  assert_int_equal(r->n_agents, 2);
  assert_int_equal(r->agents[0]->state, MUSTER__V1__AGENT_STATE__AGENT_CONNECTED);
  assert_int_equal(r->agents[1]->state, MUSTER__V1__AGENT_STATE__AGENT_DRAINING);
  assert_true(r->agents[0]->memory_bytes == 17179869184ULL);
  assert_true(r->agents[0]->connected_at_ms == -12);
  assert_true(r->agents[0]->metrics->spool_disk_free_bytes == UINT64_MAX);
  assert_true(isnan(r->agents[0]->metrics->load5));
  assert_int_equal(r->agents[0]->capacity->type_slots[0]->value, 2);

  char *text = to_text(m, 0);
  assert_string_equal(text,
                      "{\"agents\":[{\"agentId\":\"a1\",\"state\":\"AGENT_CONNECTED\","
                      "\"memoryBytes\":\"17179869184\",\"plugins\":[{\"type\":\"http\",\"abiVersion\":1}],"
                      "\"capacity\":{\"slots\":4,\"typeSlots\":{\"shell\":2}},"
                      "\"metrics\":{\"load1\":0.5,\"load5\":\"NaN\","
                      "\"spoolDiskFreeBytes\":\"18446744073709551615\"},\"connectedAtMs\":\"-12\"},"
                      "{\"agentId\":\"a2\",\"state\":\"AGENT_DRAINING\"}]}");
  free(text);
  text = to_text(m, MU_PBJSON_ENUMS_AS_INTS);
  assert_non_null(strstr(text, "\"state\":3"));
  free(text);
  /* INT64_AS_NUMBERS: numbers as numbers, but a uint64 past INT64_MAX stays a string */
  text = to_text(m, MU_PBJSON_INT64_AS_NUMBERS);
  assert_non_null(strstr(text, "\"memoryBytes\":17179869184,"));
  assert_non_null(strstr(text, "\"connectedAtMs\":-12}"));
  assert_non_null(strstr(text, "\"spoolDiskFreeBytes\":\"18446744073709551615\""));
  free(text);
  protobuf_c_message_free_unpacked(m, NULL);
}

static void test_task_event_bytes(void **state) {
  (void)state;
  uint8_t data[] = {'h', 'i', 0, 0xff, '\n'};
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  Muster__V1__OutputChunk out = MUSTER__V1__OUTPUT_CHUNK__INIT;
  out.stream = MUSTER__V1__OUTPUT_CHUNK__STREAM__STDERR;
  out.data.data = data;
  out.data.len = sizeof(data);
  ev.task_id = "h1/t";
  ev.sequence = 9007199254740993ULL; /* 2^53 + 1: exact only as a string */
  ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_OUTPUT;
  ev.output = &out;
  char *text = to_text(&ev.base, 0);
  assert_string_equal(text,
                      "{\"taskId\":\"h1/t\",\"sequence\":\"9007199254740993\","
                      "\"output\":{\"stream\":\"STDERR\",\"data\":\"aGkA/wo=\"}}");
  ProtobufCMessage *m = parse_ok(&muster__v1__task_event__descriptor, text);
  assert_same_message(&ev.base, m);
  protobuf_c_message_free_unpacked(m, NULL);
  free(text);

  /* URL-safe alphabet and missing padding are accepted too; "" is empty bytes. */
  m = parse_ok(&muster__v1__task_event__descriptor, "{\"output\":{\"data\":\"aGkA_wo\"}, \"params\":null}");
  Muster__V1__TaskEvent *e = (Muster__V1__TaskEvent *)m;
  assert_int_equal(e->event_case, MUSTER__V1__TASK_EVENT__EVENT_OUTPUT);
  assert_int_equal(e->output->data.len, sizeof(data));
  assert_memory_equal(e->output->data.data, data, sizeof(data));
  protobuf_c_message_free_unpacked(m, NULL);
  m = parse_ok(&muster__v1__task_event__descriptor, "{\"output\":{\"data\":\"_-8\"}}");
  e = (Muster__V1__TaskEvent *)m;
  assert_int_equal(e->output->data.len, 2);
  assert_int_equal(e->output->data.data[0], 0xff);
  assert_int_equal(e->output->data.data[1], 0xef);
  protobuf_c_message_free_unpacked(m, NULL);
}

static void test_print_one_line(void **state) {
  (void)state;
  Muster__V1__Progress p = MUSTER__V1__PROGRESS__INIT;
  p.percent = 0.37;
  p.message = "copying";
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_int_equal(mu_pbjson_print(&p.base, 0, f), 0);
  fclose(f);
  assert_string_equal(buf, "{\"percent\":0.37,\"message\":\"copying\"}\n");
  free(buf);
}

/* The example in docs/api-json.md parses. */
static void test_doc_example(void **state) {
  (void)state;
  static const char doc[] =
      "{\"name\":\"reload-web\",\"target\":{\"selector\":\"role=web,dc=eu*,!canary\"},\"rollout\":{"
      "\"maxConcurrency\":\"10%\",\"maxErrors\":\"2\",\"disconnectedWait\":\"30s\"},\"priority\":5,"
      "\"labels\":{\"team\":\"web\",\"ticket\":\"OPS-42\"},\"tasks\":[{\"name\":\"reload\","
      "\"timeout\":\"30s\",\"retries\":2,\"backoff\":{\"initial\":\"1s\",\"max\":\"1m\","
      "\"multiplier\":2},\"env\":{\"NGINX_CONF\":\"/etc/nginx/"
      "nginx.conf\"},\"resources\":{\"memory\":\"256M\",\"outputLimit\":\"1M\"},\"shell\":{"
      "\"interpreter\":\"bash\",\"script\":\"nginx -t && systemctl reload "
      "nginx\"}},{\"name\":\"check\",\"continueOnError\":true,\"http\":{\"method\":\"GET\",\"url\":"
      "\"http://localhost/"
      "healthz\",\"expect\":{\"status\":[200],\"bodyContains\":\"ok\"},\"retryOnStatus\":[502,503],"
      "\"maxRetries\":3}}]}";
  ProtobufCMessage *m = parse_ok(&muster__v1__job_spec__descriptor, doc);
  Muster__V1__JobSpec *js = (Muster__V1__JobSpec *)m;
  assert_int_equal(js->n_tasks, 2);
  assert_int_equal(js->tasks[1]->kind_case, MUSTER__V1__TASK_SPEC__KIND_HTTP);
  assert_true(js->tasks[0]->backoff->multiplier == 2.0);
  protobuf_c_message_free_unpacked(m, NULL);
}

static void test_errors(void **state) {
  (void)state;
  const ProtobufCMessageDescriptor *job = &muster__v1__job_spec__descriptor;
  assert_parse_error(job, "{\"tasks\":[{},{\"http\":{\"method\":[]}}]}",
                     "tasks[1].http.method: expected a string, got an array");
  assert_parse_error(job, "{\"target\":{\"bogus\":1}}", "target.bogus: unknown field");
  assert_parse_error(job, "{\"bogus\":1}", "bogus: unknown field");
  assert_parse_error(job, "{\"tasks\":[{\"shell\":{},\"http\":{}}]}",
                     "tasks[0]: \"shell\" and \"http\" are members of the same oneof; "
                     "set only one");
  assert_parse_error(job, "{\"tasks\":[{\"working_dir\":\"a\",\"workingDir\":\"b\"}]}",
                     "tasks[0].workingDir: field given twice (as \"working_dir\" and "
                     "\"workingDir\")");
  assert_parse_error(job, "{\"priority\":\"x\"}", "priority: expected an integer (int32), got \"x\"");
  assert_parse_error(job, "{\"priority\":3000000000}", "priority: value 3000000000 is out of range for int32");
  assert_parse_error(job, "{\"priority\":1.5}", "priority: 1.5 is not a valid int32");
  assert_parse_error(job, "{\"priority\":{}}", "priority: expected an integer, got an object");
  assert_parse_error(job, "{\"labels\":[]}", "labels: expected an object (a map), got an array");
  assert_parse_error(job, "{\"labels\":{\"a\":1}}", "labels[\"a\"]: expected a string, got an integer");
  assert_parse_error(job, "{\"labels\":{\"a\":null}}", "labels[\"a\"]: null is not allowed as a map value");
  assert_parse_error(job, "{\"tasks\":{}}", "tasks: expected an array, got an object");
  assert_parse_error(job, "{\"tasks\":[null]}", "tasks[0]: null is not allowed in a list");
  assert_parse_error(job, "{\"tasks\":[{\"name\":\"a\"},7]}",
                     "tasks[1]: expected an object (muster.v1.TaskSpec), got an integer");
  assert_parse_error(job, "{\"target\":{\"all\":\"yes\"}}", "target.all: expected true or false, got a string");
  assert_parse_error(job, "{\"tasks\":[{\"retries\":-1}]}", "tasks[0].retries: value -1 is out of range for uint32");
  assert_parse_error(job, "{\"tasks\":[{\"backoff\":{\"multiplier\":true}}]}",
                     "tasks[0].backoff.multiplier: expected a number, got a boolean");
  assert_parse_error(job, "{\"tasks\":[{\"http\":{\"expect\":{\"status\":[200,\"x\"]}}}]}",
                     "tasks[0].http.expect.status[1]: expected an integer (uint32), got \"x\"");
  assert_parse_error(job, "{\"tasks\":[{\"env\":{\"A\":\"1\",\"B\":false}}]}",
                     "tasks[0].env[\"B\"]: expected a string, got a boolean");
  assert_parse_error(job, "[]",
                     "muster.v1.JobSpec: expected an object (muster.v1.JobSpec), "
                     "got an array");
  assert_parse_error(job, "{\"target\":\"all\"}", "target: expected an object (muster.v1.Target), got a string");

  const ProtobufCMessageDescriptor *ev = &muster__v1__task_event__descriptor;
  assert_parse_error(ev, "{\"output\":{\"data\":\"!!!\"}}", "output.data: invalid base64");
  assert_parse_error(ev, "{\"output\":{\"data\":7}}", "output.data: expected a base64 string, got an integer");
  assert_parse_error(ev, "{\"state\":{\"state\":\"NOPE\"}}",
                     "state.state: unknown value \"NOPE\" for enum muster.v1.TaskState");
  assert_parse_error(ev, "{\"state\":{\"state\":[]}}",
                     "state.state: expected an enum name or number (muster.v1.TaskState), "
                     "got an array");
  assert_parse_error(ev, "{\"sequence\":\"12a\"}", "sequence: expected an integer (uint64), got \"12a\"");
  assert_parse_error(ev, "{\"atMs\":\"99999999999999999999\"}",
                     "atMs: expected an integer (int64), got \"99999999999999999999\"");
  assert_parse_error(ev, "{\"progress\":{\"percent\":\"lots\"}}",
                     "progress.percent: expected a number (double), got \"lots\"");
  assert_parse_error(ev, "{\"progress\":{},\"params\":{\"params\":{}}}",
                     "muster.v1.TaskEvent: \"progress\" and \"params\" are members of the "
                     "same oneof; set only one");

  const ProtobufCMessageDescriptor *la = &muster__v1__list_agents_response__descriptor;
  assert_parse_error(la, "{\"agents\":[{\"memoryBytes\":\"-5\"}]}",
                     "agents[0].memoryBytes: expected an integer (uint64), got \"-5\"");
  assert_parse_error(la, "{\"agents\":[{\"capacity\":{\"typeSlots\":{\"shell\":\"x\"}}}]}",
                     "agents[0].capacity.typeSlots[\"shell\"]: expected an integer (uint32), "
                     "got \"x\"");
  assert_parse_error(la, "{\"agents\":[{\"state\":\"AGENT_GONE\"}]}",
                     "agents[0].state: unknown value \"AGENT_GONE\" for enum "
                     "muster.v1.AgentState");
}

/* What a peer's protobuf-c may send but proto3 refuses, named by its path. */
static void test_proto3_check(void **state) {
  (void)state;
  ProtobufCMessage *m = parse_ok(&muster__v1__job_spec__descriptor, job_json);
  mu_err err = {0};
  assert_int_equal(mu_pbjson_proto3_check(m, &err), 0); /* "x y", "é" and friends are fine */
  Muster__V1__JobSpec *spec = (Muster__V1__JobSpec *)m;
  const char *bad[] = {"\xff",
                       "a\xc0\xaf"
                       "b" /* overlong '/' */,
                       "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* above U+10FFFF */,
                       "\xe2\x82" /* cut short */};
  char *saved = spec->tasks[1]->http->headers[0]->value;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    spec->tasks[1]->http->headers[0]->value = (char *)bad[i];
    assert_int_equal(mu_pbjson_proto3_check(m, &err), MU_EINVAL);
    assert_string_equal(err.msg, "tasks[1].http.headers[0].value: string is not valid UTF-8");
    json_t *j = NULL;
    assert_int_not_equal(mu_pbjson_to_json(m, 0, &j, NULL), 0); /* what the check prevents */
  }
  spec->tasks[1]->http->headers[0]->value = "\xe2\x82\xac \xf0\x9f\x98\x80"; /* euro, emoji */
  assert_int_equal(mu_pbjson_proto3_check(m, &err), 0);
  spec->tasks[1]->http->headers[0]->value = saved;
  protobuf_c_message_free_unpacked(m, NULL);

  /* Field number 0 through an overlong tag (0x82 0x00): protobuf-c keeps it as an unknown
   * field, then packs it as 0x02, which it refuses to read back (found by request_fuzz). */
  static const uint8_t tag0[] = {0x0a, 0x01, 'j', 0x82, 0x00, 0x00};
  ProtobufCMessage *u = protobuf_c_message_unpack(&muster__v1__job_spec__descriptor, NULL, sizeof tag0, tag0);
  assert_non_null(u);
  assert_int_equal(mu_pbjson_proto3_check(u, &err), MU_EINVAL);
  assert_string_equal(err.msg, "field number 0 is out of range 1..536870911");
  size_t len;
  uint8_t *bytes = packed(u, &len);
  assert_null(protobuf_c_message_unpack(&muster__v1__job_spec__descriptor, NULL, len, bytes));
  free(bytes);
  protobuf_c_message_free_unpacked(u, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jobspec_round_trip),
      cmocka_unit_test(test_snake_and_camel_agree),
      cmocka_unit_test(test_emit_defaults),
      cmocka_unit_test(test_agents_64bit_and_enums),
      cmocka_unit_test(test_task_event_bytes),
      cmocka_unit_test(test_print_one_line),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_doc_example),
      cmocka_unit_test(test_proto3_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
