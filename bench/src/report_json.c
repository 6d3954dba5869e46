/* report_json.c - the JSON report (bench/README.md documents it): the
 * machine, the load, the parameters, the implementations, and one object
 * per configuration with each figure's min / median / max and its value in
 * every repetition (null where that repetition did not measure), paired
 * ratios included, and the latency quantiles of stamped runs. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void num(FILE *f, double v) {
  if (isnan(v) || isinf(v))
    fputs("null", f);
  else
    fprintf(f, "%.6g", v);
}

static double field(const struct lb_result *r, size_t off) {
  double v;
  memcpy(&v, (const char *)r + off, sizeof v);
  return v;
}

/* "name": {"min", "median", "max", "values": [per repetition]} */
static void figure(FILE *f, int *first, const char *name,
                   const struct lb_row *row, const struct lb_row *base,
                   size_t off, size_t base_off, int op) {
  struct lb_mmm m;
  double v;
  int i;

  lb_row_stat(row, base, off, base_off, op, &m);
  if (m.n == 0)
    return;
  fprintf(f, "%s\n        \"%s\": {\"min\": ", *first ? "" : ",", name);
  *first = 0;
  num(f, m.min);
  fputs(", \"median\": ", f);
  num(f, m.median);
  fputs(", \"max\": ", f);
  num(f, m.max);
  fputs(", \"values\": [", f);
  for (i = 0; i < row->nres; i++) {
    const struct lb_result *r = &row->res[i], *q = r;
    v = lb_nan();
    if (base != NULL)
      q = i < base->nres ? &base->res[i] : NULL;
    if (r->status == LB_OK && q != NULL && q->status == LB_OK) {
      v = field(r, off);
      if (op == LB_RATIO)
        v /= field(q, base_off);
      else if (op == LB_DIFF)
        v -= field(q, base_off);
    }
    if (i)
      fputs(", ", f);
    num(f, v);
  }
  fputs("]}", f);
}

#define VAL(name, fld)                                                         \
  figure(f, &first, name, row, NULL, LB_OFF(fld), 0, LB_VALUE)

static void figures(FILE *f, const struct lb_run *run,
                    const struct lb_row *row) {
  const struct lb_config *c = &row->cfg;
  const struct lb_row *base = NULL;
  struct lb_config like;
  int first = 1;

  fputs("      \"figures\": {", f);
  if (c->scenario != LB_MEMORY) {
    VAL("children_per_s", rate);
    VAL("limit_children_per_s", limit_rate);
    figure(f, &first, "ratio_to_limit", row, NULL, LB_OFF(rate),
           LB_OFF(limit_rate), LB_RATIO);
    VAL("seconds", seconds);
  }
  if (c->scenario == LB_IDLE) {
    like = *c;
    like.m = 0;
    if ((base = lb_find_row(run, &like)) != NULL)
      figure(f, &first, "ratio_to_m0", row, base, LB_OFF(rate), LB_OFF(rate),
             LB_RATIO);
    VAL("setup_seconds", setup_seconds);
  }
  if (c->stamp) {
    VAL("lat_p50_us", lat.p50);
    VAL("lat_p90_us", lat.p90);
    VAL("lat_p99_us", lat.p99);
    VAL("lat_max_us", lat.max);
    VAL("floor_p50_us", floor.p50);
    VAL("floor_p90_us", floor.p90);
    VAL("floor_p99_us", floor.p99);
    figure(f, &first, "lat_p50_minus_floor_us", row, NULL, LB_OFF(lat.p50),
           LB_OFF(floor.p50), LB_DIFF);
    figure(f, &first, "lat_p50_ratio_to_floor", row, NULL, LB_OFF(lat.p50),
           LB_OFF(floor.p50), LB_RATIO);
    if (c->scenario != LB_LIMITS) {
      VAL("notif_p50_us", notif.p50);
      VAL("notif_p90_us", notif.p90);
      VAL("notif_p99_us", notif.p99);
      if (base != NULL)
        figure(f, &first, "notif_p50_ratio_to_m0", row, base,
               LB_OFF(notif.p50), LB_OFF(notif.p50), LB_RATIO);
    }
  }
  if (c->scenario != LB_LIMITS && c->scenario != LB_MEMORY) {
    VAL("wakeups", wakeups);
    VAL("children_per_wakeup", per_wakeup);
    VAL("loop_cpu_us_per_wakeup", loop_cpu_us);
    VAL("spawn_cpu_us_per_child", spawn_cpu_us);
    VAL("cpu_us_per_child", cpu_us_per_child);
    if (base != NULL)
      figure(f, &first, "loop_cpu_ratio_to_m0", row, base, LB_OFF(loop_cpu_us),
             LB_OFF(loop_cpu_us), LB_RATIO);
  }
  if (c->scenario == LB_MEMORY) {
    VAL("rss_kib_per_child", rss_kib);
    VAL("virtual_kib_per_child", vsz_kib);
    VAL("threads_per_child", threads);
    VAL("fds_per_child", fds);
    VAL("threads_after", threads_after);
    VAL("fds_after", fds_after);
  }
  VAL("load1_at_start", load1);
  fputs("\n      }", f);
}

static const char *status_name(int s) {
  return s == LB_OK            ? "ok"
         : s == LB_UNSUPPORTED ? "unsupported"
         : s == LB_TIMEOUT     ? "timeout"
                               : "failed";
}

