/* pidfd_helpers.h - what the Pidfd watcher's and subprocess_exec's unit
 * tests (test_watcher_pidfd.c, test_subprocess.c) share: the profile and a
 * recording warnings hook, forked children, a recording child callback,
 * and a way to run a call inside a running loop.  Built on loop_helpers.h:
 * every test runs inside lt_run(), which checks that no descriptor, thread
 * or zombie is left behind.
 *
 * Children are made with fork() and end with _exit() (lt_child_exit) or a
 * signal; they never call Criterion.
 */
#ifndef LSPEC_TESTS_PIDFD_HELPERS_H
#define LSPEC_TESTS_PIDFD_HELPERS_H

#include "loop_helpers.h"

#include <stdlib.h>
#include <sys/syscall.h>

/* --- profile and warnings ------------------------------------------------- */

/* The warnings the implementation gave, in order. */
struct ph_warnings {
  pthread_mutex_t lock; /* the hook may run in any thread */
  int n;                /* how many */
  int category[16];     /* their categories */
  char text[16][256];   /* their texts */
};
static struct ph_warnings ph_warned = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline void ph_hook(void *user, int category, const char *text) {
  (void)user;
  pthread_mutex_lock(&ph_warned.lock);
  if (ph_warned.n < 16) {
    ph_warned.category[ph_warned.n] = category;
    snprintf(ph_warned.text[ph_warned.n], sizeof ph_warned.text[0], "%s",
             text);
    ph_warned.n++;
  }
  pthread_mutex_unlock(&ph_warned.lock);
}

/* The number of warnings of `category` whose text is `text`. */
static inline int ph_count_warnings(int category, const char *text) {
  int i, n = 0;
  pthread_mutex_lock(&ph_warned.lock);
  for (i = 0; i < ph_warned.n; i++)
    n += ph_warned.category[i] == category &&
         strcmp(ph_warned.text[i], text) == 0;
  pthread_mutex_unlock(&ph_warned.lock);
  return n;
}

static inline int ph_count_category(int category) {
  int i, n = 0;
  pthread_mutex_lock(&ph_warned.lock);
  for (i = 0; i < ph_warned.n; i++)
    n += ph_warned.category[i] == category;
  pthread_mutex_unlock(&ph_warned.lock);
  return n;
}

/* Chooses the profile (each Criterion test is a fresh process) and installs
 * the recording hook. */
static inline void ph_setup(int profile) {
  cr_assert(eq(int, I->set_profile(profile), LSPEC_OK), "set_profile: %s",
            I->last_error());
  I->set_warning_hook(ph_hook, NULL);
}

/* --- children ------------------------------------------------------------- */

/* A child that exits at once with `code`. */
static inline int ph_spawn_exit(int code) {
  pid_t pid = fork();
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0)
    lt_child_exit(code);
  return pid;
}

/* A child that waits until it is killed. */
static inline int ph_spawn_sleeper(void) {
  pid_t pid = fork();
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0) {
    int fd;
    for (fd = 3; fd < 1024; fd++)
      close(fd);
    for (;;)
      pause();
  }
  return pid;
}

/* Waits until child `pid` has exited, without reaping it. */
static inline void ph_wait_exited(int pid) {
  siginfo_t si;
  int r;
  memset(&si, 0, sizeof si);
  do
    r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
  while (r < 0 && errno == EINTR);
  cr_assert(eq(int, r, 0), "waitid(%d): %s", pid, strerror(errno));
}

/* 1 when `pid` is an unreaped zombie child of ours. */
static inline int ph_is_zombie(int pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
    return 0;
  return si.si_pid == pid;
}

/* Reaps `pid` (blocking) and returns its raw status, or -1 (ECHILD). */
static inline int ph_reap(int pid) {
  int status = 0, r;
  do
    r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  return r == pid ? status : -1;
}

/* Kills and reaps a sleeper. */
static inline void ph_kill_reap(int pid) {
  kill(pid, SIGKILL);
  ph_reap(pid);
}

/* --- the child callback ------------------------------------------------------ */

/* What a child callback saw. */
struct ph_rec {
  atomic_int calls;     /* how many times it ran */
  int pid;              /* its pid argument */
  int returncode;       /* its returncode argument */
  pthread_t thread;     /* the thread it ran in */
  lspec_loop *running;  /* the loop running in that thread (ABI view) */
};

static inline void ph_rec_cb(int pid, int returncode, void *arg) {
  struct ph_rec *r = arg;
  lspec_loop *loop = NULL;
  r->pid = pid;
  r->returncode = returncode;
  r->thread = pthread_self();
  if (I->get_running_loop(&loop) == LSPEC_OK) {
    r->running = loop;
    I->loop_release(loop);
  }
  atomic_fetch_add(&r->calls, 1);
}

static inline int ph_rec_called(void *arg) {
  return atomic_load(&((struct ph_rec *)arg)->calls) > 0;
}

/* Runs `loop` until `rec` was called (bounded). */
static inline void ph_run_until_called(lspec_loop *loop, struct ph_rec *rec) {
  cr_assert(eq(int, I->loop_run_until(loop, ph_rec_called, rec, 10.0),
               LSPEC_OK),
            "the child callback was not called: %s", I->last_error());
}

/* --- calls made inside a running loop --------------------------------------- */

/* add_child_handler(w, pid, ph_rec_cb, rec), run from a loop callback;
 * `rc` receives its status.  3.12's Pidfd and Threaded need a running
 * loop in the calling thread. */
struct ph_add {
  lspec_watcher *w;    /* the watcher */
  int pid;             /* the child */
  struct ph_rec *rec;  /* the recorder to register */
  lspec_child_callback cb; /* NULL: ph_rec_cb */
  int rc;              /* add's status */
  int done;            /* it ran */
};

static inline void ph_add_cb(void *arg) {
  struct ph_add *a = arg;
  a->rc = I->watcher_add_child_handler(a->w, a->pid,
                                       a->cb ? a->cb : ph_rec_cb, a->rec);
  a->done = 1;
}

/* Calls add_child_handler inside one iteration of `loop` and returns its
 * status. */
static inline int ph_add_in_loop(lspec_loop *loop, lspec_watcher *w, int pid,
                                 struct ph_rec *rec) {
  struct ph_add a = {w, pid, rec, NULL, -100, 0};
  cr_assert(eq(int, I->loop_call_soon(loop, ph_add_cb, &a, NULL), LSPEC_OK));
  lt_one_iteration(loop);
  cr_assert(eq(int, a.done, 1), "the add callback did not run");
  return a.rc;
}

static inline lspec_watcher *ph_new_pidfd(void) {
  lspec_watcher *w = NULL;
  cr_assert(eq(int, I->watcher_new(LSPEC_WATCHER_PIDFD, &w), LSPEC_OK),
            "watcher_new(PIDFD): %s", I->last_error());
  return w;
}

static inline void ph_free_watcher(lspec_watcher *w) {
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "watcher_close: %s",
            I->last_error());
  I->watcher_release(w);
}

/* 1 when this kernel lets us open pidfds (Linux >= 5.3, no filter). */
static inline int ph_have_pidfd(void) {
  long fd = syscall(SYS_pidfd_open, getpid(), 0);
  if (fd < 0)
    return 0;
  close((int)fd);
  return 1;
}

#define PH_REQUIRE_PIDFD()                                                     \
  do {                                                                         \
    if (!ph_have_pidfd())                                                      \
      cr_skip_test("pidfd_open is not available on this kernel");             \
  } while (0)

#endif /* LSPEC_TESTS_PIDFD_HELPERS_H */
