/* figures.c - one figure of a configuration over its repetitions: the
 * values, or each repetition paired with the same repetition of another
 * configuration (a ratio to the limit measured right before, to the same
 * watcher at M = 0, a difference to the latency floor), as min / median /
 * max.  Failed repetitions are left out. */
#include "bench.h"

#include <math.h>
#include <string.h>

static double field(const struct lb_result *r, size_t off) {
  double v;
  memcpy(&v, (const char *)r + off, sizeof v);
  return v;
}

int lb_row_ok(const struct lb_row *row) {
  int i, ok = 0;
  for (i = 0; i < row->nres; i++)
    ok += row->res[i].status == LB_OK;
  return ok;
}

void lb_row_stat(const struct lb_row *row, const struct lb_row *base,
                 size_t off, size_t base_off, int op, struct lb_mmm *m) {
  double v[64], a, b;
  int i, n = 0;

  for (i = 0; i < row->nres && n < 64; i++) {
    const struct lb_result *r = &row->res[i], *q;
    if (r->status != LB_OK)
      continue;
    a = field(r, off);
    if (op != LB_VALUE) {
      q = base != NULL ? (i < base->nres ? &base->res[i] : NULL) : r;
      if (q == NULL || q->status != LB_OK)
        continue;
      b = field(q, base_off);
      a = op == LB_RATIO ? a / b : a - b;
    }
    if (!isnan(a) && !isinf(a))
      v[n++] = a;
  }
  lb_mmm_of(v, n, m);
}

const struct lb_row *lb_find_row(const struct lb_run *run,
                                 const struct lb_config *like) {
  int i;
  for (i = 0; i < run->nrows; i++)
    if (memcmp(&run->rows[i].cfg, like, sizeof *like) == 0)
      return &run->rows[i];
  return NULL;
}
