/* test_watcher_multiloop.c - MultiLoopChildWatcher through the public
 * table: the handler installed at construction (the page's side of C1),
 * delivery always through the registering loop, a worker loop served while
 * the main thread is blocked (the page's side of C8), the O(n) poll that
 * never reaps an unregistered child, replace/remove, a closed loop, the
 * 255 convention, the saved disposition and the "changed by outside code"
 * warning, close leaving no thread or descriptor, the reaper thread's
 * stack and mask, bad input and the 3.12 deprecation warning.
 */
#include "sigchld_test_helpers.h"

TestSuite(watcher_multiloop, .timeout = 60);

static int threads_now(void) { return lt_count_entries("/proc/self/task"); }

/* --- installation (C1) ----------------------------------------------------------- */

ONE_TEST(watcher_multiloop, installs_at_construction_and_close_restores) {
  int before = threads_now();
  lspec_watcher *w;

  (void)backend;
  w = wt_new(LSPEC_WATCHER_MULTILOOP);
  cr_assert(ne(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "a SIGCHLD handler from the constructor on (the page; C1)");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "active at once, no attach");
  cr_assert(eq(int, lt_threads_settle(before + 1), before + 1),
            "one reaper thread");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "SIG_DFL restored");
  cr_assert(eq(int, I->watcher_is_active(w), 0), "inactive after close");
  cr_assert(eq(int, lt_threads_settle(before), before), "no thread left");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close twice");
  /* attach_loop after close installs again, whatever its argument. */
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "attach");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "active again");
  cr_assert(eq(int, lt_threads_settle(before + 1), before + 1), "a thread");
  I->watcher_release(w); /* the last release closes */
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "SIG_DFL after the release");
}

ONE_TEST(watcher_multiloop, attach_loop_ignores_its_argument) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);

  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "a loop");
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "NULL");
  cr_assert(eq(int, I->watcher_attach_loop(w, (lspec_loop *)w), LSPEC_OK),
            "not even a loop (WAT-ML-002)");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "still active");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, close_restores_the_saved_disposition) {
  lspec_watcher *w;

  (void)backend;
  sw_set_sigchld(sw_outside_handler);
  w = wt_new(LSPEC_WATCHER_MULTILOOP);
  cr_assert(ne(ptr, (void *)sw_sigchld_handler(), (void *)sw_outside_handler),
            "replaced");
  wt_free(w);
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)sw_outside_handler),
            "the previous handler is back (WAT-ML-008)");
  sw_set_sigchld(SIG_DFL);
}

ONE_TEST(watcher_multiloop, a_handler_changed_by_outside_code_is_left_in_place) {
  lspec_watcher *w;

  (void)backend;
  sw_install();
  w = wt_new(LSPEC_WATCHER_MULTILOOP);
  sw_set_sigchld(sw_outside_handler);
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING,
                            "SIGCHLD handler was changed by outside code"), 1),
            "the warning");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)sw_outside_handler),
            "theirs stays");
  I->watcher_release(w);
  sw_set_sigchld(SIG_DFL);
}

ONE_TEST(watcher_multiloop, two_watchers_restore_the_original_in_any_order) {
  lspec_watcher *a, *b;
  int order;

  (void)backend;
  sw_install();
  for (order = 0; order < 2; order++) {
    a = wt_new(LSPEC_WATCHER_MULTILOOP);
    b = wt_new(LSPEC_WATCHER_MULTILOOP);
    wt_free(order ? b : a);
    cr_assert(ne(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
              "order %d: the other one still has the handler", order);
    cr_assert(eq(int, I->watcher_is_active(order ? a : b), 1),
              "order %d: still active", order);
    wt_free(order ? a : b);
    cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
              "order %d: SIG_DFL at the end", order);
  }
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING,
                            "SIGCHLD handler was changed by outside code"), 0),
            "no warning among our own watchers");
}

/* --- delivery ------------------------------------------------------------------------ */

ONE_TEST(watcher_multiloop, add_needs_a_running_loop) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  int gate, pid = sw_spawn_gated(0, 0, &gate);

  (void)backend;
  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_E_RUNTIME), "no running loop (WAT-ML-005)");
  LT_ASSERT_MSG("no running event loop");
  sw_open_gate(gate);
  sw_reap(pid);
  wt_free(w);
}

