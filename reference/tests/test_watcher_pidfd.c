/* test_watcher_pidfd.c - PidfdChildWatcher (watcher_pidfd.c): delivery from
 * the reader, returncodes, pids gone or reaped elsewhere, foreign children
 * left alone, replace, remove, attach/detach, close, a kernel without
 * pidfd_open, and the 3.9-3.11 versus 3.12 implementations.
 */
#include "pidfd_helpers.h"

#include "syscalls.h"

/* --- profiles ------------------------------------------------------------- */

ONE_TEST(pidfd, absent_in_3_8) {
  lspec_watcher *w = NULL;
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_8);
  cr_assert(eq(int, I->watcher_new(LSPEC_WATCHER_PIDFD, &w),
               LSPEC_E_ATTRIBUTE));
  cr_assert(eq(ptr, w, NULL));
  LT_ASSERT_MSG("module 'asyncio' has no attribute 'PidfdChildWatcher'");
}

ONE_TEST(pidfd, kind_and_enter) {
  lspec_watcher *w, *e = NULL;
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_9);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_kind(w), LSPEC_WATCHER_PIDFD));
  cr_assert(eq(int, I->watcher_enter(w, &e), LSPEC_OK));
  cr_assert(eq(ptr, e, w), "__enter__ returns self");
  cr_assert(eq(int, I->watcher_exit(w), LSPEC_OK));
  I->watcher_release(e);
  ph_free_watcher(w);
}

/* 3.12: the running loop at add time; none is RuntimeError. */
ONE_TEST(pidfd, add_needs_running_loop_3_12) {
  lspec_watcher *w;
  struct ph_rec rec = {0};
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_add_child_handler(w, getpid(), ph_rec_cb, &rec),
               LSPEC_E_RUNTIME));
  LT_ASSERT_MSG("no running event loop");
  ph_free_watcher(w);
}

/* 3.9-3.11: the attached loop; none is CPython's AttributeError. */
ONE_TEST(pidfd, add_needs_attached_loop_3_9) {
  lspec_watcher *w;
  struct ph_rec rec = {0};
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_9);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_add_child_handler(w, getpid(), ph_rec_cb, &rec),
               LSPEC_E_ATTRIBUTE));
  LT_ASSERT_MSG("'NoneType' object has no attribute '_add_reader'");
  ph_free_watcher(w);
}

static void record_active(void *arg) {
  void **a = arg;
  *(int *)a[1] = I->watcher_is_active(a[0]);
}

/* 3.9-3.11: active only while the attached loop runs. */
LOOP_TEST(pidfd, is_active_3_10) {
  lspec_watcher *w;
  lspec_loop *loop = lt_new_loop(backend);
  int inside = -1;
  void *args[2];
  ph_setup(LSPEC_PROFILE_3_10);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_is_active(w), 0), "not attached");
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
  cr_assert(eq(int, I->watcher_is_active(w), 0), "attached, not running");
  args[0] = w;
  args[1] = &inside;
  cr_assert(eq(int, I->loop_call_soon(loop, record_active, args, NULL),
               LSPEC_OK));
  lt_one_iteration(loop);
  cr_assert(eq(int, inside, 1), "attached and running");
  ph_free_watcher(w);
  cr_assert(eq(int, I->watcher_is_active(w = ph_new_pidfd()), 0));
  I->watcher_release(w);
  lt_free_loop(loop);
}

/* 3.12: always active; attach_loop does nothing, whatever it gets. */
ONE_TEST(pidfd, stateless_3_12) {
  lspec_watcher *w;
  lspec_loop *loop = lt_new_loop(backend);
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_is_active(w), 1));
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK));
  cr_assert(eq(int, ph_count_category(LSPEC_WARN_RUNTIME), 0));
  cr_assert(eq(int, I->watcher_is_active(w), 1));
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* --- delivery ----------------------------------------------------------------- */

/* 3.12: exit status, in the loop's thread, synchronously from the reader:
 * the iteration that sees the pidfd readable calls the callback. */
