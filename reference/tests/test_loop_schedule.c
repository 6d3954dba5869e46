/* test_loop_schedule.c - call_soon, call_later, cancel, stop, run_forever
 * and run_until: ordering, iteration boundaries, re-entrancy, wake-ups from
 * other threads and the thread checks.  Every behaviour runs on both
 * backends.
 */
#include "loop_helpers.h"

#include <fcntl.h>
#include <math.h>

TestSuite(loop_sched, .timeout = 60);

/* --- ordering ---------------------------------------------------------------- */

LOOP_TEST(loop_sched, call_soon_runs_in_fifo_order_never_inside_the_entry) {
  lspec_loop *loop = lt_new_loop(backend);
  struct lt_log log = {{0}, 0};
  struct lt_entry e[20];
  struct lt_goal goal = {&log.n, 20};
  int i;

  for (i = 0; i < 20; i++) {
    e[i] = (struct lt_entry){&log, i};
    cr_assert(eq(int, I->loop_call_soon(loop, lt_log_cb, &e[i], NULL),
                 LSPEC_OK), "call_soon %d", i);
  }
  cr_assert(eq(int, log.n, 0), "nothing runs inside call_soon");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 10),
               LSPEC_OK), "run_until: %s", I->last_error());
  for (i = 0; i < 20; i++)
    cr_assert(eq(int, log.tags[i], i), "FIFO at %d", i);
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, ids_are_unique_and_non_zero) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_handle_id ids[200];
  int calls = 0, i, j;

  for (i = 0; i < 200; i++) {
    int rc = i % 2 ? I->loop_call_soon(loop, lt_count_cb, &calls, &ids[i])
                   : I->loop_call_later(loop, 5, lt_count_cb, &calls, &ids[i]);
    cr_assert(eq(int, rc, LSPEC_OK), "schedule %d", i);
    cr_assert(ne(u64, ids[i], 0), "id 0 is never used");
    for (j = 0; j < i; j++)
      cr_assert(ne(u64, ids[i], ids[j]), "ids %d and %d collide", i, j);
  }
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, NULL),
               LSPEC_OK), "out may be NULL");
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, timers_run_in_deadline_order) {
  lspec_loop *loop = lt_new_loop(backend);
  struct lt_log log = {{0}, 0};
  struct lt_entry a = {&log, 1}, b = {&log, 2}, c = {&log, 3};
  struct lt_goal goal = {&log.n, 3};

  cr_assert(eq(int, I->loop_call_later(loop, 0.06, lt_log_cb, &c, NULL),
               LSPEC_OK), "c");
  cr_assert(eq(int, I->loop_call_later(loop, 0.02, lt_log_cb, &a, NULL),
               LSPEC_OK), "a");
  cr_assert(eq(int, I->loop_call_later(loop, 0.04, lt_log_cb, &b, NULL),
               LSPEC_OK), "b");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 10),
               LSPEC_OK), "run_until: %s", I->last_error());
  cr_assert(eq(int, log.tags[0], 1), "earliest first");
  cr_assert(eq(int, log.tags[1], 2), "then the middle one");
  cr_assert(eq(int, log.tags[2], 3), "latest last");
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, a_timer_is_not_early) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  struct lt_goal goal = {&calls, 1};
  double start = I->loop_time(loop), end;

  cr_assert(eq(int, I->loop_call_later(loop, 0.05, lt_count_cb, &calls, NULL),
               LSPEC_OK), "call_later");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 10),
               LSPEC_OK), "run_until: %s", I->last_error());
  end = I->loop_time(loop);
  /* Not a timing claim about speed: a timer must never fire before its
   * deadline (CPython's end_time includes the clock resolution, 1ns). */
  cr_assert(le(dbl, 0.05 - 1e-6, end - start), "fired %gs after "
            "scheduling", end - start);
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, equal_deadlines_run_in_scheduling_order) {
  lspec_loop *loop = lt_new_loop(backend);
  struct lt_log log = {{0}, 0};
  struct lt_entry e[16];
  int i;

  /* -inf gives every timer exactly the same deadline. */
  for (i = 0; i < 16; i++) {
    e[i] = (struct lt_entry){&log, i};
    cr_assert(eq(int, I->loop_call_later(loop, -INFINITY, lt_log_cb, &e[i],
                                         NULL), LSPEC_OK), "call_later %d", i);
  }
  lt_one_iteration(loop);
  cr_assert(eq(int, log.n, 16), "all due in the first iteration");
  for (i = 0; i < 16; i++)
    cr_assert(eq(int, log.tags[i], i), "scheduling order at %d", i);
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, call_later_zero_runs_after_what_was_ready) {
  lspec_loop *loop = lt_new_loop(backend);
  struct lt_log log = {{0}, 0};
  struct lt_entry a = {&log, 1}, b = {&log, 2}, c = {&log, 3};

  /* CPython: soon A, later(0) B, soon C run as A C B, in one iteration:
   * the due timer joins the ready queue behind what was ready. */
  cr_assert(eq(int, I->loop_call_soon(loop, lt_log_cb, &a, NULL), LSPEC_OK),
            "a");
  cr_assert(eq(int, I->loop_call_later(loop, 0, lt_log_cb, &b, NULL),
               LSPEC_OK), "b");
  cr_assert(eq(int, I->loop_call_soon(loop, lt_log_cb, &c, NULL), LSPEC_OK),
            "c");
  lt_one_iteration(loop);
  cr_assert(eq(int, log.n, 3), "all three in one iteration");
  cr_assert(eq(int, log.tags[0], 1), "A");
  cr_assert(eq(int, log.tags[1], 3), "C");
  cr_assert(eq(int, log.tags[2], 2), "B, the timer, last");
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, negative_delay_runs_on_the_next_iteration) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  cr_assert(eq(int, I->loop_call_later(loop, -5.0, lt_count_cb, &calls, NULL),
               LSPEC_OK), "call_later -5");
  cr_assert(eq(int, calls, 0), "not inside the entry");
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 1), "ran in the next iteration");
  lt_free_loop(loop);
}

