/* The plugin env and the plugin-wide API of SDK v2 (plugin_env.h): state, configuration,
 * health, schema, and metric families prefixed muster_plugin_<type>_ in the agent's plugin
 * metrics registry, bounded per plugin (families) and per family (label sets). */
#include "agent/exec/plugin_env.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"

typedef struct fam {
  char name[64]; /* the plugin's own name */
  mu_metric *m;
} fam;

struct muster_plugin_env {
  const muster_plugin *desc;
  void (*shutdown)(muster_plugin_env *, const muster_plugin_api *); /* copied: an out-of-process
                                  * plugin's proxy descriptor is gone by the time env is freed */
  mu_metrics *reg;
  void *state;
  bool configured;
  char *config; /* last applied, NULL = "{}" */
  fam fams[MUSTER_METRIC_MAX_FAMILIES];
  size_t n_fams;
};

static bool v2(const muster_plugin *d) { return d->abi_version >= 2; }

int mu_plugin_env_new(const muster_plugin *desc, mu_metrics *reg, muster_plugin_env **ret, mu_err *err) {
  muster_plugin_env *env = calloc(1, sizeof *env);
  if (env == NULL) return mu_err_set(err, MU_ENOMEM, "plugin env: out of memory");
  env->desc = desc;
  env->shutdown = v2(desc) ? desc->shutdown : NULL;
  env->reg = reg;
  *ret = env;
  return 0;
}

void mu_plugin_env_free(muster_plugin_env *env) {
  if (env == NULL) return;
  if (env->shutdown != NULL && env->configured) env->shutdown(env, mu_plugin_api());
  free(env->config);
  free(env);
}

const muster_plugin *mu_plugin_env_desc(const muster_plugin_env *env) { return env->desc; }

int mu_plugin_env_configure(muster_plugin_env *env, const char *config_json, mu_err *err) {
  const char *cfg = config_json != NULL && config_json[0] != '\0' ? config_json : "{}";
  if (strlen(cfg) > MU_PLUGIN_CONFIG_MAX)
    return mu_err_set(err, MU_ENOSPC, "plugin '%s': configuration of %zu bytes is over the %u-byte bound",
                      env->desc->type, strlen(cfg), MU_PLUGIN_CONFIG_MAX);
  char *copy = strdup(cfg);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "plugin env: out of memory");
  if (v2(env->desc) && env->desc->configure != NULL) {
    char errbuf[MUSTER_ERRBUF_SIZE] = "";
    if (env->desc->configure(env, mu_plugin_api(), cfg, errbuf) != 0) {
      free(copy);
      return mu_err_set(err, MU_EINVAL, "plugin '%s': configuration refused: %s", env->desc->type,
                        errbuf[0] ? errbuf : "(no reason given)");
    }
  }
  env->configured = true;
  free(env->config);
  env->config = copy;
  return 0;
}

const char *mu_plugin_env_config(const muster_plugin_env *env) { return env->config != NULL ? env->config : "{}"; }

int mu_plugin_env_health(muster_plugin_env *env, char *reason, size_t cap) {
  if (cap > 0) reason[0] = '\0';
  if (!v2(env->desc) || env->desc->health == NULL) return MUSTER_HEALTH_OK;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  int h = env->desc->health(env, mu_plugin_api(), errbuf);
  if (h < MUSTER_HEALTH_OK || h > MUSTER_HEALTH_FAIL) {
    snprintf(reason, cap, "health() returned %d (want 0, 1 or 2)", h);
    return MUSTER_HEALTH_FAIL;
  }
  snprintf(reason, cap, "%s", errbuf);
  return h;
}

const char *mu_plugin_env_describe(muster_plugin_env *env) {
  if (!v2(env->desc) || env->desc->describe == NULL) return "";
  const char *s = env->desc->describe(env, mu_plugin_api());
  if (s == NULL || strnlen(s, MU_PLUGIN_SCHEMA_MAX + 1) > MU_PLUGIN_SCHEMA_MAX) return "";
  return s;
}

muster_metric *mu_plugin_env_metric(const muster_plugin_env *env, const char *name) {
  for (size_t i = 0; i < env->n_fams; i++)
    if (strcmp(env->fams[i].name, name) == 0) return (muster_metric *)env->fams[i].m;
  return NULL;
}

mu_log_level mu_plugin_log_level(muster_log_level level) {
  return level <= MUSTER_LOG_DEBUG  ? MU_LOG_DEBUG
         : level == MUSTER_LOG_INFO ? MU_LOG_INFO
         : level == MUSTER_LOG_WARN ? MU_LOG_WARN
                                    : MU_LOG_ERROR;
}

