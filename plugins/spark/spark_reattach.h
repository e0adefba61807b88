/* Finding an earlier attempt's application again: by handle, then by tag. */
#ifndef MU_SPARK_REATTACH_H
#define MU_SPARK_REATTACH_H

#include "spark_task.h"

/* The answer to a lookup by tag (YARN apps, Livy batches, Kubernetes pods). */
void spark_handle_lookup_reply(spark_task *st, const mu_spark_reply *r);
/* Asks the cluster for the applications carrying the handle's tag. */
void spark_start_lookup_call(spark_task *st);
/* An earlier attempt's handle: re-attach when it names an application the cluster can be
 * asked about; look it up by tag when the earlier attempt died mid-submission (YARN). Returns
 * true when the task is under way (re-attached, looking up, or ended), false to submit. */
bool spark_resume_earlier(spark_task *st, const mu_spark_handle *old, unsigned attempt);
/* The handle an earlier attempt sent to the control plane ("handle" param: "<attempt that
 * reported it> <kind> <task tag> <app id>"; "ended" names an application whose end that attempt saw; "tag" is the
 * latest attempt's tag, which tells an attempt that died before naming an id). 1 with *ret,
 * or 0. */
int spark_cp_handle(const muster_task_context *ctx, mu_spark_handle *ret);

#endif
