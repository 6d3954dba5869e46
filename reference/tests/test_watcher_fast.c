/* test_watcher_fast.c - FastChildWatcher through the public table: the
 * context-manager rule, waitpid(-1) reaping every child (registered or
 * not: the page's warning that it may break other code), zombies kept
 * inside enter/exit and delivered inside add, the unknown-pid warnings, a
 * child reaped elsewhere never reported, replace/remove, the detach
 * warning, is_active, close, bad input and the 3.12 deprecation warning.
 */
#include "sigchld_test_helpers.h"

TestSuite(watcher_fast, .timeout = 60);

static lspec_watcher *fast_attached(lspec_loop *loop) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach: %s",
            I->last_error());
  return w;
}

static void fast_enter(lspec_watcher *w) {
  lspec_watcher *self = NULL;
  cr_assert(eq(int, I->watcher_enter(w, &self), LSPEC_OK), "enter");
  cr_assert(eq(ptr, self, w), "enter returns self");
  I->watcher_release(self);
}

static void fast_exit(lspec_watcher *w) {
  cr_assert(eq(int, I->watcher_exit(w), LSPEC_OK), "exit");
}

static const char *unknown_pid_text(int pid, int rc) {
  static char buf[128];
  snprintf(buf, sizeof buf,
           "Caught subprocess termination from unknown pid: %d -> %d", pid,
           rc);
  return buf;
}

/* A run_until predicate: some warning was seen. */
static int warned_once(void *arg) {
  (void)arg;
  return sw_count() > 0;
}

/* --- the context manager ------------------------------------------------------------- */

ONE_TEST(watcher_fast, add_outside_enter_exit_is_an_assertion_error) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST);
  struct wt_rec rec;
  int gate, pid = sw_spawn_gated(0, 0, &gate);

  (void)backend;
  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_E_ASSERTION), "outside the context manager");
  LT_ASSERT_MSG("Must use the context manager");
  fast_enter(w);
  fast_exit(w);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_E_ASSERTION), "after the exit too");
  sw_open_gate(gate);
  sw_reap(pid);
  wt_free(w);
}

/* --- delivery -------------------------------------------------------------------------- */

LOOP_TEST(watcher_fast, sigchld_delivers_each_returncode_once_synchronously) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct wt_rec rec[4];
  int pids[4], gates[4], i;
  const int codes[4] = {0, 3, 0, 0}, sigs[4] = {0, 0, SIGKILL, SIGTERM};
  const int want[4] = {0, 3, -SIGKILL, -SIGTERM};

  memset(rec, 0, sizeof rec);
  fast_enter(w);
  for (i = 0; i < 4; i++) {
    pids[i] = sw_spawn_gated(codes[i], sigs[i], &gates[i]);
    cr_assert(eq(int, I->watcher_add_child_handler(w, pids[i], wt_rec_cb,
                                                   &rec[i]), LSPEC_OK),
              "add %d: %s", i, I->last_error());
  }
  fast_exit(w);
  for (i = 0; i < 4; i++)
    sw_open_gate(gates[i]);
  sw_run_until_called(loop, rec, 4);
  lt_run_for(loop, 0.05);
  for (i = 0; i < 4; i++) {
    cr_assert(eq(int, atomic_load(&rec[i].calls), 1), "child %d: once", i);
    cr_assert(eq(int, rec[i].pid, pids[i]), "child %d: its pid", i);
    cr_assert(eq(int, rec[i].returncode, want[i]), "child %d: returncode", i);
    cr_assert(ne(int, pthread_equal(rec[i].thread, pthread_self()), 0),
              "child %d: in the loop's thread", i);
  }
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, reaps_a_child_it_never_registered) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct wt_rec rec;
  int gate, mine, other;

  memset(&rec, 0, sizeof rec);
  sw_install();
  fast_enter(w);
  mine = sw_spawn_gated(0, SIGKILL, &gate);
  cr_assert(eq(int, I->watcher_add_child_handler(w, mine, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  fast_exit(w);
  /* Somebody else's child, spawned outside the watcher. */
  other = wt_spawn_exit(7);
  wt_wait_exited(other);
  sw_open_gate(gate);
  sw_run_until_called(loop, &rec, 1);
  cr_assert(eq(int, rec.returncode, -SIGKILL), "the registered child");
  cr_assert(eq(int, wt_wait_reaped(other), 1),
            "the unregistered child was reaped too: its status is stolen "
            "(WAT-FAST-003)");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, unknown_pid_text(other, 7)),
               1), "and logged as an unknown pid (WAT-FAST-004)");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, attach_reaps_unrelated_zombies_at_once) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST);
  int other = wt_spawn_exit(2);

  sw_install();
  wt_wait_exited(other);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, sw_is_zombie(other), 0),
            "reaped inside attach_loop (WAT-FAST-009)");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, unknown_pid_text(other, 2)),
               1), "logged as unknown");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, a_callback_may_call_its_watcher) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct sw_reenter r1, r2;
  int gate, pid, dead;

  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  r1.w = r2.w = w;
  fast_enter(w);
  pid = sw_spawn_gated(2, 0, &gate);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, sw_reenter_cb, &r1),
               LSPEC_OK), "add");
  /* A zombie kept for a later add: reaped by a re-attach's pass. */
  dead = wt_spawn_exit(3);
  wt_wait_exited(dead);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "re-attach");
  cr_assert(eq(int, I->watcher_add_child_handler(w, dead, sw_reenter_cb, &r2),
               LSPEC_OK), "add the zombie");
  cr_assert(eq(int, atomic_load(&r2.calls), 1), "inside add");
  cr_assert(eq(int, r2.returncode, 3), "its code");
  fast_exit(w);
  sw_open_gate(gate);
  cr_assert(eq(int, I->loop_run_until(loop, sw_reenter_called, &r1, 10),
               LSPEC_OK), "run: %s", I->last_error());
  cr_assert(eq(int, r1.returncode, 2), "returncode");
  cr_assert(eq(int, r1.removed, 0), "taken before the call");
  cr_assert(eq(int, r1.active, 1), "is_active from the SIGCHLD callback");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- zombies inside enter/exit ------------------------------------------------------------ */

