/* The HTTP task's spec: the "http" section of a muster.v1.TaskSpec (proto3 JSON, lowerCamel or
 * snake_case keys) plus the common `timeout` and `secrets`, parsed and checked into one struct
 * the request code reads. Every check names the field it refuses. Also the small helpers the
 * plugin shares between files: duration and size parsing, and secret redaction. */
#ifndef MU_HTTP_SPEC_H
#define MU_HTTP_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MU_HTTP_DEFAULT_MAX_BODY (1024u * 1024u)
#define MU_HTTP_DEFAULT_TIMEOUT_MS 300000 /* per request when the task has no timeout */
#define MU_HTTP_DEFAULT_CONNECT_MS 10000
#define MU_HTTP_DEFAULT_MAX_REDIRECTS 10
#define MU_HTTP_DEFAULT_RETRIES 3 /* when retry_on_status is set, max_retries not */
#define MU_HTTP_MAX_ITEMS 256     /* entries per map or list */

typedef struct mu_http_kv {
  char *key;
  char *value;
} mu_http_kv;

typedef struct mu_http_range {
  unsigned from, to;
} mu_http_range;

typedef struct mu_http_spec {
  char *method; /* upper case: GET POST PUT PATCH DELETE HEAD */
  char *url;    /* with `query` appended, URL-encoded */
  mu_http_kv *headers;
  size_t n_headers;
  char *body; /* body, body_json or the encoded form; NULL when none */
  size_t body_len;
  const char *content_type; /* static default for the body, unless headers set one */
  char *body_file;          /* relative to the task dir; NULL when none */
  char *basic_user, *basic_password, *bearer_token, *client_cert, *client_key;
  int64_t connect_timeout_ms;
  bool follow_redirects;
  long max_redirects;
  bool insecure;
  char *ca_file, *proxy;
  unsigned *status; /* expect.status */
  size_t n_status;
  mu_http_range *ranges; /* expect.status_ranges; the default 200-299 when both empty */
  size_t n_ranges;
  char *body_contains, *body_not_contains;
  mu_http_kv *json_equals, *json_matches;
  size_t n_json_equals, n_json_matches;
  mu_http_kv *xpath_equals; /* expect.xpath_equals: XPath -> want (XML bodies) */
  size_t n_xpath_equals;
  char **header_present;
  size_t n_header_present;
  mu_http_kv *extract, *extract_headers;
  size_t n_extract, n_extract_headers;
  mu_http_kv *extract_xpath; /* param -> XPath over an XML body */
  size_t n_extract_xpath;
  unsigned *retry_on_status;
  size_t n_retry_on_status;
  unsigned max_retries;
  uint64_t max_body;
  int64_t timeout_ms; /* the task's timeout; 0 = none */
  char **secrets;     /* texts to redact, longest first */
  size_t n_secrets;
} mu_http_spec;

/* Parses and checks the spec. On success *ret is owned by the caller (mu_http_spec_free). On
 * failure returns -EINVAL (or -ENOMEM) with errbuf (MUSTER_ERRBUF_SIZE bytes) naming the field,
 * e.g. "http.url: scheme \"ftp\" not supported (want http or https)". No I/O. */
int mu_http_spec_parse(const char *spec_json, const char *config_json, mu_http_spec **ret, char *errbuf);
void mu_http_spec_free(mu_http_spec *s);

/* "1M", "512K", "1024", "2GiB" (powers of 1024). 0 or -EINVAL. */
int mu_http_size_parse(const char *text, uint64_t *ret_bytes);

/* Copies data with every secret of s replaced by "***". Caller frees; *ret_len (may be NULL)
 * gets the length; the copy is NUL-terminated. NULL when out of memory. */
char *mu_http_redact(const mu_http_spec *s, const char *data, size_t len, size_t *ret_len);

#endif