static void exit_code_in(int backend, int profile, int code) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  int pid;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(profile);
  w = ph_new_pidfd();
  pid = ph_spawn_exit(code);
  if (profile >= LSPEC_PROFILE_3_12) {
    cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &rec), LSPEC_OK),
              "add: %s", I->last_error());
  } else {
    cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
    cr_assert(eq(int, I->watcher_add_child_handler(w, pid, ph_rec_cb, &rec),
                 LSPEC_OK),
              "add: %s", I->last_error());
  }
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "never inside add");
  ph_wait_exited(pid);
  lt_one_iteration(loop);
  cr_assert(eq(int, atomic_load(&rec.calls), 1),
            "called from the reader, in the iteration that saw the exit");
  cr_assert(eq(int, rec.pid, pid));
  cr_assert(eq(int, rec.returncode, code));
  cr_assert(rec.thread == pthread_self(), "in the loop's thread");
  cr_assert(eq(ptr, rec.running, loop), "inside the running loop");
  cr_assert(eq(int, ph_is_zombie(pid), 0), "the watcher reaped it");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0),
            "delivered: nothing left to remove");
  ph_free_watcher(w);
  lt_free_loop(loop);
}

LOOP_TEST(pidfd, exit_code_3_12) { exit_code_in(backend, LSPEC_PROFILE_3_12, 7); }
LOOP_TEST(pidfd, exit_code_zero_3_12) {
  exit_code_in(backend, LSPEC_PROFILE_3_12, 0);
}
LOOP_TEST(pidfd, exit_code_3_9) { exit_code_in(backend, LSPEC_PROFILE_3_9, 42); }
LOOP_TEST(pidfd, exit_code_3_11) {
  exit_code_in(backend, LSPEC_PROFILE_3_11, 255);
}

/* A death by SIGKILL reports -9. */
LOOP_TEST(pidfd, signal_death) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  int pid;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  pid = ph_spawn_sleeper();
  cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &rec), LSPEC_OK));
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "still running");
  kill(pid, SIGKILL);
  ph_run_until_called(loop, &rec);
  cr_assert(eq(int, rec.returncode, -SIGKILL));
  cr_assert(eq(int, atomic_load(&rec.calls), 1));
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* pidfd_open on a pid that no longer exists: ProcessLookupError. */
ONE_TEST(pidfd, process_gone) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  int pid;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_9);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
  pid = ph_spawn_exit(0);
  ph_reap(pid);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, ph_rec_cb, &rec),
               LSPEC_E_PROCESS_LOOKUP));
  LT_ASSERT_MSG("[Errno 3] No such process");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0));
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* A registered child reaped by someone else: 255 and CPython's warning. */
LOOP_TEST(pidfd, reaped_elsewhere) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  char text[160];
  int pid;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  pid = ph_spawn_exit(3);
  cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &rec), LSPEC_OK));
  cr_assert(ne(int, ph_reap(pid), -1), "the test reaps it first");
  ph_run_until_called(loop, &rec);
  cr_assert(eq(int, rec.returncode, 255));
  snprintf(text, sizeof text,
           "child process pid %d exit status already read:  will report "
           "returncode 255",
           pid);
  cr_assert(eq(int, ph_count_warnings(LSPEC_WARN_LOG_WARNING, text), 1),
            "warning \"%s\"", text);
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* Only registered pids are waited for: an unregistered child that exits
 * stays a zombie until its owner (the test) reaps it. */
LOOP_TEST(pidfd, never_reaps_foreign_children) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  int mine, foreign;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  foreign = ph_spawn_exit(5);
  mine = ph_spawn_exit(6);
  ph_wait_exited(foreign);
  cr_assert(eq(int, ph_add_in_loop(loop, w, mine, &rec), LSPEC_OK));
  ph_run_until_called(loop, &rec);
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, rec.pid, mine));
  cr_assert(eq(int, rec.returncode, 6));
  cr_assert(eq(int, ph_is_zombie(foreign), 1), "left to its owner");
  cr_assert(eq(int, WEXITSTATUS(ph_reap(foreign)), 5),
            "its status is intact");
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* --- replace and remove ---------------------------------------------------- */

/* The page: a second callback for the same pid replaces the first (CPython
 * 3.12 fires both: conflict C3). */
