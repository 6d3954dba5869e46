/* runner.h - loopspec-conform's internal interface: the run's options, the
 * plan (which clauses are reported and which tests run), the results, and the
 * functions each part of the runner provides to main.c.
 *
 * The runner is split by what each part depends on:
 *   options.c       the command line                      (libc only)
 *   plan.c          selection, roll-ups and counts        (the registry)
 *   execute.c       running the selected tests            (Criterion)
 *   report_text.c   the human report on stdout
 *   report_json.c   the JSON report
 *   report_junit.c  the JUnit XML report (--report junit:PATH)
 *   report_tap.c    the TAP version 13 report (--report tap:PATH)
 *   expect.c        the expectations file (--expect): its parser, and
 *                   XFAIL / XPASS
 *   names.c         names of results and profiles (the ABI's names,
 *                   capabilities and kinds, are the harness's: names.h)
 *   outcome.c       a skip's or an exit's result, the outer time limit
 *   main.c          the order of things and the exit status
 * Only execute.c includes a Criterion header.  The ThreadSanitizer variant,
 * loopspec-conform-tsan, is the same runner with execute_tsan.c in place of
 * execute.c: it runs the tests through reference/tests/tsan_shim.
 */
#ifndef LSPEC_CONFORM_RUNNER_H
#define LSPEC_CONFORM_RUNNER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <loopspec/abi.h>

#include "names.h"
#include "registry.h"

#define LR_PROGRAM "loopspec-conform"

/* Exit statuses (ARCHITECTURE.md, "Results"). */
#define LR_EXIT_OK 0     /* nothing FAIL, XPASS, CRASH or TIMEOUT */
#define LR_EXIT_FAILED 1 /* something was */
#define LR_EXIT_USAGE 2  /* usage error, unusable implementation, empty run */

/* The per-test timeout used when neither the registry nor the test gives
 * one, in seconds. */
#define LR_DEFAULT_TEST_TIMEOUT 30.0

/* Results, ordered so that a larger value is worse: a clause's result is the
 * largest of its tests'.  LR_UNTESTED is for clauses only (no applicable
 * test); LR_XFAIL and LR_XPASS come from an expectations file (expect.c). */
enum lr_result {
  LR_UNTESTED = 0,
  LR_PASS,
  LR_XFAIL,
  LR_UNSUPPORTED,
  LR_UNRESOLVED,
  LR_FAIL,
  LR_XPASS,
  LR_TIMEOUT,
  LR_CRASH,
  LR_NRESULTS
};

/* True for the results that make the run fail (exit status 1). */
bool lr_result_fails(enum lr_result r);

/* "PASS", "FAIL", ... as used in both reports. */
const char *lr_result_name(enum lr_result r);

/* "pass", "fail", ... the keys of the JSON summary. */
const char *lr_result_key(enum lr_result r);

/* The report files a run can write besides the text report on stdout. */
enum lr_report_format { LR_REPORT_JSON, LR_REPORT_JUNIT, LR_REPORT_TAP };

/* One --report FORMAT:PATH. */
struct lr_report_file {
  enum lr_report_format format;
  const char *path; /* points into argv */
};

/* "JSON", "JUnit", "TAP": how messages name a format. */
const char *lr_report_format_name(enum lr_report_format format);

/* A run's options, as given on the command line. */
struct lr_options {
  const char *impl_path;   /* --impl; NULL: the linked-in reference */
  int profile;             /* --profile as LSPEC_PROFILE(3, N); 0: default */
  const char *follow;      /* --follow: "doc" (default) or "cpython" */
  const char *filter;      /* --filter glob on clause ids, or NULL */
  bool list;               /* --list */
  bool help;               /* --help */
  size_t jobs;             /* -j; 0: Criterion's default */
  double run_timeout;      /* --run-timeout; 0: derived from the tests */
  struct lr_report_file *reports; /* --report FORMAT:PATH, in order */
  size_t nreports;
  const char *expect_path; /* --expect FILE, or NULL */
  bool strict;             /* --strict: intermittent entries excuse no PASS */
};

/* Parses argv into *o.  Returns 0, or -1 after printing one line on stderr
 * (the caller exits with LR_EXIT_USAGE).  Strings in *o point into argv;
 * o->reports is allocated and released by lr_options_free(). */
int lr_parse_options(int argc, char **argv, struct lr_options *o);
void lr_options_free(struct lr_options *o);
void lr_print_usage(FILE *f);

/* A profile as text: "3.12".  `buf` must hold at least 8 bytes. */
const char *lr_profile_text(int profile, char *buf, size_t len);

