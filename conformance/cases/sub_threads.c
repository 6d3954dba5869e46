/* sub_threads.c - subprocess clauses that need two loops running at once:
 * a worker thread's loop spawning while the main thread's loop runs (Safe
 * and Fast need the main loop running; the page's SafeChildWatcher and
 * FastChildWatcher sections).
 *
 * The worker runs in the harness's soft mode; the test's thread reports its
 * failures at lh_thread_join().  Every wait is bounded.
 */
#include <stdatomic.h>
#include <stddef.h>

#include "harness.h"

struct spawner {
  lspec_loop *main_loop;
  lspec_loop *loop;
  lh_recorder rec;
  int pid;
  int rc;
  atomic_int done;
};

static int loop_running(void *loop) {
  return lh_impl->loop_is_running((lspec_loop *)loop) == 1;
}

static void spawn_cb(void *p) {
  struct spawner *s = p;
  static const char *const argv[] = {"/bin/sh", "-c", "exit 4", NULL};
  s->rc = lh_impl->loop_subprocess_exec(s->loop, argv, lh_record_cb, &s->rec,
                                        &s->pid);
  if (s->rc == LSPEC_OK)
    lh_track_impl_child(s->pid);
}

static void worker_main(void *p) {
  struct spawner *s = p;
  struct lh_goal goal = {NULL, 1, &s->rec};
  s->loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  if (s->loop == NULL)
    goto out;
  if (!lh_check(lh_wait_until(loop_running, s->main_loop, 5.0), "worker",
                "the main thread's loop did not start running"))
    goto out;
  if (!lh_run_in_loop(s->loop, spawn_cb, s, 5.0,
                      "worker: loop_subprocess_exec inside the worker's loop"))
    goto out;
  if (!lh_expect(s->rc, LSPEC_OK, NULL,
                 "worker: loop_subprocess_exec while the main loop runs"))
    goto out;
  if (!lh_expect(lh_impl->loop_run_until(s->loop, lh_goal_pred, &goal, 10.0),
                 LSPEC_OK, NULL, "worker: run until the exit is reported"))
    goto out;
  lh_check_exited(&s->rec, s->pid, 4, "worker: the subprocess's exit");
  lh_check_called_in_loop(&s->rec, s->loop, "worker: the exit callback");
out:
  atomic_store(&s->done, 1);
}

static int worker_done(void *p) {
  return atomic_load(&((struct spawner *)p)->done);
}

static void worker_spawn_main_running(int kind) {
  static struct spawner s;
  lspec_watcher *w = NULL;
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  lh_thread *t;
  int rc = lh_impl->watcher_new(kind, &w);
  if (!lh_expect_out(rc, LSPEC_OK, NULL, LH_WATCHER, w, "watcher_new(kind)"))
    return;
  LH_OK(lh_impl->set_child_watcher(w));
  LH_OK(lh_impl->set_event_loop(l)); /* the policy attaches w to l */
  s.main_loop = l;
  t = lh_thread_start(worker_main, &s, "starting the worker thread");
  rc = lh_impl->loop_run_until(l, worker_done, &s, 15.0);
  lh_thread_join(t, "joining the worker thread");
  LH_OK(rc);
  LH_OK(lh_impl->set_event_loop(NULL));
}

/*--- test: sub_safe_worker_spawn_main_running clauses: [SUB-THREAD-004] kinds: [SAFE] timeout: 20 ---*/
LH_TEST(subprocess, sub_safe_worker_spawn_main_running) {
  worker_spawn_main_running(LSPEC_WATCHER_SAFE);
}

/*--- test: sub_fast_worker_spawn_main_running clauses: [SUB-THREAD-004] kinds: [FAST] timeout: 20 ---*/
LH_TEST(subprocess, sub_fast_worker_spawn_main_running) {
  worker_spawn_main_running(LSPEC_WATCHER_FAST);
}
