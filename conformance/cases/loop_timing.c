/* loop_timing.c - loop clauses about the loop's clock and the order of
 * iterations, which need callbacks that do more than count: a timer that
 * records when it ran, a callback that schedules another and stops the loop.
 *
 * These check order and lower bounds only, never speed: timing claims belong
 * to the benchmarks.
 */
#include <time.h>

#include "harness.h"

/* --- LOOP-LATER-003 ------------------------------------------------------- */

struct stamp {
  lspec_loop *loop;
  double at;
  lh_counter ran;
};

static void stamp_cb(void *p) {
  struct stamp *s = p;
  s->at = lh_impl->loop_time(s->loop);
  lh_counter_cb(&s->ran);
}

/*--- test: call_later_waits_for_its_delay clauses: [LOOP-LATER-003] timeout: 10 ---*/
LH_TEST(loop, call_later_waits_for_its_delay) {
  static const double delays[] = {0.01, 0.05, 0.12};
  static struct stamp s[3];
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  double t0 = lh_impl->loop_time(l);

  for (int i = 0; i < 3; i++) {
    s[i].loop = l;
    LH_OK(lh_impl->loop_call_later(l, delays[i], stamp_cb, &s[i], NULL));
  }
  LH_OK(lh_impl->loop_run_until(l, NULL, NULL, 0.3));
  for (int i = 0; i < 3; i++) {
    lh_check_int(lh_counter_get(&s[i].ran), 1, "count",
                 "a call_later callback within 0.3 s");
    /* CPython lets a timer run up to the clock's resolution early; allow
     * one millisecond. */
    lh_check(s[i].at - t0 >= delays[i] - 0.001, "call_later",
             "the callback with delay %.3f s ran %.4f s after scheduling "
             "(loop time)",
             delays[i], s[i].at - t0);
  }
}

/* --- LOOP-TIME-001 ----------------------------------------------------------- */

/*--- test: loop_time_is_monotonic_seconds clauses: [LOOP-TIME-001] timeout: 10 ---*/
LH_TEST(loop, loop_time_is_monotonic_seconds) {
  lspec_loop *l = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  struct timespec pause = {0, 50 * 1000000L};
  double prev = lh_impl->loop_time(l), t1, t2, r1, r2;

  lh_check(prev >= 0, "loop_time(l)", "returned %f, a negative value", prev);
  for (int i = 0; i < 10000; i++) {
    double now = lh_impl->loop_time(l);
    if (!lh_check(now >= prev, "loop_time(l)",
                  "went backwards: %.9f after %.9f", now, prev))
      return;
    prev = now;
  }
  /* It advances with real time, in seconds: a 50 ms pause moves it by at
   * least 49 ms and (catching a unit error) by less than a second more. */
  r1 = lh_now();
  t1 = lh_impl->loop_time(l);
  nanosleep(&pause, NULL);
  t2 = lh_impl->loop_time(l);
  r2 = lh_now();
  lh_check(t2 - t1 >= 0.049, "loop_time(l)",
           "advanced %.6f s over a 50 ms pause", t2 - t1);
  lh_check(t2 - t1 <= (r2 - r1) + 1.0, "loop_time(l)",
           "advanced %.6f s while %.6f s passed: not seconds", t2 - t1,
           r2 - r1);
  /* And across a run that waits for its deadline. */
  t1 = lh_impl->loop_time(l);
  LH_OK(lh_impl->loop_run_until(l, NULL, NULL, 0.05));
  t2 = lh_impl->loop_time(l);
  lh_check(t2 - t1 >= 0.049, "loop_run_until(l, none, 0.05)",
           "the loop's time advanced only %.6f s", t2 - t1);
}

/* --- LOOP-SOON-003 -------------------------------------------------------------- */

struct nest {
  lspec_loop *loop;
  lh_counter inner;
  int schedule_rc, stop_rc;
};

static void inner_cb(void *p) { lh_counter_cb(&((struct nest *)p)->inner); }

static void outer_cb(void *p) {
  struct nest *n = p;
  n->schedule_rc = lh_impl->loop_call_soon(n->loop, inner_cb, n, NULL);
  n->stop_rc = lh_impl->loop_stop(n->loop);
}

/*--- test: callback_scheduled_by_callback_waits_an_iteration clauses: [LOOP-SOON-003, LOOP-RUN-001] timeout: 10 ---*/
LH_TEST(loop, callback_scheduled_by_callback_waits_an_iteration) {
  static struct nest n;
  n.loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  LH_OK(lh_impl->loop_call_soon(n.loop, outer_cb, &n, NULL));
  /* outer_cb schedules inner_cb and stops the loop: the run ends after
   * outer_cb's iteration, which must not include inner_cb. */
  LH_OK(lh_impl->loop_run_forever(n.loop));
  lh_expect(n.schedule_rc, LSPEC_OK, NULL, "loop_call_soon inside a callback");
  lh_expect(n.stop_rc, LSPEC_OK, NULL, "loop_stop inside a callback");
  lh_check_int(lh_counter_get(&n.inner), 0, "count(inner)",
               "the callback scheduled by the running callback, after the "
               "iteration that scheduled it");
  lh_run_until_count(n.loop, &n.inner, 1, 5.0,
                     "the next run runs the pending callback");
}
