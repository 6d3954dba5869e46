/* test_subprocess.c - loop_subprocess_exec and the spawner (subprocess.c):
 * returncodes through the default policy's watcher, a missing program, the
 * inactive-watcher RuntimeError before any spawn, delivery in the spawning
 * loop's thread, argument checks, and the child's signal set-up.
 */
#include "pidfd_helpers.h"

#include "loop.h"
#include "syscalls.h"

#include <fcntl.h>
#include <sys/eventfd.h>

/* --- exec from inside a running loop ------------------------------------- */

/* subprocess_exec(argv) run from a loop callback, as asyncio's
 * create_subprocess_exec runs in a coroutine: Threaded and 3.12's Pidfd
 * take the running loop at registration. */
struct sx_call {
  lspec_loop *loop;         /* the loop */
  const char *const *argv;  /* what to run */
  struct ph_rec *rec;       /* the exit recorder */
  int rc;                   /* subprocess_exec's status */
  int pid;                  /* the child */
  int err;                  /* last_errno after a failure */
  char msg[256];            /* last_error after a failure */
};

static void sx_exec_cb(void *arg) {
  struct sx_call *c = arg;
  c->rc = I->loop_subprocess_exec(c->loop, c->argv, ph_rec_cb, c->rec,
                                  &c->pid);
  if (c->rc != LSPEC_OK) {
    c->err = I->last_errno();
    snprintf(c->msg, sizeof c->msg, "%s", I->last_error());
  }
}

/* Closes and drops the default policy's watcher, so the leak check sees
 * what the test left, not what the policy keeps for later. */
static void sx_drop_watcher(void) {
  cr_assert(eq(int, I->set_child_watcher(NULL), LSPEC_OK),
            "set_child_watcher(NULL): %s", I->last_error());
}

/* Skips a test whose default watcher (Threaded, before 3.12) is not part
 * of this build yet. */
static void sx_require_kind(int kind) {
  lspec_watcher *w = NULL;
  if (I->watcher_new(kind, &w) == LSPEC_E_UNSUPPORTED)
    cr_skip_test("watcher kind %d is not in this build", kind);
  I->watcher_release(w);
}

/* Skips unless the default policy's watcher kind is built. */
static void sx_require_default_watcher(void) {
  if (I->get_profile() < LSPEC_PROFILE_3_12 || !ph_have_pidfd())
    sx_require_kind(LSPEC_WATCHER_THREADED);
}

static void sx_exec_in_loop(struct sx_call *c) {
  c->rc = -100;
  c->pid = 0;
  cr_assert(eq(int, I->loop_call_soon(c->loop, sx_exec_cb, c, NULL),
               LSPEC_OK));
  lt_one_iteration(c->loop);
}

/* Runs argv under `profile` with the default policy; returns its
 * returncode.  Checks that the callback ran once, in the loop's thread. */
static int sx_run(int backend, const char *const *argv) {
  lspec_loop *loop;
  struct ph_rec rec = {0};
  struct sx_call c = {NULL, argv, &rec, 0, 0, 0, {0}};

  sx_require_default_watcher();
  c.loop = loop = lt_new_loop(backend);

  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_OK), "subprocess_exec: %s", c.msg);
  cr_assert(c.pid > 0, "pid %d", c.pid);
  ph_run_until_called(loop, &rec);
  lt_run_for(loop, 0.01);
  cr_assert(eq(int, atomic_load(&rec.calls), 1));
  cr_assert(eq(int, rec.pid, c.pid));
  cr_assert(rec.thread == pthread_self(), "in the spawning loop's thread");
  cr_assert(eq(ptr, rec.running, loop));
  lt_free_loop(loop);
  sx_drop_watcher();
  return rec.returncode;
}

static const char *const argv_true[] = {"/bin/true", NULL};
static const char *const argv_exit7[] = {"/bin/sh", "-c", "exit 7", NULL};

/* 3.12's default policy watches with Threaded, as the page says (CPython
 * picks Pidfd where the kernel has it: conflict C2). */
