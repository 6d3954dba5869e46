/* tsan_shim/selftest.c - the shim's own tests: each test's name says what
 * the runner must report for it (pass_*, fail_*, crash_*, skip_*), and
 * selftest.cmake runs this executable and checks every line against that.
 * Proves that a failing assertion fails (with or without a message, from
 * any thread, whatever .exit_code says) and that its message reaches the
 * runner, that a skip (cr_skip_test, cr_skip) is reported as a skip and not
 * a pass, with its message, that .timeout kills, and that .signal,
 * .exit_code, .init and .fini mean what they mean in Criterion.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <pthread.h>
#include <signal.h>

TestSuite(shim_selftest, .timeout = 20);

static int fixture_ran;

static void set_fixture(void) { fixture_ran = 1; }

static void fini_marker(void) {
  fprintf(stderr, "shim-selftest: fini ran after the failure\n");
}

Test(shim_selftest, pass_asserts_with_and_without_message) {
  int one = 1;
  cr_assert(one);
  cr_assert(eq(int, one, 1));
  cr_assert(eq(int, one, 1), "with a message %d", one);
  cr_assert(not(eq(str, "a", "b")), "strings");
  cr_log_info("an info line %d", one);
  cr_log_warn("a warning line");
  cr_log_error("an error line");
}

Test(shim_selftest, fail_assert_with_message) {
  cr_assert(eq(int, 1, 2), "one is not %s", "two");
}

Test(shim_selftest, fail_assert_without_message) { cr_assert(eq(int, 1, 2)); }

static void *failing_thread(void *arg) {
  (void)arg;
  cr_assert(0, "from another thread");
  return NULL;
}

Test(shim_selftest, fail_assert_in_another_thread) {
  pthread_t t;
  cr_assert(eq(int, pthread_create(&t, NULL, failing_thread, NULL), 0));
  pthread_join(t, NULL);
}

/* The assertion decides, not the exit status it happens to leave. */
Test(shim_selftest, fail_assert_despite_matching_exit_code, .exit_code = 1) {
  cr_assert(0, "fails even though the test expects status 1");
}

Test(shim_selftest, fail_and_fini_still_runs, .fini = fini_marker) {
  cr_assert(0, "the teardown must still run");
}

Test(shim_selftest, pass_init_runs_first, .init = set_fixture) {
  cr_assert(eq(int, fixture_ran, 1), ".init ran before the body");
}

Test(shim_selftest, skip_with_message) {
  cr_skip_test("skipped on purpose %d", 42);
  cr_assert(0, "not reached");
}

/* Criterion's cr_skip, which the conformance harness uses for
 * UNSUPPORTED and UNRESOLVED: the message reaches the runner. */
Test(shim_selftest, skip_cr_skip_with_message) {
  cr_skip("UNSUPPORTED: cap=%s", "SIGNALS");
  cr_assert(0, "not reached");
}

Test(shim_selftest, pass_wider_comparisons) {
  int64_t big = INT64_C(1) << 40;
  long minus = -1;
  char c = 'x';
  cr_assert(eq(i64, big, INT64_C(1) << 40), "i64");
  cr_assert(lt(i64, -big, minus), "i64 against long");
  cr_assert(eq(long, minus, -1L), "long");
  cr_assert(eq(chr, c, 'x'), "chr");
  cr_assert(ne(ptr, &c, NULL), "ptr");
}

Test(shim_selftest, skip_without_message) {
  cr_skip_test();
  cr_assert(0, "not reached");
}

Test(shim_selftest, skip_disabled, .disabled = 1) {
  cr_assert(0, "a disabled test does not run");
}

Test(shim_selftest, crash_timeout, .timeout = 1) { sleep(30); }

Test(shim_selftest, pass_expected_signal, .signal = SIGUSR1) { raise(SIGUSR1); }

Test(shim_selftest, crash_wrong_signal, .signal = SIGUSR1) { raise(SIGUSR2); }

Test(shim_selftest, crash_unexpected_signal) { raise(SIGUSR2); }

Test(shim_selftest, fail_expected_signal_not_raised, .signal = SIGUSR1) {}

Test(shim_selftest, pass_expected_exit_code, .exit_code = 3) { exit(3); }

Test(shim_selftest, fail_wrong_exit_code, .exit_code = 3) { exit(4); }

Test(shim_selftest, fail_unexpected_exit) { exit(5); }
