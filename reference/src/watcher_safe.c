/* watcher_safe.c - SafeChildWatcher: on each SIGCHLD of the attached loop,
 * waitpid(pid, WNOHANG) for every registered pid (O(n)); never reaps a
 * child it was not given.
 *
 * Behaviour (the page where it speaks, CPython's where it is silent; clause
 * ids are research 1.7's WAT-SAFE-* and 1.6's WAT-BASE-*):
 *  - attach_loop, is_active, close: BaseChildWatcher (watcher_sigchld.c).
 *  - add_child_handler(pid) registers the handler, replacing any earlier
 *    one, and then polls that pid at once: a child that has already exited
 *    is delivered synchronously inside add_child_handler (WAT-SAFE-001).
 *    Every delivery is synchronous: inside add, inside attach_loop, or in
 *    the loop's SIGCHLD callback.  enter/exit are not needed and do
 *    nothing.
 *  - A pid reaped elsewhere or not our child: 255 with "Unknown child
 *    process pid %d, will report returncode 255" (WAT-SAFE-002).
 *  - No loop attached and the child already dead (the page is silent):
 *    CPython reaps it and then fails on self._loop.get_debug() with
 *    AttributeError("'NoneType' object has no attribute 'get_debug'"),
 *    keeping the handler, so a later attach_loop reports 255 with the
 *    warning and the real code is lost (WAT-SAFE-003, python/asyncio#390).
 *    The reference reproduces exactly that: LSPEC_E_ATTRIBUTE, the entry
 *    kept, 255 at the next poll.  The callback is therefore not lost, but
 *    its returncode is, as in CPython.  A pid that is not our child needs
 *    no loop (CPython's ECHILD branch never reads it): 255 at once.
 *  - remove_child_handler: 1 if a handler was registered, 0 otherwise; the
 *    child is not reaped (it stays a zombie until someone waits for it,
 *    WAT-SAFE-004).
 *  - 3.12: the constructor warns DeprecationWarning (WAT-SAFE-006).
 */
#define _GNU_SOURCE 1
#include "watcher_sigchld.h"

#include <stdlib.h>

static int safe_add(lspec_watcher *w, int pid, lspec_child_callback cb,
                    void *arg) {
  struct lspec__child *c;
  int r, rc = 0;

  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_find(w, pid)) == NULL &&
      (c = lspec__children_add(w, pid)) == NULL) {
    pthread_mutex_unlock(&w->lock);
    return lspec__fail_nomem("a child handler");
  }
  c->cb = cb; /* replaces (WAT-SAFE-001); delivered synchronously */
  c->arg = arg;
  /* CPython's _do_waitpid(pid), the race guard. */
  if (LSPEC_PLANTED(CW_SAFE_002) || /* planted: no race guard */
      (r = lspec__reap(pid, &rc)) == 0) {
    pthread_mutex_unlock(&w->lock);
    return LSPEC_OK;
  }
  if (r > 0 && w->loop == NULL) {
    /* WAT-SAFE-003: reaped, then self._loop.get_debug() fails; the
     * handler stays registered and the status is gone. */
    pthread_mutex_unlock(&w->lock);
    return lspec__fail(LSPEC_E_ATTRIBUTE,
                       "'NoneType' object has no attribute 'get_debug'");
  }
  lspec__children_take(w, pid);
  pthread_mutex_unlock(&w->lock);
  if (r < 0)
    rc = lspec__unknown_child(pid);
  lspec__child_deliver(w, c, rc);
  return LSPEC_OK;
}

static int safe_remove(lspec_watcher *w, int pid) {
  struct lspec__child *c;

  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_take(w, pid)) != NULL)
    lspec__children_recycle(w, c);
  pthread_mutex_unlock(&w->lock);
  return c != NULL || LSPEC_PLANTED(CW_REMOVE_002); /* planted: always 1 */
}

static void safe_destroy(lspec_watcher *w) {
  lspec__sigchld_destroy(w);
  free(w->state);
  w->state = NULL;
}

static const struct lspec__sigchld_ops safe_sigchld_ops = {
    .waitpid_all = lspec__sigchld_poll_registered,
    .clear_locked = NULL,
};

static const struct lspec__watcher_ops safe_ops = {
    .kind = LSPEC_WATCHER_SAFE,
    .name = "SafeChildWatcher",
    .add_child_handler = safe_add,
    .remove_child_handler = safe_remove,
    .attach_loop = lspec__sigchld_attach,
    .is_active = lspec__sigchld_is_active,
    .close = lspec__sigchld_close,
    .enter = NULL, /* __enter__ returns self, __exit__ does nothing */
    .exit = NULL,
    .destroy = safe_destroy,
};

int lspec__watcher_safe_init(lspec_watcher *w) {
  struct lspec__sigchld *st = calloc(1, sizeof *st);

  if (st == NULL)
    return lspec__fail_nomem("a SafeChildWatcher");
  lspec__sigchld_deprecated("SafeChildWatcher");
  w->ops = &safe_ops;
  w->state = st;
  lspec__sigchld_init(w, st, &safe_sigchld_ops);
  return LSPEC_OK;
}
