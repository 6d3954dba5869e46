/* report_text.c - the text report: the machine and the load, the
 * parameters, then one table per scenario.  Main figures are min / median
 * / max over the repetitions; ratios are paired per repetition (the limit
 * measured right before in the same worker; the same watcher at M = 0 in
 * the same repetition); secondary figures are medians.  Failed
 * repetitions are listed at the end with their reason. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "min / med / max" with `dec` decimals, or "n/a". */
static const char *mmm(char *buf, size_t len, const struct lb_mmm *m,
                       int dec) {
  if (m->n == 0)
    snprintf(buf, len, "n/a");
  else
    snprintf(buf, len, "%.*f / %.*f / %.*f", dec, m->min, dec, m->median,
             dec, m->max);
  return buf;
}

/* The median alone. */
static const char *med(char *buf, size_t len, const struct lb_mmm *m,
                       int dec) {
  if (m->n == 0)
    snprintf(buf, len, "n/a");
  else
    snprintf(buf, len, "%.*f", dec, m->median);
  return buf;
}

static void stat(const struct lb_row *row, size_t off, struct lb_mmm *m) {
  lb_row_stat(row, NULL, off, 0, LB_VALUE, m);
}

static const char *impl_label(const struct lb_run *run, const struct lb_row *r) {
  return run->o->impls[r->cfg.impl].label;
}

static void header(FILE *f, const struct lb_run *run) {
  const struct lb_options *o = run->o;
  int i, j;

  fprintf(f, "loopspec-bench, started %s, %.0f s\n", run->started,
          run->wall_seconds);
  lb_machine_text(f);
  fprintf(f, "load (1/5/15 min): %.2f %.2f %.2f at start, %.2f %.2f %.2f at "
             "end",
          run->load_start[0], run->load_start[1], run->load_start[2],
          run->load_end[0], run->load_end[1], run->load_end[2]);
  if (run->orphans)
    fprintf(f, "; %d orphaned children reaped by the orchestrator",
            run->orphans);
  fprintf(f, "\nparameters: N=%d (latency %d, idle %d), R=%d, idle K=%d, "
             "memory M=%d, child %s\n",
          o->n, o->latency_n, o->idle_n, o->reps, o->idle_k, o->memory_m,
          o->child);
  for (i = 0; i < o->nimpls; i++) {
    const struct lb_impl *im = &o->impls[i];
    fprintf(f, "implementation %s: %s %s (%s)", im->label,
            im->probe.ok ? im->probe.name : "-",
            im->probe.ok ? im->probe.version : im->probe.why,
            im->path[0] ? im->path : "linked in");
    for (j = 0; j < im->nenv; j++)
      fprintf(f, " %s", im->env[j]);
    fputc('\n', f);
  }
}

static int any(const struct lb_run *run, int scenario) {
  int i;
  for (i = 0; i < run->nrows; i++)
    if (run->rows[i].cfg.scenario == scenario)
      return 1;
  return 0;
}

static void limits(FILE *f, const struct lb_run *run) {
  char a[64], b[64], c[64], d[64];
  struct lb_mmm m, r, p90, p99;
  int i;

  fprintf(f, "\n== limits: spawn + reap, no event loop; ratio to a posix_spawn "
             "run right before it (same K, same worker)\n");
  fprintf(f, "%-12s %4s  %-26s %-20s %s\n", "limit", "K", "children/s",
          "ratio (paired)", "runs ok");
  for (i = 0; i < run->nrows; i++) {
    const struct lb_row *row = &run->rows[i];
    if (row->cfg.scenario != LB_LIMITS)
      continue;
    stat(row, LB_OFF(rate), &m);
    lb_row_stat(row, NULL, LB_OFF(rate), LB_OFF(limit_rate), LB_RATIO, &r);
    fprintf(f, "%-12s %4d  %-26s %-20s %d/%d\n", lb_limit_name(row->cfg.limit),
            row->cfg.k, mmm(a, sizeof a, &m, 0), mmm(b, sizeof b, &r, 2),
            lb_row_ok(row), row->nres);
    if (row->cfg.limit == LB_LIM_FLOOR) {
      stat(row, LB_OFF(lat.p50), &m);
      stat(row, LB_OFF(lat.p90), &p90);
      stat(row, LB_OFF(lat.p99), &p99);
      stat(row, LB_OFF(lat.max), &r);
      fprintf(f, "  latency floor (exit stamp -> blocking waitpid returns), "
                 "us: p50 %s, p90 %s, p99 %s, max %s\n",
              mmm(a, sizeof a, &m, 1), mmm(b, sizeof b, &p90, 1),
              mmm(c, sizeof c, &p99, 1), mmm(d, sizeof d, &r, 0));
    }
  }
}

