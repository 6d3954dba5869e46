/* plan.c - what a run reports and what it runs, and how test results become
 * clause results.  Knows the registry (registry.h) and the ABI table, not
 * Criterion.
 *
 * The rules, from ARCHITECTURE.md and the runner's brief:
 *  - a clause is reported when the filter keeps it, the profile is inside its
 *    version range and it is not withdrawn; the side of a doc/CPython
 *    conflict that the run does not follow is reported as information and
 *    not counted;
 *  - a test applies when the profile is inside its range and, if it is
 *    written for one custom-child-watchers value, the implementation
 *    declares that value; tests that do not apply are neither listed nor
 *    counted;
 *  - an applicable test runs when it cites a reported clause and the
 *    implementation declares every capability and every watcher kind it
 *    needs; when one is missing the test is UNSUPPORTED if every clause it
 *    cites is a MAY, and FAIL otherwise, without running;
 *  - UNSUPPORTED is legal only for MAY clauses, whoever says it: a test
 *    the harness skips as UNSUPPORTED that cites a MUST or SHOULD clause
 *    FAILs;
 *  - an expectations file turns a listed test's FAIL into XFAIL and its PASS
 *    into XPASS (expect.c), before the roll-up;
 *  - a clause's result is the worst of its tests' (enum lr_result order).
 */
#include "runner.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *or_empty(const char *s) { return s != NULL ? s : ""; }

void lr_set_result(struct lr_test *t, enum lr_result r, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  int n;

  if (fmt != NULL) {
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && (msg = malloc((size_t)n + 1)) != NULL) {
      va_start(ap, fmt);
      vsnprintf(msg, (size_t)n + 1, fmt, ap);
      va_end(ap);
    }
  }
  free(t->message);
  t->message = msg;
  t->result = r;
  t->has_result = true;
}

/* --- lookups ----------------------------------------------------------- */

/* qsort_r() is a GNU extension; the comparators below need the run only to
 * reach the arrays, so a file-local pointer set around each sort does the
 * job (the runner sorts on one thread, once). */
static const struct lr_run *sorting;

static int cmp_clause_index(const void *a, const void *b) {
  const struct lr_clause *ca = &sorting->clauses[*(const size_t *)a];
  const struct lr_clause *cb = &sorting->clauses[*(const size_t *)b];
  return strcmp(ca->reg->id, cb->reg->id);
}

static int cmp_test_index(const void *a, const void *b) {
  const struct lh_test *ta = sorting->tests[*(const size_t *)a].reg;
  const struct lh_test *tb = sorting->tests[*(const size_t *)b].reg;
  int c = strcmp(ta->suite, tb->suite);
  return c != 0 ? c : strcmp(ta->name, tb->name);
}

/* Finds clause `id` through `order` (clause indexes sorted by id); returns
 * its index, or (size_t)-1. */
