/* Parsing and checking of the Spark task spec (spark_spec.h). Runs at validate() (result
 * thrown away) and at start() (kept), so both apply the same rules. `${secret.NAME}` in conf
 * values and app_args is replaced by that secret's value, which is then masked wherever the
 * plugin shows the command line. Fields are read through the SDK's spec_fields.h. */
#include "spark_spec.h"

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
#include "spark_spec_read.h"
#include "spark_spec_check.h"
#include "spark_spec_conf.h"

const char *mu_spark_program_name(mu_spark_program p) {
  switch (p) {
    case MU_SPARK_JAVA: return "java";
    case MU_SPARK_SCALA: return "scala";
    case MU_SPARK_PYTHON: return "python";
    case MU_SPARK_SQL: return "sql";
  }
  return "?";
}

bool mu_spark_memory_ok(const char *t) {
  if (t == NULL || !isdigit((unsigned char)*t)) return false;
  while (isdigit((unsigned char)*t)) t++;
  if (*t == '\0') return true; /* bytes */
  if (strchr("kKmMgGtTpP", *t) == NULL) return false;
  t++;
  if (*t == 'b' || *t == 'B') t++;
  return *t == '\0';
}

static int by_length_desc(const void *a, const void *b) {
  size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

static int add_secret(mu_spark_spec *s, const char *v) {
  if (v == NULL || *v == '\0') return 0;
  for (size_t i = 0; i < s->n_secrets; i++)
    if (strcmp(s->secrets[i], v) == 0) return 0;
  char **grown = realloc(s->secrets, (s->n_secrets + 1) * sizeof *grown);
  if (grown == NULL) return -ENOMEM;
  s->secrets = grown;
  s->secrets[s->n_secrets] = strdup(v);
  if (s->secrets[s->n_secrets] == NULL) return -ENOMEM;
  s->n_secrets++;
  return 0;
}

char *mu_spark_mask(const mu_spark_spec *s, const char *data, size_t len, size_t *ret_len) {
  size_t cap = len * 3 + 1, n = 0, i = 0;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  while (i < len) {
    size_t hit = 0;
    for (size_t k = 0; k < s->n_secrets && hit == 0; k++) {
      size_t sl = strlen(s->secrets[k]);
      if (sl <= len - i && memcmp(data + i, s->secrets[k], sl) == 0) hit = sl;
    }
    if (hit > 0) {
      memcpy(out + n, "***", 3);
      n += 3;
      i += hit;
    } else {
      out[n++] = data[i++];
    }
  }
  out[n] = '\0';
  if (ret_len != NULL) *ret_len = n;
  return out;
}

static const char *const known_fields[] = {"master",
                                           "deployMode",
                                           "deploy_mode",
                                           "mainClass",
                                           "main_class",
                                           "appResource",
                                           "app_resource",
                                           "appArgs",
                                           "app_args",
                                           "conf",
                                           "driverMemory",
                                           "driver_memory",
                                           "executorMemory",
                                           "executor_memory",
                                           "executorCores",
                                           "executor_cores",
                                           "numExecutors",
                                           "num_executors",
                                           "queue",
                                           "name",
                                           "jars",
                                           "pyFiles",
                                           "py_files",
                                           "sparkHome",
                                           "spark_home",
                                           "restUrl",
                                           "rest_url",
                                           "programType",
                                           "program_type",
                                           "appResourceSha256",
                                           "app_resource_sha256",
                                           "driverCores",
                                           "driver_cores",
                                           "namespace",
                                           "files",
                                           "archives",
                                           "packages",
                                           "dynamicAllocation",
                                           "dynamic_allocation",
                                           "principal",
                                           "keytab",
                                           "via",
                                           "yarnRmUrls",
                                           "yarn_rm_urls",
                                           "livyUrl",
                                           "livy_url",
                                           "sparkUiUrl",
                                           "spark_ui_url",
                                           "sql",
                                           "pollInterval",
                                           "poll_interval",
                                           "killTimeout",
                                           "kill_timeout",
                                           "maxPollErrors",
                                           "max_poll_errors",
                                           "submitTimeout",
                                           "submit_timeout",
                                           "authUser",
                                           "auth_user",
                                           "authPassword",
                                           "auth_password",
                                           "authToken",
                                           "auth_token",
                                           "proxyUser",
                                           "proxy_user",
                                           "k8sApiUrl",
                                           "k8s_api_url",
                                           "k8sToken",
                                           "k8s_token",
                                           "k8sCaFile",
                                           "k8s_ca_file",
                                           "authNegotiate",
                                           "auth_negotiate"};

static int parse_program(spark_spec_parser *ps, json_t *o, mu_spark_spec *s) {
  char *pt = NULL;
  int rc = spark_spec_read_str(ps, o, "programType", "program_type", "spark.program_type", false, &pt);
  if (rc != 0) return rc;
  if (pt == NULL) {
    s->program = s->sql != NULL || (s->app_resource && spark_spec_has_suffix(s->app_resource, ".sql")) ? MU_SPARK_SQL
                 : s->app_resource && spark_spec_has_suffix(s->app_resource, ".py")                    ? MU_SPARK_PYTHON
                                                                                                       : MU_SPARK_JAVA;
    return 0;
  }
  static const char *const names[] = {"java", "scala", "python", "sql"};
  for (int i = 0; i < 4; i++)
    if (strcasecmp(pt, names[i]) == 0) {
      s->program = (mu_spark_program)i;
      free(pt);
      return 0;
    }
  rc = muster_field_fail(ps->errbuf,
                         "spark.program_type: unknown program type \"%s\" (want java, scala, python or sql)", pt);
  free(pt);
  return rc;
}

static int parse_dyn(spark_spec_parser *ps, json_t *o, mu_spark_spec *s) {
  json_t *d = NULL;
  int orc = muster_field_object(o, "dynamicAllocation", "dynamic_allocation", "spark.dynamic_allocation", NULL, &d,
                                ps->errbuf);
  if (orc != 0 || d == NULL) return orc;
  static const char *const known[] = {"enabled",       "minExecutors",     "min_executors",    "maxExecutors",
                                      "max_executors", "initialExecutors", "initial_executors"};
  int rc;
  rc = muster_fields_check_known(d, "spark.dynamic_allocation", known, 7, ps->errbuf);
  if (rc == 0) rc = spark_spec_read_bool(ps, d, "enabled", NULL, "spark.dynamic_allocation.enabled", &s->dyn_enabled);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, d, "minExecutors", "min_executors", "spark.dynamic_allocation.min_executors", 100000,
                              &s->dyn_min);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, d, "maxExecutors", "max_executors", "spark.dynamic_allocation.max_executors", 100000,
                              &s->dyn_max);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, d, "initialExecutors", "initial_executors",
                              "spark.dynamic_allocation.initial_executors", 100000, &s->dyn_initial);
  if (rc != 0) return rc;
  if (!s->dyn_enabled && (s->dyn_min || s->dyn_max || s->dyn_initial))
    return muster_field_fail(ps->errbuf, "spark.dynamic_allocation: executor bounds given but enabled is not true");
  if (s->dyn_enabled) {
    if (s->dyn_max > 0 && s->dyn_min > s->dyn_max)
      return muster_field_fail(ps->errbuf, "spark.dynamic_allocation: min_executors (%u) is above max_executors (%u)",
                               s->dyn_min, s->dyn_max);
    if (s->dyn_initial > 0 && (s->dyn_initial < s->dyn_min || (s->dyn_max > 0 && s->dyn_initial > s->dyn_max)))
      return muster_field_fail(
          ps->errbuf,
          "spark.dynamic_allocation: initial_executors (%u) must lie between min_executors and max_executors",
          s->dyn_initial);
    if (s->num_executors > 0)
      return muster_field_fail(
          ps->errbuf,
          "spark.num_executors: conflicts with dynamic_allocation (use dynamic_allocation.initial_executors)");
  }
  return 0;
}

