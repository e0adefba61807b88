/* `muster policy test REF --feed DIR`: the scan facts of REF, made by the same code path as
 * `muster image scan` (the muster-scan helper, run as a child with -o json; its finding
 * lines summarised by lib/imagescan/summary.h), so the dry run sees what an agent's
 * max_severity check would. */
#ifndef MU_CLI_POLICY_SCAN_H
#define MU_CLI_POLICY_SCAN_H

#include <stddef.h>

#include "lib/base/err.h"
#include "lib/imagepolicy/imagepolicy.h"

typedef struct mu_policy_scan_opts {
  const char *ref, *feed; /* the image and the feed directory */
  const char *ca, *platform;
  int insecure;
  size_t max_output; /* bytes of the helper's output read; 0 = 256 MiB */
} mu_policy_scan_opts;

/* Scans o->ref into *ret; *ret_findings counts every finding (fixed or not). MU_EINVAL when
 * the helper refused the input (its message in err), MU_EIO when it failed or printed what
 * is not its JSON lines, MU_ENOSPC past max_output. */
int mu_policy_scan(const mu_policy_scan_opts *o, mu_imgscan_summary *ret, size_t *ret_findings, mu_err *err);

#endif
