/* test_watcher_safe.c - SafeChildWatcher through the public table: the
 * SIGCHLD handler on the attached loop, synchronous delivery (on SIGCHLD,
 * inside add, inside attach), the O(n) poll that never reaps a child it was
 * not given, replace/remove, the detach warning, is_active, close, the
 * no-loop AttributeError (WAT-SAFE-003), the 255 convention, bad input and
 * the 3.12 deprecation warning.
 */
#include "sigchld_test_helpers.h"

TestSuite(watcher_safe, .timeout = 60);

static lspec_watcher *safe_attached(lspec_loop *loop) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach: %s",
            I->last_error());
  return w;
}

/* --- delivery ------------------------------------------------------------------ */

LOOP_TEST(watcher_safe, sigchld_delivers_each_returncode_once_synchronously) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec[5];
  int pids[5], gates[5], i;
  const int codes[5] = {0, 3, 255, 0, 0}, sigs[5] = {0, 0, 0, SIGKILL, SIGTERM};
  const int want[5] = {0, 3, 255, -SIGKILL, -SIGTERM};

  memset(rec, 0, sizeof rec);
  for (i = 0; i < 5; i++)
    pids[i] = sw_spawn_gated(codes[i], sigs[i], &gates[i]);
  for (i = 0; i < 5; i++)
    cr_assert(eq(int, I->watcher_add_child_handler(w, pids[i], wt_rec_cb,
                                                   &rec[i]), LSPEC_OK),
              "add %d: %s", i, I->last_error());
  for (i = 0; i < 5; i++)
    sw_open_gate(gates[i]);
  for (i = 0; i < 5; i++)
    wt_wait_exited(pids[i]);
  cr_assert(eq(int, atomic_load(&rec[0].calls), 0),
            "nothing until the loop runs its SIGCHLD callback");
  sw_run_until_called(loop, rec, 5);
  lt_run_for(loop, 0.05); /* room for a second, wrong delivery */
  wt_assert_each_once(rec, pids, want, 5);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, a_dead_child_is_delivered_inside_add) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec;
  int pid = wt_spawn_exit(9);

  memset(&rec, 0, sizeof rec);
  wt_wait_exited(pid);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add: %s", I->last_error());
  cr_assert(eq(int, atomic_load(&rec.calls), 1),
            "synchronously, inside add_child_handler (WAT-SAFE-001)");
  cr_assert(eq(int, rec.returncode, 9), "returncode");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0),
            "the handler is gone once called");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, attach_reaps_at_once_what_exited_while_detached) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "a live child registers without a loop");
  kill(pid, SIGKILL);
  wt_wait_exited(pid);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "nothing while detached");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, atomic_load(&rec.calls), 1),
            "delivered synchronously inside attach_loop (WAT-BASE-002)");
  cr_assert(eq(int, rec.returncode, -SIGKILL), "returncode");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, a_callback_may_call_its_watcher) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct sw_reenter r1, r2;
  int gate, pid = sw_spawn_gated(2, 0, &gate), dead = wt_spawn_exit(3);

  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  r1.w = r2.w = w;
  /* From the SIGCHLD callback... */
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, sw_reenter_cb, &r1),
               LSPEC_OK), "add");
  sw_open_gate(gate);
  cr_assert(eq(int, I->loop_run_until(loop, sw_reenter_called, &r1, 10),
               LSPEC_OK), "run: %s", I->last_error());
  cr_assert(eq(int, r1.returncode, 2), "returncode");
  cr_assert(eq(int, r1.removed, 0), "its handler was taken before the call");
  cr_assert(eq(int, r1.active, 1), "is_active inside the running loop");
  /* ...and from inside add. */
  wt_wait_exited(dead);
  cr_assert(eq(int, I->watcher_add_child_handler(w, dead, sw_reenter_cb, &r2),
               LSPEC_OK), "add");
  cr_assert(eq(int, atomic_load(&r2.calls), 1), "inside add");
  cr_assert(eq(int, r2.active, 0), "the loop is not running");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- who is reaped ----------------------------------------------------------------- */

