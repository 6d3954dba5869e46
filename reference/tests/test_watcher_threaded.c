/* test_watcher_threaded.c - ThreadedChildWatcher through the public table:
 * returncodes, delivery in the loop's thread and never inside add,
 * replacement and removal (the page's side of conflicts C3 and C4), the
 * 255 convention, a closed loop, many children, close leaving nothing
 * behind (C7), and the waiting threads' stack, signal mask and names.
 */
#include "watcher_helpers.h"

#include <sys/resource.h>
#include <sys/syscall.h>

TestSuite(watcher_threaded, .timeout = 60);

/* --- returncodes and delivery
 * ----------------------------------------------------- */

ONE_TEST(watcher_threaded, returncodes_are_delivered_once_in_the_loop_thread) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec[5];
  struct wt_all all = {rec, 5};
  int pids[5], want[5] = {0, 3, 255, -SIGKILL, -SIGTERM}, i;

  memset(rec, 0, sizeof rec);
  pids[0] = wt_spawn_exit(0);
  pids[1] = wt_spawn_exit(3);
  pids[2] = wt_spawn_exit(255);
  pids[3] = wt_spawn_signal(SIGKILL);
  pids[4] = wt_spawn_signal(SIGTERM);
  for (i = 0; i < 5; i++)
    cr_assert(eq(int, wt_add_in_loop(loop, w, pids[i], &rec[i]), LSPEC_OK),
              "add %d: %s", i, I->last_error());
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  lt_run_for(loop, 0.05); /* room for a second, wrong delivery */
  wt_assert_each_once(rec, pids, want, 5);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, an_exit_is_delivered_on_a_later_iteration_only) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};
  int pid = wt_spawn_exit(5);

  memset(&rec, 0, sizeof rec);
  /* The child is certainly dead before the add: still nothing inside it
   * (wt_add_in_loop checks), and nothing without running the loop. */
  wt_wait_exited(pid);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add: %s",
            I->last_error());
  cr_assert(eq(int, wt_wait_reaped(pid), 1), "its thread reaps it");
  lt_nap(20);
  cr_assert(eq(int, atomic_load(&rec.calls), 0),
            "the waiting thread never calls the callback itself");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, rec.returncode, 5), "returncode");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, without_a_running_loop_add_is_a_runtime_error) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  int pid = wt_spawn_exit(0);

  (void)backend;
  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, wt_rec_cb, &rec),
               LSPEC_E_RUNTIME),
            "no running loop");
  LT_ASSERT_MSG("no running event loop");
  waitpid(pid, NULL, 0);
  wt_free(w);
}

/* --- replacement and removal (the page's side of C3 and C4)
 * ------------------------- */

ONE_TEST(watcher_threaded, a_second_add_replaces_the_handler) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec first, second;
  struct wt_all all = {&second, 1};
  int pid = wt_spawn_sleeper();

  memset(&first, 0, sizeof first);
  memset(&second, 0, sizeof second);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &first), LSPEC_OK), "add 1");
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &second), LSPEC_OK), "add 2");
  kill(pid, SIGKILL);
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&first.calls), 0), "the first is replaced");
  cr_assert(eq(int, atomic_load(&second.calls), 1), "the second runs once");
  cr_assert(eq(int, second.returncode, -SIGKILL), "with the real returncode");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded,
         remove_before_exit_calls_nothing_and_leaves_no_zombie) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1), "removed");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0),
            "nothing left to remove");
  kill(pid, SIGKILL);
  cr_assert(eq(int, wt_wait_reaped(pid), 1), "the child is still reaped");
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "the callback never runs");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, remove_then_add_again_delivers_to_the_new_handler) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1), "removed");
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "re-add");
  kill(pid, SIGTERM);
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&rec.calls), 1), "once");
  cr_assert(eq(int, rec.returncode, -SIGTERM), "returncode");
  cr_assert(eq(int, wt_warning_count(), 0), "no 255 from a second thread");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, removing_an_unknown_pid_returns_0) {
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  (void)backend;
  cr_assert(eq(int, I->watcher_remove_child_handler(w, 1), 0), "pid 1");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, getpid()), 0), "self");
  wt_free(w);
}

/* --- the 255 convention and closed loops
 * ---------------------------------------------- */