static void replace_in(int backend, int profile) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec first = {0}, second = {0};
  int pid, fds;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(profile);
  w = ph_new_pidfd();
  pid = ph_spawn_sleeper();
  if (profile >= LSPEC_PROFILE_3_12) {
    cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &first), LSPEC_OK));
    fds = lt_count_entries("/proc/self/fd");
    cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &second), LSPEC_OK));
  } else {
    cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
    cr_assert(eq(int, I->watcher_add_child_handler(w, pid, ph_rec_cb, &first),
                 LSPEC_OK));
    fds = lt_count_entries("/proc/self/fd");
    cr_assert(eq(int,
                 I->watcher_add_child_handler(w, pid, ph_rec_cb, &second),
                 LSPEC_OK));
  }
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds),
            "the pidfd is kept, not doubled");
  kill(pid, SIGKILL);
  ph_run_until_called(loop, &second);
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, atomic_load(&first.calls), 0), "replaced");
  cr_assert(eq(int, atomic_load(&second.calls), 1));
  cr_assert(eq(int, second.returncode, -SIGKILL));
  ph_free_watcher(w);
  lt_free_loop(loop);
}

LOOP_TEST(pidfd, replace_3_12) { replace_in(backend, LSPEC_PROFILE_3_12); }
LOOP_TEST(pidfd, replace_3_9) { replace_in(backend, LSPEC_PROFILE_3_9); }

/* The page: remove returns 1, then 0; the callback never runs, the pidfd
 * and reader are gone and the child is left to its owner (CPython 3.12
 * always returns True and still fires: conflict C4). */
LOOP_TEST(pidfd, remove) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  int pid, fds;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  pid = ph_spawn_sleeper();
  fds = lt_count_entries("/proc/self/fd");
  cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &rec), LSPEC_OK));
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds + 1),
            "one pidfd per child");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 1));
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds),
            "remove closed the pidfd");
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0));
  cr_assert(eq(int, I->loop_remove_reader(loop, fds), 0),
            "and removed the reader");
  kill(pid, SIGKILL);
  ph_wait_exited(pid);
  lt_run_for(loop, 0.05);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "removed: never called");
  cr_assert(eq(int, ph_is_zombie(pid), 1), "not reaped by the watcher");
  ph_reap(pid);
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* --- attach and detach (3.9-3.11) ------------------------------------------ */

static const char detach_warning[] =
    "A loop is being detached from a child watcher with pending handlers";

/* Detaching with pending handlers warns; the handlers stay, and the next
 * attach watches them on the new loop (CPython drops them: conflict C5). */
LOOP_TEST(pidfd, detach_warns_and_keeps_3_10) {
  lspec_watcher *w;
  lspec_loop *one, *two;
  struct ph_rec rec = {0};
  int pid;

  PH_REQUIRE_PIDFD();
  one = lt_new_loop(backend);
  two = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_10);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK));
  cr_assert(eq(int, ph_count_category(LSPEC_WARN_RUNTIME), 0),
            "nothing attached, nothing to warn about");
  cr_assert(eq(int, I->watcher_attach_loop(w, one), LSPEC_OK));
  pid = ph_spawn_sleeper();
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, ph_rec_cb, &rec),
               LSPEC_OK));
  cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK));
  cr_assert(eq(int, ph_count_warnings(LSPEC_WARN_RUNTIME, detach_warning), 1));
  kill(pid, SIGKILL);
  ph_wait_exited(pid);
  lt_run_for(one, 0.02);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "the old loop lost it");
  cr_assert(eq(int, I->watcher_attach_loop(w, two), LSPEC_OK));
  ph_run_until_called(two, &rec);
  cr_assert(eq(int, rec.returncode, -SIGKILL));
  cr_assert(eq(ptr, rec.running, two));
  cr_assert(eq(int, ph_count_warnings(LSPEC_WARN_RUNTIME, detach_warning), 1),
            "a re-attach does not warn");
  ph_free_watcher(w);
  lt_free_loop(one);
  lt_free_loop(two);
}

/* Attaching to another loop moves the readers there, without a warning. */
LOOP_TEST(pidfd, reattach_moves_readers_3_11) {
  lspec_watcher *w;
  lspec_loop *one, *two;
  struct ph_rec rec = {0};
  int pid;

  PH_REQUIRE_PIDFD();
  one = lt_new_loop(backend);
  two = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_11);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_attach_loop(w, one), LSPEC_OK));
  pid = ph_spawn_exit(9);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, ph_rec_cb, &rec),
               LSPEC_OK));
  cr_assert(eq(int, I->watcher_attach_loop(w, two), LSPEC_OK));
  ph_wait_exited(pid);
  lt_run_for(one, 0.02);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "not on the old loop");
  ph_run_until_called(two, &rec);
  cr_assert(eq(int, rec.returncode, 9));
  cr_assert(eq(int, ph_count_category(LSPEC_WARN_RUNTIME), 0));
  ph_free_watcher(w);
  lt_free_loop(one);
  lt_free_loop(two);
}

