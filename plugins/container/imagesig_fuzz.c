/* Fuzzes what a registry hands a signature check: an artifact manifest, a referrers index, a
 * signature envelope and a payload. Input: "DIGEST\nREPOSITORY\nBODY" (the body read as each
 * of the four). Properties: an accepted artifact has a valid subject and bounded, valid
 * signature layers; referrers are ours and within the bound; an envelope is never OK without a
 * trusted key (the trust set here holds one key nobody signs with) and always says why; a
 * parsed payload formats back to the very bytes. */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "plugins/container/imagesig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[3];
  size_t lens[3];
  if (mu_fuzz_split(data, size, "\n", parts, lens, 3) != 0) return 0;
  mu_err err = {0};
  static mu_imagesig_artifact a;
  if (mu_imagesig_artifact_parse(parts[2], lens[2], &a, &err) == 0) {
    MU_FUZZ_CHECK(mu_digest_valid(a.subject.digest) && a.n_layers <= MU_IMAGESIG_MAX_LAYERS);
    for (size_t i = 0; i < a.n_layers; i++)
      MU_FUZZ_CHECK(mu_digest_valid(a.layers[i].desc.digest) && a.layers[i].desc.size <= MU_IMAGESIG_MAX_BLOB);
  } else {
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  }
  mu_descriptor refs[4];
  size_t n = 0, skipped = 0;
  if (mu_imagesig_referrers_parse(parts[2], lens[2], refs, 4, &n, &skipped, &err) == 0) {
    MU_FUZZ_CHECK(n <= 4);
    for (size_t i = 0; i < n; i++) MU_FUZZ_CHECK(mu_digest_valid(refs[i].digest));
  }
  mu_trust_set *trust = NULL;
  mu_pubkey pk = {.key_id = "00112233445566ff"};
  if (mu_trust_set_new(1, &trust, &err) == 0 && mu_trust_set_add(trust, &pk, &err) == 0) {
    mu_imagesig_info info;
    mu_imagesig_status st = mu_imagesig_envelope_verify(parts[2], lens[2], trust, parts[1], parts[0], 0, &info);
    MU_FUZZ_CHECK(st != MU_IMAGESIG_OK || strcmp(info.key_id, pk.key_id) == 0);
    MU_FUZZ_CHECK(info.msg[0] != '\0');
  }
  mu_trust_set_free(trust);
  mu_imagesig_payload p;
  if (mu_imagesig_payload_parse(parts[2], lens[2], &p, &err) == 0) {
    char buf[MU_IMAGESIG_MAX_PAYLOAD + 1];
    int k = mu_imagesig_payload_format(&p, buf, sizeof buf, &err);
    MU_FUZZ_CHECK(k == (int)lens[2] && memcmp(buf, parts[2], lens[2]) == 0);
  }
  mu_fuzz_split_free(parts, 3);
  return 0;
}
