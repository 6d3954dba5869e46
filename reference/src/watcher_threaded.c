/* watcher_threaded.c - ThreadedChildWatcher: one waiting thread per child.
 *
 * Behaviour (the page where it speaks, CPython's where it is silent; the
 * clause ids are research 1.5's WAT-THR-*):
 *  - is_active is always 1; attach_loop accepts anything and does nothing;
 *    enter/exit do nothing (WAT-THR-001).
 *  - add_child_handler needs a running loop in the calling thread
 *    (RuntimeError 'no running event loop') and delivers through THAT loop
 *    with call_soon_threadsafe: in the loop's thread, on a later iteration,
 *    never inside add and never in the waiting thread (WAT-THR-002..004).
 *  - A second add for the same pid REPLACES the handler, as the page says
 *    (CPython starts a second thread and fires both: conflict C3).
 *  - remove_child_handler returns 1 when a handler was registered (it will
 *    not be called) and 0 otherwise, as the page says (CPython: always True
 *    and the callback still fires: conflict C4).  The child is still reaped
 *    by its thread, so no zombie is left.
 *  - A pid that is not our child, or was reaped elsewhere: returncode 255
 *    with "Unknown child process pid %d, will report returncode 255"
 *    (WAT-ABC-006/007).  A closed loop: "Loop %r that handles pid %r is
 *    closed" and the callback is dropped (WAT-THR-003).
 *  - close really releases what the watcher holds, as the page says ("has
 *    to be called to ensure that underlying resources are cleaned-up";
 *    CPython's close does nothing: conflict C7).  The watcher stays usable
 *    after close, as CPython's does: a later add starts a new thread.
 *
 * The threads.  One joinable thread per child, with a 64 KiB stack
 * (CPython's threads get the default 8 MiB of address space), all signals
 * blocked so that process signals never land on it, named waitpid-N
 * (3.8-3.10) or asyncio-waitpid-N (3.11+, gh-110205), cut to the kernel's
 * 15 characters, so the 3.11+ names all read "asyncio-waitpid".  N counts
 * from 0 per watcher.  The warnings hook runs on this stack when an exit
 * cannot be delivered normally, so a hook must stay within it.
 *
 * How a thread waits.  It first tries to reap (waitpid WNOHANG, EINTR
 * retried): a child already gone, or a pid that is not our child (ECHILD),
 * is settled at once.  Otherwise it blocks in poll() on a pidfd of the child
 * and on the watcher's stop eventfd; the pidfd becomes readable when the
 * child exits, and the thread reaps it.  Reaping and taking the table entry
 * happen in one critical section under the watcher's lock, so a pid that is
 * reused right after the reap can never be matched to the old exit.  Where
 * pidfd_open is unavailable (Linux < 5.3, seccomp, valgrind 3.19, no
 * descriptor left) the thread instead re-tries the reap at growing
 * intervals (1 ms doubling to 64 ms) while waiting on the watcher's
 * condition variable, which close broadcasts.  Not waitid() with
 * pthread_cancel: glibc loads libgcc_s at the first cancellation, and that
 * dlopen fails (and aborts the process) in exactly the no-descriptor case.
 *
 * close.  It starts a new generation (threads of older ones stop), writes
 * the stop eventfd and broadcasts the condition variable, joins every
 * thread, and then settles each child whose thread it
 * stopped: a child that has exited meanwhile is reaped and its callback is
 * delivered with the real returncode (not lost); a child still running has
 * its handler dropped (as Safe/Fast/MultiLoop's close clear their
 * callbacks: there is no thread left to report it) and is handed to the
 * process-wide orphan list below.  So close + release leave no thread and
 * no descriptor of the watcher behind.
 *
 * Orphans.  A child still running when its watcher was closed must not stay
 * a zombie forever once it exits.  Its pidfd (or, without pidfds, its pid)
 * goes into one process-wide list that is swept - reaped with WNOHANG, one
 * exact child at a time, never waitpid(-1) - on every add, every close and
 * every release of any Threaded watcher.  With a pidfd the sweep reaps
 * exactly that process (waitid P_PIDFD), so it can never steal the status of
 * a later child that reused the pid; someone else reaping it first is fine
 * (ECHILD: forgotten).  The cost: such an orphan keeps one descriptor, and
 * its zombie lasts until the next sweep after its exit.
 */
