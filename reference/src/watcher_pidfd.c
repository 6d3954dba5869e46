/* watcher_pidfd.c - PidfdChildWatcher: one pidfd per child, watched as a
 * reader of an event loop.
 *
 * CPython has two implementations (research 1.10) and the profile picks one:
 *
 *  - 3.9-3.11, loop-attached: the reader goes on the *attached* loop
 *    (no loop: AttributeError "'NoneType' object has no attribute
 *    '_add_reader'"), and is_active() is "attached and that loop runs".
 *  - 3.12, stateless: the reader goes on the loop *running* in the calling
 *    thread (none: RuntimeError 'no running event loop'), is_active() is
 *    always true and attach_loop() does nothing.
 *  - 3.8 has no PidfdChildWatcher at all: watcher_new fails with
 *    LSPEC_E_ATTRIBUTE, as `asyncio.PidfdChildWatcher` raises
 *    AttributeError there.
 *
 * Where the page speaks the reference follows it, against CPython:
 *  - a second add for the same pid replaces the handler (C3: CPython 3.12
 *    opens a second pidfd and both callbacks fire);
 *  - remove_child_handler returns 1 or 0 and really removes (C4: CPython
 *    3.12 always returns True and the callback still fires);
 *  - attach_loop "first detaches": pending children are kept and their
 *    readers move to the new loop (C5: CPython 3.9-3.11 drops them, leaving
 *    zombies).  Detaching (NULL) keeps them registered with their pidfds
 *    open but no reader; the next attach watches them again, so an exit
 *    that happened meanwhile is reported on the new loop's next iteration.
 *  - close releases every pidfd and reader (CPython 3.12's close is a
 *    no-op); the callbacks of children still pending are dropped uncalled.
 *
 * The exit path is CPython's _do_wait, in the reader's loop thread: remove
 * the reader first, reap the pid (ECHILD: 255 and the "exit status already
 * read" warning), close the pidfd, then call the callback directly.  Only
 * pids registered here are ever waited for: foreign children are never
 * reaped.
 *
 * Threading: w->lock guards the table, w->loop and every pidfd_child.  The
 * readers themselves belong to their loop's thread while it runs, as for
 * any reader: an entry that would touch the readers of a loop running in
 * another thread fails with the loop's E_RUNTIME and changes nothing.
 */
#define _GNU_SOURCE 1
#include "loop.h"
#include "syscalls.h"
#include "watcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434 /* the same number on every architecture */
#endif

/* --- the syscall table ---------------------------------------------------- */

int lspec__sys_pidfd_open(pid_t pid, unsigned int flags) {
  int saved = errno, rc;
  long fd = syscall(__NR_pidfd_open, (long)pid, (long)flags);
  rc = fd < 0 ? -errno : (int)fd;
  errno = saved;
  return rc;
}

struct lspec__syscalls lspec__sys = {
    .pidfd_open = lspec__sys_pidfd_open,
};

/* --- state ------------------------------------------------------------------ */

/* What a registered child needs beyond its table entry: the reader's
 * argument, so it leads back to the watcher and the entry. */
struct pidfd_child {
  lspec_watcher *w;         /* the watcher (borrowed: close removes every
                               reader before the watcher can die) */
  struct lspec__child *c;   /* the table entry; c->pidfd is the descriptor */
  lspec_loop *loop;         /* loop whose reader watches the pidfd (a
                               reference), or NULL while detached */
  int stuck;                /* close could not remove its reader */
  struct pidfd_child *next; /* free list link */
};

struct pidfd_state {
  struct pidfd_child *free; /* recycled pidfd_child records */
};

/* 3.12's stateless implementation, or 3.9-3.11's loop-attached one. */
static int stateless(void) { return lspec__profile() >= LSPEC_PROFILE_3_12; }

static struct pidfd_child *pc_get(struct pidfd_state *st) {
  struct pidfd_child *pc = st->free;
  if (pc != NULL)
    st->free = pc->next;
  else if ((pc = malloc(sizeof *pc)) == NULL)
    return NULL;
  memset(pc, 0, sizeof *pc);
  return pc;
}

static void pc_put(struct pidfd_state *st, struct pidfd_child *pc) {
  pc->next = st->free;
  st->free = pc;
}

static struct pidfd_child *pc_of(struct lspec__child *c) {
  return c->kind_data;
}

/* Unregisters a child whose reader is already gone: closes its pidfd,
 * drops its loop reference and recycles both records, callback uncalled.
 * Called with w->lock held. */
