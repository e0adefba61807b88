/* Unit tests of the HTTP plugin's parts that need no server: the JSON path subset, every
 * validation refusal (each naming its field), durations and sizes, the response checks with
 * their "got X, want Y" messages, extraction, header lookup and secret redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_check.h"
#include "http_spec.h"
#include "jpath.h"
#include "muster_plugin.h"

static void test_jpath(void **state) {
  (void)state;
  json_error_t je;
  json_t *doc =
      json_loads("{\"a\":{\"b\":[{\"c\":1},{\"c\":\"two\"}]},\"x.y\":true,\"n\":null,\"arr\":[1,2,3]}", 0, &je);
  assert_non_null(doc);
  char buf[128];
  const char *good[] = {"$", "$.a", "$.a.b[0].c", "$.a.b[1]['c']", "$[\"x.y\"]", "$.arr[-1]", "$.n"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_int_equal(mu_jpath_check(good[i], buf, sizeof buf), 0);
  const char *badp[] = {"", "a.b", "$.", "$..a", "$[", "$[x]", "$['a'", "$.a b", "$[1", "$a"};
  for (size_t i = 0; i < sizeof badp / sizeof *badp; i++) {
    buf[0] = '\0';
    assert_int_not_equal(mu_jpath_check(badp[i], buf, sizeof buf), 0);
    assert_true(buf[0] != '\0');
  }
  char *t = mu_jpath_text(mu_jpath_eval(doc, "$.a.b[0].c"));
  assert_string_equal(t, "1");
  free(t);
  t = mu_jpath_text(mu_jpath_eval(doc, "$.a.b[1]['c']"));
  assert_string_equal(t, "two");
  free(t);
  t = mu_jpath_text(mu_jpath_eval(doc, "$[\"x.y\"]"));
  assert_string_equal(t, "true");
  free(t);
  t = mu_jpath_text(mu_jpath_eval(doc, "$.arr[-1]"));
  assert_string_equal(t, "3");
  free(t);
  t = mu_jpath_text(mu_jpath_eval(doc, "$.arr"));
  assert_string_equal(t, "[1,2,3]");
  free(t);
  t = mu_jpath_text(mu_jpath_eval(doc, "$.n"));
  assert_string_equal(t, "null");
  free(t);
  assert_null(mu_jpath_eval(doc, "$.a.b[2]"));
  assert_null(mu_jpath_eval(doc, "$.arr[-4]"));
  assert_null(mu_jpath_eval(doc, "$.a.c"));
  assert_null(mu_jpath_eval(doc, "$.arr.x"));
  assert_null(mu_jpath_eval(doc, "$.a[0]"));
  json_decref(doc);
}

static void refused(const char *config, const char *want) {
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  mu_http_spec *s = NULL;
  int rc = mu_http_spec_parse("{\"secrets\":[{\"name\":\"K\",\"value\":\"v\"}]}", config, &s, errbuf);
  if (rc == 0 || strstr(errbuf, want) == NULL)
    fail_msg("config %s: want \"%s\", got rc %d \"%s\"", config, want, rc, errbuf);
  assert_null(s);
}

static void test_validation_names_the_field(void **state) {
  (void)state;
  refused("{}", "http.url: required");
  refused("{\"url\":\"http//nope\"}", "http.url: malformed URL");
  refused("{\"url\":\"ftp://h/x\"}", "http.url: scheme \"ftp\" not supported");
  refused("{\"url\":\"file:///etc/passwd\"}", "http.url: scheme \"file\"");
  refused("{\"url\":\"http://h/a b\"}", "http.url: contains spaces");
  refused("{\"url\":\"http://h/\",\"method\":\"TRACE\"}", "http.method: unknown method \"TRACE\"");
  refused("{\"url\":\"http://h/\",\"headers\":{\"X-A\":\"v\\r\\nEvil: 1\"}}",
          "http.headers.X-A: value contains CR, LF");
  refused("{\"url\":\"http://h/\",\"headers\":{\"Bad Name\":\"v\"}}", "not a valid header name");
  refused("{\"url\":\"http://h/\",\"extract\":{\"v\":\"$.a[\"}}", "http.extract.v: bad JSON path");
  refused("{\"url\":\"http://h/\",\"extract\":{\"bad key!\":\"$.a\"}}", "http.extract: bad param name");
  refused("{\"url\":\"http://h/\",\"expect\":{\"jsonEquals\":{\"a.b\":\"1\"}}}",
          "http.expect.json_equals: bad JSON path \"a.b\"");
  refused("{\"url\":\"http://h/\",\"expect\":{\"json_matches\":{\"$.a\":\"(\"}}}", "bad regular expression");
  refused("{\"url\":\"http://h/\",\"expect\":{\"json_matches\":{\"$.a\":\"(a{999}){999}\"}}}",
          "too large once its repetitions");
  refused("{\"url\":\"http://h/\",\"expect\":{\"status\":[99]}}",
          "http.expect.status[0]: must be a number from 100 to 599");
  refused("{\"url\":\"http://h/\",\"expect\":{\"statusRanges\":[{\"from\":300,\"to\":200}]}}",
          "http.expect.status_ranges[0]");
  refused("{\"url\":\"http://h/\",\"expect\":{\"bogus\":1}}", "http.expect.bogus: unknown field");
  refused("{\"url\":\"http://h/\",\"bodyFile\":\"../etc/passwd\"}",
          "http.body_file: \"../etc/passwd\" must be a path inside");
  refused("{\"url\":\"http://h/\",\"body_file\":\"/etc/passwd\"}", "http.body_file");
  refused("{\"url\":\"http://h/\",\"body\":\"a\",\"form\":{\"a\":\"b\"}}", "give only one of body");
  refused("{\"url\":\"http://h/\",\"bodyJson\":\"{nope\"}", "http.body_json: not JSON");
  refused("{\"url\":\"http://h/\",\"connectTimeout\":\"soon\"}", "http.connect_timeout: bad duration \"soon\"");
  refused("{\"url\":\"http://h/\",\"max_body\":\"lots\"}", "http.max_body: bad size");
  refused("{\"url\":\"http://h/\",\"auth\":{\"bearerToken\":\"a\\nb\"}}", "http.auth.bearer_token");
  refused("{\"url\":\"http://h/\",\"auth\":{\"basicPassword\":\"p\"}}",
          "http.auth.basic_password: given without basic_user");
  refused("{\"url\":\"http://h/\",\"headers\":{\"X\":\"${secret.NOPE}\"}}", "http.headers.X: unknown secret \"NOPE\"");
  refused("{\"url\":\"http://h/\",\"wat\":1}", "http.wat: unknown field");
  refused("{\"url\":\"http://h/\",\"followRedirects\":\"yes\"}", "http.follow_redirects: must be true or false");
  refused("[1]", "http: must be an object");
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  mu_http_spec *s = NULL;
  assert_int_not_equal(mu_http_spec_parse("{\"timeout\":\"forever\"}", "{\"url\":\"http://h/\"}", &s, errbuf), 0);
  assert_non_null(strstr(errbuf, "timeout: bad duration"));
}

static void test_spec_parse(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  mu_http_spec *s = NULL;
  int rc =
      mu_http_spec_parse("{\"timeout\":\"1m30s\",\"secrets\":[{\"name\":\"KEY\",\"value\":\"k-777\"}]}",
                         "{\"method\":\"post\",\"url\":\"https://h.example:8443/p?x=1\",\"query\":{\"q\":\"a b&c\"},"
                         "\"headers\":{\"X-Key\":\"${secret.KEY}\"},\"form\":{\"a\":\"1 2\",\"b\":\"&=\"},"
                         "\"auth\":{\"basic_user\":\"u\",\"basic_password\":\"pw-secret\"},\"max_redirects\":3,"
                         "\"retryOnStatus\":[503],\"maxBody\":\"64K\",\"connect_timeout\":\"250ms\"}",
                         &s, errbuf);
  if (rc != 0) fail_msg("%s", errbuf);
  assert_string_equal(s->method, "POST");
  assert_string_equal(s->url, "https://h.example:8443/p?x=1&q=a+b%26c");
  assert_string_equal(s->headers[0].value, "k-777");
  assert_string_equal(s->body, "a=1+2&b=%26%3D");
  assert_string_equal(s->content_type, "application/x-www-form-urlencoded");
  assert_true(s->follow_redirects);
  assert_int_equal(s->max_redirects, 3);
  assert_int_equal(s->max_retries, MU_HTTP_DEFAULT_RETRIES);
  assert_int_equal(s->max_body, 65536);
  assert_int_equal(s->connect_timeout_ms, 250);
  assert_int_equal(s->timeout_ms, 90000);
  /* redaction: the password, its base64 Basic form and the secret, longest first */
  const char *text = "pw-secret dTpwdy1zZWNyZXQ= k-777 fine";
  char *red = mu_http_redact(s, text, strlen(text), NULL);
  assert_string_equal(red, "*** *** *** fine");
  free(red);
  mu_http_spec_free(s);

  /* durations: the SDK's muster_duration_parse, tested in plugins/sdk/spec_fields_test.c */
  uint64_t b;
  assert_int_equal(mu_http_size_parse("1MiB", &b), 0);
  assert_int_equal(b, 1048576);
  assert_int_equal(mu_http_size_parse("10", &b), 0);
  assert_int_equal(b, 10);
  assert_int_not_equal(mu_http_size_parse("M", &b), 0);
}