#define _GNU_SOURCE 1
#include "watcher.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The waiting thread's stack: small, and never below what the system
 * needs.  glibc maps a guard page on top of it, and keeps the thread's
 * descriptor and static TLS inside it: 56 KiB asked is 60 KiB of address
 * space per thread. */
#define WAITER_STACK_SIZE (56 * 1024)

/* Where a waiting thread is. */
enum waiter_state {
  W_WAITING = 0, /* blocked, or about to; close must stop it */
  W_DONE = 1,    /* settled its child (took its entry, if any): join it */
  W_STOPPED = 2  /* stopped by close before its child exited */
};

/* One waiting thread. */
struct waiter {
  pthread_t thread; /* the thread */
  char name[16];    /* its name, which it gives itself */
  lspec_watcher *w; /* its watcher (no reference: close joins it first) */
  int pid;          /* the child */
  int pidfd;        /* a pidfd of the child, or -1: polling fallback */
  int stopfd;       /* its generation's stop eventfd (borrowed) */
  unsigned gen;     /* its generation: close stops older ones */
  int state;        /* enum waiter_state, under w->lock */
  int reaped;       /* close: 1 reaped (rc is valid), 0 ECHILD */
  int rc;           /* close: the returncode to deliver */
  struct lspec__child *child; /* close: the entry to deliver, or NULL */
  struct waiter *next;        /* in the watcher's lists, or close's */
  struct waiter **pprev;      /* what points at it in `waiters` */
};

/* The kind's state, under w->lock. */
struct threaded {
  int stopfd;               /* eventfd close writes, -1 until needed */
  unsigned gen;             /* generation: each close starts a new one */
  pthread_cond_t stop_cond; /* close broadcasts it (pidfd-less threads) */
  unsigned next_n;          /* N of the next thread's name */
  struct waiter *waiters;   /* started, still serving their child */
  struct waiter *done;      /* finished their child, not joined yet */
};

/* ------------------------------------------------------------------------ */
/* Orphans: children whose watcher was closed while they ran.               */
/* ------------------------------------------------------------------------ */

struct orphan {
  int pid;   /* the child */
  int pidfd; /* a pidfd of it, or -1 */
};

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct orphan *orphans; /* the list, freed when empty */
static size_t norphans;        /* entries in it */
static size_t orphans_cap;     /* its capacity */

/* 1 when the orphan is settled (reaped by us or by someone else), 0 while
 * it runs. */
static int orphan_settled(const struct orphan *o) {
  siginfo_t si;
  int r;

  if (o->pidfd >= 0) {
    memset(&si, 0, sizeof si);
    do
      r = lspec__sys.waitid((idtype_t)P_PIDFD, (id_t)o->pidfd, &si,
                            WEXITED | WNOHANG);
    while (r == -EINTR);
    if (r == 0)
      return si.si_pid != 0;
    if (r != -EINVAL)
      return 1; /* ECHILD: reaped elsewhere */
    /* No P_PIDFD (Linux < 5.4): the pidfd still says whether it exited,
     * and while it is an unreaped zombie its pid cannot be reused. */
    struct pollfd p = {o->pidfd, POLLIN, 0};
    if (poll(&p, 1, 0) == 0)
      return 0;
  }
  return lspec__reap(o->pid, NULL) != 0;
}