LOOP_TEST(subprocess, true_3_12) {
  lspec_watcher *w = NULL;
  ph_setup(LSPEC_PROFILE_3_12);
  cr_assert(eq(int, sx_run(backend, argv_true), 0));
  cr_assert(eq(int, I->get_child_watcher(&w), LSPEC_OK));
  cr_assert(eq(int, I->watcher_kind(w), LSPEC_WATCHER_THREADED),
            "the page's default watcher");
  I->watcher_release(w);
  sx_drop_watcher();
}

LOOP_TEST(subprocess, exit_code_3_12) {
  ph_setup(LSPEC_PROFILE_3_12);
  cr_assert(eq(int, sx_run(backend, argv_exit7), 7));
}

/* 3.8-3.11's default is Threaded. */
ONE_TEST(subprocess, exit_code_3_11) {
  ph_setup(LSPEC_PROFILE_3_11);
  cr_assert(eq(int, sx_run(backend, argv_exit7), 7));
}

ONE_TEST(subprocess, signal_death) {
  static const char *const argv[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
  ph_setup(LSPEC_PROFILE_3_12);
  cr_assert(eq(int, sx_run(backend, argv), -SIGKILL));
}

/* A program without '/' is searched in PATH, as execvp does. */
ONE_TEST(subprocess, path_search) {
  static const char *const argv[] = {"sh", "-c", "exit 3", NULL};
  ph_setup(LSPEC_PROFILE_3_12);
  cr_assert(eq(int, sx_run(backend, argv), 3));
}

/* A missing program: OSError ENOENT, no callback, no zombie (lt_run). */
LOOP_TEST(subprocess, missing_program) {
  static const char *const argv[] = {"/nonexistent/loopspec-no-such", NULL};
  static const char *const bare[] = {"loopspec-no-such-program", NULL};
  lspec_loop *loop;
  struct ph_rec rec = {0};
  struct sx_call c = {NULL, argv, &rec, 0, 0, 0, {0}};
  siginfo_t si;

  ph_setup(LSPEC_PROFILE_3_12);
  sx_require_default_watcher();
  c.loop = loop = lt_new_loop(backend);
  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_E_OS));
  cr_assert(eq(int, c.err, ENOENT), "errno %d: %s", c.err, c.msg);
  cr_assert(eq(int, c.pid, -1));
  c.argv = bare;
  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_E_OS));
  cr_assert(eq(int, c.err, ENOENT), "errno %d: %s", c.err, c.msg);
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, atomic_load(&rec.calls), 0));
  memset(&si, 0, sizeof si);
  cr_assert(eq(int, waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1),
            "no child at all");
  cr_assert(eq(int, errno, ECHILD));
  lt_free_loop(loop);
  sx_drop_watcher();
}

/* --- the inactive watcher ---------------------------------------------------- */

/* A custom policy whose get_child_watcher returns `user` (a watcher). */
static int sx_policy_watcher(void *user, lspec_policy *self,
                             lspec_watcher **out) {
  (void)self;
  I->watcher_retain(user);
  *out = user;
  return LSPEC_OK;
}

/* Installs, as the process's policy, a custom default policy whose
 * get_child_watcher hands out `w`; returns it (release it after
 * set_event_loop_policy(NULL)). */
static lspec_policy *sx_install_watcher_policy(lspec_watcher *w) {
  struct lspec_policy_methods m;
  lspec_policy *p = NULL;
  memset(&m, 0, sizeof m);
  m.size = sizeof m;
  m.get_child_watcher = sx_policy_watcher;
  cr_assert(eq(int, I->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &m, w, &p),
               LSPEC_OK), "policy_new_custom: %s", I->last_error());
  cr_assert(eq(int, I->set_event_loop_policy(p), LSPEC_OK));
  return p;
}

/* SUB-003: a Pidfd watcher under 3.10 that is not attached to a running
 * loop is inactive: RuntimeError before anything is spawned. */