static void drop_locked(lspec_watcher *w, struct lspec__child *c) {
  struct pidfd_child *pc = pc_of(c);
  lspec__children_take(w, c->pid);
  if (c->pidfd >= 0)
    close(c->pidfd);
  c->pidfd = -1;
  c->kind_data = NULL;
  if (pc->loop != NULL)
    lspec__loop_release(pc->loop);
  pc_put(w->state, pc);
  lspec__children_recycle(w, c);
}

/* --- the exit path ------------------------------------------------------------ */

/* Reaps `pid` once its pidfd is readable.  Returns the returncode, or 255
 * with CPython's warning when someone else reaped it (ECHILD). */
static int wait_exited(int pid) {
  int rc = 0, r, status;

  r = lspec__reap(pid, &rc);
  if (r == 0) {
    /* Readable means exited, so this does not block in practice; CPython
     * waits without WNOHANG here too. */
    do
      r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r == pid)
      return lspec__returncode(status);
    r = -errno;
  }
  if (r == 1)
    return rc;
  lspec__warn(LSPEC_WARN_LOG_WARNING,
              "child process pid %d exit status already read:  will report "
              "returncode 255",
              pid);
  return 255;
}

/* The reader callback, in the loop's thread: CPython's _do_wait. */
static void on_ready(void *arg) {
  struct pidfd_child *pc = arg;
  lspec_watcher *w = pc->w;
  struct lspec__child *c;
  lspec_loop *loop;
  int fd, pid;

  pthread_mutex_lock(&w->lock);
  c = pc->c;
  pid = c->pid;
  if (lspec__children_find(w, pid) != c || pc->loop != lspec__loop_running()) {
    /* Cannot happen: a reader is removed before its entry changes. */
    pthread_mutex_unlock(&w->lock);
    return;
  }
  /* Taking the entry makes this call its owner: no one else can deliver
   * or drop it from here on. */
  lspec__children_take(w, pid);
  loop = pc->loop;
  fd = c->pidfd;
  c->pidfd = -1;
  c->kind_data = NULL;
  pc->loop = NULL;
  pc_put(w->state, pc);
  pthread_mutex_unlock(&w->lock);

  lspec__loop_remove_reader(loop, fd); /* first, as CPython */
  c->loop = NULL; /* deliver synchronously: we are in the loop's thread */
  {
    int returncode = wait_exited(pid);
    close(fd);
    lspec__loop_release(loop); /* the caller running it holds another */
    lspec__child_deliver(w, c, returncode);
  }
}

/* --- the operations ------------------------------------------------------------ */

/* Moves a registered child's reader from its loop (if any) to `loop`.
 * Nothing changes on failure.  Called with w->lock held. */
static int move_reader_locked(struct lspec__child *c, lspec_loop *loop) {
  struct pidfd_child *pc = pc_of(c);
  int rc;

  if (pc->loop == loop)
    return LSPEC_OK;
  if (pc->loop != NULL && (rc = lspec__loop_check_thread(pc->loop)))
    return rc;
  if (loop != NULL) {
    if ((rc = lspec__loop_add_reader(loop, c->pidfd, on_ready, pc)))
      return rc;
    lspec__loop_retain(loop);
  }
  if (pc->loop != NULL) {
    lspec__loop_remove_reader(pc->loop, c->pidfd);
    lspec__loop_release(pc->loop);
  }
  pc->loop = loop;
  return LSPEC_OK;
}

