/* watcher_helpers.h - what the watchers' unit tests (test_watcher_*.c)
 * share: children to watch, a recording child callback, a recording
 * warnings hook, and a way to call add_child_handler from inside a running
 * loop.  Built on loop_helpers.h: every test still runs inside lt_run(),
 * which checks that no descriptor, thread or zombie is left behind.
 *
 * Children are made with fork() and end with _exit() (lt_child_exit) or a
 * signal; they never call Criterion.
 */
#ifndef LSPEC_TESTS_WATCHER_HELPERS_H
#define LSPEC_TESTS_WATCHER_HELPERS_H

#include "loop_helpers.h"

#include <stdlib.h>
#include <sys/prctl.h>

/* --- children ------------------------------------------------------------- */

/* A child that exits at once with `code`. */
static inline int wt_spawn_exit(int code) {
  pid_t pid = fork();
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0)
    lt_child_exit(code);
  return pid;
}

/* A child that dies of `sig` at once (default disposition, unblocked). */
static inline int wt_spawn_signal(int sig) {
  pid_t pid = fork();
  sigset_t set;
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0) {
    int fd;
    for (fd = 3; fd < 1024; fd++)
      close(fd);
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    lt_child_exit(100); /* not reached */
  }
  return pid;
}

/* A child that waits until it is killed. */
static inline int wt_spawn_sleeper(void) {
  pid_t pid = fork();
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0) {
    int fd;
    /* Dies with the test's process, should the test fail before its kill. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (fd = 3; fd < 1024; fd++)
      close(fd);
    for (;;)
      pause();
  }
  return pid;
}

/* Waits until child `pid` has exited, without reaping it. */
static inline void wt_wait_exited(int pid) {
  siginfo_t si;
  int r;
  do
    r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
  while (r < 0 && errno == EINTR);
  cr_assert(eq(int, r, 0), "waitid(%d, WNOWAIT): %s", pid, strerror(errno));
}

/* Waits (bounded, 10 s) until child `pid` has been reaped by someone else;
 * 1 when it was, 0 on timeout. */
static inline int wt_wait_reaped(int pid) {
  siginfo_t si;
  int i;
  for (i = 0; i < 10000; i++) {
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
        errno == ECHILD)
      return 1;
    lt_nap(1);
  }
  return 0;
}

/* --- the child callback ------------------------------------------------------
 */

/* What one child callback saw. */
struct wt_rec {
  atomic_int calls; /* how many times it ran */
  int pid;          /* the pid it was given */
  int returncode;   /* the returncode it was given */
  pthread_t thread; /* the thread it ran in */
};

static inline void wt_rec_cb(int pid, int returncode, void *arg) {
  struct wt_rec *r = arg;
  r->pid = pid;
  r->returncode = returncode;
  r->thread = pthread_self();
  atomic_fetch_add(&r->calls, 1);
}

/* A run_until predicate: `n` records (an array) have each been called. */
struct wt_all {
  struct wt_rec *recs; /* the records */
  int n;               /* how many */
};
static inline int wt_all_called(void *arg) {
  struct wt_all *a = arg;
  int i;
  for (i = 0; i < a->n; i++)
    if (atomic_load(&a->recs[i].calls) == 0)
      return 0;
  return 1;
}

/* --- add_child_handler from inside the loop
 * ------------------------------------- */

/* One add_child_handler call, made by a loop callback (the kind needs a
 * running loop). */
struct wt_add {
  lspec_watcher *w;        /* the watcher */
  int pid;                 /* the child */
  lspec_child_callback cb; /* the handler */
  struct wt_rec *rec;      /* its argument */
  int status;              /* what add_child_handler returned */
  int calls_after;         /* rec->calls right after it returned */
  int done;                /* the call was made */
};

static inline void wt_add_cb(void *arg) {
  struct wt_add *a = arg;
  a->status = I->watcher_add_child_handler(a->w, a->pid, a->cb, a->rec);
  a->calls_after = a->rec ? atomic_load(&a->rec->calls) : 0;
  a->done = 1;
}

static inline int wt_add_done(void *arg) {
  return ((struct wt_add *)arg)->done;
}

/* Calls add_child_handler(w, pid, wt_rec_cb, rec) inside `loop` and returns
 * its status; asserts that nothing was delivered inside the call. */