LOOP_TEST(subprocess, inactive_watcher) {
  static const char *const argv[] = {"/bin/sh", "-c", "exit 0", NULL};
  lspec_policy *p = NULL;
  lspec_watcher *w;
  lspec_loop *loop = lt_new_loop(backend), *other = lt_new_loop(backend);
  struct ph_rec rec = {0};
  struct sx_call c = {loop, argv, &rec, 0, 0, 0, {0}};
  siginfo_t si;

  ph_setup(LSPEC_PROFILE_3_10);
  w = ph_new_pidfd();
  /* Attached, but to a loop that does not run. */
  cr_assert(eq(int, I->watcher_attach_loop(w, other), LSPEC_OK));
  p = sx_install_watcher_policy(w);

  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_E_RUNTIME));
  cr_assert(eq(str, c.msg,
               "asyncio.get_child_watcher() is not activated, subprocess "
               "support is not installed."));
  cr_assert(eq(int, c.pid, -1));
  memset(&si, 0, sizeof si);
  cr_assert(eq(int, waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1),
            "no child was spawned");
  cr_assert(eq(int, errno, ECHILD));
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, atomic_load(&rec.calls), 0));

  cr_assert(eq(int, I->set_event_loop_policy(NULL), LSPEC_OK));
  I->policy_release(p);
  ph_free_watcher(w);
  lt_free_loop(other);
  lt_free_loop(loop);
}

/* --- the spawning loop's thread ----------------------------------------------- */

struct sx_thread {
  int backend;           /* the loop's backend */
  const char *const *argv; /* what to run */
  struct ph_rec rec;     /* the exit recorder */
  pthread_t self;        /* the worker */
  int rc;                /* subprocess_exec's status */
  int run_rc;            /* run_until's status */
  lspec_loop *loop;      /* the worker's loop */
};

static void *sx_worker(void *arg) {
  struct sx_thread *t = arg;
  struct sx_call c = {NULL, t->argv, &t->rec, 0, 0, 0, {0}};

  t->self = pthread_self();
  if (I->loop_new(t->backend, &t->loop) != LSPEC_OK)
    return NULL;
  c.loop = t->loop;
  c.rc = -100;
  I->loop_call_soon(t->loop, sx_exec_cb, &c, NULL);
  I->loop_stop(t->loop);
  I->loop_run_forever(t->loop);
  t->rc = c.rc;
  t->run_rc = c.rc == LSPEC_OK
                  ? I->loop_run_until(t->loop, ph_rec_called, &t->rec, 10.0)
                  : -100;
  I->loop_close(t->loop);
  I->loop_release(t->loop);
  return NULL;
}

/* SUB-004: the exit reaches the spawning loop's thread, a worker's here,
 * whichever thread the watcher noticed it in. */
static void in_worker(int backend, int profile) {
  struct sx_thread t;
  pthread_t th;

  ph_setup(profile);
  sx_require_default_watcher();
  memset(&t, 0, sizeof t);
  t.backend = backend;
  t.argv = argv_exit7;
  cr_assert(eq(int, pthread_create(&th, NULL, sx_worker, &t), 0));
  pthread_join(th, NULL);
  cr_assert(eq(int, t.rc, LSPEC_OK));
  cr_assert(eq(int, t.run_rc, LSPEC_OK));
  cr_assert(eq(int, atomic_load(&t.rec.calls), 1));
  cr_assert(eq(int, t.rec.returncode, 7));
  cr_assert(pthread_equal(t.rec.thread, t.self), "in the worker's thread");
  cr_assert(eq(ptr, t.rec.running, t.loop));
  sx_drop_watcher();
}

LOOP_TEST(subprocess, worker_loop_3_12) { in_worker(backend, LSPEC_PROFILE_3_12); }
ONE_TEST(subprocess, worker_loop_3_11) { in_worker(backend, LSPEC_PROFILE_3_11); }

/* --- argument checks ------------------------------------------------------------- */

ONE_TEST(subprocess, bad_arguments) {
  static const char *const empty[] = {NULL};
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w;
  struct ph_rec rec = {0};
  int pid = 0;

  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->loop_subprocess_exec(NULL, argv_true, ph_rec_cb, &rec,
                                            &pid),
               LSPEC_E_TYPE));
  cr_assert(eq(int, pid, -1));
  cr_assert(eq(int, I->loop_subprocess_exec((lspec_loop *)w, argv_true,
                                            ph_rec_cb, &rec, &pid),
               LSPEC_E_TYPE));
  cr_assert(eq(int, I->loop_subprocess_exec(loop, NULL, ph_rec_cb, &rec, &pid),
               LSPEC_E_VALUE));
  cr_assert(eq(int, I->loop_subprocess_exec(loop, empty, ph_rec_cb, &rec, &pid),
               LSPEC_E_VALUE));
  cr_assert(eq(int, I->loop_subprocess_exec(loop, argv_true, NULL, &rec, &pid),
               LSPEC_E_TYPE));
  I->watcher_release(w);
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK));
  cr_assert(eq(int, I->loop_subprocess_exec(loop, argv_true, ph_rec_cb, &rec,
                                            &pid),
               LSPEC_E_RUNTIME));
  LT_ASSERT_MSG("Event loop is closed");
  I->loop_release(loop);
}

