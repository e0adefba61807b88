/* Test plugin: declares an ABI version the agent does not speak; the loader must refuse it. */
#include "muster_plugin.h"

static int start(muster_task *task, const muster_host_api *host, char *errbuf) {
  (void)task;
  (void)host;
  (void)errbuf;
  return 0;
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = 99,
    .type = "bad-abi",
    .version = "9.9.9",
    .start = start,
};