static inline int wt_add_in_loop(lspec_loop *loop, lspec_watcher *w, int pid,
                                 struct wt_rec *rec) {
  struct wt_add a = {w, pid, wt_rec_cb, rec, -100, 0, 0};
  cr_assert(eq(int, I->loop_call_soon(loop, wt_add_cb, &a, NULL), LSPEC_OK),
            "call_soon");
  cr_assert(eq(int, I->loop_run_until(loop, wt_add_done, &a, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, a.done, 1), "the add callback ran");
  cr_assert(eq(int, a.calls_after, 0),
            "nothing is delivered synchronously inside add_child_handler");
  return a.status;
}

/* --- watchers
 * ------------------------------------------------------------------ */

static inline lspec_watcher *wt_new(int kind) {
  lspec_watcher *w = NULL;
  cr_assert(eq(int, I->watcher_new(kind, &w), LSPEC_OK), "watcher_new(%d): %s",
            kind, I->last_error());
  cr_assert(ne(ptr, w, NULL), "watcher_new gave no watcher");
  return w;
}

static inline void wt_free(lspec_watcher *w) {
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "watcher_close: %s",
            I->last_error());
  I->watcher_release(w);
}

/* --- the warnings hook
 * ------------------------------------------------------------ */

/* What the warnings hook saw, from any thread. */
struct wt_warnings {
  pthread_mutex_t lock; /* guards the rest */
  int count;            /* warnings seen */
  int category;         /* the last one's category */
  char text[512];       /* the last one's text */
  /* Facts about the thread that delivered the last warning. */
  pthread_t thread;  /* the thread */
  size_t stack_size; /* its stack size (pthread_getattr_np) */
  char name[16];     /* its name */
  int blocked_int;   /* SIGINT blocked in it */
  int blocked_term;  /* SIGTERM blocked in it */
  int blocked_chld;  /* SIGCHLD blocked in it */
  int blocked_usr1;  /* SIGUSR1 blocked in it */
  int headroom;      /* a 16 KiB buffer on its stack was usable */
};

static __attribute__((unused)) struct wt_warnings wt_warned = {
    .lock = PTHREAD_MUTEX_INITIALIZER};

/* Touches `n` bytes of stack, so a too-small stack would crash here. */
__attribute__((noinline, unused)) static int wt_use_stack(size_t n) {
  volatile char buf[16384];
  size_t i;
  if (n > sizeof buf)
    n = sizeof buf;
  for (i = 0; i < n; i += 512)
    buf[i] = (char)i;
  return buf[0] == 0;
}

static inline void wt_hook(void *user, int category, const char *text) {
  struct wt_warnings *wr = user;
  pthread_attr_t attr;
  sigset_t set;
  size_t size = 0;
  char name[16] = "";
  int headroom = wt_use_stack(16384);

  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstacksize(&attr, &size);
    pthread_attr_destroy(&attr);
  }
  pthread_getname_np(pthread_self(), name, sizeof name);
  pthread_sigmask(SIG_BLOCK, NULL, &set);
  pthread_mutex_lock(&wr->lock);
  wr->count++;
  wr->category = category;
  snprintf(wr->text, sizeof wr->text, "%s", text);
  wr->thread = pthread_self();
  wr->stack_size = size;
  memcpy(wr->name, name, sizeof wr->name);
  wr->blocked_int = sigismember(&set, SIGINT);
  wr->blocked_term = sigismember(&set, SIGTERM);
  wr->blocked_chld = sigismember(&set, SIGCHLD);
  wr->blocked_usr1 = sigismember(&set, SIGUSR1);
  wr->headroom = headroom;
  pthread_mutex_unlock(&wr->lock);
}

static inline int wt_warning_count(void) {
  int n;
  pthread_mutex_lock(&wt_warned.lock);
  n = wt_warned.count;
  pthread_mutex_unlock(&wt_warned.lock);
  return n;
}

/* Installs the hook for this test's process. */
static inline void wt_hook_install(void) {
  I->set_warning_hook(wt_hook, &wt_warned);
}

/* Waits (bounded, 10 s) until `n` warnings were seen; the count. */
static inline int wt_wait_warnings(int n) {
  int i, c = 0;
  for (i = 0; i < 10000 && (c = wt_warning_count()) < n; i++)
    lt_nap(1);
  return c;
}

/* A run_until predicate: `n` warnings were seen. */
static inline int wt_warned_at_least(void *arg) {
  return wt_warning_count() >= *(const int *)arg;
}

/* Checks that each of the `n` recorders ran exactly once, for its own pid,
 * with the expected returncode, in the calling (loop) thread. */
static inline void wt_assert_each_once(struct wt_rec *rec, const int *pids,
                                       const int *want, int n) {
  int i;
  for (i = 0; i < n; i++) {
    cr_assert(eq(int, atomic_load(&rec[i].calls), 1), "child %d: once", i);
    cr_assert(eq(int, rec[i].pid, pids[i]), "child %d: its pid", i);
    cr_assert(eq(int, rec[i].returncode, want[i]), "child %d: returncode", i);
    cr_assert(ne(int, pthread_equal(rec[i].thread, pthread_self()), 0),
              "child %d: delivered in the loop's thread", i);
  }
}

#endif /* LSPEC_TESTS_WATCHER_HELPERS_H */
