/* Fuzzes the decoder of agent <-> muster-plugin-host messages (pmsg.h): frames from a
 * crashed or hostile plugin host must be refused with an error, never read out of bounds;
 * a decoded message re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/plugin/pmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const size_t max_body = 1 << 20;
  size_t flen = 0;
  mu_err err = {0};
  if (mu_pmsg_frame_len(data, size, max_body, &flen, &err) != 0 || flen == 0) return 0;
  mu_pmsg *m = NULL;
  if (mu_pmsg_decode(data, flen, max_body, &m, &err) != 0) return 0;
  uint8_t *again = NULL;
  size_t len = 0;
  if (mu_pmsg_encode(m->kind, m->task, m->ints, m->n_ints, m->strs, m->n_strs, max_body, &again, &len, &err) != 0)
    abort();
  if (len != flen || memcmp(again, data, len) != 0) abort();
  mu_pm_metric_def def;
  if (m->kind == MU_PM_METRIC_DEF && mu_pmsg_metric_def(m, &def, &err) == 0) { /* SDK v2 metrics */
    if (def.n_labels > 3 || def.n_buckets > 16 || def.labels[def.n_labels] != NULL) abort();
    for (size_t i = 1; i < def.n_buckets; i++)
      if (!(def.buckets[i] > def.buckets[i - 1])) abort();
  }
  free(again);
  free(m);
  return 0;
}