LOOP_TEST(watcher_multiloop, exits_are_delivered_once_through_the_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec[5];
  int pids[5], gates[5], i;
  const int codes[5] = {0, 3, 255, 0, 0}, sigs[5] = {0, 0, 0, SIGKILL, SIGTERM};
  const int want[5] = {0, 3, 255, -SIGKILL, -SIGTERM};

  memset(rec, 0, sizeof rec);
  for (i = 0; i < 5; i++) {
    pids[i] = sw_spawn_gated(codes[i], sigs[i], &gates[i]);
    cr_assert(eq(int, wt_add_in_loop(loop, w, pids[i], &rec[i]), LSPEC_OK),
              "add %d: %s", i, I->last_error());
  }
  for (i = 0; i < 5; i++)
    sw_open_gate(gates[i]);
  for (i = 0; i < 5; i++)
    cr_assert(eq(int, wt_wait_reaped(pids[i]), 1), "reaped by the watcher");
  lt_nap(20);
  cr_assert(eq(int, atomic_load(&rec[0].calls), 0),
            "the reaper thread never calls back itself");
  sw_run_until_called(loop, rec, 5);
  lt_run_for(loop, 0.05);
  wt_assert_each_once(rec, pids, want, 5);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, a_dead_child_is_never_delivered_inside_add) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  int pid = wt_spawn_exit(8);

  memset(&rec, 0, sizeof rec);
  wt_wait_exited(pid);
  /* wt_add_in_loop asserts that nothing ran inside add. */
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  sw_run_until_called(loop, &rec, 1);
  cr_assert(eq(int, rec.returncode, 8), "returncode");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, many_children_at_once) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  enum { N = 150 };
  static struct wt_rec rec[N];
  int pids[N], p[2], i, fd;
  char c;

  /* One gate for all: more exits than one locked pass collects. */
  memset(rec, 0, sizeof rec);
  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe");
  for (i = 0; i < N; i++) {
    pids[i] = fork();
    cr_assert(ne(int, pids[i], -1), "fork");
    if (pids[i] == 0) {
      for (fd = 3; fd < 1024; fd++)
        if (fd != p[0])
          close(fd);
      while (read(p[0], &c, 1) < 0 && errno == EINTR)
        ;
      lt_child_exit(i % 100);
    }
  }
  close(p[0]);
  for (i = 0; i < N; i++)
    cr_assert(eq(int, wt_add_in_loop(loop, w, pids[i], &rec[i]), LSPEC_OK),
              "add %d", i);
  close(p[1]);
  sw_run_until_called(loop, rec, N);
  lt_run_for(loop, 0.05);
  for (i = 0; i < N; i++) {
    cr_assert(eq(int, atomic_load(&rec[i].calls), 1), "child %d: once", i);
    cr_assert(eq(int, rec[i].returncode, i % 100), "child %d: code", i);
  }
  wt_free(w);
  lt_free_loop(loop);
}

/* --- a worker loop while the main thread is blocked (C8) ------------------------------ */

/* What the worker thread saw; asserted by the main thread. */
struct worker {
  lspec_watcher *w; /* the watcher */
  int pid;          /* its child */
  int gate;         /* the child's gate */
  struct wt_rec rec; /* the child callback's record */
  int add_rc;       /* add_child_handler's status */
  int run_rc;       /* run_until's status */
  int step;         /* how far the worker got (for the message) */
};

static void worker_add_cb(void *arg) {
  struct worker *wk = arg;
  wk->add_rc = I->watcher_add_child_handler(wk->w, wk->pid, wt_rec_cb,
                                            &wk->rec);
  close(wk->gate); /* the child may exit now */
  wk->gate = -1;
}

static void *worker_main(void *arg) {
  struct worker *wk = arg;
  struct wt_all all = {&wk->rec, 1};
  lspec_loop *loop = NULL;
  int p[2], fd;
  char c;

  if (I->loop_new(LSPEC_BACKEND_DEFAULT, &loop) != LSPEC_OK)
    return NULL;
  wk->step = 1;
  if (pipe2(p, O_CLOEXEC) != 0)
    goto out;
  wk->pid = fork();
  if (wk->pid == 0) {
    for (fd = 3; fd < 1024; fd++)
      if (fd != p[0])
        close(fd);
    while (read(p[0], &c, 1) < 0 && errno == EINTR)
      ;
    lt_child_exit(42);
  }
  close(p[0]);
  wk->gate = p[1];
  if (wk->pid < 0) {
    close(p[1]);
    goto out;
  }
  wk->step = 2;
  I->loop_call_soon(loop, worker_add_cb, wk, NULL);
  wk->run_rc = I->loop_run_until(loop, wt_all_called, &all, 10);
  wk->step = 3;
out:
  I->loop_close(loop);
  I->loop_release(loop);
  return NULL;
}

