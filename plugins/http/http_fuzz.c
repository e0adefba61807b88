/* Fuzzes the HTTP task type's parsing: its spec (the TaskSpec JSON and its "http" section, as
 * the agent hands them over) and the checks run on a response from whatever server the task
 * calls. Input: "SPEC\n--\nHTTP\n--\nSTATUS\nHeader: v\n...\n\nBODY" (the body may hold any
 * bytes). Properties: an accepted spec has a known method, an http(s) URL and headers without
 * CR/LF; redaction leaves no secret in the text; every failed check says which. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_check.h"
#include "http_spec.h"
#include "jpath.h"
#include "lib/fuzz/fuzz_util.h"
#include "muster_plugin.h"

static int set_param(void *arg, const char *key, const char *value) {
  (void)arg;
  MU_FUZZ_CHECK(key[0] != '\0');
  return strlen(value) > 4096 ? -1 : 0; /* the agent's bound on a param */
}

static void check_spec(const mu_http_spec *s) {
  static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
  int known = 0;
  for (size_t i = 0; i < 6; i++) known |= strcmp(s->method, methods[i]) == 0;
  MU_FUZZ_CHECK(known);
  MU_FUZZ_CHECK(strncmp(s->url, "http://", 7) == 0 || strncmp(s->url, "https://", 8) == 0);
  for (size_t i = 0; i < s->n_headers; i++)
    MU_FUZZ_CHECK(strpbrk(s->headers[i].key, "\r\n:") == NULL && strpbrk(s->headers[i].value, "\r\n") == NULL);
  MU_FUZZ_CHECK(s->max_body > 0 && s->connect_timeout_ms > 0);
}

/* Redacting text must leave no secret in it (a secret holding '*' could be made up of the
 * "***" marks themselves, so only the others are checked). */
static void check_redact(const mu_http_spec *s, const char *text, size_t len) {
  size_t out_len = 0;
  char *out = mu_http_redact(s, text, len, &out_len);
  MU_FUZZ_CHECK(out != NULL && out[out_len] == '\0' && out_len <= 3 * len);
  for (size_t i = 0; i < s->n_secrets; i++) {
    const char *sec = s->secrets[i];
    if (strchr(sec, '*') != NULL) continue;
    MU_FUZZ_CHECK(memmem(out, out_len, sec, strlen(sec)) == NULL);
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *part[3];
  size_t len[3];
  if (mu_fuzz_split(data, size, "\n--\n", part, len, 3) != 0) return 0;
  mu_http_spec *s = NULL;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  int rc = mu_http_spec_parse(part[0][0] ? part[0] : NULL, part[1], &s, errbuf);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc < 0 && errbuf[0] != '\0' && s == NULL);
    mu_fuzz_split_free(part, 3);
    return 0;
  }
  check_spec(s);

  /* The response: status line, header lines, a blank line, the body. */
  char *resp = part[2];
  char *headers = strchr(resp, '\n');
  headers = headers ? headers + 1 : resp + strlen(resp);
  char *blank = strstr(headers, "\n\n");
  const char *body = blank ? blank + 2 : "";
  size_t body_len = blank ? len[2] - (size_t)(body - resp) : 0;
  char *header_text = strndup(headers, blank ? (size_t)(blank - headers + 1) : strlen(headers));
  MU_FUZZ_CHECK(header_text != NULL);
  mu_http_response r = {.status = strtol(resp, NULL, 10), .headers = header_text, .body = body, .body_len = body_len};
  char msg[512] = "";
  if (mu_http_check_expect(s, &r, msg, sizeof msg) != 0) MU_FUZZ_CHECK(msg[0] != '\0');
  msg[0] = '\0';
  if (mu_http_extract(s, &r, set_param, NULL, msg, sizeof msg) != 0) MU_FUZZ_CHECK(msg[0] != '\0');
  char *v = mu_http_header_get(header_text, "Content-Type");
  if (v != NULL) MU_FUZZ_CHECK(strchr(v, '\n') == NULL);
  free(v);
  mu_http_response_done(&r);
  check_redact(s, body, body_len);
  check_redact(s, msg, strlen(msg));
  free(header_text);
  mu_http_spec_free(s);
  mu_fuzz_split_free(part, 3);
  return 0;
}