static int pidfd_add_child_handler(lspec_watcher *w, int pid,
                                   lspec_child_callback cb, void *arg) {
  struct lspec__child *c;
  struct pidfd_child *pc;
  lspec_loop *loop;
  int fd, rc;

  if (pid <= 0)
    return lspec__fail(LSPEC_E_VALUE, "add_child_handler: invalid pid %d",
                       pid);
  if (cb == NULL)
    return lspec__fail(LSPEC_E_TYPE, "add_child_handler: callback is NULL");

  pthread_mutex_lock(&w->lock);
  if (stateless()) {
    loop = lspec__loop_running();
    if (loop == NULL) {
      rc = lspec__fail(LSPEC_E_RUNTIME, "no running event loop");
      goto out;
    }
  } else {
    loop = w->loop;
    if (loop == NULL) {
      rc = lspec__fail(LSPEC_E_ATTRIBUTE,
                       "'NoneType' object has no attribute '_add_reader'");
      goto out;
    }
  }

  /* The page: another callback for the same process replaces the previous
   * one.  The pidfd stays; under 3.12 the reader follows the caller's loop. */
  if ((c = lspec__children_find(w, pid)) != NULL) {
    if ((rc = move_reader_locked(c, loop)) == LSPEC_OK) {
      c->cb = cb;
      c->arg = arg;
    }
    goto out;
  }

  fd = lspec__sys.pidfd_open(pid, 0);
  if (fd < 0) {
    if (fd == -ESRCH)
      rc = lspec__fail(LSPEC_E_PROCESS_LOOKUP, "[Errno %d] %s", ESRCH,
                       strerror(ESRCH));
    else
      rc = lspec__fail_errno(-fd, "pidfd_open(%d)", pid);
    goto out;
  }
  pc = pc_get(w->state);
  c = pc ? lspec__children_add(w, pid) : NULL;
  if (c == NULL) {
    if (pc != NULL)
      pc_put(w->state, pc);
    close(fd);
    rc = lspec__fail_nomem("registering a child");
    goto out;
  }
  c->cb = cb;
  c->arg = arg;
  c->loop = NULL;
  c->pidfd = fd;
  c->kind_data = pc;
  pc->w = w;
  pc->c = c;
  if ((rc = move_reader_locked(c, loop)) != LSPEC_OK)
    drop_locked(w, c);
out:
  pthread_mutex_unlock(&w->lock);
  return rc;
}

static int pidfd_remove_child_handler(lspec_watcher *w, int pid) {
  struct lspec__child *c;
  int rc = 1;

  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_find(w, pid)) == NULL)
    rc = 0;
  else if ((rc = move_reader_locked(c, NULL)) == LSPEC_OK) {
    drop_locked(w, c);
    rc = 1;
  }
  pthread_mutex_unlock(&w->lock);
  return rc;
}

/* Calls fn(c, loop) for the first `limit` registered children (all when
 * limit is (size_t)-1) and stops at the first failure, whose status it
 * returns; *done counts the successes.  Called with w->lock held. */
static int for_children(lspec_watcher *w, size_t limit,
                        int (*fn)(struct lspec__child *, lspec_loop *),
                        lspec_loop *loop, size_t *done) {
  struct lspec__child *c;
  size_t i;
  int rc;

  *done = 0;
  if (w->children.buckets == NULL)
    return LSPEC_OK;
  for (i = 0; i <= w->children.mask; i++)
    for (c = w->children.buckets[i]; c != NULL; c = c->next) {
      if (*done == limit)
        return LSPEC_OK;
      if ((rc = fn(c, loop)) != LSPEC_OK)
        return rc;
      (*done)++;
    }
  return LSPEC_OK;
}

static int add_reader_to(struct lspec__child *c, lspec_loop *loop) {
  return lspec__loop_add_reader(loop, c->pidfd, on_ready, pc_of(c));
}

static int remove_reader_from(struct lspec__child *c, lspec_loop *loop) {
  lspec__loop_remove_reader(loop, c->pidfd);
  return LSPEC_OK;
}

static int check_old_loop(struct lspec__child *c, lspec_loop *loop) {
  (void)loop;
  return pc_of(c)->loop ? lspec__loop_check_thread(pc_of(c)->loop) : LSPEC_OK;
}

/* Switches every child's reader from its loop to `loop` (NULL: none).  The
 * new readers are added first, so a refusal leaves all as it was. */
static int switch_loop_locked(lspec_watcher *w, lspec_loop *loop) {
  struct lspec__child *c;
  size_t i, added, n;
  int rc;

  if ((rc = for_children(w, (size_t)-1, check_old_loop, NULL, &n)))
    return rc;
  if (loop != NULL &&
      (rc = for_children(w, (size_t)-1, add_reader_to, loop, &added))) {
    for_children(w, added, remove_reader_from, loop, &n);
    return rc;
  }
  if (w->children.buckets == NULL)
    return LSPEC_OK;
  for (i = 0; i <= w->children.mask; i++)
    for (c = w->children.buckets[i]; c != NULL; c = c->next) {
      struct pidfd_child *pc = pc_of(c);
      if (pc->loop != NULL) {
        lspec__loop_remove_reader(pc->loop, c->pidfd);
        lspec__loop_release(pc->loop);
      }
      if (loop != NULL)
        lspec__loop_retain(loop);
      pc->loop = loop;
    }
  return LSPEC_OK;
}