/* --- the spawner itself -------------------------------------------------------------- */

/* The child starts with an empty signal mask and SIGPIPE/SIGXFSZ at their
 * defaults, whatever the spawning thread blocks or ignores; the shell's
 * exit status tells.  Only signals 1-28 are checked for SIG_IGN: glibc
 * reserves 32 and 33 for itself and may leave them ignored. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* Checked natively and under the sanitizers; under valgrind the exec'd
 * child inherits valgrind's own signal state (it keeps real handlers and
 * masks of its own around the client's), not what the spawner set, and a
 * full valgrind run saw a blocked signal there now and then. */
ONE_TEST(subprocess, spawn_resets_signals) {
  static const char *const argv[] = {
      "/bin/sh", "-c",
      "grep -q '^SigBlk:[[:space:]]*0*$' /proc/self/status && "
      "grep -q '^SigIgn:[[:space:]]*[0-9a-f]*0000000$' /proc/self/status",
      NULL};
  sigset_t block, old;
  struct sigaction ign, oldpipe;
  pid_t pid = -1;
  int method = 0, status;
  (void)backend;

  if (RUNNING_ON_VALGRIND)
    cr_skip_test("under valgrind the child inherits valgrind's signal "
                 "state, not the spawner's");
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &oldpipe);
  cr_assert(eq(int, lspec__spawn(argv, &pid, &method), 0));
  sigaction(SIGPIPE, &oldpipe, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  cr_assert(pid > 0, "pid %d", (int)pid);
  cr_assert(method == LSPEC__SPAWN_CLONE3 ||
                method == LSPEC__SPAWN_FORK,
            "method %d", method);
  status = ph_reap(pid);
  cr_assert(eq(int, WIFEXITED(status), 1));
  cr_assert(eq(int, WEXITSTATUS(status), 0),
            "the child saw a blocked or ignored signal");
}

/* A failed exec is reported with its errno and leaves no zombie (lt_run);
 * the caller's errno is untouched. */
ONE_TEST(subprocess, spawn_errors) {
  static const char *const missing[] = {"/nonexistent/x", NULL};
  static const char *const notexec[] = {"/dev/null", NULL};
  static const char *const dir[] = {"/", NULL};
  pid_t pid = 0;
  (void)backend;

  errno = 1234;
  cr_assert(eq(int, lspec__spawn(missing, &pid, NULL), -ENOENT));
  cr_assert(eq(int, errno, 1234));
  cr_assert(eq(int, pid, -1));
  cr_assert(eq(int, lspec__spawn(notexec, &pid, NULL), -EACCES));
  cr_assert(eq(int, lspec__spawn(dir, &pid, NULL), -EACCES));
}

/* --- what the child inherits -------------------------------------------- */

/* The descriptor a test leaves open, without close-on-exec, across a spawn:
 * high enough not to collide with anything the test or Criterion holds. */
#define SX_FD 57

/* Spawns a shell that exits 0 when it holds descriptor 2 and not SX_FD,
 * and checks that SX_FD is still open in the parent afterwards (the clone
 * may share the parent's table until the child takes its own). */