ONE_TEST(watcher_threaded,
         a_child_reaped_elsewhere_reports_255_with_a_warning) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};
  char want[128];
  int pid = wt_spawn_exit(7);

  wt_hook_install();
  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, waitpid(pid, NULL, 0), pid), "reaped here first");
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, rec.returncode, 255), "255");
  cr_assert(eq(int, wt_warning_count(), 1), "one warning");
  snprintf(want, sizeof want,
           "Unknown child process pid %d, will report returncode 255", pid);
  cr_assert(eq(str, wt_warned.text, want), "the text: %s", wt_warned.text);
  cr_assert(eq(int, wt_warned.category, LSPEC_WARN_LOG_WARNING), "category");
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, a_pid_that_is_not_our_child_reports_255) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};

  wt_hook_install();
  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, 1, &rec), LSPEC_OK), "add pid 1");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, rec.returncode, 255), "255");
  cr_assert(eq(str, wt_warned.text,
               "Unknown child process pid 1, will report returncode 255"),
            "the text: %s", wt_warned.text);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, a_closed_loop_gets_a_warning_and_no_callback) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  char want[160];
  int pid = wt_spawn_sleeper();

  wt_hook_install();
  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close the loop");
  kill(pid, SIGKILL);
  cr_assert(eq(int, wt_wait_warnings(1), 1), "one warning");
  cr_assert(eq(int, wt_wait_reaped(pid), 1), "the child is reaped");
  snprintf(want, sizeof want,
           "Loop <_UnixSelectorEventLoop running=False closed=True "
           "debug=False> that handles pid %d is closed",
           pid);
  cr_assert(eq(str, wt_warned.text, want), "the text: %s", wt_warned.text);
  cr_assert(eq(int, wt_warned.category, LSPEC_WARN_LOG_WARNING), "category");
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "the callback is dropped");
  wt_free(w);
  I->loop_release(loop);
}

/* --- many children
 * --------------------------------------------------------------------- */

#define MANY 200

struct many_req {
  lspec_watcher *w;    /* the watcher */
  int *pids;           /* the children */
  struct wt_rec *recs; /* one record each */
  int failures;        /* adds that failed */
};

static void add_many_cb(void *arg) {
  struct many_req *m = arg;
  int i;
  for (i = 0; i < MANY; i++)
    if (I->watcher_add_child_handler(m->w, m->pids[i], wt_rec_cb,
                                     &m->recs[i]) != LSPEC_OK)
      m->failures++;
}

ONE_TEST(watcher_threaded, two_hundred_children_are_each_delivered_once) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  static struct wt_rec recs[MANY];
  static int pids[MANY];
  struct wt_all all = {recs, MANY};
  struct many_req m = {w, pids, recs, 0};
  int i;

  memset(recs, 0, sizeof recs);
  for (i = 0; i < MANY; i++)
    pids[i] = wt_spawn_exit(i % 256);
  cr_assert(eq(int, I->loop_call_soon(loop, add_many_cb, &m, NULL), LSPEC_OK),
            "call_soon");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 30), LSPEC_OK),
            "run_until: %s", I->last_error());
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, m.failures, 0), "every add succeeded");
  for (i = 0; i < MANY; i++) {
    cr_assert(eq(int, atomic_load(&recs[i].calls), 1), "child %d: once", i);
    cr_assert(eq(int, recs[i].pid, pids[i]), "child %d: pid", i);
    cr_assert(eq(int, recs[i].returncode, i % 256), "child %d: rc", i);
  }
  wt_free(w);
  lt_free_loop(loop);
}

/* --- close (the page's side of C7)
 * ---------------------------------------------------- */

ONE_TEST(watcher_threaded, close_stops_every_thread_and_leaves_no_zombie) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec[3];
  int pids[3], threads, i;

  memset(rec, 0, sizeof rec);
  threads = lt_count_entries("/proc/self/task");
  for (i = 0; i < 3; i++) {
    pids[i] = wt_spawn_sleeper();
    cr_assert(eq(int, wt_add_in_loop(loop, w, pids[i], &rec[i]), LSPEC_OK),
              "add %d", i);
  }
  cr_assert(eq(int, lt_count_entries("/proc/self/task"), threads + 3),
            "one thread per child");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, lt_threads_settle(threads), threads),
            "close alone joined every thread");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "a second close");
  for (i = 0; i < 3; i++) {
    kill(pids[i], SIGKILL);
    wt_wait_exited(pids[i]);
  }
  /* The children outlived the watcher's threads: the release's sweep
   * reaps them (lt_run checks for zombies and descriptors). */
  I->watcher_release(w);
  lt_run_for(loop, 0.05);
  for (i = 0; i < 3; i++)
    cr_assert(eq(int, atomic_load(&rec[i].calls), 0),
              "a handler dropped by close is never called");
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, release_without_close_also_leaves_nothing) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  int pid = wt_spawn_sleeper();

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  I->watcher_release(w); /* the last reference closes */
  kill(pid, SIGKILL);
  wt_wait_exited(pid);
  /* A later watcher's activity sweeps the orphan. */
  w = wt_new(LSPEC_WATCHER_THREADED);
  wt_free(w);
  cr_assert(eq(int, wt_wait_reaped(pid), 1), "the orphan was reaped");
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, the_watcher_works_again_after_close) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};
  int pid;

  memset(&rec, 0, sizeof rec);
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  pid = wt_spawn_exit(9);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK),
            "add after close, as CPython allows");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, rec.returncode, 9), "returncode");
  wt_free(w);
  lt_free_loop(loop);
}

