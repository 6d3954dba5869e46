/* tsan_shim/shim_runner.h - the shim's runner (runner.c) as a library: runs
 * the tests registered through the shim's Test() (criterion/criterion.h),
 * each in a forked child with a timeout, and tells the caller how each one
 * ended.  main.c is its command line (reference/tests' unit tests, the
 * shim's self-test); the conformance suite's ThreadSanitizer variant
 * (conformance/runner/execute_tsan.c) drives it with its own plan, as
 * loopspec-conform drives Criterion.
 *
 * The runner never starts a thread, so it forks while it has a single one,
 * which ThreadSanitizer supports; callers must keep it so (no thread in the
 * calling process while lt_shim_run() runs).
 */
#ifndef LSPEC_TSAN_SHIM_RUNNER_H
#define LSPEC_TSAN_SHIM_RUNNER_H

#include "criterion/criterion.h"

/* How a test ended. */
enum lt_shim_outcome_kind {
  LT_SHIM_PASS = 0,
  LT_SHIM_FAIL,     /* a failed assertion, or a wrong exit status or signal */
  LT_SHIM_CRASH,    /* killed by a signal it was not expected to die of */
  LT_SHIM_TIMEOUT,  /* killed at its timeout */
  LT_SHIM_SKIP,     /* cr_skip / cr_skip_test */
  LT_SHIM_DISABLED  /* .disabled: not run */
};

struct lt_shim_outcome {
  enum lt_shim_outcome_kind kind;
  int asserted;        /* FAIL: a cr_assert failed (message says which) */
  int exit_status;     /* the child's exit status, or -1 if it did not exit */
  int signal;          /* the signal that killed it, or 0 */
  double timeout;      /* the timeout it ran under, in seconds */
  /* What happened, or NULL (PASS, a skip without a message): a failed
   * assertion as "file.c:LINE: message" (its expression when it had no
   * message), a skip's message, or the runner's own words otherwise.
   * Valid during the callback only. */
  const char *message;
};

/* A run.  Every callback is optional and is called on the calling thread,
 * except child_init, which runs in each test's child. */
struct lt_shim_run {
  int jobs; /* tests at once, 1 to LT_SHIM_MAX_JOBS */
  void *ctx;
  /* Whether to run `t`; may set *timeout (seconds, > 0) to override the
   * test's and its suite's.  NULL runs every test. */
  int (*select)(void *ctx, const struct lt_shim_test *t, double *timeout);
  /* `t`'s child was forked. */
  void (*started)(void *ctx, const struct lt_shim_test *t);
  /* `t` ended (or is disabled: never started). */
  void (*finished)(void *ctx, const struct lt_shim_test *t,
                   const struct lt_shim_outcome *o);
  /* In each test's child, before the fixtures. */
  void (*child_init)(void *ctx);
  /* CLOCK_MONOTONIC seconds (lt_shim_now()); 0 for none.  Past it, the
   * running tests are killed without a finished() call, no other test
   * starts, and lt_shim_run() returns 1. */
  double deadline;
};

#define LT_SHIM_MAX_JOBS 16

/* Runs the selected tests in registration order.  Returns 0 when every
 * selected test ended, 1 when the deadline stopped the run, -1 after
 * printing why on stderr when the runner could not start. */
int lt_shim_run(const struct lt_shim_run *run);

/* The registered tests, in registration order (follow ->next). */
const struct lt_shim_test *lt_shim_tests(void);

/* CLOCK_MONOTONIC, in seconds. */
double lt_shim_now(void);

/* The timeout a test runs under unless select() says otherwise: its own,
 * else its suite's, else the runner's default (120 s). */
double lt_shim_default_timeout(const struct lt_shim_test *t);

/* The suite's options (all zero for a suite without TestSuite()). */
const struct lt_shim_options *lt_shim_suite_options(const char *suite);

#endif /* LSPEC_TSAN_SHIM_RUNNER_H */
