/* /metrics and /healthz served for real on loopback, read back with libcurl (OpenSSL): plain
 * HTTP, HTTPS, and HTTPS with client certificates, from ECDSA P-256 certificates made with the
 * openssl CLI the way integration/harness.py's Pki (and `muster pki`) make them. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "lib/metrics/httpd.h"

static char pki[512]; /* the throwaway CAs and certificates of this run */

typedef struct body {
  char buf[8192];
  size_t len;
} body;

/* Paths of a certificate, its key and a CA of this run's PKI ("": none). As a client's:
 * no CA means plain HTTP. */
typedef struct tls_files {
  char cert[600], key[600], ca[600];
} tls_files;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  body *b = ud;
  size_t k = sz * n;
  if (b->len + k >= sizeof b->buf) k = sizeof b->buf - b->len - 1;
  memcpy(b->buf + b->len, p, k);
  b->len += k;
  b->buf[b->len] = '\0';
  return sz * n;
}

/* The HTTP status of GET path, 0 when there was no HTTP answer (refused handshake, ...). */
static long fetch(int port, const char *path, const tls_files *cl, body *b) {
  char url[128];
  int tls = cl != NULL && cl->ca[0] != '\0';
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", tls ? "https" : "http", port, path);
  memset(b, 0, sizeof *b);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  if (tls) curl_easy_setopt(c, CURLOPT_CAINFO, cl->ca);
  if (tls && cl->cert[0] != '\0') curl_easy_setopt(c, CURLOPT_SSLCERT, cl->cert);
  if (tls && cl->key[0] != '\0') curl_easy_setopt(c, CURLOPT_SSLKEY, cl->key);
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

static long get(int port, const char *path, body *b) { return fetch(port, path, NULL, b); }

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) fail_msg("failed: %s", cmd);
}

/* name.crt and name.key, and ca.crt (each NULL: none). */
static tls_files files(const char *name, const char *ca) {
  tls_files f = {"", "", ""};
  if (name != NULL) {
    snprintf(f.cert, sizeof f.cert, "%s/%s.crt", pki, name);
    snprintf(f.key, sizeof f.key, "%s/%s.key", pki, name);
  }
  if (ca != NULL) snprintf(f.ca, sizeof f.ca, "%s/%s.crt", pki, ca);
  return f;
}

static mu_metrics_options serving(const char *listen, const tls_files *f) {
  mu_metrics_options o = {.listen = listen, .tls_cert = f->cert, .tls_key = f->key, .tls_ca = f->ca};
  return o;
}

static void make_ca(const char *name) {
  sh("openssl ecparam -name prime256v1 -genkey -noout -out %s/%s.key", pki, name);
  sh("openssl req -x509 -new -key %s/%s.key -subj '/O=muster/CN=%s' -days 30 -out %s/%s.crt "
     "2>/dev/null",
     pki, name, name, pki, name);
}

/* name.crt/name.key signed by ca, with extended key usage eku; pkcs8: the key as
 * "PRIVATE KEY" (openssl genpkey) instead of "EC PRIVATE KEY" (openssl ecparam). */
static void issue(const char *name, const char *ca, const char *eku, int pkcs8) {
  if (pkcs8) sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/%s.key", pki, name);
  else sh("openssl ecparam -name prime256v1 -genkey -noout -out %s/%s.key", pki, name);
  sh("openssl req -new -key %s/%s.key -subj '/O=muster/CN=%s' -out %s/%s.csr", pki, name, name, pki, name);
  sh("printf 'subjectAltName=URI:muster://admin/%s,IP:127.0.0.1,DNS:localhost\\n"
     "extendedKeyUsage=%s\\nbasicConstraints=CA:FALSE\\n' > %s/%s.ext",
     name, eku, pki, name);
  sh("openssl x509 -req -in %s/%s.csr -CA %s/%s.crt -CAkey %s/%s.key -CAcreateserial -days 30 "
     "-extfile %s/%s.ext -out %s/%s.crt 2>/dev/null",
     pki, name, pki, ca, pki, ca, pki, name, pki, name);
}