/* Reaps the orphans that have exited; forgets those reaped elsewhere. */
static void orphans_sweep(void) {
  size_t i = 0;

  pthread_mutex_lock(&orphan_lock);
  while (i < norphans) {
    if (!orphan_settled(&orphans[i])) {
      i++;
      continue;
    }
    if (orphans[i].pidfd >= 0)
      close(orphans[i].pidfd);
    orphans[i] = orphans[--norphans];
  }
  if (norphans == 0) {
    free(orphans);
    orphans = NULL;
    orphans_cap = 0;
  }
  pthread_mutex_unlock(&orphan_lock);
}

/* Hands a running child over to the sweep; takes ownership of pidfd. */
static void orphan_add(int pid, int pidfd) {
  struct orphan *o;
  size_t cap;

  pthread_mutex_lock(&orphan_lock);
  if (norphans == orphans_cap) {
    cap = orphans_cap ? orphans_cap * 2 : 8;
    o = realloc(orphans, cap * sizeof *o);
    if (o == NULL) {
      pthread_mutex_unlock(&orphan_lock);
      /* Out of memory: the child can no longer be tracked; say so. */
      lspec__warn(LSPEC_WARN_LOG_ERROR,
                  "out of memory: child process pid %d will not be reaped",
                  pid);
      if (pidfd >= 0)
        close(pidfd);
      return;
    }
    orphans = o;
    orphans_cap = cap;
  }
  orphans[norphans++] = (struct orphan){pid, pidfd};
  pthread_mutex_unlock(&orphan_lock);
}

/* ------------------------------------------------------------------------ */
/* The waiting thread.                                                       */
/* ------------------------------------------------------------------------ */

/* With a pidfd: blocks, without the lock, until the child exited or close
 * wrote the stop eventfd; the caller then looks again under the lock. */
static void waiter_poll(struct waiter *wt) {
  struct pollfd p[2];
  int r;

  p[0] = (struct pollfd){wt->pidfd, POLLIN, 0};
  p[1] = (struct pollfd){wt->stopfd, POLLIN, 0};
  do
    r = poll(p, 2, -1);
  while (r < 0 && errno == EINTR);
  /* An error cannot happen with valid descriptors; looking again is safe. */
}

/* Without a pidfd: waits on the watcher's condition variable (w->lock
 * held) until close broadcasts it or `*interval_ms` passes, then doubles
 * the interval up to POLL_MAX_MS.  Bounded polling, but no signal, no
 * cancellation and no descriptor. */
#define POLL_MAX_MS 64
static void waiter_nap(struct waiter *wt, struct threaded *st,
                       long *interval_ms) {
  struct timespec until;

  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_nsec += *interval_ms * 1000000L;
  until.tv_sec += until.tv_nsec / 1000000000L;
  until.tv_nsec %= 1000000000L;
  pthread_cond_timedwait(&st->stop_cond, &wt->w->lock, &until);
  if (*interval_ms < POLL_MAX_MS)
    *interval_ms *= 2;
}

static void *waiter_main(void *arg) {
  struct waiter *wt = arg;
  lspec_watcher *w = wt->w;
  struct threaded *st = w->state;
  struct lspec__child *c = NULL;
  long interval_ms = 1;
  int pid = wt->pid, rc = 0, r;

  /* Named from inside: prctl is one system call, where naming it from
   * outside opens, writes and closes /proc/self/task/N/comm. */
  prctl(PR_SET_NAME, wt->name, 0, 0, 0); /* cosmetic: failure is fine */
  pthread_mutex_lock(&w->lock);
  for (;;) {
    r = lspec__reap(pid, &rc);
    if (r != 0) {
      /* Settled: the exit, or -ECHILD (not our child, or reaped
       * elsewhere).  The entry is ours if it is still the one we serve. */
      c = lspec__children_find(w, pid);
      if (c != NULL && c->kind_data == wt)
        lspec__children_take(w, pid);
      else
        c = NULL;
      wt->state = W_DONE;
      if (wt->gen == st->gen) {
        /* Still on the watcher's list (a close would have taken it and
         * bumped the generation): move to the done list, so the next add
         * finds it without walking every waiter. */
        *wt->pprev = wt->next;
        if (wt->next != NULL)
          wt->next->pprev = wt->pprev;
        wt->next = st->done;
        st->done = wt;
      }
      break;
    }
    if (wt->gen != st->gen) {
      /* close stopped this generation; it settles the child. */
      wt->state = W_STOPPED;
      pthread_mutex_unlock(&w->lock);
      return NULL;
    }
    if (wt->pidfd >= 0) {
      pthread_mutex_unlock(&w->lock);
      waiter_poll(wt);
      pthread_mutex_lock(&w->lock);
    } else {
      waiter_nap(wt, st, &interval_ms);
    }
  }
  pthread_mutex_unlock(&w->lock);
  /* From here on `wt` belongs to whoever joins the thread. */
  if (wt->pidfd >= 0)
    close(wt->pidfd);
  wt->pidfd = -1;
  if (c != NULL) {
    if (r < 0)
      rc = c->cb != NULL ? lspec__unknown_child(pid) : 255;
    lspec__child_deliver(w, c, rc);
  }
  return NULL;
}

