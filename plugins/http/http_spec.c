/* Parsing and checking of the HTTP task spec (http_spec.h). Runs twice per task: at
 * validate() (result thrown away) and at start() (result kept), so both see the same rules.
 * `${secret.NAME}` in the URL, query, headers and body is replaced by that secret's value.
 * Fields are read through the SDK's spec_fields.h (aliases, typed getters, one error form). */
#include "http_spec.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/regex_size.h"
#include "jpath.h"
#include "xpath.h"
#include "muster_plugin.h"
#include "secret_refs.h"
#include "spec_fields.h"

/* ---- sizes ---- */

int mu_http_size_parse(const char *text, uint64_t *ret_bytes) {
  if (text == NULL || !isdigit((unsigned char)*text)) return -EINVAL;
  char *end;
  double v = strtod(text, &end);
  double mul = 1;
  switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B': mul = 1, end++; break;
    case 'K': mul = 1024.0, end++; break;
    case 'M': mul = 1024.0 * 1024, end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024, end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024, end++; break;
    default: return -EINVAL;
  }
  if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
  if (*end != '\0' || v * mul > 1e18) return -EINVAL;
  *ret_bytes = (uint64_t)(v * mul);
  return 0;
}

/* ---- secrets ---- */

static int by_length_desc(const void *a, const void *b) {
  size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

static int add_secret(mu_http_spec *s, const char *v) {
  if (v == NULL || *v == '\0') return 0;
  for (size_t i = 0; i < s->n_secrets; i++)
    if (strcmp(s->secrets[i], v) == 0) return 0;
  char **grown = realloc(s->secrets, (s->n_secrets + 1) * sizeof *grown);
  if (grown == NULL) return -ENOMEM;
  s->secrets = grown;
  s->secrets[s->n_secrets] = strdup(v);
  if (s->secrets[s->n_secrets] == NULL) return -ENOMEM;
  s->n_secrets++;
  return 0;
}

char *mu_http_redact(const mu_http_spec *s, const char *data, size_t len, size_t *ret_len) {
  /* "***" is never longer than a secret of 3+ bytes; shorter secrets grow the text a little. */
  size_t cap = len * 3 + 1, n = 0;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  size_t i = 0;
  while (i < len) {
    size_t hit = 0;
    for (size_t k = 0; k < s->n_secrets && hit == 0; k++) {
      size_t sl = strlen(s->secrets[k]);
      if (sl <= len - i && memcmp(data + i, s->secrets[k], sl) == 0) hit = sl;
    }
    if (hit > 0) {
      memcpy(out + n, "***", 3);
      n += 3;
      i += hit;
    } else {
      out[n++] = data[i++];
    }
  }
  out[n] = '\0';
  if (ret_len != NULL) *ret_len = n;
  return out;
}

/* ---- field readers ---- */

typedef struct parser {
  json_t *secrets; /* the spec's secrets array (may be empty) */
  char *errbuf;
} parser;

static int read_str(parser *ps, json_t *o, const char *camel, const char *snake, const char *field, bool subst,
                    char **ret) {
  const char *v = NULL;
  int rc = muster_field_string(o, camel, snake, field, &v, ps->errbuf);
  if (rc != 0 || v == NULL) return rc;
  if (subst) return muster_secret_refs_substitute(ps->secrets, v, field, ret, ps->errbuf);
  return (*ret = strdup(v)) ? 0 : -ENOMEM;
}

static int read_map(parser *ps, json_t *o, const char *camel, const char *snake, const char *field, bool subst,
                    mu_http_kv **ret, size_t *ret_n) {
  json_t *v = NULL;
  int orc = muster_field_object(o, camel, snake, field, "strings", &v, ps->errbuf);
  if (orc != 0 || v == NULL) return orc;
  if (json_object_size(v) > MU_HTTP_MAX_ITEMS)
    return muster_field_fail(ps->errbuf, "%s: more than %d entries", field, MU_HTTP_MAX_ITEMS);
  mu_http_kv *kv = calloc(json_object_size(v) + 1, sizeof *kv);
  if (kv == NULL) return -ENOMEM;
  *ret = kv;
  const char *key;
  json_t *val;
  json_object_foreach(v, key, val) {
    char f[300];
    snprintf(f, sizeof f, "%s.%s", field, key);
    if (!json_is_string(val)) return muster_field_fail(ps->errbuf, "%s: must be a string", f);
    kv[*ret_n].key = strdup(key);
    if (kv[*ret_n].key == NULL) return -ENOMEM;
    (*ret_n)++;
    int rc =
        subst ? muster_secret_refs_substitute(ps->secrets, json_string_value(val), f, &kv[*ret_n - 1].value, ps->errbuf)
              : ((kv[*ret_n - 1].value = strdup(json_string_value(val))) ? 0 : -ENOMEM);
    if (rc != 0) return rc;
  }
  return 0;
}

static int read_uints(parser *ps, json_t *o, const char *camel, const char *snake, const char *field, unsigned lo,
                      unsigned hi, unsigned **ret, size_t *ret_n) {
  json_t *v = NULL;
  int lrc = muster_field_list(o, camel, snake, field, "numbers", MU_HTTP_MAX_ITEMS, &v, ps->errbuf);
  if (lrc != 0 || v == NULL) return lrc;
  unsigned *u = calloc(json_array_size(v) + 1, sizeof *u);
  if (u == NULL) return -ENOMEM;
  *ret = u;
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    json_int_t x = json_is_integer(e) ? json_integer_value(e) : -1;
    if (json_is_string(e)) x = strtoll(json_string_value(e), NULL, 10); /* uint32 may come as text */
    if (x < lo || x > hi)
      return muster_field_fail(ps->errbuf, "%s[%zu]: must be a number from %u to %u", field, i, lo, hi);
    u[(*ret_n)++] = (unsigned)x;
  }
  return 0;
}