ONE_TEST(watcher_fast, a_zombie_reaped_before_registration_is_delivered_inside_add) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST);
  struct wt_rec rec;
  int pid;

  memset(&rec, 0, sizeof rec);
  sw_install();
  fast_enter(w);
  pid = wt_spawn_exit(4);
  wt_wait_exited(pid);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK),
            "attach: reaps it while a spawn is in progress");
  cr_assert(eq(int, sw_is_zombie(pid), 0), "reaped");
  cr_assert(eq(int, sw_count(), 0), "kept, not logged");
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  cr_assert(eq(int, atomic_load(&rec.calls), 1),
            "synchronously inside add (WAT-FAST-005)");
  cr_assert(eq(int, rec.returncode, 4), "with its code");
  fast_exit(w);
  cr_assert(eq(int, sw_count(), 0), "nothing left over at the exit");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, the_outermost_exit_logs_leftover_zombies) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST);
  char want[128];
  int a, b;

  sw_install();
  fast_enter(w);
  fast_enter(w);
  a = wt_spawn_exit(5);
  b = wt_spawn_signal(SIGKILL);
  wt_wait_exited(a);
  wt_wait_exited(b);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  fast_exit(w);
  cr_assert(eq(int, sw_count(), 0), "an inner exit keeps them");
  fast_exit(w);
  /* waitpid(-1) order is the kernel's; accept either. */
  snprintf(want, sizeof want,
           "Caught subprocesses termination from unknown pids: {%d: 5, %d: "
           "-9}", a, b);
  if (sw_seen(LSPEC_WARN_LOG_WARNING, want) == 0)
    snprintf(want, sizeof want,
             "Caught subprocesses termination from unknown pids: {%d: -9, "
             "%d: 5}", b, a);
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, want), 1),
            "the outermost exit logs str(dict) (WAT-FAST-006)");
  cr_assert(eq(int, sw_count(), 1), "once");
  fast_enter(w);
  fast_exit(w);
  cr_assert(eq(int, sw_count(), 1), "and forgets them");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- reaped elsewhere, replace, remove -------------------------------------------------------- */

