/* Fuzzes what a registry sends back: manifests, indexes, image configs and WWW-Authenticate.
 * Input: "CONTENT_TYPE\nPLATFORM_OR_TAG\nWWW_AUTHENTICATE\nBODY" (the body also read as an
 * OCI layout's index.json, the second line as the tag). Properties: an accepted manifest
 * has valid digests, non-negative sizes and at most the layer bound; a selected index entry
 * matches the platform asked for; config arrays are NULL-terminated; a Bearer challenge has
 * an http(s) realm; every refusal has a message. */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"
#include "plugins/container/wwwauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[4];
  size_t lens[4];
  if (mu_fuzz_split(data, size, "\n", parts, lens, 4) != 0) return 0;
  mu_err err = {0};
  mu_doc_kind kind;
  if (mu_doc_kind_of(parts[0], parts[3], lens[3], &kind, &err) == 0) {
    MU_FUZZ_CHECK(kind == MU_DOC_MANIFEST || kind == MU_DOC_INDEX);
  } else {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  mu_manifest m;
  err.msg[0] = '\0';
  if (mu_image_manifest_parse(parts[3], lens[3], &m, &err) == 0) {
    MU_FUZZ_CHECK(mu_digest_valid(m.config.digest) && m.config.size >= 0 && m.n_layers <= MU_MANIFEST_MAX_LAYERS);
    for (size_t i = 0; i < m.n_layers; i++) MU_FUZZ_CHECK(mu_digest_valid(m.layers[i].digest) && m.layers[i].size >= 0);
  } else {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  mu_platform p;
  if (mu_platform_parse(parts[1], &p, &err) != 0) mu_platform_host(&p);
  mu_descriptor d;
  if (mu_index_select(parts[3], lens[3], &p, &d, &err) == 0) MU_FUZZ_CHECK(mu_digest_valid(d.digest) && d.size >= 0);
  mu_descriptor ld;
  if (mu_layout_select(parts[3], lens[3], parts[1], &ld, &err) == 0)
    MU_FUZZ_CHECK(mu_digest_valid(ld.digest) && ld.size >= 0);
  mu_image_config c;
  if (mu_image_config_parse(parts[3], lens[3], &c, &err) == 0) {
    for (char **v = c.cmd; v && *v; v++) MU_FUZZ_CHECK(*v != NULL);
    for (size_t i = 0; i < c.n_diff_ids; i++) MU_FUZZ_CHECK(mu_digest_valid(c.diff_ids[i]));
    mu_image_config_free(&c);
  }
  mu_challenge ch;
  if (mu_challenge_parse(parts[2], lens[2], &ch, &err) == 0 && ch.scheme == MU_AUTH_BEARER)
    MU_FUZZ_CHECK(strncmp(ch.realm, "http", 4) == 0);
  mu_fuzz_split_free(parts, 4);
  return 0;
}