ONE_TEST(watcher_safe, never_reaps_a_child_it_was_not_given) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec;
  int other = wt_spawn_exit(4), mine = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  wt_wait_exited(other);
  cr_assert(eq(int, I->watcher_add_child_handler(w, mine, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  kill(mine, SIGKILL);
  sw_run_until_called(loop, &rec, 1);
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK),
            "re-attach: another full pass");
  cr_assert(eq(int, sw_is_zombie(other), 1),
            "the unregistered child is left alone (WAT-SAFE-002)");
  sw_reap(other);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, reaped_elsewhere_or_not_a_child_gives_255) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec[2];
  int pid = wt_spawn_sleeper();

  memset(rec, 0, sizeof rec);
  sw_install();
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec[0]),
               LSPEC_OK), "add");
  /* Someone else reaps it before the loop looks. */
  kill(pid, SIGKILL);
  sw_reap(pid);
  sw_run_until_called(loop, &rec[0], 1);
  cr_assert(eq(int, rec[0].returncode, 255), "255 for a stolen status");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, sw_unknown_text(pid)), 1),
            "with the warning");
  /* pid 1 is not our child: 255 at once, inside add. */
  cr_assert(eq(int, I->watcher_add_child_handler(w, 1, wt_rec_cb, &rec[1]),
               LSPEC_OK), "add(1)");
  cr_assert(eq(int, atomic_load(&rec[1].calls), 1), "inside add");
  cr_assert(eq(int, rec[1].returncode, 255), "255 for pid 1");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, sw_unknown_text(1)), 1),
            "warning for pid 1");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- no loop: CPython's AttributeError (WAT-SAFE-003) ----------------------------------- */

ONE_TEST(watcher_safe, no_loop_and_a_dead_child_is_an_attribute_error_then_255) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE);
  struct wt_rec rec;
  int pid = wt_spawn_exit(6);

  memset(&rec, 0, sizeof rec);
  sw_install();
  wt_wait_exited(pid);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_E_ATTRIBUTE), "CPython's AttributeError");
  LT_ASSERT_MSG("'NoneType' object has no attribute 'get_debug'");
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "not called");
  cr_assert(eq(int, sw_is_zombie(pid), 0), "but the child was reaped");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, atomic_load(&rec.calls), 1),
            "the kept handler is reported by the attach");
  cr_assert(eq(int, rec.returncode, 255), "with 255: the code was lost");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, sw_unknown_text(pid)), 1),
            "and the Unknown child warning");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- replace and remove ----------------------------------------------------------------- */

ONE_TEST(watcher_safe, a_second_add_replaces_the_handler) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec first, second;
  int pid = wt_spawn_sleeper();

  memset(&first, 0, sizeof first);
  memset(&second, 0, sizeof second);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &first),
               LSPEC_OK), "add 1");
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &second),
               LSPEC_OK), "add 2");
  kill(pid, SIGKILL);
  sw_run_until_called(loop, &second, 1);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&first.calls), 0), "the first is replaced");
  cr_assert(eq(int, atomic_load(&second.calls), 1), "the second runs once");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, remove_answers_1_then_0_and_leaves_a_zombie) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1), "removed");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0), "nothing");
  kill(pid, SIGKILL);
  wt_wait_exited(pid);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  cr_assert(eq(int, sw_is_zombie(pid), 1),
            "the child stays a zombie (WAT-SAFE-004)");
  sw_reap(pid);
  wt_free(w);
  lt_free_loop(loop);
}

/* --- attach, detach, is_active, close ------------------------------------------------------ */

ONE_TEST(watcher_safe, attach_installs_sigchld_and_detach_restores_the_default) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE);

  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "nothing installed by the constructor");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(ne(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "the loop's handler is installed");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGCHLD), 1),
            "through loop.add_signal_handler");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "again");
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "detach");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "SIG_DFL after the detach");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGCHLD), 0),
            "the loop has no handler left");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, moving_to_another_loop_moves_the_handler) {
  lspec_loop *a = lt_new_loop(backend), *b = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(a);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  sw_install();
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_attach_loop(w, b), LSPEC_OK), "to b");
  cr_assert(eq(int, sw_count(), 0), "moving is not detaching: no warning");
  kill(pid, SIGKILL);
  sw_run_until_called(b, &rec, 1);
  cr_assert(eq(int, rec.returncode, -SIGKILL), "through b");
  wt_free(w);
  lt_free_loop(a);
  lt_free_loop(b);
}

