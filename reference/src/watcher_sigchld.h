/* watcher_sigchld.h - what the SIGCHLD-driven watchers share: CPython's
 * BaseChildWatcher (Safe and Fast: a SIGCHLD handler on the attached loop,
 * attach/detach, is_active, close), the O(n) poll of every registered pid
 * (Safe and MultiLoop), and the 3.12 constructor warning (Safe, Fast,
 * MultiLoop).  Only watcher_safe.c, watcher_fast.c, watcher_multiloop.c
 * and watcher_sigchld.c include it.
 */
#ifndef LSPEC_REFERENCE_WATCHER_SIGCHLD_H
#define LSPEC_REFERENCE_WATCHER_SIGCHLD_H

#include "watcher.h"

#include <stdint.h>

/* What Safe and Fast tell the base about themselves. */
struct lspec__sigchld_ops {
  /* CPython's _do_waitpid_all: reaps and delivers (synchronously).  Called
   * without w->lock, from attach_loop and from the loop's SIGCHLD
   * callback. */
  void (*waitpid_all)(lspec_watcher *w);
  /* close: drops the kind's own pending state (Fast's zombies); called
   * with w->lock held.  May be NULL. */
  void (*clear_locked)(lspec_watcher *w);
};

/* The base part of Safe's and Fast's state: w->state points at a struct
 * whose first member is this. */
struct lspec__sigchld {
  const struct lspec__sigchld_ops *ops; /* the kind's operations */
  lspec_watcher *w;                     /* the watcher (no reference) */
  uint64_t attach_id; /* the current attachment's id, 0 when detached;
                         under the base's registry lock */
  struct lspec__sigchld *next; /* in the registry of live watchers */
};

/* Registers the base of a new watcher (w->state must point at it). */
LSPEC__HIDDEN void lspec__sigchld_init(lspec_watcher *w,
                                       struct lspec__sigchld *base,
                                       const struct lspec__sigchld_ops *ops);
/* Unregisters it; from the kind's destroy, after close. */
LSPEC__HIDDEN void lspec__sigchld_destroy(lspec_watcher *w);

/* BaseChildWatcher.attach_loop, is_active and close (WAT-BASE-002..007). */
LSPEC__HIDDEN int lspec__sigchld_attach(lspec_watcher *w, lspec_loop *loop);
LSPEC__HIDDEN int lspec__sigchld_is_active(lspec_watcher *w);
LSPEC__HIDDEN int lspec__sigchld_close(lspec_watcher *w);

/* Polls every registered pid with waitpid(pid, WNOHANG) - O(n) - and
 * delivers each exit with lspec__child_deliver (synchronously or through
 * the entry's loop); ECHILD gives 255 and the "Unknown child process"
 * warning.  Never reaps an unregistered child.  Called without w->lock. */
LSPEC__HIDDEN void lspec__sigchld_poll_registered(lspec_watcher *w);

/* A new reference to `w` unless its count already reached zero (its last
 * release is under way); 1 when taken.  For threads and callbacks that
 * hold no reference of their own. */
LSPEC__HIDDEN int lspec__sigchld_try_retain(lspec_watcher *w);

/* From profile 3.12: "'<name>' is deprecated as of Python 3.12 and will be
 * removed in Python 3.14." (DeprecationWarning, DEP-001). */
LSPEC__HIDDEN void lspec__sigchld_deprecated(const char *name);

/* How many exits one locked pass collects before it unlocks to deliver
 * them; a pass that fills it goes round again. */
#define LSPEC__EXIT_BATCH 64

/* One exit collected under w->lock, delivered after it is released. */
struct lspec__exit {
  struct lspec__child *c; /* the taken entry, or NULL (Fast: unknown pid) */
  int pid;                /* the child */
  int returncode;         /* its returncode */
  int unknown;            /* ECHILD: report 255 with the warning */
};

#endif /* LSPEC_REFERENCE_WATCHER_SIGCHLD_H */