/* Without a pidfd (Linux < 5.3, seccomp, valgrind 3.19, no descriptor
 * left) a thread re-tries the reap at growing intervals instead, and close
 * wakes and stops it.
 * Here pidfd_open fails with EMFILE: the descriptor limit is lowered to the
 * highest descriptor in use once the watcher's eventfd exists. */
static int highest_fd(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int max = -1, fd;
  cr_assert(ne(ptr, d, NULL), "opendir");
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && (fd = atoi(e->d_name)) > max && fd != dirfd(d))
      max = fd;
  closedir(d);
  return max;
}

/* Open pidfds of this process. */
static int count_pidfds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  char path[320], target[64];
  ssize_t n;
  int count = 0;
  cr_assert(ne(ptr, d, NULL), "opendir");
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      count += strcmp(target, "anon_inode:[pidfd]") == 0;
    }
  }
  closedir(d);
  return count;
}

ONE_TEST(watcher_threaded, without_pidfds_threads_poll_and_close_stops_them) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec warm, rec, held;
  struct wt_all all = {&warm, 1};
  struct rlimit old, low;
  int pid, sleeper, victim, fds, threads, holes[2048], nholes, lowered, probe;

  memset(&warm, 0, sizeof warm);
  memset(&rec, 0, sizeof rec);
  memset(&held, 0, sizeof held);
  /* Every child is made before any thread exists (ThreadSanitizer makes a
   * child forked after a finished, unjoined thread exit with 66). */
  pid = wt_spawn_exit(1);
  sleeper = wt_spawn_sleeper();
  victim = wt_spawn_sleeper();
  threads = lt_count_entries("/proc/self/task"); /* no waiting thread yet */
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &warm), LSPEC_OK), "warm");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());

  fds = count_pidfds();
  cr_assert(eq(int, getrlimit(RLIMIT_NOFILE, &old), 0), "getrlimit");
  low = old;
  low.rlim_cur = (rlim_t)highest_fd() + 1;
  /* valgrind refuses a limit below its own descriptors; it has no
   * pidfd_open either (3.19), so the path is the same there. */
  lowered = setrlimit(RLIMIT_NOFILE, &low) == 0;
  probe = lowered ? -1 : (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (probe >= 0)
    close(probe); /* pidfds work and cannot be exhausted: not checked */
  /* Fill the holes below the limit too. */
  nholes = 0;
  if (lowered) {
    while (nholes < 2048 && (holes[nholes] = dup(0)) >= 0)
      nholes++;
    cr_assert(eq(int, errno, EMFILE), "no descriptor left");
  }
  cr_assert(eq(int, wt_add_in_loop(loop, w, victim, &rec), LSPEC_OK), "add: %s",
            I->last_error());
  cr_assert(eq(int, wt_add_in_loop(loop, w, sleeper, &held), LSPEC_OK),
            "add the sleeper: %s", I->last_error());
  while (nholes > 0)
    close(holes[--nholes]);
  if (lowered)
    cr_assert(eq(int, setrlimit(RLIMIT_NOFILE, &old), 0), "restore");
  if (probe < 0)
    cr_assert(eq(int, count_pidfds(), fds), "no pidfd was opened");
  lt_nap(20); /* let both threads go to their polling naps */
  kill(victim, SIGTERM);
  all.recs = &rec;
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, rec.returncode, -SIGTERM),
            "delivered by the polling thread");
  cr_assert(eq(int, lt_threads_settle(threads + 1), threads + 1),
            "the sleeper's thread still polls");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, lt_threads_settle(threads), threads),
            "close stopped the polling thread");

  kill(sleeper, SIGKILL);
  wt_wait_exited(sleeper);
  I->watcher_release(w); /* sweeps the orphan, known by its pid only */
  cr_assert(eq(int, wt_wait_reaped(sleeper), 1), "the orphan was reaped");
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&held.calls), 0), "dropped by close");
  lt_free_loop(loop);
}

