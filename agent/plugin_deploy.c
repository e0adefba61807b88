/* The `muster-plugin-install` task type: plugin deploys and rollbacks (plugin_deploy.h). The
 * file work (plugin.yaml, host checks, copying the .so into the spool) runs on the thread
 * pool; loading and the state file are on the loop. */
#define _GNU_SOURCE
#include "agent/plugin_deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/plugin/plugin_set.h"
#include "lib/base/log.h"
#include "lib/bundle/version.h"
#include "lib/plugpkg/plugin_check.h"
#include "lib/plugpkg/plugin_state.h"
#include "lib/plugpkg/plugin_yaml.h"

#define MU_PLUGIN_SO_MAX (512u << 20)

typedef struct install_job {
  mu_agent_daemon *a;
  muster_task *task; /* NULL once the task ended first (a cancel): the work result is dropped */
  const muster_host_api *host;
  uv_work_t work;
  int working;
  char type[65], version[65];
  int allow_downgrade;
  char task_dir[MU_PLUGIN_STATE_PATH_MAX];
  char dest[MU_PLUGIN_STATE_PATH_MAX]; /* <spool>/plugins/TYPE/VERSION/LIB */
  mu_plugin_pkg *pkg;
  int rc;
  mu_err err;
} install_job;

static void state_file(const mu_agent_daemon *a, char *buf, size_t size) {
  snprintf(buf, size, "%s/plugins/state.json", a->cfg.spool_dir);
}

static void finish(install_job *j, muster_state state, const char *msg) {
  muster_result r = {state, state == MUSTER_STATE_SUCCEEDED ? 0 : 1, 0, msg};
  j->host->finish(j->task, &r);
}

static int mkdirs(const char *path, mu_err *err) {
  char buf[MU_PLUGIN_STATE_PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0750) != 0 && errno != EEXIST) return mu_err_set(err, MU_EIO, "%s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0750) != 0 && errno != EEXIST) return mu_err_set(err, MU_EIO, "%s: %s", buf, strerror(errno));
  return 0;
}

/* Copies src to dst through dst.tmp and a rename (a loaded .so at dst keeps its inode). */
static int copy_file(const char *src, const char *dst, mu_err *err) {
  char tmp[MU_PLUGIN_STATE_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", dst);
  int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return mu_err_set(err, MU_ENOENT, "%s: %s", src, strerror(errno));
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0750);
  int rc = 0;
  uint64_t total = 0;
  if (out < 0) rc = mu_err_set(err, MU_EIO, "%s: %s", tmp, strerror(errno));
  char buf[65536];
  while (rc == 0) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) break;
    total += n > 0 ? (uint64_t)n : 0;
    if (n < 0 || write(out, buf, (size_t)n) != n) rc = mu_err_set(err, MU_EIO, "copying %s: %s", src, strerror(errno));
    else if (total > MU_PLUGIN_SO_MAX) rc = mu_err_set(err, MU_ENOSPC, "%s: over %u bytes", src, MU_PLUGIN_SO_MAX);
  }
  close(in);
  if (out >= 0 && close(out) != 0 && rc == 0) rc = mu_err_set(err, MU_EIO, "%s: %s", tmp, strerror(errno));
  if (rc == 0 && rename(tmp, dst) != 0) rc = mu_err_set(err, MU_EIO, "%s: %s", dst, strerror(errno));
  if (rc != 0) unlink(tmp);
  return rc;
}

/* Thread pool: plugin.yaml, the host checks, the copy into the spool. */
static void install_work(uv_work_t *w) {
  install_job *j = w->data;
  char yaml[MU_PLUGIN_STATE_PATH_MAX + 16];
  snprintf(yaml, sizeof yaml, "%s/plugin.yaml", j->task_dir);
  mu_err *err = &j->err;
  j->rc = mu_plugin_pkg_load(yaml, &j->pkg, err);
  if (j->rc == MU_ENOENT)
    mu_err_set(err, MU_EINVAL, "the bundle has no plugin.yaml (pack it with `muster plugin pack`)");
  if (j->rc != 0) return;
  const mu_plugin_pkg *p = j->pkg;
  if (strcmp(p->type, j->type) != 0 || mu_bundle_version_cmp(p->version, j->version) != 0) {
    j->rc = mu_err_set(err, MU_EINVAL, "plugin.yaml says %s %s, the deploy asked for %s %s", p->type, p->version,
                       j->type, j->version);
    return;
  }
  mu_plugin_host_facts host = {.abi_version = MUSTER_PLUGIN_ABI_VERSION, .os = "linux", .arch = j->a->facts.arch};
  j->rc = mu_plugin_pkg_check_host(p, &host, err);
  if (j->rc != 0) return;
  char src[MU_PLUGIN_STATE_PATH_MAX + 200], dir[MU_PLUGIN_STATE_PATH_MAX];
  snprintf(src, sizeof src, "%s/%s", j->task_dir, p->library);
  int n = snprintf(dir, sizeof dir, "%s/plugins/%s/%s", j->a->cfg.spool_dir, p->type, p->version);
  if (n < 0 || (size_t)n >= sizeof dir || (size_t)n + strlen(p->library) + 2 >= sizeof j->dest) {
    j->rc = mu_err_set(err, MU_EINVAL, "spool path too long");
    return;
  }
  snprintf(j->dest, sizeof j->dest, "%s/%s", dir, p->library);
  j->rc = mkdirs(dir, err);
  if (j->rc == 0) j->rc = copy_file(src, j->dest, err);
  if (j->rc == MU_ENOENT) mu_err_prefix(err, "plugin.yaml's library %s is not in the bundle", p->library);
}

