/* test_watcher_core.c - the watchers' core (watcher.c): argument and handle
 * checks of every entry through the public table, reference counting, and,
 * white-box, the children table and the shared helpers.
 */
#include "watcher_helpers.h"

#include "watcher.h"

TestSuite(watcher_core, .timeout = 60);

/* --- watcher_new
 * -------------------------------------------------------------------- */

ONE_TEST(watcher_core, unknown_kinds_are_value_errors) {
  lspec_watcher *w = (lspec_watcher *)&w;
  (void)backend;
  cr_assert(eq(int, I->watcher_new(0, &w), LSPEC_E_VALUE), "kind 0");
  cr_assert(eq(ptr, w, NULL), "out is cleared");
  cr_assert(eq(int, I->watcher_new(7, &w), LSPEC_E_VALUE), "kind 7");
  cr_assert(eq(int, I->watcher_new(-1, &w), LSPEC_E_VALUE), "kind -1");
  cr_assert(
      eq(int, I->watcher_new(LSPEC_WATCHER_THREADED, NULL), LSPEC_E_VALUE),
      "out NULL");
  cr_assert(
      eq(int, I->watcher_new(LSPEC_WATCHER_NATIVE, &w), LSPEC_E_UNSUPPORTED),
      "the reference has no native kind");
  cr_assert(eq(ptr, w, NULL), "no watcher");
}

ONE_TEST(watcher_core, every_kind_is_either_made_or_unsupported) {
  lspec_watcher *w;
  int kind, rc;
  (void)backend;
  for (kind = LSPEC_WATCHER_THREADED; kind <= LSPEC_WATCHER_NATIVE; kind++) {
    w = NULL;
    rc = I->watcher_new(kind, &w);
    if (rc == LSPEC_OK) {
      cr_assert(eq(int, I->watcher_kind(w), kind), "kind %d", kind);
      wt_free(w);
    } else {
      cr_assert(eq(int, rc, LSPEC_E_UNSUPPORTED), "kind %d: %s", kind,
                I->last_error());
      cr_assert(eq(ptr, w, NULL), "kind %d: no watcher", kind);
    }
  }
}

/* --- handle checks
 * ------------------------------------------------------------------ */

/* Every entry refuses `h` (NULL, or a handle of another kind). */
static void refuses(lspec_watcher *h, const char *what) {
  lspec_watcher *out = (lspec_watcher *)&out;
  cr_assert(eq(int, I->watcher_kind(h), LSPEC_E_TYPE), "kind(%s)", what);
  cr_assert(eq(int, I->watcher_add_child_handler(h, 1, wt_rec_cb, NULL),
               LSPEC_E_TYPE),
            "add(%s)", what);
  cr_assert(eq(int, I->watcher_remove_child_handler(h, 1), LSPEC_E_TYPE),
            "remove(%s)", what);
  cr_assert(eq(int, I->watcher_attach_loop(h, NULL), LSPEC_E_TYPE),
            "attach(%s)", what);
  cr_assert(eq(int, I->watcher_is_active(h), LSPEC_E_TYPE), "is_active(%s)",
            what);
  cr_assert(eq(int, I->watcher_close(h), LSPEC_E_TYPE), "close(%s)", what);
  cr_assert(eq(int, I->watcher_enter(h, &out), LSPEC_E_TYPE), "enter(%s)",
            what);
  cr_assert(eq(ptr, out, NULL), "enter(%s) clears out", what);
  cr_assert(eq(int, I->watcher_exit(h), LSPEC_E_TYPE), "exit(%s)", what);
  I->watcher_retain(h); /* ignored */
  I->watcher_release(h);
}

