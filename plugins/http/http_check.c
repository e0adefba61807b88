/* Response checks and extraction for the HTTP task (http_check.h). Messages show the actual
 * value, cut to a readable length; the caller redacts secrets before they leave the plugin. */
#include "http_check.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jpath.h"
#include "xpath.h"

#define SHOW 120 /* bytes of an actual value shown in a message */

char *mu_http_header_get(const char *headers, const char *name) {
  size_t nl = strlen(name);
  for (const char *line = headers; line != NULL && *line;) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    if (len > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
      const char *v = line + nl + 1, *end = line + len;
      while (v < end && (*v == ' ' || *v == '\t')) v++;
      while (end > v && isspace((unsigned char)end[-1])) end--;
      return strndup(v, (size_t)(end - v));
    }
    line = eol ? eol + 1 : NULL;
  }
  return NULL;
}

bool mu_http_status_ok(const mu_http_spec *s, long status) {
  if (s->n_status == 0 && s->n_ranges == 0) return status >= 200 && status <= 299;
  for (size_t i = 0; i < s->n_status; i++)
    if (status == (long)s->status[i]) return true;
  for (size_t i = 0; i < s->n_ranges; i++)
    if (status >= (long)s->ranges[i].from && status <= (long)s->ranges[i].to) return true;
  return false;
}

static void want_text(const mu_http_spec *s, char *buf, size_t cap) {
  if (s->n_status == 0 && s->n_ranges == 0) {
    snprintf(buf, cap, "200-299");
    return;
  }
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < s->n_status && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%u", n ? ", " : "", s->status[i]);
  for (size_t i = 0; i < s->n_ranges && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%u-%u", n ? ", " : "", s->ranges[i].from, s->ranges[i].to);
}

/* A printable excerpt of data: control bytes become '.', cut at SHOW with "...". */
static void excerpt(const char *data, size_t len, char *out, size_t cap) {
  size_t n = 0, lim = len < SHOW ? len : SHOW;
  for (size_t i = 0; i < lim && n + 4 < cap; i++) {
    unsigned char c = (unsigned char)data[i];
    out[n++] = (c < 0x20 || c == 0x7f || c == '"') ? (c == '"' ? '\'' : '.') : (char)c;
  }
  if (len > lim && n + 4 < cap) memcpy(out + n, "...", 3), n += 3;
  out[n] = '\0';
}

static const char *find_bytes(const char *hay, size_t hn, const char *needle) {
  size_t nn = strlen(needle);
  if (nn == 0) return hay;
  for (size_t i = 0; i + nn <= hn; i++)
    if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0) return hay + i;
  return NULL;
}

static json_t *body_json(mu_http_response *r, char *why, size_t cap) {
  if (!r->json_tried) {
    json_error_t je;
    r->json_tried = true;
    r->json = json_loadb(r->body ? r->body : "", r->body_len, JSON_DECODE_ANY, &je);
    if (r->json == NULL) snprintf(why, cap, "%s", je.text);
  } else if (r->json == NULL) {
    snprintf(why, cap, "invalid JSON");
  }
  return r->json;
}

/* The value at path as text, or NULL with why filled. Caller frees. */
static char *json_at(mu_http_response *r, const char *path, char *why, size_t cap) {
  char jwhy[160] = "";
  json_t *doc = body_json(r, jwhy, sizeof jwhy);
  if (doc == NULL) {
    snprintf(why, cap, "the response body is not JSON (%s)", jwhy);
    return NULL;
  }
  json_t *v = mu_jpath_eval(doc, path);
  if (v == NULL) {
    snprintf(why, cap, "got nothing: %s is not in the response", path);
    return NULL;
  }
  char *text = mu_jpath_text(v);
  if (text == NULL) snprintf(why, cap, "out of memory");
  return text;
}

void mu_http_response_done(mu_http_response *r) {
  json_decref(r->json);
  r->json = NULL;
  mu_xml_doc_free(r->xml);
  r->xml = NULL;
}

/* The value at XPath expr as text, or NULL with why filled. Caller frees. */
static char *xml_at(mu_http_response *r, const char *expr, char *why, size_t cap) {
  char xwhy[200] = "";
  if (!r->xml_tried) {
    r->xml_tried = true;
    r->xml = mu_xml_parse(r->body, r->body_len, xwhy, sizeof xwhy);
  } else if (r->xml == NULL) {
    snprintf(xwhy, sizeof xwhy, "not well-formed");
  }
  if (r->xml == NULL) {
    snprintf(why, cap, "the response body is not XML (%s)", xwhy);
    return NULL;
  }
  return mu_xpath_text(r->xml, expr, why, cap);
}