ONE_TEST(watcher_multiloop, a_worker_loop_is_served_while_the_main_thread_blocks) {
  struct worker wk;
  pthread_t t;

  (void)backend;
  memset(&wk, 0, sizeof wk);
  wk.w = wt_new(LSPEC_WATCHER_MULTILOOP);
  wk.add_rc = wk.run_rc = -100;
  cr_assert(eq(int, pthread_create(&t, NULL, worker_main, &wk), 0), "thread");
  /* The main thread does nothing but wait: CPython hangs here (C8). */
  cr_assert(eq(int, pthread_join(t, NULL), 0), "join");
  cr_assert(eq(int, wk.step, 3), "the worker ran to the end (step %d)",
            wk.step);
  cr_assert(eq(int, wk.add_rc, LSPEC_OK), "add in the worker's loop");
  cr_assert(eq(int, wk.run_rc, LSPEC_OK),
            "the exit reached the worker's loop in time");
  cr_assert(eq(int, atomic_load(&wk.rec.calls), 1), "once");
  cr_assert(eq(int, wk.rec.returncode, 42), "returncode");
  cr_assert(ne(int, pthread_equal(wk.rec.thread, t), 0),
            "called in the worker's thread");
  cr_assert(eq(int, sw_is_zombie(wk.pid), 0), "reaped");
  wt_free(wk.w);
}

/* --- who is reaped, replace, remove ------------------------------------------------------ */

ONE_TEST(watcher_multiloop, never_reaps_a_child_it_was_not_given) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  int gate, mine = sw_spawn_gated(0, SIGKILL, &gate), other;

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, mine, &rec), LSPEC_OK), "add");
  other = wt_spawn_exit(3);
  wt_wait_exited(other);
  sw_open_gate(gate);
  sw_run_until_called(loop, &rec, 1);
  cr_assert(eq(int, sw_is_zombie(other), 1), "the other child is left alone");
  sw_reap(other);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, a_second_add_replaces_the_handler) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec first, second;
  int gate, pid = sw_spawn_gated(5, 0, &gate);

  memset(&first, 0, sizeof first);
  memset(&second, 0, sizeof second);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &first), LSPEC_OK), "add 1");
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &second), LSPEC_OK), "add 2");
  sw_open_gate(gate);
  sw_run_until_called(loop, &second, 1);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&first.calls), 0), "replaced");
  cr_assert(eq(int, atomic_load(&second.calls), 1), "once");
  cr_assert(eq(int, second.returncode, 5), "returncode");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, remove_answers_1_then_0_and_leaves_a_zombie) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  int gate, pid = sw_spawn_gated(0, 0, &gate);

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1), "removed");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0), "nothing");
  sw_open_gate(gate);
  wt_wait_exited(pid);
  lt_run_for(loop, 0.1);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  cr_assert(eq(int, sw_is_zombie(pid), 1), "a zombie (WAT-ML-009)");
  sw_reap(pid);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, close_drops_pending_handlers) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  int gate, pid = sw_spawn_gated(0, 0, &gate);

  memset(&rec, 0, sizeof rec);
  sw_install();
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0), "dropped");
  sw_open_gate(gate);
  sw_reap(pid);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never called");
  cr_assert(eq(int, sw_count(), 0), "no warning");
  I->watcher_release(w);
  lt_free_loop(loop);
}

/* --- 255 and a closed loop ------------------------------------------------------------------ */

ONE_TEST(watcher_multiloop, not_a_child_gives_255_through_the_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;

  memset(&rec, 0, sizeof rec);
  sw_install();
  cr_assert(eq(int, wt_add_in_loop(loop, w, 1, &rec), LSPEC_OK), "add(1)");
  sw_run_until_called(loop, &rec, 1);
  cr_assert(eq(int, rec.returncode, 255), "255");
  cr_assert(eq(int, sw_seen(LSPEC_WARN_LOG_WARNING, sw_unknown_text(1)), 1),
            "with the warning");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, a_closed_loop_gets_a_warning_and_no_callback) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  char want[160];
  int gate, pid = sw_spawn_gated(0, 0, &gate);

  memset(&rec, 0, sizeof rec);
  wt_hook_install(); /* records the delivering thread's properties too */
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close the loop");
  sw_open_gate(gate);
  cr_assert(eq(int, wt_wait_warnings(1), 1), "one warning");
  snprintf(want, sizeof want,
           "Loop <_UnixSelectorEventLoop running=False closed=True "
           "debug=False> that handles pid %d is closed", pid);
  pthread_mutex_lock(&wt_warned.lock);
  cr_assert(eq(str, wt_warned.text, want), "the closed-loop warning");
  cr_assert(eq(int, wt_warned.category, LSPEC_WARN_LOG_WARNING), "logged");
  /* It came from the reaper thread: small stack, every signal blocked. */
  cr_assert(eq(int, pthread_equal(wt_warned.thread, pthread_self()), 0),
            "not the test's thread");
  cr_assert(eq(int, wt_warned.blocked_chld, 1), "SIGCHLD blocked there");
  cr_assert(eq(int, wt_warned.blocked_int, 1), "SIGINT blocked there");
