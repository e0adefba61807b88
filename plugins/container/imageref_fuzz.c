/* Fuzzes image reference parsing. Input: "DEFAULT_REGISTRY\nREFERENCE". Properties: an
 * accepted reference has a registry, a repository and a tag or a valid digest; formatting it
 * and parsing that again gives the same parts; no short name passes without a default. */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "plugins/container/imageref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[2];
  if (mu_fuzz_split(data, size, "\n", parts, NULL, 2) != 0) return 0;
  mu_imgref r, again;
  mu_err err = {0};
  const char *def = parts[0][0] ? parts[0] : NULL;
  if (mu_imgref_parse(parts[1], def, &r, &err) == 0) {
    MU_FUZZ_CHECK(r.registry[0] != '\0' && r.repository[0] != '\0');
    MU_FUZZ_CHECK(r.tag[0] != '\0' || mu_digest_valid(r.digest));
    MU_FUZZ_CHECK(r.digest[0] == '\0' || mu_digest_valid(r.digest));
    MU_FUZZ_CHECK(strstr(r.repository, "..") == NULL && r.repository[0] != '/');
    char buf[MU_IMGREF_MAX * 2];
    mu_imgref_format(&r, buf, sizeof buf);
    if (strlen(buf) <= MU_IMGREF_MAX && mu_imgref_parse(buf, NULL, &again, &err) == 0) {
      MU_FUZZ_CHECK(strcmp(again.registry, r.registry) == 0 && strcmp(again.repository, r.repository) == 0 &&
                    strcmp(again.tag, r.tag) == 0 && strcmp(again.digest, r.digest) == 0);
    }
    (void)mu_registry_is_loopback(r.registry);
  } else {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  mu_fuzz_split_free(parts, 2);
  return 0;
}