/* The thread's name, as CPython's profile names it, cut to the kernel's
 * 15 characters. */
static void waiter_name(char name[16], unsigned n) {
  char full[32];
  snprintf(full, sizeof full, "%swaitpid-%u",
           lspec__profile() >= LSPEC_PROFILE_3_11 ? "asyncio-" : "", n);
  memcpy(name, full, 15);
  name[15] = '\0';
}

/* Starts the thread of `wt` with a small stack and every signal blocked.
 * 0 or an errno. */
static int waiter_start(struct waiter *wt, unsigned n) {
  static long min_stack; /* sysconf's answer, asked once */
  pthread_attr_t attr;
  sigset_t all;
  size_t stack = WAITER_STACK_SIZE;
  int err;
#if !(defined(__GLIBC__) && __GLIBC_PREREQ(2, 32))
  sigset_t old;
#endif

  if (min_stack == 0)
    min_stack = sysconf(_SC_THREAD_STACK_MIN);
  if (min_stack > 0 && (size_t)min_stack > stack)
    stack = (size_t)min_stack;
  waiter_name(wt->name, n);
  if ((err = pthread_attr_init(&attr)) != 0)
    return err;
  pthread_attr_setstacksize(&attr, stack);
  sigfillset(&all);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
  /* The thread starts with the mask: no mask change in this thread. */
  if ((err = pthread_attr_setsigmask_np(&attr, &all)) == 0)
    err = -lspec__sys.pthread_create(&wt->thread, &attr, waiter_main, wt);
#else
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = -lspec__sys.pthread_create(&wt->thread, &attr, waiter_main, wt);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
  pthread_attr_destroy(&attr);
  return err;
}

/* Joins a thread, or detaches it when it is the calling thread (close from
 * a warnings hook running on a waiting thread): it ends right after. */
static void waiter_join(struct waiter *wt) {
  if (pthread_equal(wt->thread, pthread_self()))
    pthread_detach(wt->thread);
  else
    pthread_join(wt->thread, NULL);
}

/* Under w->lock: takes the list of threads that are done, for the caller
 * to join and free (reap_finished) after releasing the lock.  O(1). */
static struct waiter *take_finished_locked(struct threaded *st) {
  struct waiter *done = st->done;

  st->done = NULL;
  return done;
}

/* Joins and frees the threads of `done` that have ended; one still on its
 * way out (it has posted its exit and is unwinding) goes back on the done
 * list rather than making the caller - usually the loop's thread - wait for
 * it.  close joins whatever is left. */
static void reap_finished(lspec_watcher *w, struct waiter *done) {
  struct threaded *st = w->state;
  struct waiter *next, *busy = NULL, *last = NULL;

  for (; done != NULL; done = next) {
    next = done->next;
    if (pthread_equal(done->thread, pthread_self()) ||
        pthread_tryjoin_np(done->thread, NULL) != 0) {
      done->next = busy;
      busy = done;
      if (last == NULL)
        last = done;
      continue;
    }
    free(done);
  }
  if (busy != NULL) {
    pthread_mutex_lock(&w->lock);
    last->next = st->done;
    st->done = busy;
    pthread_mutex_unlock(&w->lock);
  }
}