static void sx_check_inherits_0_1_2_only(void) {
  static const char *const argv[] = {
      "/bin/sh", "-c",
      "test -e /proc/self/fd/2 && test ! -e /proc/self/fd/57", NULL};
  char byte = 'x';
  pid_t pid = -1;
  int p[2], status;

  cr_assert(fcntl(2, F_GETFD) >= 0, "the test runs without fd 2");
  cr_assert(eq(int, pipe(p), 0)); /* no close-on-exec */
  cr_assert(eq(int, dup2(p[1], SX_FD), SX_FD));
  close(p[1]);
  cr_assert(eq(int, lspec__spawn(argv, &pid, NULL), 0));
  status = ph_reap(pid);
  cr_assert(eq(int, WIFEXITED(status), 1));
  cr_assert(eq(int, WEXITSTATUS(status), 0),
            "the child inherited fd %d, or lost fd 2", SX_FD);
  /* Still the parent's, and still the pipe. */
  cr_assert(eq(long, (long)write(SX_FD, &byte, 1), 1L),
            "fd %d no longer usable in the parent", SX_FD);
  byte = 0;
  cr_assert(eq(long, (long)read(p[0], &byte, 1), 1L));
  cr_assert(eq(chr, byte, 'x'));
  close(SX_FD);
  close(p[0]);
}

/* Only 0, 1 and 2 reach the child (CPython's close_fds=True), and the
 * parent's descriptors are untouched. */
ONE_TEST(subprocess, spawn_keeps_0_1_2_only) {
  (void)backend;
  sx_check_inherits_0_1_2_only();
}

static int sx_no_close_range(unsigned first, unsigned last, unsigned flags) {
  (void)first, (void)last, (void)flags;
  return -ENOSYS;
}

/* The same on a kernel without close_range (before 5.9): the child lists
 * /proc/self/fd and closes what it finds. */
ONE_TEST(subprocess, spawn_keeps_0_1_2_only_without_close_range) {
  (void)backend;
  lspec__sys.close_range = sx_no_close_range;
  lspec__spawn_forget_probes();
  sx_check_inherits_0_1_2_only();
  lspec__sys.close_range = lspec__sys_real.close_range;
  lspec__spawn_forget_probes();
}

/* Many spawns with many descriptors open: each child still holds only
 * three, and the parent keeps all (the kept child stack and the shared
 * table are reused spawn after spawn). */
ONE_TEST(subprocess, spawn_many_with_many_descriptors) {
  static const char *const argv[] = {
      /* 0, 1, 2 and the directory the glob reads: 4 at most */
      "/bin/sh", "-c", "set -- /proc/self/fd/*; test $# -le 4", NULL};
  int fds[200], i, status;
  pid_t pid;
  (void)backend;

  for (i = 0; i < 200; i++) {
    fds[i] = eventfd(0, i % 2 ? EFD_CLOEXEC : 0);
    cr_assert(fds[i] >= 0, "eventfd %d: %s", i, strerror(errno));
  }
  for (i = 0; i < 20; i++) {
    pid = -1;
    cr_assert(eq(int, lspec__spawn(argv, &pid, NULL), 0));
    status = ph_reap(pid);
    status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    cr_assert(eq(int, status, 0), "spawn %d: the child held more than 0, 1 and 2", i);
  }
  for (i = 0; i < 200; i++) {
    cr_assert(fcntl(fds[i], F_GETFD) >= 0, "fd %d lost", fds[i]);
    close(fds[i]);
  }
}

/* --- research SUB-008: Pidfd 3.9-3.11 attached to the main loop ------------- */

struct sx_main {
  struct sx_thread t;    /* the worker and what it saw */
  atomic_int main_runs;  /* the "main" loop has started */
  atomic_int done;       /* the worker finished */
};

static void sx_mark(void *arg) { atomic_store((atomic_int *)arg, 1); }

static int sx_done(void *arg) { return atomic_load((atomic_int *)arg); }

static void *sx_main_worker(void *arg) {
  struct sx_main *m = arg;
  int i;
  for (i = 0; i < 5000 && !atomic_load(&m->main_runs); i++)
    lt_nap(1);
  sx_worker(&m->t);
  atomic_store(&m->done, 1);
  return NULL;
}

/* A worker-thread loop spawns while the loop the watcher is attached to
 * runs in another thread (the main thread's, in asyncio): the watcher
 * watches through that loop and the exit reaches the worker's loop. */