static int collect(void *arg, const char *key, const char *value) {
  char *out = arg;
  size_t n = strlen(out);
  snprintf(out + n, 512 - n, "%s=%s;", key, value);
  return 0;
}

static void test_checks(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE] = "", msg[900];
  mu_http_spec *s = NULL;
  assert_int_equal(
      mu_http_spec_parse("{}",
                         "{\"url\":\"http://h/\",\"expect\":{\"status\":[200],\"statusRanges\":[{\"from\":300,"
                         "\"to\":399}],\"bodyContains\":\"ok\",\"bodyNotContains\":\"error\","
                         "\"jsonEquals\":{\"$.status\":\"ok\",\"$.n\":\"3\"},\"jsonMatches\":{\"$.v\":\"^2\\\\.\"},"
                         "\"headerPresent\":[\"x-id\"]},\"extract\":{\"ver\":\"$.v\"},"
                         "\"extractHeaders\":{\"rid\":\"X-Id\"}}",
                         &s, errbuf),
      0);
  const char *hdrs = "Content-Type: application/json\r\nX-Id:  abc \r\n";
  const char *body = "{\"status\":\"ok\",\"n\":3,\"v\":\"2.4.1\"}";
  mu_http_response r = {.status = 503, .headers = hdrs, .body = body, .body_len = strlen(body)};
  assert_int_equal(mu_http_check_expect(s, &r, msg, sizeof msg), -1);
  assert_string_equal(msg, "expect.status: got 503, want 200, 300-399");
  r.status = 302;
  assert_int_equal(mu_http_check_expect(s, &r, msg, sizeof msg), 0);
  char params[512] = "";
  assert_int_equal(mu_http_extract(s, &r, collect, params, msg, sizeof msg), 0);
  assert_string_equal(params, "ver=2.4.1;rid=abc;");
  json_decref(r.json);

  const char *bodies[] = {"{\"status\":\"ok\"}  error", "{\"status\":\"degraded\",\"n\":3,\"v\":\"2.4\",\"x\":\"ok\"}",
                          "{\"status\":\"ok\",\"n\":3,\"v\":\"3.0\"}", "not json ok"};
  const char *want[] = {"expect.body_not_contains: body contains \"error\" at byte 17",
                        "expect.json_equals[$.status]: got \"degraded\", want \"ok\"",
                        "expect.json_matches[$.v]: got \"3.0\", does not match /^2\\./",
                        "expect.json_equals[$.status]: the response body is not JSON"};
  for (int i = 0; i < 4; i++) {
    mu_http_response r2 = {.status = 200, .headers = hdrs, .body = bodies[i], .body_len = strlen(bodies[i])};
    assert_int_equal(mu_http_check_expect(s, &r2, msg, sizeof msg), -1);
    if (strstr(msg, want[i]) == NULL) fail_msg("case %d: got \"%s\"", i, msg);
    json_decref(r2.json);
  }
  mu_http_response r3 = {.status = 200, .headers = "", .body = body, .body_len = strlen(body)};
  assert_int_equal(mu_http_check_expect(s, &r3, msg, sizeof msg), -1);
  assert_string_equal(msg, "expect.header_present: the response has no \"x-id\" header");
  mu_http_response r4 = {.status = 200, .headers = "", .body = "hello", .body_len = 5};
  assert_int_equal(mu_http_check_expect(s, &r4, msg, sizeof msg), -1);
  assert_string_equal(msg, "expect.body_contains: body does not contain \"ok\"; got 5 bytes: \"hello\"");
  json_decref(r3.json);
  json_decref(r4.json);
  mu_http_spec_free(s);

  char *v = mu_http_header_get("A: 1\r\nRetry-After: 5\r\n", "retry-after");
  assert_string_equal(v, "5");
  free(v);
  assert_null(mu_http_header_get("A: 1\r\n", "B"));
}