ONE_TEST(watcher_fast, a_child_reaped_elsewhere_is_never_reported) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct wt_rec rec;
  int gate, pid;

  memset(&rec, 0, sizeof rec);
  sw_install();
  fast_enter(w);
  pid = sw_spawn_gated(0, 0, &gate);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  fast_exit(w);
  sw_open_gate(gate);
  sw_reap(pid); /* before the loop sees SIGCHLD */
  lt_run_for(loop, 0.1);
  cr_assert(eq(int, atomic_load(&rec.calls), 0),
            "never reported (WAT-FAST-007)");
  cr_assert(eq(int, sw_count(), 0), "no warning either");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1),
            "the handler stays registered");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, a_second_add_replaces_the_handler) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct wt_rec first, second;
  int gate, pid;

  memset(&first, 0, sizeof first);
  memset(&second, 0, sizeof second);
  fast_enter(w);
  pid = sw_spawn_gated(1, 0, &gate);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &first),
               LSPEC_OK), "add 1");
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &second),
               LSPEC_OK), "add 2");
  fast_exit(w);
  sw_open_gate(gate);
  sw_run_until_called(loop, &second, 1);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&first.calls), 0), "replaced");
  cr_assert(eq(int, atomic_load(&second.calls), 1), "once");
  cr_assert(eq(int, second.returncode, 1), "returncode");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, remove_answers_1_then_0_and_the_child_is_still_reaped) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct wt_rec rec;
  int gate, pid;

  memset(&rec, 0, sizeof rec);
  sw_install();
  fast_enter(w);
  pid = sw_spawn_gated(3, 0, &gate);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  fast_exit(w);
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1), "removed");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0), "nothing");
  sw_open_gate(gate);
  wt_wait_exited(pid);
  cr_assert(eq(int, I->loop_run_until(loop, warned_once, NULL, 10), LSPEC_OK),
            "run until the warning: %s", I->last_error());
  cr_assert(eq(int, sw_is_zombie(pid), 0), "still reaped (WAT-FAST-008)");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, unknown_pid_text(pid, 3)),
               1), "as an unknown pid");
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- attach, is_active, close ------------------------------------------------------------------ */

ONE_TEST(watcher_fast, detach_with_pending_handlers_warns_and_close_does_not) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = fast_attached(loop);
  struct wt_rec rec;
  int gate, pid;

  memset(&rec, 0, sizeof rec);
  sw_install();
  fast_enter(w);
  pid = sw_spawn_gated(0, 0, &gate);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  fast_exit(w);
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "detach");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_RUNTIME, "A loop is being detached "
                            "from a child watcher with pending handlers"), 1),
            "the RuntimeWarning");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "SIG_DFL after the detach");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, sw_count(), 1), "close never warns");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close twice");
  sw_open_gate(gate);
  sw_reap(pid);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  I->watcher_release(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, is_active_means_attached_to_a_running_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST);

  cr_assert(eq(int, I->watcher_is_active(w), 0), "detached");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, I->watcher_is_active(w), 0), "not running (C6)");
  cr_assert(eq(int, sw_is_active_while_running(loop, w), 1), "running");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_fast, bad_input) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_FAST), *out = NULL;
  struct wt_rec rec;

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_kind(w), LSPEC_WATCHER_FAST), "kind");
  cr_assert(eq(int, I->watcher_attach_loop(w, (lspec_loop *)w),
               LSPEC_E_ASSERTION), "a watcher is not a loop");
  cr_assert(eq(int, I->watcher_add_child_handler(w, -3, wt_rec_cb, &rec),
               LSPEC_E_VALUE), "pid -3");
  cr_assert(eq(int, I->watcher_add_child_handler(w, 77, NULL, &rec),
               LSPEC_E_TYPE), "no callback");
  cr_assert(eq(int, I->watcher_enter((lspec_watcher *)loop, &out),
               LSPEC_E_TYPE), "a loop is not a watcher");
  cr_assert(eq(int, I->watcher_exit(NULL), LSPEC_E_TYPE), "NULL");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close twice");
  I->watcher_release(w);
  lt_free_loop(loop);
}

/* --- the 3.12 deprecation ------------------------------------------------------------------------- */

ONE_TEST(watcher_fast, construction_warns_in_3_12_only) {
  lspec_watcher *w;
  (void)backend;
  sw_install();
  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_12), LSPEC_OK), "3.12");
  w = wt_new(LSPEC_WATCHER_FAST);
  cr_assert(eq(int, sw_seen(LSPEC_WARN_DEPRECATION,
                            "'FastChildWatcher' is deprecated as of Python "
                            "3.12 and will be removed in Python 3.14."), 1),
            "the DeprecationWarning (WAT-FAST-011)");
  wt_free(w);
}

ONE_TEST(watcher_fast, construction_is_silent_before_3_12) {
  lspec_watcher *w;
  (void)backend;
  sw_install();
  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_8), LSPEC_OK), "3.8");
  w = wt_new(LSPEC_WATCHER_FAST);
  cr_assert(eq(int, sw_count(), 0), "no warning");
  wt_free(w);
}