static int parse_fields(spark_spec_parser *ps, json_t *spec, json_t *o, const mu_spark_defaults *def,
                        mu_spark_spec *s) {
  int rc;
  char *dm = NULL, *via = NULL;
  rc = spark_spec_read_str(ps, o, "master", NULL, "spark.master", false, &s->master);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "deployMode", "deploy_mode", "spark.deploy_mode", false, &dm);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "mainClass", "main_class", "spark.main_class", false, &s->main_class);
  if (rc == 0)
    rc = spark_spec_read_str(ps, o, "appResource", "app_resource", "spark.app_resource", false, &s->app_resource);
  if (rc == 0)
    rc = spark_spec_read_str(ps, o, "appResourceSha256", "app_resource_sha256", "spark.app_resource_sha256", false,
                             &s->app_resource_sha256);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "sql", NULL, "spark.sql", false, &s->sql);
  if (rc == 0) rc = spark_spec_read_list(ps, o, "appArgs", "app_args", "spark.app_args", true, &s->app_args);
  if (rc == 0) rc = spark_spec_read_conf(ps, o, s);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "name", NULL, "spark.name", false, &s->name);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, o, "driverCores", "driver_cores", "spark.driver_cores", 1024, &s->driver_cores);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, o, "executorCores", "executor_cores", "spark.executor_cores", 1024,
                              &s->executor_cores);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, o, "numExecutors", "num_executors", "spark.num_executors", 100000, &s->num_executors);
  if (rc == 0)
    rc = spark_spec_read_str(ps, o, "driverMemory", "driver_memory", "spark.driver_memory", false, &s->driver_memory);
  if (rc == 0)
    rc = spark_spec_read_str(ps, o, "executorMemory", "executor_memory", "spark.executor_memory", false,
                             &s->executor_memory);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "queue", NULL, "spark.queue", false, &s->queue);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "namespace", NULL, "spark.namespace", false, &s->namespace_);
  if (rc == 0) rc = spark_spec_read_list(ps, o, "jars", NULL, "spark.jars", false, &s->jars);
  if (rc == 0) rc = spark_spec_read_list(ps, o, "pyFiles", "py_files", "spark.py_files", false, &s->py_files);
  if (rc == 0) rc = spark_spec_read_list(ps, o, "files", NULL, "spark.files", false, &s->files);
  if (rc == 0) rc = spark_spec_read_list(ps, o, "archives", NULL, "spark.archives", false, &s->archives);
  if (rc == 0) rc = spark_spec_read_list(ps, o, "packages", NULL, "spark.packages", false, &s->packages);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "principal", NULL, "spark.principal", false, &s->principal);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "keytab", NULL, "spark.keytab", false, &s->keytab);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "via", NULL, "spark.via", false, &via);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "sparkHome", "spark_home", "spark.spark_home", false, &s->spark_home);
  if (rc == 0)
    rc = spark_spec_read_list(ps, o, "yarnRmUrls", "yarn_rm_urls", "spark.yarn_rm_urls", false, &s->yarn_rm_urls);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "restUrl", "rest_url", "spark.rest_url", false, &s->rest_url);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "livyUrl", "livy_url", "spark.livy_url", false, &s->livy_url);
  if (rc == 0)
    rc = spark_spec_read_str(ps, o, "sparkUiUrl", "spark_ui_url", "spark.spark_ui_url", false, &s->spark_ui_url);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "authUser", "auth_user", "spark.auth_user", true, &s->auth_user);
  if (rc == 0)
    rc = spark_spec_read_secret(ps, o, "authPassword", "auth_password", "spark.auth_password", &s->auth_password);
  if (rc == 0) rc = spark_spec_read_secret(ps, o, "authToken", "auth_token", "spark.auth_token", &s->auth_token);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "proxyUser", "proxy_user", "spark.proxy_user", true, &s->proxy_user);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "k8sApiUrl", "k8s_api_url", "spark.k8s_api_url", false, &s->k8s_api_url);
  if (rc == 0) rc = spark_spec_read_secret(ps, o, "k8sToken", "k8s_token", "spark.k8s_token", &s->k8s_token);
  if (rc == 0) rc = spark_spec_read_str(ps, o, "k8sCaFile", "k8s_ca_file", "spark.k8s_ca_file", false, &s->k8s_ca_file);
  if (rc == 0)
    rc = spark_spec_read_bool(ps, o, "authNegotiate", "auth_negotiate", "spark.auth_negotiate", &s->auth_negotiate);
  if (rc == 0)
    rc = spark_spec_read_uint(ps, o, "maxPollErrors", "max_poll_errors", "spark.max_poll_errors", 1000,
                              &s->max_poll_errors);
  if (rc == 0) rc = parse_program(ps, o, s);
  if (rc == 0) rc = parse_dyn(ps, o, s);
  if (rc != 0) goto done;
  s->poll_ms = MU_SPARK_DEFAULT_POLL_MS;
  s->kill_ms = MU_SPARK_DEFAULT_KILL_MS;
  s->submit_ms = MU_SPARK_DEFAULT_SUBMIT_MS;
  if (s->max_poll_errors == 0) s->max_poll_errors = MU_SPARK_DEFAULT_POLL_ERRORS;
  rc = spark_spec_read_duration(ps, o, "pollInterval", "poll_interval", "spark.poll_interval", MU_SPARK_MIN_POLL_MS,
                                &s->poll_ms);
  if (rc == 0)
    rc = spark_spec_read_duration(ps, o, "killTimeout", "kill_timeout", "spark.kill_timeout", 1000, &s->kill_ms);
  if (rc == 0)
    rc =
        spark_spec_read_duration(ps, o, "submitTimeout", "submit_timeout", "spark.submit_timeout", 1000, &s->submit_ms);
  if (rc == 0) rc = spark_spec_read_duration(ps, spec, "timeout", NULL, "timeout", 0, &s->timeout_ms);
  if (rc != 0) goto done;

  /* agent defaults */
  rc = spark_spec_dup_default(&s->spark_home, def ? def->spark_home : NULL);
  if (rc == 0) rc = spark_spec_dup_default(&s->rest_url, def ? def->rest_url : NULL);
  if (rc == 0) rc = spark_spec_dup_default(&s->livy_url, def ? def->livy_url : NULL);
  if (rc == 0) rc = spark_spec_dup_default(&s->spark_ui_url, def ? def->spark_ui_url : NULL);
  if (rc != 0) goto done;
  if (s->yarn_rm_urls.n == 0 && def != NULL && def->yarn_rm_urls != NULL) {
    rc = spark_spec_split_urls(def->yarn_rm_urls, &s->yarn_rm_urls);
    if (rc != 0) goto done;
  }

  /* master and deploy mode */
  if (via != NULL && strcmp(via, "livy") == 0 && (s->master != NULL || dm != NULL)) {
    rc = muster_field_fail(ps->errbuf,
                           "spark.%s: via livy: the Livy server's configuration (livy.spark.master, "
                           "livy.spark.deploy-mode) decides it; leave it out",
                           s->master != NULL ? "master" : "deploy_mode");
    goto done;
  }
  if (s->master == NULL) {
    s->master = strdup("local[*]");
    if (s->master == NULL) {
      rc = -ENOMEM;
      goto done;
    }
  }
  rc = spark_spec_check_master(s, ps->errbuf);
  if (rc != 0) goto done;
  if (dm != NULL && strcmp(dm, "client") != 0 && strcmp(dm, "cluster") != 0) {
    rc = muster_field_fail(ps->errbuf, "spark.deploy_mode: \"%s\" is not client or cluster", dm);
    goto done;
  }
  s->cluster = dm != NULL && strcmp(dm, "cluster") == 0;
  if (s->cluster && s->master_kind == MU_SPARK_LOCAL) {
    rc = muster_field_fail(
        ps->errbuf, "spark.deploy_mode: cluster conflicts with master \"%s\" (a local master runs in client mode)",
        s->master);
    goto done;
  }
  if (via == NULL || strcmp(via, "spark-submit") == 0) s->via = MU_SPARK_VIA_SUBMIT;
  else if (strcmp(via, "rest") == 0) s->via = MU_SPARK_VIA_REST;
  else if (strcmp(via, "livy") == 0) s->via = MU_SPARK_VIA_LIVY;
  else {
    rc = muster_field_fail(ps->errbuf, "spark.via: \"%s\" is not spark-submit, rest or livy", via);
    goto done;
  }

  if (s->via == MU_SPARK_VIA_REST) {
    if (s->master_kind != MU_SPARK_STANDALONE) {
      rc = muster_field_fail(ps->errbuf,
                             "spark.via: rest submits to a standalone master: master must be spark://host:port");
      goto done;
    }
    if (s->rest_url == NULL) {
      rc = muster_field_fail(ps->errbuf,
                             "spark.rest_url: required for via rest (or MUSTER_SPARK_REST_URL on the agent)");
      goto done;
    }
    if (s->program != MU_SPARK_JAVA && s->program != MU_SPARK_SCALA) {
      rc = muster_field_fail(
          ps->errbuf, "spark.via: rest runs java or scala programs (a standalone cluster has no python cluster mode)");
      goto done;
    }
    s->cluster = true;
  }
  /* program, class, resource */
  bool jvm = s->program == MU_SPARK_JAVA || s->program == MU_SPARK_SCALA;
  if (jvm && s->main_class == NULL) {
    rc = muster_field_fail(ps->errbuf, "spark.main_class: required for program_type %s",
                           mu_spark_program_name(s->program));
    goto done;
  }
  if (!jvm && s->main_class != NULL) {
    rc = muster_field_fail(ps->errbuf, "spark.main_class: not used by program_type %s",
                           mu_spark_program_name(s->program));
    goto done;
  }
  if (s->main_class != NULL && !spark_spec_is_class_name(s->main_class)) {
    rc = muster_field_fail(ps->errbuf, "spark.main_class: \"%s\" is not a class name (a.b.Main)", s->main_class);
    goto done;
  }
  if (s->program == MU_SPARK_SQL) {
    if ((s->sql == NULL) == (s->app_resource == NULL)) {
      rc = muster_field_fail(
          ps->errbuf,
          "spark.sql: program_type sql takes exactly one of sql (inline) and app_resource (a .sql file from the "
          "bundle)");
      goto done;
    }
    if (s->via != MU_SPARK_VIA_SUBMIT) {
      rc = muster_field_fail(ps->errbuf, "spark.via: program_type sql runs spark-sql, so via must be spark-submit");
      goto done;
    }
    if (s->cluster) {
      rc = muster_field_fail(ps->errbuf, "spark.deploy_mode: spark-sql runs in client mode only");
      goto done;
    }
  } else {
    if (s->sql != NULL) {
      rc = muster_field_fail(ps->errbuf, "spark.sql: only for program_type sql");
      goto done;
    }
    if (s->app_resource == NULL) {
      rc = muster_field_fail(
          ps->errbuf, "spark.app_resource: required (a %s from the bundle, or an http(s) URL with app_resource_sha256)",
          s->program == MU_SPARK_PYTHON ? ".py file" : "jar");
      goto done;
    }
  }
  if (s->app_resource != NULL) {
    char scheme[32];
    spark_spec_url_scheme(s->app_resource, scheme, sizeof scheme);
    s->app_resource_is_url = scheme[0] != '\0';
    rc = spark_spec_check_resource(s->app_resource, "spark.app_resource",
                                   s->via == MU_SPARK_VIA_REST || s->via == MU_SPARK_VIA_LIVY ||
                                       strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0,
                                   ps->errbuf);
    if (rc != 0) {
      if (s->app_resource_is_url)
        rc = muster_field_fail(
            ps->errbuf,
            "spark.app_resource: scheme \"%s\" not supported with spark-submit (a bundle path, or an http(s) URL "
            "with app_resource_sha256)",
            scheme);
      goto done;
    }
    bool http = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
    if (http && s->via == MU_SPARK_VIA_SUBMIT && s->app_resource_sha256 == NULL) {
      rc = muster_field_fail(ps->errbuf, "spark.app_resource_sha256: required when app_resource is a URL (\"%s\")",
                             s->app_resource);
      goto done;
    }
    if (s->via != MU_SPARK_VIA_SUBMIT && !s->app_resource_is_url && s->app_resource[0] != '/') {
      rc = muster_field_fail(
          ps->errbuf, "spark.app_resource: via %s sends no file: give a URL or path the cluster's workers can read",
          s->via == MU_SPARK_VIA_REST ? "rest" : "livy");
      goto done;
    }
  }
  if (s->app_resource_sha256 != NULL) {
    if (!spark_spec_is_hex64(s->app_resource_sha256)) {
      rc = muster_field_fail(ps->errbuf, "spark.app_resource_sha256: want 64 hex digits");
      goto done;
    }
    if (!s->app_resource_is_url) {
      rc = muster_field_fail(
          ps->errbuf,
          "spark.app_resource_sha256: only for an app_resource URL (bundle files are checked with the bundle)");
      goto done;
    }
    for (char *p = s->app_resource_sha256; *p; p++) *p = (char)tolower((unsigned char)*p);
  }
  if (s->program == MU_SPARK_PYTHON && s->app_resource != NULL && !spark_spec_has_suffix(s->app_resource, ".py")) {
    rc = muster_field_fail(ps->errbuf, "spark.app_resource: \"%s\" is not a .py file (program_type python)",
                           s->app_resource);
    goto done;
  }
  if (s->py_files.n > 0 && s->program != MU_SPARK_PYTHON) {
    rc = muster_field_fail(ps->errbuf, "spark.py_files: only for program_type python");
    goto done;
  }

  /* resources */
  if (s->driver_memory && !mu_spark_memory_ok(s->driver_memory)) {
    rc = muster_field_fail(ps->errbuf, "spark.driver_memory: \"%s\" is not a memory size (e.g. 512m, 2g)",
                           s->driver_memory);
    goto done;
  }
  if (s->executor_memory && !mu_spark_memory_ok(s->executor_memory)) {
    rc = muster_field_fail(ps->errbuf, "spark.executor_memory: \"%s\" is not a memory size (e.g. 512m, 2g)",
                           s->executor_memory);
    goto done;
  }
  if (s->name != NULL && spark_spec_has_ctl(s->name)) {
    rc = muster_field_fail(ps->errbuf, "spark.name: control characters are not allowed");
    goto done;
  }
  if (s->queue != NULL && (spark_spec_has_ctl(s->queue) || strchr(s->queue, ' '))) {
    rc = muster_field_fail(ps->errbuf, "spark.queue: spaces and control characters are not allowed");
    goto done;
  }
  if (s->queue != NULL && s->master_kind != MU_SPARK_YARN && s->via != MU_SPARK_VIA_LIVY) {
    rc = muster_field_fail(ps->errbuf, "spark.queue: only for master yarn (or via livy)");
    goto done;
  }
  if (s->namespace_ != NULL && s->master_kind != MU_SPARK_K8S) {
    rc = muster_field_fail(ps->errbuf, "spark.namespace: only for k8s:// masters");
    goto done;
  }
  rc = spark_spec_check_list_resources(&s->jars, "spark.jars", ps->errbuf);
  if (rc == 0) rc = spark_spec_check_list_resources(&s->py_files, "spark.py_files", ps->errbuf);
  if (rc == 0) rc = spark_spec_check_list_resources(&s->files, "spark.files", ps->errbuf);
  if (rc == 0) rc = spark_spec_check_list_resources(&s->archives, "spark.archives", ps->errbuf);
  if (rc != 0) goto done;
  for (size_t i = 0; i < s->packages.n; i++)
    if (!spark_spec_is_package(s->packages.items[i])) {
      rc = muster_field_fail(ps->errbuf, "spark.packages[%zu]: \"%s\" is not group:artifact:version", i,
                             s->packages.items[i]);
      goto done;
    }
  if ((s->principal == NULL) != (s->keytab == NULL)) {
    rc = muster_field_fail(ps->errbuf, "spark.%s: principal and keytab go together",
                           s->principal ? "keytab" : "principal");
    goto done;
  }
  if (s->keytab != NULL && s->keytab[0] != '/') {
    rc = spark_spec_check_resource(s->keytab, "spark.keytab", false, ps->errbuf);
    if (rc != 0) goto done;
  }

  /* conf vs fields */
  rc = spark_spec_check_conf(s, ps->errbuf);
  if (rc != 0) goto done;

  /* tracking surfaces */
  for (size_t i = 0; i < s->yarn_rm_urls.n; i++) {
    char f[64];
    snprintf(f, sizeof f, "spark.yarn_rm_urls[%zu]", i);
    rc = spark_spec_check_http_url(s->yarn_rm_urls.items[i], f, ps->errbuf);
    if (rc != 0) goto done;
  }
  if (s->rest_url) {
    rc = spark_spec_check_http_url(s->rest_url, "spark.rest_url", ps->errbuf);
    if (rc != 0) goto done;
  }
  if (s->livy_url) {
    rc = spark_spec_check_http_url(s->livy_url, "spark.livy_url", ps->errbuf);
    if (rc != 0) goto done;
  }
  if (s->spark_ui_url) {
    rc = spark_spec_check_http_url(s->spark_ui_url, "spark.spark_ui_url", ps->errbuf);
    if (rc != 0) goto done;
  }
  rc = s->via == MU_SPARK_VIA_LIVY ? spark_spec_check_livy(s, ps->errbuf) : 0;
  if (rc == 0) rc = spark_spec_check_auth(s, ps->errbuf);
  if (rc == 0) rc = spark_spec_check_k8s_api(s, def, ps->errbuf);
  if (rc == 0 && s->proxy_user != NULL && s->via != MU_SPARK_VIA_LIVY)
    rc =
        muster_field_fail(ps->errbuf, "spark.proxy_user: only with via livy (spark-submit takes --proxy-user in conf)");
  if (rc != 0) goto done;
  if (s->via == MU_SPARK_VIA_SUBMIT && s->cluster && s->master_kind == MU_SPARK_YARN && s->yarn_rm_urls.n == 0) {
    rc = muster_field_fail(
        ps->errbuf,
        "spark.yarn_rm_urls: required to track a yarn cluster-mode application (or MUSTER_SPARK_YARN_RM_URLS on "
        "the agent)");
    goto done;
  }
  if (s->via == MU_SPARK_VIA_SUBMIT && s->cluster && s->master_kind == MU_SPARK_STANDALONE && s->rest_url == NULL) {
    /* the REST server listens on the master's host, port 6066 by default */
    const char *h = s->master + 8;
    size_t hl = strcspn(h, ":,");
    char buf[600];
    snprintf(buf, sizeof buf, "http://%.*s:6066", (int)(hl < 500 ? hl : 500), h);
    s->rest_url = strdup(buf);
    if (s->rest_url == NULL) {
      rc = -ENOMEM;
      goto done;
    }
  }
  if (s->cluster && s->master_kind == MU_SPARK_STANDALONE && s->program == MU_SPARK_PYTHON) {
    rc = muster_field_fail(ps->errbuf,
                           "spark.deploy_mode: a standalone master runs python applications in client mode only");
    goto done;
  }
