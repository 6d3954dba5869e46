/* watcher_multiloop.c - MultiLoopChildWatcher: a process-wide SIGCHLD
 * handler and a small reaper thread that polls every registered pid and
 * hands each exit to the loop that registered it.
 *
 * Behaviour (the page where it speaks, CPython's where it is silent; clause
 * ids are research 1.9's WAT-ML-*):
 *  - The page says the watcher "registers a SIGCHLD signal handler on
 *    instantiation"; CPython installs it on the first attach_loop (conflict
 *    C1).  The reference follows the page: the constructor installs it, so
 *    is_active is 1 from construction until close (CPython: from the first
 *    attach, WAT-ML-004).  attach_loop ignores its argument (WAT-ML-002);
 *    after close it installs the handler again, as CPython's first attach
 *    after close does.
 *  - The page says there is "no limitation for running subprocesses from
 *    different threads once installed"; CPython's Python-level handler
 *    only runs while the main thread executes bytecode, so a worker loop
 *    waits forever while the main thread blocks (conflict C8, bpo-38323).
 *    The reference follows the page: the handler is a real C handler and
 *    the polling happens in the watcher's own thread, so no thread has to
 *    cooperate.
 *  - add_child_handler needs a running loop in the calling thread
 *    (RuntimeError 'no running event loop'), registers (replacing) and
 *    polls the pid at once; every exit goes through that loop's
 *    call_soon_threadsafe, never synchronously, even for a child already
 *    dead (WAT-ML-005/006).  A closed loop: "Loop %r that handles pid %r is
 *    closed", callback dropped.  ECHILD: 255 with the "Unknown child
 *    process pid" warning.
 *  - remove_child_handler: 1 or 0; the child is not reaped (WAT-ML-009).
 *  - close drops every handler uncalled, stops and joins the reaper thread,
 *    closes its eventfd and restores the SIGCHLD disposition saved at
 *    installation - unless someone else replaced the handler meanwhile: then
 *    it warns "SIGCHLD handler was changed by outside code" and leaves
 *    theirs in place (WAT-ML-008).  CPython's "Previous SIGCHLD handler was
 *    set by non-Python code" warning has no C counterpart: a C handler
 *    saves and restores any disposition exactly.
 *  - 3.12: the constructor warns DeprecationWarning (WAT-ML-011).
 *
 * The signal handler.  One C function serves every MultiLoop watcher.  It
 * is async-signal-safe: it saves errno and writes 1 to the eventfd of each
 * installed watcher (a fixed table of atomics), nothing else.  Each write
 * is counted in `in_flight` around the table reads, and uninstalling waits
 * for the count to drop to zero before closing the eventfd, so a handler
 * running on another thread never writes into a reused descriptor (the
 * handshake of loop_signal.c).  A forked child inherits the handler and
 * the table; a SIGCHLD in it wakes the parent's reaper for a pass that
 * finds nothing, which is harmless, and exec clears both (CLOEXEC).
 *
 * Several watchers.  Each installation saves the disposition it replaced,
 * and the installations form a stack.  Since the handler function is the
 * same for all, "our handler" means any MultiLoop watcher's: closing the
 * newest restores what it saved if the handler is still ours (else the
 * warning); closing an older one hands what it saved to the next newer one
 * when that one replaced ours (else the warning: someone else came in
 * between).  So the original disposition comes back whatever the order of
 * the closes.  (CPython's handlers are distinct bound methods, so its
 * older watcher warns there and its newer one later restores a stale
 * handler.)
 *
 * The reaper thread.  64 KiB stack, every signal blocked (SIGCHLD lands on
 * some other thread, whose handler only writes the eventfd), named
 * "asyncio-sigchld".  It sleeps in poll() on the eventfd; each wake-up
 * polls every registered pid (lspec__sigchld_poll_registered: waitpid(pid,
 * WNOHANG), O(n) per SIGCHLD, never an unregistered child).  A wake-up is
 * written at installation too, so exits that happened while nothing was
 * installed are found.  The warnings hook may run on this thread (a closed
 * loop, an unknown child).  Each pass holds a reference to the watcher,
 * so a hook (or another thread) may close or release it meanwhile; a close
 * that runs on the reaper thread itself leaves the thread to finish its
 * pass and clean up on its own (see struct reaper).
 */
#define _GNU_SOURCE 1
#include "watcher_sigchld.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "the signal handler needs lock-free atomic ints");

