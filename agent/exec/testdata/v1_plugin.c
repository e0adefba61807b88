/* A plugin built against the frozen SDK v1 header (testdata/v1/muster_plugin.h): its descriptor
 * is the ABI 1 size, so an agent that read an SDK v2 member of it would read past the end of
 * the object (ASan: global-buffer-overflow). Runs one task: prints "v1 ok" and succeeds. */
#include "muster_plugin.h"

static int v1_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  (void)errbuf;
  host->emit_output(task, MUSTER_STDOUT, "v1 ok\n", 6);
  muster_result r = {MUSTER_STATE_SUCCEEDED, 0, 0, NULL};
  host->finish(task, &r);
  return 0;
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION, /* 1 in the frozen header */
    .type = "v1-old",
    .version = "1.0.0",
    .description = "built against the SDK v1 header",
    .start = v1_start,
};