struct chain {
  lspec_loop *loop;     /* the loop */
  struct lt_log *log;   /* shared log */
  struct lt_entry next; /* what the first callback schedules */
};

static void schedule_next(void *arg) {
  struct chain *c = arg;
  c->log->tags[c->log->n++] = 100;
  cr_assert(eq(int, I->loop_call_soon(c->loop, lt_log_cb, &c->next, NULL),
               LSPEC_OK), "call_soon from a callback");
  cr_assert(eq(int, I->loop_call_later(c->loop, 0, lt_log_cb, &c->next, NULL),
               LSPEC_OK), "call_later from a callback");
}

LOOP_TEST(loop_sched, callbacks_scheduled_by_callbacks_wait_an_iteration) {
  lspec_loop *loop = lt_new_loop(backend);
  struct lt_log log = {{0}, 0};
  struct chain c = {loop, &log, {&log, 7}};

  cr_assert(eq(int, I->loop_call_soon(loop, schedule_next, &c, NULL),
               LSPEC_OK), "call_soon");
  lt_one_iteration(loop);
  cr_assert(eq(int, log.n, 1), "only the first callback ran");
  lt_one_iteration(loop);
  cr_assert(eq(int, log.n, 3), "its two children ran in the next one");
  lt_free_loop(loop);
}

/* --- bad arguments -------------------------------------------------------------- */

