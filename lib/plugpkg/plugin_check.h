/* Whether a plugin bundle fits this host: ABI version, OS and architecture, the binaries and
 * interpreters it requires (found in a PATH), and a version range a task may pin
 * (`plugin_version: ">=1.2 <2"`). One message per refusal, naming the plugin and the rule. */
#ifndef MU_PLUGPKG_PLUGIN_CHECK_H
#define MU_PLUGPKG_PLUGIN_CHECK_H

#include <stdint.h>

#include "lib/base/err.h"
#include "lib/plugpkg/plugin_yaml.h"

typedef struct mu_plugin_host_facts {
  uint32_t abi_version; /* the agent's MUSTER_PLUGIN_ABI_VERSION */
  const char *os;       /* "linux" */
  const char *arch;     /* uname -m */
  const char *path_env; /* a PATH to look requirements up in; NULL = getenv("PATH") */
} mu_plugin_host_facts;

/* 0 when p may load here; MU_EINVAL otherwise: "plugin sleep-echo 2.0.0: built for ABI
 * version 3, this agent speaks 1", "... is for arch aarch64, this host is x86_64", "...
 * requires binary 'jq', not found in PATH (/usr/bin:/bin)". */
int mu_plugin_pkg_check_host(const mu_plugin_pkg *p, const mu_plugin_host_facts *host, mu_err *err);

/* 1 when name is found as an executable file in path (':'-separated), else 0. */
int mu_plugin_which(const char *name, const char *path);

/* A version range: space-separated comparisons, all of which must hold, e.g. ">=1.2 <2",
 * "=1.4.0", "1.4.0" (same as =), "!=1.3". Operators: = == != < <= > >=. MU_EINVAL names the
 * bad part ("plugin_version: bad comparison '>>1'"). */
int mu_version_range_check(const char *range, mu_err *err);
/* 1 when version satisfies range (an invalid range or version never does). */
int mu_version_range_match(const char *range, const char *version);

#endif
