/* The HTTP task type: one request (plus retries) per task on libcurl's multi interface,
 * driven by the agent's libuv loop through a multi shared by all HTTP tasks on that loop
 * (http_multi.c). The spec is checked by http_spec.c, the response judged by http_check.c.
 * Output is the status line, the headers and the (bounded) body, with secrets redacted.
 * Built as a plugin .so against plugins/sdk/muster_plugin.h alone. */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "http_check.h"
#include "http_conf.h"
#include "http_multi.h"
#include "http_spec.h"
#include "lib/base/trace.h"
#include "muster_plugin.h"

#define HTTP_MAX_HEADER_BYTES (64 * 1024)
#define HTTP_BACKOFF_FIRST_MS 250
#define HTTP_BACKOFF_MAX_MS 10000

typedef struct http_task {
  const muster_host_api *host;
  muster_task *task;
  mu_http_spec *spec;
  mu_http_multi *multi;
  mu_http_xfer xfer;
  struct curl_slist *hdr_list;
  char traceparent[MU_TRACEPARENT_LEN]; /* sent unless the spec sets its own */
  FILE *body_fp;
  char *body_path, *ca_path, *cert_path, *key_path; /* resolved against the task dir */
  char *body;                                       /* response body, <= max_body bytes */
  size_t body_len, body_cap;
  bool body_over;
  char *hdrs; /* last response's header lines */
  size_t hdrs_len;
  bool hdrs_over;
  char status_line[256];
  unsigned attempts;
  muster_timer *retry_timer;
  uint64_t start_ms;
  uint64_t attempt_ms;  /* when the current attempt began (request_duration_seconds) */
  char user_agent[256]; /* the plugin's config as the task started */
  mu_http_conf *conf;   /* the plugin's state (SDK v2), NULL with an older agent */
  bool finished;
  char curl_err[CURL_ERROR_SIZE];
} http_task;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static int64_t elapsed_ms(const http_task *ht) { return (int64_t)(now_ms() - ht->start_ms); }

/* Emits text to a stream with the spec's secrets redacted. */
static void emit(http_task *ht, muster_stream stream, const char *data, size_t len) {
  size_t n = 0;
  char *clean = mu_http_redact(ht->spec, data, len, &n);
  if (clean != NULL) ht->host->emit_output(ht->task, stream, clean, n);
  free(clean);
}

static void end(http_task *ht, muster_state state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void end(http_task *ht, muster_state state, const char *fmt, ...) {
  if (ht->finished) return;
  ht->finished = true;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char *clean = mu_http_redact(ht->spec, msg, strlen(msg), NULL);
  muster_result r = {state, state == MUSTER_STATE_SUCCEEDED ? 0 : -1, 0, clean ? clean : "http: out of memory"};
  if (state != MUSTER_STATE_SUCCEEDED) ht->host->log(ht->task, MUSTER_LOG_INFO, "%s", r.message);
  ht->host->finish(ht->task, &r);
  free(clean);
}

/* ---- curl callbacks (inside curl: never touch the multi here) ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
  http_task *ht = arg;
  size_t n = size * nmemb;
  uint64_t max = ht->spec->max_body;
  size_t room = ht->body_len < max ? (size_t)(max - ht->body_len) : 0;
  size_t take = n < room ? n : room;
  if (ht->body_len + take + 1 > ht->body_cap) {
    size_t cap = ht->body_cap ? ht->body_cap : 16384;
    while (cap < ht->body_len + take + 1) cap *= 2;
    if (cap > max + 1) cap = (size_t)max + 1;
    char *g = realloc(ht->body, cap);
    if (g == NULL) return 0;
    ht->body = g;
    ht->body_cap = cap;
  }
  memcpy(ht->body + ht->body_len, data, take);
  ht->body_len += take;
  ht->body[ht->body_len] = '\0';
  if (take < n) {
    ht->body_over = true;
    return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
  http_task *ht = arg;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) { /* a new response (redirect, 100, proxy): start over */
    size_t l = n;
    while (l > 0 && (data[l - 1] == '\r' || data[l - 1] == '\n')) l--;
    snprintf(ht->status_line, sizeof ht->status_line, "%.*s", (int)l, data);
    ht->hdrs_len = 0;
    ht->hdrs_over = false;
    if (ht->hdrs != NULL) ht->hdrs[0] = '\0';
    return n;
  }
  if (n <= 2 && (data[0] == '\r' || data[0] == '\n')) return n; /* end of headers */
  if (ht->hdrs_len + n + 1 > HTTP_MAX_HEADER_BYTES) {
    ht->hdrs_over = true;
    return n;
  }
  if (ht->hdrs == NULL) {
    ht->hdrs = malloc(HTTP_MAX_HEADER_BYTES);
    if (ht->hdrs == NULL) return 0;
  }
  memcpy(ht->hdrs + ht->hdrs_len, data, n);
  ht->hdrs_len += n;
  ht->hdrs[ht->hdrs_len] = '\0';
  return n;
}