/* XML responses: xpath_equals and extract_xpath, errors in the JSON-path conditions' style. */
static void test_xpath(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE] = "", msg[600] = "";
  mu_http_spec *s = NULL;
  assert_int_equal(mu_http_spec_parse("{}",
                                      "{\"url\":\"http://h/\",\"expect\":{\"xpathEquals\":{\"/r/status\":\"ok\","
                                      "\"count(//step)\":\"2\",\"/r/build/@id\":\"b-1\"}},"
                                      "\"extract_xpath\":{\"ver\":\"string(/r/build/@version)\",\"failed\":"
                                      "\"//step[@ok='false']/@name\"}}",
                                      &s, errbuf),
                   0);
  const char *xml =
      "<?xml version=\"1.0\"?><r><status>ok</status><build id=\"b-1\" version=\"2.4\">"
      "<step name=\"c\" ok=\"true\"/><step name=\"t\" ok=\"false\"/></build></r>";
  mu_http_response r = {.status = 200, .headers = "", .body = xml, .body_len = strlen(xml)};
  assert_int_equal(mu_http_check_expect(s, &r, msg, sizeof msg), 0);
  char params[512] = "";
  assert_int_equal(mu_http_extract(s, &r, collect, params, msg, sizeof msg), 0);
  assert_string_equal(params, "ver=2.4;failed=t;");
  mu_http_response_done(&r);
  const char *bad = "<r><status>degraded</status></r>";
  mu_http_response r2 = {.status = 200, .headers = "", .body = bad, .body_len = strlen(bad)};
  assert_int_equal(mu_http_check_expect(s, &r2, msg, sizeof msg), -1);
  assert_string_equal(msg, "expect.xpath_equals[/r/status]: got \"degraded\", want \"ok\"");
  mu_http_response_done(&r2);
  const char *partial = "<r><status>ok</status></r>";
  mu_http_response r3 = {.status = 200, .headers = "", .body = partial, .body_len = strlen(partial)};
  assert_int_equal(mu_http_check_expect(s, &r3, msg, sizeof msg), -1);
  assert_string_equal(msg, "expect.xpath_equals[count(//step)]: got \"0\", want \"2\"");
  assert_int_equal(mu_http_extract(s, &r3, collect, params, msg, sizeof msg), -1);
  assert_string_equal(msg, "extract_xpath.failed: got nothing: //step[@ok='false']/@name is not in the response");
  mu_http_response_done(&r3);
  const char *notxml = "{\"status\":\"ok\"}";
  mu_http_response r4 = {.status = 200, .headers = "", .body = notxml, .body_len = strlen(notxml)};
  assert_int_equal(mu_http_check_expect(s, &r4, msg, sizeof msg), -1);
  if (strstr(msg, "expect.xpath_equals[/r/status]: the response body is not XML (line 1: ") != msg) fail_msg("%s", msg);
  mu_http_response_done(&r4);
  /* an external entity is not loaded: the text stays empty, nothing is read from the disk */
  const char *xxe = "<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/hostname\">]><r><status>&e;</status></r>";
  mu_http_response r5 = {.status = 200, .headers = "", .body = xxe, .body_len = strlen(xxe)};
  assert_int_equal(mu_http_check_expect(s, &r5, msg, sizeof msg), -1);
  assert_string_equal(msg, "expect.xpath_equals[/r/status]: got \"\", want \"ok\"");
  mu_http_response_done(&r5);
  mu_http_spec_free(s);
  /* a bad expression is refused at validation, naming the field */
  assert_int_not_equal(
      mu_http_spec_parse("{}", "{\"url\":\"http://h/\",\"expect\":{\"xpath_equals\":{\"//a[\":\"x\"}}}", &s, errbuf),
      0);
  if (strstr(errbuf, "http.expect.xpath_equals: bad XPath \"//a[\": ") != errbuf) fail_msg("%s", errbuf);
  assert_int_not_equal(mu_http_spec_parse("{}", "{\"url\":\"http://h/\",\"extractXpath\":{\"p\":\"\"}}", &s, errbuf),
                       0);
  if (strstr(errbuf, "http.extract_xpath.p: bad XPath \"\"") != errbuf) fail_msg("%s", errbuf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_xpath),
      cmocka_unit_test(test_jpath),
      cmocka_unit_test(test_validation_names_the_field),
      cmocka_unit_test(test_spec_parse),
      cmocka_unit_test(test_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
