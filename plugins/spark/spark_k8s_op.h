/* spark-submit --status / --kill <namespace:driver-pod> for Kubernetes applications. */
#ifndef MU_SPARK_K8S_OP_H
#define MU_SPARK_K8S_OP_H

#include "spark_task.h"

/* Runs spark-submit --status (kill false) or --kill on the pod in the handle. */
void spark_k8s_op(spark_task *st, bool kill);

#endif