/* Records type's new active version (and, on its first deploy, the one it replaces). */
static int record(mu_agent_daemon *a, const char *type, const char *old_version, const char *old_path,
                  const char *version, const char *path, mu_err *err) {
  mu_plugin_state *s = calloc(1, sizeof *s);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  char file[MU_CFG_PATH_MAX + 32];
  state_file(a, file, sizeof file);
  int rc = mu_plugin_state_load(file, s, err);
  if (rc == 0 && mu_plugin_state_find(s, type) == NULL && old_path != NULL)
    rc = mu_plugin_state_set(s, type, old_version, old_path, err);
  if (rc == 0) rc = mu_plugin_state_set(s, type, version, path, err);
  if (rc == 0) rc = mu_plugin_state_save(file, s, err);
  free(s);
  return rc;
}

/* Loads path as type's active version, then checks the version it reports. */
static int activate(mu_agent_daemon *a, const char *type, const char *version, const char *path, char *msg,
                    size_t msg_size, mu_err *err) {
  const muster_plugin *old = mu_plugin_host_find(a->plugins, type);
  char old_version[65] = "", old_path[MU_PLUGIN_STATE_PATH_MAX] = "";
  if (old != NULL) {
    snprintf(old_version, sizeof old_version, "%s", old->version ? old->version : "");
    snprintf(old_path, sizeof old_path, "%s", mu_plugin_host_path(a->plugins, type));
  }
  int rc = mu_plugin_set_upgrade(a->plugin_set, path, type, err);
  if (rc != 0) return rc;
  const muster_plugin *now = mu_plugin_host_find(a->plugins, type);
  if (now == NULL || now->version == NULL || mu_bundle_version_cmp(now->version, version) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "self-check: the .so says it is %s %s, plugin.yaml says %s", type,
                    now && now->version ? now->version : "?", version);
    mu_err back = {0};
    if (old != NULL && mu_plugin_set_upgrade(a->plugin_set, old_path, type, &back) != 0)
      mu_warn("plugins", "%s: going back to %s failed: %s", type, old_path, back.msg);
    return rc;
  }
  rc = record(a, type, old_version, old != NULL ? old_path : NULL, version, path, err);
  if (rc != 0)
    mu_warn("plugins", "%s %s is active, but not recorded (it will not survive a restart): %s", type, version,
            err->msg);
  snprintf(msg, msg_size, "%s %s is active%s%s%s", type, version, old ? " (was " : "", old ? old_version : "",
           old ? ")" : "");
  mu_plugin_deploy_announce(a);
  return 0;
}

static void install_done(uv_work_t *w, int status) {
  install_job *j = w->data;
  j->working = 0;
  if (j->task == NULL) { /* the task ended (cancelled) while the work ran */
    mu_plugin_pkg_free(j->pkg);
    free(j);
    return;
  }
  char msg[MU_ERR_MSG_MAX + 200];
  if (status != 0) j->rc = mu_err_set(&j->err, MU_EIO, "cancelled");
  if (j->rc == 0) j->rc = activate(j->a, j->type, j->version, j->dest, msg, sizeof msg, &j->err);
  if (j->rc != 0) {
    snprintf(msg, sizeof msg, "plugin %s %s not deployed (the active version stays): %s", j->type, j->version,
             j->err.msg);
    mu_warn("plugins", "%s", msg);
    finish(j, MUSTER_STATE_FAILED, msg);
    return;
  }
  mu_info("plugins", "deployed %s", msg);
  j->host->set_param(j->task, "plugin.version", j->version);
  finish(j, MUSTER_STATE_SUCCEEDED, msg);
}