static size_t find_clause(const struct lr_run *run, const size_t *order,
                          const char *id) {
  size_t lo = 0, hi = run->nclauses;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(id, run->clauses[order[mid]].reg->id);
    if (c == 0)
      return order[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return (size_t)-1;
}

struct lr_test *lr_find_test(struct lr_run *run, const char *suite,
                             const char *name) {
  size_t lo = 0, hi = run->ntests;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    struct lr_test *t = &run->tests[run->by_name[mid]];
    int c = strcmp(suite, t->reg->suite);
    if (c == 0)
      c = strcmp(name, t->reg->name);
    if (c == 0)
      return t;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* --- the plan ----------------------------------------------------------- */

static bool in_range(int profile, int min, int max) {
  return profile >= min && profile <= max;
}

/* True when every clause `t` cites is a MAY: only then may the test end
 * UNSUPPORTED. */
static bool all_may(const struct lr_run *run, const struct lr_test *t) {
  size_t i;
  for (i = 0; i < t->reg->nclauses; i++)
    if (strcmp(or_empty(run->clauses[t->clauses[i]].reg->level), "MAY") != 0)
      return false;
  return t->reg->nclauses > 0;
}

/* Writes the names of the capability bits in `caps` as "LSPEC_CAP_A,
 * LSPEC_CAP_B" into buf. */
static void cap_list(uint64_t caps, char *buf, size_t len) {
  size_t i, used = 0;
  buf[0] = '\0';
  for (i = 0; i < lh_ncap_names && used < len; i++) {
    if ((caps & lh_cap_names[i].bit) == 0)
      continue;
    used += (size_t)snprintf(buf + used, len - used, "%sLSPEC_CAP_%s",
                             used ? ", " : "", lh_cap_names[i].macro);
  }
}

/* Writes the names of the watcher kinds in `kinds` (LSPEC_WATCHER_KIND_BIT
 * bits) as "LSPEC_WATCHER_A, LSPEC_WATCHER_B" into buf. */
static void kind_list(uint32_t kinds, char *buf, size_t len) {
  size_t used = 0;
  int k;
  buf[0] = '\0';
  for (k = 0; k < 32 && used < len; k++) {
    const char *name;
    if ((kinds & LSPEC_WATCHER_KIND_BIT(k)) == 0)
      continue;
    name = lh_watcher_kind_name(k);
    if (name != NULL)
      used += (size_t)snprintf(buf + used, len - used, "%sLSPEC_WATCHER_%s",
                               used ? ", " : "", name);
    else
      used += (size_t)snprintf(buf + used, len - used, "%swatcher kind %d",
                               used ? ", " : "", k);
  }
}

static int registry_error(const char *what, const char *a, const char *b,
                          const char *c) {
  fprintf(stderr,
          LR_PROGRAM ": internal error: the clause registry %s %s%s%s\n", what,
          a, b, c);
  return -1;
}

/* Decides what happens to test `t`, whose clauses are resolved. */
static void plan_test(struct lr_run *run, struct lr_test *t) {
  const struct lh_test *reg = t->reg;
  uint64_t needed = reg->caps, missing;
  uint32_t missing_kinds;
  bool cites_reported = false;
  char names[512];
  size_t i;

  t->timeout = reg->timeout > 0 ? reg->timeout : LR_DEFAULT_TEST_TIMEOUT;
  t->applicable = in_range(run->profile, reg->profile_min, reg->profile_max) &&
                  (reg->custom_watchers == 0 ||
                   reg->custom_watchers == run->impl->custom_child_watchers);
  if (!t->applicable)
    return;

  for (i = 0; i < reg->nclauses; i++) {
    const struct lr_clause *c = &run->clauses[t->clauses[i]];
    needed |= c->reg->caps;
    if (c->reported) {
      cites_reported = true;
      if (!c->info)
        t->counted = true;
    }
  }
  t->selected = cites_reported;
  if (!t->selected) {
    t->counted = false;
    return;
  }
  run->nselected++;

  missing = needed & ~run->impl->capabilities;
  if (missing != 0) {
    cap_list(missing, names, sizeof names);
    if (all_may(run, t))
      lr_set_result(t, LR_UNSUPPORTED,
                    "the implementation does not offer the optional "
                    "capability %s",
                    names);
    else
      lr_set_result(t, LR_FAIL,
                    "the implementation lacks mandatory capability %s", names);
    t->state = LR_DONE;
    return;
  }
  missing_kinds = reg->watcher_kinds & ~run->impl->watcher_kinds;
  if (missing_kinds != 0) {
    kind_list(missing_kinds, names, sizeof names);
    if (all_may(run, t))
      lr_set_result(t, LR_UNSUPPORTED,
                    "the implementation does not offer the optional "
                    "watcher kind %s",
                    names);
    else
      lr_set_result(t, LR_FAIL,
                    "the implementation lacks watcher kind %s, which a "
                    "MUST or SHOULD clause needs",
                    names);
    t->state = LR_DONE;
    return;
  }
  t->to_run = true;
  run->nto_run++;
}

int lr_plan(struct lr_run *run) {
  size_t *order = NULL;
  size_t i, j;
  int rc = -1;

  run->nclauses = lh_nclauses;
  run->ntests = lh_ntests;
  run->clauses = calloc(lh_nclauses ? lh_nclauses : 1, sizeof *run->clauses);
  run->tests = calloc(lh_ntests ? lh_ntests : 1, sizeof *run->tests);
  run->by_name = calloc(lh_ntests ? lh_ntests : 1, sizeof *run->by_name);
  order = calloc(lh_nclauses ? lh_nclauses : 1, sizeof *order);
  if (!run->clauses || !run->tests || !run->by_name || !order) {
    fprintf(stderr, LR_PROGRAM ": out of memory\n");
    goto out;
  }

  for (i = 0; i < run->nclauses; i++) {
    struct lr_clause *c = &run->clauses[i];
    c->reg = &lh_clauses[i];
    c->matched =
        run->opt.filter == NULL || fnmatch(run->opt.filter, c->reg->id, 0) == 0;
    c->reported =
        c->matched && strcmp(or_empty(c->reg->status), "withdrawn") != 0 &&
        in_range(run->profile, c->reg->profile_min, c->reg->profile_max);
    c->info = c->reg->conflict != NULL &&
              strcmp(or_empty(c->reg->source), run->follow) != 0;
    if (c->matched)
      run->nmatched++;
    order[i] = i;
  }
  sorting = run;
  qsort(order, run->nclauses, sizeof *order, cmp_clause_index);
  for (i = 1; i < run->nclauses; i++)
    if (strcmp(run->clauses[order[i - 1]].reg->id,
               run->clauses[order[i]].reg->id) == 0) {
      registry_error("lists clause", run->clauses[order[i]].reg->id, " twice",
                     "");
      goto out;
    }

  for (i = 0; i < run->ntests; i++) {
    struct lr_test *t = &run->tests[i];
    t->reg = &lh_tests[i];
    t->clauses =
        calloc(t->reg->nclauses ? t->reg->nclauses : 1, sizeof *t->clauses);
    if (t->clauses == NULL) {
      fprintf(stderr, LR_PROGRAM ": out of memory\n");
      goto out;
    }
    for (j = 0; j < t->reg->nclauses; j++) {
      t->clauses[j] = find_clause(run, order, t->reg->clauses[j]);
      if (t->clauses[j] == (size_t)-1) {
        registry_error("has test", t->reg->name, " citing unknown clause ",
                       t->reg->clauses[j]);
        goto out;
      }
    }
    run->by_name[i] = i;
  }
  sorting = run;
  qsort(run->by_name, run->ntests, sizeof *run->by_name, cmp_test_index);
  sorting = NULL;
  for (i = 1; i < run->ntests; i++) {
    const struct lh_test *a = run->tests[run->by_name[i - 1]].reg;
    const struct lh_test *b = run->tests[run->by_name[i]].reg;
    if (strcmp(a->suite, b->suite) == 0 && strcmp(a->name, b->name) == 0) {
      registry_error("lists test", b->suite, "::", b->name);
      goto out;
    }
  }

  for (i = 0; i < run->ntests; i++)
    plan_test(run, &run->tests[i]);
  rc = 0;
out:
  sorting = NULL;
  free(order);
  return rc;
}

/* --- after the run -------------------------------------------------------- */

/* Gives a test that was handed to Criterion but did not finish a result
 * from how far it got. */
static void conclude_unfinished(const struct lr_run *run, struct lr_test *t) {
  switch (t->state) {
  case LR_NOT_STARTED:
    if (run->stopped)
      lr_set_result(t, LR_UNRESOLVED,
                    "not run: the run's time limit expired first");
    else
      lr_set_result(t, LR_CRASH, "no result: the test's worker never reported");
    break;
  case LR_STARTED:
    if (run->stopped)
      lr_set_result(t, LR_TIMEOUT,
                    "still running when the run's time limit expired");
    else
      lr_set_result(t, LR_CRASH,
                    "the worker died during the test's setup without "
                    "reporting a result");
    break;
  case LR_TESTED:
    /* The body reported; its teardown did not.  A test that timed out
     * keeps that result. */
    if (t->has_result && t->result == LR_TIMEOUT)
      break;
    if (run->stopped)
      lr_set_result(t, LR_TIMEOUT,
                    "still in its teardown when the run's time limit "
                    "expired");
    else
      lr_set_result(t, LR_CRASH,
                    "the worker died or exited during the test's teardown");
    break;
  case LR_DONE:
    break;
  }
  t->state = LR_DONE;
}

void lr_conclude(struct lr_run *run) {
  size_t i, j;

  for (i = 0; i < run->ntests; i++) {
    struct lr_test *t = &run->tests[i];
    if (t->to_run && t->state != LR_DONE)
      conclude_unfinished(run, t);
    if (t->has_result && t->result == LR_UNSUPPORTED && !all_may(run, t)) {
      char *why = t->message;
      t->message = NULL;
      lr_set_result(t, LR_FAIL,
                    "UNSUPPORTED is allowed only for MAY clauses, and this "
                    "test checks a MUST or SHOULD one: %s",
                    why != NULL ? why : "(no reason given)");
      free(why);
    }
  }
  lr_expect_apply(run);

  for (i = 0; i < run->nclauses; i++) {
    run->clauses[i].result = LR_UNTESTED;
    run->clauses[i].ntests = 0;
  }
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    if (!t->selected || !t->has_result)
      continue;
    for (j = 0; j < t->reg->nclauses; j++) {
      struct lr_clause *c = &run->clauses[t->clauses[j]];
      c->ntests++;
      if (t->result > c->result)
        c->result = t->result;
    }
  }
}

void lr_count_tests(const struct lr_run *run, struct lr_counts *c) {
  size_t i;
  memset(c, 0, sizeof *c);
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    if (lr_test_listed(t))
      c->n[t->result]++;
  }
}

