/* Where each plugin's SDK v2 configuration comes from and when it is applied: the agent's YAML
 * (plugins: {TYPE: {config: ...}}) at start, replaced by the central per-type configuration
 * musterd pushes (`muster plugin config TYPE -t SELECTOR FILE`, ControlMessage.plugin_config)
 * whenever it arrives or changes; a central config removed falls back to the YAML one. Loop
 * thread only. */
#ifndef MU_AGENT_PLUGIN_CONFIG_H
#define MU_AGENT_PLUGIN_CONFIG_H

#include "lib/base/err.h"

struct mu_agent_daemon;
struct Muster__V1__Heartbeat;
typedef struct mu_agent_pconf mu_agent_pconf;

int mu_agent_pconf_new(mu_agent_pconf **ret, mu_err *err);
void mu_agent_pconf_free(mu_agent_pconf *p);

/* Configures every loaded plugin (after loading, before tasks): refusals are logged. */
void mu_agent_plugins_configure(struct mu_agent_daemon *a);

/* Configures the plugin now serving type (a version just deployed): the central config when
 * one was pushed, else the YAML's. MU_EINVAL with the plugin's reason when it refuses. */
int mu_agent_plugin_configure_type(struct mu_agent_daemon *a, const char *type, mu_err *err);

/* A central configuration for type arrived (config_json "" = removed): kept and applied now.
 * MU_EINVAL with the plugin's reason when it refuses (the previous one stays applied),
 * MU_ENOENT when no plugin serves type here. */
int mu_agent_plugin_config_push(struct mu_agent_daemon *a, const char *type, const char *config_json, mu_err *err);

/* The configuration type has applied now, "{}" when none (borrowed until the next change). */
const char *mu_agent_plugin_config_of(struct mu_agent_daemon *a, const char *type);

/* Fills hb->plugin_health with the plugins whose health() is not ok now (none listed: all ok).
 * *ret_block holds what hb points to: free() it after sending. MU_ENOMEM (hb untouched). */
int mu_agent_plugin_health_fill(struct mu_agent_daemon *a, struct Muster__V1__Heartbeat *hb, void **ret_block,
                                mu_err *err);

#endif
