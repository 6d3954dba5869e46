/* loop_signal.c - signal handlers delivered through the loop: CPython's
 * _UnixSelectorEventLoop.add_signal_handler / remove_signal_handler.
 *
 * CPython installs a no-op Python handler and lets the C-level handler write
 * the signal number to the loop's self-pipe (signal.set_wakeup_fd); the
 * loop's reader then schedules the user's callback.  Here the C handler is
 * ours.  It is async-signal-safe: it saves errno, counts the delivery in a
 * per-signal atomic counter and writes to the owning loop's eventfd; the
 * callback runs later, in the loop's thread, never in signal context.
 *
 * Ownership.  A signal's disposition is process-wide, so one loop owns a
 * signal at a time and the last add wins, as with CPython's global
 * signal.signal.  Unlike CPython, the previous owner forgets its handler
 * (its remove then answers 0 and its close leaves the signal alone), where
 * CPython's previous owner would keep a stale entry whose removal resets
 * the new owner's disposition.
 *
 * Closing races.  A handler running on another thread may have read a
 * loop's eventfd number just before the loop gave the signal up.  Each
 * handler therefore counts itself in `in_flight` before it reads the number,
 * and close waits for that count to reach zero before it closes the eventfd
 * (a Dekker-style handshake: both sides use sequentially consistent
 * atomics), so a late handler never writes into a reused descriptor.
 *
 * Divergences from CPython, each deliberate:
 *  - remove_signal_handler(SIGINT) restores SIG_DFL: C has no
 *    default_int_handler (KeyboardInterrupt).
 *  - remove_signal_handler from a thread other than the main one fails with
 *    CPython's ValueError but, unlike CPython, leaves the handler in place
 *    (the ABI's failures have no side effects).  close() restores the
 *    dispositions from any thread, where CPython would raise after closing.
 *  - A delivery that is pending when its handler is removed is dropped;
 *    CPython may still run it.  A C callback's argument may be freed right
 *    after the removal, so running it would be unsafe.
 */
#define _GNU_SOURCE 1
#include "loop.h"
#include "syscalls.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "the signal handler needs lock-free atomic ints");

/* Guards sig_owner and every loop's sig[] table. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
/* The loop that owns each signal (borrowed: close gives it up). */
static lspec_loop *sig_owner[NSIG];
/* The owner's eventfd + 1 (0: no owner), for the handler. */
static atomic_int sig_wakefd[NSIG];
/* Deliveries of each signal not yet dispatched. */
static atomic_uint sig_count[NSIG];
/* Handlers between reading sig_wakefd and finishing their write. */
static atomic_int in_flight;

/* The process-wide handler.  Only async-signal-safe operations. */
static void on_signal(int sig) {
  int saved = errno, fd;

  atomic_fetch_add(&in_flight, 1);
  if (sig > 0 && sig < NSIG) {
    atomic_fetch_add(&sig_count[sig], 1);
    fd = atomic_load(&sig_wakefd[sig]) - 1;
    if (fd >= 0)
      /* EINTR retried; EAGAIN: the counter is saturated and the loop
       * awake anyway. */
      (void)lspec__sys_wake(fd);
  }
  atomic_fetch_sub(&in_flight, 1);
  errno = saved;
}

/* signal.valid_signals(): 1 ... NSIG-1 minus what glibc reserves for itself
 * (32 and 33, which its sigfillset leaves out). */
static int valid_signal(int sig) {
  sigset_t all;
  if (sig <= 0 || sig >= NSIG)
    return 0;
  sigfillset(&all);
  return sigismember(&all, sig) == 1;
}

static int fail_invalid(int sig) {
  return lspec__fail(LSPEC_E_VALUE, "invalid signal number %d", sig);
}

/* Forgets loop's handler for sig and, if the loop owns sig, gives it up and
 * restores SIG_DFL.  Under sig_lock. */
static void drop_locked(lspec_loop *loop, int sig) {
  struct sigaction dfl;

  memset(&loop->sig[sig], 0, sizeof loop->sig[sig]);
  atomic_fetch_sub(&loop->nsig, 1);
  if (sig_owner[sig] != loop)
    return;
  sig_owner[sig] = NULL;
  atomic_store(&sig_wakefd[sig], 0);
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  (void)sigaction(sig, &dfl, NULL);
  atomic_store(&sig_count[sig], 0);
}

/* add_signal_handler(sig, cb, arg), checks in CPython's order: the
 * callback, the number, closed, the main thread (set_wakeup_fd's check),
 * then, ours, the loop's thread; SIGKILL and SIGSTOP fail as
 * signal.signal's EINVAL does.  Replaces this loop's handler for sig, and
 * takes sig over from any other loop. */
