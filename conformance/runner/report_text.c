/* report_text.c - the human report on stdout: who was tested and how, a
 * line per clause area with counts, every failing clause with its statement
 * and the failing tests' messages, the known deviations of the expectations
 * file, the information-only clauses, and the closing line the CI reads. */
#include "runner.h"

#include <ctype.h>
#include <string.h>

void lr_put_folded(FILE *f, const char *s) {
  bool space = false, any = false;
  for (; s != NULL && *s; s++) {
    if (isspace((unsigned char)*s)) {
      space = true;
      continue;
    }
    if (space && any)
      fputc(' ', f);
    fputc(*s, f);
    space = false;
    any = true;
  }
}

/* Writes `msg` so that it cannot garble the terminal: control characters
 * other than tab as \xNN, except that with an `indent` a newline is kept and
 * the next line starts with `indent`. */
static void put_clean(FILE *f, const char *msg, const char *indent) {
  const unsigned char *p = (const unsigned char *)(msg != NULL ? msg : "");
  for (; *p; p++) {
    if (*p == '\n' && indent != NULL) {
      fputc('\n', f);
      if (p[1] != '\0')
        fputs(indent, f);
    } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
      fprintf(f, "\\x%02x", *p);
    } else {
      fputc(*p, f);
    }
  }
}

/* Writes "3 pass, 1 fail" for the non-zero counts of `c`, worst last. */
static void put_counts(FILE *f, const struct lr_counts *c) {
  bool first = true;
  int r;
  for (r = LR_PASS; r < LR_NRESULTS; r++) {
    if (c->n[r] == 0)
      continue;
    fprintf(f, "%s%zu %s", first ? "" : ", ", c->n[r],
            lr_result_key((enum lr_result)r));
    first = false;
  }
  if (c->n[LR_UNTESTED] != 0) {
    fprintf(f, "%s%zu untested", first ? "" : ", ", c->n[LR_UNTESTED]);
    first = false;
  }
  if (c->info != 0)
    fprintf(f, "%s%zu info", first ? "" : ", ", c->info);
  else if (first)
    fputs("none", f);
}

/* The areas of the reported clauses, in registry order, with counts. */
static void put_areas(const struct lr_run *run, FILE *f) {
  size_t i, j;
  for (i = 0; i < run->nclauses; i++) {
    const struct lr_clause *c = &run->clauses[i];
    struct lr_counts counts;
    size_t n = 0;
    bool seen = false;

    if (!c->reported)
      continue;
    for (j = 0; j < i && !seen; j++)
      seen = run->clauses[j].reported &&
             strcmp(run->clauses[j].reg->area, c->reg->area) == 0;
    if (seen)
      continue;

    memset(&counts, 0, sizeof counts);
    for (j = i; j < run->nclauses; j++) {
      const struct lr_clause *d = &run->clauses[j];
      if (!d->reported || strcmp(d->reg->area, c->reg->area) != 0)
        continue;
      n++;
      if (d->info)
        counts.info++;
      else
        counts.n[d->result]++;
    }
    fprintf(f, "  %-5s %4zu %-9s", c->reg->area, n,
            n == 1 ? "clause:" : "clauses:");
    put_counts(f, &counts);
    fputc('\n', f);
  }
}

/* A clause that failed, and each of its tests that did not pass. */
static void put_failure(const struct lr_run *run, const struct lr_clause *c,
                        size_t index, FILE *f) {
  size_t i, j;

  fprintf(f, "\n%s %s (%s, %s): ", lr_result_name(c->result), c->reg->id,
          c->reg->level, c->reg->source);
  lr_put_folded(f, c->reg->statement);
  fputc('\n', f);
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    bool cites = false;
    if (!t->selected || !t->has_result || t->result == LR_PASS)
      continue;
    for (j = 0; j < t->reg->nclauses && !cites; j++)
      cites = t->clauses[j] == index;
    if (!cites)
      continue;
    fprintf(f, "  %s::%s: %s", t->reg->suite, t->reg->name,
            lr_result_name(t->result));
    if (t->message != NULL) {
      fputs(": ", f);
      put_clean(f, t->message, "    ");
    }
    fputc('\n', f);
  }
}

/* The test's clauses, as "A, B". */
static void put_test_clauses(const struct lr_test *t, FILE *f) {
  size_t i;
  for (i = 0; i < t->reg->nclauses; i++)
    fprintf(f, "%s%s", i ? ", " : "", t->reg->clauses[i]);
}

/* The first line of `msg`, cleaned. */
static void put_first_line(FILE *f, const char *msg) {
  const char *nl = strchr(msg, '\n');
  char buf[512];
  size_t n = nl != NULL ? (size_t)(nl - msg) : strlen(msg);
  if (n >= sizeof buf)
    n = sizeof buf - 1;
  memcpy(buf, msg, n);
  buf[n] = '\0';
  put_clean(f, buf, NULL);
  if (nl != NULL && nl[1] != '\0')
    fputs(" (...)", f);
}

/* The expectations file's entries and what became of each: XFAIL with its
 * reason and the failure seen, an intermittent entry's PASS, XPASS, and
 * the entries this run did not use. */
