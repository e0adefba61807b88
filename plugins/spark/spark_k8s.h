/* The small part of the Kubernetes API the spark task type speaks itself (the rest is
 * spark-submit's): listing a namespace's driver pods by the labels the plugin gives them
 * (GET /api/v1/namespaces/{ns}/pods?labelSelector=spark-role=driver,<key>=<value>), to find a
 * driver pod whose name spark-submit never printed. Parsed with no I/O. */
#ifndef MU_SPARK_K8S_H
#define MU_SPARK_K8S_H

#include <stdbool.h>
#include <stddef.h>

#include "spark_proto.h"

#define MU_SPARK_K8S_LABEL_MAX 63 /* a label value: at most 63 bytes, alphanumeric at both ends */

typedef struct mu_spark_k8s_pod {
  char name[254]; /* a DNS subdomain */
  char namespace_[64];
  char phase[32];     /* status.phase: Pending Running Succeeded Failed Unknown ("" when absent) */
  bool deleting;      /* metadata.deletionTimestamp is set: on its way out */
  char attempt[128];  /* its muster-attempt label, "" when none */
  long created_order; /* its index in the list, for "newest" among equals */
} mu_spark_k8s_pod;

/* The URL of the driver pods carrying label key=value in namespace ns (NULL = "default") on the
 * API server api (no trailing '/'). Returns 0, or -1 when it does not fit buf. */
int mu_spark_k8s_pods_url(const char *api, const char *ns, const char *key, const char *value, char *buf, size_t size);

/* A PodList body → up to max pods in ret (in the list's order). The count, or -1 with why
 * (MU_SPARK_TEXT_MAX): not JSON, a Status (its reason and message), no "items" array. */
int mu_spark_k8s_pods_parse(const char *body, size_t len, mu_spark_k8s_pod *ret, size_t max, char *why);

/* A label value for a tag: the tag itself when it fits MU_SPARK_K8S_LABEL_MAX, else its first
 * 50 bytes, '-' and 12 hex digits of a hash of the whole (tags are [a-z0-9-]). buf holds
 * MU_SPARK_K8S_LABEL_MAX + 1 bytes. */
void mu_spark_k8s_label_value(const char *tag, char *buf);

#endif