int lspec__loop_add_signal_handler(lspec_loop *loop, int sig,
                                   lspec_callback cb, void *arg) {
  struct sigaction sa;
  lspec_loop *prev;
  int rc, err;

  if ((rc = lspec__loop_check_handle(loop)))
    return rc;
  if (cb == NULL)
    return lspec__fail(LSPEC_E_TYPE, "a callable object was expected by "
                                     "add_signal_handler(), got None");
  if (!valid_signal(sig))
    return fail_invalid(sig);
  if ((rc = lspec__loop_check_closed(loop)))
    return rc;
  if (!lspec__is_main_thread())
    return lspec__fail(LSPEC_E_RUNTIME,
                       lspec__profile() == LSPEC_PROFILE_3_8
                           ? "set_wakeup_fd only works in main thread"
                           : "set_wakeup_fd only works in main thread of "
                             "the main interpreter");
  if ((rc = lspec__loop_check_thread(loop)))
    return rc;
  if (sig == SIGKILL || sig == SIGSTOP)
    return lspec__fail(LSPEC_E_RUNTIME, "sig %d cannot be caught", sig);

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART; /* CPython: signal.siginterrupt(sig, False) */
  sigemptyset(&sa.sa_mask);

  pthread_mutex_lock(&sig_lock);
  prev = sig_owner[sig];
  /* Point the handler at this loop before installing it, so no delivery
   * after the sigaction can miss the wake-up. */
  if (prev == NULL)
    atomic_store(&sig_count[sig], 0); /* nothing stale from a past owner */
  atomic_store(&sig_wakefd[sig], loop->wakefd + 1);
  if ((err = -lspec__sys.sigaction(sig, &sa, NULL)) != 0) {
    atomic_store(&sig_wakefd[sig], prev ? prev->wakefd + 1 : 0);
    pthread_mutex_unlock(&sig_lock);
    if (err == EINVAL)
      return lspec__fail(LSPEC_E_RUNTIME, "sig %d cannot be caught", sig);
    return lspec__fail_errno(err, "sigaction(%d)", sig);
  }
  if (prev != NULL && prev != loop) {
    memset(&prev->sig[sig], 0, sizeof prev->sig[sig]);
    atomic_fetch_sub(&prev->nsig, 1);
  }
  if (loop->sig[sig].cb == NULL)
    atomic_fetch_add(&loop->nsig, 1);
  loop->sig[sig].cb = cb;
  loop->sig[sig].arg = arg;
  sig_owner[sig] = loop;
  pthread_mutex_unlock(&sig_lock);
  return LSPEC_OK;
}

/* remove_signal_handler(sig): 1 and SIG_DFL restored if this loop had a
 * handler for sig, 0 if not.  A closed loop has none. */
int lspec__loop_remove_signal_handler(lspec_loop *loop, int sig) {
  int rc;

  if ((rc = lspec__loop_check_handle(loop)))
    return rc;
  if (!valid_signal(sig))
    return fail_invalid(sig);
  if ((rc = lspec__loop_check_thread(loop)))
    return rc;
  pthread_mutex_lock(&sig_lock);
  if (loop->sig[sig].cb == NULL) {
    pthread_mutex_unlock(&sig_lock);
    return 0;
  }
  if (!lspec__is_main_thread()) {
    /* CPython's signal.signal raises ValueError here. */
    pthread_mutex_unlock(&sig_lock);
    return lspec__fail(LSPEC_E_VALUE,
                       lspec__profile() == LSPEC_PROFILE_3_8
                           ? "signal only works in main thread"
                           : "signal only works in main thread of the main "
                             "interpreter");
  }
  drop_locked(loop, sig);
  pthread_mutex_unlock(&sig_lock);
  return 1;
}

void lspec__signal_close_loop(lspec_loop *loop) {
  int sig;

  pthread_mutex_lock(&sig_lock);
  for (sig = 1; sig < NSIG; sig++)
    if (loop->sig[sig].cb != NULL)
      drop_locked(loop, sig);
  pthread_mutex_unlock(&sig_lock);
  /* See "Closing races" above.  Handlers are short and never block, so
   * this wait is brief; it is almost always zero at once. */
  while (atomic_load(&in_flight) != 0)
    sched_yield();
}

void lspec__signal_dispatch(lspec_loop *loop) {
  struct lspec__sigslot slot;
  unsigned pending[NSIG];
  int sig, any = 0;

  if (atomic_load(&loop->nsig) == 0)
    return;
  /* Collect first, under one lock, then call each callback unlocked: a
   * callback may add or remove signal handlers. */
  pthread_mutex_lock(&sig_lock);
  for (sig = 1; sig < NSIG; sig++) {
    pending[sig] = 0;
    if (sig_owner[sig] == loop && loop->sig[sig].cb != NULL)
      pending[sig] = atomic_exchange(&sig_count[sig], 0);
    if (pending[sig] != 0)
      any = 1;
  }
  pthread_mutex_unlock(&sig_lock);
  if (!any)
    return;
  for (sig = 1; sig < NSIG; sig++) {
    /* One call per delivery, as CPython writes one byte per delivery.  The
     * handler is looked up again each time: an earlier callback may have
     * removed or replaced it. */
    while (pending[sig]-- > 0) {
      pthread_mutex_lock(&sig_lock);
      slot = loop->sig[sig];
      if (sig_owner[sig] != loop)
        slot.cb = NULL;
      pthread_mutex_unlock(&sig_lock);
      if (slot.cb == NULL)
        break;
      slot.cb(slot.arg);
    }
  }
}

void lspec__signal_after_fork_child(void) {
  int sig;

  /* Another thread may have held the lock when the parent forked; it does
   * not exist here, so the lock is made anew (its tables are consistent
   * unless that thread was half way through an add or remove). */
  pthread_mutex_init(&sig_lock, NULL);
  /* The table's get_profile reads the profile without freezing it:
   * forking must not fix the profile of a child that has not chosen yet. */
  if (lspec_impl_v1()->get_profile() < LSPEC_PROFILE_3_12)
    return;
  /* The eventfds are the parent's too: a signal sent to the child must not
   * wake the parent's loop.  The handlers stay installed and keep counting,
   * as CPython's C-level handler keeps tripping its flags. */
  for (sig = 1; sig < NSIG; sig++)
    atomic_store(&sig_wakefd[sig], 0);
}