static int make_pki(void **state) {
  (void)state;
  const char *tmp = getenv("TEST_TMPDIR");
  snprintf(pki, sizeof pki, "%s/metrics-pki-XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(pki) == NULL) return -1;
  make_ca("ca");
  make_ca("other-ca");
  issue("server", "ca", "serverAuth,clientAuth", 0);
  issue("scraper", "ca", "clientAuth", 1);
  issue("foreign", "other-ca", "clientAuth", 0);
  issue("server-only", "ca", "serverAuth", 0);
  return 0;
}

static int remove_pki(void **state) {
  (void)state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", pki);
  return system(cmd) == 0 ? 0 : -1;
}

static mu_metrics_server *start(const mu_metrics_options *o, int *ret_port) {
  mu_metrics_server *s = NULL;
  mu_err err = {0};
  int rc = mu_metrics_server_start(o, &s, ret_port, &err);
  if (rc != 0) fail_msg("start: %s", err.msg);
  assert_true(*ret_port > 0);
  mu_prom p = {0};
  mu_prom_add(&p, "muster_jobs_total", "counter", "Jobs submitted.", "", 12);
  mu_metrics_server_publish(s, p.buf, 1, NULL);
  mu_prom_free(&p);
  return s;
}

static void test_serve(void **state) {
  (void)state;
  mu_metrics_server *s = NULL;
  int port = 0;
  mu_err err = {0};
  mu_metrics_options o = {.listen = "127.0.0.1:0"};
  assert_int_equal(mu_metrics_server_start(&o, &s, &port, &err), 0);
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
  o.listen = "999.1.1.1:80";
  assert_int_equal(mu_metrics_server_start(&o, &s, NULL, &err), MU_EINVAL);
  o.listen = "nonsense";
  assert_int_equal(mu_metrics_server_start(&o, &s, NULL, &err), MU_EINVAL);
  o.listen = "127.0.0.1:";
  assert_int_equal(mu_metrics_server_start(&o, &s, NULL, &err), MU_EINVAL);
}

/* HTTPS with the server's EC P-256 certificate: curl --cacert gets /metrics; plain HTTP and
 * a client that does not trust the CA get nothing. */
static void test_https(void **state) {
  (void)state;
  int port = 0;
  tls_files server = files("server", NULL);
  mu_metrics_options o = serving("127.0.0.1:0", &server);
  mu_metrics_server *s = start(&o, &port);
  body b;
  tls_files trusting = files(NULL, "ca");
  assert_int_equal(fetch(port, "/metrics", &trusting, &b), 200);
  assert_non_null(strstr(b.buf, "muster_jobs_total 12\n"));
  assert_int_equal(fetch(port, "/healthz", &trusting, &b), 200);
  assert_string_equal(b.buf, "ok\n");
  /* without a client CA any client may read, with or without a certificate */
  tls_files with_cert = files("foreign", "ca");
  assert_int_equal(fetch(port, "/metrics", &with_cert, &b), 200);
  assert_int_equal(get(port, "/metrics", &b), 0);
  tls_files other = files(NULL, "other-ca");
  assert_int_equal(fetch(port, "/metrics", &other, &b), 0);
  mu_metrics_server_stop(s);
}

/* Asserts that want lines of the file at path contain needle (shows the file otherwise). */
static void expect_lines(const char *path, const char *needle, int want) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char text[8192];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  int n = 0;
  for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  if (n != want) fail_msg("%d lines with '%s', want %d, in:\n%s", n, needle, want, text);
}

/* With a client CA: a certificate from it gets /metrics; none, one from another CA or one
 * only good for servers get 403; each refusal is logged once per address and reason. */
