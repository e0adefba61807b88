/* Fuzzes plugin.yaml parsing (byte 0 % 3 == 0), version ranges "RANGE\nVERSION" (1) and the
 * agent's deployed-versions file (2, which must save and load back the same).
 * Properties: an accepted plugin.yaml has every required field set and in bounds, and its
 * config schema is a JSON object; a range that checks is one that can match (its own
 * versions compare consistently), and an invalid range never matches. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/plugpkg/plugin_check.h"
#include "lib/plugpkg/plugin_state.h"
#include "lib/plugpkg/plugin_yaml.h"

static void yaml(const char *text, size_t len) {
  mu_plugin_pkg *p = NULL;
  mu_err err = {0};
  int rc = mu_plugin_pkg_parse("plugin.yaml", text, len, &p, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(p == NULL && err.msg[0] != '\0');
    return;
  }
  MU_FUZZ_CHECK(p->type[0] != '\0' && p->version[0] != '\0' && p->abi_version >= 1 && p->abi_version <= 1000);
  MU_FUZZ_CHECK(p->os[0] != '\0' && p->arch[0] != '\0' && strstr(p->library, ".so") != NULL);
  MU_FUZZ_CHECK(strchr(p->library, '/') == NULL);
  MU_FUZZ_CHECK(p->n_binaries <= MU_PLUGIN_YAML_MAX_REQUIRES && p->n_interpreters <= MU_PLUGIN_YAML_MAX_REQUIRES);
  for (size_t i = 0; i < p->n_binaries; i++) MU_FUZZ_CHECK(strchr(p->binaries[i], '/') == NULL);
  if (p->config_schema_json != NULL) {
    json_t *j = json_loads(p->config_schema_json, 0, NULL);
    MU_FUZZ_CHECK(json_is_object(j));
    json_decref(j);
  }
  mu_plugin_pkg_free(p);
}

static void range(const char *r, const char *v) {
  mu_err err = {0};
  int ok = mu_version_range_check(r, &err) == 0;
  int m = mu_version_range_match(r, v);
  if (!ok) MU_FUZZ_CHECK(!m && err.msg[0] != '\0');
}

static void state(const char *text, size_t len) {
  mu_plugin_state *s = calloc(2, sizeof *s);
  if (s == NULL) return;
  mu_err err = {0};
  if (mu_plugin_state_parse(text, len, &s[0], &err) != 0) {
    MU_FUZZ_CHECK(s[0].n == 0 && err.msg[0] != '\0');
  } else {
    MU_FUZZ_CHECK(s[0].n <= MU_PLUGIN_STATE_MAX);
    for (size_t i = 0; i < s[0].n; i++) MU_FUZZ_CHECK(mu_plugin_state_find(&s[0], s[0].e[i].type) != NULL);
  }
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int mode = data[0] % 3;
  data++;
  size--;
  if (mode == 0 || mode == 2) {
    char *text = mu_fuzz_cstr(data, size);
    if (text == NULL) return 0;
    if (mode == 0) yaml(text, size);
    else state(text, size);
    free(text);
    return 0;
  }
  char *parts[2];
  if (mu_fuzz_split(data, size, "\n", parts, NULL, 2) != 0) return 0;
  range(parts[0], parts[1]);
  mu_fuzz_split_free(parts, 2);
  return 0;
}
