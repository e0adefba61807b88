/* Fuzzes node sets both ways (nodeset.h). The input is read as a set to expand (at most 4096
 * names): a refusal names the node set; an accepted set folds, and the fold expands to the
 * same names (as a set). The input is also read as a list of names, one a line, from the
 * characters hosts use ([A-Za-z0-9.-]): folding them and expanding the fold gives the same
 * names back. */
#include <stdlib.h>
#include <string.h>

#include "cli/nodeset.h"
#include "lib/fuzz/fuzz_util.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorts and removes duplicates in place; returns the new count. */
static size_t uniq(char **v, size_t n, int owned) {
  qsort(v, n, sizeof *v, cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k > 0 && strcmp(v[k - 1], v[i]) == 0) {
      if (owned) free(v[i]);
      continue;
    }
    v[k++] = v[i];
  }
  return k;
}

/* fold(names) expands to exactly the distinct names. */
static void check_round_trip(char **names, size_t n, int owned) {
  char *folded = mu_nodeset_fold((const char *const *)names, n);
  MU_FUZZ_CHECK(folded != NULL);
  size_t u = uniq(names, n, owned);
  if (u == 0) {
    MU_FUZZ_CHECK(folded[0] == '\0');
    free(folded);
    if (owned) free(names);
    return;
  }
  char **back = NULL;
  size_t nb = 0;
  mu_err err = {0};
  MU_FUZZ_CHECK(mu_nodeset_expand(folded, 1 << 20, &back, &nb, &err) == 0);
  nb = uniq(back, nb, 1);
  MU_FUZZ_CHECK(nb == u);
  for (size_t i = 0; i < u; i++) MU_FUZZ_CHECK(strcmp(names[i], back[i]) == 0);
  mu_nodeset_names_free(back, nb);
  if (owned) mu_nodeset_names_free(names, u);
  free(folded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *text = malloc(size + 1);
  MU_FUZZ_CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = '\0';

  char **names = NULL;
  size_t n = 0;
  mu_err err = {0};
  int rc = mu_nodeset_expand(text, 4096, &names, &n, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc < 0 && err.code == rc && strstr(err.msg, "node set") != NULL);
  } else {
    int plain = 1; /* names holding the set syntax's own characters are not folded back */
    for (size_t i = 0; i < n; i++)
      if (names[i][0] == '\0' || strpbrk(names[i], "[],") != NULL) plain = 0;
    if (plain) check_round_trip(names, n, 1);
    else mu_nodeset_names_free(names, n);
  }

  /* the same bytes as names, one a line, from the host-name alphabet */
  char *lines[512];
  size_t nl = 0;
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL && nl < 512; l = strtok_r(NULL, "\n", &save)) {
    int ok = 1;
    for (const char *c = l; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-'))
        ok = 0;
    if (ok) lines[nl++] = l;
  }
  check_round_trip(lines, nl, 0);
  free(text);
  return 0;
}