static void churn(FILE *f, const struct lb_run *run) {
  char a[64], b[64], c[32], d[32], e[32], g[32];
  struct lb_mmm m, r, pw, lc, sc, cc;
  int i;

  fprintf(f, "\n== churn: N children, K in flight; ratio to posix_spawn + "
             "waitpid (same K, N, child) run right before in the same "
             "worker\n");
  fprintf(f, "%-10s %-9s %-5s %4s  %-24s %-20s %8s %12s %12s %10s %s\n",
          "impl", "kind", "mode", "K", "children/s", "ratio to limit",
          "per-wake", "loop us/wake", "spawn us/ch", "cpu us/ch", "runs ok");
  for (i = 0; i < run->nrows; i++) {
    const struct lb_row *row = &run->rows[i];
    if (row->cfg.scenario != LB_CHURN)
      continue;
    stat(row, LB_OFF(rate), &m);
    lb_row_stat(row, NULL, LB_OFF(rate), LB_OFF(limit_rate), LB_RATIO, &r);
    stat(row, LB_OFF(per_wakeup), &pw);
    stat(row, LB_OFF(loop_cpu_us), &lc);
    stat(row, LB_OFF(spawn_cpu_us), &sc);
    stat(row, LB_OFF(cpu_us_per_child), &cc);
    fprintf(f, "%-10s %-9s %-5s %4d  %-24s %-20s %8s %12s %12s %10s %d/%d\n",
            impl_label(run, row), lb_kind_name(row->cfg.kind),
            lb_mode_name(row->cfg.mode), row->cfg.k, mmm(a, sizeof a, &m, 0),
            mmm(b, sizeof b, &r, 2), med(c, sizeof c, &pw, 1),
            med(d, sizeof d, &lc, 1), med(e, sizeof e, &sc, 1),
            med(g, sizeof g, &cc, 1), lb_row_ok(row), row->nres);
  }
}

static void latency(FILE *f, const struct lb_run *run) {
  char a[64], b[32], c[32], d[32], e[32], g[64];
  struct lb_mmm p50, p90, p99, np, fl, diff;
  int i;

  fprintf(f, "\n== latency, K=1: child's exit stamp -> callback, us; floor = "
             "blocking waitpid measured right before in the same worker\n");
  fprintf(f, "%-10s %-9s %-5s  %-22s %8s %8s %9s %9s  %-20s %s\n", "impl",
          "kind", "mode", "p50", "p90", "p99", "notif p50", "floor p50",
          "p50 - floor (paired)", "runs ok");
  for (i = 0; i < run->nrows; i++) {
    const struct lb_row *row = &run->rows[i];
    if (row->cfg.scenario != LB_LATENCY)
      continue;
    stat(row, LB_OFF(lat.p50), &p50);
    stat(row, LB_OFF(lat.p90), &p90);
    stat(row, LB_OFF(lat.p99), &p99);
    stat(row, LB_OFF(notif.p50), &np);
    stat(row, LB_OFF(floor.p50), &fl);
    lb_row_stat(row, NULL, LB_OFF(lat.p50), LB_OFF(floor.p50), LB_DIFF, &diff);
    fprintf(f, "%-10s %-9s %-5s  %-22s %8s %8s %9s %9s  %-20s %d/%d\n",
            impl_label(run, row), lb_kind_name(row->cfg.kind),
            lb_mode_name(row->cfg.mode), mmm(a, sizeof a, &p50, 1),
            med(b, sizeof b, &p90, 1), med(c, sizeof c, &p99, 1),
            med(d, sizeof d, &np, 1), med(e, sizeof e, &fl, 1),
            mmm(g, sizeof g, &diff, 1), lb_row_ok(row), row->nres);
  }
}

