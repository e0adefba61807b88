/* Checks of the spark section's values and of fields that go together. */
#ifndef MU_SPARK_SPEC_CHECK_H
#define MU_SPARK_SPEC_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spark_spec.h"
#include "spark_spec_read.h"

bool spark_spec_has_ctl(const char *v);
bool spark_spec_is_hex64(const char *v);
/* a.b.C$D: dotted Java identifiers */
bool spark_spec_is_class_name(const char *v);
bool spark_spec_has_suffix(const char *s, const char *suf);
/* scheme of "scheme://..." copied to buf, or "" */
void spark_spec_url_scheme(const char *v, char *buf, size_t size);
/* A bundle-relative path (no "..", not absolute) or, where urls_ok, an http(s)/hdfs/s3a/... URL. */
int spark_spec_check_resource(const char *v, const char *field, bool urls_ok, char *errbuf);
int spark_spec_check_list_resources(const mu_spark_list *l, const char *field, char *errbuf);
/* group:artifact:version, each part [A-Za-z0-9._-]+ */
bool spark_spec_is_package(const char *v);
int spark_spec_check_master(mu_spark_spec *s, char *errbuf);
/* Checks each URL of a list: http(s), no control characters; strips trailing '/'. */
int spark_spec_check_http_url(char *u, const char *field, char *errbuf);
int spark_spec_split_urls(const char *csv, mu_spark_list *ret);
int spark_spec_dup_default(char **field, const char *def);
/* via livy: POST /batches to livy_url; the Livy server runs the application (its own master,
 * deploy mode and credentials). */
int spark_spec_check_livy(mu_spark_spec *s, char *errbuf);
/* The Kubernetes API for driver pods by label: only for k8s:// masters; the server defaults to
 * the agent's MUSTER_SPARK_K8S_API_URL, else the master's own https address. */
int spark_spec_check_k8s_api(mu_spark_spec *s, const mu_spark_defaults *def, char *errbuf);
/* auth_user with auth_password (HTTP Basic), or auth_token (Bearer), not both. */
int spark_spec_check_auth(const mu_spark_spec *s, char *errbuf);

#endif
