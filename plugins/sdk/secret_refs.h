/* ${secret.NAME} in a task's spec strings, for in-tree plugins whose fields take secret
 * references (http, spark): each reference is replaced by the value of the task's secrets entry
 * called NAME (the spec's "secrets" array, values delivered for this attempt only). Not part of
 * the one-header SDK: a static helper linked into the plugin. */
#ifndef MUSTER_SECRET_REFS_H
#define MUSTER_SECRET_REFS_H

#include <jansson.h>

/* *ret (malloc'd) is `in` with every reference replaced. 0, -ENOMEM, or -EINVAL with errbuf
 * (MUSTER_ERRBUF_SIZE bytes) naming field: an unterminated reference or an unknown secret. */
int muster_secret_refs_substitute(json_t *secrets, const char *in, const char *field, char **ret, char *errbuf);

#endif