/* --- the trivial entries
 * ------------------------------------------------------------------ */

ONE_TEST(watcher_threaded, is_active_attach_enter_and_exit_are_trivial) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED), *same = NULL;
  lspec_policy *p = NULL;

  cr_assert(eq(int, I->watcher_kind(w), LSPEC_WATCHER_THREADED), "kind");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "active at once");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK), "a loop");
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK), "NULL");
  cr_assert(eq(int, I->policy_new_default(&p), LSPEC_OK), "a policy");
  cr_assert(eq(int, I->watcher_attach_loop(w, (lspec_loop *)p), LSPEC_OK),
            "even a non-loop (WAT-THR-001)");
  I->policy_release(p);
  cr_assert(eq(int, I->watcher_enter(w, &same), LSPEC_OK), "enter");
  cr_assert(eq(ptr, same, w), "__enter__ returns self");
  cr_assert(eq(int, I->watcher_exit(w), LSPEC_OK), "exit");
  I->watcher_release(same);
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "close");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "still active after close");
  I->watcher_release(w);
  lt_free_loop(loop);
}

/* --- the waiting thread
 * ----------------------------------------------------------------------- */

/* A warning is delivered on the waiting thread, so the hook can look at
 * that thread from inside: its stack size, signal mask and name. */
ONE_TEST(watcher_threaded, the_waiting_thread_is_small_masked_and_named) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = wt_new(LSPEC_WATCHER_THREADED);
  struct wt_rec rec;
  struct wt_all all = {&rec, 1};
  int pid = wt_spawn_exit(0);

  wt_hook_install();
  memset(&rec, 0, sizeof rec);
  waitpid(pid, NULL, 0);
  cr_assert(eq(int, wt_add_in_loop(loop, w, pid, &rec), LSPEC_OK), "add");
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, wt_warning_count(), 1), "the 255 warning");
  cr_assert(eq(int, pthread_equal(wt_warned.thread, pthread_self()), 0),
            "the warning came from the waiting thread");
#ifndef __SANITIZE_THREAD__
  /* ThreadSanitizer's pthread_create raises a small stack to a minimum of
   * its own (900 KiB seen), so the size is checked in the other builds. */
  cr_assert(le(sz, wt_warned.stack_size, (size_t)64 * 1024),
            "stack of %zu bytes: at most 64 KiB", wt_warned.stack_size);
#endif
  cr_assert(ne(sz, wt_warned.stack_size, 0), "a stack size was read");
  cr_assert(eq(int, wt_warned.headroom, 1),
            "a hook may use 16 KiB of that stack");
  cr_assert(eq(int, wt_warned.blocked_int, 1), "SIGINT blocked");
  cr_assert(eq(int, wt_warned.blocked_term, 1), "SIGTERM blocked");
  cr_assert(eq(int, wt_warned.blocked_chld, 1), "SIGCHLD blocked");
  cr_assert(eq(int, wt_warned.blocked_usr1, 1), "SIGUSR1 blocked");
  /* asyncio-waitpid-0, cut to the kernel's 15 characters (3.12 profile). */
  cr_assert(eq(str, wt_warned.name, "asyncio-waitpid"), "name %s",
            wt_warned.name);
  wt_free(w);
  lt_free_loop(loop);
}

ONE_TEST(watcher_threaded, threads_are_named_waitpid_n_before_3_11) {
  lspec_loop *loop;
  lspec_watcher *w;
  struct wt_rec rec[2];
  struct wt_all all = {rec, 2};
  int pids[2], i;

  cr_assert(eq(int, I->set_profile(LSPEC_PROFILE_3_10), LSPEC_OK),
            "set_profile: %s", I->last_error());
  /* Both children are made (and reaped here) before any thread exists. */
  for (i = 0; i < 2; i++) {
    pids[i] = wt_spawn_exit(0);
    waitpid(pids[i], NULL, 0);
  }
  loop = lt_new_loop(backend);
  w = wt_new(LSPEC_WATCHER_THREADED);
  wt_hook_install();
  memset(rec, 0, sizeof rec);
  for (i = 0; i < 2; i++) {
    cr_assert(eq(int, wt_add_in_loop(loop, w, pids[i], &rec[i]), LSPEC_OK),
              "add");
    all.n = i + 1;
    cr_assert(
        eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
        "run_until: %s", I->last_error());
    cr_assert(eq(str, wt_warned.name, i == 0 ? "waitpid-0" : "waitpid-1"),
              "name %s", wt_warned.name);
  }
  wt_free(w);
  lt_free_loop(loop);
}