LOOP_TEST(loop_sched, nan_delay_is_refused_infinite_delay_never_fires) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_handle_id id = 5, never;
  int calls = 0;

  cr_assert(eq(int, I->loop_call_later(loop, NAN, lt_count_cb, &calls, &id),
               LSPEC_E_VALUE), "NaN");
  cr_assert(eq(u64, id, 0), "no id");
  cr_assert(eq(int, I->loop_call_later(loop, INFINITY, lt_count_cb, &calls,
                                       &never), LSPEC_OK), "+inf");
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, calls, 0), "neither ran");
  cr_assert(eq(int, I->loop_cancel(loop, never), LSPEC_OK), "cancel +inf");
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, null_callback_is_a_type_error) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_handle_id id = 3;

  cr_assert(eq(int, I->loop_call_soon(loop, NULL, NULL, &id), LSPEC_E_TYPE),
            "call_soon");
  LT_ASSERT_MSG("a callable object was expected by call_soon(), got None");
  cr_assert(eq(u64, id, 0), "no id");
  cr_assert(eq(int, I->loop_call_soon_threadsafe(loop, NULL, NULL, NULL),
               LSPEC_E_TYPE), "call_soon_threadsafe");
  LT_ASSERT_MSG("a callable object was expected by call_soon_threadsafe()");
  cr_assert(eq(int, I->loop_call_later(loop, 1.0, NULL, NULL, NULL),
               LSPEC_E_TYPE), "call_later");
  LT_ASSERT_MSG("a callable object was expected by call_later()");
  lt_one_iteration(loop); /* nothing was scheduled: must not crash */
  lt_free_loop(loop);
}

/* --- cancel ----------------------------------------------------------------------- */

LOOP_TEST(loop_sched, cancelled_callbacks_and_timers_do_not_run) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_handle_id soon, due, later;
  int calls = 0;

  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, &soon),
               LSPEC_OK), "soon");
  cr_assert(eq(int, I->loop_call_later(loop, 0, lt_count_cb, &calls, &due),
               LSPEC_OK), "due");
  cr_assert(eq(int, I->loop_call_later(loop, 0.01, lt_count_cb, &calls,
                                       &later), LSPEC_OK), "later");
  cr_assert(eq(int, I->loop_cancel(loop, soon), LSPEC_OK), "cancel soon");
  cr_assert(eq(int, I->loop_cancel(loop, due), LSPEC_OK), "cancel due");
  cr_assert(eq(int, I->loop_cancel(loop, later), LSPEC_OK), "cancel later");
  cr_assert(eq(int, I->loop_cancel(loop, later), LSPEC_OK), "twice is fine");
  cr_assert(eq(int, I->loop_cancel(loop, 0), LSPEC_OK), "0 is ignored");
  cr_assert(eq(int, I->loop_cancel(loop, UINT64_C(0xdeadbeef)), LSPEC_OK),
            "an unknown id is ignored");
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, calls, 0), "nothing cancelled ran");
  lt_free_loop(loop);
}

struct canceller {
  lspec_loop *loop;      /* the loop */
  lspec_handle_id ids[2]; /* what to cancel */
};

static void cancel_others(void *arg) {
  struct canceller *c = arg;
  cr_assert(eq(int, I->loop_cancel(c->loop, c->ids[0]), LSPEC_OK), "ready");
  cr_assert(eq(int, I->loop_cancel(c->loop, c->ids[1]), LSPEC_OK), "timer");
}

LOOP_TEST(loop_sched, cancel_from_an_earlier_callback_of_the_same_iteration) {
  lspec_loop *loop = lt_new_loop(backend);
  struct canceller c = {loop, {0, 0}};
  int calls = 0;

  cr_assert(eq(int, I->loop_call_soon(loop, cancel_others, &c, NULL),
               LSPEC_OK), "canceller");
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, &c.ids[0]),
               LSPEC_OK), "victim 1");
  cr_assert(eq(int, I->loop_call_later(loop, -1, lt_count_cb, &calls,
                                       &c.ids[1]), LSPEC_OK), "victim 2");
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 0), "both victims were due in this iteration "
                               "and both were skipped");
  lt_free_loop(loop);
}

static lspec_handle_id self_id;
static lspec_loop *self_loop;
static void cancel_self(void *arg) {
  (*(int *)arg)++;
  cr_assert(eq(int, I->loop_cancel(self_loop, self_id), LSPEC_OK),
            "cancelling the running callback is ignored");
}

LOOP_TEST(loop_sched, cancel_of_a_run_callback_is_ignored) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  self_loop = loop;
  cr_assert(eq(int, I->loop_call_soon(loop, cancel_self, &calls, &self_id),
               LSPEC_OK), "call_soon");
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 1), "ran once");
  cr_assert(eq(int, I->loop_cancel(loop, self_id), LSPEC_OK), "after run");
  lt_free_loop(loop);
}

/* --- stop ---------------------------------------------------------------------------- */