/* Parses "3.8" ... "3.12" (only those).  Returns the profile, or 0. */
int lr_profile_parse(const char *text);

/* Where a test stands in its worker, as seen through Criterion's hooks. */
enum lr_test_state {
  LR_NOT_STARTED = 0, /* no hook seen yet */
  LR_STARTED,         /* PRE_INIT seen: the worker is running */
  LR_TESTED,          /* POST_TEST seen: the body's result is known */
  LR_DONE             /* POST_FINI or TEST_CRASH seen: final */
};

/* One entry of an expectations file: a known deviation of the
 * implementation (expect.c). */
struct lr_expect {
  char *test;        /* "suite::name"; owned */
  size_t index;      /* the test's index in lr_run.tests */
  unsigned line;     /* the line of its [[expect]] header */
  char *reason;      /* owned, never empty */
  bool intermittent; /* shows in some runs only: PASS is allowed */
  char **clauses;    /* the optional `clause` key, checked; owned */
  size_t nclauses;
};

/* An expectations file, as read. */
struct lr_expectations {
  char *path; /* as given; owned */
  struct lr_expect *entries;
  size_t n;
};

/* One test of the registry, and what the run makes of it. */
struct lr_test {
  const struct lh_test *reg;
  size_t *clauses; /* indexes into lr_run.clauses, reg->nclauses */
  bool applicable; /* profile in range, custom-watchers value matches */
  bool selected;   /* applicable and cites a clause the filter keeps */
  bool counted;    /* selected and cites a reported, counted clause */
  bool to_run;     /* handed to Criterion (selected, capabilities ok) */
  bool linked;     /* a Criterion test of that suite and name exists */
  double timeout;  /* seconds, as given to Criterion */
  enum lr_test_state state;
  bool has_result;
  enum lr_result result;
  char *message;                  /* why, for anything but PASS; owned */
  const struct lr_expect *expect; /* its expectations entry, or NULL */
};

/* One clause of the registry, and its rolled-up result. */
struct lr_clause {
  const struct lh_clause *reg;
  bool matched;  /* the filter keeps it (always, without a filter) */
  bool reported; /* matched, in the profile and not withdrawn */
  bool info;     /* the other side of a conflict: not counted */
  size_t ntests; /* selected tests citing it */
  enum lr_result result;
};

/* Counts of results. */
struct lr_counts {
  size_t n[LR_NRESULTS];
  size_t info; /* clauses reported as information only */
};

/* The whole run. */
struct lr_run {
  struct lr_options opt;
  const struct lspec_impl *impl;
  char *impl_file;    /* absolute path of --impl, or NULL; owned */
  int profile;        /* the profile in force */
  const char *follow; /* "doc" or "cpython" */

  struct lr_clause *clauses;
  size_t nclauses;
  struct lr_test *tests;
  size_t ntests;
  size_t *by_name; /* test indexes sorted by suite, then name */

  size_t nmatched;               /* clauses the filter keeps */
  size_t nselected;              /* tests selected */
  size_t nto_run;                /* tests handed to Criterion */
  bool stopped;                  /* the outer time limit ended the run */
  struct lr_expectations expect; /* --expect; path NULL without one */

  /* Guards the tests' results, written by Criterion's hooks on the main
   * thread and read by the watchdog thread if the time limit expires. */
  pthread_mutex_t lock;
};

/* plan.c --------------------------------------------------------------- */

/* Builds run->clauses and run->tests from the registry and decides, from
 * run->opt, run->impl and run->profile, what is reported and what runs;
 * tests that lack a capability get their result here without running.
 * Returns 0, or -1 after printing one line on stderr when the registry is
 * inconsistent (a test citing a clause that does not exist). */
int lr_plan(struct lr_run *run);

/* The test of that Criterion suite and name, or NULL. */
struct lr_test *lr_find_test(struct lr_run *run, const char *suite,
                             const char *name);

/* Gives every run test that has no result yet one from how far it got, then
 * rolls test results up into clause results.  Call with run->lock held or
 * after the run. */
void lr_conclude(struct lr_run *run);

/* Counts over the counted tests, and over the reported clauses. */
void lr_count_tests(const struct lr_run *run, struct lr_counts *c);
void lr_count_clauses(const struct lr_run *run, struct lr_counts *c);

/* The exit status the results call for. */
int lr_exit_status(const struct lr_run *run);

/* Sets a test's result and message (copied; NULL for none), replacing any
 * earlier one. */