/* Installed MultiLoop watchers at one time, at most. */
#define ML_SLOTS 64
/* The reaper thread's stack. */
#define REAPER_STACK_SIZE (64 * 1024)

/* One installation's reaper thread.  Separate from the watcher's state so
 * that a thread whose watcher was closed (or freed) from that very thread -
 * a warnings hook calling close, or the last reference dropped at the end
 * of one of its passes - can finish on its own and free this. */
struct reaper {
  lspec_watcher *w;   /* the watcher (no reference; see reaper_main) */
  int efd;            /* the eventfd the handler writes */
  pthread_t thread;   /* the thread */
  atomic_int stop;    /* asks the thread to end */
  atomic_int orphan;  /* closed from the thread itself: it cleans up */
  struct lspec__warn_buf warnings; /* a pass's warnings, delivered after it */
};

/* The kind's state.  Installation fields are under ml_lock. */
struct multiloop {
  lspec_watcher *w;        /* the watcher */
  int installed;           /* the handler and the thread are in place */
  int slot;                /* its index in ml_fd, or -1 */
  struct reaper *reaper;   /* the thread, while installed */
  struct sigaction saved;  /* the disposition this installation replaced */
  struct multiloop *older; /* the installation before this one */
  struct multiloop *newer; /* the installation after this one */
};

/* Guards every installation field and the stack. */
static pthread_mutex_t ml_lock = PTHREAD_MUTEX_INITIALIZER;
/* The newest installation. */
static struct multiloop *ml_newest;
/* Each installed watcher's eventfd + 1 (0: free slot), for the handler. */
static atomic_int ml_fd[ML_SLOTS];
/* Handlers between reading ml_fd and finishing their writes. */
static atomic_int ml_in_flight;

/* ------------------------------------------------------------------------ */
/* The handler and the reaper thread.                                       */
/* ------------------------------------------------------------------------ */

/* The process-wide SIGCHLD handler.  Only async-signal-safe operations. */
static void on_sigchld(int sig) {
  int saved = errno, i, fd;

  (void)sig;
  atomic_fetch_add(&ml_in_flight, 1);
  for (i = 0; i < ML_SLOTS; i++) {
    fd = atomic_load(&ml_fd[i]) - 1;
    if (fd < 0)
      continue;
    /* EINTR retried; EAGAIN: the counter is saturated, the reaper awake
     * anyway. */
    (void)lspec__sys_wake(fd);
  }
  atomic_fetch_sub(&ml_in_flight, 1);
  errno = saved;
}

static int handler_is_ours(const struct sigaction *sa) {
  return !(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == on_sigchld;
}

/* A pass holds no reference to the watcher: the watcher's close stops
 * this thread and, from any other thread, joins it before anything is
 * freed, so the last release stays where the user makes it and restores
 * SIGCHLD before it returns (a reference held by the pass once made the
 * pass's release the last, and the restore late).  The pass's warnings are
 * delivered only after it, when it no longer touches the watcher: a hook
 * that closes or releases the watcher from here then stops this thread,
 * which finds itself an orphan and cleans up on its own. */
static void *reaper_main(void *arg) {
  struct reaper *r = arg;
  struct pollfd p;
  uint64_t value;
  int n;

  for (;;) {
    p = (struct pollfd){r->efd, POLLIN, 0};
    n = poll(&p, 1, -1);
    if (n < 0 && errno == EINTR)
      continue;
    while (read(r->efd, &value, sizeof value) < 0 && errno == EINTR)
      ;
    if (atomic_load(&r->stop))
      break;
    lspec__warn_defer_begin(&r->warnings);
    lspec__sigchld_poll_registered(r->w);
    lspec__warn_defer_end(&r->warnings); /* r->w is not used after this */
  }
  if (atomic_load(&r->orphan)) {
    close(r->efd);
    free(r);
  }
  return NULL;
}

/* Starts the reaper thread with a small stack and every signal blocked; 0
 * or an errno. */
static int reaper_start(struct reaper *r) {
  pthread_attr_t attr;
  sigset_t all, old;
  long min = sysconf(_SC_THREAD_STACK_MIN);
  size_t stack = REAPER_STACK_SIZE;
  int err;

  if (min > 0 && (size_t)min > stack)
    stack = (size_t)min;
  if ((err = pthread_attr_init(&attr)) != 0)
    return err;
  pthread_attr_setstacksize(&attr, stack);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = -lspec__sys.pthread_create(&r->thread, &attr, reaper_main, r);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err == 0)
    pthread_setname_np(r->thread, "asyncio-sigchld"); /* cosmetic */
  return err;
}

