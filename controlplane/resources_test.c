/* Tests for resources.c on tables: requests from a spec (largest per kind, slots at least 1,
 * bad memory and device names refused), capacity from a Hello (declared, fallbacks, device
 * labels), fit never past capacity, spread vs binpack scores, amounts in messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/resources.h"
#include "lib/pbjson/pbjson.h"

static ProtobufCMessage *from_json(const ProtobufCMessageDescriptor *d, const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  if (j == NULL) fail_msg("bad json: %s", je.text);
  ProtobufCMessage *m = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(d, j, &m, &err) != 0) fail_msg("bad message: %s", err.msg);
  json_decref(j);
  return m;
}

static void requests_take_the_largest_per_kind(void **state) {
  (void)state;
  static const struct {
    const char *spec;
    int64_t cpu, mem, slots, gpu;
    const char *err; /* substring, NULL: valid */
  } cases[] = {
      {"{\"tasks\":[{\"name\":\"a\",\"type\":\"shell\"}]}", 0, 0, 1, 0, NULL},
      {"{\"tasks\":[{\"name\":\"a\",\"type\":\"shell\",\"resources\":{\"requests\":{\"cpu\":500,"
       "\"memory\":\"1G\"}}},{\"name\":\"b\",\"type\":\"shell\",\"resources\":{\"requests\":{"
       "\"cpu\":2000,\"slots\":2,\"devices\":{\"gpu\":1}}}}]}",
       2000, 1 << 30, 2, 1, NULL},
      {"{\"tasks\":[{\"name\":\"a\",\"type\":\"shell\",\"resources\":{\"requests\":{\"memory\":"
       "\"lots\"}}}]}",
       0, 0, 0, 0, "tasks[0].resources.requests.memory"},
      {"{\"tasks\":[{\"name\":\"a\",\"type\":\"shell\",\"resources\":{\"requests\":{\"devices\":"
       "{\"\":1}}}}]}",
       0, 0, 0, 0, "requests.devices: a name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Muster__V1__JobSpec *spec = (Muster__V1__JobSpec *)from_json(&muster__v1__job_spec__descriptor, cases[i].spec);
    mu_res r;
    mu_err err = {0};
    int rc = mu_res_request(spec, &r, &err);
    if (cases[i].err != NULL) {
      assert_int_equal(rc, MU_EINVAL);
      assert_non_null(strstr(err.msg, cases[i].err));
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(r.cpu, cases[i].cpu);
      assert_int_equal(r.mem, cases[i].mem);
      assert_int_equal(r.slots, cases[i].slots);
      assert_int_equal(mu_res_device(&r, "gpu"), cases[i].gpu);
    }
    protobuf_c_message_free_unpacked(&spec->base, NULL);
  }
}

static void capacity_from_hello(void **state) {
  (void)state;
  Muster__V1__Hello *h = (Muster__V1__Hello *)from_json(
      &muster__v1__hello__descriptor,
      "{\"cpu_count\":4,\"memory_bytes\":8589934592,\"labels\":{\"devices.gpu\":\"2\","
      "\"devices.fpga\":\"x\",\"role\":\"web\"},\"capacity\":{\"slots\":8,\"devices\":{\"tpu\":3}}}");
  mu_res c;
  mu_res_capacity(h, &c);
  assert_int_equal(c.cpu, 4000);
  assert_int_equal(c.mem, 8589934592LL);
  assert_int_equal(c.slots, 8);
  assert_int_equal(mu_res_device(&c, "gpu"), 2);
  assert_int_equal(mu_res_device(&c, "tpu"), 3);
  assert_int_equal(mu_res_device(&c, "fpga"), 0); /* not a number: not a counter */
  h->capacity->cpu_millis = 2500;                 /* declared wins over the core count */
  mu_res_capacity(h, &c);
  assert_int_equal(c.cpu, 2500);
  protobuf_c_message_free_unpacked(&h->base, NULL);
  mu_res_capacity(NULL, &c);
  assert_int_equal(c.cpu, MU_RES_UNLIMITED);
  assert_int_equal(c.slots, 1);
}

static void fit_never_past_capacity(void **state) {
  (void)state;
  mu_res cap = {.cpu = 4000, .mem = 1000, .slots = 4}, alloc = {0}, need = {.cpu = 1500, .slots = 1};
  char kind[48];
  int placed = 0;
  while (mu_res_fits(&cap, &alloc, &need, kind, sizeof kind)) {
    mu_res_add(&alloc, &need, 1);
    placed++;
  }
  assert_int_equal(placed, 2); /* 3 x 1.5 CPU > 4 */
  assert_string_equal(kind, "cpu");
  assert_int_equal(mu_res_free(&cap, &alloc, "cpu"), 1000);
  mu_res_add(&alloc, &need, -1);
  assert_true(mu_res_fits(&cap, &alloc, &need, NULL, 0));
  /* a device the agent does not declare has none */
  mu_res gpu = {.slots = 1, .n_dev = 1, .dev = {{"gpu", 1}}};
  assert_false(mu_res_fits(&cap, &alloc, &gpu, kind, sizeof kind));
  assert_string_equal(kind, "devices.gpu");
  /* unlimited cpu never runs out */
  mu_res open = {.cpu = MU_RES_UNLIMITED, .mem = MU_RES_UNLIMITED, .slots = 100};
  mu_res big = {.cpu = INT64_MAX / 2, .slots = 1};
  mu_res_add(&alloc, &big, 1);
  assert_true(mu_res_fits(&open, &alloc, &big, NULL, 0));
}

static void spread_and_binpack_order(void **state) {
  (void)state;
  mu_res cap = {.cpu = 8000, .mem = MU_RES_UNLIMITED, .slots = 8};
  mu_res empty = {0}, half = {.cpu = 4000, .slots = 4}, need = {.cpu = 1000, .slots = 1};
  assert_true(mu_res_score(&cap, &empty, &need, MU_RES_SPREAD) > mu_res_score(&cap, &half, &need, MU_RES_SPREAD));
  assert_true(mu_res_score(&cap, &half, &need, MU_RES_BINPACK) > mu_res_score(&cap, &empty, &need, MU_RES_BINPACK));
  assert_int_equal(mu_res_strategy_parse(""), MU_RES_SPREAD);
  assert_int_equal(mu_res_strategy_parse("binpack"), MU_RES_BINPACK);
  assert_int_equal(mu_res_strategy_parse("packed"), -1);
  char buf[64];
  mu_res_amount("cpu", 2500, buf, sizeof buf);
  assert_string_equal(buf, "2.5 CPU");
  mu_res_amount("devices.gpu", 2, buf, sizeof buf);
  assert_string_equal(buf, "2 devices.gpu");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(requests_take_the_largest_per_kind),
      cmocka_unit_test(capacity_from_hello),
      cmocka_unit_test(fit_never_past_capacity),
      cmocka_unit_test(spread_and_binpack_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
