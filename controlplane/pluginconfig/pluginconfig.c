/* Central plugin configuration (see pluginconfig.h): the records in memory, the admin calls,
 * and the pushes to agents. A set is checked (selector, JSON, the type's schema) before
 * anything is written, so a refused config leaves the stored one as it was. */
#include "controlplane/pluginconfig/pluginconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/records.h"
#include "controlplane/schedules/schedules_int.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/bundle/bundle.h"
#include "lib/pschema/pschema.h"
#include "lib/rpc/pb.h"
#include "lib/selector/selector.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/store.pb-c.h"

#define LOG "pluginconfig"
#define PREFIX "pluginconfig/"

typedef struct mu_cp_pluginconfig {
  Muster__V1__PluginConfigRecord *recs[MU_CP_PLUGINCONFIG_MAX_TYPES]; /* owned (unpacked) */
  size_t n;
} mu_cp_pluginconfig;

int mu_pluginconfig_init(mu_daemon *d, mu_err *err) {
  d->pluginconfig = calloc(1, sizeof *d->pluginconfig);
  if (d->pluginconfig == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return 0;
}

static void reset(mu_cp_pluginconfig *st) {
  for (size_t i = 0; i < st->n; i++) protobuf_c_message_free_unpacked(&st->recs[i]->base, NULL);
  st->n = 0;
}

void mu_pluginconfig_free(mu_daemon *d) {
  if (d->pluginconfig == NULL) return;
  reset(d->pluginconfig);
  free(d->pluginconfig);
  d->pluginconfig = NULL;
}

static int find(const mu_cp_pluginconfig *st, const char *type) {
  for (size_t i = 0; i < st->n; i++)
    if (strcmp(st->recs[i]->info->type, type) == 0) return (int)i;
  return -1;
}

/* The PluginInfo of type in a's last Hello, or NULL when a does not serve it. */
static const Muster__V1__PluginInfo *served(const mu_agent *a, const char *type) {
  const Muster__V1__Hello *h = a->hello_msg != NULL ? a->hello_msg->hello : NULL;
  for (size_t i = 0; h != NULL && i < h->n_plugins; i++)
    if (strcmp(h->plugins[i]->type, type) == 0) return h->plugins[i];
  return NULL;
}

static int matches(const Muster__V1__PluginConfigInfo *info, const mu_agent *a) {
  if (info->selector == NULL || info->selector[0] == '\0') return 1;
  mu_selector *sel = NULL;
  mu_err err = {0};
  if (mu_selector_parse(info->selector, &sel, &err) != 0) return 0;
  int m = mu_selector_matches(sel, mu_agent_label, a);
  mu_selector_free(sel);
  return m;
}

/* Sends a the config of type (or "" when none or not for it), if it serves type. */
static void push_type(mu_daemon *d, mu_agent *a, const char *type) {
  if (a->session == NULL || served(a, type) == NULL) return;
  int i = find(d->pluginconfig, type);
  const Muster__V1__PluginConfigInfo *info = i >= 0 ? d->pluginconfig->recs[i]->info : NULL;
  int mine = info != NULL && info->config_json[0] != '\0' && matches(info, a);
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__PluginConfigPush p = MUSTER__V1__PLUGIN_CONFIG_PUSH__INIT;
  p.type = (char *)type;
  p.config_json = mine ? info->config_json : "";
  p.sha256 = mine ? info->sha256 : "";
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_PLUGIN_CONFIG;
  msg.plugin_config = &p;
  mu_err err = {0};
  if (mu_gateway_send(a, &msg, &err) != 0) mu_warn(LOG, "plugin config %s to %s not sent: %s", type, a->id, err.msg);
}

static void push_type_all(mu_daemon *d, const char *type) {
  for (size_t i = 0; i < d->registry.n; i++) push_type(d, d->registry.agents[i], type);
}

/* Every type the agent serves that has a central config: an agent that reconnects after a
 * clear is sent nothing for that type, which is right: it restarted (and has none) or it
 * was connected and got the clear. */
void mu_pluginconfig_on_agent_up(mu_daemon *d, mu_agent *a) {
  if (!d->cluster->state_ready) return;
  for (size_t i = 0; i < d->pluginconfig->n; i++) push_type(d, a, d->pluginconfig->recs[i]->info->type);
}

void mu_pluginconfig_on_takeover(mu_daemon *d) {
  for (size_t i = 0; i < d->pluginconfig->n; i++) push_type_all(d, d->pluginconfig->recs[i]->info->type);
}

/* Takes a record into the state (replacing the type's), pushes when it changed. */
static int adopt(mu_daemon *d, const char *json, size_t len, mu_err *err) {
  ProtobufCMessage *m = NULL;
  int rc = mu_record_decode(&muster__v1__plugin_config_record__descriptor, json, len, &m, err);
  if (rc != 0) return rc;
  Muster__V1__PluginConfigRecord *rec = (Muster__V1__PluginConfigRecord *)m;
  if (rec->info == NULL || rec->info->type == NULL || rec->info->type[0] == '\0') {
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return mu_err_set(err, MU_EINVAL, "record without a type");
  }
  mu_cp_pluginconfig *st = d->pluginconfig;
  int i = find(st, rec->info->type);
  int changed = 1;
  if (i >= 0) {
    const Muster__V1__PluginConfigInfo *old = st->recs[i]->info;
    changed = strcmp(old->config_json, rec->info->config_json) != 0 || strcmp(old->selector, rec->info->selector) != 0;
    protobuf_c_message_free_unpacked(&st->recs[i]->base, NULL);
    st->recs[i] = rec;
  } else if (st->n >= MU_CP_PLUGINCONFIG_MAX_TYPES) {
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return mu_err_set(err, MU_ENOSPC, "more than %d plugin configs", MU_CP_PLUGINCONFIG_MAX_TYPES);
  } else {
    st->recs[st->n++] = rec;
  }
  if (changed) {
    mu_info(LOG, "plugin %s: central config %s (selector \"%s\")", rec->info->type,
            rec->info->config_json[0] ? rec->info->sha256 : "cleared", rec->info->selector);
    push_type_all(d, rec->info->type);
  }
  return 0;
}

void mu_pluginconfig_on_snapshot_begin(mu_daemon *d) { reset(d->pluginconfig); }

void mu_pluginconfig_on_record(mu_daemon *d, const char *rel, const char *value, size_t len) {
  if (strncmp(rel, PREFIX, strlen(PREFIX)) != 0) return;
  mu_err err = {0};
  if (value == NULL) {
    int i = find(d->pluginconfig, rel + strlen(PREFIX));
    if (i < 0) return;
    mu_cp_pluginconfig *st = d->pluginconfig;
    char type[80];
    snprintf(type, sizeof type, "%s", st->recs[i]->info->type);
    protobuf_c_message_free_unpacked(&st->recs[i]->base, NULL);
    st->recs[i] = st->recs[--st->n];
    push_type_all(d, type);
    return;
  }
  if (adopt(d, value, len, &err) != 0) mu_warn(LOG, "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
}

/* --- calls --- */

/* The type's schema as a connected agent serving it describes it; NULL when none serves it,
 * "" when they serve it without one (SDK v1 plugins). */
static const char *schema_of(mu_daemon *d, const char *type) {
  const char *found = NULL;
  for (size_t i = 0; i < d->registry.n; i++) {
    const mu_agent *a = d->registry.agents[i];
    const Muster__V1__PluginInfo *pi = a->session != NULL ? served(a, type) : NULL;
    if (pi == NULL) continue;
    if (pi->schema_json != NULL && pi->schema_json[0] != '\0') return pi->schema_json;
    found = "";
  }
  return found;
}

static int type_ok(const char *t) {
  if (t == NULL || t[0] == '\0' || strlen(t) > 64) return 0;
  for (; *t; t++)
    if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '-' || *t == '_')) return 0;
  return 1;
}