LOOP_TEST(subprocess, worker_with_attached_main_loop_3_10) {
  lspec_policy *p = NULL;
  lspec_watcher *w;
  lspec_loop *main_loop;
  struct sx_main m;
  pthread_t th;

  PH_REQUIRE_PIDFD();
  ph_setup(LSPEC_PROFILE_3_10);
  main_loop = lt_new_loop(backend);
  w = ph_new_pidfd();
  cr_assert(eq(int, I->watcher_attach_loop(w, main_loop), LSPEC_OK));
  p = sx_install_watcher_policy(w);

  memset(&m, 0, sizeof m);
  m.t.backend = backend;
  m.t.argv = argv_exit7;
  cr_assert(eq(int, I->loop_call_soon(main_loop, sx_mark, &m.main_runs, NULL),
               LSPEC_OK));
  cr_assert(eq(int, pthread_create(&th, NULL, sx_main_worker, &m), 0));
  cr_assert(eq(int, I->loop_run_until(main_loop, sx_done, &m.done, 20.0),
               LSPEC_OK));
  pthread_join(th, NULL);
  cr_assert(eq(int, m.t.rc, LSPEC_OK));
  cr_assert(eq(int, m.t.run_rc, LSPEC_OK));
  cr_assert(eq(int, atomic_load(&m.t.rec.calls), 1));
  cr_assert(eq(int, m.t.rec.returncode, 7));
  cr_assert(pthread_equal(m.t.rec.thread, m.t.self),
            "in the spawning worker's thread");

  cr_assert(eq(int, I->set_event_loop_policy(NULL), LSPEC_OK));
  I->policy_release(p);
  ph_free_watcher(w);
  lt_free_loop(main_loop);
}

/* --- the way an exit travels, and a loop closed on the way ------------------ */

/* Waits (without running the loop) until something was posted to it: the
 * watcher's thread has reaped the child and queued its exit. */
static void sx_wait_posted(lspec_loop *loop) {
  size_t n = 0;
  for (int i = 0; i < 10000 && n == 0; i++) {
    pthread_mutex_lock(&loop->lock);
    n = loop->nready;
    pthread_mutex_unlock(&loop->lock);
    if (n == 0)
      lt_nap(1);
  }
  cr_assert(n > 0, "the watcher posted nothing within 10 s");
}

/* With the Threaded watcher, the exit takes CPython's three hops: the
 * watcher's call_soon_threadsafe(loop._child_watcher_callback), that one's
 * call_soon_threadsafe(transport._process_exited), then call_soon of the
 * protocol's callback.  A callback queued behind the first hop therefore
 * runs two iterations before the exit callback. */
ONE_TEST(subprocess, exit_takes_cpythons_hops) {
  lspec_loop *loop;
  struct ph_rec rec = {0};
  struct sx_call c = {NULL, argv_true, &rec, 0, 0, 0, {0}};
  int behind = 0;

  ph_setup(LSPEC_PROFILE_3_11);
  sx_require_kind(LSPEC_WATCHER_THREADED);
  c.loop = loop = lt_new_loop(backend);
  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_OK), "subprocess_exec: %s", c.msg);
  sx_wait_posted(loop);
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &behind, NULL),
               LSPEC_OK));
  lt_one_iteration(loop);
  cr_assert(eq(int, behind, 1), "the callback queued behind the first hop");
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "not after the first hop");
  lt_one_iteration(loop);
  cr_assert(eq(int, atomic_load(&rec.calls), 0), "not after the second hop");
  lt_one_iteration(loop);
  cr_assert(eq(int, atomic_load(&rec.calls), 1), "after the third");
  cr_assert(eq(int, rec.pid, c.pid));
  cr_assert(eq(int, rec.returncode, 0));
  lt_free_loop(loop);
  sx_drop_watcher();
}

/* The loop is closed after the exit was queued to it but before it ran:
 * the exit is dropped, nothing is called, and nothing leaks (the ASan and
 * memcheck runs check the last part). */
ONE_TEST(subprocess, loop_closed_with_exit_queued) {
  lspec_loop *loop;
  struct ph_rec rec = {0};
  struct sx_call c = {NULL, argv_exit7, &rec, 0, 0, 0, {0}};

  ph_setup(LSPEC_PROFILE_3_11);
  sx_require_kind(LSPEC_WATCHER_THREADED);
  c.loop = loop = lt_new_loop(backend);
  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_OK), "subprocess_exec: %s", c.msg);
  sx_wait_posted(loop);
  lt_free_loop(loop);
  cr_assert(eq(int, atomic_load(&rec.calls), 0));
  sx_drop_watcher();
}

