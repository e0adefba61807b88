/* Fuzzes the XML/XPath check path of the HTTP task: an expression (as a spec gives it) and a
 * response body (as any server sends it). Input: "XPATH\n--\nBODY". Properties: an expression
 * that compiles never makes evaluation crash; a body that is not XML is refused with a reason;
 * a value found is NUL-terminated text; a failed xpath_equals check names the condition. */
#include <stdlib.h>
#include <string.h>

#include "http_check.h"
#include "http_spec.h"
#include "lib/fuzz/fuzz_util.h"
#include "xpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  if (buf == NULL) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *sep = strstr(buf, "\n--\n");
  const char *expr = buf, *body = "";
  size_t body_len = 0;
  if (sep != NULL) {
    *sep = '\0';
    body = sep + 4;
    body_len = size - (size_t)(body - buf);
  }
  char why[300] = "";
  int ok = mu_xpath_check(expr, why, sizeof why) == 0;
  MU_FUZZ_CHECK(ok || why[0] != '\0');
  why[0] = '\0';
  mu_xml_doc *doc = mu_xml_parse(body, body_len, why, sizeof why);
  MU_FUZZ_CHECK(doc != NULL || why[0] != '\0');
  if (doc != NULL && ok) {
    char *v = mu_xpath_text(doc, expr, why, sizeof why);
    MU_FUZZ_CHECK(v != NULL || why[0] != '\0');
    free(v);
  }
  mu_xml_doc_free(doc);
  if (ok) { /* the same through the task's check, as http_check runs it */
    mu_http_kv kv = {(char *)expr, "x"};
    mu_http_spec s = {0};
    s.xpath_equals = &kv;
    s.n_xpath_equals = 1;
    mu_http_response r = {.status = 200, .headers = "", .body = body, .body_len = body_len};
    char msg[1024] = "";
    if (mu_http_check_expect(&s, &r, msg, sizeof msg) != 0) MU_FUZZ_CHECK(strstr(msg, "expect.xpath_equals[") == msg);
    mu_http_response_done(&r);
  }
  free(buf);
  return 0;
}
