/* stats.c - percentiles of one run's samples and min / median / max over
 * repetitions.  Percentiles are nearest-rank on the sorted samples. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>

double lb_nan(void) { return NAN; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted v[0..n), nearest rank. */
static double quantile(const double *v, size_t n, double q) {
  size_t i;
  if (n == 0)
    return NAN;
  i = (size_t)ceil(q * (double)n);
  if (i > 0)
    i--;
  if (i >= n)
    i = n - 1;
  return v[i];
}

void lb_dist_of(double *v, size_t n, struct lb_dist *d, double *cdf) {
  size_t i;

  qsort(v, n, sizeof *v, cmp_double);
  d->p50 = quantile(v, n, 0.50);
  d->p90 = quantile(v, n, 0.90);
  d->p99 = quantile(v, n, 0.99);
  d->max = n ? v[n - 1] : NAN;
  if (cdf != NULL)
    for (i = 0; i < LB_CDF_POINTS; i++)
      cdf[i] = quantile(v, n, (double)i / (LB_CDF_POINTS - 1));
}

void lb_mmm_of(const double *v, int n, struct lb_mmm *m) {
  double tmp[64];
  int i, k = 0;

  for (i = 0; i < n && k < 64; i++)
    if (!isnan(v[i]))
      tmp[k++] = v[i];
  m->n = k;
  if (k == 0) {
    m->min = m->median = m->max = NAN;
    return;
  }
  qsort(tmp, (size_t)k, sizeof *tmp, cmp_double);
  m->min = tmp[0];
  m->max = tmp[k - 1];
  m->median = k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}