static void put_expectations(const struct lr_run *run, FILE *f) {
  size_t i, unused = 0;

  if (run->expect.path == NULL)
    return;
  fputs("\nknown deviations (", f);
  put_clean(f, run->expect.path, NULL);
  fprintf(f,
          ", %zu %s): they keep the run green, they do not make the "
          "implementation conformant\n",
          run->expect.n, run->expect.n == 1 ? "entry" : "entries");
  for (i = 0; i < run->expect.n; i++) {
    const struct lr_expect *e = &run->expect.entries[i];
    const struct lr_test *t = &run->tests[e->index];
    if (lr_expect_unused(run, e)) {
      unused++;
      continue;
    }
    fprintf(f, "  %-5s %s (", lr_result_name(t->result), e->test);
    put_test_clauses(t, f);
    fprintf(f, ")%s: ", e->intermittent ? ", intermittent" : "");
    switch (t->result) {
    case LR_XFAIL:
      put_clean(f, e->reason, NULL);
      if (t->message != NULL) {
        fputs("\n        seen: ", f);
        put_first_line(f, t->message);
      }
      break;
    case LR_PASS:
      fputs("passed this time (allowed: the entry is intermittent)", f);
      break;
    case LR_XPASS:
      if (e->intermittent) /* Only --strict makes an intermittent XPASS. */
        fprintf(f, "passed, and --strict allows no pass (line %u)", e->line);
      else
        fprintf(f, "passed: remove this entry (line %u)", e->line);
      break;
    default:
      fputs("not a failure the entry expects: ", f);
      if (t->message != NULL)
        put_first_line(f, t->message);
      break;
    }
    fputc('\n', f);
  }
  if (unused == 0)
    return;
  if (run->opt.filter != NULL) {
    fprintf(f, "  %zu %s not used (their tests are not in this run)\n", unused,
            unused == 1 ? "entry" : "entries");
    return;
  }
  for (i = 0; i < run->expect.n; i++) {
    const struct lr_expect *e = &run->expect.entries[i];
    const struct lr_test *t = &run->tests[e->index];
    if (!lr_expect_unused(run, e))
      continue;
    fprintf(f, "  not used: %s (line %u): ", e->test, e->line);
    if (!t->selected)
      fputs("the test does not apply to this run", f);
    else if (!t->has_result)
      fputs("the test has no result", f);
    else
      fprintf(f, "the test ended %s", lr_result_name(t->result));
    fputc('\n', f);
  }
}

void lr_report_closing_line(const struct lr_run *run, FILE *f) {
  struct lr_counts c;
  lr_count_tests(run, &c);
  /* XFAIL is neither a pass nor a failure: a known deviation, counted with
   * the skipped tests; XPASS (a stale entry) fails the run, and is counted
   * as failed. */
  fprintf(f, "conformance: %zu passed, %zu failed, %zu skipped\n", c.n[LR_PASS],
          c.n[LR_FAIL] + c.n[LR_CRASH] + c.n[LR_TIMEOUT] + c.n[LR_XPASS],
          c.n[LR_UNSUPPORTED] + c.n[LR_UNRESOLVED] + c.n[LR_XFAIL]);
}

void lr_report_text(const struct lr_run *run, FILE *f) {
  struct lr_counts clauses;
  char profile[16];
  size_t i, ninfo = 0;

  put_clean(f, run->impl->name, NULL);
  fputc(' ', f);
  put_clean(f, run->impl->version, NULL);
  fprintf(f, " (ABI v%u), profile %s, following %s",
          (unsigned)run->impl->abi_version,
          lr_profile_text(run->profile, profile, sizeof profile), run->follow);
  if (run->opt.filter != NULL)
    fprintf(f, ", clauses matching '%s'", run->opt.filter);
  fputc('\n', f);
  if (run->stopped)
    fputs("the run was stopped by its time limit: unfinished tests are "
          "TIMEOUT, tests not started UNRESOLVED\n",
          f);

  lr_count_clauses(run, &clauses);
  put_areas(run, f);

  for (i = 0; i < run->nclauses; i++) {
    const struct lr_clause *c = &run->clauses[i];
    if (c->reported && !c->info && lr_result_fails(c->result))
      put_failure(run, c, i, f);
    if (c->reported && c->info)
      ninfo++;
  }

  put_expectations(run, f);

  if (ninfo != 0) {
    fprintf(f,
            "\ninformation only (the %s side of doc/CPython conflicts, "
            "not counted):\n",
            strcmp(run->follow, "doc") == 0 ? "cpython" : "doc");
    for (i = 0; i < run->nclauses; i++) {
      const struct lr_clause *c = &run->clauses[i];
      if (!c->reported || !c->info)
        continue;
      fprintf(f, "  %-11s %s (conflicts with %s): ", lr_result_name(c->result),
              c->reg->id, c->reg->conflict);
      lr_put_folded(f, c->reg->statement);
      fputc('\n', f);
    }
  }
  fputc('\n', f);
  lr_report_closing_line(run, f);
}