/* ---- one attempt ---- */

static void on_done(void *arg, CURLcode result);
static void on_retry(muster_task *task, muster_timer *timer, void *user);

static int add_header(http_task *ht, const char *name, const char *value) {
  size_t len = strlen(name) + strlen(value) + 3;
  char *line = malloc(len);
  if (line == NULL) return -ENOMEM;
  if (*value == '\0') snprintf(line, len, "%s;", name); /* curl's way to send an empty value */
  else snprintf(line, len, "%s: %s", name, value);
  struct curl_slist *l = curl_slist_append(ht->hdr_list, line);
  free(line);
  if (l == NULL) return -ENOMEM;
  ht->hdr_list = l;
  return 0;
}

static bool has_header(const mu_http_spec *s, const char *name) {
  for (size_t i = 0; i < s->n_headers; i++)
    if (strcasecmp(s->headers[i].key, name) == 0) return true;
  return false;
}

static int build_headers(http_task *ht) {
  const mu_http_spec *s = ht->spec;
  int rc = 0;
  for (size_t i = 0; i < s->n_headers && rc == 0; i++) rc = add_header(ht, s->headers[i].key, s->headers[i].value);
  bool has_body = s->body != NULL || ht->body_path != NULL;
  if (rc == 0 && has_body && !has_header(s, "Content-Type")) {
    const char *ct = s->content_type ? s->content_type
                     : ht->body_path ? "application/octet-stream"
                                     : "text/plain; charset=utf-8";
    rc = add_header(ht, "Content-Type", ct);
  }
  if (rc == 0 && s->bearer_token != NULL && !has_header(s, "Authorization")) {
    size_t len = strlen(s->bearer_token) + 8;
    char *v = malloc(len);
    if (v == NULL) return -ENOMEM;
    snprintf(v, len, "Bearer %s", s->bearer_token);
    rc = add_header(ht, "Authorization", v);
    free(v);
  }
  if (rc == 0 && !has_header(s, "traceparent")) /* the job's trace (lib/base/trace.h) */
    rc = add_header(ht, "traceparent", ht->traceparent);
  if (rc == 0 && !has_header(s, "Expect")) { /* "Expect:" drops curl's 100-continue wait */
    struct curl_slist *l = curl_slist_append(ht->hdr_list, "Expect:");
    if (l == NULL) return -ENOMEM;
    ht->hdr_list = l;
  }
  return rc;
}

