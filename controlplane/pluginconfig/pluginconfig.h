/* Central per-type plugin configuration on every member (SDK v2, docs/plugins.md
 * "Configuration"): one record per type, pluginconfig/<type> (store.proto PluginConfigRecord),
 * written by SetPluginConfig through the fenced store the schedules use and read back by
 * every member from the cluster's record events, so it survives a restart and a failover.
 * A set is checked first: the selector parses, the value is a JSON object within bounds, and
 * it passes the type's "config" schema as a connected agent serving the type describes it (no
 * such agent: refused, the schema is needed). Pushes (ControlMessage.plugin_config): to each
 * connected agent serving the type when the record changes (the config to those the selector
 * matches, "" to the others), and to an agent when its stream comes up. Loop thread only. */
#ifndef MU_CP_PLUGINCONFIG_H
#define MU_CP_PLUGINCONFIG_H

#include "controlplane/registry.h"
#include "lib/base/err.h"

#define MU_CP_PLUGINCONFIG_MAX_TYPES 64
#define MU_CP_PLUGINCONFIG_MAX_BYTES (256 * 1024)

struct mu_daemon;

int mu_pluginconfig_init(struct mu_daemon *d, mu_err *err);
void mu_pluginconfig_free(struct mu_daemon *d);

/* Cluster events (events.h): a fresh snapshot follows; one record (value NULL: deleted). */
void mu_pluginconfig_on_snapshot_begin(struct mu_daemon *d);
void mu_pluginconfig_on_record(struct mu_daemon *d, const char *rel_key, const char *value, size_t len);
/* Agent event: its stream is up: it is sent the config of each type it serves. */
void mu_pluginconfig_on_agent_up(struct mu_daemon *d, mu_agent *a);
/* Cluster event: this member leads with its state loaded: every connected agent is sent them. */
void mu_pluginconfig_on_takeover(struct mu_daemon *d);

/* muster.v1.PluginConfigs. */
int mu_pluginconfig_register(struct mu_daemon *d, mu_err *err);

#endif
