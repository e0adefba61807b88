/* Tracking an application through its cluster manager: REST calls and the answers' dispatch,
 * state polling, progress, the poll timer and the error budget. */
#ifndef MU_SPARK_TRACK_H
#define MU_SPARK_TRACK_H

#include "spark_task.h"

/* The next wait while a kill is under way: 100 ms, doubling to 1 s. */
uint64_t spark_kill_retry(spark_task *st);
/* Starts a REST call of a kind; its answer comes to the kind's handler. 0, or -ENOMEM/-EIO. */
int spark_call(spark_task *st, call_kind kind, const char *method, const char *url, const char *body);
/* One failed poll: counted against max_poll_errors; the task fails when it is spent. */
void spark_poll_error(spark_task *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A state the cluster reported for the application. */
void spark_on_app_state(spark_task *st, mu_spark_app_phase phase, const char *state_text, const char *detail,
                        const char *logs_url);
/* Starts polling the cluster manager for the application's state. */
void spark_begin_tracking(spark_task *st);
/* One status poll (REST, or spark-submit --status on Kubernetes). */
void spark_start_status_call(spark_task *st);
/* The next poll (or kill check, or lookup) after delay_ms. */
void spark_track_next(spark_task *st, uint64_t delay_ms);

#endif
