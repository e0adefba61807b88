/* Job targets: which agents a Target names (all, a label selector, host globs, or "any" one
 * placed later), and which task types the fleet can serve. Draining agents are never
 * targets; a target that names only draining agents is an error that says so. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/targets.h"
#include "lib/plugpkg/plugin_check.h"
#include "lib/plugpkg/plugin_yaml.h"
#include "lib/selector/selector.h"

static int host_matches(const mu_agent *a, const char *pattern) {
  if (fnmatch(pattern, a->id, 0) == 0) return 1;
  const Muster__V1__Hello *h = a->hello_msg ? a->hello_msg->hello : NULL;
  return h != NULL && fnmatch(pattern, h->hostname, 0) == 0;
}

int mu_targets_type_known(void *ud, const char *type) {
  const mu_registry *reg = ud;
  for (size_t i = 0; i < reg->n; i++) {
    const mu_agent *a = reg->agents[i];
    const Muster__V1__Hello *h = a->hello_msg ? a->hello_msg->hello : NULL;
    for (size_t p = 0; h && p < h->n_plugins; p++)
      if (strcmp(h->plugins[p]->type, type) == 0) return 1;
  }
  return 0;
}

int mu_targets_resolve(const mu_registry *reg, const Muster__V1__Target *t, char ***ret_ids, size_t *ret_n,
                       mu_err *err) {
  char **ids = calloc(reg->n + t->n_hosts + 1, sizeof *ids);
  size_t *named_by = calloc(reg->n + t->n_hosts + 1, sizeof *named_by); /* hosts entry */
  size_t n = 0, drained = 0;
  int rc = 0;
  if (ids == NULL || named_by == NULL) {
    free(ids);
    free(named_by);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (t->count > 0 && t->any[0] == '\0') {
    rc = mu_err_set(err, MU_EINVAL, "target.count: only with target.any (any N matching agents)");
  } else if (t->strategy[0] != '\0' && t->any[0] == '\0') {
    rc = mu_err_set(err, MU_EINVAL, "target.strategy: only with target.any");
  } else if (t->all) {
    for (size_t i = 0; i < reg->n; i++) {
      if (reg->agents[i]->draining) drained++;
      else ids[n++] = reg->agents[i]->id;
    }
    if (n == 0 && drained > 0) rc = mu_err_set(err, MU_EINVAL, "target: all: every agent (%zu) is draining", drained);
    else if (n == 0) rc = mu_err_set(err, MU_EINVAL, "target: all: no agent has ever connected");
  } else if (t->selector[0] != '\0' || t->any[0] != '\0') {
    const char *text = t->selector[0] ? t->selector : t->any;
    mu_selector *sel = NULL;
    rc = mu_selector_parse(text, &sel, err);
    if (rc == 0) {
      for (size_t i = 0; i < reg->n; i++) {
        if (!mu_selector_matches(sel, mu_agent_label, reg->agents[i])) continue;
        if (reg->agents[i]->draining) drained++;
        else ids[n++] = reg->agents[i]->id;
      }
      mu_selector_free(sel);
      if (n == 0 && drained > 0)
        rc = mu_err_set(err, MU_EINVAL, "target.%s: '%s' matches only draining agents (%zu)",
                        t->selector[0] ? "selector" : "any", text, drained);
      else if (n == 0)
        rc = mu_err_set(err, MU_EINVAL, "target.%s: '%s' matches no agent", t->selector[0] ? "selector" : "any", text);
      uint32_t count = t->count ? t->count : 1;
      if (rc == 0 && t->any[0] != '\0' && count > n) {
        rc = mu_err_set(err, MU_EINVAL, "target.count: %u, but '%s' matches %zu agents%s", count, text, n,
                        drained ? " that are not draining" : "");
      } else if (rc == 0 && t->any[0] != '\0') {
        free(ids);
        ids = calloc(count, sizeof *ids); /* each placed at dispatch on a connected match */
        n = count;
        if (ids == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      }
    }
  } else {
    for (size_t k = 0; k < t->n_hosts && rc == 0; k++) {
      size_t before = n, drained_here = 0, taken = 0, taken_by = 0;
      for (size_t i = 0; i < reg->n; i++) {
        size_t j = 0;
        while (j < n && ids[j] != reg->agents[i]->id) j++;
        if (!host_matches(reg->agents[i], t->hosts[k])) continue;
        if (j < n) { /* an earlier entry named it */
          if (taken++ == 0) taken_by = named_by[j];
          continue;
        }
        if (reg->agents[i]->draining) {
          drained_here++;
        } else {
          named_by[n] = k;
          ids[n++] = reg->agents[i]->id;
        }
      }
      if (n == before && drained_here == 0 && taken > 0)
        rc = mu_err_set(err, MU_EINVAL,
                        "target.hosts[%zu]: '%s' matches only agents already named by "
                        "target.hosts[%zu] ('%s')",
                        k, t->hosts[k], taken_by, t->hosts[taken_by]);
      else if (n == before && drained_here > 0)
        rc = mu_err_set(err, MU_EINVAL, "target.hosts[%zu]: '%s' matches only draining agents (%zu)", k, t->hosts[k],
                        drained_here);
      else if (n == before) rc = mu_err_set(err, MU_EINVAL, "target.hosts[%zu]: '%s' matches no agent", k, t->hosts[k]);
    }
  }
  free(named_by);
  if (rc != 0) {
    free(ids);
    return rc;
  }
  *ret_ids = ids;
  *ret_n = n;
  return 0;
}

/* 1 when agent id serves type, or when it cannot be told (no Hello known yet). */
static int agent_serves(const mu_registry *reg, const char *id, const char *type) {
  const mu_agent *a = mu_registry_find(reg, id);
  const Muster__V1__Hello *h = a && a->hello_msg ? a->hello_msg->hello : NULL;
  if (h == NULL || strcmp(type, MU_PLUGIN_INSTALL_TYPE) == 0) return 1; /* every agent deploys plugins */
  for (size_t p = 0; p < h->n_plugins; p++)
    if (strcmp(h->plugins[p]->type, type) == 0) return 1;
  return 0;
}

int mu_targets_check_types(const mu_registry *reg, const Muster__V1__JobSpec *spec, char *const *ids, size_t n,
                           mu_err *err) {
  if (n == 0 || ids[0] == NULL) return 0; /* "any": placed at dispatch */
  for (size_t t = 0; t < spec->n_tasks; t++) {
    const Muster__V1__TaskSpec *ts = spec->tasks[t];
    size_t k = 0;
    while (k < n && !agent_serves(reg, ids[k], ts->type)) k++;
    if (k < n) continue;
    char hosts[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && i < 10 && off < sizeof hosts; i++)
      off += (size_t)snprintf(hosts + off, sizeof hosts - off, "%s%s", i ? ", " : "", ids[i]);
    if (n > 10 && off < sizeof hosts) snprintf(hosts + off, sizeof hosts - off, ", ... %zu more", n - 10);
    return mu_err_set(err, MU_EINVAL, "task '%s': no targeted agent serves type \"%s\" (%s)", ts->name, ts->type,
                      hosts);
  }
  return 0;
}

/* The version of type agent a reports, or NULL. */
static const char *version_of(const mu_agent *a, const char *type) {
  const Muster__V1__Hello *h = a != NULL && a->hello_msg ? a->hello_msg->hello : NULL;
  for (size_t p = 0; h != NULL && p < h->n_plugins; p++)
    if (strcmp(h->plugins[p]->type, type) == 0) return h->plugins[p]->version;
  return NULL;
}

int mu_targets_agent_fits_pins(const mu_agent *a, const Muster__V1__JobSpec *spec) {
  for (size_t t = 0; t < spec->n_tasks; t++) {
    const Muster__V1__TaskSpec *ts = spec->tasks[t];
    if (ts->plugin_version == NULL || ts->plugin_version[0] == '\0') continue;
    if (!mu_version_range_match(ts->plugin_version, version_of(a, ts->type))) return 0;
  }
  return 1;
}

/* "a1: 1.0.0, a2: none, ..." for the agents listed (all of reg when ids is NULL). */
static void versions_text(const mu_registry *reg, char *const *ids, size_t n, const char *type, char *buf,
                          size_t size) {
  size_t off = 0, shown = 0, total = ids != NULL ? n : reg->n;
  buf[0] = '\0';
  for (size_t i = 0; i < total && off < size; i++) {
    const mu_agent *a = ids != NULL ? mu_registry_find(reg, ids[i]) : reg->agents[i];
    if (a == NULL) continue;
    if (shown == 10) {
      snprintf(buf + off, size - off, ", ... %zu more", total - i);
      break;
    }
    const char *v = version_of(a, type);
    off += (size_t)snprintf(buf + off, size - off, "%s%s: %s", shown ? ", " : "", a->id, v ? v : "none");
    shown++;
  }
}

int mu_targets_filter_pins(const mu_registry *reg, const Muster__V1__JobSpec *spec, char **ids, size_t *n,
                           mu_err *err) {
  const Muster__V1__TaskSpec *pinned = NULL;
  for (size_t t = 0; t < spec->n_tasks && pinned == NULL; t++)
    if (spec->tasks[t]->plugin_version != NULL && spec->tasks[t]->plugin_version[0] != '\0') pinned = spec->tasks[t];
  if (pinned == NULL) return 0;
  int any = *n == 0 || ids[0] == NULL;
  size_t kept = 0;
  if (any) {
    for (size_t i = 0; i < reg->n; i++) kept += mu_targets_agent_fits_pins(reg->agents[i], spec);
  } else {
    for (size_t i = 0; i < *n; i++)
      if (mu_targets_agent_fits_pins(mu_registry_find(reg, ids[i]), spec)) ids[kept++] = ids[i];
  }
  if (kept > 0) {
    if (!any) *n = kept;
    return 0;
  }
  /* name the first task no agent fits, with what the agents have */
  for (size_t t = 0; t < spec->n_tasks; t++) {
    const Muster__V1__TaskSpec *ts = spec->tasks[t];
    if (ts->plugin_version == NULL || ts->plugin_version[0] == '\0') continue;
    char have[700];
    versions_text(reg, any ? NULL : ids, any ? 0 : *n, ts->type, have, sizeof have);
    return mu_err_set(err, MU_EINVAL,
                      "task '%s': plugin_version '%s': no %sagent has a matching version of %s (agents have: %s)",
                      ts->name, ts->plugin_version, any ? "" : "targeted ", ts->type, have[0] ? have : "none");
  }
  return 0;
}
