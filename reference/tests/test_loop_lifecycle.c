/* test_loop_lifecycle.c - the loop's life: loop_new and its backends,
 * reference counting, close and what a closed loop still answers, the
 * clock, and the wrong-handle case of every loop entry.
 */
#include "loop_helpers.h"

#include "internal.h"

#include <fcntl.h>
#include <stdio.h>

TestSuite(loop_life, .timeout = 30);

/* --- creation ------------------------------------------------------------- */

ONE_TEST(loop_life, new_accepts_every_backend) {
  int backends[] = {LSPEC_BACKEND_DEFAULT, LSPEC_BACKEND_EPOLL,
                    LSPEC_BACKEND_POLL};
  size_t i;
  (void)backend;
  for (i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    lspec_loop *loop = lt_new_loop(backends[i]);
    cr_assert(eq(int, I->loop_is_running(loop), 0), "a new loop is stopped");
    cr_assert(eq(int, I->loop_is_closed(loop), 0), "a new loop is open");
    lt_free_loop(loop);
  }
}

ONE_TEST(loop_life, new_rejects_unknown_backend_and_null_out) {
  lspec_loop *loop = (lspec_loop *)&loop; /* any non-NULL garbage */
  (void)backend;
  cr_assert(eq(int, I->loop_new(3, &loop), LSPEC_E_VALUE), "backend 3");
  cr_assert(eq(ptr, loop, NULL), "out is cleared on failure");
  cr_assert(eq(int, I->loop_new(-1, &loop), LSPEC_E_VALUE), "backend -1");
  cr_assert(eq(int, I->loop_new(LSPEC_BACKEND_EPOLL, NULL), LSPEC_E_VALUE),
            "NULL out");
}

ONE_TEST(loop_life, descriptors_are_close_on_exec) {
  static char open_before[4096];
  lspec_loop *loop;
  int fd, fresh = 0;
  (void)backend;
  for (fd = 0; fd < 4096; fd++)
    open_before[fd] = fcntl(fd, F_GETFD) >= 0;
  loop = lt_new_loop(LSPEC_BACKEND_EPOLL);
  /* Exactly two new descriptors (eventfd, epoll), both FD_CLOEXEC. */
  for (fd = 0; fd < 4096; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || open_before[fd])
      continue;
    fresh++;
    cr_assert(ne(int, flags & FD_CLOEXEC, 0), "fd %d lacks FD_CLOEXEC", fd);
  }
  cr_assert(eq(int, fresh, 2), "a loop holds exactly two descriptors");
  lt_free_loop(loop);
}

/* --- reference counting ---------------------------------------------------- */

static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static int resource_warnings;
static char last_warning[256];

static void record_warning(void *user, int category, const char *text) {
  (void)user;
  pthread_mutex_lock(&warn_lock);
  if (category == LSPEC_WARN_RESOURCE) {
    resource_warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", text);
  }
  pthread_mutex_unlock(&warn_lock);
}

ONE_TEST(loop_life, retain_and_release_balance) {
  lspec_loop *loop = lt_new_loop(backend);
  I->loop_retain(loop);
  I->loop_retain(loop);
  I->loop_release(loop);
  I->loop_release(loop);
  cr_assert(eq(int, I->loop_is_closed(loop), 0), "still alive and open");
  lt_free_loop(loop); /* the last reference; valgrind checks the free */
}

ONE_TEST(loop_life, retain_and_release_ignore_bad_handles) {
  struct lspec__obj fake = {LSPEC__KIND_WATCHER, 1};
  (void)backend;
  I->loop_retain(NULL);
  I->loop_release(NULL);
  I->loop_retain((lspec_loop *)&fake);
  I->loop_release((lspec_loop *)&fake);
  cr_assert(eq(u32, atomic_load(&fake.refs), 1u), "a foreign count is "
                                                   "left alone");
}

ONE_TEST(loop_life, last_release_of_an_open_loop_warns_and_closes) {
  lspec_loop *loop;
  I->set_warning_hook(record_warning, NULL);
  loop = lt_new_loop(backend);
  I->loop_release(loop); /* descriptors must be gone: lt_run checks */
  cr_assert(eq(int, resource_warnings, 1), "one ResourceWarning");
  cr_assert(eq(str, last_warning,
               "unclosed event loop <_UnixSelectorEventLoop running=False "
               "closed=False debug=False>"),
            "CPython's BaseEventLoop.__del__ text");
  I->set_warning_hook(NULL, NULL);
}

ONE_TEST(loop_life, closed_loop_released_without_warning) {
  I->set_warning_hook(record_warning, NULL);
  lt_free_loop(lt_new_loop(backend));
  cr_assert(eq(int, resource_warnings, 0), "no warning for a closed loop");
  I->set_warning_hook(NULL, NULL);
}

