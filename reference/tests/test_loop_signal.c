/* test_loop_signal.c - add_signal_handler / remove_signal_handler: delivery
 * in the loop (never in signal context), the validation order of CPython's
 * _UnixSelectorEventLoop, the main-thread rule per profile, dispositions
 * after remove and close, replacement, and which loop owns a signal.
 *
 * Each Criterion test is its own process, so dispositions changed here do
 * not leak into other tests; each test still restores what it changed.
 */
#include "loop_helpers.h"

TestSuite(loop_signal, .timeout = 60);

/* The current disposition of sig. */
static struct sigaction disposition(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  cr_assert(eq(int, sigaction(sig, NULL, &sa), 0), "sigaction query");
  return sa;
}

static int is_default(int sig) {
  return disposition(sig).sa_handler == SIG_DFL;
}

/* --- delivery ----------------------------------------------------------------- */

struct delivery {
  lspec_loop *loop;          /* the loop that must be running */
  pthread_t loop_thread;     /* the thread it runs in */
  volatile sig_atomic_t raised; /* raise() has returned */
  int calls;                 /* callbacks */
  int in_loop;               /* callbacks that ran inside the loop */
  int after_raise;           /* callbacks that ran after raise() returned */
};

static void on_delivery(void *arg) {
  struct delivery *d = arg;
  d->calls++;
  if (I->loop_is_running(d->loop) == 1 &&
      pthread_equal(pthread_self(), d->loop_thread))
    d->in_loop++;
  /* Inside the signal handler, raise() would not have returned yet. */
  if (d->raised)
    d->after_raise++;
}

struct raiser {
  struct delivery *d; /* where to record */
  int sig;            /* what to raise */
  int times;          /* how often */
};

static void raise_now(void *arg) {
  struct raiser *r = arg;
  int i;
  for (i = 0; i < r->times; i++)
    cr_assert(eq(int, raise(r->sig), 0), "raise");
  r->d->raised = 1;
  cr_assert(eq(int, r->d->calls, 0), "no callback inside raise()");
}

LOOP_TEST(loop_signal, raise_runs_the_callback_in_the_loop_thread) {
  struct delivery d = {lt_new_loop(backend), pthread_self(), 0, 0, 0, 0};
  struct raiser r = {&d, SIGUSR1, 1};
  struct lt_goal goal = {&d.calls, 1};

  cr_assert(eq(int, I->loop_add_signal_handler(d.loop, SIGUSR1, on_delivery,
                                               &d), LSPEC_OK),
            "add_signal_handler: %s", I->last_error());
  cr_assert(eq(int, I->loop_call_soon(d.loop, raise_now, &r, NULL), LSPEC_OK),
            "call_soon");
  cr_assert(eq(int, I->loop_run_until(d.loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "run_until");
  cr_assert(eq(int, d.in_loop, 1), "ran inside the loop, in its thread");
  cr_assert(eq(int, d.after_raise, 1), "ran after raise() returned");
  cr_assert(eq(int, I->loop_remove_signal_handler(d.loop, SIGUSR1), 1),
            "remove");
  lt_free_loop(d.loop);
}

LOOP_TEST(loop_signal, each_delivery_is_one_call) {
  struct delivery d = {lt_new_loop(backend), pthread_self(), 0, 0, 0, 0};
  struct raiser r = {&d, SIGUSR2, 3};
  struct lt_goal goal = {&d.calls, 3};

  cr_assert(eq(int, I->loop_add_signal_handler(d.loop, SIGUSR2, on_delivery,
                                               &d), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_call_soon(d.loop, raise_now, &r, NULL), LSPEC_OK),
            "call_soon");
  cr_assert(eq(int, I->loop_run_until(d.loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "run_until");
  lt_run_for(d.loop, 0.02);
  cr_assert(eq(int, d.calls, 3), "three deliveries, three calls");
  lt_free_loop(d.loop);
}

struct killer {
  atomic_int started; /* the loop is running */
  int sig;            /* what to send */
};
static void killer_started(void *arg) {
  atomic_store(&((struct killer *)arg)->started, 1);
}
static void *kill_later(void *arg) {
  struct killer *k = arg;
  while (!atomic_load(&k->started))
    sched_yield();
  lt_nap(20); /* let the loop go to sleep: see lt_nap */
  kill(getpid(), k->sig);
  return NULL;
}

LOOP_TEST(loop_signal, a_signal_from_another_thread_wakes_the_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  struct killer k;
  struct lt_goal goal;
  int calls = 0;
  pthread_t t;

  atomic_init(&k.started, 0);
  k.sig = SIGUSR2;
  goal = (struct lt_goal){&calls, 1};
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR2, lt_count_cb,
                                               &calls), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_call_soon(loop, killer_started, &k, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, pthread_create(&t, NULL, kill_later, &k), 0), "thread");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "only the signal can end this run in time");
  pthread_join(t, NULL);
  lt_free_loop(loop);
}

ONE_TEST(loop_signal, a_pending_delivery_is_dropped_by_remove) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &calls), LSPEC_OK), "add");
  cr_assert(eq(int, raise(SIGUSR1), 0), "raise");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 1),
            "remove before the loop ran");
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, calls, 0), "the removed callback is not called");
  lt_free_loop(loop);
}