int mu_http_check_expect(const mu_http_spec *s, mu_http_response *r, char *msg, size_t cap) {
  char buf[SHOW + 8], why[300];
  if (!mu_http_status_ok(s, r->status)) {
    char want[256];
    want_text(s, want, sizeof want);
    snprintf(msg, cap, "expect.status: got %ld, want %s", r->status, want);
    return -1;
  }
  if (s->body_contains != NULL && find_bytes(r->body, r->body_len, s->body_contains) == NULL) {
    excerpt(r->body, r->body_len, buf, sizeof buf);
    snprintf(msg, cap, "expect.body_contains: body does not contain \"%s\"; got %zu bytes: \"%s\"", s->body_contains,
             r->body_len, buf);
    return -1;
  }
  if (s->body_not_contains != NULL) {
    const char *at = find_bytes(r->body, r->body_len, s->body_not_contains);
    if (at != NULL) {
      size_t off = (size_t)(at - r->body), from = off > 40 ? off - 40 : 0;
      excerpt(r->body + from, r->body_len - from, buf, sizeof buf);
      snprintf(msg, cap, "expect.body_not_contains: body contains \"%s\" at byte %zu: \"%s\"", s->body_not_contains,
               off, buf);
      return -1;
    }
  }
  for (size_t i = 0; i < s->n_json_equals; i++) {
    const mu_http_kv *kv = &s->json_equals[i];
    char *got = json_at(r, kv->key, why, sizeof why);
    if (got == NULL) {
      snprintf(msg, cap, "expect.json_equals[%s]: %s, want \"%s\"", kv->key, why, kv->value);
      return -1;
    }
    bool ok = strcmp(got, kv->value) == 0;
    if (!ok) {
      excerpt(got, strlen(got), buf, sizeof buf);
      snprintf(msg, cap, "expect.json_equals[%s]: got \"%s\", want \"%s\"", kv->key, buf, kv->value);
    }
    free(got);
    if (!ok) return -1;
  }
  for (size_t i = 0; i < s->n_json_matches; i++) {
    const mu_http_kv *kv = &s->json_matches[i];
    char *got = json_at(r, kv->key, why, sizeof why);
    if (got == NULL) {
      snprintf(msg, cap, "expect.json_matches[%s]: %s, want a match of /%s/", kv->key, why, kv->value);
      return -1;
    }
    regex_t re;
    bool ok = false;
    if (regcomp(&re, kv->value, REG_EXTENDED | REG_NOSUB) == 0) {
      ok = regexec(&re, got, 0, NULL, 0) == 0;
      regfree(&re);
    }
    if (!ok) {
      excerpt(got, strlen(got), buf, sizeof buf);
      snprintf(msg, cap, "expect.json_matches[%s]: got \"%s\", does not match /%s/", kv->key, buf, kv->value);
    }
    free(got);
    if (!ok) return -1;
  }
  for (size_t i = 0; i < s->n_xpath_equals; i++) {
    const mu_http_kv *kv = &s->xpath_equals[i];
    char *got = xml_at(r, kv->key, why, sizeof why);
    if (got == NULL) {
      snprintf(msg, cap, "expect.xpath_equals[%s]: %s, want \"%s\"", kv->key, why, kv->value);
      return -1;
    }
    bool ok = strcmp(got, kv->value) == 0;
    if (!ok) {
      excerpt(got, strlen(got), buf, sizeof buf);
      snprintf(msg, cap, "expect.xpath_equals[%s]: got \"%s\", want \"%s\"", kv->key, buf, kv->value);
    }
    free(got);
    if (!ok) return -1;
  }
  for (size_t i = 0; i < s->n_header_present; i++) {
    char *v = mu_http_header_get(r->headers, s->header_present[i]);
    if (v == NULL) {
      snprintf(msg, cap, "expect.header_present: the response has no \"%s\" header", s->header_present[i]);
      return -1;
    }
    free(v);
  }
  return 0;
}

int mu_http_extract(const mu_http_spec *s, mu_http_response *r,
                    int (*set)(void *arg, const char *key, const char *value), void *arg, char *msg, size_t cap) {
  char why[300];
  for (size_t i = 0; i < s->n_extract; i++) {
    const mu_http_kv *kv = &s->extract[i];
    char *v = json_at(r, kv->value, why, sizeof why);
    if (v == NULL) {
      snprintf(msg, cap, "extract.%s: %s", kv->key, why);
      return -1;
    }
    int rc = set(arg, kv->key, v);
    if (rc != 0)
      snprintf(msg, cap, "extract.%s: the agent refused the value (%zu bytes; max 4096)", kv->key, strlen(v));
    free(v);
    if (rc != 0) return -1;
  }
  for (size_t i = 0; i < s->n_extract_xpath; i++) {
    const mu_http_kv *kv = &s->extract_xpath[i];
    char *v = xml_at(r, kv->value, why, sizeof why);
    if (v == NULL) {
      snprintf(msg, cap, "extract_xpath.%s: %s", kv->key, why);
      return -1;
    }
    int rc = set(arg, kv->key, v);
    if (rc != 0)
      snprintf(msg, cap, "extract_xpath.%s: the agent refused the value (%zu bytes; max 4096)", kv->key, strlen(v));
    free(v);
    if (rc != 0) return -1;
  }
  for (size_t i = 0; i < s->n_extract_headers; i++) {
    const mu_http_kv *kv = &s->extract_headers[i];
    char *v = mu_http_header_get(r->headers, kv->value);
    if (v == NULL) {
      snprintf(msg, cap, "extract_headers.%s: the response has no \"%s\" header", kv->key, kv->value);
      return -1;
    }
    int rc = set(arg, kv->key, v);
    if (rc != 0)
      snprintf(msg, cap, "extract_headers.%s: the agent refused the value (%zu bytes; max 4096)", kv->key, strlen(v));
    free(v);
    if (rc != 0) return -1;
  }
  return 0;
}