static void set_method_and_body(http_task *ht, CURL *e, int64_t file_size) {
  const mu_http_spec *s = ht->spec;
  const char *m = s->method;
  if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    return;
  }
  if (s->body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
  } else if (ht->body_fp != NULL) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READDATA, ht->body_fp);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)file_size);
  } else if (strcmp(m, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  }
  if (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
  else if (strcmp(m, "GET") == 0 && (s->body != NULL || ht->body_fp != NULL))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
}

/* Starts the next attempt. Returns 0, or non-zero after ending the task. */
static int begin_attempt(http_task *ht) {
  const mu_http_spec *s = ht->spec;
  int64_t budget = s->timeout_ms > 0 ? s->timeout_ms - elapsed_ms(ht) : MU_HTTP_DEFAULT_TIMEOUT_MS;
  if (budget <= 0) {
    end(ht, MUSTER_STATE_TIMED_OUT, "http: no time left for attempt %u", ht->attempts + 1);
    return -1;
  }
  ht->attempts++;
  ht->body_len = 0;
  ht->body_over = false;
  ht->hdrs_len = 0;
  ht->hdrs_over = false;
  ht->status_line[0] = '\0';
  ht->curl_err[0] = '\0';
  int64_t file_size = 0;
  if (ht->body_path != NULL) {
    struct stat sb;
    ht->body_fp = fopen(ht->body_path, "rb");
    if (ht->body_fp == NULL || fstat(fileno(ht->body_fp), &sb) != 0) {
      end(ht, MUSTER_STATE_FAILED, "http.body_file: cannot read \"%s\": %s", s->body_file, strerror(errno));
      return -1;
    }
    file_size = (int64_t)sb.st_size;
  }
  CURL *e = curl_easy_init();
  if (e == NULL) {
    end(ht, MUSTER_STATE_FAILED, "http: out of memory");
    return -1;
  }
  ht->xfer = (mu_http_xfer){.easy = e, .done = on_done, .arg = ht};
  curl_easy_setopt(e, CURLOPT_URL, s->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ht->curl_err);
  curl_easy_setopt(e, CURLOPT_USERAGENT, ht->user_agent);
  ht->attempt_ms = now_ms();
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, ht);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, ht);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)budget);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(s->connect_timeout_ms < budget ? s->connect_timeout_ms : budget));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max_body);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, s->follow_redirects ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, s->max_redirects);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
  if (ht->ca_path != NULL) curl_easy_setopt(e, CURLOPT_CAINFO, ht->ca_path);
  if (ht->cert_path != NULL) curl_easy_setopt(e, CURLOPT_SSLCERT, ht->cert_path);
  if (ht->key_path != NULL) curl_easy_setopt(e, CURLOPT_SSLKEY, ht->key_path);
  if (s->proxy != NULL) curl_easy_setopt(e, CURLOPT_PROXY, s->proxy);
  if (s->basic_user != NULL) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, s->basic_user);
    curl_easy_setopt(e, CURLOPT_PASSWORD, s->basic_password ? s->basic_password : "");
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, ht->hdr_list);
  set_method_and_body(ht, e, file_size);
  ht->host->log(ht->task, MUSTER_LOG_DEBUG, "attempt %u: %s (budget %lld ms)", ht->attempts, s->method,
                (long long)budget);
  if (mu_http_multi_add(ht->multi, &ht->xfer) != 0) {
    curl_easy_cleanup(e);
    ht->xfer.easy = NULL;
    end(ht, MUSTER_STATE_FAILED, "http: curl refused the transfer");
    return -1;
  }
  return 0;
}

static void close_attempt(http_task *ht) {
  if (ht->xfer.easy != NULL) {
    mu_http_multi_remove(&ht->xfer);
    curl_easy_cleanup(ht->xfer.easy);
    ht->xfer.easy = NULL;
  }
  if (ht->body_fp != NULL) fclose(ht->body_fp);
  ht->body_fp = NULL;
}