/* Waits until no handler can still write to a slot just cleared. */
static void wait_handlers(void) {
  while (atomic_load(&ml_in_flight) != 0)
    sched_yield();
}

/* ------------------------------------------------------------------------ */
/* Installation.                                                             */
/* ------------------------------------------------------------------------ */

/* Stops a reaper thread whose slot was already cleared: joins it and
 * frees it, or, when called on that very thread, leaves it to finish and
 * clean up by itself. */
static void reaper_stop(struct reaper *r) {
  atomic_store(&r->stop, 1);
  (void)lspec__sys_wake(r->efd);
  wait_handlers(); /* no handler writes to efd any more */
  if (pthread_equal(r->thread, pthread_self())) {
    atomic_store(&r->orphan, 1);
    pthread_detach(r->thread);
    return;
  }
  pthread_join(r->thread, NULL);
  close(r->efd);
  free(r);
}

/* Installs the handler and starts the thread, unless already done. */
static int install(lspec_watcher *w) {
  struct multiloop *st = w->state;
  struct reaper *r;
  struct sigaction sa;
  int slot, err;

  pthread_mutex_lock(&ml_lock);
  if (st->installed) {
    pthread_mutex_unlock(&ml_lock);
    return LSPEC_OK;
  }
  for (slot = 0; slot < ML_SLOTS && atomic_load(&ml_fd[slot]) != 0; slot++)
    ;
  if (slot == ML_SLOTS) {
    pthread_mutex_unlock(&ml_lock);
    return lspec__fail(LSPEC_E_RUNTIME,
                       "too many MultiLoopChildWatcher instances (at most "
                       "%d installed at a time)",
                       ML_SLOTS);
  }
  if ((r = calloc(1, sizeof *r)) == NULL) {
    pthread_mutex_unlock(&ml_lock);
    return lspec__fail_nomem("a MultiLoopChildWatcher's thread");
  }
  r->w = w;
  if ((r->efd = lspec__sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    err = -r->efd;
    pthread_mutex_unlock(&ml_lock);
    free(r);
    return lspec__fail_errno(err, "MultiLoopChildWatcher: eventfd");
  }
  if ((err = reaper_start(r)) != 0) {
    pthread_mutex_unlock(&ml_lock);
    close(r->efd);
    free(r);
    /* threading.Thread.start's error. */
    return lspec__fail(LSPEC_E_RUNTIME, "can't start new thread (%s)",
                       strerror(err));
  }
  /* The slot before the handler: no SIGCHLD after the sigaction can miss
   * the wake-up. */
  atomic_store(&ml_fd[slot], r->efd + 1);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART; /* CPython: signal.siginterrupt(SIGCHLD, False) */
  sigemptyset(&sa.sa_mask);
  if ((err = -lspec__sys.sigaction(SIGCHLD, &sa, &st->saved)) != 0) {
    atomic_store(&ml_fd[slot], 0);
    pthread_mutex_unlock(&ml_lock);
    reaper_stop(r);
    return lspec__fail_errno(err, "sigaction(SIGCHLD)");
  }
  st->slot = slot;
  st->reaper = r;
  st->older = ml_newest;
  st->newer = NULL;
  if (ml_newest != NULL)
    ml_newest->newer = st;
  ml_newest = st;
  st->installed = 1;
  /* A first pass: children registered while nothing was installed. */
  (void)lspec__sys_wake(r->efd);
  pthread_mutex_unlock(&ml_lock);
  return LSPEC_OK;
}

/* Restores the disposition (or warns) and stops the thread.  Nothing when
 * not installed. */
static void uninstall(lspec_watcher *w) {
  struct multiloop *st = w->state;
  struct sigaction cur;
  struct reaper *r;
  int changed = 0;

  pthread_mutex_lock(&ml_lock);
  if (!st->installed) {
    pthread_mutex_unlock(&ml_lock);
    return;
  }
  if (st->newer == NULL) {
    /* The newest installation: the process's handler should be ours. */
    if (sigaction(SIGCHLD, NULL, &cur) == 0 && handler_is_ours(&cur) &&
        !LSPEC_PLANTED(CW_ML_004)) /* planted: our handler stays */
      (void)sigaction(SIGCHLD, &st->saved, NULL);
    else
      changed = 1;
    ml_newest = st->older;
  } else if (handler_is_ours(&st->newer->saved)) {
    /* A newer MultiLoop replaced ours: it restores what we saved. */
    st->newer->saved = st->saved;
  } else {
    changed = 1; /* someone else came in between */
  }
  if (st->newer != NULL)
    st->newer->older = st->older;
  if (st->older != NULL)
    st->older->newer = st->newer;
  st->older = st->newer = NULL;
  atomic_store(&ml_fd[st->slot], 0);
  st->slot = -1;
  st->installed = 0;
  r = st->reaper;
  st->reaper = NULL;
  pthread_mutex_unlock(&ml_lock);

  reaper_stop(r);
  if (changed)
    lspec__warn(LSPEC_WARN_LOG_WARNING,
                "SIGCHLD handler was changed by outside code");
}

/* ------------------------------------------------------------------------ */
/* The operations.                                                           */
/* ------------------------------------------------------------------------ */

static int ml_add(lspec_watcher *w, int pid, lspec_child_callback cb,
                  void *arg) {
  lspec_loop *loop = lspec__loop_running();
  struct lspec__child *c;
  int r, rc = 0;

  if (loop == NULL)
    return lspec__fail(LSPEC_E_RUNTIME, "no running event loop");
  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_find(w, pid)) == NULL &&
      (c = lspec__children_add(w, pid)) == NULL) {
    pthread_mutex_unlock(&w->lock);
    return lspec__fail_nomem("a child handler");
  }
  /* Replaces; delivered through the caller's loop. */
  lspec__loop_retain(loop);
  if (c->loop != NULL)
    lspec__loop_release(c->loop);
  c->loop = loop;
  c->cb = cb;
  c->arg = arg;
  /* CPython's _do_waitpid(pid) at once: a dead child is queued now. */
  if ((r = lspec__reap(pid, &rc)) == 0) {
    pthread_mutex_unlock(&w->lock);
    return LSPEC_OK;
  }
  lspec__children_take(w, pid);
  pthread_mutex_unlock(&w->lock);
  if (r < 0)
    rc = lspec__unknown_child(pid);
  lspec__child_deliver(w, c, rc); /* call_soon_threadsafe, never inline */
  return LSPEC_OK;
}

