/* Killing an application through its cluster manager and waiting for the cluster to confirm. */
#ifndef MU_SPARK_KILL_H
#define MU_SPARK_KILL_H

#include "spark_task.h"

/* PUT …/state {"state":"KILLED"}: 202 (accepted) or 200 KILLED; standalone: kill/<id>. */
void spark_handle_kill_reply(spark_task *st, const mu_spark_reply *r);
/* Cancel or timeout: kill the application through the cluster manager and wait for it to say
 * so; without an id yet (YARN), find it by the task's tag first. */
void spark_begin_kill(spark_task *st);
/* One kill request (YARN PUT state, standalone kill, Livy DELETE, spark-submit --kill). */
void spark_start_kill_call(spark_task *st);
/* kill_timeout passed without the cluster's confirmation: CANCELLED, "kill unconfirmed". */
void spark_unconfirmed(spark_task *st);

#endif