static void release_and_stop(void *arg) {
  lspec_loop *loop = arg;
  cr_assert(eq(int, I->loop_close(loop), LSPEC_E_RUNTIME), "running");
  I->loop_stop(loop);
  I->loop_release(loop); /* the caller's last reference */
  /* The run holds its own: the loop must still work here. */
  cr_assert(eq(int, I->loop_is_running(loop), 1), "still running");
}

ONE_TEST(loop_life, last_release_during_a_run_waits_for_the_run) {
  lspec_loop *loop = lt_new_loop(backend);
  I->set_warning_hook(record_warning, NULL);
  cr_assert(eq(int, I->loop_call_soon(loop, release_and_stop, loop, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, I->loop_run_forever(loop), LSPEC_OK), "run_forever: %s",
            I->last_error());
  /* The loop is gone now (valgrind and lt_run check that nothing leaked);
   * it was open, so its end warned. */
  cr_assert(eq(int, resource_warnings, 1), "the unclosed loop warned");
  I->set_warning_hook(NULL, NULL);
}

/* --- close ------------------------------------------------------------------ */

LOOP_TEST(loop_life, close_twice_is_harmless) {
  lspec_loop *loop = lt_new_loop(backend);
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "first close");
  cr_assert(eq(int, I->loop_is_closed(loop), 1), "closed");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "second close");
  cr_assert(eq(int, I->loop_is_closed(loop), 1), "still closed");
  I->loop_release(loop);
}

LOOP_TEST(loop_life, close_drops_callbacks_and_timers_uncalled) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  lspec_handle_id id;
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, I->loop_call_soon_threadsafe(loop, lt_count_cb, &calls,
                                                 NULL), LSPEC_OK), "ts");
  cr_assert(eq(int, I->loop_call_later(loop, 0, lt_count_cb, &calls, &id),
               LSPEC_OK), "call_later 0");
  cr_assert(eq(int, I->loop_call_later(loop, 100, lt_count_cb, &calls, NULL),
               LSPEC_OK), "call_later 100");
  lt_free_loop(loop);
  cr_assert(eq(int, calls, 0), "close must not run anything");
}

LOOP_TEST(loop_life, closed_loop_refuses_work_and_answers_the_rest) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_handle_id id = 77;
  int calls = 0, p[2];

  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close");

  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, &id),
               LSPEC_E_RUNTIME), "call_soon");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(u64, id, 0), "no id on failure");
  cr_assert(eq(int, I->loop_call_soon_threadsafe(loop, lt_count_cb, &calls,
                                                 NULL), LSPEC_E_RUNTIME),
            "call_soon_threadsafe");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, I->loop_call_later(loop, 0.0, lt_count_cb, &calls, NULL),
               LSPEC_E_RUNTIME), "call_later");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_E_RUNTIME), "add_reader");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &calls), LSPEC_E_RUNTIME),
            "add_signal_handler");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, I->loop_run_forever(loop), LSPEC_E_RUNTIME), "run");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, I->loop_run_until(loop, NULL, NULL, 0.01),
               LSPEC_E_RUNTIME), "run_until");
  LT_ASSERT_MSG("Event loop is closed");

  /* What does not need an open loop still answers, as in CPython. */
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 0), "remove_reader");
  cr_assert(eq(int, I->loop_remove_reader(loop, -1), 0),
            "closed answers 0 before looking at the fd");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 0),
            "remove_signal_handler");
  cr_assert(eq(int, I->loop_cancel(loop, 5), LSPEC_OK), "cancel");
  cr_assert(eq(int, I->loop_stop(loop), LSPEC_OK), "stop");
  cr_assert(le(dbl, 0.0, I->loop_time(loop)), "time");
  cr_assert(eq(int, I->loop_is_running(loop), 0), "is_running");
  cr_assert(eq(int, calls, 0), "no callback ran");
  /* The caller's descriptors are the caller's: close left them open. */
  cr_assert(le(int, 0, fcntl(p[0], F_GETFD)), "pipe still open");
  close(p[0]);
  close(p[1]);
  I->loop_release(loop);
}

static void try_close(void *arg) {
  lspec_loop *loop = arg;
  cr_assert(eq(int, I->loop_close(loop), LSPEC_E_RUNTIME), "close running");
  LT_ASSERT_MSG("Cannot close a running event loop");
  I->loop_stop(loop);
}

LOOP_TEST(loop_life, close_while_running_fails) {
  lspec_loop *loop = lt_new_loop(backend);
  cr_assert(eq(int, I->loop_call_soon(loop, try_close, loop, NULL), LSPEC_OK),
            "call_soon");
  cr_assert(eq(int, I->loop_run_forever(loop), LSPEC_OK), "run");
  cr_assert(eq(int, I->loop_is_closed(loop), 0), "the failed close did "
                                                 "nothing");
  lt_free_loop(loop);
}

