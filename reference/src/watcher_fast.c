/* watcher_fast.c - FastChildWatcher: on each SIGCHLD of the attached loop,
 * waitpid(-1, WNOHANG) until no exited child is left.  It reaps EVERY child
 * of the process, registered or not, which, as the page warns, may break
 * other code that spawns processes.
 *
 * Behaviour (the page where it speaks, CPython's where it is silent; clause
 * ids are research 1.8's WAT-FAST-* and 1.6's WAT-BASE-*):
 *  - attach_loop, is_active, close: BaseChildWatcher (watcher_sigchld.c);
 *    attaching reaps at once, unrelated zombies included (WAT-FAST-009).
 *  - enter/exit count the spawns in progress (`forks`).  add_child_handler
 *    outside them is AssertionError "Must use the context manager"
 *    (WAT-FAST-002).  CPython tests the count for truth, so an unmatched
 *    exit makes it -1, which passes; reproduced as is.
 *  - A reaped child with a handler: delivered synchronously, outside the
 *    lock.  A reaped child without one: kept as a zombie record while
 *    forks != 0 (it may not be registered yet), else logged as WARNING
 *    "Caught subprocess termination from unknown pid: %d -> %d" and
 *    forgotten (WAT-FAST-004, -010).
 *  - add_child_handler first looks for a zombie record of the pid: if there
 *    is one, the callback runs synchronously inside add; otherwise the
 *    handler is registered, replacing any earlier one (WAT-FAST-005).  Add
 *    itself never calls waitpid, as in CPython.
 *  - The outermost exit with zombie records left logs WARNING "Caught
 *    subprocesses termination from unknown pids: %s" with Python's str() of
 *    the {pid: returncode} dict, in insertion order, and forgets them
 *    (WAT-FAST-006).
 *  - A child reaped elsewhere is never reported: waitpid(-1) just answers
 *    ECHILD; its handler stays registered (WAT-FAST-007).
 *  - remove_child_handler: 1 or 0; the child is still reaped by the next
 *    pass and logged as unknown (WAT-FAST-008).
 *  - 3.12: the constructor warns DeprecationWarning (WAT-FAST-011).
 */
#define _GNU_SOURCE 1
#include "watcher_sigchld.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* A child reaped while a spawn was in progress, before its registration. */
struct zombie {
  int pid;        /* the child */
  int returncode; /* its returncode */
};

/* The kind's state; everything after `base` is under w->lock. */
struct fast {
  struct lspec__sigchld base; /* first: w->state points here */
  long forks;                 /* enter/exit nesting (may go negative) */
  struct zombie *zombies;     /* in reaping order */
  size_t nzombies;            /* entries in zombies */
  size_t zombies_cap;         /* its capacity */
};

/* Records a zombie; 0, or -1 when out of memory. */
static int zombie_add(struct fast *st, int pid, int returncode) {
  struct zombie *z;
  size_t cap;

  if (st->nzombies == st->zombies_cap) {
    cap = st->zombies_cap ? st->zombies_cap * 2 : 8;
    if ((z = realloc(st->zombies, cap * sizeof *z)) == NULL)
      return -1;
    st->zombies = z;
    st->zombies_cap = cap;
  }
  st->zombies[st->nzombies++] = (struct zombie){pid, returncode};
  return 0;
}

/* Takes the zombie record of `pid` (dict.pop); 1 and its returncode, or
 * 0. */
static int zombie_pop(struct fast *st, int pid, int *returncode) {
  size_t i;

  for (i = 0; i < st->nzombies; i++)
    if (st->zombies[i].pid == pid) {
      *returncode = st->zombies[i].returncode;
      memmove(&st->zombies[i], &st->zombies[i + 1],
              (st->nzombies - i - 1) * sizeof *st->zombies);
      st->nzombies--;
      return 1;
    }
  return 0;
}

static void zombies_clear_locked(lspec_watcher *w) {
  struct fast *st = w->state;

  free(st->zombies);
  st->zombies = NULL;
  st->nzombies = st->zombies_cap = 0;
}

/* CPython's _do_waitpid_all: waitpid(-1) until 0 (some child still runs)
 * or ECHILD (none left).  Each reap and its table lookup happen under the
 * lock; deliveries and warnings come after it is released. */
static void fast_waitpid_all(lspec_watcher *w) {
  struct fast *st = w->state;
  struct lspec__exit batch[LSPEC__EXIT_BATCH];
  size_t n, k;
  int pid, status, full;

  do {
    n = 0;
    full = 0;
    pthread_mutex_lock(&w->lock);
    for (;;) {
      if (n == LSPEC__EXIT_BATCH) {
        full = 1;
        break;
      }
      status = 0;
      do
        pid = lspec__sys.waitpid(-1, &status, WNOHANG);
      while (pid == -EINTR);
      if (pid <= 0)
        break; /* 0: children still run; ECHILD: none left */
      batch[n] = (struct lspec__exit){lspec__children_take(w, pid), pid,
                                      lspec__returncode(status), 0};
      if (batch[n].c == NULL && st->forks != 0 &&
          !LSPEC_PLANTED(CW_FAST_003) && /* planted: early exits forgotten */
          zombie_add(st, pid, batch[n].returncode) == 0)
        continue; /* it may not be registered yet */
      n++;
    }
    pthread_mutex_unlock(&w->lock);
    for (k = 0; k < n; k++) {
      if (batch[k].c != NULL)
        lspec__child_deliver(w, batch[k].c, batch[k].returncode);
      else
        lspec__warn(LSPEC_WARN_LOG_WARNING,
                    "Caught subprocess termination from unknown pid: %d -> "
                    "%d",
                    batch[k].pid, batch[k].returncode);
    }
  } while (full);
}