void lr_count_clauses(const struct lr_run *run, struct lr_counts *c) {
  size_t i;
  memset(c, 0, sizeof *c);
  for (i = 0; i < run->nclauses; i++) {
    const struct lr_clause *cl = &run->clauses[i];
    if (!cl->reported)
      continue;
    if (cl->info)
      c->info++;
    else
      c->n[cl->result]++;
  }
}

bool lr_test_listed(const struct lr_test *t) {
  return t->counted && t->has_result;
}

const char *lr_test_area(const struct lr_run *run, const struct lr_test *t) {
  size_t i;
  for (i = 0; i < t->reg->nclauses; i++) {
    const struct lr_clause *c = &run->clauses[t->clauses[i]];
    if (c->reported && !c->info)
      return c->reg->area;
  }
  /* Not a listed test; its first clause's area is the best there is. */
  return t->reg->nclauses > 0 ? run->clauses[t->clauses[0]].reg->area : "";
}

int lr_exit_status(const struct lr_run *run) {
  size_t i;
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    if (t->counted && t->has_result && lr_result_fails(t->result))
      return LR_EXIT_FAILED;
  }
  return LR_EXIT_OK;
}

void lr_plan_free(struct lr_run *run) {
  size_t i;
  if (run->tests != NULL)
    for (i = 0; i < run->ntests; i++) {
      free(run->tests[i].clauses);
      free(run->tests[i].message);
    }
  free(run->tests);
  free(run->clauses);
  free(run->by_name);
  run->tests = NULL;
  run->clauses = NULL;
  run->by_name = NULL;
}