/* ---- the muster_plugin_api table ---- */

static void a_set_state(muster_plugin_env *env, void *state) { env->state = state; }
static void *a_state(muster_plugin_env *env) { return env->state; }

static bool name_ok(const char *s, bool first_digit_ok) {
  if (s == NULL || s[0] == '\0' || strlen(s) > 63) return false;
  if (!first_digit_ok && s[0] >= '0' && s[0] <= '9') return false;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) return false;
  return true;
}

static int a_metric_register(muster_plugin_env *env, const muster_metric_desc *d, muster_metric **ret, char *errbuf) {
  const char *type = env->desc->type;
  if (ret != NULL) *ret = NULL;
  if (d == NULL || !name_ok(d->name, true)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric name \"%s\": want [a-z0-9_]{1,63}", d && d->name ? d->name : "");
    return -EINVAL;
  }
  muster_metric *have = mu_plugin_env_metric(env, d->name);
  if (have != NULL) {
    if (ret != NULL) *ret = have;
    return 0;
  }
  if (env->n_fams >= MUSTER_METRIC_MAX_FAMILIES) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric %s: more than %d metrics for one plugin", d->name,
             MUSTER_METRIC_MAX_FAMILIES);
    return -ENOSPC;
  }
  if (d->type < MUSTER_METRIC_COUNTER || d->type > MUSTER_METRIC_HISTOGRAM) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric %s: unknown type %d", d->name, (int)d->type);
    return -EINVAL;
  }
  mu_metric_desc md = {.help = d->help != NULL && d->help[0] ? d->help : d->name,
                       .type = (mu_metric_type)d->type,
                       .buckets = d->buckets,
                       .n_buckets = d->n_buckets,
                       .max_series = MUSTER_METRIC_MAX_SERIES};
  size_t nl = 0;
  for (; d->labels != NULL && d->labels[nl] != NULL; nl++) {
    if (nl >= MUSTER_METRIC_MAX_LABELS || !name_ok(d->labels[nl], false)) {
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric %s: label %zu: want at most %d names of [a-z_][a-z0-9_]*", d->name,
               nl + 1, MUSTER_METRIC_MAX_LABELS);
      return -EINVAL;
    }
    md.labels[nl] = d->labels[nl];
  }
  if (d->type == MUSTER_METRIC_HISTOGRAM && (d->n_buckets == 0 || d->n_buckets > MUSTER_METRIC_MAX_BUCKETS)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric %s: a histogram needs 1 to %d buckets", d->name,
             MUSTER_METRIC_MAX_BUCKETS);
    return -EINVAL;
  }
  char full[160], ptype[80];
  snprintf(ptype, sizeof ptype, "%s", type);
  for (char *c = ptype; *c; c++)
    if (*c == '-') *c = '_';
  snprintf(full, sizeof full, "muster_plugin_%s_%s", ptype, d->name);
  md.name = full;
  mu_metric *m = NULL;
  /* a later version of the plugin (hot upgrade) keeps counting in its predecessor's family */
  if (env->reg != NULL) m = mu_metrics_find(env->reg, &md);
  if (env->reg != NULL && m == NULL) {
    mu_err e = {0};
    if (mu_metrics_add(env->reg, &md, &m, &e) != 0) {
      snprintf(errbuf, MUSTER_ERRBUF_SIZE, "metric %s: %s", d->name, e.msg);
      return -EINVAL;
    }
  }
  fam *f = &env->fams[env->n_fams++];
  snprintf(f->name, sizeof f->name, "%s", d->name);
  f->m = m;
  if (ret != NULL) *ret = (muster_metric *)m; /* NULL without a registry: updates do nothing */
  return 0;
}

static void a_metric_add(muster_metric *m, const char *const *values, double v) {
  mu_metric_add((mu_metric *)m, values, v);
}
static void a_metric_set(muster_metric *m, const char *const *values, double v) {
  mu_metric_set((mu_metric *)m, values, v);
}
static void a_metric_observe(muster_metric *m, const char *const *values, double v) {
  mu_metric_observe((mu_metric *)m, values, v);
}

static void a_log(muster_plugin_env *env, muster_log_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mu_log(mu_plugin_log_level(level), "plugin", "%s: %s", env->desc->type, msg);
}

static const muster_plugin_api papi = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .size = sizeof(muster_plugin_api),
    .set_state = a_set_state,
    .state = a_state,
    .metric_register = a_metric_register,
    .metric_add = a_metric_add,
    .metric_set = a_metric_set,
    .metric_observe = a_metric_observe,
    .log = a_log,
};

const muster_plugin_api *mu_plugin_api(void) { return &papi; }