static int fast_add(lspec_watcher *w, int pid, lspec_child_callback cb,
                    void *arg) {
  struct fast *st = w->state;
  struct lspec__child *c;
  int rc;

  pthread_mutex_lock(&w->lock);
  if (st->forks == 0) {
    pthread_mutex_unlock(&w->lock);
    return lspec__fail(LSPEC_E_ASSERTION, "Must use the context manager");
  }
  if (zombie_pop(st, pid, &rc)) {
    /* Dead already: the callback runs now, outside the lock. */
    pthread_mutex_unlock(&w->lock);
    cb(pid, rc, arg);
    return LSPEC_OK;
  }
  if ((c = lspec__children_find(w, pid)) == NULL &&
      (c = lspec__children_add(w, pid)) == NULL) {
    pthread_mutex_unlock(&w->lock);
    return lspec__fail_nomem("a child handler");
  }
  c->cb = cb; /* replaces; delivered synchronously */
  c->arg = arg;
  pthread_mutex_unlock(&w->lock);
  return LSPEC_OK;
}

static int fast_remove(lspec_watcher *w, int pid) {
  struct lspec__child *c;

  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_take(w, pid)) != NULL)
    lspec__children_recycle(w, c);
  pthread_mutex_unlock(&w->lock);
  return c != NULL;
}

static int fast_enter(lspec_watcher *w) {
  struct fast *st = w->state;

  pthread_mutex_lock(&w->lock);
  st->forks++;
  pthread_mutex_unlock(&w->lock);
  return LSPEC_OK;
}

/* Appends to a growing string; 0, or -1 when out of memory. */
static int append(char **s, size_t *len, size_t *cap, const char *text) {
  size_t n = strlen(text), c;
  char *p;

  if (*len + n + 1 > *cap) {
    for (c = *cap ? *cap : 64; c < *len + n + 1; c *= 2)
      ;
    if ((p = realloc(*s, c)) == NULL)
      return -1;
    *s = p;
    *cap = c;
  }
  memcpy(*s + *len, text, n + 1);
  *len += n;
  return 0;
}

static int fast_exit(lspec_watcher *w) {
  struct fast *st = w->state;
  struct zombie *z;
  size_t nz, i, len = 0, cap = 0;
  char *text = NULL, item[48];
  int bad = 0;

  pthread_mutex_lock(&w->lock);
  st->forks--;
  if (st->forks != 0 || st->nzombies == 0) {
    pthread_mutex_unlock(&w->lock);
    return LSPEC_OK;
  }
  z = st->zombies;
  nz = st->nzombies;
  st->zombies = NULL;
  st->nzombies = st->zombies_cap = 0;
  pthread_mutex_unlock(&w->lock);

  /* str(dict): "{31875: 12, 31876: -9}". */
  for (i = 0; i < nz && !bad; i++) {
    snprintf(item, sizeof item, "%s%d: %d", i ? ", " : "{", z[i].pid,
             z[i].returncode);
    bad = append(&text, &len, &cap, item);
  }
  if (!bad)
    bad = append(&text, &len, &cap, "}");
  lspec__warn(LSPEC_WARN_LOG_WARNING,
              "Caught subprocesses termination from unknown pids: %s",
              bad ? "{...}" : text);
  free(text);
  free(z);
  return LSPEC_OK;
}

static void fast_destroy(lspec_watcher *w) {
  struct fast *st = w->state;

  lspec__sigchld_destroy(w);
  free(st->zombies);
  free(st);
  w->state = NULL;
}

static const struct lspec__sigchld_ops fast_sigchld_ops = {
    .waitpid_all = fast_waitpid_all,
    .clear_locked = zombies_clear_locked,
};

static const struct lspec__watcher_ops fast_ops = {
    .kind = LSPEC_WATCHER_FAST,
    .name = "FastChildWatcher",
    .add_child_handler = fast_add,
    .remove_child_handler = fast_remove,
    .attach_loop = lspec__sigchld_attach,
    .is_active = lspec__sigchld_is_active,
    .close = lspec__sigchld_close,
    .enter = fast_enter,
    .exit = fast_exit,
    .destroy = fast_destroy,
};

int lspec__watcher_fast_init(lspec_watcher *w) {
  struct fast *st = calloc(1, sizeof *st);

  if (st == NULL)
    return lspec__fail_nomem("a FastChildWatcher");
  lspec__sigchld_deprecated("FastChildWatcher");
  w->ops = &fast_ops;
  w->state = st;
  lspec__sigchld_init(w, &st->base, &fast_sigchld_ops);
  return LSPEC_OK;
}