struct self_remover {
  lspec_loop *loop; /* the loop */
  int calls;        /* how often */
  int removed;      /* what remove answered */
};
static void remove_own_handler(void *arg) {
  struct self_remover *s = arg;
  s->calls++;
  s->removed = I->loop_remove_signal_handler(s->loop, SIGUSR1);
}

ONE_TEST(loop_signal, a_callback_may_remove_its_own_handler) {
  struct self_remover s = {lt_new_loop(backend), 0, -99};
  cr_assert(eq(int, I->loop_add_signal_handler(s.loop, SIGUSR1,
                                               remove_own_handler, &s),
               LSPEC_OK), "add");
  cr_assert(eq(int, raise(SIGUSR1), 0), "raise");
  cr_assert(eq(int, raise(SIGUSR1), 0), "raise again");
  lt_run_for(s.loop, 0.02);
  cr_assert(eq(int, s.calls, 1), "the second delivery found no handler");
  cr_assert(eq(int, s.removed, 1), "remove inside answered 1");
  cr_assert(eq(int, is_default(SIGUSR1), 1), "SIG_DFL restored");
  lt_free_loop(s.loop);
}

/* --- validation ------------------------------------------------------------------ */

ONE_TEST(loop_signal, invalid_numbers_are_value_errors) {
  lspec_loop *loop = lt_new_loop(backend);
  int bad[] = {0, -1, 32, 33, NSIG, 65, 1000};
  char want[64];
  size_t i;
  int calls = 0;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(want, sizeof want, "invalid signal number %d", bad[i]);
    cr_assert(eq(int, I->loop_add_signal_handler(loop, bad[i], lt_count_cb,
                                                 &calls), LSPEC_E_VALUE),
              "add %d", bad[i]);
    cr_assert(eq(str, (char *)I->last_error(), want), "message for %d",
              bad[i]);
    cr_assert(eq(int, I->loop_remove_signal_handler(loop, bad[i]),
                 LSPEC_E_VALUE), "remove %d", bad[i]);
    cr_assert(eq(str, (char *)I->last_error(), want), "remove message");
  }
  lt_free_loop(loop);
}

ONE_TEST(loop_signal, sigkill_and_sigstop_cannot_be_caught) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGKILL, lt_count_cb,
                                               &calls), LSPEC_E_RUNTIME),
            "SIGKILL");
  cr_assert(eq(str, (char *)I->last_error(), "sig 9 cannot be caught"),
            "message");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGSTOP, lt_count_cb,
                                               &calls), LSPEC_E_RUNTIME),
            "SIGSTOP");
  cr_assert(eq(str, (char *)I->last_error(), "sig 19 cannot be caught"),
            "message");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGKILL), 0),
            "nothing to remove");
  lt_free_loop(loop);
}

ONE_TEST(loop_signal, checks_come_in_cpythons_order) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  /* The callback before the number, the number before closed. */
  cr_assert(eq(int, I->loop_add_signal_handler(loop, 0, NULL, NULL),
               LSPEC_E_TYPE), "NULL callback first");
  LT_ASSERT_MSG("a callable object was expected by add_signal_handler()");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, 0, lt_count_cb, &calls),
               LSPEC_E_VALUE), "number before closed");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &calls), LSPEC_E_RUNTIME),
            "closed");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGKILL, lt_count_cb,
                                               &calls), LSPEC_E_RUNTIME),
            "closed before uncatchable");
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, is_default(SIGUSR1), 1), "nothing installed");
  I->loop_release(loop);
}