static void test_client_certificates(void **state) {
  (void)state;
  int port = 0;
  tls_files server = files("server", "ca");
  mu_metrics_options o = serving("127.0.0.1:0", &server);
  mu_metrics_server *s = start(&o, &port);
  body b;
  tls_files scraper = files("scraper", "ca");
  assert_int_equal(fetch(port, "/metrics", &scraper, &b), 200);
  assert_non_null(strstr(b.buf, "muster_jobs_total 12\n"));
  /* a musterd server certificate (serverAuth,clientAuth) is a client certificate too */
  assert_int_equal(fetch(port, "/healthz", &server, &b), 200);

  char log[600];
  snprintf(log, sizeof log, "%s/refusals.log", pki);
  fflush(stderr);
  int saved = dup(2);
  int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(saved >= 0 && fd >= 0);
  dup2(fd, 2);
  close(fd);
  tls_files none = files(NULL, "ca");
  tls_files foreign = files("foreign", "ca");
  tls_files server_only = files("server-only", "ca");
  long codes[6];
  for (int i = 0; i < 2; i++) {
    codes[i * 3] = fetch(port, "/metrics", &none, &b);
    codes[i * 3 + 1] = fetch(port, "/metrics", &foreign, &b);
    codes[i * 3 + 2] = fetch(port, "/healthz", &server_only, &b);
  }
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  for (int i = 0; i < 6; i++) assert_int_equal(codes[i], 403);
  assert_non_null(strstr(b.buf, "client certificate"));
  expect_lines(log, "refused 127.0.0.1: no client certificate", 1);
  expect_lines(log, "The certificate issuer is unknown. (", 1);
  expect_lines(log, "The certificate chain does not match the intended purpose. (", 1);
  expect_lines(log, "refused 127.0.0.1:", 3);
  /* the refusals left the scraper's way in open */
  assert_int_equal(fetch(port, "/metrics", &scraper, &b), 200);
  mu_metrics_server_stop(s);
}

static void expect_error(const mu_metrics_options *o, int code, const char *needle) {
  mu_metrics_server *s = NULL;
  mu_err err = {0};
  int port = 0;
  assert_int_equal(mu_metrics_server_start(o, &s, &port, &err), code);
  if (strstr(err.msg, needle) == NULL) fail_msg("error '%s' lacks '%s'", err.msg, needle);
}

static void test_bad_tls_options(void **state) {
  (void)state;
  tls_files f = files("server", "ca");
  mu_err err = {0};
  mu_metrics_options cert_only = {.listen = "127.0.0.1:0", .tls_cert = f.cert};
  assert_int_equal(mu_metrics_options_check(&cert_only, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "--metrics-tls-key (metrics_tls_key) is missing"));
  expect_error(&cert_only, MU_EINVAL, "--metrics-tls-key");
  mu_metrics_options key_only = {.listen = "127.0.0.1:0", .tls_key = f.key, .tls_cert = ""};
  expect_error(&key_only, MU_EINVAL, "--metrics-tls-cert (metrics_tls_cert) is missing");
  mu_metrics_options ca_only = {.listen = "127.0.0.1:0", .tls_ca = f.ca};
  expect_error(&ca_only, MU_EINVAL, "--metrics-tls-ca (metrics_tls_ca) needs");
  mu_metrics_options no_listen = {.listen = "", .tls_cert = f.cert, .tls_key = f.key};
  assert_int_equal(mu_metrics_options_check(&no_listen, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "without --metrics-listen"));
  mu_metrics_options plain = {.listen = "127.0.0.1:0"};
  assert_int_equal(mu_metrics_options_check(&plain, &err), 0);

  tls_files nope = files("nope", NULL);
  mu_metrics_options missing = {.listen = "127.0.0.1:0", .tls_cert = nope.cert, .tls_key = f.key};
  expect_error(&missing, MU_ENOENT, "nope.crt: No such file");
  tls_files scraper = files("scraper", NULL);
  mu_metrics_options mismatch = {.listen = "127.0.0.1:0", .tls_cert = f.cert, .tls_key = scraper.key};
  expect_error(&mismatch, MU_EINVAL, "do not match");
  mu_metrics_options swapped = {.listen = "127.0.0.1:0", .tls_cert = f.key, .tls_key = f.cert};
  expect_error(&swapped, MU_EINVAL, "--metrics-tls-cert");
  mu_metrics_options key_as_ca = {.listen = "127.0.0.1:0", .tls_cert = f.cert, .tls_key = f.key, .tls_ca = f.key};
  expect_error(&key_as_ca, MU_EINVAL, "--metrics-tls-ca");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serve),
      cmocka_unit_test(test_https),
      cmocka_unit_test(test_client_certificates),
      cmocka_unit_test(test_bad_tls_options),
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int failed = cmocka_run_group_tests(tests, make_pki, remove_pki);
  curl_global_cleanup();
  return failed;
}