/* The loop is closed while the child still runs: the Threaded watcher
 * still reaps it, logs CPython's warning that the loop is closed, and
 * calls nothing. */
static int sx_count_closed(void) {
  int i, n = 0;
  pthread_mutex_lock(&ph_warned.lock);
  for (i = 0; i < ph_warned.n; i++)
    n += ph_warned.category[i] == LSPEC_WARN_LOG_WARNING &&
         strstr(ph_warned.text[i], "that handles pid") != NULL &&
         strstr(ph_warned.text[i], "is closed") != NULL;
  pthread_mutex_unlock(&ph_warned.lock);
  return n;
}

ONE_TEST(subprocess, loop_closed_while_child_runs) {
  static const char *const argv[] = {"/bin/sh", "-c", "exec sleep 30", NULL};
  lspec_loop *loop;
  struct ph_rec rec = {0};
  struct sx_call c = {NULL, argv, &rec, 0, 0, 0, {0}};

  ph_setup(LSPEC_PROFILE_3_11);
  sx_require_kind(LSPEC_WATCHER_THREADED);
  c.loop = loop = lt_new_loop(backend);
  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_OK), "subprocess_exec: %s", c.msg);
  lt_free_loop(loop);
  cr_assert(eq(int, kill(c.pid, SIGKILL), 0));
  for (int i = 0; i < 10000 && sx_count_closed() == 0; i++)
    lt_nap(1);
  lt_nap(20); /* time for a second warning, were there one */
  cr_assert(eq(int, sx_count_closed(), 1),
            "one warning that the loop is closed, from the watcher");
  cr_assert(eq(int, atomic_load(&rec.calls), 0));
  sx_drop_watcher();
}

/* A watcher that never reports (3.12's Pidfd registers with the spawning
 * loop, whose close removes its readers): closing the loop frees the
 * exit's trampoline (no leak under ASan or memcheck); closing the watcher
 * then gives back the pidfd.  The child is killed and reaped by the test. */
ONE_TEST(subprocess, loop_closed_under_a_silent_watcher) {
  static const char *const argv[] = {"/bin/sh", "-c", "exec sleep 30", NULL};
  lspec_policy *p = NULL;
  lspec_watcher *w;
  lspec_loop *loop;
  struct ph_rec rec = {0};
  struct sx_call c = {NULL, argv, &rec, 0, 0, 0, {0}};

  PH_REQUIRE_PIDFD();
  ph_setup(LSPEC_PROFILE_3_12);
  w = ph_new_pidfd();
  p = sx_install_watcher_policy(w);
  c.loop = loop = lt_new_loop(backend);
  sx_exec_in_loop(&c);
  cr_assert(eq(int, c.rc, LSPEC_OK), "subprocess_exec: %s", c.msg);
  lt_free_loop(loop);
  ph_kill_reap(c.pid);
  cr_assert(eq(int, atomic_load(&rec.calls), 0));
  cr_assert(eq(int, I->set_event_loop_policy(NULL), LSPEC_OK));
  I->policy_release(p);
  ph_free_watcher(w);
}

/* --- fork() and the exit registry's lock ------------------------------------ */

/* A worker thread whose context holds the last reference to its loop (3.12:
 * the forked child forgets every context, closing such loops; a loop's
 * close takes the exit registry's lock).  The worker stays alive until the
 * test lets it go, so its context is there at the fork. */
struct sx_ctx_worker {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int ready, go;
};

static void *sx_ctx_worker_main(void *arg) {
  struct sx_ctx_worker *c = arg;
  lspec_loop *loop = NULL;

  if (I->loop_new(LSPEC_BACKEND_DEFAULT, &loop) == LSPEC_OK) {
    (void)I->set_event_loop(loop);
    I->loop_release(loop); /* the context's is the last reference */
  }
  pthread_mutex_lock(&c->lock);
  c->ready = 1;
  pthread_cond_broadcast(&c->cond);
  while (!c->go)
    pthread_cond_wait(&c->cond, &c->lock);
  pthread_mutex_unlock(&c->lock);
  if (loop != NULL) {
    (void)I->get_event_loop(&loop);
    (void)I->set_event_loop(NULL);
    I->loop_close(loop);
    I->loop_release(loop);
  }
  return NULL;
}

