/* loop_threads.c - loop clauses that need a second thread running while the
 * loop runs: call_soon_threadsafe waking a blocked loop and running in the
 * loop's thread, and the optional wrong-thread checks.
 *
 * Threads started here run in the harness's soft mode: their checks record a
 * failure and the test's thread reports it at lh_thread_join().  Every wait
 * is bounded.
 */
#include <pthread.h>
#include <time.h>

#include "harness.h"

static int loop_is_running_now(void *loop) {
  return lh_impl->loop_is_running((lspec_loop *)loop) == 1;
}

/* --- LOOP-TSAFE-001 ------------------------------------------------------- */

struct waker {
  lspec_loop *loop;
  lh_counter ran;
};

static void waker_main(void *p) {
  struct waker *w = p;
  struct timespec pause = {0, 20 * 1000000L};
  int running = lh_wait_until(loop_is_running_now, w->loop, 5.0);
  lh_check(running, "the waker thread",
           "the loop did not report is_running within 5 s of run_forever");
  /* Not synchronisation (the test is correct either way): give the loop a
   * moment to block in its wait, so that only a real wake-up ends it. */
  nanosleep(&pause, NULL);
  lh_expect(lh_impl->loop_call_soon_threadsafe(w->loop, lh_counter_cb,
                                               &w->ran, NULL),
            LSPEC_OK, NULL, "loop_call_soon_threadsafe(l, c) from a thread");
  /* Always stop the loop, so a failure above cannot hang the test. */
  lh_expect(lh_impl->loop_call_soon_threadsafe(w->loop, lh_stop_cb, w->loop,
                                               NULL),
            LSPEC_OK, NULL,
            "loop_call_soon_threadsafe(l, stop(l)) from a thread");
}

/*--- test: threadsafe_wakes_blocked_loop clauses: [LOOP-TSAFE-001, LOOP-RUN-001] timeout: 10 ---*/
LH_TEST(loop, threadsafe_wakes_blocked_loop) {
  static struct waker w;
  lh_thread *t;
  int rc;

  w.loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  t = lh_thread_start(waker_main, &w, "starting the waker thread");
  /* Nothing is scheduled: the loop blocks until the waker's calls wake it.
   * Without a wake-up run_forever never returns and the test times out. */
  rc = lh_impl->loop_run_forever(w.loop);
  lh_thread_join(t, "the waker thread");
  LH_STATUS(rc, LSPEC_OK);
  lh_check_int(lh_counter_get(&w.ran), 1, "count(c)",
               "the callback scheduled from the other thread");
}

/* --- LOOP-TSAFE-002 ------------------------------------------------------- */

struct where {
  lspec_loop *loop;
  lh_counter ran;
  pthread_t loop_thread, callback_thread;
  lspec_loop *running_in_callback;
};

static void record_cb(void *p) {
  struct where *w = p;
  lspec_loop *r = NULL;
  w->callback_thread = pthread_self();
  if (lh_impl->get_running_loop(&r) == LSPEC_OK) {
    lh_track(LH_LOOP, r);
    w->running_in_callback = r;
  }
  lh_counter_cb(&w->ran);
}

static void loop_thread_main(void *p) {
  struct where *w = p;
  w->loop_thread = pthread_self();
  lh_run_until_count(w->loop, &w->ran, 1, 5.0,
                     "loop_run_until(l, count >= 1, 5) in the loop's thread");
}

/*--- test: threadsafe_runs_in_loop_thread clauses: [LOOP-TSAFE-002] timeout: 10 ---*/
LH_TEST(loop, threadsafe_runs_in_loop_thread) {
  static struct where w;
  lh_thread *t;
  int running;

  w.loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  /* The loop runs in a helper thread; this (the test's) thread schedules. */
  t = lh_thread_start(loop_thread_main, &w, "starting the loop's thread");
  running = lh_wait_until(loop_is_running_now, w.loop, 5.0);
  LH_OK(lh_impl->loop_call_soon_threadsafe(w.loop, record_cb, &w, NULL));
  lh_thread_join(t, "the loop's thread");
  lh_check(running, "waiting for the loop", "the loop never reported "
           "is_running in its thread");
  lh_check_int(lh_counter_get(&w.ran), 1, "count(c)",
               "the callback scheduled with call_soon_threadsafe");
  lh_check(pthread_equal(w.callback_thread, w.loop_thread), "the callback",
           "ran in another thread than the one running the loop");
  lh_check_same(w.running_in_callback, w.loop, 1,
                "get_running_loop() inside the callback");
}

/* --- LOOP-THREAD-001 ---------------------------------------------------------- */

struct intruder {
  lspec_loop *loop;
  lh_counter wrong, done;
};

static void intruder_main(void *p) {
  struct intruder *in = p;
  int running = lh_wait_until(loop_is_running_now, in->loop, 5.0);
  lh_check(running, "the other thread", "the loop never reported "
           "is_running");
  if (running) {
    lh_expect(lh_impl->loop_call_soon(in->loop, lh_counter_cb, &in->wrong,
                                      NULL),
              LSPEC_E_RUNTIME, NULL,
              "loop_call_soon(l, c) from a thread other than the loop's");
    lh_expect(lh_impl->loop_call_later(in->loop, 0.01, lh_counter_cb,
                                       &in->wrong, NULL),
              LSPEC_E_RUNTIME, NULL,
              "loop_call_later(l, 0.01, c) from a thread other than the "
              "loop's");
  }
  lh_expect(lh_impl->loop_call_soon_threadsafe(in->loop, lh_counter_cb,
                                               &in->done, NULL),
            LSPEC_OK, NULL, "loop_call_soon_threadsafe(l, done)");
}

/*--- test: wrong_thread_scheduling_rejected clauses: [LOOP-THREAD-001] timeout: 10 ---*/
LH_TEST(loop, wrong_thread_scheduling_rejected) {
  static struct intruder in;
  lh_thread *t;
  int rc;

  in.loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  t = lh_thread_start(intruder_main, &in, "starting the other thread");
  rc = lh_run_until_count(in.loop, &in.done, 1, 5.0,
                          "loop_run_until(l, count(done) >= 1, 5)");
  lh_thread_join(t, "the other thread");
  (void)rc;
  /* Let anything wrongly accepted run, then check that nothing was. */
  LH_OK(lh_impl->loop_run_until(in.loop, NULL, NULL, 0.05));
  lh_check_int(lh_counter_get(&in.wrong), 0, "count(wrong)",
               "callbacks scheduled from the wrong thread");
}
