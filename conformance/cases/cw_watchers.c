/* cw_watchers.c - watcher clauses a step list cannot say: a loop in a
 * worker thread while the main thread is blocked (MultiLoop, research C8),
 * and what close() gives back that only thread and descriptor counts show
 * (Threaded's waiting threads, Pidfd's descriptors; research C7), and
 * PidfdChildWatcher's "no threads".
 *
 * Threads started here run in the harness's soft mode; the test's thread
 * reports their failures at lh_thread_join().  Every wait is bounded.
 */
#include <signal.h>
#include <stddef.h>

#include "harness.h"

static int register_in_loop(lspec_loop *l, lspec_watcher *w, int pid,
                            lh_recorder *rec, const char *what) {
  return lh_register_in_loop(l, w, &pid, 1, lh_record_cb, rec, what);
}

static lspec_watcher *new_watcher(int kind, const char *what) {
  return lh_watcher_new(kind, what);
}

/* --- CW-ML-005 / CW-ML-006 (research C8) ------------------------------------ */

struct worker {
  lspec_watcher *w;
  int expect_seen; /* 1: the exit is seen; 0: it is not (the run times out) */
};

static void worker_main(void *p) {
  struct worker *wk = p;
  static lh_recorder rec;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  struct lh_goal g = {NULL, 1, &rec};
  int pid = 0, rc;
  if (l == NULL)
    return;
  if (!lh_spawn_child(LH_CHILD_GATED, 3, &pid, "worker: spawn_child"))
    return;
  if (!register_in_loop(l, wk->w, pid, &rec,
                        "worker: add_child_handler inside the worker's loop"))
    return;
  if (!lh_child_release(pid, "worker: release the child"))
    return;
  rc = lh_impl->loop_run_until(l, lh_goal_pred, &g, wk->expect_seen ? 5.0 : 1.0);
  if (wk->expect_seen) {
    if (!lh_expect(rc, LSPEC_OK, NULL,
                   "worker: run the loop until the exit is reported, main "
                   "thread blocked in a join"))
      return;
    lh_check_exited(&rec, pid, 3, "worker: the child's exit");
  } else {
    if (!lh_expect(rc, LSPEC_E_TIMEOUT, NULL,
                   "worker: with the main thread blocked the exit must go "
                   "unnoticed (run_until times out)"))
      return;
    lh_check(lh_recorder_calls(&rec) == 0, "worker",
             "the callback was called %ld time(s)", lh_recorder_calls(&rec));
  }
  lh_impl->loop_close(l);
}

static void multiloop_main_blocked(int expect_seen) {
  lspec_watcher *w = new_watcher(LSPEC_WATCHER_MULTILOOP,
                                 "watcher_new(MULTILOOP)");
  struct worker wk;
  lh_thread *t;
  /* Installed on both readings of the page: CPython needs an attach. */
  LH_OK(lh_impl->watcher_attach_loop(w, NULL));
  wk.w = w;
  wk.expect_seen = expect_seen;
  t = lh_thread_start(worker_main, &wk, "starting the worker thread");
  /* The main thread now blocks in pthread_join until the worker is done. */
  lh_thread_join(t, "joining the worker thread");
}

/*--- test: cw_multiloop_main_blocked clauses: [CW-ML-005] kinds: [MULTILOOP] timeout: 15 ---*/
LH_TEST(cw, cw_multiloop_main_blocked) { multiloop_main_blocked(1); }

/*--- test: cw_multiloop_main_blocked_hangs clauses: [CW-ML-006] kinds: [MULTILOOP] timeout: 15 ---*/
LH_TEST(cw, cw_multiloop_main_blocked_hangs) { multiloop_main_blocked(0); }

/* --- CW-CLOSE-001 (research C7): Threaded's threads, Pidfd's fds ---------- */

struct count_goal {
  int base;
};

static int threads_above(void *p) {
  return lh_thread_count() > ((struct count_goal *)p)->base;
}
static int threads_at_most(void *p) {
  return lh_thread_count() <= ((struct count_goal *)p)->base;
}

/*--- test: cw_close_threaded_stops_waiting clauses: [CW-CLOSE-001] kinds: [THREADED] ---*/
LH_TEST(cw, cw_close_threaded_stops_waiting) {
  static lh_recorder rec;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lspec_watcher *w = new_watcher(LSPEC_WATCHER_THREADED,
                                 "watcher_new(THREADED)");
  struct count_goal g;
  int pid = 0;
  LH_OK(lh_impl->watcher_attach_loop(w, l));
  lh_spawn_child(LH_CHILD_SLEEPER, 0, &pid, "spawn_sleeper");
  g.base = lh_thread_count();
  register_in_loop(l, w, pid, &rec, "add_child_handler(w, sleeper, rec)");
  lh_check(lh_wait_until(threads_above, &g, 2.0), "after add_child_handler",
           "no waiting thread was started (%d threads, %d before)",
           lh_thread_count(), g.base);
  LH_OK(lh_impl->watcher_close(w));
  lh_check(lh_wait_until(threads_at_most, &g, 2.0), "after watcher_close",
           "a waiting thread still runs 2 s after close (%d threads, %d "
           "before the registration); the child is still alive",
           lh_thread_count(), g.base);
}

