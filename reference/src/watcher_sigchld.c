/* watcher_sigchld.c - what Safe and Fast share (CPython's BaseChildWatcher)
 * and the pieces MultiLoop borrows: the poll of every registered pid and
 * the 3.12 constructor warning.
 *
 * BaseChildWatcher (research 1.6, WAT-BASE-*; the page says little beyond
 * "ready to use", so CPython decides):
 *  - attach_loop(loop): a non-loop handle is AssertionError (empty message,
 *    CPython's bare assert).  Detaching (NULL) from a loop while handlers
 *    are pending warns RuntimeWarning "A loop is being detached from a
 *    child watcher with pending handlers".  The SIGCHLD handler moves from
 *    the old loop to the new one (loop.add_signal_handler, so it runs as an
 *    ordinary callback in the loop's thread; remove_signal_handler puts
 *    SIG_DFL back, as CPython's does), and the kind's waitpid_all runs at
 *    once, so exits that happened while detached are delivered
 *    synchronously inside attach_loop.
 *  - Order.  CPython detaches first, assigns the loop, then adds the
 *    handler, so a failing add (a thread other than the main one, a closed
 *    loop) leaves it pointing at a loop with no handler (WAT-BASE-003).
 *    Here the new handler is added first and a failure changes nothing (the
 *    ABI's failures have no side effects); the add takes SIGCHLD over from
 *    the old loop, whose removal then finds nothing.  A failing removal
 *    while detaching (another thread) returns its error and stays attached,
 *    after the warning, as CPython's ValueError does.
 *  - is_active: the attached loop is running (C6, CPython's reading of the
 *    page's "ready to use").
 *  - close: drops every handler uncalled (and Fast's zombies) first, then
 *    detaches, so it never warns; twice is harmless (WAT-BASE-006).  A
 *    removal that fails in close (another thread) is not reported: the
 *    watcher is detached anyway, and the stale handler left on the loop
 *    finds nothing (see below).
 *
 * The loop's callback and the watcher's lifetime.  The loop keeps no
 * reference to the watcher, and a handler cannot always be removed (from
 * another thread), so the callback's argument is not the watcher but the
 * id of one attachment.  Every live Safe/Fast watcher is in a registry; the
 * callback looks the id up under the registry's lock and takes a reference
 * only if the watcher is still alive (a reference count above zero).  A
 * detach clears the id, so a handler left behind on an old loop, or one
 * that fires while the watcher is being destroyed, does nothing.
 */
#define _GNU_SOURCE 1
#include "watcher_sigchld.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* The registry of live Safe/Fast watchers.                                   */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lspec__sigchld *reg_head; /* live bases */
static uint64_t reg_next_id;            /* last attachment id handed out */

void lspec__sigchld_init(lspec_watcher *w, struct lspec__sigchld *base,
                         const struct lspec__sigchld_ops *ops) {
  base->ops = ops;
  base->w = w;
  base->attach_id = 0;
  pthread_mutex_lock(&reg_lock);
  base->next = reg_head;
  reg_head = base;
  pthread_mutex_unlock(&reg_lock);
}

void lspec__sigchld_destroy(lspec_watcher *w) {
  struct lspec__sigchld *base = w->state, **link;

  pthread_mutex_lock(&reg_lock);
  for (link = &reg_head; *link != NULL; link = &(*link)->next)
    if (*link == base) {
      *link = base->next;
      break;
    }
  base->attach_id = 0;
  pthread_mutex_unlock(&reg_lock);
}

int lspec__sigchld_try_retain(lspec_watcher *w) {
  unsigned n = atomic_load(&w->hdr.refs);

  while (n != 0)
    if (atomic_compare_exchange_weak(&w->hdr.refs, &n, n + 1))
      return 1;
  return 0;
}

/* The loop's SIGCHLD callback (CPython's _sig_chld), in the loop's
 * thread.  `arg` is an attachment id. */
static void on_sigchld(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  struct lspec__sigchld *b;
  lspec_watcher *w = NULL;

  pthread_mutex_lock(&reg_lock);
  for (b = reg_head; b != NULL; b = b->next)
    if (b->attach_id == id) {
      if (lspec__sigchld_try_retain(b->w))
        w = b->w;
      break;
    }
  pthread_mutex_unlock(&reg_lock);
  if (w == NULL)
    return; /* a stale handler: detached, or being destroyed */
  b->ops->waitpid_all(w);
  lspec__watcher_release(w);
}

static void set_attach_id(struct lspec__sigchld *b, uint64_t id) {
  pthread_mutex_lock(&reg_lock);
  b->attach_id = id;
  pthread_mutex_unlock(&reg_lock);
}

static uint64_t new_attach_id(void) {
  uint64_t id;
  pthread_mutex_lock(&reg_lock);
  id = ++reg_next_id;
  pthread_mutex_unlock(&reg_lock);
  return id;
}

/* ------------------------------------------------------------------------ */
/* attach_loop, is_active, close.                                            */
/* ------------------------------------------------------------------------ */

/* attach_loop(loop); `closing` is close's detach: no warning, and a
 * removal that fails does not stop it. */
