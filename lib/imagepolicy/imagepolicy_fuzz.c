/* Fuzzes the policy parser and the glob matcher. Input: a policy document. Properties: an
 * accepted policy's canonical JSON parses again to the same canonical JSON; a refusal has a
 * message; evaluating a fixed set of facts never overflows the result; every list entry that
 * is a glob matches itself when it holds no glob characters. */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/imagepolicy/imagepolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = mu_fuzz_cstr(data, size);
  if (text == NULL) return 0;
  mu_imgpolicy *p = NULL;
  mu_err err = {0};
  if (mu_imgpolicy_parse("fuzz.yaml", text, strlen(text), &p, &err) == 0) {
    char *json = mu_imgpolicy_to_json(p);
    MU_FUZZ_CHECK(json != NULL);
    mu_imgpolicy *again = NULL;
    mu_err err2 = {0};
    MU_FUZZ_CHECK(mu_imgpolicy_parse("canonical", json, strlen(json), &again, &err2) == 0);
    char *json2 = mu_imgpolicy_to_json(again);
    MU_FUZZ_CHECK(json2 != NULL && strcmp(json, json2) == 0);
    const char *vols[] = {"/srv/data/x", "/etc", text};
    mu_imgscan_summary scan = {.unfixed = {1, 2, 3, 4, 5}, .oldest_days = {1, 10, 100, 1000, 10000}};
    mu_imgfacts f = {.registry = "reg:5000",
                     .repository = "team/app",
                     .tag = "1",
                     .config_known = true,
                     .config_user = "",
                     .network = "host",
                     .volumes = vols,
                     .n_volumes = 3,
                     .scan = &scan};
    mu_imgpolicy_result res = {0};
    mu_imgpolicy_eval(p, &f, &res);
    mu_imgpolicy_eval(again, &f, &res);
    MU_FUZZ_CHECK(res.n <= MU_IMGPOLICY_MAX_VIOLATIONS);
    char buf[512];
    mu_imgpolicy_result_format(&res, buf, sizeof buf);
    MU_FUZZ_CHECK(strlen(buf) < sizeof buf);
    free(json);
    free(json2);
    mu_imgpolicy_free(again);
    mu_imgpolicy_free(p);
  } else {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  /* the matcher on arbitrary text as pattern and subject */
  mu_err gerr = {0};
  if (mu_imgpolicy_glob_check(text, &gerr) == 0 && strpbrk(text, "*?[") == NULL)
    MU_FUZZ_CHECK(mu_imgpolicy_glob_match(text, text));
  (void)mu_imgpolicy_glob_match("**/a*b*c*d*e*f*g*h", text);
  free(text);
  return 0;
}
