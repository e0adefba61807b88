/* Parameters of a job template (docs/scheduling.md#job-templates): the declared params of a
 * template, the key=value arguments of one `muster dispatch`, and the replacement of
 * ${param.KEY} in the template's job spec by their values. No daemon state: the templates
 * module and `muster dispatch` both call it, and params_test.c checks it against tables.
 *
 * A declared param has a name ([A-Za-z0-9_-], at most MU_TEMPLATE_PARAM_NAME_MAX bytes) and
 * either is required or has a default (possibly ""); both at once is refused. The values of
 * one dispatch together hold at most MU_TEMPLATE_PAYLOAD_MAX bytes. "$${" is the escape of
 * jobspec_refs.h: it is left as it is (the agent turns it into a literal "${"). */
#ifndef MU_CP_TEMPLATE_PARAMS_H
#define MU_CP_TEMPLATE_PARAMS_H

#include <stddef.h>

#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

#define MU_TEMPLATE_PAYLOAD_MAX (1024 * 1024) /* bytes of all values of one dispatch */
#define MU_TEMPLATE_PARAMS_MAX 64             /* declared params of one template */
#define MU_TEMPLATE_PARAM_NAME_MAX 64
#define MU_TEMPLATE_TEXT_MAX (8 * 1024 * 1024) /* one string field after replacement */

/* One declared param (borrowed strings). default_value NULL = no default. */
typedef struct mu_template_param {
  const char *name;
  const char *default_value;
  int required;
  const char *description;
} mu_template_param;

/* The values of one dispatch: every declared param, in declaration order, with the given
 * value or its default. Owns its strings; free with mu_template_values_free. */
typedef struct mu_template_values {
  size_t n;
  char *names[MU_TEMPLATE_PARAMS_MAX];
  char *values[MU_TEMPLATE_PARAMS_MAX];
  size_t bytes; /* sum of the values' lengths */
} mu_template_values;

/* Checks declarations: count, names, duplicates, required-with-default. MU_EINVAL naming the
 * param ("params[2] 'x': ..."). */
int mu_template_params_check(const mu_template_param *decls, size_t n, mu_err *err);

/* Resolves "key=value" args (a value may hold '=' and be empty) against decls into ret (zeroed
 * first, filled only on success). MU_EINVAL: an arg without '=', an unknown param (the message
 * lists the declared ones), a param given twice, a missing required param (all missing ones
 * are named); MU_ENOSPC: values over MU_TEMPLATE_PAYLOAD_MAX; MU_ENOMEM. */
int mu_template_values_resolve(const mu_template_param *decls, size_t n, const char *const *args, size_t n_args,
                               mu_template_values *ret, mu_err *err);

void mu_template_values_free(mu_template_values *v);

/* The value of param name, or NULL when vals has none. */
const char *mu_template_values_get(const mu_template_values *vals, const char *name, size_t len);

/* Replaces every ${param.KEY} of text by its value into *ret_text (caller frees; NULL when
 * text holds no reference, so the caller keeps text). One pass: a value holding "${param.x}"
 * is not replaced again. MU_EINVAL names an undeclared KEY; MU_ENOSPC over
 * MU_TEMPLATE_TEXT_MAX. */
int mu_template_subst_text(const char *text, const mu_template_values *vals, char **ret_text, mu_err *err);

/* The same on every string field of spec (walked by descriptor, so a field added later is
 * covered); errors start with the field path ("tasks[0].shell.script: ..."). The strings of
 * spec must be malloc'ed (as protobuf_c_message_unpack with the default allocator makes
 * them): a replaced one is freed. On error spec may be partly replaced. */
int mu_template_subst_spec(Muster__V1__JobSpec *spec, const mu_template_values *vals, mu_err *err);

/* Calls fn for every ${param.KEY} in text (key not NUL-terminated); used by template create
 * to refuse a reference to an undeclared param. */
void mu_template_refs_each(const char *text, void (*fn)(void *ud, const char *key, size_t len), void *ud);

#endif