static int attach(lspec_watcher *w, lspec_loop *loop, int closing) {
  struct lspec__sigchld *b = w->state;
  lspec_loop *old;
  uint64_t id = 0;
  int rc, pending;

  if (loop != NULL && lspec__kind_of(loop) != LSPEC__KIND_LOOP)
    return lspec__fail(LSPEC_E_ASSERTION, "%s", "");

  pthread_mutex_lock(&w->lock);
  old = w->loop;
  if (old != NULL)
    lspec__loop_retain(old); /* ours while the lock is released */
  pending = w->children.count > 0;
  pthread_mutex_unlock(&w->lock);

  if (!closing && old != NULL && loop == NULL && pending)
    lspec__warn(LSPEC_WARN_RUNTIME, "A loop is being detached from a child "
                                    "watcher with pending handlers");
  if (loop != NULL) {
    id = new_attach_id();
    rc = lspec__loop_add_signal_handler(loop, SIGCHLD, on_sigchld,
                                        (void *)(uintptr_t)id);
    if (rc != LSPEC_OK) {
      if (old != NULL)
        lspec__loop_release(old);
      return rc;
    }
  }
  if (old != NULL && old != loop) {
    /* After an add on another loop this finds nothing (the add took the
     * signal over); detaching really removes it. */
    rc = lspec__loop_remove_signal_handler(old, SIGCHLD);
    if (rc < 0 && loop == NULL && !closing) {
      lspec__loop_release(old);
      return rc;
    }
  }
  set_attach_id(b, id);

  pthread_mutex_lock(&w->lock);
  if (w->loop != NULL)
    lspec__loop_release(w->loop); /* the attachment's reference */
  if (loop != NULL)
    lspec__loop_retain(loop);
  w->loop = loop;
  pthread_mutex_unlock(&w->lock);
  if (old != NULL)
    lspec__loop_release(old);

  if (loop != NULL)
    b->ops->waitpid_all(w); /* WAT-BASE-002 (5): at once, synchronously */
  return LSPEC_OK;
}

int lspec__sigchld_attach(lspec_watcher *w, lspec_loop *loop) {
  return attach(w, loop, 0);
}

int lspec__sigchld_is_active(lspec_watcher *w) {
  int active;

  pthread_mutex_lock(&w->lock);
  active = w->loop != NULL && (LSPEC_PLANTED(CW_ACTIVE_003) || /* attached */
                               lspec__loop_is_running(w->loop) == 1);
  pthread_mutex_unlock(&w->lock);
  return active;
}

int lspec__sigchld_close(lspec_watcher *w) {
  struct lspec__sigchld *b = w->state;
  struct lspec__child *c;
  size_t i;

  /* Handlers first (never called), then the detach: no warning. */
  if (LSPEC_PLANTED(CW_CLOSE_004)) /* planted: the detach first, warning */
    (void)attach(w, NULL, 0);
  pthread_mutex_lock(&w->lock);
  if (w->children.buckets != NULL)
    for (i = 0; i <= w->children.mask; i++)
      while ((c = w->children.buckets[i]) != NULL) {
        lspec__children_take(w, c->pid);
        lspec__children_recycle(w, c);
      }
  if (b->ops->clear_locked != NULL)
    b->ops->clear_locked(w);
  pthread_mutex_unlock(&w->lock);
  (void)attach(w, NULL, 1);
  return LSPEC_OK;
}

/* ------------------------------------------------------------------------ */
/* Shared with MultiLoop.                                                    */
/* ------------------------------------------------------------------------ */

void lspec__sigchld_poll_registered(lspec_watcher *w) {
  struct lspec__exit batch[LSPEC__EXIT_BATCH];
  struct lspec__children *t = &w->children;
  struct lspec__child *c, *next;
  size_t i, n, k;
  int r, rc, full;

  do {
    n = 0;
    full = 0;
    /* Reaping and taking the entry happen under one lock: a pid reused
     * right after the reap can never be matched to the old exit. */
    pthread_mutex_lock(&w->lock);
    for (i = 0; t->buckets != NULL && i <= t->mask && !full; i++)
      for (c = t->buckets[i]; c != NULL; c = next) {
        next = c->next;
        rc = 0;
        if ((r = lspec__reap(c->pid, &rc)) == 0)
          continue;
        lspec__children_take(w, c->pid);
        batch[n++] = (struct lspec__exit){c, c->pid, rc, r < 0};
        if (n == LSPEC__EXIT_BATCH) {
          full = 1;
          break;
        }
      }
    pthread_mutex_unlock(&w->lock);
    /* Collect, then deliver unlocked: a callback may call the watcher. */
    for (k = 0; k < n; k++) {
      if (batch[k].unknown)
        batch[k].returncode = lspec__unknown_child(batch[k].pid);
      lspec__child_deliver(w, batch[k].c, batch[k].returncode);
    }
  } while (full);
}

void lspec__sigchld_deprecated(const char *name) {
  if (lspec__profile() >= LSPEC_PROFILE_3_12)
    lspec__warn(LSPEC_WARN_DEPRECATION,
                "'%s' is deprecated as of Python 3.12 and will be removed in "
                "Python 3.14.",
                name);
}