#ifndef __SANITIZE_THREAD__
  /* ThreadSanitizer's pthread_create raises a small stack to a minimum of
   * its own (900 KiB seen), so the size is checked in the other builds. */
  cr_assert(le(sz, wt_warned.stack_size, (size_t)256 * 1024),
            "a small stack (%zu)", wt_warned.stack_size);
#endif
  cr_assert(eq(int, wt_warned.headroom, 1), "16 KiB usable by a hook");
  cr_assert(eq(str, wt_warned.name, "asyncio-sigchld"), "its name");
  pthread_mutex_unlock(&wt_warned.lock);
  cr_assert(eq(int, sw_is_zombie(pid), 0), "reaped");
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "the callback is dropped");
  wt_free(w);
  I->loop_release(loop);
}

/* --- bad input and the 3.12 deprecation ----------------------------------------------------- */

ONE_TEST(watcher_multiloop, bad_input) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP), *out = NULL;
  struct wt_rec rec;

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_kind(w), LSPEC_WATCHER_MULTILOOP), "kind");
  cr_assert(eq(int, I->watcher_add_child_handler(w, 0, wt_rec_cb, &rec),
               LSPEC_E_VALUE), "pid 0");
  cr_assert(eq(int, I->watcher_add_child_handler(w, 5, NULL, &rec),
               LSPEC_E_TYPE), "no callback");
  cr_assert(eq(int, I->watcher_is_active((lspec_watcher *)loop), LSPEC_E_TYPE),
            "a loop is not a watcher");
  cr_assert(eq(int, I->watcher_close(NULL), LSPEC_E_TYPE), "NULL");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, 99999), 0), "nothing");
  cr_assert(eq(int, I->watcher_enter(w, &out), LSPEC_OK), "enter");
  cr_assert(eq(ptr, out, w), "self");
  cr_assert(eq(int, I->watcher_exit(w), LSPEC_OK), "exit");
  I->watcher_release(out);
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close twice");
  I->watcher_release(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_multiloop, construction_warns_in_3_12_only) {
  lspec_watcher *w;
  (void)backend;
  sw_install();
  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_12), LSPEC_OK), "3.12");
  w = wt_new(LSPEC_WATCHER_MULTILOOP);
  cr_assert(eq(int, sw_seen(LSPEC_WARN_DEPRECATION,
                            "'MultiLoopChildWatcher' is deprecated as of "
                            "Python 3.12 and will be removed in Python "
                            "3.14."), 1),
            "the DeprecationWarning (WAT-ML-011)");
  wt_free(w);
}

ONE_TEST(watcher_multiloop, construction_is_silent_before_3_12) {
  lspec_watcher *w;
  (void)backend;
  sw_install();
  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_9), LSPEC_OK), "3.9");
  w = wt_new(LSPEC_WATCHER_MULTILOOP);
  cr_assert(eq(int, sw_count(), 0), "no warning");
  wt_free(w);
}

/* --- closing from the reaper thread itself ---------------------------------------------------- */

static lspec_watcher *hook_watcher; /* closed and released by the hook */
static atomic_int hook_done;        /* the hook did it */

static void closing_hook(void *user, int category, const char *text) {
  lspec_watcher *w = hook_watcher;
  (void)user, (void)category, (void)text;
  if (w == NULL)
    return;
  hook_watcher = NULL;
  I->watcher_close(w);
  I->watcher_release(w); /* the test's only reference */
  atomic_store(&hook_done, 1);
}

ONE_TEST(watcher_multiloop, a_hook_may_close_and_release_the_watcher) {
  int before = threads_now();
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_MULTILOOP);
  struct wt_rec rec;
  int gate, pid = sw_spawn_gated(0, 0, &gate), i;

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close the loop");
  hook_watcher = w;
  I->set_warning_hook(closing_hook, NULL);
  /* The closed-loop warning runs the hook on the reaper thread. */
  sw_open_gate(gate);
  for (i = 0; i < 10000 && !atomic_load(&hook_done); i++)
    lt_nap(1);
  cr_assert(eq(int, atomic_load(&hook_done), 1), "the hook ran");
  cr_assert(eq(int, lt_threads_settle(before), before),
            "the reaper thread ended by itself");
  cr_assert(eq(ptr, (void *)sw_sigchld_handler(), (void *)SIG_DFL),
            "SIG_DFL restored");
  cr_assert(eq(int, sw_is_zombie(pid), 0), "reaped");
  I->set_warning_hook(NULL, NULL);
  I->loop_release(loop);
}