static void idle(FILE *f, const struct lb_run *run) {
  char a[64], b[64], c[32], d[64], e[32], g[32], h[32];
  struct lb_mmm m, v0, r, lc, lp, np, su;
  struct lb_config like;
  const struct lb_row *base;
  int i;

  fprintf(f, "\n== idle: M idle registered children while others churn (K "
             "in flight); 'vs M=0' pairs each repetition with the same "
             "watcher at M=0\n");
  fprintf(f, "%-10s %-9s %-5s %3s %5s  %-22s %-18s %8s  %-22s %9s %9s %8s "
             "%s\n",
          "impl", "kind", "mode", "K", "M", "children/s", "vs M=0 (paired)",
          "vs limit", "loop us/wake (pass)", "lat p50", "notif p50",
          "setup s", "runs ok");
  for (i = 0; i < run->nrows; i++) {
    const struct lb_row *row = &run->rows[i];
    if (row->cfg.scenario != LB_IDLE)
      continue;
    like = row->cfg;
    like.m = 0;
    base = lb_find_row(run, &like);
    stat(row, LB_OFF(rate), &m);
    lb_row_stat(row, base, LB_OFF(rate), LB_OFF(rate), LB_RATIO, &v0);
    lb_row_stat(row, NULL, LB_OFF(rate), LB_OFF(limit_rate), LB_RATIO, &r);
    stat(row, LB_OFF(loop_cpu_us), &lc);
    stat(row, LB_OFF(lat.p50), &lp);
    stat(row, LB_OFF(notif.p50), &np);
    stat(row, LB_OFF(setup_seconds), &su);
    fprintf(f,
            "%-10s %-9s %-5s %3d %5d  %-22s %-18s %8s  %-22s %9s %9s %8s "
            "%d/%d\n",
            impl_label(run, row), lb_kind_name(row->cfg.kind),
            lb_mode_name(row->cfg.mode), row->cfg.k, row->cfg.m,
            mmm(a, sizeof a, &m, 0),
            base ? mmm(b, sizeof b, &v0, 2) : "n/a", med(c, sizeof c, &r, 2),
            mmm(d, sizeof d, &lc, 1), med(e, sizeof e, &lp, 1),
            med(g, sizeof g, &np, 1), med(h, sizeof h, &su, 2),
            lb_row_ok(row), row->nres);
  }
}

static void memory(FILE *f, const struct lb_run *run) {
  char a[64], b[64], c[32], d[32], e[32], g[32];
  struct lb_mmm rss, vsz, th, fd, tha, fda;
  int i;

  fprintf(f, "\n== memory: the parent's growth per in-flight child (M "
             "children registered between two snapshots)\n");
  fprintf(f, "%-10s %-9s %-5s %5s  %-22s %-26s %9s %9s %9s %9s %s\n", "impl",
          "kind", "mode", "M", "RSS KiB/child", "virtual KiB/child",
          "threads/c", "fds/c", "threads", "fds", "runs ok");
  for (i = 0; i < run->nrows; i++) {
    const struct lb_row *row = &run->rows[i];
    if (row->cfg.scenario != LB_MEMORY)
      continue;
    stat(row, LB_OFF(rss_kib), &rss);
    stat(row, LB_OFF(vsz_kib), &vsz);
    stat(row, LB_OFF(threads), &th);
    stat(row, LB_OFF(fds), &fd);
    stat(row, LB_OFF(threads_after), &tha);
    stat(row, LB_OFF(fds_after), &fda);
    fprintf(f, "%-10s %-9s %-5s %5d  %-22s %-26s %9s %9s %9s %9s %d/%d\n",
            impl_label(run, row), lb_kind_name(row->cfg.kind),
            lb_mode_name(row->cfg.mode), row->cfg.m,
            mmm(a, sizeof a, &rss, 2), mmm(b, sizeof b, &vsz, 1),
            med(c, sizeof c, &th, 2), med(d, sizeof d, &fd, 2),
            med(e, sizeof e, &tha, 0), med(g, sizeof g, &fda, 0),
            lb_row_ok(row), row->nres);
  }
}

static void failures(FILE *f, const struct lb_run *run) {
  int i, j, header_done = 0;

  for (i = 0; i < run->nrows; i++) {
    const struct lb_row *row = &run->rows[i];
    for (j = 0; j < row->nres; j++) {
      const struct lb_result *r = &row->res[j];
      if (r->status == LB_OK)
        continue;
      if (!header_done) {
        fprintf(f, "\n== runs that did not measure\n");
        header_done = 1;
      }
      fprintf(f, "rep %d %s ", j + 1, lb_scenario_name(row->cfg.scenario));
      if (row->cfg.scenario == LB_LIMITS)
        fprintf(f, "%s k=%d", lb_limit_name(row->cfg.limit), row->cfg.k);
      else
        fprintf(f, "%s %s %s k=%d m=%d", impl_label(run, row),
                lb_kind_name(row->cfg.kind), lb_mode_name(row->cfg.mode),
                row->cfg.k, row->cfg.m);
      fprintf(f, ": %s: %s\n",
              r->status == LB_UNSUPPORTED ? "unsupported"
              : r->status == LB_TIMEOUT   ? "timeout"
                                          : "failed",
              r->why);
    }
  }
}

void lb_report_text(FILE *f, const struct lb_run *run) {
  header(f, run);
  if (any(run, LB_LIMITS))
    limits(f, run);
  if (any(run, LB_CHURN))
    churn(f, run);
  if (any(run, LB_LATENCY))
    latency(f, run);
  if (any(run, LB_IDLE))
    idle(f, run);
  if (any(run, LB_MEMORY))
    memory(f, run);
  failures(f, run);
}