/* A plain fork() while such a context exists: the child's fork handler
 * closes the loop and must find every lock given back first (it used to
 * wait forever for the registry's, whose handler ran after the policy's). */
Test(subprocess, fork_closing_a_worker_loop_does_not_hang, .timeout = 30) {
  struct sx_ctx_worker c = {PTHREAD_MUTEX_INITIALIZER,
                            PTHREAD_COND_INITIALIZER, 0, 0};
  pthread_t t;
  pid_t pid;
  int status = 0, i, r = 0;

  ph_setup(LSPEC_PROFILE_3_12);
  cr_assert(eq(int, pthread_create(&t, NULL, sx_ctx_worker_main, &c), 0));
  pthread_mutex_lock(&c.lock);
  while (!c.ready)
    pthread_cond_wait(&c.cond, &c.lock);
  pthread_mutex_unlock(&c.lock);

  pid = fork();
  if (pid == 0)
    lt_child_exit(7); /* the fork handlers have run by now */
  cr_assert(gt(int, pid, 0), "fork: %s", strerror(errno));
  for (i = 0; i < 500 && (r = waitpid(pid, &status, WNOHANG)) == 0; i++)
    lt_nap(10);
  if (r == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  pthread_mutex_lock(&c.lock);
  c.go = 1;
  pthread_cond_broadcast(&c.cond);
  pthread_mutex_unlock(&c.lock);
  pthread_join(t, NULL);
  cr_assert(eq(int, r, pid), "the forked child hung in its fork handler");
  cr_assert(eq(int, WIFEXITED(status) ? WEXITSTATUS(status) : -1, 7));
}

/* --- an abandoned loop with an exit queued ----------------------------------- */

static int sx_gone(void *arg) { return kill(*(int *)arg, 0) != 0; }

/* subprocess_exec's exit is queued to a loop its user then releases without
 * running or closing it: the queued exit must not keep the loop (and its
 * descriptors) alive.  A Safe watcher attached to another loop notices the
 * exit there and hands it to the spawning loop; the spawning loop's last
 * release then closes it ("unclosed event loop") and drops the exit;
 * lt_run checks that no descriptor is left. */
ONE_TEST(subprocess, abandoned_loop_with_an_exit_queued_is_freed) {
  static const char *const argv[] = {"/bin/sh", "-c", "exit 4", NULL};
  lspec_loop *loop = lt_new_loop(backend), *main_loop = lt_new_loop(backend);
  struct ph_rec rec = {0};
  struct sx_call c = {loop, argv, &rec, 0, 0, 0, {0}};
  lspec_watcher *w = NULL;
  lspec_policy *p;
  int i;

  ph_setup(LSPEC_PROFILE_3_11);
  cr_assert(eq(int, I->watcher_new(LSPEC_WATCHER_SAFE, &w), LSPEC_OK));
  cr_assert(eq(int, I->watcher_attach_loop(w, main_loop), LSPEC_OK), "%s",
            I->last_error());
  p = sx_install_watcher_policy(w);
  /* Safe is active while its loop runs: ask for the spawn from there. */
  cr_assert(eq(int, I->loop_call_soon(main_loop, sx_exec_cb, &c, NULL),
               LSPEC_OK));
  lt_one_iteration(main_loop);
  cr_assert(eq(int, c.rc, LSPEC_OK), "subprocess_exec: %s", c.msg);
  /* The main loop's SIGCHLD handler reaps the child and hands the exit to
   * the spawning loop in the same iteration. */
  cr_assert(eq(int, I->loop_run_until(main_loop, sx_gone, &c.pid, 10.0),
               LSPEC_OK));
  for (i = 0; i < 3; i++)
    lt_one_iteration(main_loop);
  I->loop_release(loop); /* unclosed, never run again */
  cr_assert(eq(int, atomic_load(&rec.calls), 0));
  cr_assert(eq(int, I->set_event_loop_policy(NULL), LSPEC_OK));
  I->policy_release(p);
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK));
  I->watcher_release(w);
  lt_free_loop(main_loop);
}
