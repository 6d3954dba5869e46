/* tsan_shim/main.c - the command line of the shim's runner (runner.c), for
 * the executables built from reference/tests (the unit tests, the shim's
 * self-test).  Prints on stderr, as Criterion does, a line per failed or
 * skipped test (and per passed one with --verbose) and a Criterion-like
 * synthesis, with the skipped count added; exits 1 if any test failed or
 * none was selected.
 *
 *   reference_unit_tests [--verbose] [-jN] [FILTER]
 *
 * -jN runs up to N tests at once (default 1); FILTER keeps only the tests
 * whose "suite::name" contains it.
 */
#include "shim_runner.h"

/* Outcomes, as counted. */
enum { R_PASS, R_FAIL, R_CRASH, R_SKIP };

struct cli {
  const char *filter;
  int verbose;
  int selected;
  int counts[4];
};

static int select_test(void *ctx, const struct lt_shim_test *t,
                       double *timeout) {
  struct cli *c = ctx;
  char full[256];
  (void)timeout;
  snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
  if (c->filter != NULL && strstr(full, c->filter) == NULL)
    return 0;
  c->selected++;
  return 1;
}

static void print_result(void *ctx, const struct lt_shim_test *t,
                         const struct lt_shim_outcome *o) {
  struct cli *c = ctx;
  switch (o->kind) {
  case LT_SHIM_PASS:
    c->counts[R_PASS]++;
    if (c->verbose)
      fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
    break;
  case LT_SHIM_SKIP:
  case LT_SHIM_DISABLED:
    c->counts[R_SKIP]++;
    fprintf(stderr, "[SKIP] %s::%s: %s\n", t->suite, t->name,
            o->message ? o->message : "Test was skipped");
    break;
  case LT_SHIM_FAIL:
    c->counts[R_FAIL]++;
    fprintf(stderr, "[FAIL] %s::%s: %s\n", t->suite, t->name,
            o->message ? o->message : "failed");
    break;
  case LT_SHIM_CRASH:
  case LT_SHIM_TIMEOUT:
    c->counts[R_CRASH]++;
    fprintf(stderr, "[FAIL] %s::%s: %s\n", t->suite, t->name,
            o->message ? o->message : "crashed");
    break;
  }
}

static void usage(const char *argv0) {
  fprintf(stderr, "usage: %s [--verbose] [-jN] [FILTER]\n", argv0);
  exit(2);
}

int main(int argc, char **argv) {
  struct cli c;
  struct lt_shim_run run;
  int i;

  memset(&c, 0, sizeof c);
  memset(&run, 0, sizeof run);
  run.jobs = 1;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0)
      c.verbose = 1;
    else if (strncmp(argv[i], "-j", 2) == 0) {
      run.jobs = atoi(argv[i] + 2);
      if (run.jobs < 1 || run.jobs > LT_SHIM_MAX_JOBS)
        usage(argv[0]);
    } else if (argv[i][0] == '-' || c.filter != NULL)
      usage(argv[0]);
    else
      c.filter = argv[i];
  }
  run.ctx = &c;
  run.select = select_test;
  run.finished = print_result;
  if (lt_shim_run(&run) < 0)
    return 1;
  fprintf(stderr,
          "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
          "Crashing: %d | Skipped: %d \n",
          c.counts[R_PASS] + c.counts[R_FAIL] + c.counts[R_CRASH],
          c.counts[R_PASS], c.counts[R_FAIL] + c.counts[R_CRASH],
          c.counts[R_CRASH], c.counts[R_SKIP]);
  return c.selected > 0 && c.counts[R_FAIL] + c.counts[R_CRASH] == 0 ? 0 : 1;
}