static int read_uint(parser *ps, json_t *o, const char *camel, const char *snake, const char *field, unsigned hi,
                     unsigned *ret, bool *ret_set) {
  int64_t v = -1;
  int rc = muster_field_int(o, camel, snake, field, 0, hi, &v, ps->errbuf);
  if (rc != 0 || v < 0) return rc;
  *ret = (unsigned)v;
  if (ret_set) *ret_set = true;
  return 0;
}

/* A path inside the task dir: relative, no "..". */
static int check_rel_path(const char *p, const char *field, bool allow_abs, char *errbuf) {
  if (p == NULL) return 0;
  if (*p == '\0') return muster_field_fail(errbuf, "%s: must not be empty", field);
  if ((!allow_abs && p[0] == '/') || strstr(p, "..") != NULL)
    return muster_field_fail(errbuf, "%s: \"%s\" must be a path inside the task dir, without \"..\"", field, p);
  return 0;
}

static bool has_ctl(const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p == '\r' || *p == '\n' || (*p < 0x20 && *p != '\t') || *p == 0x7f) return true;
  return false;
}

static bool is_token(const char *v) {
  if (*v == '\0') return false;
  for (const char *p = v; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL) return false;
  return true;
}

static const char *const fields[] = {"method",
                                     "url",
                                     "query",
                                     "headers",
                                     "body",
                                     "bodyJson",
                                     "body_json",
                                     "form",
                                     "bodyFile",
                                     "body_file",
                                     "auth",
                                     "connectTimeout",
                                     "connect_timeout",
                                     "maxRedirects",
                                     "max_redirects",
                                     "followRedirects",
                                     "follow_redirects",
                                     "insecureSkipVerify",
                                     "insecure_skip_verify",
                                     "caFile",
                                     "ca_file",
                                     "proxy",
                                     "expect",
                                     "extract",
                                     "extractHeaders",
                                     "extract_headers",
                                     "extractXpath",
                                     "extract_xpath",
                                     "retryOnStatus",
                                     "retry_on_status",
                                     "maxRetries",
                                     "max_retries",
                                     "maxBody",
                                     "max_body"};

