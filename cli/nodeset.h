/* Node sets as clush/ClusterShell write them: "web[1-3,7],db-1" for web1 web2 web3 web7 db-1.
 * Folding groups names that differ only in their last number (same text before and after it,
 * same zero padding) into bracketed ranges; expanding reads the same syntax back, several
 * brackets in one item included ("rack[1-2]-n[01-02]" is their product). The CLI folds the
 * hosts of an output group (`muster run --group`) and of the summary's failures. */
#ifndef MU_CLI_NODESET_H
#define MU_CLI_NODESET_H

#include <stddef.h>

#include "lib/base/err.h"

/* Folds names[0..n) (any order, duplicates allowed) into a new string: groups sorted by their
 * text, numbers ascending, a one-member group written as the plain name. Names holding '[',
 * ']' or ',' are written as they are. Caller frees; NULL when out of memory. */
char *mu_nodeset_fold(const char *const *names, size_t n);

/* Expands set into a new array of *ret_n new strings, in the order written (duplicates kept).
 * At most max names; ranges are decimal, up to 9 digits, low <= high, and a low bound with a
 * leading zero ("01") pads every number to its width. Errors: MU_EINVAL naming the position
 * (an unclosed '[', an empty item or range, "b-a"), MU_ENOSPC past max, MU_ENOMEM. Caller
 * frees with mu_nodeset_names_free. */
int mu_nodeset_expand(const char *set, size_t max, char ***ret_names, size_t *ret_n, mu_err *err);

/* The most hosts `--hosts` expands to (run, cp): brackets there are node sets, not globs. */
#define MU_NODESET_MAX_HOSTS 100000
void mu_nodeset_names_free(char **names, size_t n);

#endif