/* Waits and tries again, or ends the task when out of retries or time. */
static void retry_or_end(http_task *ht, const char *why, int64_t retry_after_ms) {
  const mu_http_spec *s = ht->spec;
  if (ht->attempts > s->max_retries) {
    end(ht, MUSTER_STATE_FAILED, "http: %s (after %u attempt%s)", why, ht->attempts, ht->attempts == 1 ? "" : "s");
    return;
  }
  int64_t delay = HTTP_BACKOFF_FIRST_MS;
  for (unsigned i = 1; i < ht->attempts && delay < HTTP_BACKOFF_MAX_MS; i++) delay *= 2;
  if (delay > HTTP_BACKOFF_MAX_MS) delay = HTTP_BACKOFF_MAX_MS;
  if (retry_after_ms >= 0) delay = retry_after_ms;
  if (s->timeout_ms > 0 && elapsed_ms(ht) + delay >= s->timeout_ms) {
    end(ht, MUSTER_STATE_FAILED, "http: %s (after %u attempt%s; a retry in %lld ms would pass the task timeout)", why,
        ht->attempts, ht->attempts == 1 ? "" : "s", (long long)delay);
    return;
  }
  char line[600];
  int n = snprintf(line, sizeof line, "http: attempt %u: %s; retrying in %lld ms%s\n", ht->attempts, why,
                   (long long)delay, retry_after_ms >= 0 ? " (Retry-After)" : "");
  emit(ht, MUSTER_STDERR, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  if (ht->host->timer_start(ht->task, (uint64_t)delay, 0, on_retry, ht, &ht->retry_timer) != 0)
    end(ht, MUSTER_STATE_FAILED, "http: %s (cannot schedule a retry)", why);
}

static void on_retry(muster_task *task, muster_timer *timer, void *user) {
  (void)task;
  (void)timer;
  http_task *ht = user;
  ht->retry_timer = NULL; /* one-shot: released by the host */
  if (!ht->finished) begin_attempt(ht);
}

/* Retry-After in ms (seconds or an HTTP date), or -1. */
static int64_t retry_after(const http_task *ht) {
  char *v = ht->hdrs ? mu_http_header_get(ht->hdrs, "Retry-After") : NULL;
  if (v == NULL) return -1;
  int64_t ms = -1;
  char *end = NULL;
  long long secs = strtoll(v, &end, 10);
  if (end != v && *end == '\0' && secs >= 0) {
    ms = secs > 86400 ? 86400000 : secs * 1000;
  } else {
    time_t t = curl_getdate(v, NULL);
    if (t != (time_t)-1) ms = t > time(NULL) ? (int64_t)(t - time(NULL)) * 1000 : 0;
  }
  free(v);
  return ms;
}

static int set_param(void *arg, const char *key, const char *value) {
  http_task *ht = arg;
  return ht->host->set_param(ht->task, key, value);
}

/* Emits status line, headers and body as the task's output. */
static void emit_response(http_task *ht) {
  size_t cap = strlen(ht->status_line) + ht->hdrs_len + ht->body_len + 64, n = 0;
  char *out = malloc(cap);
  if (out == NULL) return;
  n += (size_t)snprintf(out, cap, "%s\n", ht->status_line);
  for (size_t i = 0; i < ht->hdrs_len; i++)
    if (ht->hdrs[i] != '\r') out[n++] = ht->hdrs[i];
  out[n++] = '\n';
  if (ht->body_len > 0) {
    memcpy(out + n, ht->body, ht->body_len);
    n += ht->body_len;
    if (ht->body[ht->body_len - 1] != '\n') out[n++] = '\n';
  }
  emit(ht, MUSTER_STDOUT, out, n);
  free(out);
}

static void complete(http_task *ht, long status) {
  emit_response(ht);
  mu_http_response r = {.status = status,
                        .headers = ht->hdrs ? ht->hdrs : "",
                        .body = ht->body ? ht->body : "",
                        .body_len = ht->body_len};
  char msg[900];
  if (mu_http_check_expect(ht->spec, &r, msg, sizeof msg) != 0) {
    end(ht, MUSTER_STATE_FAILED, "http: %s", msg);
  } else if (mu_http_extract(ht->spec, &r, set_param, ht, msg, sizeof msg) != 0) {
    end(ht, MUSTER_STATE_FAILED, "http: %s", msg);
  } else {
    end(ht, MUSTER_STATE_SUCCEEDED, "%s %ld after %u attempt%s", ht->spec->method, status, ht->attempts,
        ht->attempts == 1 ? "" : "s");
  }
  mu_http_response_done(&r);
}

static bool connection_error(CURLcode rc) {
  return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_CONNECT ||
         rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE ||
         rc == CURLE_OPERATION_TIMEDOUT;
}

static void on_done(void *arg, CURLcode result) {
  http_task *ht = arg;
  const mu_http_spec *s = ht->spec;
  long status = 0;
  curl_easy_getinfo(ht->xfer.easy, CURLINFO_RESPONSE_CODE, &status);
  close_attempt(ht);
  mu_http_conf_count(ht->conf, result == CURLE_OK || status > 0 ? status : 0,
                     (double)(now_ms() - ht->attempt_ms) / 1e3);
  if (ht->finished) return;
  char why[600];
  if ((result == CURLE_WRITE_ERROR && ht->body_over) || result == CURLE_FILESIZE_EXCEEDED) {
    emit_response(ht);
    end(ht, MUSTER_STATE_FAILED, "http: max_body: the response body is larger than %llu bytes; transfer aborted",
        (unsigned long long)s->max_body);
  } else if (result == CURLE_TOO_MANY_REDIRECTS) {
    end(ht, MUSTER_STATE_FAILED, "http: max_redirects: more than %ld redirects", s->max_redirects);
  } else if (result == CURLE_OPERATION_TIMEDOUT && s->timeout_ms > 0 && elapsed_ms(ht) >= s->timeout_ms - 20) {
    end(ht, MUSTER_STATE_TIMED_OUT, "http: timed out after %lld ms (task timeout)", (long long)elapsed_ms(ht));
  } else if (result == CURLE_OPERATION_TIMEDOUT && s->timeout_ms == 0 &&
             elapsed_ms(ht) >= MU_HTTP_DEFAULT_TIMEOUT_MS - 20) {
    end(ht, MUSTER_STATE_FAILED, "http: request timed out after %d ms", MU_HTTP_DEFAULT_TIMEOUT_MS);
  } else if (result != CURLE_OK) {
    snprintf(why, sizeof why, "%s %s: %s%s%s", s->method, s->url, curl_easy_strerror(result),
             ht->curl_err[0] ? ": " : "", ht->curl_err);
    if (connection_error(result)) retry_or_end(ht, why, -1);
    else end(ht, MUSTER_STATE_FAILED, "http: %s", why);
  } else {
    bool retry = false;
    for (size_t i = 0; i < s->n_retry_on_status && !retry; i++) retry = (long)s->retry_on_status[i] == status;
    if (retry && ht->attempts <= s->max_retries) {
      snprintf(why, sizeof why, "got status %ld", status);
      retry_or_end(ht, why, retry_after(ht));
    } else {
      complete(ht, status);
    }
  }
}

/* ---- plugin callbacks ---- */

static int http_validate(const char *spec_json, const char *config_json, char *errbuf) {
  mu_http_spec *s = NULL;
  int rc = mu_http_spec_parse(spec_json, config_json, &s, errbuf);
  mu_http_spec_free(s);
  return rc;
}

/* A file named by the spec: relative to the task dir (or absolute where allowed); must exist. */
static int resolve(const char *task_dir, const char *name, const char *field, char **ret, char *errbuf) {
  if (name == NULL) return 0;
  size_t len = strlen(task_dir) + strlen(name) + 2;
  *ret = malloc(len);
  if (*ret == NULL) return -ENOMEM;
  if (name[0] == '/') snprintf(*ret, len, "%s", name);
  else snprintf(*ret, len, "%s/%s", task_dir, name);
  struct stat sb;
  if (stat(*ret, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: \"%s\" not found%s", field, name,
             name[0] == '/' ? "" : " in the task dir");
    return -ENOENT;
  }
  return 0;
}

static int http_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  http_task *ht = calloc(1, sizeof *ht);
  if (ht == NULL) return -ENOMEM;
  ht->host = host;
  ht->task = task;
  ht->start_ms = now_ms();
  ht->conf = mu_http_conf_of(task, host);
  snprintf(ht->user_agent, sizeof ht->user_agent, "%s", ht->conf != NULL ? ht->conf->user_agent : "muster-http/1.0");
  host->set_user_data(task, ht); /* freed in cleanup, whatever happens next */
  const muster_task_context *ctx = host->context(task);
  mu_traceparent(ctx->job_id, ctx->task_id, ctx->attempt, ht->traceparent);
  int rc = mu_http_spec_parse(ctx->spec_json, ctx->config_json, &ht->spec, errbuf);
  if (rc != 0) return rc;
  rc = resolve(ctx->task_dir, ht->spec->body_file, "http.body_file", &ht->body_path, errbuf);
  if (rc == 0) rc = resolve(ctx->task_dir, ht->spec->ca_file, "http.ca_file", &ht->ca_path, errbuf);
  if (rc == 0) rc = resolve(ctx->task_dir, ht->spec->client_cert, "http.auth.client_cert", &ht->cert_path, errbuf);
  if (rc == 0) rc = resolve(ctx->task_dir, ht->spec->client_key, "http.auth.client_key", &ht->key_path, errbuf);
  if (rc != 0) return rc;
  if (build_headers(ht) != 0 || mu_http_multi_acquire(host->loop(task), &ht->multi) != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "out of memory");
    return -ENOMEM;
  }
  begin_attempt(ht); /* on failure it has already ended the task */
  return 0;
}