struct stopper {
  lspec_loop *loop; /* the loop */
  int *late;        /* counter for the callback scheduled after stop */
};

static void stop_and_schedule(void *arg) {
  struct stopper *s = arg;
  cr_assert(eq(int, I->loop_stop(s->loop), LSPEC_OK), "stop");
  cr_assert(eq(int, I->loop_call_soon(s->loop, lt_count_cb, s->late, NULL),
               LSPEC_OK), "call_soon after stop");
}

LOOP_TEST(loop_sched, stop_finishes_the_current_iteration) {
  lspec_loop *loop = lt_new_loop(backend);
  int same = 0, late = 0;
  struct stopper s = {loop, &late};

  cr_assert(eq(int, I->loop_call_soon(loop, stop_and_schedule, &s, NULL),
               LSPEC_OK), "stopper");
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &same, NULL),
               LSPEC_OK), "same iteration");
  cr_assert(eq(int, I->loop_run_forever(loop), LSPEC_OK), "run_forever");
  cr_assert(eq(int, same, 1), "a callback of the same iteration still ran");
  cr_assert(eq(int, late, 0), "one scheduled during it did not");
  cr_assert(eq(int, I->loop_is_running(loop), 0), "stopped");
  lt_one_iteration(loop);
  cr_assert(eq(int, late, 1), "it runs in the next run");
  lt_free_loop(loop);
}

LOOP_TEST(loop_sched, stop_before_run_means_one_iteration) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  /* Nothing scheduled: the one iteration must not block. */
  lt_one_iteration(loop);
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, NULL),
               LSPEC_OK), "call_soon");
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 1), "the iteration ran the callback");
  /* The stop was consumed by that run: run_until does not stop now. */
  cr_assert(eq(int, I->loop_run_until(loop, NULL, NULL, 0.02), LSPEC_OK),
            "run_until after a stopped run: %s", I->last_error());
  lt_free_loop(loop);
}

struct spinner {
  lspec_loop *loop; /* the loop */
  int turns;        /* callbacks run so far */
};

static void spin(void *arg) {
  struct spinner *s = arg;
  if (++s->turns == 5)
    I->loop_stop(s->loop);
  I->loop_call_soon(s->loop, spin, s, NULL);
}

LOOP_TEST(loop_sched, stop_ends_a_loop_that_is_never_idle) {
  lspec_loop *loop = lt_new_loop(backend);
  struct spinner s = {loop, 0};
  cr_assert(eq(int, I->loop_call_soon(loop, spin, &s, NULL), LSPEC_OK), "go");
  cr_assert(eq(int, I->loop_run_forever(loop), LSPEC_OK), "run_forever");
  cr_assert(eq(int, s.turns, 5), "one callback per iteration, five turns");
  lt_free_loop(loop); /* drops the sixth, pending */
}

/* --- run_until -------------------------------------------------------------------- */

static void stop_it(void *arg) { I->loop_stop(arg); }

LOOP_TEST(loop_sched, run_until_outcomes) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  struct lt_goal goal = {&calls, 1};

  cr_assert(eq(int, I->loop_call_later(loop, 0.01, lt_count_cb, &calls, NULL),
               LSPEC_OK), "timer");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 10),
               LSPEC_OK), "predicate satisfied");

  /* Already satisfied: one iteration, which must not block (the deadline
   * is far beyond the suite's timeout). */
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, NULL),
               LSPEC_OK), "soon");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "predicate already true");
  cr_assert(eq(int, calls, 2), "the one iteration ran the ready callback");
  calls = 1;

  goal.at_least = 2;
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 0.02),
               LSPEC_E_TIMEOUT), "deadline first");
  LT_ASSERT_MSG("run_until: the predicate was not satisfied");

  cr_assert(eq(int, I->loop_run_until(loop, NULL, NULL, 0.01), LSPEC_OK),
            "no predicate: OK at the deadline");
  cr_assert(eq(int, I->loop_run_until(loop, NULL, NULL, -1), LSPEC_E_VALUE),
            "no predicate and no deadline");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, NAN),
               LSPEC_E_VALUE), "NaN timeout");

  cr_assert(eq(int, I->loop_call_soon(loop, stop_it, loop, NULL), LSPEC_OK),
            "stopper");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, -1),
               LSPEC_E_RUNTIME), "stopped before the predicate held");
  LT_ASSERT_MSG("Event loop stopped before the predicate was satisfied");
  cr_assert(eq(int, I->loop_is_running(loop), 0), "not running after");

  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &calls, NULL),
               LSPEC_OK), "soon");
  cr_assert(eq(int, I->loop_call_soon(loop, stop_it, loop, NULL), LSPEC_OK),
            "stop in the same iteration");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, -1),
               LSPEC_OK), "the predicate wins over stop: %s",
            I->last_error());
  lt_free_loop(loop);
}

