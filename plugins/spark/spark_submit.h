/* Submitting an application: spark-submit, the standalone REST server, or Livy. */
#ifndef MU_SPARK_SUBMIT_H
#define MU_SPARK_SUBMIT_H

#include "spark_task.h"

/* POST /batches: 201 Created with the Batch (older servers 200). */
void spark_handle_livy_create_reply(spark_task *st, const mu_spark_reply *r);
/* The standalone REST create call's answer (Livy's goes to the function above). */
void spark_handle_create_reply(spark_task *st, const mu_spark_reply *r);
/* Writes inline SQL to the task dir for spark-sql -f. 0 or -errno. */
int spark_write_sql(spark_task *st, const char *task_dir);
/* Writes the "submitting" handle (durably), then submits. */
void spark_submit(spark_task *st);

#endif