static void row_json(FILE *f, const struct lb_run *run,
                     const struct lb_row *row) {
  const struct lb_config *c = &row->cfg;
  int i, j, first = 1;

  fprintf(f, "    {\n      \"scenario\": \"%s\",\n",
          lb_scenario_name(c->scenario));
  if (c->scenario == LB_LIMITS) {
    fprintf(f, "      \"limit\": \"%s\",\n", lb_limit_name(c->limit));
  } else {
    fputs("      \"impl\": ", f);
    lb_json_str(f, run->o->impls[c->impl].label);
    fprintf(f, ",\n      \"kind\": \"%s\",\n      \"mode\": \"%s\",\n",
            lb_kind_name(c->kind), lb_mode_name(c->mode));
  }
  fprintf(f, "      \"k\": %d, \"m\": %d, \"n\": %d, \"stamp\": %s,\n", c->k,
          c->m, c->n, c->stamp ? "true" : "false");
  fprintf(f, "      \"runs\": %d, \"ok\": %d,\n", row->nres, lb_row_ok(row));
  fputs("      \"failures\": [", f);
  for (i = 0; i < row->nres; i++) {
    if (row->res[i].status == LB_OK)
      continue;
    fprintf(f, "%s{\"rep\": %d, \"status\": \"%s\", \"why\": ",
            first ? "" : ", ", i + 1, status_name(row->res[i].status));
    lb_json_str(f, row->res[i].why);
    fputc('}', f);
    first = 0;
  }
  fputs("],\n", f);
  figures(f, run, row);
  if (c->stamp) {
    fputs(",\n      \"cdf_us\": [", f);
    for (i = 0; i < row->nres; i++) {
      fputs(i ? ", [" : "[", f);
      for (j = 0; j < LB_CDF_POINTS; j++) {
        if (j)
          fputs(", ", f);
        num(f, row->res[i].status == LB_OK ? row->res[i].cdf[j] : lb_nan());
      }
      fputc(']', f);
    }
    fputc(']', f);
  }
  fputs("\n    }", f);
}

int lb_report_json(const char *path, const struct lb_run *run) {
  const struct lb_options *o = run->o;
  FILE *f = fopen(path, "w");
  int i, j;

  if (f == NULL)
    return -1;
  fputs("{\n  \"tool\": \"loopspec-bench\",\n  \"format\": 1,\n", f);
  fprintf(f, "  \"started\": \"%s\",\n  \"wall_seconds\": %.1f,\n",
          run->started, run->wall_seconds);
  fputs("  \"machine\": {\n", f);
  lb_machine_json(f, "    ");
  fprintf(f, "  },\n  \"load\": {\"start\": [%.2f, %.2f, %.2f], \"end\": "
             "[%.2f, %.2f, %.2f]},\n",
          run->load_start[0], run->load_start[1], run->load_start[2],
          run->load_end[0], run->load_end[1], run->load_end[2]);
  fprintf(f, "  \"orphans\": %d,\n", run->orphans);
  fprintf(f, "  \"parameters\": {\"n\": %d, \"latency_n\": %d, \"idle_n\": "
             "%d, \"reps\": %d, \"idle_k\": %d, \"memory_m\": %d, ",
          o->n, o->latency_n, o->idle_n, o->reps, o->idle_k, o->memory_m);
  fputs("\"ks\": [", f);
  for (i = 0; i < o->nks; i++)
    fprintf(f, "%s%d", i ? ", " : "", o->ks[i]);
  fputs("], \"ms\": [", f);
  for (i = 0; i < o->nms; i++)
    fprintf(f, "%s%d", i ? ", " : "", o->ms[i]);
  if (o->profile)
    fprintf(f, "], \"profile\": \"3.%d\", \"child\": ", o->profile & 0xff);
  else
    fputs("], \"profile\": \"3.11 where offered\", \"child\": ", f);
  lb_json_str(f, o->child);
  fputs("},\n  \"implementations\": [", f);
  for (i = 0; i < o->nimpls; i++) {
    const struct lb_impl *im = &o->impls[i];
    fputs(i ? ",\n    {\"label\": " : "\n    {\"label\": ", f);
    lb_json_str(f, im->label);
    fputs(", \"path\": ", f);
    lb_json_str(f, im->path[0] ? im->path : "linked in");
    fputs(", \"env\": [", f);
    for (j = 0; j < im->nenv; j++) {
      if (j)
        fputs(", ", f);
      lb_json_str(f, im->env[j]);
    }
    fputs("], \"name\": ", f);
    lb_json_str(f, im->probe.ok ? im->probe.name : "");
    fputs(", \"version\": ", f);
    lb_json_str(f, im->probe.ok ? im->probe.version : "");
    fputs(", \"error\": ", f);
    lb_json_str(f, im->probe.ok ? "" : im->probe.why);
    fputc('}', f);
  }
  fputs("\n  ],\n  \"rows\": [\n", f);
  for (i = 0; i < run->nrows; i++) {
    row_json(f, run, &run->rows[i]);
    fputs(i + 1 < run->nrows ? ",\n" : "\n", f);
  }
  fputs("  ]\n}\n", f);
  return fclose(f) == 0 ? 0 : -1;
}
