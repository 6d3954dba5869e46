/* sigchld_test_helpers.h - what the tests of the SIGCHLD-driven watchers
 * (test_watcher_safe.c, test_watcher_fast.c, test_watcher_multiloop.c)
 * share on top of watcher_helpers.h: a warnings hook that keeps every
 * warning, the SIGCHLD disposition, zombie checks, and calls made from
 * inside a running loop.
 */
#ifndef LSPEC_TESTS_SIGCHLD_TEST_HELPERS_H
#define LSPEC_TESTS_SIGCHLD_TEST_HELPERS_H

#include "watcher_helpers.h"

#include <fcntl.h>

/* --- every warning ------------------------------------------------------------ */

#define SW_MAX 32

/* The warnings seen so far, from any thread. */
struct sw_log {
  pthread_mutex_t lock;    /* guards the rest */
  int n;                   /* warnings seen (may pass SW_MAX) */
  int category[SW_MAX];    /* each one's category */
  char text[SW_MAX][256];  /* each one's text */
};

static __attribute__((unused)) struct sw_log sw_warned = {
    .lock = PTHREAD_MUTEX_INITIALIZER};

static inline void sw_hook(void *user, int category, const char *text) {
  struct sw_log *l = user;
  pthread_mutex_lock(&l->lock);
  if (l->n < SW_MAX) {
    l->category[l->n] = category;
    snprintf(l->text[l->n], sizeof l->text[l->n], "%s", text);
  }
  l->n++;
  pthread_mutex_unlock(&l->lock);
}

static inline void sw_install(void) { I->set_warning_hook(sw_hook, &sw_warned); }

/* How many warnings were seen, leaving out the 3.12 DeprecationWarning of
 * close() itself (the page's side of conflict C11, checked by CW-DEP-002):
 * the counts here are about what a watcher reports, not about that. */
static inline int sw_count(void) {
  int i, n;
  pthread_mutex_lock(&sw_warned.lock);
  n = sw_warned.n;
  for (i = 0; i < sw_warned.n && i < SW_MAX; i++)
    if (sw_warned.category[i] == LSPEC_WARN_DEPRECATION &&
        strstr(sw_warned.text[i], ".close() is deprecated") != NULL)
      n--;
  pthread_mutex_unlock(&sw_warned.lock);
  return n;
}

/* How many warnings of `category` whose text equals `text` were seen. */
static inline int sw_seen(int category, const char *text) {
  int i, n = 0;
  pthread_mutex_lock(&sw_warned.lock);
  for (i = 0; i < sw_warned.n && i < SW_MAX; i++)
    if (sw_warned.category[i] == category && strcmp(sw_warned.text[i], text) == 0)
      n++;
  pthread_mutex_unlock(&sw_warned.lock);
  return n;
}

/* Waits (bounded, 10 s) until a warning of `category` with `text` was
 * seen; how many were. */
static inline int sw_wait_seen(int category, const char *text) {
  int i, n = 0;
  for (i = 0; i < 10000 && (n = sw_seen(category, text)) == 0; i++)
    lt_nap(1);
  return n;
}

/* The "Unknown child process" warning of `pid`. */
static inline const char *sw_unknown_text(int pid) {
  static char buf[128];
  snprintf(buf, sizeof buf,
           "Unknown child process pid %d, will report returncode 255", pid);
  return buf;
}

/* --- the SIGCHLD disposition ------------------------------------------------------ */

/* The process's SIGCHLD handler (SIG_DFL, SIG_IGN or a function). */
static inline void (*sw_sigchld_handler(void))(int) {
  struct sigaction sa;
  cr_assert(eq(int, sigaction(SIGCHLD, NULL, &sa), 0), "sigaction");
  return sa.sa_handler;
}

/* A handler of our own, standing for "outside code". */
static inline void sw_outside_handler(int sig) { (void)sig; }

static inline void sw_set_sigchld(void (*h)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  cr_assert(eq(int, sigaction(SIGCHLD, &sa, NULL), 0), "sigaction");
}

/* --- gated children ---------------------------------------------------------------- */

/* A child that waits until the test opens its gate, then exits with `code`
 * or, when `sig` is not 0, dies of `sig`: its exit certainly comes after
 * the registration.  Returns the pid; *gate is the descriptor to close. */
