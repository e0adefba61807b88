/* The one definition of a task run's anomaly flags, used by musterd when a run ends
 * (controlplane/run_history.c) and by `muster stats` (cli/stats.c):
 *   SLOW       duration > median + 4·MAD of at least MU_ANOMALY_MIN_HISTORY earlier runs of
 *              the same task name
 *   MEM_HIGH   peak memory over the same threshold of the earlier peaks
 *   NEAR_OOM   peak memory within 10 % of the memory limit
 *   TRUNCATED  output past the output limit was dropped
 *   SLOW_HOST  the median duration of this host's runs of the task name (this one and at
 *              least MU_ANOMALY_MIN_HOST_RUNS - 1 earlier) is over the fleet's threshold
 * MAD is floored at 5 % of the median and at 10 ms (duration) / 1 MiB (memory), so identical
 * runs do not flag noise. Pure functions, no allocation. */
#ifndef MU_ANOMALY_ANOMALY_H
#define MU_ANOMALY_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#define MU_ANOMALY_MIN_HISTORY 10
#define MU_ANOMALY_MIN_HOST_RUNS 3
#define MU_ANOMALY_N_FLAGS 5

enum {
  MU_ANOMALY_SLOW = 1,
  MU_ANOMALY_MEM_HIGH = 2,
  MU_ANOMALY_NEAR_OOM = 4,
  MU_ANOMALY_TRUNCATED = 8,
  MU_ANOMALY_SLOW_HOST = 16,
};

/* The run being judged. Unknown figures are -1 (peak) or 0 (limit, dropped). */
typedef struct mu_anomaly_run {
  int64_t duration_ms;
  int64_t peak_bytes;
  uint64_t memory_limit;
  int64_t dropped_bytes;
} mu_anomaly_run;

/* What the run is judged against: the earlier runs of its task name. The arrays are the
 * caller's and are reordered (sorted) by the call. host_dur: the durations of the earlier
 * runs of the same task name on the same host (a subset of dur). */
typedef struct mu_anomaly_history {
  double *dur;
  size_t n_dur;
  double *mem; /* peaks (> 0 only) */
  size_t n_mem;
  double *host_dur;
  size_t n_host_dur;
} mu_anomaly_history;

/* The MU_ANOMALY_* flags of r against h. scratch: at least max(n_dur, n_mem, n_host_dur + 1)
 * doubles. */
unsigned mu_anomaly_flags(const mu_anomaly_run *r, mu_anomaly_history *h, double *scratch);

/* median + 4·MAD of v[0..n) (sorted in place; scratch n doubles), MAD floored at 5 % of the
 * median and at floor. NAN for n == 0. */
double mu_anomaly_threshold(double *v, size_t n, double *scratch, double floor);
/* The median of v[0..n) (sorted in place); NAN for n == 0. */
double mu_anomaly_median(double *v, size_t n);

/* The flag's name ("SLOW", ...) for one bit i (0..MU_ANOMALY_N_FLAGS-1); its metric label
 * form is the lower case ("slow"). */
const char *mu_anomaly_flag_name(int i);
/* "SLOW,NEAR_OOM" (or "-" for none) into buf. */
void mu_anomaly_flag_names(unsigned flags, char *buf, size_t size);
/* The flag of a name ("SLOW", case-sensitive), 0 when none. */
unsigned mu_anomaly_flag_of(const char *name);

#endif