done:
  free(dm);
  free(via);
  return rc;
}

int mu_spark_spec_parse(const char *spec_json, const char *config_json, const mu_spark_defaults *defaults,
                        mu_spark_spec **ret, char *errbuf) {
  errbuf[0] = '\0';
  muster_spec_view view;
  mu_spark_spec *s = NULL;
  int rc = muster_spec_view_open(spec_json, config_json, "spark", &view, errbuf);
  if (rc != 0) goto done;
  s = calloc(1, sizeof *s);
  if (s == NULL) {
    rc = -ENOMEM;
    goto done;
  }
  spark_spec_parser ps = {.secrets = view.secrets, .errbuf = errbuf};
  size_t i;
  json_t *sec;
  json_array_foreach(ps.secrets, i, sec) {
    rc = add_secret(s, json_string_value(json_object_get(sec, "value")));
    if (rc != 0) goto done;
  }
  rc =
      muster_fields_check_known(view.config, "spark", known_fields, sizeof known_fields / sizeof *known_fields, errbuf);
  if (rc == 0) rc = parse_fields(&ps, view.spec, view.config, defaults, s);
  if (rc != 0) goto done;
  if (s->n_secrets > 1) qsort(s->secrets, s->n_secrets, sizeof *s->secrets, by_length_desc);
  *ret = s;
  s = NULL;
done:
  if (rc == -ENOMEM && errbuf[0] == '\0') snprintf(errbuf, MUSTER_ERRBUF_SIZE, "spark: out of memory");
  mu_spark_spec_free(s);
  muster_spec_view_close(&view);
  return rc;
}

static void free_list(mu_spark_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
}

void mu_spark_spec_free(mu_spark_spec *s) {
  if (s == NULL) return;
  free(s->master);
  free(s->main_class);
  free(s->app_resource);
  free(s->app_resource_sha256);
  free(s->sql);
  free_list(&s->app_args);
  for (size_t i = 0; i < s->n_conf; i++) free(s->conf[i].key), free(s->conf[i].value);
  free(s->conf);
  free(s->name);
  free(s->driver_memory);
  free(s->executor_memory);
  free(s->queue);
  free(s->namespace_);
  free_list(&s->jars);
  free_list(&s->py_files);
  free_list(&s->files);
  free_list(&s->archives);
  free_list(&s->packages);
  free(s->principal);
  free(s->keytab);
  free(s->spark_home);
  free_list(&s->yarn_rm_urls);
  free(s->rest_url);
  free(s->livy_url);
  free(s->spark_ui_url);
  free(s->auth_user);
  free(s->auth_password);
  free(s->auth_token);
  free(s->proxy_user);
  free(s->k8s_api_url);
  free(s->k8s_token);
  free(s->k8s_ca_file);
  for (size_t i = 0; i < s->n_secrets; i++) free(s->secrets[i]);
  free(s->secrets);
  free(s);
}
