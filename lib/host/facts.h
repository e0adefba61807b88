/* Built-in host facts as selector terms see them (`-t "os=linux,cpus>=8"`): fixed names, text
 * values, derived from mu_host_facts and /etc/os-release. The agent sends them in Hello; the
 * control plane looks a selector key up in the agent's labels first, then in its facts. */
#ifndef MU_HOST_FACTS_H
#define MU_HOST_FACTS_H

#include <stddef.h>

#include "lib/host/hostinfo.h"

/* os, kernel, arch, hostname, cpus, mem_gib, distro, distro_version */
#define MU_HOST_FACT_PAIRS 8

typedef struct mu_host_fact {
  const char *name; /* static */
  char value[128];
} mu_host_fact;

/* Reads ID= and VERSION_ID= from os-release text (quotes removed, lower-case ID); either is
 * "" when absent. Never fails: a bad line is skipped. */
void mu_host_os_release_parse(const char *text, size_t len, char *id, size_t id_size, char *version,
                              size_t version_size);

/* Fills out with the facts of f ("os" = lower-case kernel name, "kernel" = its release,
 * "mem_gib" = total memory in GiB with one decimal, "distro"/"distro_version" from
 * os_release_path, default /etc/os-release then /usr/lib/os-release, skipped when unreadable).
 * Returns how many were filled (at most MU_HOST_FACT_PAIRS). */
size_t mu_host_fact_list(const mu_host_facts *f, const char *os_release_path, mu_host_fact out[MU_HOST_FACT_PAIRS]);

#endif
