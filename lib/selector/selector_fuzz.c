/* Fuzzes label selectors as users and API clients type them (muster agents -t, job targets):
 * input is "SELECTOR\nk=v,k2=v2"; a selector that parses is matched against those labels and
 * a fixed set. Matching must not depend on anything but its inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/selector/selector.h"

#define MAX_LABELS 16

typedef struct labels {
  const char *kv[2 * MAX_LABELS + 2];
} labels;

static const char *lookup(const void *ud, const char *key) {
  const labels *l = ud;
  for (const char *const *kv = l->kv; kv[0] != NULL; kv += 2)
    if (strcmp(kv[0], key) == 0) return kv[1];
  return NULL;
}

/* "k=v,k2" into l, pointing into text (which it cuts up). */
static void labels_from(char *text, labels *l) {
  size_t n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(text, ",", &save); tok && n < MAX_LABELS; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (eq != NULL) *eq = '\0';
    l->kv[2 * n] = tok;
    l->kv[2 * n + 1] = eq ? eq + 1 : "";
    n++;
  }
  l->kv[2 * n] = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[2];
  if (mu_fuzz_split(data, size, "\n", parts, NULL, 2) != 0) return 0;
  mu_selector *sel = NULL;
  mu_err err = {0};
  if (mu_selector_parse(parts[0], &sel, &err) == 0) {
    labels given, fixed = {{"role", "web", "dc", "eu-west-1", "canary", "", NULL}};
    labels_from(parts[1], &given);
    int m = mu_selector_matches(sel, lookup, &given);
    MU_FUZZ_CHECK(m == 0 || m == 1);
    MU_FUZZ_CHECK(mu_selector_matches(sel, lookup, &given) == m);
    m = mu_selector_matches(sel, lookup, &fixed);
    MU_FUZZ_CHECK(m == 0 || m == 1);
    mu_selector_free(sel);
  } else {
    MU_FUZZ_CHECK(err.code == MU_EINVAL || err.code == MU_ENOMEM);
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  mu_fuzz_split_free(parts, 2);
  return 0;
}