/* --- re-entrancy ------------------------------------------------------------------ */

struct nested {
  lspec_loop *loop;  /* the running loop */
  lspec_loop *other; /* another loop, or NULL */
  int checked;       /* the callback ran its checks */
};

static void run_inside(void *arg) {
  struct nested *n = arg;
  lspec_loop *running = NULL;
  cr_assert(eq(int, I->loop_is_running(n->loop), 1), "is_running inside");
  cr_assert(eq(int, I->get_running_loop(&running), LSPEC_OK),
            "get_running_loop: %s", I->last_error());
  cr_assert(eq(ptr, running, n->loop), "the running loop is this one");
  I->loop_release(running);
  cr_assert(eq(int, I->loop_run_forever(n->loop), LSPEC_E_RUNTIME), "again");
  LT_ASSERT_MSG("This event loop is already running");
  cr_assert(eq(int, I->loop_run_until(n->loop, NULL, NULL, 0.1),
               LSPEC_E_RUNTIME), "run_until again");
  LT_ASSERT_MSG("This event loop is already running");
  cr_assert(eq(int, I->loop_run_forever(n->other), LSPEC_E_RUNTIME),
            "another loop");
  LT_ASSERT_MSG("Cannot run the event loop while another loop is running");
  cr_assert(eq(int, I->loop_run_until(n->other, NULL, NULL, 0.1),
               LSPEC_E_RUNTIME), "another loop, run_until");
  LT_ASSERT_MSG("Cannot run the event loop while another loop is running");
  cr_assert(eq(int, I->loop_is_running(n->other), 0), "the other is idle");
  n->checked = 1;
  I->loop_stop(n->loop);
}

