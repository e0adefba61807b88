/* Anomaly flags of a task run against its task name's history (anomaly.h): robust thresholds
 * (median and MAD) and the flag names. */
#include "lib/anomaly/anomaly.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const flag_names[MU_ANOMALY_N_FLAGS] = {"SLOW", "MEM_HIGH", "NEAR_OOM", "TRUNCATED", "SLOW_HOST"};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double mu_anomaly_median(double *v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double mu_anomaly_threshold(double *v, size_t n, double *scratch, double floor) {
  if (n == 0) return NAN;
  double med = mu_anomaly_median(v, n);
  for (size_t i = 0; i < n; i++) scratch[i] = fabs(v[i] - med);
  double mad = mu_anomaly_median(scratch, n);
  if (mad < 0.05 * med) mad = 0.05 * med;
  if (mad < floor) mad = floor;
  return med + 4 * mad;
}

unsigned mu_anomaly_flags(const mu_anomaly_run *r, mu_anomaly_history *h, double *scratch) {
  unsigned flags = 0;
  if (r->dropped_bytes > 0) flags |= MU_ANOMALY_TRUNCATED;
  if (r->memory_limit > 0 && r->peak_bytes > 0 && (uint64_t)r->peak_bytes * 10 >= r->memory_limit * 9)
    flags |= MU_ANOMALY_NEAR_OOM;
  if (h == NULL || scratch == NULL) return flags;
  if (h->n_mem >= MU_ANOMALY_MIN_HISTORY && r->peak_bytes > 0 &&
      (double)r->peak_bytes > mu_anomaly_threshold(h->mem, h->n_mem, scratch, 1048576.0))
    flags |= MU_ANOMALY_MEM_HIGH;
  if (h->n_dur < MU_ANOMALY_MIN_HISTORY || r->duration_ms < 0) return flags;
  double limit = mu_anomaly_threshold(h->dur, h->n_dur, scratch, 10.0);
  if ((double)r->duration_ms > limit) flags |= MU_ANOMALY_SLOW;
  if (h->host_dur != NULL && h->n_host_dur + 1 >= MU_ANOMALY_MIN_HOST_RUNS) {
    /* this host's typical run, this one included, against the fleet's threshold */
    for (size_t i = 0; i < h->n_host_dur; i++) scratch[i] = h->host_dur[i];
    scratch[h->n_host_dur] = (double)r->duration_ms;
    if (mu_anomaly_median(scratch, h->n_host_dur + 1) > limit) flags |= MU_ANOMALY_SLOW_HOST;
  }
  return flags;
}

const char *mu_anomaly_flag_name(int i) { return i >= 0 && i < MU_ANOMALY_N_FLAGS ? flag_names[i] : "?"; }

void mu_anomaly_flag_names(unsigned flags, char *buf, size_t size) {
  size_t o = 0;
  if (size == 0) return;
  buf[0] = '\0';
  for (int i = 0; i < MU_ANOMALY_N_FLAGS; i++)
    if (flags & (1u << i)) o += (size_t)snprintf(buf + o, o < size ? size - o : 0, "%s%s", o ? "," : "", flag_names[i]);
  if (o == 0) snprintf(buf, size, "-");
}

unsigned mu_anomaly_flag_of(const char *name) {
  for (int i = 0; name != NULL && i < MU_ANOMALY_N_FLAGS; i++)
    if (strcmp(name, flag_names[i]) == 0) return 1u << i;
  return 0;
}
