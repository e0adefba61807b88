/* Deciding an HTTP task's outcome from its response: the expect conditions (status list and
 * ranges, body contains / not contains, JSON path equals / matches, XPath equals, header
 * present), the extraction of output params from the JSON or XML body and the headers, and
 * header lookup. */
#ifndef MU_HTTP_CHECK_H
#define MU_HTTP_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http_spec.h"

/* The final response, borrowed from the request that owns the buffers. */
typedef struct mu_http_response {
  long status;
  const char *headers; /* "Name: value\r\n" lines of the last response, NUL-terminated */
  const char *body;    /* NUL-terminated; body_len bytes may hold NULs */
  size_t body_len;
  json_t *json; /* parsed lazily by the checks; the caller json_decref()s it */
  bool json_tried;
  struct mu_xml_doc *xml; /* parsed lazily (XPath checks); the caller mu_http_response_done()s */
  bool xml_tried;
} mu_http_response;

/* Frees what the checks parsed (the JSON and the XML document). */
void mu_http_response_done(mu_http_response *r);

/* The value of header name (case-insensitive, the first one), trimmed; caller frees. NULL when
 * absent or out of memory. */
char *mu_http_header_get(const char *headers, const char *name);

/* True when status is accepted by s (its list or ranges; 2xx when neither is given). */
bool mu_http_status_ok(const mu_http_spec *s, long status);

/* Checks every condition of s in order. 0 when all hold; else -1 with msg (cap bytes) naming
 * the condition and showing the actual value: "expect.status: got 503, want 200-299". */
int mu_http_check_expect(const mu_http_spec *s, mu_http_response *r, char *msg, size_t cap);

/* Sets one output param per extract / extract_headers entry through set(arg, key, value).
 * 0, or -1 with msg when a path or header is missing or set() refuses. */
int mu_http_extract(const mu_http_spec *s, mu_http_response *r,
                    int (*set)(void *arg, const char *key, const char *value), void *arg, char *msg, size_t cap);

#endif