ONE_TEST(watcher_core, null_and_wrong_kind_handles_are_type_errors) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_policy *p = NULL;

  refuses(NULL, "NULL");
  LT_ASSERT_MSG("expected a child watcher handle, got NULL");
  refuses((lspec_watcher *)loop, "a loop");
  LT_ASSERT_MSG("expected a child watcher handle, got a handle of another");
  cr_assert(eq(int, I->policy_new_default(&p), LSPEC_OK), "policy");
  refuses((lspec_watcher *)p, "a policy");
  I->policy_release(p);
  cr_assert(eq(int, I->loop_is_closed(loop), 0),
            "the loop survived being retained/released as a watcher");
  lt_free_loop(loop);
}

ONE_TEST(watcher_core, add_checks_its_callback_and_pid) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED), *out = NULL;
  (void)backend;
  cr_assert(
      eq(int, I->watcher_add_child_handler(w, 1, NULL, NULL), LSPEC_E_TYPE),
      "NULL callback");
  cr_assert(eq(int, I->watcher_add_child_handler(w, 0, wt_rec_cb, NULL),
               LSPEC_E_VALUE),
            "pid 0");
  cr_assert(eq(int, I->watcher_add_child_handler(w, -5, wt_rec_cb, NULL),
               LSPEC_E_VALUE),
            "pid -5");
  cr_assert(eq(int, I->watcher_enter(w, NULL), LSPEC_E_VALUE), "enter, NULL");
  cr_assert(eq(int, I->watcher_enter(w, &out), LSPEC_OK), "enter");
  I->watcher_release(out);
  wt_free(w);
}

ONE_TEST(watcher_core, double_close_is_harmless) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  (void)backend;
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close again");
  I->watcher_release(w);
}

/* --- reference counting
 * -------------------------------------------------------------- */

ONE_TEST(watcher_core, the_last_release_closes) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  int threads = lt_count_entries("/proc/self/task");
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  I->watcher_retain(w);
  I->watcher_release(w);
  cr_assert(eq(int, lt_count_entries("/proc/self/task"), threads + 1),
            "still one waiting thread while a reference is held");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "still usable");
  I->watcher_release(w);
  cr_assert(eq(int, lt_threads_settle(threads), threads),
            "the last release stopped the thread");
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  /* The child outlived the watcher: it became an orphan whose pidfd the
   * next sweep (any Threaded watcher's add, close or release) closes. */
  wt_free(wt_new(LSPEC_WATCHER_THREADED));
  lt_free_loop(loop);
}

/* --- white box: the children table
 * ------------------------------------------------------- */

ONE_TEST(watcher_core, the_children_table_finds_takes_and_recycles) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct lspec__child *c, *taken[300];
  int i;

  (void)backend;
  pthread_mutex_lock(&w->lock);
  for (i = 1; i <= 300; i++) {
    c = lspec__children_add(w, i * 7);
    cr_assert(ne(ptr, c, NULL), "add %d", i);
    cr_assert(eq(int, c->pid, i * 7), "pid %d", i);
    cr_assert(eq(int, c->pidfd, -1), "pidfd -1 at first");
    cr_assert(eq(ptr, c->loop, NULL), "no loop at first");
  }
  cr_assert(eq(sz, w->children.count, 300), "count");
  for (i = 1; i <= 300; i++) {
    c = lspec__children_find(w, i * 7);
    cr_assert(ne(ptr, c, NULL), "find %d", i);
    cr_assert(eq(int, c->pid, i * 7), "found the right one %d", i);
  }
  cr_assert(eq(ptr, lspec__children_find(w, 3), NULL), "absent pid");
  cr_assert(eq(ptr, lspec__children_take(w, 3), NULL), "take absent");
  for (i = 1; i <= 300; i++) {
    taken[i - 1] = lspec__children_take(w, i * 7);
    cr_assert(ne(ptr, taken[i - 1], NULL), "take %d", i);
    cr_assert(eq(ptr, lspec__children_find(w, i * 7), NULL), "gone %d", i);
  }
  cr_assert(eq(sz, w->children.count, 0), "empty");
  for (i = 0; i < 300; i++)
    lspec__children_recycle(w, taken[i]);
  /* Warm: registration reuses recycled entries instead of allocating. */
  for (i = 1; i <= 300; i++) {
    int j, reused = 0;
    c = lspec__children_add(w, 100000 + i);
    for (j = 0; j < 300; j++)
      reused |= c == taken[j];
    cr_assert(eq(int, reused, 1), "entry %d came from the free list", i);
  }
  pthread_mutex_unlock(&w->lock);
  wt_free(w); /* frees what is still registered */
}