/* Appends one percent-encoded "k=v" to a form body. */
static void form_escape(char *dst, size_t *n, const char *src) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
    if (isalnum(*p) || strchr("-._~", *p)) {
      dst[(*n)++] = (char)*p;
    } else if (*p == ' ') {
      dst[(*n)++] = '+';
    } else {
      dst[(*n)++] = '%';
      dst[(*n)++] = hex[*p >> 4];
      dst[(*n)++] = hex[*p & 15];
    }
  }
}

static int build_url(parser *ps, mu_http_spec *s, mu_http_kv *query, size_t n_query) {
  if (s->url == NULL || *s->url == '\0') return muster_field_fail(ps->errbuf, "http.url: required");
  if (has_ctl(s->url) || strchr(s->url, ' ') != NULL)
    return muster_field_fail(ps->errbuf, "http.url: contains spaces or control characters");
  CURLU *u = curl_url();
  if (u == NULL) return -ENOMEM;
  int rc = 0;
  char *scheme = NULL, *host = NULL, *full = NULL;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, s->url, 0);
  if (uc != CURLUE_OK) {
    rc = muster_field_fail(ps->errbuf, "http.url: malformed URL: %s", curl_url_strerror(uc));
    goto done;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
    rc = muster_field_fail(ps->errbuf, "http.url: scheme \"%s\" not supported (want http or https)",
                           scheme ? scheme : "");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL || *host == '\0') {
    rc = muster_field_fail(ps->errbuf, "http.url: no host");
    goto done;
  }
  for (size_t i = 0; i < n_query; i++) {
    size_t len = strlen(query[i].key) + strlen(query[i].value) + 2;
    char *kv = malloc(len);
    if (kv == NULL) {
      rc = -ENOMEM;
      goto done;
    }
    snprintf(kv, len, "%s=%s", query[i].key, query[i].value);
    uc = curl_url_set(u, CURLUPART_QUERY, kv, CURLU_APPENDQUERY | CURLU_URLENCODE);
    free(kv);
    if (uc != CURLUE_OK) {
      rc = muster_field_fail(ps->errbuf, "http.query.%s: %s", query[i].key, curl_url_strerror(uc));
      goto done;
    }
  }
  if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
    rc = muster_field_fail(ps->errbuf, "http.url: cannot be rebuilt");
    goto done;
  }
  free(s->url);
  s->url = strdup(full);
  if (s->url == NULL) rc = -ENOMEM;
done:
  curl_free(scheme);
  curl_free(host);
  curl_free(full);
  curl_url_cleanup(u);
  return rc;
}

static int parse_body(parser *ps, json_t *h, mu_http_spec *s) {
  char *body = NULL, *body_json = NULL;
  mu_http_kv *form = NULL;
  size_t n_form = 0;
  int rc;
  rc = read_str(ps, h, "body", NULL, "http.body", true, &body);
  if (rc == 0) rc = read_str(ps, h, "bodyJson", "body_json", "http.body_json", true, &body_json);
  if (rc == 0) rc = read_map(ps, h, "form", NULL, "http.form", true, &form, &n_form);
  if (rc == 0) rc = read_str(ps, h, "bodyFile", "body_file", "http.body_file", false, &s->body_file);
  if (rc != 0) goto done;
  int given = (body != NULL) + (body_json != NULL) + (form != NULL) + (s->body_file != NULL);
  if (given > 1) {
    rc = muster_field_fail(ps->errbuf, "http: give only one of body, body_json, form or body_file");
    goto done;
  }
  rc = check_rel_path(s->body_file, "http.body_file", false, ps->errbuf);
  if (rc != 0) goto done;
  if (body_json != NULL) {
    json_error_t je;
    json_t *doc = json_loads(body_json, JSON_DECODE_ANY, &je);
    if (doc == NULL) {
      rc = muster_field_fail(ps->errbuf, "http.body_json: not JSON: %s (line %d)", je.text, je.line);
      goto done;
    }
    json_decref(doc);
    s->body = body_json;
    body_json = NULL;
    s->content_type = "application/json";
  } else if (body != NULL) {
    s->body = body;
    body = NULL;
  } else if (form != NULL) {
    size_t cap = 1;
    for (size_t i = 0; i < n_form; i++) cap += 3 * (strlen(form[i].key) + strlen(form[i].value)) + 2;
    s->body = malloc(cap);
    if (s->body == NULL) {
      rc = -ENOMEM;
      goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < n_form; i++) {
      if (i > 0) s->body[n++] = '&';
      form_escape(s->body, &n, form[i].key);
      s->body[n++] = '=';
      form_escape(s->body, &n, form[i].value);
    }
    s->body[n] = '\0';
    s->content_type = "application/x-www-form-urlencoded";
  }
  if (s->body != NULL) s->body_len = strlen(s->body);
done:
  free(body);
  free(body_json);
  for (size_t i = 0; i < n_form; i++) free(form[i].key), free(form[i].value);
  free(form);
  return rc;
}