struct from_thread {
  lspec_loop *loop; /* the loop */
  int add_rc;       /* add_signal_handler's answer */
  int remove_rc;    /* remove_signal_handler's answer */
  char add_msg[160];
  char remove_msg[160];
};

static void *signal_calls_from_thread(void *arg) {
  struct from_thread *f = arg;
  int calls = 0;
  f->add_rc = I->loop_add_signal_handler(f->loop, SIGUSR1, lt_count_cb,
                                         &calls);
  snprintf(f->add_msg, sizeof f->add_msg, "%s", I->last_error());
  f->remove_rc = I->loop_remove_signal_handler(f->loop, SIGUSR2);
  snprintf(f->remove_msg, sizeof f->remove_msg, "%s", I->last_error());
  return NULL;
}

static void non_main_thread(int profile, const char *add_msg,
                            const char *remove_msg) {
  struct from_thread f;
  int calls = 0;
  pthread_t t;

  cr_assert(eq(int, I->set_profile(profile), LSPEC_OK), "set_profile");
  memset(&f, 0, sizeof f);
  f.loop = lt_new_loop(LSPEC_BACKEND_DEFAULT);
  cr_assert(eq(int, I->loop_add_signal_handler(f.loop, SIGUSR2, lt_count_cb,
                                               &calls), LSPEC_OK),
            "the main thread may add");
  cr_assert(eq(int, pthread_create(&t, NULL, signal_calls_from_thread, &f),
               0), "thread");
  pthread_join(t, NULL);
  cr_assert(eq(int, f.add_rc, LSPEC_E_RUNTIME), "add from a thread");
  cr_assert(eq(str, f.add_msg, (char *)add_msg), "add's message");
  cr_assert(eq(int, is_default(SIGUSR1), 1), "nothing installed for SIGUSR1");
  /* CPython's remove fails in signal.signal with ValueError; here it also
   * leaves the handler in place. */
  cr_assert(eq(int, f.remove_rc, LSPEC_E_VALUE), "remove from a thread");
  cr_assert(eq(str, f.remove_msg, (char *)remove_msg), "remove's message");
  cr_assert(eq(int, is_default(SIGUSR2), 0), "the handler is still installed");
  cr_assert(eq(int, I->loop_remove_signal_handler(f.loop, SIGUSR2), 1),
            "the main thread removes it");
  lt_free_loop(f.loop);
}

ONE_TEST(loop_signal, only_the_main_thread_may_add_3_12) {
  (void)backend;
  non_main_thread(LSPEC_PROFILE_3_12,
                  "set_wakeup_fd only works in main thread of the main "
                  "interpreter",
                  "signal only works in main thread of the main interpreter");
}

ONE_TEST(loop_signal, only_the_main_thread_may_add_3_8) {
  (void)backend;
  non_main_thread(LSPEC_PROFILE_3_8, "set_wakeup_fd only works in main thread",
                  "signal only works in main thread");
}

/* --- dispositions ------------------------------------------------------------------ */

ONE_TEST(loop_signal, remove_answers_1_then_0_and_restores_the_default) {
  lspec_loop *loop = lt_new_loop(backend);
  struct sigaction sa;
  int calls = 0;

  cr_assert(eq(int, is_default(SIGUSR1), 1), "default before");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 0),
            "nothing to remove yet");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &calls), LSPEC_OK), "add");
  sa = disposition(SIGUSR1);
  cr_assert(ne(ptr, (void *)sa.sa_handler, (void *)SIG_DFL), "installed");
  cr_assert(ne(ptr, (void *)sa.sa_handler, (void *)SIG_IGN), "not ignored");
  cr_assert(ne(int, sa.sa_flags & SA_RESTART, 0), "SA_RESTART");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 1),
            "removed");
  cr_assert(eq(int, is_default(SIGUSR1), 1), "SIG_DFL again");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 0),
            "removed already");
  lt_free_loop(loop);
}

