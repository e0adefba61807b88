/* Job templates on every member (docs/scheduling.md#job-templates): job specs with declared
 * params (params.h), stored by name under templates/<name> (store.proto TemplateRecord,
 * created only if absent, through the fenced store the schedules use) and read back by every
 * member from the cluster's record events. muster.v1.Templates: create, list, get, delete
 * and Dispatch, which submits a job like SubmitJob. Loop thread only. */
#ifndef MU_CP_TEMPLATES_H
#define MU_CP_TEMPLATES_H

#include <stddef.h>

#include "lib/base/err.h"

struct mu_daemon;

#define MU_TEMPLATES_DEFAULT_MAX 10000

/* Creates the module's state (d->templates); max 0: the default. */
int mu_templates_init(struct mu_daemon *d, size_t max_templates, mu_err *err);
void mu_templates_free(struct mu_daemon *d);

/* Cluster events (events.h): a fresh snapshot follows; one record (value NULL: deleted). */
void mu_templates_on_snapshot_begin(struct mu_daemon *d);
void mu_templates_on_record(struct mu_daemon *d, const char *rel_key, const char *value, size_t len);

/* The job of template `name` with args ("KEY=VALUE", n of them) replaced, as Dispatch makes
 * it (not yet admitted), into *ret_spec (caller frees with protobuf_c_message_free_unpacked).
 * Errors: MU_ENOENT no such template; MU_EINVAL a param missing, unknown or given twice (the
 * message names it); MU_ENOMEM. A schedule firing a template calls it at each fire. */
struct Muster__V1__JobSpec;
int mu_templates_instantiate(struct mu_daemon *d, const char *name, const char *const *args, size_t n_args,
                             struct Muster__V1__JobSpec **ret_spec, mu_err *err);

/* muster.v1.Templates. */
int mu_templates_register(struct mu_daemon *d, mu_err *err);

#endif