static int rollback(install_job *j, char *errbuf) {
  mu_agent_daemon *a = j->a;
  mu_plugin_state *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  char file[MU_CFG_PATH_MAX + 32];
  state_file(a, file, sizeof file);
  mu_err err = {0};
  int rc = mu_plugin_state_load(file, s, &err);
  mu_plugin_state_entry *e = rc == 0 ? mu_plugin_state_find(s, j->type) : NULL;
  if (rc == 0 && (e == NULL || e->prev_path[0] == '\0'))
    rc = mu_err_set(&err, MU_ENOENT, "nothing to roll back to on this agent (no earlier version of %s deployed here)",
                    j->type);
  char version[65], path[MU_PLUGIN_STATE_PATH_MAX], msg[MU_ERR_MSG_MAX + 200];
  if (rc == 0) {
    snprintf(version, sizeof version, "%s", e->prev_version);
    snprintf(path, sizeof path, "%s", e->prev_path);
    rc = activate(a, j->type, version, path, msg, sizeof msg, &err);
  }
  free(s);
  if (rc != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "plugin %s: rollback failed (the active version stays): %s", j->type, err.msg);
    return -EINVAL;
  }
  mu_info("plugins", "rolled back: %s", msg);
  j->host->set_param(j->task, "plugin.version", version);
  char full[MU_ERR_MSG_MAX + 220];
  snprintf(full, sizeof full, "rolled back: %s", msg);
  finish(j, MUSTER_STATE_SUCCEEDED, full);
  return 0;
}

static int parse_config(install_job *j, const char *config_json, int *ret_rollback, char *errbuf) {
  json_error_t je;
  json_t *c = json_loads(config_json ? config_json : "{}", 0, &je);
  int rc = 0;
  const char *type = json_string_value(json_object_get(c, "type"));
  const char *version = json_string_value(json_object_get(c, "version"));
  *ret_rollback = json_is_true(json_object_get(c, "rollback"));
  j->allow_downgrade = json_is_true(json_object_get(c, "allowDowngrade"));
  if (c == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: config is not JSON: %s", MU_PLUGIN_INSTALL_TYPE, je.text);
    rc = -EINVAL;
  } else if (type == NULL || strlen(type) >= sizeof j->type || type[0] == '\0') {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: config.type: required plugin type", MU_PLUGIN_INSTALL_TYPE);
    rc = -EINVAL;
  } else if (!*ret_rollback && (version == NULL || mu_bundle_version_check(version, NULL) != 0)) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: config.version: required version", MU_PLUGIN_INSTALL_TYPE);
    rc = -EINVAL;
  } else {
    snprintf(j->type, sizeof j->type, "%s", type);
    snprintf(j->version, sizeof j->version, "%s", version ? version : "");
  }
  json_decref(c);
  return rc;
}

static int install_validate(const char *spec_json, const char *config_json, char *errbuf) {
  (void)spec_json;
  install_job j;
  int rb = 0;
  memset(&j, 0, sizeof j);
  return parse_config(&j, config_json, &rb, errbuf);
}

static int install_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  install_job *j = calloc(1, sizeof *j);
  if (j == NULL) return -ENOMEM;
  j->a = host->loop(task)->data;
  j->task = task;
  j->host = host;
  host->set_user_data(task, j); /* cleanup frees it, or leaves it to install_done */
  const muster_task_context *ctx = host->context(task);
  int rb = 0;
  int rc = parse_config(j, ctx->config_json, &rb, errbuf);
  if (rc != 0) return rc;
  if (rb) return rollback(j, errbuf);
  const muster_plugin *active = mu_plugin_host_find(j->a->plugins, j->type);
  if (active != NULL && active->version != NULL && !j->allow_downgrade &&
      mu_bundle_version_cmp(j->version, active->version) < 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE,
             "plugin %s: %s is lower than the active %s here (downgrade refused: deploy with --allow-downgrade, "
             "or use `muster plugin rollback`)",
             j->type, j->version, active->version);
    return -EPERM;
  }
  char mine[MU_PLUGIN_STATE_PATH_MAX];
  snprintf(mine, sizeof mine, "%s/plugins/%s/%s/", j->a->cfg.spool_dir, j->type, j->version);
  const char *active_path = mu_plugin_host_path(j->a->plugins, j->type);
  if (active != NULL && active->version != NULL && mu_bundle_version_cmp(j->version, active->version) == 0 &&
      active_path != NULL && strncmp(active_path, mine, strlen(mine)) == 0) { /* a repeated deploy */
    char msg[300];
    snprintf(msg, sizeof msg, "%s %s is already active", j->type, j->version);
    host->set_param(task, "plugin.version", j->version);
    finish(j, MUSTER_STATE_SUCCEEDED, msg);
    return 0;
  }
  if (strlen(ctx->task_dir) >= sizeof j->task_dir) return -ENAMETOOLONG;
  snprintf(j->task_dir, sizeof j->task_dir, "%s", ctx->task_dir);
  host->report_progress(task, 10, "checking the plugin bundle");
  j->work.data = j;
  j->working = 1;
  if (uv_queue_work(host->loop(task), &j->work, install_work, install_done) != 0) {
    j->working = 0;
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: cannot queue work", MU_PLUGIN_INSTALL_TYPE);
    return -EIO;
  }
  return 0;
}