/* A non-loop handle is refused, as the other watchers' assert does. */
ONE_TEST(pidfd, attach_wrong_type_3_9) {
  lspec_watcher *w, *other;
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_9);
  w = ph_new_pidfd();
  other = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_attach_loop(w, (lspec_loop *)other),
               LSPEC_E_ASSERTION));
  I->watcher_release(other);
  ph_free_watcher(w);
}

/* --- close ------------------------------------------------------------------------ */

/* close releases every pidfd and reader; the descriptors are back to the
 * baseline, the callbacks are dropped, and closing twice is harmless. */
static void close_in(int backend, int profile) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec[3];
  int pid[3], fds, i;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(profile);
  memset(rec, 0, sizeof rec);
  w = ph_new_pidfd();
  if (profile < LSPEC_PROFILE_3_12)
    cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
  fds = lt_count_entries("/proc/self/fd");
  for (i = 0; i < 3; i++) {
    pid[i] = ph_spawn_sleeper();
    if (profile >= LSPEC_PROFILE_3_12)
      cr_assert(eq(int, ph_add_in_loop(loop, w, pid[i], &rec[i]), LSPEC_OK));
    else
      cr_assert(eq(int, I->watcher_add_child_handler(w, pid[i], ph_rec_cb,
                                                     &rec[i]),
                   LSPEC_OK));
  }
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds + 3));
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK));
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds),
            "close freed every pidfd");
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "twice is harmless");
  /* 3.9-3.11's close is attach_loop(None): it warns; 3.12's does not. */
  cr_assert(eq(int, ph_count_warnings(LSPEC_WARN_RUNTIME, detach_warning),
               profile < LSPEC_PROFILE_3_12 ? 1 : 0));
  for (i = 0; i < 3; i++)
    kill(pid[i], SIGKILL);
  for (i = 0; i < 3; i++)
    ph_wait_exited(pid[i]);
  lt_run_for(loop, 0.05);
  for (i = 0; i < 3; i++) {
    cr_assert(eq(int, atomic_load(&rec[i].calls), 0), "dropped by close");
    cr_assert(eq(int, ph_is_zombie(pid[i]), 1));
    ph_reap(pid[i]);
  }
  I->watcher_release(w);
  lt_free_loop(loop);
}

LOOP_TEST(pidfd, close_frees_everything_3_12) {
  close_in(backend, LSPEC_PROFILE_3_12);
}
LOOP_TEST(pidfd, close_frees_everything_3_9) {
  close_in(backend, LSPEC_PROFILE_3_9);
}

/* The last release closes: a watcher released with a pending child leaves
 * no descriptor behind. */
ONE_TEST(pidfd, release_closes) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  int pid;

  PH_REQUIRE_PIDFD();
  loop = lt_new_loop(backend);
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  pid = ph_spawn_sleeper();
  cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &rec), LSPEC_OK));
  I->watcher_release(w);
  ph_kill_reap(pid);
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, atomic_load(&rec.calls), 0));
  lt_free_loop(loop);
}

/* --- a kernel without pidfd_open --------------------------------------------- */

static int fake_pidfd_open_enosys(pid_t pid, unsigned int flags) {
  (void)pid, (void)flags;
  return -ENOSYS;
}

ONE_TEST(pidfd, enosys) {
  lspec_watcher *w;
  lspec_loop *loop = lt_new_loop(backend);
  struct ph_rec rec = {0};
  int pid;

  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  pid = ph_spawn_sleeper();
  lspec__sys.pidfd_open = fake_pidfd_open_enosys;
  cr_assert(eq(int, ph_add_in_loop(loop, w, pid, &rec), LSPEC_E_OS));
  lspec__sys.pidfd_open = lspec__sys_real.pidfd_open;
  cr_assert(eq(int, I->last_errno(), ENOSYS));
  cr_assert(eq(int, I->watcher_remove_child_handler(w, pid), 0),
            "nothing was registered");
  ph_kill_reap(pid);
  ph_free_watcher(w);
  lt_free_loop(loop);
}

/* --- argument checks ----------------------------------------------------------- */

