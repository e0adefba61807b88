/* XPath 1.0 over XML response bodies for the HTTP task (expect.xpath_equals, extract_xpath),
 * on Debian's libxml2. Parsing never touches the network or the disk (no DTD loading, no
 * external entities, entities not substituted) and stays within libxml2's default limits;
 * bodies are already bounded by the task's max_body. Loop thread only. */
#ifndef MU_HTTP_XPATH_H
#define MU_HTTP_XPATH_H

#include <stddef.h>

#define MU_XPATH_MAX_EXPR 1024 /* bytes of one XPath expression */

typedef struct mu_xml_doc mu_xml_doc;

/* 0 when expr compiles, else -1 with why (cap bytes). */
int mu_xpath_check(const char *expr, char *why, size_t cap);

/* Parses body (len bytes). NULL with why ("line 3: Opening and ending tag mismatch: a and b")
 * when it is not well-formed XML. Free with mu_xml_doc_free. */
mu_xml_doc *mu_xml_parse(const char *body, size_t len, char *why, size_t cap);
void mu_xml_doc_free(mu_xml_doc *doc);

/* expr's value as text: a node set gives its first node's string value, a number "%g" (whole
 * numbers without a point), a boolean "true"/"false", a string itself. NULL with why when the
 * expression fails or selects nothing ("got nothing: /a/b is not in the response"). Caller
 * frees. */
char *mu_xpath_text(mu_xml_doc *doc, const char *expr, char *why, size_t cap);

#endif