static void install_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  install_job *j = host->user_data(task);
  if (j != NULL && j->working) uv_cancel((uv_req_t *)&j->work);
  muster_result r = {reason == MUSTER_CANCEL_TIMEOUT ? MUSTER_STATE_TIMED_OUT : MUSTER_STATE_CANCELLED, -1, 0,
                     "plugin deploy stopped"};
  host->finish(task, &r);
}

static void install_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  install_job *j = user_data;
  if (j == NULL) return;
  if (j->working) { /* install_done frees it */
    j->task = NULL;
    return;
  }
  mu_plugin_pkg_free(j->pkg);
  free(j);
}

static const muster_plugin install_plugin = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = MU_PLUGIN_INSTALL_TYPE,
    .version = MU_AGENT_VERSION,
    .description = "deploys and rolls back plugin versions on this agent (muster plugin deploy)",
    .validate = install_validate,
    .start = install_start,
    .cancel = install_cancel,
    .cleanup = install_cleanup,
};

static void restore(mu_agent_daemon *a) {
  mu_plugin_state *s = calloc(1, sizeof *s);
  if (s == NULL) return;
  char file[MU_CFG_PATH_MAX + 32];
  state_file(a, file, sizeof file);
  mu_err err = {0};
  if (mu_plugin_state_load(file, s, &err) != 0) mu_warn("plugins", "%s", err.msg);
  for (size_t i = 0; i < s->n; i++) {
    const mu_plugin_state_entry *e = &s->e[i];
    const char *cur = mu_plugin_host_path(a->plugins, e->type);
    if (cur != NULL && strcmp(cur, e->path) == 0) continue;
    if (mu_plugin_set_upgrade(a->plugin_set, e->path, e->type, &err) != 0)
      mu_warn("plugins", "deployed %s %s not loaded again: %s", e->type, e->version, err.msg);
    else mu_info("plugins", "deployed %s %s loaded again from %s", e->type, e->version, e->path);
  }
  free(s);
}

int mu_plugin_deploy_start(mu_agent_daemon *a, mu_err *err) {
  int rc = mu_plugin_host_register_internal(a->plugins, &install_plugin, err);
  if (rc != 0) return rc;
  restore(a);
  return 0;
}

void mu_plugin_deploy_announce(mu_agent_daemon *a) {
  if (a->conn.call == NULL || !a->conn.welcomed) return;
  size_t np = mu_plugin_host_count(a->plugins);
  Muster__V1__PluginInfo *infos = calloc(np + 1, sizeof *infos);
  Muster__V1__PluginInfo **ptrs = calloc(np + 1, sizeof *ptrs);
  if (infos == NULL || ptrs == NULL) goto out;
  for (size_t i = 0; i < np; i++) {
    const mu_plugin_info *pi = mu_plugin_host_info(a->plugins, i);
    muster__v1__plugin_info__init(&infos[i]);
    infos[i].type = (char *)pi->type;
    infos[i].version = (char *)pi->version;
    infos[i].abi_version = pi->abi_version;
    ptrs[i] = &infos[i];
  }
  Muster__V1__PluginsChanged pc = MUSTER__V1__PLUGINS_CHANGED__INIT;
  pc.plugins = ptrs;
  pc.n_plugins = np;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_PLUGINS_CHANGED;
  msg.plugins_changed = &pc;
  mu_err err = {0};
  if (mu_conn_send(&a->conn, &msg, &err) != 0) mu_debug("plugins", "PluginsChanged not sent: %s", err.msg);
out:
  free(infos);
  free(ptrs);
}