static int pidfd_attach_loop(lspec_watcher *w, lspec_loop *loop) {
  lspec_loop *old;
  int rc;

  /* 3.12: attach_loop does nothing, whatever the argument. */
  if (stateless())
    return LSPEC_OK;
  /* CPython's Pidfd has no type assert and would fail later; the ABI
   * answers a non-loop handle as the other watchers' assert does. */
  if (loop != NULL && lspec__kind_of(loop) != LSPEC__KIND_LOOP)
    return lspec__fail(LSPEC_E_ASSERTION, "%s", "");

  pthread_mutex_lock(&w->lock);
  old = w->loop;
  if (old == loop) {
    pthread_mutex_unlock(&w->lock);
    return LSPEC_OK;
  }
  if ((rc = switch_loop_locked(w, loop)) != LSPEC_OK) {
    pthread_mutex_unlock(&w->lock);
    return rc;
  }
  if (old != NULL && loop == NULL && w->children.count > 0)
    lspec__warn(LSPEC_WARN_RUNTIME, "A loop is being detached from a child "
                                    "watcher with pending handlers");
  if (loop != NULL)
    lspec__loop_retain(loop);
  w->loop = loop;
  pthread_mutex_unlock(&w->lock);
  if (old != NULL)
    lspec__loop_release(old);
  return LSPEC_OK;
}

static int pidfd_is_active(lspec_watcher *w) {
  int active;

  if (stateless())
    return 1;
  pthread_mutex_lock(&w->lock);
  active = w->loop != NULL && lspec__loop_is_running(w->loop) == 1;
  pthread_mutex_unlock(&w->lock);
  return active;
}

/* Releases every pidfd and reader; pending callbacks are dropped uncalled.
 * A reader on a loop running in another thread cannot be removed: that
 * child stays registered and the loop's E_RUNTIME is returned. */
static int pidfd_close(lspec_watcher *w) {
  struct lspec__child *c;
  lspec_loop *old;
  size_t i = 0, mask;
  int rc = LSPEC_OK, r;

  pthread_mutex_lock(&w->lock);
  /* 3.9-3.11's close() is attach_loop(None), warning included. */
  if (!stateless() && w->loop != NULL && w->children.count > 0)
    lspec__warn(LSPEC_WARN_RUNTIME, "A loop is being detached from a child "
                                    "watcher with pending handlers");
  /* Taking entries may reshape the table: rescan a bucket after each take,
   * and start over if the table was resized. */
  while (w->children.buckets != NULL && i <= w->children.mask) {
    for (c = w->children.buckets[i]; c != NULL && pc_of(c)->stuck;
         c = c->next)
      ;
    if (c == NULL) {
      i++;
      continue;
    }
    if ((r = move_reader_locked(c, NULL)) != LSPEC_OK) {
      pc_of(c)->stuck = 1;
      if (rc == LSPEC_OK)
        rc = r;
      continue;
    }
    mask = w->children.mask;
    drop_locked(w, c);
    if (w->children.mask != mask)
      i = 0;
  }
  old = w->loop;
  w->loop = NULL;
  pthread_mutex_unlock(&w->lock);
  if (old != NULL)
    lspec__loop_release(old);
  return rc;
}

static int pidfd_enter(lspec_watcher *w) {
  (void)w;
  return LSPEC_OK;
}

static int pidfd_exit(lspec_watcher *w) {
  (void)w;
  return LSPEC_OK;
}

static void pidfd_destroy(lspec_watcher *w) {
  struct pidfd_state *st = w->state;
  struct pidfd_child *pc;

  if (st == NULL)
    return;
  while ((pc = st->free) != NULL) {
    st->free = pc->next;
    free(pc);
  }
  free(st);
  w->state = NULL;
}

static const struct lspec__watcher_ops pidfd_ops = {
    .kind = LSPEC_WATCHER_PIDFD,
    .name = "PidfdChildWatcher",
    .add_child_handler = pidfd_add_child_handler,
    .remove_child_handler = pidfd_remove_child_handler,
    .attach_loop = pidfd_attach_loop,
    .is_active = pidfd_is_active,
    .close = pidfd_close,
    .enter = pidfd_enter,
    .exit = pidfd_exit,
    .destroy = pidfd_destroy,
};

int lspec__watcher_pidfd_init(lspec_watcher *w) {
  struct pidfd_state *st;

  /* asyncio.PidfdChildWatcher appeared in 3.9. */
  if (lspec__profile() < LSPEC_PROFILE_3_9)
    return lspec__fail(LSPEC_E_ATTRIBUTE, "module 'asyncio' has no "
                                          "attribute 'PidfdChildWatcher'");
  if ((st = calloc(1, sizeof *st)) == NULL)
    return lspec__fail_nomem("creating a PidfdChildWatcher");
  w->ops = &pidfd_ops;
  w->state = st;
  return LSPEC_OK;
}
