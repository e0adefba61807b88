/* XPath over XML response bodies (xpath.h): libxml2 with a parser context per document so its
 * errors come back to us (nothing printed to the agent's stderr), and no network or entity
 * loading. */
#include "xpath.h"

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mu_xml_doc {
  xmlDocPtr doc;
};

/* libxml2 prints errors through its generic handler unless told otherwise. */
static void quiet(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

static void quiet_structured(void *ctx, const xmlError *e) {
  (void)ctx;
  (void)e;
}

static void setup(void) {
  static int done;
  if (done) return;
  done = 1;
  xmlInitParser();
  xmlSetGenericErrorFunc(NULL, quiet);
}

static void trim_nl(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = '\0';
}

int mu_xpath_check(const char *expr, char *why, size_t cap) {
  setup();
  if (expr == NULL || expr[0] == '\0' || strlen(expr) > MU_XPATH_MAX_EXPR) {
    snprintf(why, cap, "empty or over %d bytes", MU_XPATH_MAX_EXPR);
    return -1;
  }
  xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
  if (ctx == NULL) {
    snprintf(why, cap, "out of memory");
    return -1;
  }
  xmlSetStructuredErrorFunc(NULL, (xmlStructuredErrorFunc)quiet_structured);
  xmlResetLastError();
  xmlXPathCompExprPtr c = xmlXPathCtxtCompile(ctx, (const xmlChar *)expr);
  int rc = 0;
  if (c == NULL) {
    const xmlError *e = xmlGetLastError();
    snprintf(why, cap, "%s", e != NULL && e->message != NULL ? e->message : "not an XPath expression");
    trim_nl(why);
    rc = -1;
  }
  xmlXPathFreeCompExpr(c);
  xmlXPathFreeContext(ctx);
  xmlSetStructuredErrorFunc(NULL, NULL);
  return rc;
}

mu_xml_doc *mu_xml_parse(const char *body, size_t len, char *why, size_t cap) {
  setup();
  if (len > (size_t)INT32_MAX) {
    snprintf(why, cap, "too large");
    return NULL;
  }
  xmlParserCtxtPtr pc = xmlNewParserCtxt();
  if (pc == NULL) {
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  /* NONET: no network; no NOENT (entities stay unexpanded), no DTDLOAD: nothing outside */
  xmlDocPtr doc = xmlCtxtReadMemory(pc, body != NULL ? body : "", (int)len, "response.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
  if (doc == NULL) {
    const xmlError *e = xmlCtxtGetLastError(pc);
    if (e != NULL && e->message != NULL) snprintf(why, cap, "line %d: %s", e->line, e->message);
    else snprintf(why, cap, "not XML");
    trim_nl(why);
    xmlFreeParserCtxt(pc);
    return NULL;
  }
  xmlFreeParserCtxt(pc);
  mu_xml_doc *d = calloc(1, sizeof *d);
  if (d == NULL) {
    xmlFreeDoc(doc);
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  d->doc = doc;
  return d;
}

void mu_xml_doc_free(mu_xml_doc *d) {
  if (d == NULL) return;
  xmlFreeDoc(d->doc);
  free(d);
}

static char *number_text(double v) {
  char buf[64];
  if (isnan(v)) snprintf(buf, sizeof buf, "NaN");
  else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, sizeof buf, "%.0f", v);
  else snprintf(buf, sizeof buf, "%.17g", v);
  return strdup(buf);
}

char *mu_xpath_text(mu_xml_doc *d, const char *expr, char *why, size_t cap) {
  setup();
  xmlXPathContextPtr ctx = xmlXPathNewContext(d->doc);
  if (ctx == NULL) {
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  xmlSetStructuredErrorFunc(NULL, (xmlStructuredErrorFunc)quiet_structured);
  xmlResetLastError();
  xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
  char *text = NULL;
  if (o == NULL) {
    const xmlError *e = xmlGetLastError();
    snprintf(why, cap, "XPath %s: %s", expr, e != NULL && e->message != NULL ? e->message : "evaluation failed");
    trim_nl(why);
  } else if (o->type == XPATH_NODESET) {
    if (o->nodesetval == NULL || o->nodesetval->nodeNr == 0) {
      snprintf(why, cap, "got nothing: %s is not in the response", expr);
    } else {
      xmlChar *s = xmlXPathCastNodeToString(o->nodesetval->nodeTab[0]);
      text = s != NULL ? strdup((const char *)s) : NULL;
      xmlFree(s);
      if (text == NULL) snprintf(why, cap, "out of memory");
    }
  } else if (o->type == XPATH_NUMBER) {
    text = number_text(o->floatval);
  } else if (o->type == XPATH_BOOLEAN) {
    text = strdup(o->boolval ? "true" : "false");
  } else if (o->type == XPATH_STRING) {
    text = strdup(o->stringval != NULL ? (const char *)o->stringval : "");
  } else {
    snprintf(why, cap, "XPath %s: a result of a kind this check does not compare", expr);
  }
  xmlXPathFreeObject(o);
  xmlXPathFreeContext(ctx);
  xmlSetStructuredErrorFunc(NULL, NULL);
  return text;
}
