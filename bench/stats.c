/* Percentiles for the bench programs (see stats.h). */
#include "bench/stats.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double mu_bench_percentile(double *v, size_t n, double p) {
  if (n == 0) return -1;
  qsort(v, n, sizeof *v, cmp_double);
  if (p == 50 && n % 2 == 0) return (v[n / 2 - 1] + v[n / 2]) / 2;
  size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  return v[rank > n ? n - 1 : rank - 1];
}