LOOP_TEST(loop_sched, running_inside_a_callback_is_refused) {
  struct nested n = {lt_new_loop(backend), lt_new_loop(backend), 0};
  lspec_loop *running = (lspec_loop *)&n;

  cr_assert(eq(int, I->loop_is_running(n.loop), 0), "idle before");
  cr_assert(eq(int, I->loop_call_soon(n.loop, run_inside, &n, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, I->loop_run_forever(n.loop), LSPEC_OK), "run_forever");
  cr_assert(eq(int, n.checked, 1), "the checks ran");
  cr_assert(eq(int, I->loop_is_running(n.loop), 0), "idle after");
  cr_assert(eq(int, I->get_running_loop(&running), LSPEC_E_RUNTIME),
            "no running loop after the run");
  lt_free_loop(n.loop);
  lt_free_loop(n.other);
}

/* --- other threads --------------------------------------------------------------- */

struct poster {
  lspec_loop *loop;   /* target */
  atomic_int started; /* the loop has run a first callback */
  atomic_int done;    /* set by the posted callback */
  int rc;             /* what call_soon_threadsafe answered */
  int count;          /* posts to make */
};

static void mark_started(void *arg) {
  atomic_store(&((struct poster *)arg)->started, 1);
}

static void mark_done(void *arg) { atomic_fetch_add(&((struct poster *)arg)->done, 1); }

static int is_done(void *arg) {
  struct poster *p = arg;
  return atomic_load(&p->done) >= p->count;
}

static void *post_when_started(void *arg) {
  struct poster *p = arg;
  int i;
  while (!atomic_load(&p->started))
    sched_yield();
  lt_nap(20); /* let the loop go to sleep: see lt_nap */
  for (i = 0; i < p->count; i++) {
    p->rc = I->loop_call_soon_threadsafe(p->loop, mark_done, p, NULL);
    if (p->rc != LSPEC_OK)
      break;
  }
  return NULL;
}

LOOP_TEST(loop_sched, call_soon_threadsafe_wakes_a_blocked_loop) {
  struct poster p = {lt_new_loop(backend), 0, 0, -99, 1};
  pthread_t t;

  cr_assert(eq(int, I->loop_call_soon(p.loop, mark_started, &p, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, pthread_create(&t, NULL, post_when_started, &p), 0),
            "pthread_create");
  /* A deadline far beyond the suite's timeout: only the wake-up can end
   * this run in time. */
  cr_assert(eq(int, I->loop_run_until(p.loop, is_done, &p, 3600), LSPEC_OK),
            "run_until: %s", I->last_error());
  pthread_join(t, NULL);
  cr_assert(eq(int, p.rc, LSPEC_OK), "call_soon_threadsafe");
  lt_free_loop(p.loop);
}

LOOP_TEST(loop_sched, call_soon_threadsafe_from_many_threads) {
  struct poster p[4];
  lspec_loop *loop = lt_new_loop(backend);
  pthread_t t[4];
  int i, total_goal = 0;

  for (i = 0; i < 4; i++) {
    p[i] = (struct poster){loop, 1, 0, -99, 500};
    cr_assert(eq(int, pthread_create(&t[i], NULL, post_when_started, &p[i]),
                 0), "pthread_create");
  }
  for (i = 0; i < 4; i++) {
    cr_assert(eq(int, I->loop_run_until(loop, is_done, &p[i], 3600),
                 LSPEC_OK), "run_until %d: %s", i, I->last_error());
    total_goal += atomic_load(&p[i].done);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    cr_assert(eq(int, p[i].rc, LSPEC_OK), "thread %d", i);
  }
  cr_assert(eq(int, total_goal, 2000), "every post ran exactly once");
  lt_free_loop(loop);
}

struct racer {
  lspec_loop *loop; /* target */
  atomic_int go;    /* start line */
  int last_rc;      /* the status that ended the thread's posting */
  int posted;       /* successful posts */
};

static void nothing(void *arg) { (void)arg; }

static void *post_until_closed(void *arg) {
  struct racer *r = arg;
  int rc;
  while (!atomic_load(&r->go))
    sched_yield();
  while ((rc = I->loop_call_soon_threadsafe(r->loop, nothing, NULL, NULL)) ==
         LSPEC_OK)
    r->posted++;
  r->last_rc = rc;
  return NULL;
}

LOOP_TEST(loop_sched, close_racing_call_soon_threadsafe) {
  struct racer r = {lt_new_loop(backend), 0, 0, 0};
  pthread_t t;

  cr_assert(eq(int, pthread_create(&t, NULL, post_until_closed, &r), 0),
            "pthread_create");
  atomic_store(&r.go, 1);
  lt_nap(5);
  cr_assert(eq(int, I->loop_close(r.loop), LSPEC_OK), "close");
  pthread_join(t, NULL);
  cr_assert(eq(int, r.last_rc, LSPEC_E_RUNTIME), "posting ends with "
                                                 "'Event loop is closed'");
  I->loop_release(r.loop);
}

/* The loop runs in a helper thread; the test's thread probes it. */
struct remote {
  lspec_loop *loop;   /* the loop */
  atomic_int running; /* the helper's loop has started */
  atomic_int release; /* the probe is over */
  int rc;             /* the helper's run_until result */
};

static void remote_started(void *arg) {
  atomic_store(&((struct remote *)arg)->running, 1);
}

static int remote_released(void *arg) {
  return atomic_load(&((struct remote *)arg)->release);
}

static void remote_release(void *arg) {
  atomic_store(&((struct remote *)arg)->release, 1);
}

static void *run_remote(void *arg) {
  struct remote *r = arg;
  r->rc = I->loop_run_until(r->loop, remote_released, r, 3600);
  return NULL;
}

/* Starts r->loop in a new thread and waits until it runs. */
static pthread_t start_remote(struct remote *r) {
  pthread_t t;
  cr_assert(eq(int, I->loop_call_soon(r->loop, remote_started, r, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, pthread_create(&t, NULL, run_remote, r), 0), "thread");
  while (!atomic_load(&r->running))
    sched_yield();
  return t;
}

static void stop_remote(struct remote *r, pthread_t t) {
  cr_assert(eq(int, I->loop_call_soon_threadsafe(r->loop, remote_release, r,
                                                 NULL), LSPEC_OK),
            "call_soon_threadsafe");
  pthread_join(t, NULL);
  cr_assert(eq(int, r->rc, LSPEC_OK), "the helper's run: %s",
            I->last_error());
}

LOOP_TEST(loop_sched, other_threads_are_refused_while_it_runs) {
  struct remote r = {lt_new_loop(backend), 0, 0, -99};
  int calls = 0, p[2];
  pthread_t t;

  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe");
  t = start_remote(&r);
  cr_assert(eq(int, I->loop_is_running(r.loop), 1), "is_running elsewhere");

#define WRONG_THREAD(expr)                                                     \
  do {                                                                         \
    cr_assert(eq(int, (expr), LSPEC_E_RUNTIME), "%s", #expr);                 \
    LT_ASSERT_MSG("Non-thread-safe operation invoked on an event loop other "  \
                  "than the current one");                                     \
  } while (0)
  WRONG_THREAD(I->loop_call_soon(r.loop, lt_count_cb, &calls, NULL));
  WRONG_THREAD(I->loop_call_later(r.loop, 0, lt_count_cb, &calls, NULL));
  WRONG_THREAD(I->loop_add_reader(r.loop, p[0], lt_count_cb, &calls));
  WRONG_THREAD(I->loop_remove_reader(r.loop, p[0]));
  WRONG_THREAD(I->loop_stop(r.loop));
  WRONG_THREAD(I->loop_add_signal_handler(r.loop, SIGUSR1, lt_count_cb,
                                          &calls));
  WRONG_THREAD(I->loop_remove_signal_handler(r.loop, SIGUSR1));
#undef WRONG_THREAD
  cr_assert(eq(int, I->loop_run_forever(r.loop), LSPEC_E_RUNTIME), "run");
  LT_ASSERT_MSG("This event loop is already running");
  cr_assert(eq(int, I->loop_close(r.loop), LSPEC_E_RUNTIME), "close");
  LT_ASSERT_MSG("Cannot close a running event loop");
  cr_assert(eq(int, I->loop_cancel(r.loop, 12345), LSPEC_OK),
            "cancel is thread-safe");
  cr_assert(le(dbl, 0.0, I->loop_time(r.loop)), "time from anywhere");

  stop_remote(&r, t);
  cr_assert(eq(int, calls, 0), "nothing refused ran");
  cr_assert(eq(int, I->loop_call_soon(r.loop, lt_count_cb, &calls, NULL),
               LSPEC_OK), "any thread once it stopped");
  lt_one_iteration(r.loop);
  cr_assert(eq(int, calls, 1), "ran");
  close(p[0]);
  close(p[1]);
  lt_free_loop(r.loop);
}

static void *schedule_from_thread(void *arg) {
  struct poster *p = arg;
  p->rc = I->loop_call_soon(p->loop, mark_done, p, NULL);
  if (p->rc == LSPEC_OK)
    p->rc = I->loop_call_later(p->loop, 0, mark_done, p, NULL);
  return NULL;
}

LOOP_TEST(loop_sched, any_thread_may_schedule_while_it_is_idle) {
  struct poster p = {lt_new_loop(backend), 0, 0, -99, 2};
  pthread_t t;
  cr_assert(eq(int, pthread_create(&t, NULL, schedule_from_thread, &p), 0),
            "pthread_create");
  pthread_join(t, NULL);
  cr_assert(eq(int, p.rc, LSPEC_OK), "call_soon and call_later: %s",
            I->last_error());
  cr_assert(eq(int, I->loop_run_until(p.loop, is_done, &p, 3600), LSPEC_OK),
            "run_until");
  lt_free_loop(p.loop);
}
