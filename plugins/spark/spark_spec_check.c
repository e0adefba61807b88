/* The checks of single values and of field combinations: class names, hashes, bundle paths and
 * URLs, Maven coordinates, masters (local[N], spark://, yarn, k8s://), cluster URLs, Livy's rules,
 * the Kubernetes API settings and the cluster credentials. Every refusal names the field. */
#include "spark_spec_check.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"
#include "secret_refs.h"
#include "spec_fields.h"
#include "spark_spec.h"

bool spark_spec_has_ctl(const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return true;
  return false;
}

bool spark_spec_is_hex64(const char *v) {
  if (strlen(v) != 64) return false;
  for (; *v; v++)
    if (!isxdigit((unsigned char)*v)) return false;
  return true;
}

/* a.b.C$D: dotted Java identifiers */
bool spark_spec_is_class_name(const char *v) {
  bool start = true;
  if (*v == '\0') return false;
  for (; *v; v++) {
    unsigned char c = (unsigned char)*v;
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (isalpha(c) || c == '_' || c == '$' || c >= 0x80 || (!start && isdigit(c))) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

bool spark_spec_has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcasecmp(s + a - b, suf) == 0;
}

/* scheme of "scheme://..." copied to buf, or "" */
void spark_spec_url_scheme(const char *v, char *buf, size_t size) {
  buf[0] = '\0';
  const char *c = strstr(v, "://");
  if (c == NULL || c == v || (size_t)(c - v) >= size) return;
  for (const char *p = v; p < c; p++)
    if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.') return;
  snprintf(buf, size, "%.*s", (int)(c - v), v);
}

/* A bundle-relative path (no "..", not absolute) or, where urls_ok, an http(s)/hdfs/s3a/... URL. */
int spark_spec_check_resource(const char *v, const char *field, bool urls_ok, char *errbuf) {
  if (spark_spec_has_ctl(v)) return muster_field_fail(errbuf, "%s: control characters are not allowed", field);
  char scheme[32];
  spark_spec_url_scheme(v, scheme, sizeof scheme);
  if (scheme[0] != '\0') {
    if (!urls_ok) return muster_field_fail(errbuf, "%s: \"%s\" must be a file from the bundle", field, v);
    return 0;
  }
  if (v[0] == '/' || strcmp(v, "..") == 0 || strncmp(v, "../", 3) == 0 || strstr(v, "/../") != NULL ||
      spark_spec_has_suffix(v, "/.."))
    return muster_field_fail(errbuf, "%s: \"%s\" must be a path inside the task's bundle, without \"..\"", field, v);
  return 0;
}

int spark_spec_check_list_resources(const mu_spark_list *l, const char *field, char *errbuf) {
  for (size_t i = 0; i < l->n; i++) {
    char f[128];
    snprintf(f, sizeof f, "%s[%zu]", field, i);
    if (l->items[i][0] == '\0') return muster_field_fail(errbuf, "%s: must not be empty", f);
    if (strchr(l->items[i], ',') != NULL)
      return muster_field_fail(errbuf, "%s: \"%s\" must not contain ','", f, l->items[i]);
    int rc = spark_spec_check_resource(l->items[i], f, true, errbuf);
    if (rc != 0) return rc;
  }
  return 0;
}

/* group:artifact:version, each part [A-Za-z0-9._-]+ */
bool spark_spec_is_package(const char *v) {
  int parts = 1;
  size_t run = 0;
  for (; *v; v++) {
    if (*v == ':') {
      if (run == 0) return false;
      parts++;
      run = 0;
    } else if (isalnum((unsigned char)*v) || strchr("._-", *v) != NULL) {
      run++;
    } else {
      return false;
    }
  }
  return parts == 3 && run > 0;
}

int spark_spec_check_master(mu_spark_spec *s, char *errbuf) {
  const char *m = s->master;
  if (spark_spec_has_ctl(m) || strchr(m, ' ') != NULL)
    return muster_field_fail(errbuf, "spark.master: spaces and control characters are not allowed");
  if (strncmp(m, "local", 5) == 0) {
    const char *p = m + 5;
    s->master_kind = MU_SPARK_LOCAL;
    if (*p == '\0') return 0;
    if (*p++ != '[') goto bad_local;
    if (*p == '*') p++;
    else if (isdigit((unsigned char)*p) && *p != '0')
      while (isdigit((unsigned char)*p)) p++;
    else goto bad_local;
    if (*p == ',') {
      p++;
      if (!isdigit((unsigned char)*p)) goto bad_local;
      while (isdigit((unsigned char)*p)) p++;
    }
    if (strcmp(p, "]") == 0) return 0;
  bad_local:
    return muster_field_fail(errbuf, "spark.master: \"%s\" is not local, local[N], local[*] or local[N,F]", m);
  }
  if (strncmp(m, "spark://", 8) == 0) {
    s->master_kind = MU_SPARK_STANDALONE;
    const char *p = m + 8;
    /* host:port[,host:port...] */
    while (*p) {
      const char *colon = NULL, *q = p;
      while (*q && *q != ',') {
        if (*q == ':') colon = q;
        q++;
      }
      if (colon == NULL || colon == p || colon + 1 == q)
        return muster_field_fail(errbuf, "spark.master: \"%s\": each master must be host:port", m);
      for (const char *d = colon + 1; d < q; d++)
        if (!isdigit((unsigned char)*d)) return muster_field_fail(errbuf, "spark.master: \"%s\": bad port", m);
      long port = strtol(colon + 1, NULL, 10);
      if (port < 1 || port > 65535) return muster_field_fail(errbuf, "spark.master: \"%s\": port out of range", m);
      p = *q == ',' ? q + 1 : q;
      if (*q == ',' && *p == '\0') return muster_field_fail(errbuf, "spark.master: \"%s\": trailing ','", m);
    }
    if (m[8] == '\0') return muster_field_fail(errbuf, "spark.master: \"%s\": no host", m);
    return 0;
  }
  if (strcmp(m, "yarn") == 0) {
    s->master_kind = MU_SPARK_YARN;
    return 0;
  }
  if (strncmp(m, "k8s://", 6) == 0) {
    s->master_kind = MU_SPARK_K8S;
    const char *api = m + 6;
    if (*api == '\0' ||
        (strstr(api, "://") != NULL && strncmp(api, "https://", 8) != 0 && strncmp(api, "http://", 7) != 0))
      return muster_field_fail(errbuf, "spark.master: \"%s\": want k8s://https://host:port", m);
    return 0;
  }
  return muster_field_fail(
      errbuf, "spark.master: \"%s\" is not local[N], spark://host:port, yarn or k8s://https://host:port", m);
}

/* Checks each URL of a list: http(s), no control characters; strips trailing '/'. */
int spark_spec_check_http_url(char *u, const char *field, char *errbuf) {
  if (spark_spec_has_ctl(u) || strchr(u, ' ') != NULL)
    return muster_field_fail(errbuf, "%s: spaces and control characters are not allowed", field);
  if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
    return muster_field_fail(errbuf, "%s: \"%s\" must be an http:// or https:// URL", field, u);
  size_t n = strlen(u);
  while (n > 8 && u[n - 1] == '/') u[--n] = '\0';
  return 0;
}

int spark_spec_split_urls(const char *csv, mu_spark_list *ret) {
  for (const char *p = csv; *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    while (n > 0 && *p == ' ') p++, n--;
    while (n > 0 && p[n - 1] == ' ') n--;
    if (n > 0) {
      if (ret->n >= MU_SPARK_MAX_ITEMS) return 0;
      char **g = realloc(ret->items, (ret->n + 2) * sizeof *g);
      if (g == NULL) return -ENOMEM;
      ret->items = g;
      g[ret->n] = strndup(p, n);
      if (g[ret->n] == NULL) return -ENOMEM;
      g[++ret->n] = NULL;
    }
    if (c == NULL) break;
    p = c + 1;
  }
  return 0;
}

int spark_spec_dup_default(char **field, const char *def) {
  if (*field != NULL || def == NULL || *def == '\0') return 0;
  return (*field = strdup(def)) ? 0 : -ENOMEM;
}

/* via livy: POST /batches to livy_url; the Livy server runs the application (its own master,
 * deploy mode and credentials). */
int spark_spec_check_livy(mu_spark_spec *s, char *errbuf) {
  if (s->livy_url == NULL)
    return muster_field_fail(errbuf, "spark.livy_url: required for via livy (or MUSTER_SPARK_LIVY_URL on the agent)");
  if (s->packages.n > 0)
    return muster_field_fail(errbuf, "spark.packages: not with via livy (set spark.jars.packages in conf)");
  if (s->principal != NULL || s->keytab != NULL)
    return muster_field_fail(errbuf,
                             "spark.%s: not with via livy (the Livy server submits with its own Kerberos identity)",
                             s->principal != NULL ? "principal" : "keytab");
  if (s->namespace_ != NULL) return muster_field_fail(errbuf, "spark.namespace: not with via livy");
  s->cluster = true;
  return 0;
}

/* The Kubernetes API for driver pods by label: only for k8s:// masters; the server defaults to
 * the agent's MUSTER_SPARK_K8S_API_URL, else the master's own https address. */
int spark_spec_check_k8s_api(mu_spark_spec *s, const mu_spark_defaults *def, char *errbuf) {
  if (s->master_kind != MU_SPARK_K8S || s->via != MU_SPARK_VIA_SUBMIT) {
    if (s->k8s_api_url != NULL || s->k8s_token != NULL || s->k8s_ca_file != NULL)
      return muster_field_fail(errbuf, "spark.%s: only with a k8s:// master",
                               s->k8s_api_url ? "k8s_api_url"
                               : s->k8s_token ? "k8s_token"
                                              : "k8s_ca_file");
    return 0;
  }
  if (s->k8s_ca_file != NULL && s->k8s_ca_file[0] != '/')
    return muster_field_fail(errbuf, "spark.k8s_ca_file: \"%s\" must be an absolute path on the agent", s->k8s_ca_file);
  int rc = spark_spec_dup_default(&s->k8s_ca_file, def ? def->k8s_ca_file : NULL);
  if (rc == 0) rc = spark_spec_dup_default(&s->k8s_api_url, def ? def->k8s_api_url : NULL);
  if (rc != 0) return rc;
  if (s->k8s_api_url == NULL) { /* k8s://https://h:p, or k8s://h:p (https, as spark-submit reads it) */
    const char *m = s->master + 6;
    bool scheme = strncmp(m, "https://", 8) == 0 || strncmp(m, "http://", 7) == 0;
    size_t n = strlen(m) + 9;
    s->k8s_api_url = malloc(n);
    if (s->k8s_api_url == NULL) return -ENOMEM;
    snprintf(s->k8s_api_url, n, "%s%s", scheme ? "" : "https://", m);
  }
  return spark_spec_check_http_url(s->k8s_api_url, "spark.k8s_api_url", errbuf);
}

/* auth_user with auth_password (HTTP Basic), or auth_token (Bearer), not both. */
int spark_spec_check_auth(const mu_spark_spec *s, char *errbuf) {
  if ((s->auth_user == NULL) != (s->auth_password == NULL))
    return muster_field_fail(errbuf, "spark.%s: auth_user and auth_password go together (HTTP Basic)",
                             s->auth_user ? "auth_password" : "auth_user");
  if (s->auth_user != NULL && s->auth_token != NULL)
    return muster_field_fail(errbuf,
                             "spark.auth_token: conflicts with auth_user/auth_password (one way to authenticate)");
  if (s->auth_negotiate && (s->auth_user != NULL || s->auth_token != NULL))
    return muster_field_fail(errbuf, "spark.auth_negotiate: conflicts with %s (one way to authenticate)",
                             s->auth_user != NULL ? "auth_user/auth_password" : "auth_token");
  if (s->auth_user != NULL && strchr(s->auth_user, ':') != NULL)
    return muster_field_fail(errbuf, "spark.auth_user: must not contain ':' (HTTP Basic)");
  return 0;
}
