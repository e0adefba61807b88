/* Percentiles of timing samples, one definition for every bench program. */
#ifndef MU_BENCH_STATS_H
#define MU_BENCH_STATS_H

#include <stddef.h>

/* The p-th percentile (0..100) of v[0..n), which is sorted in place: the median (p = 50) of
 * an even count is the mean of the middle two; any other p is the nearest rank (p = 0 is the
 * minimum, p = 99 with 10 samples is the largest). -1 when n is 0. */
double mu_bench_percentile(double *v, size_t n, double p);

#endif
