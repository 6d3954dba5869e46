/* outcome.c - what the end of a test means for its result, and the run's
 * outer time limit: the part of running the tests that does not depend on
 * what runs them.  Shared by execute.c (Criterion) and execute_tsan.c (the
 * ThreadSanitizer variant, through reference/tests/tsan_shim), so that both
 * turn a skip, an exit and the time limit into the same results.
 */
#include "runner.h"

#include <string.h>

/* Slack added to the sum of the tests' timeouts to make the outer limit:
 * per test for starting a worker (slow under valgrind), and once. */
#define LR_GUARD_PER_TEST 5.0
#define LR_GUARD_MARGIN 60.0

void lr_set_skip_result(struct lr_test *t, const char *msg) {
  static const char unsupported[] = "UNSUPPORTED:";
  static const char unresolved[] = "UNRESOLVED:";
  const char *m = msg != NULL ? msg : "";

  if (strncmp(m, unsupported, sizeof unsupported - 1) == 0)
    lr_set_result(t, LR_UNSUPPORTED, "%s", m);
  else if (strncmp(m, unresolved, sizeof unresolved - 1) == 0)
    lr_set_result(t, LR_UNRESOLVED, "%s", m);
  else
    lr_set_result(t, LR_UNRESOLVED,
                  "UNRESOLVED: skipped without a result code: %s",
                  m[0] ? m : "(no message)");
}

void lr_set_exit_result(struct lr_test *t, int exit_code, const char *msg) {
  if (exit_code == LR_HARNESS_EXIT_GUARD)
    lr_set_result(t, LR_FAIL,
                  "the test process exited with status %d: something "
                  "called exit() before the test ended (the harness's "
                  "exit guard)",
                  exit_code);
  else if (exit_code != 0)
    lr_set_result(t, LR_FAIL, "the test process exited with status %d",
                  exit_code);
  else
    lr_set_result(t, LR_FAIL, "failed%s%s", msg ? ": " : "", msg ? msg : "");
}

double lr_run_time_limit(const struct lr_run *run) {
  double secs = run->opt.run_timeout;
  size_t i;

  if (secs <= 0) {
    secs = LR_GUARD_MARGIN;
    for (i = 0; i < run->ntests; i++)
      if (run->tests[i].to_run)
        secs += run->tests[i].timeout + LR_GUARD_PER_TEST;
  }
  return secs;
}
