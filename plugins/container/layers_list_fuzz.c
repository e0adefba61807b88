/* Fuzzes the launcher's reading of an image's layer list (layers_list.h). Input: "STORE\nLIST".
 * Properties: on success the result is the list's layers, top first, each as
 * "<store>/layers/<64 hex>" with ':' between and no ','; on failure a reason is given and the
 * output is empty. */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "plugins/container/layers_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *parts[2];
  if (mu_fuzz_split(data, size, "\n", parts, NULL, 2) != 0) return 0;
  char buf[4096], why[256] = "";
  if (mu_layers_lowerdir(parts[0], parts[1], buf, sizeof buf, why, sizeof why) == 0) {
    MU_FUZZ_CHECK(strchr(buf, ',') == NULL && buf[0] != '\0');
    size_t n = 0, store_len = strlen(parts[0]);
    for (char *p = buf; p != NULL; n++) {
      MU_FUZZ_CHECK(strncmp(p, parts[0], store_len) == 0 && strncmp(p + store_len, "/layers/", 8) == 0);
      char *c = strchr(p + store_len, ':');
      MU_FUZZ_CHECK((c ? (size_t)(c - p) : strlen(p)) == store_len + 8 + 64);
      p = c ? c + 1 : NULL;
    }
    MU_FUZZ_CHECK(n >= 1 && n <= MU_LAYERS_LIST_MAX);
  } else {
    MU_FUZZ_CHECK(why[0] != '\0' && buf[0] == '\0');
  }
  mu_fuzz_split_free(parts, 2);
  return 0;
}
