/* The HTTP task type end to end, driven exactly as the agent drives it: the built .so loaded
 * by the plugin host, tasks assigned to the runner as spec JSON, events collected from its
 * sink. Against integration/http_server.py on loopback (plain and TLS with a CA made here by
 * the openssl CLI): every method, auth kind, condition, extraction, retries with Retry-After,
 * redirect limits, timeouts, cancel, body limits, TLS, proxy, body files, secret redaction and
 * many tasks at once on one loop. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/plugin_env.h"
#include "agent/exec/runner_testkit.h"

static char http_so[4096], server_py[4096], tmp[512], spool[600];
static int port, tls_port;
static pid_t server_pid;

#define MAX_TASKS 128
#define OUT_CAP (2 * 1024 * 1024)

typedef mu_tk_rec rec;
typedef mu_tk_world world;

static void world_init(world *w) {
  mu_runner_config cfg = {
      .slots = MAX_TASKS, .spool_dir = spool, .agent_id = "agent-1", .grace_ms = 500, .output_limit = 4 * 1024 * 1024};
  mu_tk_world_init(w, http_so, &cfg, OUT_CAP, 8192);
}

static void world_free(world *w) { mu_tk_world_free(w); }

static rec *assign(world *w, const char *task_id, const char *spec) { return mu_tk_assign(w, task_id, spec, NULL, 0); }

static void run_until_final(world *w, rec *r) { mu_tk_run_until_final(w, r); }

/* Runs one task to its end; the spec is a printf format where %d is the plain port. */
static rec *run(world *w, const char *task_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static rec *run(world *w, const char *task_id, const char *fmt, ...) {
  char spec[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(spec, sizeof spec, fmt, ap);
  va_end(ap);
  rec *r = assign(w, task_id, spec);
  run_until_final(w, r);
  return r;
}

#define ASSERT_STATE(r, want)                                                                             \
  do {                                                                                                    \
    if ((r)->state != (want))                                                                             \
      fail_msg("%s: state %d, want %d; message \"%s\"; out \"%.300s\"", (r)->task_id, (r)->state, (want), \
               (r)->message, (r)->out);                                                                   \
  } while (0)
#define ASSERT_HAS(hay, needle)                                                                           \
  do {                                                                                                    \
    if (strstr((hay), (needle)) == NULL) fail_msg("\"%.600s\" does not contain \"%s\"", (hay), (needle)); \
  } while (0)

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* ---- the tests ---- */

static void test_every_method(void **state) {
  (void)state;
  world w;
  world_init(&w);
  const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  for (int i = 0; i < 5; i++) {
    char id[32];
    snprintf(id, sizeof id, "m-%s", methods[i]);
    rec *r = run(&w, id,
                 "{\"http\":{\"method\":\"%s\",\"url\":\"http://127.0.0.1:%d/echo\",\"query\":{\"q\":\"a b\"},"
                 "\"headers\":{\"X-Trace\":\"t1\"},\"body\":\"payload-%s\"}}",
                 methods[i], port, methods[i]);
    ASSERT_STATE(r, MU_TASK_SUCCEEDED);
    char want[64];
    snprintf(want, sizeof want, "\"method\": \"%s\"", methods[i]);
    ASSERT_HAS(r->out, want);
    snprintf(want, sizeof want, "\"body\": \"payload-%s\"", methods[i]);
    ASSERT_HAS(r->out, want);
    ASSERT_HAS(r->out, "\"query\": {\"q\": [\"a b\"]}");
    ASSERT_HAS(r->out, "\"X-Trace\": \"t1\"");
    ASSERT_HAS(r->out, "HTTP/1.1 200 OK\n");
    ASSERT_HAS(r->out, "X-Echo: yes\n");
  }
  rec *r = run(&w, "m-HEAD",
               "{\"http\":{\"method\":\"HEAD\",\"url\":\"http://127.0.0.1:%d/echo\","
               "\"expect\":{\"header_present\":[\"X-Echo\"]}}}",
               port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  assert_true(strncmp(r->out, "HTTP/1.1 200 OK\n", 16) == 0);
  assert_null(strstr(r->out, "\"method\""));
  r = run(&w, "json-body",
          "{\"http\":{\"method\":\"POST\",\"url\":\"http://127.0.0.1:%d/echo\","
          "\"body_json\":\"{\\\"a\\\": [1, 2]}\",\"expect\":{\"jsonEquals\":{\"$.headers['Content-Type']\":"
          "\"application/json\",\"$.body\":\"{\\\"a\\\": [1, 2]}\"}}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "form-body",
          "{\"http\":{\"method\":\"POST\",\"url\":\"http://127.0.0.1:%d/echo\","
          "\"form\":{\"name\":\"a b\",\"x\":\"1&2\"},\"expect\":{\"jsonEquals\":{\"$.body\":\"name=a+b&x=1%%262\","
          "\"$.headers['Content-Type']\":\"application/x-www-form-urlencoded\"}}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  world_free(&w);
}

static void test_auth_kinds(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "basic",
               "{\"http\":{\"url\":\"http://127.0.0.1:%d/basic\",\"auth\":{\"basicUser\":\"alice\","
               "\"basicPassword\":\"s3cret-pw\"},\"extract\":{\"user\":\"$.user\"}}}",
               port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->params, "user=alice;");
  r = run(&w, "basic-bad",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/basic\",\"auth\":{\"basic_user\":\"alice\","
          "\"basic_password\":\"wrong-pw\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "expect.status: got 401, want 200-299");
  r = run(&w, "bearer",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/bearer\",\"auth\":{\"bearerToken\":\"tok-12345-secret\"},"
          "\"expect\":{\"bodyContains\":\"bearer ok\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "bearer-bad", "{\"http\":{\"url\":\"http://127.0.0.1:%d/bearer\",\"auth\":{\"bearerToken\":\"nope\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  r = run(&w, "cert",
          "{\"http\":{\"url\":\"https://127.0.0.1:%d/clientcert\",\"caFile\":\"%s/ca.pem\","
          "\"auth\":{\"clientCert\":\"%s/client.pem\",\"clientKey\":\"%s/client.key\"},\"extract\":{\"cn\":\"$.cn\"}}}",
          tls_port, tmp, tmp, tmp);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->params, "cn=muster-client;");
  r = run(&w, "cert-none", "{\"http\":{\"url\":\"https://127.0.0.1:%d/clientcert\",\"caFile\":\"%s/ca.pem\"}}",
          tls_port, tmp);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "got 401");
  world_free(&w);
}

static void test_conditions_and_extraction(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "all-pass",
               "{\"http\":{\"url\":\"http://127.0.0.1:%d/json\",\"expect\":{\"status\":[200],"
               "\"bodyContains\":\"2.4.1\",\"body_not_contains\":\"error\",\"jsonEquals\":{\"$.status\":\"ok\","
               "\"$.items[1].id\":\"8\",\"$.ok\":\"true\"},\"jsonMatches\":{\"$.version\":\"^2\\\\.[0-9]+\"},"
               "\"headerPresent\":[\"x-request-id\"]},\"extract\":{\"version\":\"$.version\",\"first\":"
               "\"$.items[0].name\",\"deep\":\"$.nested.a.b\",\"count\":\"$.count\"},\"extractHeaders\":"
               "{\"request_id\":\"X-Request-Id\"}}}",
               port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  ASSERT_HAS(r->params, "version=2.4.1;");
  ASSERT_HAS(r->params, "first=first;");
  ASSERT_HAS(r->params, "deep=deep;");
  ASSERT_HAS(r->params, "count=2;");
  ASSERT_HAS(r->params, "request_id=abc-123;");
  ASSERT_HAS(r->out, "\"version\": \"2.4.1\"");

  struct {
    const char *expect, *want;
  } cases[] = {
      {"\"status\":[201,204]", "expect.status: got 200, want 201, 204"},
      {"\"statusRanges\":[{\"from\":300,\"to\":399}]", "expect.status: got 200, want 300-399"},
      {"\"bodyContains\":\"3.0.0\"", "expect.body_contains: body does not contain \"3.0.0\"; got "},
      {"\"bodyNotContains\":\"deep\"", "expect.body_not_contains: body contains \"deep\" at byte"},
      {"\"jsonEquals\":{\"$.status\":\"down\"}", "expect.json_equals[$.status]: got \"ok\", want \"down\""},
      {"\"jsonEquals\":{\"$.missing\":\"x\"}", "expect.json_equals[$.missing]: got nothing"},
      {"\"jsonMatches\":{\"$.version\":\"^3\"}", "expect.json_matches[$.version]: got \"2.4.1\", does not match /^3/"},
      {"\"headerPresent\":[\"X-Nope\"]", "expect.header_present: the response has no \"X-Nope\" header"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char id[32];
    snprintf(id, sizeof id, "cond-%zu", i);
    r = run(&w, id, "{\"http\":{\"url\":\"http://127.0.0.1:%d/json\",\"expect\":{%s}}}", port, cases[i].expect);
    ASSERT_STATE(r, MU_TASK_FAILED);
    ASSERT_HAS(r->message, cases[i].want);
  }
  r = run(&w, "status-503", "{\"http\":{\"url\":\"http://127.0.0.1:%d/status/503\"}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "expect.status: got 503, want 200-299");
  r = run(&w, "status-404-ok", "{\"http\":{\"url\":\"http://127.0.0.1:%d/status/404\",\"expect\":{\"status\":[404]}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "extract-missing", "{\"http\":{\"url\":\"http://127.0.0.1:%d/json\",\"extract\":{\"v\":\"$.nope[0]\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "extract.v: got nothing: $.nope[0] is not in the response");
  r = run(&w, "extract-notjson", "{\"http\":{\"url\":\"http://127.0.0.1:%d/status/200\",\"extract\":{\"v\":\"$.a\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "extract.v: the response body is not JSON");
  world_free(&w);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_retries(void **state) {
  (void)state;
  world w;
  world_init(&w);
  uint64_t t0 = now_ms();
  rec *r = run(&w, "flaky",
               "{\"timeout\":\"20s\",\"http\":{\"url\":\"http://127.0.0.1:%d/flaky/a?fail=2&retry_after=1\","
               "\"retryOnStatus\":[503],\"extract\":{\"attempts\":\"$.attempts\"}}}",
               port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  assert_true(now_ms() - t0 >= 2000); /* Retry-After: 1 honoured twice */
  assert_int_equal(count(r->err, "got status 503; retrying in 1000 ms (Retry-After)"), 2);
  assert_string_equal(r->params, "attempts=3;");
  ASSERT_HAS(r->message, "after 3 attempts");

  r = run(&w, "flaky-out",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/flaky/b?fail=5&status=502\","
          "\"retry_on_status\":[502],\"max_retries\":2}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "expect.status: got 502");
  assert_int_equal(count(r->err, "retrying in"), 2); /* backoff 250, 500 ms */

  t0 = now_ms();
  r = run(&w, "after-too-long",
          "{\"timeout\":\"3s\",\"http\":{\"url\":\"http://127.0.0.1:%d/flaky/c?fail=5&status=429&retry_after=60\","
          "\"retryOnStatus\":[429]}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "would pass the task timeout");
  assert_true(now_ms() - t0 < 2900);

  /* connection refused: a port nobody listens on */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd);
  r = run(&w, "refused", "{\"http\":{\"url\":\"http://127.0.0.1:%d/\",\"maxRetries\":2}}", ntohs(sa.sin_port));
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "Couldn't connect");
  ASSERT_HAS(r->message, "after 3 attempts");
  world_free(&w);
}

static void test_redirects(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "follow",
               "{\"http\":{\"url\":\"http://127.0.0.1:%d/redirect/3\",\"followRedirects\":true,"
               "\"expect\":{\"bodyContains\":\"landed\"}}}",
               port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "too-many", "{\"http\":{\"url\":\"http://127.0.0.1:%d/redirect/3\",\"maxRedirects\":2}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "max_redirects: more than 2 redirects");
  r = run(&w, "loop", "{\"http\":{\"url\":\"http://127.0.0.1:%d/loop\",\"follow_redirects\":true}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "max_redirects: more than 10 redirects");
  r = run(&w, "no-follow", "{\"http\":{\"url\":\"http://127.0.0.1:%d/redirect/1\"}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "expect.status: got 302");
  r = run(&w, "no-follow-ok",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/redirect/1\",\"expect\":{\"status\":[302],"
          "\"headerPresent\":[\"Location\"]},\"extractHeaders\":{\"to\":\"Location\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  assert_string_equal(r->params, "to=/redirect/0;");
  world_free(&w);
}

static void test_timeouts(void **state) {
  (void)state;
  world w;
  world_init(&w);
  uint64_t t0 = now_ms();
  rec *r = run(&w, "hang", "{\"timeout\":\"500ms\",\"http\":{\"url\":\"http://127.0.0.1:%d/hang\"}}", port);
  ASSERT_STATE(r, MU_TASK_TIMED_OUT);
  assert_true(now_ms() - t0 < 3000);
  t0 = now_ms();
  r = run(&w, "trickle",
          "{\"timeout\":\"1s\",\"http\":{\"url\":\"http://127.0.0.1:%d/trickle?bytes=100&every_ms=100\"}}", port);
  ASSERT_STATE(r, MU_TASK_TIMED_OUT);
  assert_true(now_ms() - t0 < 4000);

  /* connect timeout: a listener whose accept queue is full drops new SYNs */
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(lfd, 0), 0);
  getsockname(lfd, (struct sockaddr *)&sa, &sl);
  int fillers[4];
  for (int i = 0; i < 4; i++) {
    fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fillers[i], (struct sockaddr *)&sa, sizeof sa);
  }
  usleep(100000);
  t0 = now_ms();
  r = run(&w, "connect-timeout",
          "{\"timeout\":\"10s\",\"http\":{\"url\":\"http://127.0.0.1:%d/\",\"connectTimeout\":\"300ms\"}}",
          ntohs(sa.sin_port));
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "Timeout was reached");
  assert_true(now_ms() - t0 < 6000);
  for (int i = 0; i < 4; i++) close(fillers[i]);
  close(lfd);
  world_free(&w);
}

static void on_cancel_timer(uv_timer_t *t) {
  world *w = t->data;
  mu_err err = {0};
  assert_int_equal(mu_runner_cancel(w->runner, "to-cancel", 1, "operator said stop", &err), 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state) {
  (void)state;
  world w;
  world_init(&w);
  char spec[256];
  snprintf(spec, sizeof spec, "{\"timeout\":\"60s\",\"http\":{\"url\":\"http://127.0.0.1:%d/hang\"}}", port);
  rec *r = assign(&w, "to-cancel", spec);
  uv_timer_t t;
  uv_timer_init(&w.loop, &t);
  t.data = &w;
  uv_timer_start(&t, on_cancel_timer, 200, 0);
  uint64_t t0 = now_ms();
  run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  assert_true(r->final_ms - t0 < 2200); /* the plugin aborted: no wait for the agent's force-finish (2.5 s) */
  ASSERT_HAS(r->message, "operator said stop");
  assert_null(strstr(r->message, "did not stop"));
  world_free(&w);
}

static void test_body_limits(void **state) {
  (void)state;
  world w;
  world_init(&w);
  uint64_t t0 = now_ms();
  rec *r = run(&w, "huge", "{\"timeout\":\"30s\",\"http\":{\"url\":\"http://127.0.0.1:%d/huge\"}}", port); /* 10 GiB */
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "max_body: the response body is larger than 1048576 bytes; transfer aborted");
  assert_true(r->out_total > 1048576 && r->out_total < 1048576 + 4096); /* headers + the capped body */
  assert_true(now_ms() - t0 < 20000);
  r = run(&w, "huge-length", "{\"http\":{\"url\":\"http://127.0.0.1:%d/huge?length=1\",\"maxBody\":\"64K\"}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "larger than 65536 bytes");
  r = run(&w, "small-cap", "{\"http\":{\"url\":\"http://127.0.0.1:%d/json\",\"max_body\":\"16\"}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "larger than 16 bytes");
  r = run(&w, "fits", "{\"http\":{\"url\":\"http://127.0.0.1:%d/json\",\"max_body\":\"1K\"}}", port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  world_free(&w);
}

static void test_tls(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "tls-ca",
               "{\"http\":{\"url\":\"https://127.0.0.1:%d/json\",\"caFile\":\"%s/ca.pem\","
               "\"expect\":{\"jsonEquals\":{\"$.status\":\"ok\"}}}}",
               tls_port, tmp);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "tls-localhost", "{\"http\":{\"url\":\"https://localhost:%d/json\",\"ca_file\":\"%s/ca.pem\"}}", tls_port,
          tmp);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "tls-no-ca", "{\"http\":{\"url\":\"https://127.0.0.1:%d/json\"}}", tls_port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "certificate");
  r = run(&w, "tls-insecure", "{\"http\":{\"url\":\"https://127.0.0.1:%d/json\",\"insecureSkipVerify\":true}}",
          tls_port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  r = run(&w, "tls-ca-missing", "{\"http\":{\"url\":\"https://127.0.0.1:%d/json\",\"caFile\":\"%s/nope.pem\"}}",
          tls_port, tmp);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "http.ca_file");
  world_free(&w);
}

static void test_secret_redaction(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "red-bearer",
               "{\"http\":{\"url\":\"http://127.0.0.1:%d/echo\",\"auth\":{\"bearerToken\":\"tok-12345-secret\"},"
               "\"expect\":{\"bodyContains\":\"never-there\"}}}",
               port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->out, "\"Authorization\": \"Bearer ***\"");
  assert_null(strstr(r->out, "tok-12345-secret"));
  assert_null(strstr(r->message, "tok-12345-secret"));
  r = run(&w, "red-basic",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/echo?pw=s3cret-pw\",\"auth\":{\"basicUser\":\"alice\","
          "\"basicPassword\":\"s3cret-pw\"},\"expect\":{\"status\":[500]}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->out, "\"Authorization\": \"Basic ***\"");
  ASSERT_HAS(r->out, "\"pw\": [\"***\"]");
  assert_null(strstr(r->out, "s3cret-pw"));
  assert_null(strstr(r->out, "YWxpY2U6czNjcmV0LXB3"));
  r = run(&w, "red-secret",
          "{\"secrets\":[{\"name\":\"API_KEY\",\"value\":\"key-98765\"}],\"http\":{\"url\":"
          "\"http://127.0.0.1:%d/echo\",\"headers\":{\"X-Api-Key\":\"${secret.API_KEY}\"},"
          "\"expect\":{\"jsonEquals\":{\"$.headers.X-Api-Key\":\"nope\"}}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->out, "\"X-Api-Key\": \"***\"");
  ASSERT_HAS(r->message, "got \"***\", want \"nope\""); /* the server saw the real value */
  assert_null(strstr(r->out, "key-98765"));
  assert_null(strstr(r->message, "key-98765"));
  world_free(&w);
}

static void test_body_file_and_proxy(void **state) {
  (void)state;
  world w;
  world_init(&w);
  char spec[512];
  snprintf(spec, sizeof spec,
           "{\"http\":{\"method\":\"PUT\",\"url\":\"http://127.0.0.1:%d/echo\",\"bodyFile\":\"data/payload.txt\","
           "\"expect\":{\"jsonEquals\":{\"$.body\":\"from the bundle\\n\"}}}}",
           port);
  rec *r = assign(&w, "bodyfile", spec);
  /* start() runs on the next loop turn: put the "bundle" file in the fresh task dir first */
  char work[700], path[1400];
  snprintf(work, sizeof work, "%s/work", spool);
  DIR *d = opendir(work);
  assert_non_null(d);
  struct dirent *de;
  bool found = false;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, "bodyfile.1.", 11) != 0) continue;
    snprintf(path, sizeof path, "%s/%s/data", work, de->d_name);
    assert_int_equal(mkdir(path, 0700), 0);
    strcat(path, "/payload.txt");
    FILE *f = fopen(path, "w");
    fputs("from the bundle\n", f);
    fclose(f);
    found = true;
  }
  closedir(d);
  assert_true(found);
  run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  ASSERT_HAS(r->out, "\"Content-Type\": \"application/octet-stream\"");
  r = run(&w, "bodyfile-missing",
          "{\"http\":{\"method\":\"POST\",\"url\":\"http://127.0.0.1:%d/echo\",\"body_file\":\"missing.txt\"}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "http.body_file: \"missing.txt\" not found in the task dir");
  r = run(&w, "proxy",
          "{\"http\":{\"url\":\"http://service.invalid/echo\",\"proxy\":\"http://127.0.0.1:%d\","
          "\"expect\":{\"jsonEquals\":{\"$.proxied\":\"true\",\"$.headers.Host\":\"service.invalid\"}}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  world_free(&w);
}

/* SDK v2: configure() (userAgent), responses and latency as plugin metrics by status class
 * (no response: "error"), health warning after requests in a row got no response, schema. */
static void test_sdk_v2(void **state) {
  (void)state;
  world w;
  world_init(&w);
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_configure(w.plugins, "http", "{\"userAgnt\":\"x\"}", &err), MU_EINVAL);
  ASSERT_HAS(err.msg, "http config: unknown key \"userAgnt\" (known: userAgent, warnAfterErrors)");
  assert_int_equal(
      mu_plugin_host_configure(w.plugins, "http", "{\"userAgent\":\"fleet-probe/2\",\"warnAfterErrors\":2}", &err), 0);
  rec *r = run(&w, "ua", "{\"http\":{\"url\":\"http://127.0.0.1:%d/echo\"}}", port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  ASSERT_HAS(r->out, "\"User-Agent\": \"fleet-probe/2\"");
  r = run(&w, "ua-own", "{\"http\":{\"url\":\"http://127.0.0.1:%d/echo\",\"headers\":{\"User-Agent\":\"mine\"}}}",
          port);
  ASSERT_HAS(r->out, "\"User-Agent\": \"mine\""); /* the task's own header wins */
  r = run(&w, "s404", "{\"http\":{\"url\":\"http://127.0.0.1:%d/status/404\",\"expect\":{\"status\":[404]}}}", port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  muster_plugin_env *env = mu_plugin_host_env(w.plugins, "http");
  char reason[MUSTER_ERRBUF_SIZE];
  assert_int_equal(mu_plugin_env_health(env, reason, sizeof reason), MUSTER_HEALTH_OK);
  /* a closed port: no response, twice in a row -> health warns */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd); /* nobody listens there now */
  for (int i = 0; i < 2; i++) {
    char id[16];
    snprintf(id, sizeof id, "refused-%d", i);
    r = run(&w, id, "{\"http\":{\"url\":\"http://127.0.0.1:%d/\",\"maxRetries\":0}}", ntohs(a.sin_port));
    ASSERT_STATE(r, MU_TASK_FAILED);
  }
  assert_int_equal(mu_plugin_env_health(env, reason, sizeof reason), MUSTER_HEALTH_WARN);
  ASSERT_HAS(reason, "the last 2 requests got no response");
  mu_prom p = {0};
  mu_metrics_render_as(mu_plugin_host_metrics(w.plugins), "muster_agent_plugin_series_dropped_total", &p);
  ASSERT_HAS(p.buf, "muster_plugin_http_responses_total{code=\"2xx\"} 2\n");
  ASSERT_HAS(p.buf, "muster_plugin_http_responses_total{code=\"4xx\"} 1\n");
  ASSERT_HAS(p.buf, "muster_plugin_http_responses_total{code=\"error\"} 2\n");
  ASSERT_HAS(p.buf, "# TYPE muster_plugin_http_request_duration_seconds histogram");
  ASSERT_HAS(p.buf, "muster_plugin_http_request_duration_seconds_count{code=\"2xx\"} 2\n");
  mu_prom_free(&p);
  r = run(&w, "ok-again", "{\"http\":{\"url\":\"http://127.0.0.1:%d/echo\"}}", port);
  assert_int_equal(mu_plugin_env_health(env, reason, sizeof reason), MUSTER_HEALTH_OK); /* a response resets it */
  ASSERT_HAS(mu_plugin_env_describe(env), "\"url\":{\"type\":\"string\",\"required\":true");
  world_free(&w);
}

/* XML responses end to end: xpath_equals holds or fails naming the path, extract_xpath sets
 * params, namespaces by local-name(). */
static void test_xml(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "xml-ok",
               "{\"http\":{\"url\":\"http://127.0.0.1:%d/xml\",\"expect\":{\"xpathEquals\":{"
               "\"/report/status\":\"ok\",\"count(//step)\":\"2\",\"//*[local-name()='owner']\":\"ops\"}},"
               "\"extractXpath\":{\"build\":\"/report/build/@id\",\"failed\":\"//step[@ok='false']/@name\"}}}",
               port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  ASSERT_HAS(r->params, "build=b-42;");
  ASSERT_HAS(r->params, "failed=test;");
  r = run(&w, "xml-bad",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/xml\",\"expect\":{\"xpath_equals\":{"
          "\"/report/build/@version\":\"3.0\"}}}}",
          port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "expect.xpath_equals[/report/build/@version]: got \"2.4.1\", want \"3.0\"");
  r = run(&w, "xml-not",
          "{\"http\":{\"url\":\"http://127.0.0.1:%d/json\",\"expect\":{\"xpath_equals\":{\"/a\":\"b\"}}}}", port);
  ASSERT_STATE(r, MU_TASK_FAILED);
  ASSERT_HAS(r->message, "expect.xpath_equals[/a]: the response body is not XML (line 1: ");
  world_free(&w);
}

static void test_refused_at_assign(void **state) {
  (void)state;
  world w;
  world_init(&w);
  struct {
    const char *spec, *want;
  } cases[] = {
      {"{\"http\":{\"url\":\"gopher://h/\"}}", "http.url: scheme \"gopher\" not supported"},
      {"{\"http\":{\"url\":\"http://h/\",\"headers\":{\"X\":\"a\\r\\nSet-Cookie: x\"}}}",
       "http.headers.X: value contains CR, LF"},
      {"{\"http\":{\"url\":\"http://h/\",\"extract\":{\"v\":\"version\"}}}", "http.extract.v: bad JSON path"},
      {"{\"http\":{\"url\":\"http://h/\",\"method\":\"BREW\"}}", "http.method: unknown method"},
      {"{\"http\":{\"url\":\"http://h/\",\"connect_timeout\":\"5 parsecs\"}}", "http.connect_timeout: bad duration"},
      {"{\"http\":{\"url\":\"http://h/\",\"bodyFile\":\"../../etc/shadow\"}}", "http.body_file"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    mu_err err = {0};
    assert_int_equal(mu_runner_assign(w.runner, "j", "bad", 1, cases[i].spec, NULL, 0, &err), MU_EINVAL);
    ASSERT_HAS(err.msg, cases[i].want);
  }
  world_free(&w);
}

static void test_many_at_once(void **state) {
  (void)state;
  world w;
  world_init(&w);
  rec *r = run(&w, "stats-reset", "{\"http\":{\"url\":\"http://127.0.0.1:%d/stats?reset=1\"}}", port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  char spec[256];
  snprintf(spec, sizeof spec, "{\"timeout\":\"60s\",\"http\":{\"url\":\"http://127.0.0.1:%d/slow?ms=2000\"}}", port);
  rec *recs[100];
  uint64_t t0 = now_ms();
  for (int i = 0; i < 100; i++) {
    char id[32];
    snprintf(id, sizeof id, "many-%d", i);
    recs[i] = assign(&w, id, spec);
  }
  for (int i = 0; i < 100; i++) run_until_final(&w, recs[i]);
  for (int i = 0; i < 100; i++) ASSERT_STATE(recs[i], MU_TASK_SUCCEEDED);
  if (getenv("HTTP_TEST_VERBOSE") != NULL)
    for (int i = 0; i < 100; i += 10)
      fprintf(stderr, "task %d done at +%llu ms\n", i, (unsigned long long)(recs[i]->final_ms - t0));
  /* the server saw the requests in flight together: one loop, no thread per request */
  r = run(&w, "stats", "{\"http\":{\"url\":\"http://127.0.0.1:%d/stats\",\"extract\":{\"max\":\"$.max_inflight\"}}}",
          port);
  ASSERT_STATE(r, MU_TASK_SUCCEEDED);
  int max = 0;
  assert_int_equal(sscanf(r->params, "max=%d;", &max), 1);
  if (max < 50) fail_msg("at most %d of 100 requests were in flight at once", max);
  world_free(&w);
}

/* ---- fixture: certificates and the server ---- */

static int setup(void **state) {
  (void)state;
  const char *base = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(tmp, sizeof tmp, "%s/http_test.XXXXXX", base);
  assert_non_null(mkdtemp(tmp));
  snprintf(spool, sizeof spool, "%s/spool", tmp);
  assert_int_equal(mkdir(spool, 0700), 0);
  char cmd[4096];
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  snprintf(cmd, sizeof cmd,
           "cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=muster-test-ca && "
           "openssl req %s -keyout server.key -out server.csr -subj /CN=localhost && "
           "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile "
           "san.ext && "
           "openssl req %s -keyout client.key -out client.csr -subj /CN=muster-client && "
           "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2",
           tmp, ec, ec, ec);
  strcat(cmd, " >/dev/null 2>&1");
  if (system(cmd) != 0) fail_msg("openssl failed: %s", cmd);
  int p[2];
  assert_int_equal(pipe(p), 0);
  server_pid = fork();
  if (server_pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    char cert[600], key[600], ca[600];
    snprintf(cert, sizeof cert, "%s/server.pem", tmp);
    snprintf(key, sizeof key, "%s/server.key", tmp);
    snprintf(ca, sizeof ca, "%s/ca.pem", tmp);
    execl("/usr/bin/python3", "python3", server_py, "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  FILE *f = fdopen(p[0], "r");
  char line[128] = "";
  if (fgets(line, sizeof line, f) == NULL || sscanf(line, "PORTS %d %d", &port, &tls_port) != 2)
    fail_msg("server did not start: \"%s\"", line);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kill(server_pid, SIGTERM);
  waitpid(server_pid, NULL, 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s LIBMUSTER_HTTP.SO plugins/http/FILE integration/http_server.py\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* tasks must reach the loopback server directly */
  unsetenv("http_proxy");
  unsetenv("https_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("HTTPS_PROXY");
  unsetenv("ALL_PROXY");
  unsetenv("all_proxy");
  /* argv[2] is a source file of plugins/http: three levels up is the workspace root */
  char anchor[4096];
  if (realpath(argv[1], http_so) == NULL || realpath(argv[2], anchor) == NULL) {
    perror("realpath");
    return 2;
  }
  for (int i = 0; i < 3; i++) *strrchr(anchor, '/') = '\0';
  snprintf(server_py, sizeof server_py, "%s/%s", anchor, argv[3]);
  if (access(server_py, R_OK) != 0) {
    fprintf(stderr, "%s: not found\n", server_py);
    return 2;
  }
  if (getenv("HTTP_TEST_ONLY") != NULL) cmocka_set_test_filter(getenv("HTTP_TEST_ONLY"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_method),
      cmocka_unit_test(test_auth_kinds),
      cmocka_unit_test(test_conditions_and_extraction),
      cmocka_unit_test(test_retries),
      cmocka_unit_test(test_redirects),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_body_limits),
      cmocka_unit_test(test_tls),
      cmocka_unit_test(test_secret_redaction),
      cmocka_unit_test(test_body_file_and_proxy),
      cmocka_unit_test(test_refused_at_assign),
      cmocka_unit_test(test_sdk_v2),
      cmocka_unit_test(test_xml),
      cmocka_unit_test(test_many_at_once),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