typedef struct set_op {
  mu_daemon *d;
  mu_rpc_call *call;
  char *json; /* the record */
  char type[72];
  char sha[MU_BUNDLE_DIGEST_SIZE];
  int clear;
} set_op;

static void reply_info(mu_daemon *d, mu_rpc_call *call, const char *type);

static void on_written(void *ud, const mu_err *err) {
  set_op *op = ud;
  mu_daemon *d = op->d;
  mu_err aerr = {0};
  const char *action = op->clear ? "pluginconfig.clear" : "pluginconfig.set";
  if (err != NULL) {
    mu_audit_record(d, op->call, action, op->type, MU_AUDIT_REFUSED, err->msg, NULL);
    if (!(err->code == MU_EPERM && mu_cluster_check_write(d, op->call) != 0))
      mu_pb_fail(op->call, MU_RPC_UNAVAILABLE, "plugin config not stored: %s", err->msg);
  } else if (adopt(d, op->json, strlen(op->json), &aerr) != 0) {
    mu_audit_record(d, op->call, action, op->type, MU_AUDIT_REFUSED, aerr.msg, NULL);
    mu_pb_fail(op->call, MU_RPC_INTERNAL, "%s", aerr.msg);
  } else {
    mu_audit_record(d, op->call, action, op->type, MU_AUDIT_OK, NULL, "config=%s", op->sha);
    reply_info(d, op->call, op->type);
  }
  free(op->json);
  free(op);
}