/*--- test: cw_close_pidfd_closes_descriptors clauses: [CW-CLOSE-001] kinds: [PIDFD] versions: 3.9- ---*/
LH_TEST(cw, cw_close_pidfd_closes_descriptors) {
  static lh_recorder rec;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lspec_watcher *w = new_watcher(LSPEC_WATCHER_PIDFD, "watcher_new(PIDFD)");
  int pid = 0, base, during;
  LH_OK(lh_impl->watcher_attach_loop(w, l));
  lh_spawn_child(LH_CHILD_SLEEPER, 0, &pid, "spawn_sleeper");
  base = lh_fd_count();
  register_in_loop(l, w, pid, &rec, "add_child_handler(w, sleeper, rec)");
  during = lh_fd_count();
  lh_check(during > base, "after add_child_handler",
           "no descriptor was opened for the child (%d open, %d before)",
           during, base);
  LH_OK(lh_impl->watcher_close(w));
  lh_check(lh_fd_count() <= base, "after watcher_close",
           "%d descriptor(s) open, %d before the registration: close left "
           "the child's pidfd open",
           lh_fd_count(), base);
}

/* --- CW-PIDFD-001: no threads ------------------------------------------------ */

/*--- test: cw_pidfd_no_thread clauses: [CW-PIDFD-001] kinds: [PIDFD] ---*/
LH_TEST(cw, cw_pidfd_no_thread) {
  static lh_recorder rec;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lspec_watcher *w = new_watcher(LSPEC_WATCHER_PIDFD, "watcher_new(PIDFD)");
  struct lh_goal goal = {NULL, 1, &rec};
  int pid = 0, base;
  LH_OK(lh_impl->watcher_attach_loop(w, l));
  lh_spawn_child(LH_CHILD_GATED, 3, &pid, "spawn_child(GATED, 3)");
  base = lh_thread_count();
  register_in_loop(l, w, pid, &rec, "add_child_handler(w, k, rec)");
  lh_check(lh_thread_count() <= base, "after add_child_handler",
           "the watcher started a thread (%d threads, %d before)",
           lh_thread_count(), base);
  lh_child_release(pid, "release(k)");
  LH_OK(lh_impl->loop_run_until(l, lh_goal_pred, &goal, 5.0));
  lh_check_exited(&rec, pid, 3, "the child's exit");
  lh_check(lh_thread_count() <= base, "after the exit was reported",
           "%d threads, %d before", lh_thread_count(), base);
}

/* --- CW-THR-007: one waiting thread per child ------------------------------ */

/*--- test: cw_threaded_thread_per_child clauses: [CW-THR-007] kinds: [THREADED] ---*/
LH_TEST(cw, cw_threaded_thread_per_child) {
  static lh_recorder rec;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lspec_watcher *w = new_watcher(LSPEC_WATCHER_THREADED,
                                 "watcher_new(THREADED)");
  struct count_goal one, two;
  struct lh_goal goal = {NULL, 2, &rec};
  int a = 0, b = 0, base;
  lh_spawn_child(LH_CHILD_SLEEPER, 0, &a, "spawn_sleeper (a)");
  lh_spawn_child(LH_CHILD_SLEEPER, 0, &b, "spawn_sleeper (b)");
  base = lh_thread_count();
  one.base = base;
  two.base = base + 1;
  register_in_loop(l, w, a, &rec, "add_child_handler(w, a, rec)");
  lh_check(lh_wait_until(threads_above, &one, 2.0), "after the first add",
           "no waiting thread was started (%d threads, %d before)",
           lh_thread_count(), base);
  register_in_loop(l, w, b, &rec, "add_child_handler(w, b, rec)");
  lh_check(lh_wait_until(threads_above, &two, 2.0), "after the second add",
           "no second waiting thread was started (%d threads, %d before "
           "both registrations)",
           lh_thread_count(), base);
  lh_child_kill(a, SIGKILL, "kill(a, SIGKILL)");
  lh_child_kill(b, SIGKILL, "kill(b, SIGKILL)");
  LH_OK(lh_impl->loop_run_until(l, lh_goal_pred, &goal, 5.0));
}