ONE_TEST(loop_signal, close_restores_every_default) {
  lspec_loop *loop = lt_new_loop(backend);
  int calls = 0;
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &calls), LSPEC_OK), "USR1");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGHUP, lt_count_cb,
                                               &calls), LSPEC_OK), "HUP");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGINT, lt_count_cb,
                                               &calls), LSPEC_OK), "INT");
  lt_free_loop(loop);
  cr_assert(eq(int, is_default(SIGUSR1), 1), "USR1 restored");
  cr_assert(eq(int, is_default(SIGHUP), 1), "HUP restored");
  cr_assert(eq(int, is_default(SIGINT), 1), "INT restored (SIG_DFL in C)");
  cr_assert(eq(int, calls, 0), "nothing ran");
}

ONE_TEST(loop_signal, a_second_add_replaces_the_callback) {
  lspec_loop *loop = lt_new_loop(backend);
  int first = 0, second = 0;
  struct lt_goal goal = {&second, 1};

  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &first), LSPEC_OK), "first");
  cr_assert(eq(int, I->loop_add_signal_handler(loop, SIGUSR1, lt_count_cb,
                                               &second), LSPEC_OK), "second");
  cr_assert(eq(int, raise(SIGUSR1), 0), "raise");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "run_until");
  cr_assert(eq(int, first, 0), "the replaced callback is not called");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 1),
            "one handler");
  cr_assert(eq(int, I->loop_remove_signal_handler(loop, SIGUSR1), 0),
            "and only one");
  lt_free_loop(loop);
}

ONE_TEST(loop_signal, the_last_loop_to_add_owns_the_signal) {
  lspec_loop *a = lt_new_loop(backend), *b = lt_new_loop(backend);
  int a_calls = 0, b_calls = 0;
  struct lt_goal goal = {&b_calls, 1};

  cr_assert(eq(int, I->loop_add_signal_handler(a, SIGUSR1, lt_count_cb,
                                               &a_calls), LSPEC_OK), "a");
  cr_assert(eq(int, I->loop_add_signal_handler(b, SIGUSR1, lt_count_cb,
                                               &b_calls), LSPEC_OK), "b");
  cr_assert(eq(int, raise(SIGUSR1), 0), "raise");
  cr_assert(eq(int, I->loop_run_until(b, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "b receives it");
  lt_run_for(a, 0.02);
  cr_assert(eq(int, a_calls, 0), "a does not");
  /* a gave the signal up: its remove and close leave b's handler alone. */
  cr_assert(eq(int, I->loop_remove_signal_handler(a, SIGUSR1), 0),
            "a has no handler any more");
  lt_free_loop(a);
  cr_assert(eq(int, is_default(SIGUSR1), 0), "b's handler survives a's close");
  cr_assert(eq(int, raise(SIGUSR1), 0), "raise again");
  goal.at_least = 2;
  cr_assert(eq(int, I->loop_run_until(b, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "b still receives it");
  lt_free_loop(b);
  cr_assert(eq(int, is_default(SIGUSR1), 1), "b's close restored the default");
}

/* The loop runs in a helper thread; the main thread adds and removes. */
struct remote {
  lspec_loop *loop;   /* the loop */
  atomic_int running; /* it runs */
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

ONE_TEST(loop_signal, the_main_thread_cannot_touch_a_loop_running_elsewhere) {
  struct remote r = {lt_new_loop(backend), 0, 0, -99};
  int calls = 0;
  pthread_t t;

  cr_assert(eq(int, I->loop_call_soon(r.loop, remote_started, &r, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, pthread_create(&t, NULL, run_remote, &r), 0), "thread");
  while (!atomic_load(&r.running))
    sched_yield();
  cr_assert(eq(int, I->loop_add_signal_handler(r.loop, SIGUSR1, lt_count_cb,
                                               &calls), LSPEC_E_RUNTIME),
            "add while it runs in another thread");
  LT_ASSERT_MSG("Non-thread-safe operation invoked on an event loop other "
                "than the current one");
  cr_assert(eq(int, I->loop_remove_signal_handler(r.loop, SIGUSR1),
               LSPEC_E_RUNTIME), "remove likewise");
  cr_assert(eq(int, I->loop_call_soon_threadsafe(r.loop, remote_release, &r,
                                                 NULL), LSPEC_OK), "release");
  pthread_join(t, NULL);
  cr_assert(eq(int, r.rc, LSPEC_OK), "the helper's run");
  cr_assert(eq(int, is_default(SIGUSR1), 1), "nothing installed");
  lt_free_loop(r.loop);
}