static void set_config(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__SetPluginConfigRequest *req = (const Muster__V1__SetPluginConfigRequest *)req_msg;
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  const char *action = req->clear ? "pluginconfig.clear" : "pluginconfig.set";
  mu_err err = {0};
  int rc = 0;
  char *json = NULL;
  set_op *op = NULL;
  if (!type_ok(req->type)) {
    rc = mu_err_set(&err, MU_EINVAL, "type \"%.64s\": want [a-z0-9_-]{1,64}", req->type);
    goto fail;
  }
  if (!req->clear) {
    mu_selector *sel = NULL;
    if (req->selector[0] != '\0' && mu_selector_parse(req->selector, &sel, &err) != 0) {
      rc = err.code;
      mu_err_prefix(&err, "selector");
      goto fail;
    }
    mu_selector_free(sel);
    if (strlen(req->config_json) > MU_CP_PLUGINCONFIG_MAX_BYTES) {
      rc = mu_err_set(&err, MU_EINVAL, "config: %zu bytes, at most %d", strlen(req->config_json),
                      MU_CP_PLUGINCONFIG_MAX_BYTES);
      goto fail;
    }
    const char *schema = schema_of(d, req->type);
    if (schema == NULL) {
      rc = mu_err_set(&err, MU_EINVAL,
                      "no connected agent serves type \"%s\": its schema is needed to check the config", req->type);
      goto fail;
    }
    char what[96];
    snprintf(what, sizeof what, "%s config", req->type);
    rc = mu_pschema_check(schema[0] ? schema : "{}", "config", req->config_json, what, &err);
    if (rc != 0) goto fail;
  }
  op = calloc(1, sizeof *op);
  if (op == NULL) {
    rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  char who[200] = "";
  const mu_caller *c = mu_authz_caller(call);
  if (c != NULL) mu_caller_describe(c, who, sizeof who);
  Muster__V1__PluginConfigInfo info = MUSTER__V1__PLUGIN_CONFIG_INFO__INIT;
  Muster__V1__PluginConfigRecord rec = MUSTER__V1__PLUGIN_CONFIG_RECORD__INIT;
  op->d = d;
  op->call = call;
  op->clear = req->clear;
  snprintf(op->type, sizeof op->type, "%s", req->type);
  if (!req->clear) mu_bundle_digest((const uint8_t *)req->config_json, strlen(req->config_json), op->sha);
  info.type = req->type;
  info.selector = req->clear ? "" : req->selector;
  info.config_json = req->clear ? "" : req->config_json;
  info.set_at_ms = mu_now_ms();
  info.set_by = who;
  info.sha256 = op->sha;
  rec.v = MU_RECORD_VERSION;
  rec.info = &info;
  rc = mu_record_encode(&rec.base, &json, &err);
  if (rc != 0) goto fail;
  op->json = json;
  char key[96];
  snprintf(key, sizeof key, PREFIX "%s", req->type);
  mu_schedules_write_put(d->schedules, key, json, on_written, op);
  return;
fail:
  free(json);
  free(op);
  mu_audit_record(d, call, action, req->type, MU_AUDIT_REFUSED, err.msg, NULL);
  mu_pb_fail(call, mu_rpc_code_from_err(rc), "%s", err.msg);
}

static void reply_info(mu_daemon *d, mu_rpc_call *call, const char *type) {
  int i = find(d->pluginconfig, type);
  Muster__V1__PluginConfigInfo out = MUSTER__V1__PLUGIN_CONFIG_INFO__INIT;
  if (i >= 0) out = *d->pluginconfig->recs[i]->info; /* shallow: borrowed strings */
  out.type = (char *)type;
  const char *schema = schema_of(d, type);
  out.schema_json = (char *)(schema != NULL ? schema : "");
  char **agents = calloc(d->registry.n + 1, sizeof *agents);
  out.n_agents = 0;
  for (size_t k = 0; agents != NULL && i >= 0 && out.config_json[0] != '\0' && k < d->registry.n; k++) {
    mu_agent *a = d->registry.agents[k];
    if (a->session != NULL && served(a, type) != NULL && matches(&out, a)) agents[out.n_agents++] = a->id;
  }
  out.agents = agents;
  mu_pb_reply(call, &out.base);
  free(agents);
}

static void get_config(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__GetPluginConfigRequest *req = (const Muster__V1__GetPluginConfigRequest *)req_msg;
  (void)md;
  if (!type_ok(req->type)) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "type \"%.64s\": want [a-z0-9_-]{1,64}", req->type);
    return;
  }
  reply_info(d, call, req->type);
}

int mu_pluginconfig_register(mu_daemon *d, mu_err *err) {
  static const struct {
    const char *path;
    const ProtobufCMessageDescriptor *desc;
    mu_pb_unary_fn fn;
  } methods[] = {
      {"/muster.v1.PluginConfigs/SetPluginConfig", &muster__v1__set_plugin_config_request__descriptor, set_config},
      {"/muster.v1.PluginConfigs/GetPluginConfig", &muster__v1__get_plugin_config_request__descriptor, get_config},
  };
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    int rc = mu_pb_add_unary(d->server, methods[i].path, methods[i].desc, methods[i].fn, d, err);
    if (rc != 0) return rc;
  }
  return 0;
}