/* --- white box: the helpers
 * ------------------------------------------------------------------ */

ONE_TEST(watcher_core, returncode_follows_waitstatus_to_exitcode) {
  (void)backend;
  cr_assert(eq(int, lspec__returncode(0), 0), "exit 0");
  cr_assert(eq(int, lspec__returncode(7 << 8), 7), "exit 7");
  cr_assert(eq(int, lspec__returncode(255 << 8), 255), "exit 255");
  cr_assert(eq(int, lspec__returncode(SIGKILL), -SIGKILL), "SIGKILL");
  cr_assert(eq(int, lspec__returncode(SIGTERM | 0x80), -SIGTERM),
            "SIGTERM with a core dump");
  cr_assert(eq(int, lspec__returncode(0x137f), 0x137f),
            "stopped: passed through");
}

ONE_TEST(watcher_core, reap_tells_running_reaped_and_unknown) {
  int pid = wt_spawn_sleeper(), rc = 1234;
  (void)backend;
  cr_assert(eq(int, lspec__reap(pid, &rc), 0), "running");
  cr_assert(eq(int, rc, 1234), "rc untouched");
  kill(pid, SIGKILL);
  wt_wait_exited(pid);
  cr_assert(eq(int, lspec__reap(pid, &rc), 1), "reaped");
  cr_assert(eq(int, rc, -SIGKILL), "rc");
  cr_assert(eq(int, lspec__reap(pid, &rc), -ECHILD), "reaped elsewhere");
  cr_assert(eq(int, lspec__reap(1, &rc), -ECHILD), "not our child");
}

ONE_TEST(watcher_core, unknown_child_warns_and_returns_255) {
  (void)backend;
  wt_hook_install();
  cr_assert(eq(int, lspec__unknown_child(4242), 255), "255");
  cr_assert(eq(str, wt_warned.text,
               "Unknown child process pid 4242, will report returncode 255"),
            "text %s", wt_warned.text);
  cr_assert(eq(int, wt_warned.category, LSPEC_WARN_LOG_WARNING), "category");
}

ONE_TEST(watcher_core, deliver_without_a_loop_calls_synchronously) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct lspec__child *c;

  (void)backend;
  memset(&rec, 0, sizeof rec);
  pthread_mutex_lock(&w->lock);
  c = lspec__children_add(w, 77);
  c->cb = wt_rec_cb;
  c->arg = &rec;
  lspec__children_take(w, 77);
  pthread_mutex_unlock(&w->lock);
  lspec__child_deliver(w, c, 3);
  cr_assert(eq(int, atomic_load(&rec.calls), 1), "called inside deliver");
  cr_assert(eq(int, rec.pid, 77), "pid");
  cr_assert(eq(int, rec.returncode, 3), "rc");
  cr_assert(ne(int, pthread_equal(rec.thread, pthread_self()), 0), "here");
  wt_free(w);
}

ONE_TEST(watcher_core, deliver_through_a_loop_waits_for_the_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};
  struct lspec__child *c;

  memset(&rec, 0, sizeof rec);
  pthread_mutex_lock(&w->lock);
  c = lspec__children_add(w, 78);
  c->cb = wt_rec_cb;
  c->arg = &rec;
  c->loop = loop;
  I->loop_retain(loop);
  lspec__children_take(w, 78);
  pthread_mutex_unlock(&w->lock);
  lspec__child_deliver(w, c, -2);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "not inside deliver");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, rec.returncode, -2), "rc");
  wt_free(w);
  lt_free_loop(loop);
}
