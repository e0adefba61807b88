/* Job files for `muster submit`: YAML or JSON of the muster.v1.JobSpec shape (snake_case or
 * lowerCamel names). YAML scalars are handed over as text, which the JSON mapping accepts
 * for numbers and booleans too. */
#ifndef MU_CLI_JOBFILE_H
#define MU_CLI_JOBFILE_H

#include <stddef.h>

#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

/* Reads path ("-" = stdin) into a JobSpec (caller frees with
 * protobuf_c_message_free_unpacked). Errors name the file and line (YAML) or field path. */
int mu_jobfile_load(const char *path, Muster__V1__JobSpec **ret_spec, mu_err *err);

/* The same for text already in memory (len bytes, not necessarily NUL-terminated), named
 * `name` in messages. */
int mu_jobfile_parse(const char *name, const char *text, size_t len,
                     Muster__V1__JobSpec **ret_spec, mu_err *err);

#endif
