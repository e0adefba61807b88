/* --version text; the commit comes from commit_*.c (stamped or not, chosen in BUILD). */
#include "lib/version/version.h"

extern const char mu_build_commit_text[];

const char *mu_build_commit(void) { return mu_build_commit_text[0] != '\0' ? mu_build_commit_text : "unknown"; }

void mu_version_print(FILE *out, const char *program) {
  fprintf(out, "%s %s (commit %s)\n", program, MU_RELEASE, mu_build_commit());
}