static int ml_remove(lspec_watcher *w, int pid) {
  struct lspec__child *c;

  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_take(w, pid)) != NULL)
    lspec__children_recycle(w, c);
  pthread_mutex_unlock(&w->lock);
  return c != NULL;
}

static int ml_attach(lspec_watcher *w, lspec_loop *loop) {
  (void)loop; /* WAT-ML-002: ignored */
  return install(w);
}

static int ml_is_active(lspec_watcher *w) {
  struct multiloop *st = w->state;
  int active;

  pthread_mutex_lock(&ml_lock);
  active = st->installed;
  pthread_mutex_unlock(&ml_lock);
  return active;
}

static int ml_close(lspec_watcher *w) {
  struct lspec__child *c;
  size_t i;

  pthread_mutex_lock(&w->lock);
  if (w->children.buckets != NULL)
    for (i = 0; i <= w->children.mask; i++)
      while ((c = w->children.buckets[i]) != NULL) {
        lspec__children_take(w, c->pid);
        lspec__children_recycle(w, c);
      }
  pthread_mutex_unlock(&w->lock);
  uninstall(w);
  return LSPEC_OK;
}

static void ml_destroy(lspec_watcher *w) {
  free(w->state);
  w->state = NULL;
}

static const struct lspec__watcher_ops multiloop_ops = {
    .kind = LSPEC_WATCHER_MULTILOOP,
    .name = "MultiLoopChildWatcher",
    .add_child_handler = ml_add,
    .remove_child_handler = ml_remove,
    .attach_loop = ml_attach,
    .is_active = ml_is_active,
    .close = ml_close,
    .enter = NULL, /* __enter__ returns self, __exit__ does nothing */
    .exit = NULL,
    .destroy = ml_destroy,
};

int lspec__watcher_multiloop_init(lspec_watcher *w) {
  struct multiloop *st = calloc(1, sizeof *st);
  int rc;

  if (st == NULL)
    return lspec__fail_nomem("a MultiLoopChildWatcher");
  lspec__sigchld_deprecated("MultiLoopChildWatcher");
  st->w = w;
  st->slot = -1;
  w->ops = &multiloop_ops;
  w->state = st;
  /* The page: the handler is registered on instantiation (C1). */
  if ((rc = install(w)) != LSPEC_OK) {
    free(st);
    w->state = NULL;
    return rc;
  }
  return LSPEC_OK;
}
