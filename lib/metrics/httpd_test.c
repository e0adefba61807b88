/* /metrics and /healthz served for real on loopback, read back with libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "lib/metrics/httpd.h"

typedef struct body {
  char buf[8192];
  size_t len;
} body;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  body *b = ud;
  size_t k = sz * n;
  if (b->len + k >= sizeof b->buf) k = sizeof b->buf - b->len - 1;
  memcpy(b->buf + b->len, p, k);
  b->len += k;
  b->buf[b->len] = '\0';
  return sz * n;
}

static long get(int port, const char *path, body *b) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  memset(b, 0, sizeof *b);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

static void test_serve(void **state) {
  (void)state;
  mu_metrics_server *s = NULL;
  int port = 0;
  mu_err err = {0};
  assert_int_equal(mu_metrics_server_start("127.0.0.1:0", &s, &port, &err), 0);
  assert_true(port > 0);
  mu_prom p = {0};
  mu_prom_add(&p, "muster_agents", "gauge", "Agents known.", "state=\"connected\"", 3);
  mu_prom_add(&p, "muster_jobs_total", "counter", "Jobs submitted.", "", 12);
  mu_metrics_server_publish(s, p.buf, 1, NULL);
  body b;
  assert_int_equal(get(port, "/metrics", &b), 200);
  assert_non_null(strstr(b.buf, "# TYPE muster_agents gauge\nmuster_agents{state=\"connected\"} 3\n"));
  assert_non_null(strstr(b.buf, "muster_jobs_total 12\n"));
  assert_int_equal(get(port, "/healthz", &b), 200);
  assert_string_equal(b.buf, "ok\n");
  mu_metrics_server_publish(s, p.buf, 0, "etcd unavailable: connection refused");
  assert_int_equal(get(port, "/healthz", &b), 503);
  assert_non_null(strstr(b.buf, "etcd unavailable"));
  assert_int_equal(get(port, "/nope", &b), 404);
  mu_prom_free(&p);
  mu_metrics_server_stop(s);
  assert_int_equal(mu_metrics_server_start("999.1.1.1:80", &s, NULL, &err), MU_EINVAL);
  assert_int_equal(mu_metrics_server_start("nonsense", &s, NULL, &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_serve)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