/* --- clock ------------------------------------------------------------------ */

ONE_TEST(loop_life, time_is_clock_monotonic_in_seconds) {
  lspec_loop *loop = lt_new_loop(backend);
  struct timespec ts;
  double a, b, mono;

  a = I->loop_time(loop);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  mono = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  b = I->loop_time(loop);
  cr_assert(le(dbl, a, mono), "time <= CLOCK_MONOTONIC read after it");
  cr_assert(le(dbl, mono, b), "CLOCK_MONOTONIC <= time read after it");
  cr_assert(lt(dbl, I->loop_time(NULL), 0.0), "bad handle: negative");
  lt_free_loop(loop);
}

/* --- every entry refuses what is not a loop ------------------------------- */

static int never(void *arg) {
  (void)arg;
  return 1;
}

static void check_refuses(lspec_loop *bad, const char *what) {
  int calls = 0;
  lspec_handle_id id = 9;

#define REFUSED(expr)                                                          \
  do {                                                                         \
    cr_assert(eq(int, (expr), LSPEC_E_TYPE), "%s: %s", what, #expr);          \
    LT_ASSERT_MSG("loop must be an event loop handle");                        \
  } while (0)

  REFUSED(I->loop_run_forever(bad));
  REFUSED(I->loop_run_until(bad, never, NULL, 1.0));
  REFUSED(I->loop_stop(bad));
  REFUSED(I->loop_close(bad));
  REFUSED(I->loop_is_running(bad));
  REFUSED(I->loop_is_closed(bad));
  REFUSED(I->loop_call_soon(bad, lt_count_cb, &calls, &id));
  cr_assert(eq(u64, id, 0), "%s: id cleared", what);
  REFUSED(I->loop_call_soon_threadsafe(bad, lt_count_cb, &calls, NULL));
  REFUSED(I->loop_call_later(bad, 0.0, lt_count_cb, &calls, NULL));
  REFUSED(I->loop_cancel(bad, 1));
  REFUSED(I->loop_add_reader(bad, 0, lt_count_cb, &calls));
  REFUSED(I->loop_remove_reader(bad, 0));
  REFUSED(I->loop_add_signal_handler(bad, SIGUSR1, lt_count_cb, &calls));
  REFUSED(I->loop_remove_signal_handler(bad, SIGUSR1));
  cr_assert(lt(dbl, I->loop_time(bad), 0.0), "%s: time", what);
  cr_assert(eq(int, calls, 0), "%s: nothing ran", what);
#undef REFUSED
}

ONE_TEST(loop_life, every_entry_refuses_a_non_loop) {
  struct lspec__obj fake_watcher = {LSPEC__KIND_WATCHER, 1};
  lspec_policy *policy;
  (void)backend;
  check_refuses(NULL, "NULL");
  check_refuses((lspec_loop *)&fake_watcher, "a watcher");
  cr_assert(eq(int, I->policy_new_default(&policy), LSPEC_OK), "policy");
  check_refuses((lspec_loop *)policy, "a policy");
  I->policy_release(policy);
}

/* --- fork ------------------------------------------------------------------------ */

/* Exit statuses of the forked child (it must not call Criterion). */
enum { CHILD_PASS = 0, CHILD_FAIL = 1 };

static void fork_inside(void *arg) {
  int *status = arg;
  lspec_loop *running = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    /* The child's only thread forked from inside a callback: no loop runs
     * here, so get_running_loop fails. */
    lt_child_exit(I->get_running_loop(&running) == LSPEC_E_RUNTIME
                      ? CHILD_PASS
                      : CHILD_FAIL);
  }
  if (pid > 0)
    waitpid(pid, status, 0);
}

ONE_TEST(loop_life, a_forked_child_has_no_running_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  int status = -1;
  cr_assert(eq(int, I->loop_call_soon(loop, fork_inside, &status, NULL),
               LSPEC_OK), "call_soon");
  lt_one_iteration(loop);
  cr_assert(eq(int, WIFEXITED(status), 1), "the child exited");
  cr_assert(eq(int, WEXITSTATUS(status), CHILD_PASS),
            "get_running_loop in the child must fail");
  lt_free_loop(loop);
}

ONE_TEST(loop_life, fork_does_not_freeze_the_profile_of_the_child) {
  pid_t pid;
  int status = -1;
  (void)backend;
  pid = fork();
  if (pid == 0)
    lt_child_exit(I->set_profile(LSPEC_PROFILE_3_8) == LSPEC_OK ? CHILD_PASS
                                                                : CHILD_FAIL);
  cr_assert(lt(int, 0, pid), "fork");
  waitpid(pid, &status, 0);
  cr_assert(eq(int, WEXITSTATUS(status), CHILD_PASS),
            "the child may still choose its profile");
}
