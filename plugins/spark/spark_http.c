/* Cluster-manager calls on the shared curl multi (spark_http.h). */
#define _GNU_SOURCE /* asprintf, explicit_bzero */
#include "spark_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugins/http/http_multi.h"

struct mu_spark_call {
  mu_http_multi *multi;
  mu_http_xfer xfer;
  struct curl_slist *hdrs;
  char *req_body;
  char *body;
  size_t len, cap;
  bool over;
  char location[1024];
  char err[CURL_ERROR_SIZE];
  mu_spark_call_cb cb;
  void *arg;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
  mu_spark_call *c = arg;
  size_t n = size * nmemb;
  if (c->len + n > MU_SPARK_HTTP_MAX_BODY) {
    c->over = true;
    return 0;
  }
  if (c->len + n + 1 > c->cap) {
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + n + 1) cap *= 2;
    char *g = realloc(c->body, cap);
    if (g == NULL) return 0;
    c->body = g;
    c->cap = cap;
  }
  memcpy(c->body + c->len, data, n);
  c->len += n;
  c->body[c->len] = '\0';
  return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
  mu_spark_call *c = arg;
  size_t n = size * nmemb;
  if (n > 9 && strncasecmp(data, "Location:", 9) == 0) {
    const char *v = data + 9;
    size_t l = n - 9;
    while (l > 0 && (*v == ' ' || *v == '\t')) v++, l--;
    while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' ')) l--;
    if (l < sizeof c->location) {
      memcpy(c->location, v, l);
      c->location[l] = '\0';
    }
  }
  return n;
}

static void destroy(mu_spark_call *c) {
  if (c->xfer.easy != NULL) {
    mu_http_multi_remove(&c->xfer);
    curl_easy_cleanup(c->xfer.easy);
  }
  curl_slist_free_all(c->hdrs);
  mu_http_multi_release(c->multi);
  free(c->req_body);
  free(c->body);
  free(c);
}

static void on_done(void *arg, CURLcode result) {
  mu_spark_call *c = arg;
  mu_spark_reply r = {0};
  curl_easy_getinfo(c->xfer.easy, CURLINFO_RESPONSE_CODE, &r.status);
  char why[CURL_ERROR_SIZE + 128];
  if (result != CURLE_OK) {
    if (c->over) snprintf(why, sizeof why, "answer larger than %d bytes", MU_SPARK_HTTP_MAX_BODY);
    else snprintf(why, sizeof why, "%s%s%s", curl_easy_strerror(result), c->err[0] ? ": " : "", c->err);
    r.error = why;
    r.status = 0;
  }
  r.body = c->body ? c->body : "";
  r.len = c->len;
  r.location = c->location[0] ? c->location : NULL;
  c->cb(c->arg, &r);
  destroy(c);
}

int mu_spark_call_start(uv_loop_t *loop, const char *method, const char *url, const char *json_body, long timeout_ms,
                        const mu_spark_auth *auth, mu_spark_call_cb cb, void *arg, mu_spark_call **ret) {
  mu_spark_call *c = calloc(1, sizeof *c);
  if (c == NULL) return -ENOMEM;
  c->cb = cb;
  c->arg = arg;
  if (mu_http_multi_acquire(loop, &c->multi) != 0) {
    free(c);
    return -ENOMEM;
  }
  CURL *e = curl_easy_init();
  if (e == NULL) {
    destroy(c);
    return -ENOMEM;
  }
  c->xfer = (mu_http_xfer){.easy = e, .done = on_done, .arg = c};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->err);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "muster-spark/1.0");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  c->hdrs = curl_slist_append(NULL, "Accept: application/json");
  c->hdrs = curl_slist_append(c->hdrs, "X-Requested-By: muster");
  if (auth != NULL && auth->ca_file != NULL) curl_easy_setopt(e, CURLOPT_CAINFO, auth->ca_file);
  if (auth != NULL && auth->token != NULL) {
    char *h = NULL;
    if (asprintf(&h, "Authorization: Bearer %s", auth->token) < 0) {
      destroy(c);
      return -ENOMEM;
    }
    c->hdrs = curl_slist_append(c->hdrs, h);
    explicit_bzero(h, strlen(h));
    free(h);
  } else if (auth != NULL && auth->negotiate) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_NEGOTIATE);
    curl_easy_setopt(e, CURLOPT_USERPWD, ":"); /* the credentials are the Kerberos ones */
  } else if (auth != NULL && auth->user != NULL) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, auth->user);
    curl_easy_setopt(e, CURLOPT_PASSWORD, auth->password ? auth->password : "");
  }
  if (json_body != NULL) {
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json;charset=UTF-8");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    c->req_body = strdup(json_body);
    if (c->req_body == NULL) {
      destroy(c);
      return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->req_body));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req_body);
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  else if (strcmp(method, "POST") == 0 && json_body == NULL) curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
  if (mu_http_multi_add(c->multi, &c->xfer) != 0) {
    destroy(c);
    return -EIO;
  }
  *ret = c;
  return 0;
}

void mu_spark_call_cancel(mu_spark_call *c) {
  if (c != NULL) destroy(c);
}