/* ------------------------------------------------------------------------ */
/* The operations.                                                           */
/* ------------------------------------------------------------------------ */

static int threaded_add(lspec_watcher *w, int pid, lspec_child_callback cb,
                        void *arg) {
  struct threaded *st = w->state;
  lspec_loop *loop = lspec__loop_running();
  struct lspec__child *c;
  struct waiter *wt = NULL, *done;
  lspec_loop *replaced = NULL;
  int rc = LSPEC_OK, err;

  if (loop == NULL)
    return lspec__fail(LSPEC_E_RUNTIME, "no running event loop");

  pthread_mutex_lock(&w->lock);
  done = take_finished_locked(st);
  if ((c = lspec__children_find(w, pid)) != NULL) {
    /* A thread already waits for this child: the new handler replaces the
     * old one (the page; conflict C3), and will be delivered through the
     * new caller's loop. */
    lspec__loop_retain(loop);
    replaced = c->loop; /* released after the lock: it may be the last */
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    goto out;
  }
  if (st->stopfd < 0 &&
      (st->stopfd = lspec__sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    rc = lspec__fail_errno(-st->stopfd, "add_child_handler: eventfd");
    st->stopfd = -1;
    goto out;
  }
  if ((wt = calloc(1, sizeof *wt)) == NULL ||
      (c = lspec__children_add(w, pid)) == NULL) {
    free(wt);
    rc = lspec__fail_nomem("a child handler");
    goto out;
  }
  wt->w = w;
  wt->pid = pid;
  wt->stopfd = st->stopfd;
  wt->gen = st->gen;
  /* ESRCH (gone already), ENOSYS, EMFILE...: the waitid path settles it. */
  if ((wt->pidfd = lspec__sys.pidfd_open(pid, 0)) < 0)
    wt->pidfd = -1;
  c->cb = cb;
  c->arg = arg;
  c->loop = LSPEC_PLANTED(CW_THR_003) ? NULL : loop; /* planted: no loop */
  if (c->loop != NULL)
    lspec__loop_retain(loop);
  c->kind_data = wt;
  if ((err = waiter_start(wt, st->next_n)) != 0) {
    lspec__children_take(w, pid);
    lspec__children_recycle(w, c);
    if (wt->pidfd >= 0)
      close(wt->pidfd);
    free(wt);
    /* threading.Thread.start's error. */
    rc = lspec__fail(LSPEC_E_RUNTIME, "can't start new thread (%s)",
                     strerror(err));
    goto out;
  }
  st->next_n++;
  wt->next = st->waiters;
  if (wt->next != NULL)
    wt->next->pprev = &wt->next;
  wt->pprev = &st->waiters;
  st->waiters = wt;
out:
  pthread_mutex_unlock(&w->lock);
  if (replaced != NULL)
    lspec__loop_release(replaced);
  reap_finished(w, done);
  orphans_sweep();
  return rc;
}

static int threaded_remove(lspec_watcher *w, int pid) {
  struct lspec__child *c;
  lspec_loop *loop = NULL;
  int removed = 0;

  pthread_mutex_lock(&w->lock);
  c = lspec__children_find(w, pid);
  if (c != NULL && c->cb != NULL) {
    /* The entry stays, without a handler: its thread still reaps the
     * child, and finds nothing to deliver. */
    loop = c->loop;
    c->loop = NULL;
    c->cb = NULL;
    c->arg = NULL;
    removed = 1;
  }
  pthread_mutex_unlock(&w->lock);
  if (loop != NULL)
    lspec__loop_release(loop);
  return removed;
}

static int threaded_attach(lspec_watcher *w, lspec_loop *loop) {
  (void)w, (void)loop; /* WAT-THR-001: any argument, nothing happens */
  return LSPEC_OK;
}

static int threaded_is_active(lspec_watcher *w) {
  (void)w;
  return 1;
}

static int threaded_close(lspec_watcher *w) {
  struct threaded *st = w->state;
  struct waiter *list, *done, *wt, *todo = NULL, *next;
  struct lspec__child *c;
  int stopfd, r, rc;

  /* Every thread started so far belongs to this close; a thread started
   * by a concurrent add belongs to the next generation (new eventfd). */
  pthread_mutex_lock(&w->lock);
  list = st->waiters;
  st->waiters = NULL;
  done = take_finished_locked(st);
  stopfd = st->stopfd;
  st->stopfd = -1;
  st->gen++;
  pthread_cond_broadcast(&st->stop_cond);
  pthread_mutex_unlock(&w->lock);

  if (stopfd >= 0)
    (void)lspec__sys_wake(stopfd); /* EINTR retried */
  for (wt = list; wt != NULL; wt = wt->next)
    waiter_join(wt);
  for (; done != NULL; done = next) {
    next = done->next;
    waiter_join(done);
    free(done);
  }
  if (stopfd >= 0)
    close(stopfd);

  /* Settle the children whose thread was stopped. */
  pthread_mutex_lock(&w->lock);
  for (wt = list; wt != NULL; wt = next) {
    next = wt->next;
    c = NULL;
    if (wt->state != W_DONE) {
      c = lspec__children_find(w, wt->pid);
      if (c != NULL && c->kind_data != wt)
        c = NULL;
    }
    if (c == NULL) {
      if (wt->pidfd >= 0)
        close(wt->pidfd);
      free(wt);
      continue;
    }
    lspec__children_take(w, wt->pid);
    r = lspec__reap(wt->pid, &rc);
    if (r == 0) {
      /* Still running: no thread will report it any more.  The entry goes
       * through deliver without a handler, which recycles it and drops its
       * loop reference outside the lock. */
      c->cb = NULL;
      orphan_add(wt->pid, wt->pidfd);
      wt->pidfd = -1;
    } else if (wt->pidfd >= 0) {
      close(wt->pidfd);
    }
    wt->child = c;
    wt->reaped = r > 0;
    wt->rc = r > 0 ? rc : 255;
    wt->next = todo;
    todo = wt;
  }
  pthread_mutex_unlock(&w->lock);

  /* Exits that happened before close are delivered, not lost; dropped
   * handlers (cb NULL) are only recycled. */
  for (wt = todo; wt != NULL; wt = next) {
    next = wt->next;
    rc = wt->rc;
    if (!wt->reaped && wt->child->cb != NULL)
      rc = lspec__unknown_child(wt->pid);
    lspec__child_deliver(w, wt->child, rc);
    free(wt);
  }
  orphans_sweep();
  return LSPEC_OK;
}

static void threaded_destroy(lspec_watcher *w) {
  struct threaded *st = w->state;
  pthread_cond_destroy(&st->stop_cond);
  free(st);
  w->state = NULL;
}

static const struct lspec__watcher_ops threaded_ops = {
    .kind = LSPEC_WATCHER_THREADED,
    .name = "ThreadedChildWatcher",
    .add_child_handler = threaded_add,
    .remove_child_handler = threaded_remove,
    .attach_loop = threaded_attach,
    .is_active = threaded_is_active,
    .close = threaded_close,
    .enter = NULL, /* __enter__ returns self, __exit__ does nothing */
    .exit = NULL,
    .destroy = threaded_destroy,
};

int lspec__watcher_threaded_init(lspec_watcher *w) {
  struct threaded *st = calloc(1, sizeof *st);
  pthread_condattr_t attr;

  if (st == NULL)
    return lspec__fail_nomem("a ThreadedChildWatcher");
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&st->stop_cond, &attr);
  pthread_condattr_destroy(&attr);
  st->stopfd = -1;
  w->ops = &threaded_ops;
  w->state = st;
  return LSPEC_OK;
}
