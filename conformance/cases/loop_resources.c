/* loop_resources.c - loop clauses about operating-system resources: the
 * descriptors a loop holds and the signal dispositions its handlers set.
 * These look at the process itself (/proc/self/fd, sigaction), which a step
 * list cannot.
 */
#include <signal.h>
#include <string.h>

#include "harness.h"

/* --- LOOP-CLOSE-004 ----------------------------------------------------------- */

static void exercise(lspec_loop *l) {
  lh_counter c = {0};
  LH_OK(lh_impl->loop_call_soon(l, lh_counter_cb, &c, NULL));
  LH_OK(lh_impl->loop_call_later(l, 0.001, lh_counter_cb, &c, NULL));
  lh_run_until_count(l, &c, 2, 5.0, "running the loop once");
}

/*--- test: close_releases_descriptors clauses: [LOOP-CLOSE-004] timeout: 10 ---*/
LH_TEST(loop, close_releases_descriptors) {
  int before = lh_fd_count(), after;
  lspec_loop *l1 = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lspec_loop *l2 = NULL;
  int rc = lh_impl->new_event_loop(&l2);

  lh_expect_out(rc, LSPEC_OK, NULL, LH_LOOP, l2, "new_event_loop()");
  exercise(l1);
  exercise(l2);
  LH_OK(lh_impl->loop_close(l1));
  LH_OK(lh_impl->loop_close(l2));
  after = lh_fd_count();
  lh_check_int(after, before, "open descriptors",
               "after closing the loops (loop_close, before release)");
}

/* --- signal dispositions -------------------------------------------------------- */

static int is_default(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  if (sigaction(sig, NULL, &sa) != 0)
    return -1;
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

/*--- test: remove_signal_handler_restores_default clauses: [LOOP-SIG-005] timeout: 10 ---*/
LH_TEST(loop, remove_signal_handler_restores_default) {
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lh_counter c = {0};

  lh_check_int(is_default(SIGUSR1), 1, "SIGUSR1 is SIG_DFL",
               "before the test (the worker's state)");
  lh_check_int(lh_impl->loop_remove_signal_handler(l, SIGUSR1), 0,
               "loop_remove_signal_handler(l, SIGUSR1)", "with no handler");
  LH_OK(lh_impl->loop_add_signal_handler(l, SIGUSR1, lh_counter_cb, &c));
  lh_check_int(is_default(SIGUSR1), 0, "SIGUSR1 is SIG_DFL",
               "while the loop has a handler for it");
  lh_check_int(lh_impl->loop_remove_signal_handler(l, SIGUSR1), 1,
               "loop_remove_signal_handler(l, SIGUSR1)", "with a handler");
  lh_check_int(is_default(SIGUSR1), 1, "SIGUSR1 is SIG_DFL",
               "after remove_signal_handler");
  lh_check_int(lh_impl->loop_remove_signal_handler(l, SIGUSR1), 0,
               "loop_remove_signal_handler(l, SIGUSR1)", "a second time");
  lh_check_int(lh_counter_get(&c), 0, "count(c)", "the removed handler");
}

/*--- test: close_restores_signal_dispositions clauses: [LOOP-SIG-007, LOOP-CLOSE-004] timeout: 10 ---*/
LH_TEST(loop, close_restores_signal_dispositions) {
  int before = lh_fd_count();
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lh_counter c = {0};

  LH_OK(lh_impl->loop_add_signal_handler(l, SIGUSR1, lh_counter_cb, &c));
  LH_OK(lh_impl->loop_add_signal_handler(l, SIGUSR2, lh_counter_cb, &c));
  lh_check_int(is_default(SIGUSR1), 0, "SIGUSR1 is SIG_DFL",
               "while the loop has a handler for it");
  /* The handlers work before close. */
  raise(SIGUSR2);
  lh_run_until_count(l, &c, 1, 5.0, "running until the SIGUSR2 handler ran");
  LH_OK(lh_impl->loop_close(l));
  lh_check_int(is_default(SIGUSR1), 1, "SIGUSR1 is SIG_DFL",
               "after loop_close");
  lh_check_int(is_default(SIGUSR2), 1, "SIGUSR2 is SIG_DFL",
               "after loop_close");
  lh_check_int(lh_fd_count(), before, "open descriptors",
               "after closing a loop that had signal handlers");
}