void lr_set_result(struct lr_test *t, enum lr_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The tests the reports list one by one (JUnit, TAP): the counted tests
 * that have a result, the same set lr_count_tests() counts. */
bool lr_test_listed(const struct lr_test *t);

/* The clause area a listed test is reported under: the area of the first
 * clause it cites that is reported and counted. */
const char *lr_test_area(const struct lr_run *run, const struct lr_test *t);

/* Frees everything lr_plan() and the run allocated. */
void lr_plan_free(struct lr_run *run);

/* expect.c ------------------------------------------------------------- */

/* Reads run->opt.expect_path into run->expect and ties each entry to its
 * test; call after lr_plan().  Returns 0, or -1 after printing one line on
 * stderr, "FILE:LINE: what is wrong" (the caller exits with LR_EXIT_USAGE):
 * a malformed file, an entry without a reason, naming a test the suite does
 * not have or a clause that test does not check, a duplicate entry, or a
 * file written for another --follow or --profile. */
int lr_expect_load(struct lr_run *run);

/* Turns the listed tests' results into XFAIL (a FAIL) and XPASS (a PASS of
 * an entry that is not intermittent, or of any entry with --strict).  Called
 * by lr_conclude(); applying it twice changes nothing. */
void lr_expect_apply(struct lr_run *run);

/* True when the entry said nothing about this run: its test did not run
 * (not applicable, filtered out, no capability) or ended UNSUPPORTED or
 * UNRESOLVED. */
bool lr_expect_unused(const struct lr_run *run, const struct lr_expect *e);

void lr_expect_free(struct lr_expectations *x);

/* outcome.c ------------------------------------------------------------ */

/* The status harness.c's atexit guard exits with when a test process
 * calls exit() before the test has ended (an exit(0) would read as a pass:
 * conformance-models.md, B4). */
#define LR_HARNESS_EXIT_GUARD 86

/* A skipped test's result from the skip's message, which the harness
 * prefixes with the result: "UNSUPPORTED: ..." or "UNRESOLVED: ..."; any
 * other skip is UNRESOLVED. */
void lr_set_skip_result(struct lr_test *t, const char *msg);

/* FAIL for a test that failed without a failed assertion: its process
 * exited with `exit_code` (the harness's exit guard says so), or, when 0,
 * the runner's `msg` (NULL for none) says why. */
void lr_set_exit_result(struct lr_test *t, int exit_code, const char *msg);

/* The run's outer time limit in seconds: --run-timeout, or the sum of the
 * timeouts of the tests to run plus slack. */
double lr_run_time_limit(const struct lr_run *run);

/* execute.c (or execute_tsan.c) ----------------------------------------- */

/* Called by the watchdog when the outer time limit expires, with run->lock
 * held and stdout restored: writes whatever reports it can.  The process
 * then exits with LR_EXIT_FAILED. */
typedef void (*lr_emergency_fn)(struct lr_run *run);

/* Runs the tests marked to_run through Criterion and records their results.
 * Returns 0, or -1 after printing one line on stderr when the runner cannot
 * run them (a test of the registry that is not linked in). */
int lr_execute(struct lr_run *run, lr_emergency_fn emergency);

/* reports --------------------------------------------------------------- */

/* Writes the text report to `f`, ending with the closing line. */
void lr_report_text(const struct lr_run *run, FILE *f);

/* Writes the closing line alone: "conformance: N passed, N failed, N
 * skipped". */
void lr_report_closing_line(const struct lr_run *run, FILE *f);

/* Writes the JSON report to `path`.  Returns 0, or -1 after printing one
 * line on stderr. */
int lr_report_json(const struct lr_run *run, const char *path);

/* Writes the JUnit XML report to `path` (report_junit.c).  Returns 0, or -1
 * after printing one line on stderr. */
int lr_report_junit(const struct lr_run *run, const char *path);

/* Writes the TAP version 13 report to `path` (report_tap.c).  Returns 0, or
 * -1 after printing one line on stderr. */
int lr_report_tap(const struct lr_run *run, const char *path);

/* Opens a report file for writing; NULL after printing "cannot write the
 * FORMAT report PATH: why" on stderr. */
FILE *lr_report_open(enum lr_report_format format, const char *path);

/* Closes a report file opened by lr_report_open(); 0, or -1 after printing
 * one line on stderr when anything could not be written. */
int lr_report_close(FILE *f, enum lr_report_format format, const char *path);

/* Length of the valid UTF-8 sequence at `s` (1 to 4), or 0 if the bytes
 * there are not one (report_json.c). */
size_t lr_utf8_sequence(const unsigned char *s);

/* Writes `s` with runs of white space folded into single spaces, so that a
 * multi-line statement stays on one line. */
void lr_put_folded(FILE *f, const char *s);

#endif /* LSPEC_CONFORM_RUNNER_H */
