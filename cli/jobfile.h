/* Job files for `muster submit`: YAML or JSON of the muster.v1.JobSpec shape (snake_case or
 * lowerCamel names). YAML scalars are handed over as text, which the JSON mapping accepts
 * for numbers and booleans too. */
#ifndef MU_CLI_JOBFILE_H
#define MU_CLI_JOBFILE_H

#include <stddef.h>
#include <stdio.h>

#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

/* Reads path ("-" = stdin) into a JobSpec (caller frees with
 * protobuf_c_message_free_unpacked). Errors name the file and line (YAML) or field path. */
int mu_jobfile_load(const char *path, Muster__V1__JobSpec **ret_spec, mu_err *err);

/* The same for text already in memory (len bytes, not necessarily NUL-terminated), named
 * `name` in messages. */
int mu_jobfile_parse(const char *name, const char *text, size_t len, Muster__V1__JobSpec **ret_spec, mu_err *err);

/* The same for another message read from a file of the same kind (a job template: desc is
 * muster.v1.JobTemplate); *ret_msg is freed with protobuf_c_message_free_unpacked. */
int mu_jobfile_load_as(const ProtobufCMessageDescriptor *desc, const char *path, ProtobufCMessage **ret_msg,
                       mu_err *err);
int mu_jobfile_parse_as(const ProtobufCMessageDescriptor *desc, const char *name, const char *text, size_t len,
                        ProtobufCMessage **ret_msg, mu_err *err);

/* Where field path (path_len bytes, "tasks[1].shell.script") is in a job file's text: the
 * 1-based line and column of its value, or of the deepest enclosing node the path reaches
 * (a defaulted field points at its task). 0, or -1 when the text does not parse or nothing
 * of the path is in it. Keys match in either naming (snake_case or lowerCamel). */
int mu_jobfile_locate(const char *text, size_t len, const char *path, size_t path_len, unsigned *ret_line,
                      unsigned *ret_col);

/* The length of the field path a message starts with ("tasks[0].timeout" in
 * "tasks[0].timeout: bad duration"), or 0 when it does not start with one. */
size_t mu_jobfile_path_prefix(const char *msg);

/* Writes msg, problems joined by "; " each starting with a field path (as musterd's
 * validation reports them), one per line as "NAME:LINE:COL: PROBLEM" (just "NAME: PROBLEM"
 * where the path is not found; text may be NULL). Returns the number of problems written. */
int mu_jobfile_explain(const char *name, const char *text, size_t len, const char *msg, FILE *out);

/* The same, reading the file at path again ("-" is not read: no positions). */
int mu_jobfile_explain_file(const char *path, const char *msg, FILE *out);

#endif
