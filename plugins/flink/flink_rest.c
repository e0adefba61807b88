/* The Flink plugin's REST calls (flink_rest.h): an easy handle per call on the shared multi,
 * the reply gathered into a bounded buffer and handed to the caller with the curl result. */
#include "flink_rest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
  mu_flink_rest *r = arg;
  size_t n = size * nmemb;
  if (r->len + n > MU_FLINK_REST_MAX_BODY) {
    r->over = true;
    return 0;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n + 1) cap *= 2;
    char *g = realloc(r->body, cap);
    if (g == NULL) return 0;
    r->body = g;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
  return n;
}

static void release(mu_flink_rest *r) {
  if (r->xfer.easy != NULL) {
    mu_http_multi_remove(&r->xfer);
    curl_easy_cleanup(r->xfer.easy);
    r->xfer.easy = NULL;
  }
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  curl_mime_free(r->mime);
  r->mime = NULL;
}

static void on_done(void *arg, CURLcode result) {
  mu_flink_rest *r = arg;
  mu_flink_reply reply = {.curl = result, .body = r->body ? r->body : "", .len = r->len, .error = r->curl_err};
  if (result == CURLE_WRITE_ERROR && r->over) {
    reply.curl = CURLE_FILESIZE_EXCEEDED;
    reply.error = "reply larger than the plugin's bound";
  }
  if (reply.error[0] == '\0') reply.error = curl_easy_strerror(reply.curl);
  curl_easy_getinfo(r->xfer.easy, CURLINFO_RESPONSE_CODE, &reply.status);
  /* the callback may start the next call: hand over copies of what it reads */
  char *body = r->body;
  r->body = NULL;
  r->len = r->cap = 0;
  char err[CURL_ERROR_SIZE];
  snprintf(err, sizeof err, "%s", reply.error);
  reply.error = err;
  release(r);
  mu_flink_rest_cb cb = r->cb;
  r->cb = NULL;
  cb(r->arg, &reply);
  free(body);
}

int mu_flink_rest_start(mu_flink_rest *r, mu_http_multi *m, const char *method, const char *url, const char *json_body,
                        const char *upload_path, const char *upload_name, mu_flink_rest_cb cb, void *arg) {
  CURL *e = curl_easy_init();
  if (e == NULL) return -ENOMEM;
  r->multi = m;
  r->len = 0;
  r->over = false;
  r->curl_err[0] = '\0';
  r->cb = cb;
  r->arg = arg;
  r->xfer = (mu_http_xfer){.easy = e, .done = on_done, .arg = r};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "muster-flink/1.0");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, upload_path ? 10 * MU_FLINK_REST_TIMEOUT_MS : MU_FLINK_REST_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, MU_FLINK_REST_CONNECT_MS);
  r->headers = curl_slist_append(NULL, "Expect:");
  if (r->headers != NULL && json_body != NULL) {
    struct curl_slist *l = curl_slist_append(r->headers, "Content-Type: application/json");
    if (l != NULL) r->headers = l;
  }
  if (r->headers == NULL) goto fail;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  if (upload_path != NULL) {
    r->mime = curl_mime_init(e);
    curl_mimepart *part = r->mime ? curl_mime_addpart(r->mime) : NULL;
    if (part == NULL || curl_mime_name(part, "jarfile") != CURLE_OK ||
        curl_mime_filedata(part, upload_path) != CURLE_OK || curl_mime_filename(part, upload_name) != CURLE_OK ||
        curl_mime_type(part, "application/x-java-archive") != CURLE_OK)
      goto fail;
    curl_easy_setopt(e, CURLOPT_MIMEPOST, r->mime);
  } else if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
    const char *b = json_body ? json_body : "";
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, b);
    if (strcmp(method, "PATCH") == 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
  } else if (strcmp(method, "DELETE") == 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
  }
  if (mu_http_multi_add(m, &r->xfer) != 0) goto fail;
  return 0;
fail:
  release(r);
  r->cb = NULL;
  return -EIO;
}

void mu_flink_rest_abort(mu_flink_rest *r) {
  release(r);
  r->cb = NULL;
  free(r->body);
  r->body = NULL;
  r->len = r->cap = 0;
}

bool mu_flink_rest_busy(const mu_flink_rest *r) { return r->xfer.easy != NULL; }