ONE_TEST(watcher_safe, detaching_with_pending_handlers_warns) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  sw_install();
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "detach");
  cr_assert(eq(int, sw_count(), 0), "nothing pending: no warning");
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK),
            "detach again");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "detach");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_RUNTIME, "A loop is being detached "
                            "from a child watcher with pending handlers"), 1),
            "the RuntimeWarning");
  cr_assert(eq(int, sw_count(), 1), "once");
  /* close drops the handler without the warning. */
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, sw_count(), 1), "close never warns (WAT-BASE-006)");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0),
            "close dropped the handler");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "close detached");
  kill(pid, SIGKILL);
  sw_reap(pid);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close twice");
  I->watcher_release(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, is_active_means_attached_to_a_running_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE);

  cr_assert(eq(int, I->watcher_is_active(w), 0), "detached");
  cr_assert(eq(int, sw_is_active_while_running(loop, w), 0),
            "detached, even with a loop running");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "attach");
  cr_assert(eq(int, I->watcher_is_active(w), 0), "attached, not running (C6)");
  cr_assert(eq(int, sw_is_active_while_running(loop, w), 1),
            "attached and running");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, sw_is_active_while_running(loop, w), 0), "closed");
  I->watcher_release(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, a_closed_loop_stops_the_watcher_and_cannot_be_attached) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);

  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close the loop");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "the loop's close restored SIGCHLD (WAT-BASE-007)");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_E_RUNTIME),
            "add_signal_handler on a closed loop");
  wt_free(w);
  I->loop_release(loop);
}

/* attach_loop called from another thread. */
struct attach_arg {
  lspec_watcher *w; /* the watcher */
  lspec_loop *loop; /* the loop to attach */
  int rc;           /* what attach_loop returned */
};

static void *attach_thread(void *p) {
  struct attach_arg *arg = p;
  arg->rc = I->watcher_attach_loop(arg->w, arg->loop);
  return NULL;
}

ONE_TEST(watcher_safe, attach_from_another_thread_fails_and_changes_nothing) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE);
  struct attach_arg arg = {w, loop, 0};
  pthread_t t;

  cr_assert(eq(int, pthread_create(&t, NULL, attach_thread, &arg), 0),
            "thread");
  pthread_join(t, NULL);
  cr_assert(eq(int, arg.rc, LSPEC_E_RUNTIME),
            "add_signal_handler outside the main thread (WAT-BASE-003)");
  cr_assert(eq(int, sw_is_active_while_running(loop, w), 0),
            "still detached");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "nothing installed");
  wt_free(w);
  lt_free_loop(loop);
}

/* --- bad input --------------------------------------------------------------------------------- */

ONE_TEST(watcher_safe, bad_input) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_SAFE), *out = NULL;
  struct wt_rec rec;

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_kind(w), LSPEC_WATCHER_SAFE), "kind");
  cr_assert(eq(int, I->watcher_attach_loop(w, (lspec_loop *)w),
               LSPEC_E_ASSERTION), "a watcher is not a loop");
  cr_assert(eq(int, I->watcher_add_child_handler(w, 0, wt_rec_cb, &rec),
               LSPEC_E_VALUE), "pid 0");
  cr_assert(eq(int, I->watcher_add_child_handler(w, 12345, NULL, &rec),
               LSPEC_E_TYPE), "no callback");
  cr_assert(eq(int, I->watcher_add_child_handler(NULL, 1, wt_rec_cb, &rec),
               LSPEC_E_TYPE), "NULL watcher");
  cr_assert(eq(int, I->watcher_attach_loop((lspec_watcher *)loop, loop),
               LSPEC_E_TYPE), "a loop is not a watcher");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, 12345), 0),
            "nothing registered");
  cr_assert(eq(int, I->watcher_enter(w, &out), LSPEC_OK), "enter");
  cr_assert(eq(ptr, out, w), "enter returns self");
  cr_assert(eq(int, I->watcher_exit(w), LSPEC_OK), "exit");
  I->watcher_release(out);
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close twice");
  I->watcher_release(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_safe, release_while_attached_leaves_nothing_behind) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = safe_attached(loop);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_OK), "add");
  I->watcher_release(w); /* the last release closes */
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "detached by the release");
  kill(pid, SIGKILL);
  sw_reap(pid);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  lt_free_loop(loop);
}

/* --- the 3.12 deprecation -------------------------------------------------------------------------- */

ONE_TEST(watcher_safe, construction_warns_in_3_12_only) {
  lspec_watcher *w;
  (void)backend;
  sw_install();
  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_12), LSPEC_OK), "3.12");
  w = wt_new(LSPEC_WATCHER_SAFE);
  cr_assert(eq(int, sw_seen(LSPEC_WARN_DEPRECATION,
                            "'SafeChildWatcher' is deprecated as of Python "
                            "3.12 and will be removed in Python 3.14."), 1),
            "the DeprecationWarning (WAT-SAFE-006)");
  wt_free(w);
}

ONE_TEST(watcher_safe, construction_is_silent_before_3_12) {
  lspec_watcher *w;
  (void)backend;
  sw_install();
  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_11), LSPEC_OK), "3.11");
  w = wt_new(LSPEC_WATCHER_SAFE);
  cr_assert(eq(int, sw_count(), 0), "no warning");
  wt_free(w);
}