static int parse_auth(parser *ps, json_t *h, mu_http_spec *s) {
  json_t *a = NULL;
  int orc = muster_field_object(h, "auth", NULL, "http.auth", NULL, &a, ps->errbuf);
  if (orc != 0 || a == NULL) return orc;
  static const char *const known[] = {"basicUser",    "basic_user", "basicPassword", "basic_password", "bearerToken",
                                      "bearer_token", "clientCert", "client_cert",   "clientKey",      "client_key"};
  int rc;
  rc = muster_fields_check_known(a, "http.auth", known, sizeof known / sizeof *known, ps->errbuf);
  if (rc == 0) rc = read_str(ps, a, "basicUser", "basic_user", "http.auth.basic_user", true, &s->basic_user);
  if (rc == 0)
    rc = read_str(ps, a, "basicPassword", "basic_password", "http.auth.basic_password", true, &s->basic_password);
  if (rc == 0) rc = read_str(ps, a, "bearerToken", "bearer_token", "http.auth.bearer_token", true, &s->bearer_token);
  if (rc == 0) rc = read_str(ps, a, "clientCert", "client_cert", "http.auth.client_cert", false, &s->client_cert);
  if (rc == 0) rc = read_str(ps, a, "clientKey", "client_key", "http.auth.client_key", false, &s->client_key);
  if (rc != 0) return rc;
  if (s->basic_password != NULL && s->basic_user == NULL)
    return muster_field_fail(ps->errbuf, "http.auth.basic_password: given without basic_user");
  if (s->basic_user != NULL && (strchr(s->basic_user, ':') || has_ctl(s->basic_user)))
    return muster_field_fail(ps->errbuf, "http.auth.basic_user: must not contain ':' or control characters");
  if (s->bearer_token != NULL && (has_ctl(s->bearer_token) || *s->bearer_token == '\0'))
    return muster_field_fail(ps->errbuf,
                             "http.auth.bearer_token: must be non-empty, without CR/LF or control characters");
  if (s->basic_user != NULL && s->bearer_token != NULL)
    return muster_field_fail(ps->errbuf, "http.auth: give basic_user or bearer_token, not both");
  if (s->client_key != NULL && s->client_cert == NULL)
    return muster_field_fail(ps->errbuf, "http.auth.client_key: given without client_cert");
  rc = check_rel_path(s->client_cert, "http.auth.client_cert", true, ps->errbuf);
  if (rc == 0) rc = check_rel_path(s->client_key, "http.auth.client_key", true, ps->errbuf);
  if (rc != 0) return rc;
  rc = add_secret(s, s->basic_password);
  if (rc == 0) rc = add_secret(s, s->bearer_token);
  if (rc != 0) return rc;
  if (s->basic_user != NULL) {
    /* the Authorization header an echoing server would show back */
    char raw[1024], b64[1400];
    int n = snprintf(raw, sizeof raw, "%s:%s", s->basic_user, s->basic_password ? s->basic_password : "");
    if (n > 0 && (size_t)n < sizeof raw && s->basic_password && *s->basic_password) {
      static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      size_t o = 0;
      for (int i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)raw[i] << 16;
        if (i + 1 < n) v |= (unsigned char)raw[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)raw[i + 2];
        b64[o++] = tbl[(v >> 18) & 63];
        b64[o++] = tbl[(v >> 12) & 63];
        b64[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        b64[o++] = i + 2 < n ? tbl[v & 63] : '=';
      }
      b64[o] = '\0';
      rc = add_secret(s, b64);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

static int parse_expect(parser *ps, json_t *h, mu_http_spec *s) {
  json_t *e = NULL;
  int orc = muster_field_object(h, "expect", NULL, "http.expect", NULL, &e, ps->errbuf);
  if (orc != 0 || e == NULL) return orc;
  static const char *const known[] = {"status",         "statusRanges",    "status_ranges",     "bodyContains",
                                      "body_contains",  "bodyNotContains", "body_not_contains", "jsonEquals",
                                      "json_equals",    "jsonMatches",     "json_matches",      "headerPresent",
                                      "header_present", "xpathEquals",     "xpath_equals"};
  int rc;
  rc = muster_fields_check_known(e, "http.expect", known, sizeof known / sizeof *known, ps->errbuf);
  if (rc == 0) rc = read_uints(ps, e, "status", NULL, "http.expect.status", 100, 599, &s->status, &s->n_status);
  if (rc == 0)
    rc = read_str(ps, e, "bodyContains", "body_contains", "http.expect.body_contains", false, &s->body_contains);
  if (rc == 0)
    rc = read_str(ps, e, "bodyNotContains", "body_not_contains", "http.expect.body_not_contains", false,
                  &s->body_not_contains);
  if (rc == 0)
    rc = read_map(ps, e, "jsonEquals", "json_equals", "http.expect.json_equals", false, &s->json_equals,
                  &s->n_json_equals);
  if (rc == 0)
    rc = read_map(ps, e, "jsonMatches", "json_matches", "http.expect.json_matches", false, &s->json_matches,
                  &s->n_json_matches);
  if (rc == 0)
    rc = read_map(ps, e, "xpathEquals", "xpath_equals", "http.expect.xpath_equals", false, &s->xpath_equals,
                  &s->n_xpath_equals);
  if (rc != 0) return rc;
  json_t *ranges = muster_field_get(e, "statusRanges", "status_ranges");
  if (ranges != NULL) {
    if (!json_is_array(ranges) || json_array_size(ranges) > MU_HTTP_MAX_ITEMS)
      return muster_field_fail(ps->errbuf, "http.expect.status_ranges: must be a list of {from, to}");
    s->ranges = calloc(json_array_size(ranges) + 1, sizeof *s->ranges);
    if (s->ranges == NULL) return -ENOMEM;
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r) {
      char f[64];
      snprintf(f, sizeof f, "http.expect.status_ranges[%zu]", i);
      if (!json_is_object(r)) return muster_field_fail(ps->errbuf, "%s: must be {from, to}", f);
      unsigned from = 0, to = 0;
      rc = read_uint(ps, r, "from", NULL, f, 599, &from, NULL);
      if (rc == 0) rc = read_uint(ps, r, "to", NULL, f, 599, &to, NULL);
      if (rc != 0) return rc;
      if (from < 100 || to < from)
        return muster_field_fail(ps->errbuf, "%s: want 100 <= from <= to <= 599, got %u-%u", f, from, to);
      s->ranges[s->n_ranges++] = (mu_http_range){from, to};
    }
  }
  json_t *hp = muster_field_get(e, "headerPresent", "header_present");
  if (hp != NULL) {
    if (!json_is_array(hp) || json_array_size(hp) > MU_HTTP_MAX_ITEMS)
      return muster_field_fail(ps->errbuf, "http.expect.header_present: must be a list of header names");
    s->header_present = calloc(json_array_size(hp) + 1, sizeof *s->header_present);
    if (s->header_present == NULL) return -ENOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(hp, i, v) {
      if (!json_is_string(v) || !is_token(json_string_value(v)))
        return muster_field_fail(ps->errbuf, "http.expect.header_present[%zu]: must be a header name", i);
      s->header_present[s->n_header_present] = strdup(json_string_value(v));
      if (s->header_present[s->n_header_present++] == NULL) return -ENOMEM;
    }
  }
  char why[200];
  for (size_t i = 0; i < s->n_xpath_equals; i++)
    if (mu_xpath_check(s->xpath_equals[i].key, why, sizeof why) != 0)
      return muster_field_fail(ps->errbuf, "http.expect.xpath_equals: bad XPath \"%s\": %s", s->xpath_equals[i].key,
                               why);
  for (size_t i = 0; i < s->n_json_equals; i++)
    if (mu_jpath_check(s->json_equals[i].key, why, sizeof why) != 0)
      return muster_field_fail(ps->errbuf, "http.expect.json_equals: bad JSON path \"%s\": %s", s->json_equals[i].key,
                               why);
  for (size_t i = 0; i < s->n_json_matches; i++) {
    if (mu_jpath_check(s->json_matches[i].key, why, sizeof why) != 0)
      return muster_field_fail(ps->errbuf, "http.expect.json_matches: bad JSON path \"%s\": %s", s->json_matches[i].key,
                               why);
    if (mu_regex_check_size(s->json_matches[i].value, MU_REGEX_MAX_UNITS, why, sizeof why) != 0)
      return muster_field_fail(ps->errbuf, "http.expect.json_matches.%s: regular expression %s", s->json_matches[i].key,
                               why);
    regex_t re;
    int rrc = regcomp(&re, s->json_matches[i].value, REG_EXTENDED | REG_NOSUB);
    if (rrc != 0) {
      regerror(rrc, &re, why, sizeof why);
      return muster_field_fail(ps->errbuf, "http.expect.json_matches.%s: bad regular expression: %s",
                               s->json_matches[i].key, why);
    }
    regfree(&re);
  }
  return 0;
}

static bool param_key_ok(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > 128) return false;
  for (const char *p = k; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') return false;
  return true;
}

static int parse_rest(parser *ps, json_t *spec, json_t *h, mu_http_spec *s) {
  int rc;
  char *method = NULL, *ct = NULL, *maxb = NULL, *tmo = NULL;
  mu_http_kv *query = NULL;
  size_t n_query = 0;
  unsigned max_redirects = 0;
  bool redirects_set = false, retries_set = false;
  rc = read_str(ps, h, "method", NULL, "http.method", false, &method);
  if (rc != 0) goto done;
  const char *m = method ? method : "GET";
  static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
  for (size_t i = 0; i < 6 && s->method == NULL; i++)
    if (strcasecmp(m, methods[i]) == 0) s->method = strdup(methods[i]);
  if (s->method == NULL) {
    rc = muster_field_fail(ps->errbuf,
                           "http.method: unknown method \"%s\" (want GET, POST, PUT, PATCH, DELETE or HEAD)", m);
    goto done;
  }
  rc = read_str(ps, h, "url", NULL, "http.url", true, &s->url);
  if (rc == 0) rc = read_map(ps, h, "query", NULL, "http.query", true, &query, &n_query);
  if (rc == 0) rc = build_url(ps, s, query, n_query);
  if (rc == 0) rc = read_map(ps, h, "headers", NULL, "http.headers", true, &s->headers, &s->n_headers);
  if (rc != 0) goto done;
  for (size_t i = 0; i < s->n_headers; i++) {
    if (!is_token(s->headers[i].key)) {
      rc = muster_field_fail(ps->errbuf, "http.headers: \"%s\" is not a valid header name", s->headers[i].key);
      goto done;
    }
    if (has_ctl(s->headers[i].value)) {
      rc = muster_field_fail(ps->errbuf,
                             "http.headers.%s: value contains CR, LF or control characters (header injection)",
                             s->headers[i].key);
      goto done;
    }
  }
  rc = parse_body(ps, h, s);
  if (rc == 0) rc = parse_auth(ps, h, s);
  if (rc == 0) rc = parse_expect(ps, h, s);
  if (rc != 0) goto done;
  rc = read_str(ps, h, "connectTimeout", "connect_timeout", "http.connect_timeout", false, &ct);
  if (rc != 0) goto done;
  s->connect_timeout_ms = MU_HTTP_DEFAULT_CONNECT_MS;
  if (ct != NULL && (muster_duration_parse(ct, &s->connect_timeout_ms) != 0 || s->connect_timeout_ms <= 0)) {
    rc = muster_field_fail(ps->errbuf, "http.connect_timeout: bad duration \"%s\" (e.g. \"5s\", \"500ms\")", ct);
    goto done;
  }
  rc = read_uint(ps, h, "maxRedirects", "max_redirects", "http.max_redirects", 100, &max_redirects, &redirects_set);
  if (rc == 0)
    rc = muster_field_bool(h, "followRedirects", "follow_redirects", "http.follow_redirects", &s->follow_redirects,
                           ps->errbuf);
  if (rc == 0)
    rc = muster_field_bool(h, "insecureSkipVerify", "insecure_skip_verify", "http.insecure_skip_verify", &s->insecure,
                           ps->errbuf);
  if (rc == 0) rc = read_str(ps, h, "caFile", "ca_file", "http.ca_file", false, &s->ca_file);
  if (rc == 0) rc = check_rel_path(s->ca_file, "http.ca_file", true, ps->errbuf);
  if (rc == 0) rc = read_str(ps, h, "proxy", NULL, "http.proxy", true, &s->proxy);
  if (rc != 0) goto done;
  if (redirects_set && max_redirects > 0) s->follow_redirects = true;
  s->max_redirects = redirects_set && max_redirects > 0 ? (long)max_redirects : MU_HTTP_DEFAULT_MAX_REDIRECTS;
  if (s->proxy != NULL && (has_ctl(s->proxy) || *s->proxy == '\0')) {
    rc = muster_field_fail(ps->errbuf, "http.proxy: must be a non-empty URL without control characters");
    goto done;
  }
  rc = read_map(ps, h, "extract", NULL, "http.extract", false, &s->extract, &s->n_extract);
  if (rc == 0)
    rc = read_map(ps, h, "extractHeaders", "extract_headers", "http.extract_headers", false, &s->extract_headers,
                  &s->n_extract_headers);
  if (rc == 0)
    rc = read_map(ps, h, "extractXpath", "extract_xpath", "http.extract_xpath", false, &s->extract_xpath,
                  &s->n_extract_xpath);
  if (rc != 0) goto done;
  char why[200];
  for (size_t i = 0; i < s->n_extract; i++) {
    if (!param_key_ok(s->extract[i].key)) {
      rc = muster_field_fail(ps->errbuf, "http.extract: bad param name \"%s\" (want [A-Za-z0-9_.-], 1-128 bytes)",
                             s->extract[i].key);
      goto done;
    }
    if (mu_jpath_check(s->extract[i].value, why, sizeof why) != 0) {
      rc = muster_field_fail(ps->errbuf, "http.extract.%s: bad JSON path \"%s\": %s", s->extract[i].key,
                             s->extract[i].value, why);
      goto done;
    }
  }
  for (size_t i = 0; i < s->n_extract_xpath; i++) {
    if (!param_key_ok(s->extract_xpath[i].key)) {
      rc = muster_field_fail(ps->errbuf, "http.extract_xpath: bad param name \"%s\" (want [A-Za-z0-9_.-], 1-128 bytes)",
                             s->extract_xpath[i].key);
      goto done;
    }
    if (mu_xpath_check(s->extract_xpath[i].value, why, sizeof why) != 0) {
      rc = muster_field_fail(ps->errbuf, "http.extract_xpath.%s: bad XPath \"%s\": %s", s->extract_xpath[i].key,
                             s->extract_xpath[i].value, why);
      goto done;
    }
  }
  for (size_t i = 0; i < s->n_extract_headers; i++) {
    if (!param_key_ok(s->extract_headers[i].key) || !is_token(s->extract_headers[i].value)) {
      rc = muster_field_fail(ps->errbuf, "http.extract_headers.%s: want a param name mapped to a header name",
                             s->extract_headers[i].key);
      goto done;
    }
  }
  rc = read_uints(ps, h, "retryOnStatus", "retry_on_status", "http.retry_on_status", 100, 599, &s->retry_on_status,
                  &s->n_retry_on_status);
  if (rc == 0)
    rc = read_uint(ps, h, "maxRetries", "max_retries", "http.max_retries", 100, &s->max_retries, &retries_set);
  if (rc != 0) goto done;
  if (!retries_set && s->n_retry_on_status > 0) s->max_retries = MU_HTTP_DEFAULT_RETRIES;
  rc = read_str(ps, h, "maxBody", "max_body", "http.max_body", false, &maxb);
  if (rc != 0) goto done;
  s->max_body = MU_HTTP_DEFAULT_MAX_BODY;
  if (maxb != NULL && (mu_http_size_parse(maxb, &s->max_body) != 0 || s->max_body == 0)) {
    rc = muster_field_fail(ps->errbuf, "http.max_body: bad size \"%s\" (e.g. \"1M\", \"64K\")", maxb);
    goto done;
  }
  rc = read_str(ps, spec, "timeout", NULL, "timeout", false, &tmo);
  if (rc != 0) goto done;
  if (tmo != NULL && *tmo != '\0' && muster_duration_parse(tmo, &s->timeout_ms) != 0) {
    rc = muster_field_fail(ps->errbuf, "timeout: bad duration \"%s\"", tmo);
    goto done;
  }
done:
  free(method);
  free(ct);
  free(maxb);
  free(tmo);
  for (size_t i = 0; i < n_query; i++) free(query[i].key), free(query[i].value);
  free(query);
  return rc;
}

int mu_http_spec_parse(const char *spec_json, const char *config_json, mu_http_spec **ret, char *errbuf) {
  errbuf[0] = '\0';
  muster_spec_view view;
  mu_http_spec *s = NULL;
  int rc = muster_spec_view_open(spec_json, config_json, "http", &view, errbuf);
  if (rc != 0) goto done;
  s = calloc(1, sizeof *s);
  if (s == NULL) {
    rc = -ENOMEM;
    goto done;
  }
  parser ps = {.secrets = view.secrets, .errbuf = errbuf};
  size_t i;
  json_t *sec;
  json_array_foreach(ps.secrets, i, sec) {
    rc = add_secret(s, json_string_value(json_object_get(sec, "value")));
    if (rc != 0) goto done;
  }
  rc = muster_fields_check_known(view.config, "http", fields, sizeof fields / sizeof *fields, errbuf);
  if (rc == 0) rc = parse_rest(&ps, view.spec, view.config, s);
  if (rc != 0) goto done;
  if (s->n_secrets > 1) qsort(s->secrets, s->n_secrets, sizeof *s->secrets, by_length_desc);
  *ret = s;
  s = NULL;
done:
  if (rc == -ENOMEM && errbuf[0] == '\0') snprintf(errbuf, MUSTER_ERRBUF_SIZE, "http: out of memory");
  mu_http_spec_free(s);
  muster_spec_view_close(&view);
  return rc;
}

static void free_kv(mu_http_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) free(kv[i].key), free(kv[i].value);
  free(kv);
}

void mu_http_spec_free(mu_http_spec *s) {
  if (s == NULL) return;
  free(s->method);
  free(s->url);
  free_kv(s->headers, s->n_headers);
  free(s->body);
  free(s->body_file);
  free(s->basic_user);
  free(s->basic_password);
  free(s->bearer_token);
  free(s->client_cert);
  free(s->client_key);
  free(s->ca_file);
  free(s->proxy);
  free(s->status);
  free(s->ranges);
  free(s->body_contains);
  free(s->body_not_contains);
  free_kv(s->json_equals, s->n_json_equals);
  free_kv(s->json_matches, s->n_json_matches);
  free_kv(s->xpath_equals, s->n_xpath_equals);
  for (size_t i = 0; i < s->n_header_present; i++) free(s->header_present[i]);
  free(s->header_present);
  free_kv(s->extract, s->n_extract);
  free_kv(s->extract_headers, s->n_extract_headers);
  free_kv(s->extract_xpath, s->n_extract_xpath);
  free(s->retry_on_status);
  for (size_t i = 0; i < s->n_secrets; i++) free(s->secrets[i]);
  free(s->secrets);
  free(s);
}