ONE_TEST(pidfd, bad_arguments) {
  lspec_watcher *w;
  struct ph_rec rec = {0};
  (void)backend;
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_add_child_handler(w, 0, ph_rec_cb, &rec),
               LSPEC_E_VALUE));
  cr_assert(eq(int, I->watcher_add_child_handler(w, -4, ph_rec_cb, &rec),
               LSPEC_E_VALUE));
  cr_assert(eq(int, I->watcher_add_child_handler(w, getpid(), NULL, &rec),
               LSPEC_E_TYPE));
  cr_assert(eq(int, I->watcher_remove_child_handler(w, 12345), 0));
  ph_free_watcher(w);
}

/* --- a loop running in another thread (3.9-3.11) ----------------------------- */

struct xt_run {
  lspec_loop *loop;     /* runs in the worker */
  struct ph_rec *rec;   /* the recorder it runs until */
  atomic_int started;   /* the loop has run a first callback */
  int run_rc;           /* run_until's status */
  pthread_t self;       /* the worker */
};

static void xt_started(void *arg) {
  atomic_store(&((struct xt_run *)arg)->started, 1);
}

static void *xt_worker(void *arg) {
  struct xt_run *x = arg;
  x->self = pthread_self();
  x->run_rc = I->loop_run_until(x->loop, ph_rec_called, x->rec, 10.0);
  return NULL;
}

/* CPython 3.9-3.11 add the reader from whatever thread calls
 * add_child_handler (research SUB-008: worker-thread spawns watched by the
 * main thread's loop).  The reference queues the registration to the
 * attached loop's thread; the exit is reported there.  A child removed
 * from this thread, before or after its registration ran, is never
 * reported, and its pidfd is closed by the loop's thread. */
LOOP_TEST(pidfd, attached_loop_in_another_thread_3_10) {
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0}, removed = {0};
  struct xt_run x;
  pthread_t th;
  int pid, sleeper, i;

  PH_REQUIRE_PIDFD();
  ph_setup(LSPEC_PROFILE_3_10);
  loop = lt_new_loop(backend);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK));
  memset(&x, 0, sizeof x);
  x.loop = loop;
  x.rec = &rec;
  cr_assert(eq(int, I->loop_call_soon(loop, xt_started, &x, NULL), LSPEC_OK));
  cr_assert(eq(int, pthread_create(&th, NULL, xt_worker, &x), 0));
  for (i = 0; i < 5000 && !atomic_load(&x.started); i++)
    lt_nap(1);
  cr_assert(eq(int, atomic_load(&x.started), 1), "the worker's loop runs");
  cr_assert(eq(int, I->watcher_is_active(w), 1), "attached and running");

  /* Removed before its queued registration ran. */
  sleeper = ph_spawn_sleeper();
  cr_assert(eq(int, I->watcher_add_child_handler(w, sleeper, ph_rec_cb,
                                                 &removed),
               LSPEC_OK),
            "add: %s", I->last_error());
  cr_assert(eq(int, I->watcher_remove_child_handler(w, sleeper), 1));
  /* Removed after it ran: the loop's thread removes the reader. */
  cr_assert(eq(int, I->watcher_add_child_handler(w, sleeper, ph_rec_cb,
                                                 &removed),
               LSPEC_OK),
            "add: %s", I->last_error());
  atomic_store(&x.started, 0);
  cr_assert(eq(int, I->loop_call_soon_threadsafe(loop, xt_started, &x, NULL),
               LSPEC_OK));
  for (i = 0; i < 5000 && !atomic_load(&x.started); i++)
    lt_nap(1);
  cr_assert(eq(int, atomic_load(&x.started), 1));
  cr_assert(eq(int, I->watcher_remove_child_handler(w, sleeper), 1));
  cr_assert(eq(int, I->watcher_remove_child_handler(w, sleeper), 0));
  pid = ph_spawn_exit(4);
  cr_assert(eq(int, I->watcher_add_child_handler(w, pid, ph_rec_cb, &rec),
               LSPEC_OK),
            "add: %s", I->last_error());
  pthread_join(th, NULL);
  cr_assert(eq(int, x.run_rc, LSPEC_OK), "the exit was reported");
  cr_assert(eq(int, atomic_load(&rec.calls), 1));
  cr_assert(eq(int, rec.returncode, 4));
  cr_assert(pthread_equal(rec.thread, x.self), "in the loop's thread");
  ph_kill_reap(sleeper);
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, atomic_load(&removed.calls), 0));
  ph_free_watcher(w);
  lt_free_loop(loop);
}