static inline int sw_spawn_gated(int code, int sig, int *gate) {
  int p[2], fd;
  pid_t pid;
  char c;
  sigset_t set;

  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe: %s", strerror(errno));
  pid = fork();
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0) {
    /* Keep only the read end: a write end of another gate held here
     * would keep that gate from opening. */
    for (fd = 3; fd < 1024; fd++)
      if (fd != p[0])
        close(fd);
    while (read(p[0], &c, 1) < 0 && errno == EINTR)
      ;
    close(p[0]); /* nothing inherited is left open at the end */
    if (sig != 0) {
      signal(sig, SIG_DFL);
      sigemptyset(&set);
      sigaddset(&set, sig);
      pthread_sigmask(SIG_UNBLOCK, &set, NULL);
      raise(sig);
    }
    lt_child_exit(code);
  }
  close(p[0]);
  *gate = p[1];
  return pid;
}

/* Opens a gate: its child exits. */
static inline void sw_open_gate(int gate) { close(gate); }

/* --- zombies ---------------------------------------------------------------------- */

/* 1 when `pid` is an unreaped zombie of ours (exited, not waited for). */
static inline int sw_is_zombie(int pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
    return 0;
  return si.si_pid == pid;
}

/* Reaps our own child `pid` (the test's duty when a watcher does not). */
static inline void sw_reap(int pid) {
  int r;
  do
    r = waitpid(pid, NULL, 0);
  while (r < 0 && errno == EINTR);
  cr_assert(eq(int, r, pid), "waitpid(%d): %s", pid, strerror(errno));
}

/* --- calls from inside a running loop ------------------------------------------------ */

/* An entry called by a loop callback, with what it returned. */
struct sw_call {
  lspec_watcher *w; /* the watcher */
  int what;         /* SW_IS_ACTIVE ... */
  int pid;          /* for add */
  struct wt_rec *rec; /* for add */
  int status;       /* the entry's result */
  int calls_after;  /* rec->calls right after add returned */
  int done;         /* the call was made */
};
enum { SW_IS_ACTIVE = 1, SW_ADD = 2 };

static inline void sw_call_cb(void *arg) {
  struct sw_call *c = arg;
  if (c->what == SW_IS_ACTIVE) {
    c->status = I->watcher_is_active(c->w);
  } else {
    c->status = I->watcher_add_child_handler(c->w, c->pid, wt_rec_cb, c->rec);
    c->calls_after = atomic_load(&c->rec->calls);
  }
  c->done = 1;
}

static inline int sw_call_done(void *arg) { return ((struct sw_call *)arg)->done; }

/* Runs `c` inside `loop`; its status. */
static inline int sw_call_in_loop(lspec_loop *loop, struct sw_call *c) {
  c->done = 0;
  cr_assert(eq(int, I->loop_call_soon(loop, sw_call_cb, c, NULL), LSPEC_OK),
            "call_soon");
  cr_assert(eq(int, I->loop_run_until(loop, sw_call_done, c, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, c->done, 1), "the call ran in the loop");
  return c->status;
}

/* is_active as seen from inside the running loop. */
static inline int sw_is_active_while_running(lspec_loop *loop, lspec_watcher *w) {
  struct sw_call c = {w, SW_IS_ACTIVE, 0, NULL, -100, 0, 0};
  return sw_call_in_loop(loop, &c);
}

/* Runs `loop` until every record of `recs` was called (bounded, 10 s). */
static inline void sw_run_until_called(lspec_loop *loop, struct wt_rec *recs,
                                       int n) {
  struct wt_all all = {recs, n};
  cr_assert(eq(int, I->loop_run_until(loop, wt_all_called, &all, 10), LSPEC_OK),
            "run_until: %s", I->last_error());
  cr_assert(eq(int, wt_all_called(&all), 1), "every callback ran in time");
}

/* --- a callback that calls back into its watcher ------------------------------------ */

/* What the re-entrant callback did; it would deadlock if the watcher's
 * lock were held while it runs. */
struct sw_reenter {
  lspec_watcher *w;  /* the watcher to call */
  atomic_int calls;  /* how many times it ran */
  int returncode;    /* what it was given */
  int removed;       /* remove_child_handler(its pid) from inside */
  int active;        /* is_active from inside */
};

static inline void sw_reenter_cb(int pid, int returncode, void *arg) {
  struct sw_reenter *r = arg;
  r->returncode = returncode;
  r->removed = I->watcher_remove_child_handler(r->w, pid);
  r->active = I->watcher_is_active(r->w);
  atomic_fetch_add(&r->calls, 1);
}

static inline int sw_reenter_called(void *arg) {
  return atomic_load(&((struct sw_reenter *)arg)->calls) > 0;
}

#endif /* LSPEC_TESTS_SIGCHLD_TEST_HELPERS_H */