static void http_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  http_task *ht = host->user_data(task);
  if (ht == NULL || ht->finished) return;
  close_attempt(ht);
  if (ht->retry_timer != NULL) host->timer_stop(task, ht->retry_timer);
  ht->retry_timer = NULL;
  const char *why = reason == MUSTER_CANCEL_TIMEOUT    ? "the task timeout passed"
                    : reason == MUSTER_CANCEL_SHUTDOWN ? "the agent is stopping"
                                                       : "cancelled";
  end(ht, reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED,
      "http: request aborted after %lld ms: %s", (long long)elapsed_ms(ht), why);
}

static void http_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  http_task *ht = user_data;
  if (ht == NULL) return;
  close_attempt(ht);
  mu_http_multi_release(ht->multi);
  curl_slist_free_all(ht->hdr_list);
  free(ht->body_path);
  free(ht->ca_path);
  free(ht->cert_path);
  free(ht->key_path);
  free(ht->body);
  free(ht->hdrs);
  mu_http_spec_free(ht->spec);
  free(ht);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "http",
    .version = "1.0.0",
    .description = "calls an HTTP(S) endpoint and checks the response",
    .validate = http_validate,
    .start = http_start,
    .cancel = http_cancel,
    .cleanup = http_cleanup,
    .configure = mu_http_configure,
    .health = mu_http_health,
    .describe = mu_http_describe,
    .shutdown = mu_http_shutdown,
};
