/* plugin.yaml: what a plugin bundle says about the .so inside it (docs/plugins.md,
 * "Packaging"). Parsed once, by `muster plugin pack` (which refuses a bad one before packing)
 * and by the agent before it loads anything from a bundle; checked against a host by
 * plugin_check.h. Example:
 *
 *   type: sleep-echo            # [a-z0-9_-]{1,64}, must equal the .so's descriptor type
 *   version: 2.0.0              # a bundle version (lib/bundle/version.h)
 *   abi_version: 1              # MUSTER_PLUGIN_ABI_VERSION it was built for
 *   os: linux                   # or "any"
 *   arch: x86_64                # uname -m (amd64 = x86_64, arm64 = aarch64), or "any"
 *   library: libsleep_echo.so   # the .so in the bundle (a plain file name)
 *   description: echoes         # optional, <= 256 bytes
 *   requires: {binaries: [sh], interpreters: [python3]}   # looked up in the agent's PATH
 *   config_schema: {type: object, properties: {...}}     # default config schema, kept as JSON */
#ifndef MU_PLUGPKG_PLUGIN_YAML_H
#define MU_PLUGPKG_PLUGIN_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

/* The agent-internal task type that deploys a plugin bundle (agent/plugin_deploy.h). */
#define MU_PLUGIN_INSTALL_TYPE "muster-plugin-install"

#define MU_PLUGIN_YAML_MAX_BYTES (64 * 1024)
#define MU_PLUGIN_YAML_MAX_REQUIRES 32
#define MU_PLUGIN_YAML_NAME_MAX 128

typedef struct mu_plugin_pkg {
  char type[65];
  char version[65];
  uint32_t abi_version;
  char os[32];
  char arch[32];
  char library[MU_PLUGIN_YAML_NAME_MAX + 1];
  char description[257];
  char *binaries[MU_PLUGIN_YAML_MAX_REQUIRES];
  size_t n_binaries;
  char *interpreters[MU_PLUGIN_YAML_MAX_REQUIRES];
  size_t n_interpreters;
  char *config_schema_json; /* compact JSON object text, or NULL when none is given */
} mu_plugin_pkg;

/* Parses text (len bytes, at most MU_PLUGIN_YAML_MAX_BYTES); name labels messages
 * ("plugin.yaml:3: field 'version': ..."). Every field but description, requires and
 * config_schema is required; unknown fields are refused. On success *ret is the caller's
 * (mu_plugin_pkg_free). MU_EINVAL names the field; MU_ENOSPC: too big; MU_ENOMEM. */
int mu_plugin_pkg_parse(const char *name, const char *text, size_t len, mu_plugin_pkg **ret, mu_err *err);
/* The same from a file. MU_ENOENT when it does not exist. */
int mu_plugin_pkg_load(const char *path, mu_plugin_pkg **ret, mu_err *err);
void mu_plugin_pkg_free(mu_plugin_pkg *p);

/* The bundle name a plugin type is stored under: "plugin-TYPE". */
void mu_plugin_pkg_bundle_name(const char *type, char *buf, size_t size);

#endif
