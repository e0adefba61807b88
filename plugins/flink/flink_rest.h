/* One REST call to a Flink JobManager at a time, per task, on the loop's shared curl multi
 * (plugins/http/http_multi.h): GET/POST/PATCH with a JSON body, or a multipart jar upload
 * (field "jarfile", Content-Type application/x-java-archive, no "Expect: 100-continue" as the
 * Flink docs advise). The reply body is kept up to MU_FLINK_REST_MAX_BODY bytes. */
#ifndef MU_FLINK_REST_H
#define MU_FLINK_REST_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "plugins/http/http_multi.h"

#define MU_FLINK_REST_MAX_BODY (4u * 1024u * 1024u)
#define MU_FLINK_REST_TIMEOUT_MS 30000L
#define MU_FLINK_REST_CONNECT_MS 5000L

typedef struct mu_flink_reply {
  CURLcode curl;    /* CURLE_OK when a reply arrived */
  long status;      /* HTTP status, 0 without a reply */
  const char *body; /* NUL-terminated, valid during the callback */
  size_t len;
  const char *error; /* curl's message when curl != CURLE_OK */
} mu_flink_reply;

typedef void (*mu_flink_rest_cb)(void *arg, const mu_flink_reply *reply);

typedef struct mu_flink_rest {
  mu_http_xfer xfer;
  mu_http_multi *multi;
  struct curl_slist *headers;
  curl_mime *mime;
  char *body;
  size_t len, cap;
  bool over;
  mu_flink_rest_cb cb;
  void *arg;
  char curl_err[CURL_ERROR_SIZE];
} mu_flink_rest;

/* Starts a call; cb runs once on the loop when it ends (not when aborted). json_body may be NULL
 * (POST sends an empty body). upload_path, when set, makes it a multipart upload of that file
 * as upload_name. Returns 0 or -ENOMEM / -EIO (cb never runs). At most one call at a time. */
int mu_flink_rest_start(mu_flink_rest *r, mu_http_multi *m, const char *method, const char *url, const char *json_body,
                        const char *upload_path, const char *upload_name, mu_flink_rest_cb cb, void *arg);
/* Aborts the call under way, if any; cb does not run. */
void mu_flink_rest_abort(mu_flink_rest *r);
bool mu_flink_rest_busy(const mu_flink_rest *r);

#endif
