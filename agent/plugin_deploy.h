/* Plugin deploys on the agent (docs/plugins.md, "Deploying"): the internal task type
 * `muster-plugin-install`, which `muster plugin deploy` and `muster plugin rollback` run as an
 * ordinary job (so the job rollout controls apply). Its task dir holds the verified, unpacked
 * plugin bundle; the task checks plugin.yaml against this host (ABI, os/arch, requirements),
 * copies the .so into <spool>/plugins/TYPE/VERSION/, self-checks it (its descriptor's type and
 * version are plugin.yaml's) and makes it the type's active version without a restart
 * (tasks running on the old version finish on it; it is unloaded after the last). It then
 * records the version in <spool>/plugins/state.json, reports PluginsChanged, and succeeds; any
 * refusal fails the task and leaves the old version active. A rollback (config
 * {"rollback": true}, no bundle) goes back to the version recorded before the active one.
 * At start the agent loads what state.json records again. */
#ifndef MU_AGENT_PLUGIN_DEPLOY_H
#define MU_AGENT_PLUGIN_DEPLOY_H

#include "lib/base/err.h"
#include "lib/plugpkg/plugin_yaml.h" /* MU_PLUGIN_INSTALL_TYPE */

typedef struct mu_agent_daemon mu_agent_daemon;

/* Registers the install type with a->plugins (a->loop->data must be a) and loads the versions
 * state.json records (failures are logged; the plugin dir's version stays). After the plugin
 * dir was loaded. */
int mu_plugin_deploy_start(mu_agent_daemon *a, mu_err *err);

/* Sends the agent's plugin list as a PluginsChanged (when connected; the next Hello carries it
 * otherwise). */
void mu_plugin_deploy_announce(mu_agent_daemon *a);

#endif
