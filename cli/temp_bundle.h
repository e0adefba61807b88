/* A bundle that lives only as long as one command: `muster cp` and `muster image build --on`
 * pack files, upload them as a bundle with a throwaway name, run a one-task job with it and
 * remove it afterwards. */
#ifndef MU_CLI_TEMP_BUNDLE_H
#define MU_CLI_TEMP_BUNDLE_H

#include <stddef.h>

#include "cli/client.h"

/* "PREFIX-USER-MILLIS" (lower-case letters, digits and '-') into name and "NAME@1.0.0" into
 * ref. */
void mu_cli_temp_bundle_name(const char *prefix, char *name, size_t name_size, char *ref, size_t ref_size);
/* Removes ref from the control plane; on failure tells the user how to remove it, with who
 * ("muster cp") in front, and returns -1. */
int mu_cli_temp_bundle_delete(const mu_cli_opts *opts, const char *who, const char *ref);

#endif
