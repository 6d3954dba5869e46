/* sub_exit_thread.c - the exit callback of loop_subprocess_exec runs in the
 * spawning loop's thread even when the watcher notices the exit in another
 * thread (SUB-EXEC-003).
 *
 * A Safe or Fast watcher attached to the main thread's running loop notices
 * every exit in that loop's SIGCHLD handler.  A loop in a worker thread
 * spawns a child that lives until it is killed, so the exit can only be
 * noticed after the registration, in the main thread; the worker's loop
 * must still be the one running when the callback is called, and the call
 * must not happen inside loop_subprocess_exec.  (With a watcher that
 * delivers through the registering loop itself, Threaded or MultiLoop, or a
 * child that has already ended when Safe registers it, the callback is in
 * the right thread whatever the subprocess layer does: those cases cannot
 * tell.)
 *
 * The worker runs in the harness's soft mode; the test's thread reports its
 * failures at lh_thread_join().  Every wait is bounded.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

#include "harness.h"

struct exit_spawner {
  lspec_loop *main_loop; /* the main thread's loop, with the watcher */
  lspec_loop *loop;      /* the worker's loop, which spawns */
  lh_recorder rec;       /* the exit callback's calls */
  int pid;               /* the child */
  int rc;                /* loop_subprocess_exec's status */
  long calls_in_exec;    /* callback calls seen when exec returned */
  atomic_int done;       /* the worker has finished */
};

static int main_loop_running(void *loop) {
  return lh_impl->loop_is_running((lspec_loop *)loop) == 1;
}

/* In the worker's loop: spawns a child that waits to be killed. */
static void spawn_sleeper(void *p) {
  struct exit_spawner *s = p;
  static const char *const argv[] = {"/bin/sleep", "60", NULL};
  s->rc = lh_impl->loop_subprocess_exec(s->loop, argv, lh_record_cb, &s->rec,
                                        &s->pid);
  s->calls_in_exec = lh_recorder_calls(&s->rec);
  if (s->rc == LSPEC_OK)
    lh_track_impl_child(s->pid);
}

static void exit_worker(void *p) {
  struct exit_spawner *s = p;
  struct lh_goal goal = {NULL, 1, &s->rec};

  s->loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  if (s->loop == NULL)
    goto out;
  if (!lh_check(lh_wait_until(main_loop_running, s->main_loop, 5.0),
                "worker", "the main thread's loop did not start running"))
    goto out;
  if (!lh_run_in_loop(s->loop, spawn_sleeper, s, 5.0,
                      "worker: loop_subprocess_exec inside the worker's loop"))
    goto out;
  if (!lh_expect(s->rc, LSPEC_OK, NULL,
                 "worker: loop_subprocess_exec while the main loop runs"))
    goto out;
  if (!lh_check(s->calls_in_exec == 0, "worker",
                "the exit callback ran inside loop_subprocess_exec"))
    goto out;
  /* Only now can the child end: its exit is noticed after registration. */
  if (!lh_child_kill(s->pid, SIGKILL, "worker: killing the child"))
    goto out;
  if (!lh_expect(lh_impl->loop_run_until(s->loop, lh_goal_pred, &goal, 10.0),
                 LSPEC_OK, NULL, "worker: run until the exit is reported"))
    goto out;
  /* Its returncode is CW-RC-001's and SUB-EXEC-002's business. */
  lh_check(lh_recorder_calls_for(&s->rec, s->pid) == 1, "worker",
           "the exit callback was not called once for the child");
  lh_check_called_in_loop(&s->rec, s->loop,
                          "worker: the exit callback (noticed in the main "
                          "thread's loop)");
out:
  atomic_store(&s->done, 1);
}

static int exit_worker_done(void *p) {
  return atomic_load(&((struct exit_spawner *)p)->done);
}

static void exit_noticed_in_main(int kind) {
  static struct exit_spawner s;
  lspec_watcher *w = NULL;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lh_thread *t;
  int rc = lh_impl->watcher_new(kind, &w);

  if (!lh_expect_out(rc, LSPEC_OK, NULL, LH_WATCHER, w, "watcher_new(kind)"))
    return;
  LH_OK(lh_impl->set_child_watcher(w));
  LH_OK(lh_impl->set_event_loop(l)); /* the policy attaches w to l */
  s.main_loop = l;
  t = lh_thread_start(exit_worker, &s, "starting the worker thread");
  rc = lh_impl->loop_run_until(l, exit_worker_done, &s, 15.0);
  lh_thread_join(t, "joining the worker thread");
  LH_OK(rc);
  LH_OK(lh_impl->set_event_loop(NULL));
}

/*--- test: sub_exit_noticed_in_main_safe clauses: [SUB-EXEC-003, SUB-THREAD-004] kinds: [SAFE] timeout: 20 ---*/
LH_TEST(subprocess, sub_exit_noticed_in_main_safe) {
  exit_noticed_in_main(LSPEC_WATCHER_SAFE);
}

/*--- test: sub_exit_noticed_in_main_fast clauses: [SUB-EXEC-003, SUB-THREAD-004] kinds: [FAST] timeout: 20 ---*/
LH_TEST(subprocess, sub_exit_noticed_in_main_fast) {
  exit_noticed_in_main(LSPEC_WATCHER_FAST);
}
