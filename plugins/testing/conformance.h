/* The conformance suite every task-type plugin must pass (docs/plugins.md, Testing plugins),
 * run by `muster-plugin-test --conformance` and by each plugin's Bazel test:
 *   run       the spec reaches a final state through STARTING, RUNNING; the test file's
 *             expectations hold; nothing is reported after the final state
 *   cancel    a cancel mid-run ends the task CANCELLED within the grace period, and no
 *             process it started is left (in its process group, cgroup, or anywhere else:
 *             nothing still carries its MUSTER_TASK_ID)
 *   timeout   the same for the spec's timeout: TIMED_OUT, nothing left
 *   cleanup   after each task, LeakSanitizer finds nothing start() allocated and cleanup()
 *             did not free (needs an ASan build: --config=asan; otherwise skipped, saying so)
 *   stall     no loop iteration of the task was busy longer than max_stall_ms (default 10;
 *             time in host->spawn, the agent's own, is left out); a stall must show in each
 *             of three runs to fail, so a busy machine does not fail a good plugin
 *   bounded   messages stay in bounds: progress messages <= 4096 bytes, <= 256 params with
 *             values <= 4096 bytes, output within the task's output limit
 *   isolation the same spec run out of process (muster-plugin-host) ends in the same state
 *             (skipped when no host binary is given)
 * A check that cannot run here (not exercised) is a skip with its reason, never a pass. */
#ifndef MU_PLUGIN_CONFORMANCE_H
#define MU_PLUGIN_CONFORMANCE_H

#include <stdint.h>
#include <stdio.h>

#include "plugins/testing/plugin_test.h"

typedef struct muster_pt_conformance_opts {
  const char *plugin_so;
  muster_pt_opts world;      /* host_path here enables the isolation check */
  const char *spec_json;     /* a task that runs to completion */
  const char *const *expect; /* assertions for it (muster_pt_expect), NULL-terminated; may be NULL */
  const mu_kv *params;
  size_t n_params;
  const char *cancel_spec_json; /* a task that runs well past cancel_after_ms; NULL = spec_json */
  int64_t cancel_after_ms;      /* 0 = 300 */
  int64_t max_stall_ms;         /* 0 = 10 */
  const char *skip_cancel;      /* non-NULL: skip cancel and timeout, with this reason */
} muster_pt_conformance_opts;

/* Runs every check, one line each on out ("ok|FAIL|skip CHECK: detail"). Returns the number
 * of failed checks (0: conformant), or a negative MU_E* code when the suite could not run
 * (err says why). */
int muster_pt_conformance(const muster_pt_conformance_opts *o, FILE *out, mu_err *err);

#endif
