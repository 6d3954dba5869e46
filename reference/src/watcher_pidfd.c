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
 * reaped.  The reader is one-shot (EPOLLONESHOT): a pidfd stays readable
 * once its child has exited, and the reader is spent once it has run, so
 * the exit path removes it without a system call (the close drops the
 * kernel's interest) - registering a pidfd and its exit cost one
 * epoll_ctl, not two.
 *
 * Threading: w->lock guards the table, w->loop and every pidfd_child.  A
 * reader may only be touched by its loop's thread while that loop runs, so
 * work on a loop running in another thread is queued to it with
 * call_soon_threadsafe: a registration (3.9-3.11 add from a worker thread
 * while the attached loop runs in the main thread, as CPython allows), and
 * the removal of the reader and the closing of the pidfd of a child
 * unregistered by remove or close (its callback is never called from the
 * moment remove returns).  A loop that is closed without running again
 * drops such queued work: that pidfd stays open and the watcher is never
 * freed.  attach_loop cannot take readers away from a loop running in
 * another thread: E_RUNTIME, and nothing changes.
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

/* --- state ------------------------------------------------------------------ */

/* What a registered child needs beyond its table entry: the reader's
 * argument, so it leads back to the watcher and the entry.  A record lives
 * on after its child is unregistered while callbacks queued to a loop in
 * another thread still point at it (`pending`); the last of them recycles
 * it. */
struct pidfd_child {
  lspec_watcher *w;         /* the watcher (borrowed; each queued callback
                               holds a reference of its own) */
  struct lspec__child *c;   /* the table entry, or NULL once unregistered */
  int fd;                   /* the pidfd, or -1 once closed */
  lspec_loop *loop;         /* loop that watches (or is about to watch)
                               the pidfd (a reference), NULL if detached */
  int has_reader;           /* the reader is registered on `loop` */
  int adding;               /* a deferred_add is queued */
  int pending;              /* queued callbacks pointing at this record */
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
  pc->fd = -1;
  return pc;
}

/* Recycles a record nothing points at any more.  With w->lock held. */
static void pc_maybe_put(lspec_watcher *w, struct pidfd_child *pc) {
  struct pidfd_state *st = w->state;
  if (pc->c != NULL || pc->pending > 0 || pc->fd >= 0)
    return;
  pc->next = st->free;
  st->free = pc;
}

static struct pidfd_child *pc_of(struct lspec__child *c) {
  return c->kind_data;
}

static void on_ready(void *arg);
static void deferred_add(void *arg);
static void deferred_drop(void *arg);

/* A call queued to a loop running in another thread: fn(pc) there.  It
 * holds a watcher reference (released by fn) and a reference to the loop
 * (released here), so a loop closed before running it gives it back
 * through post_run as its dispose function, and a loop's last release can
 * never find one still queued.  Allocated: this is the rare cross-thread
 * path, never the exit path. */
struct pidfd_post {
  struct pidfd_child *pc;
  lspec_loop *loop;
  void (*fn)(void *pc);
};

static void post_run(void *arg) {
  struct pidfd_post p = *(struct pidfd_post *)arg;
  free(arg);
  p.fn(p.pc);
  lspec__loop_release(p.loop);
}

/* Queues fn(pc) to `loop`, which runs in another thread.  With w->lock
 * held. */
static int queue_locked(struct pidfd_child *pc, lspec_loop *loop,
                        lspec_callback fn) {
  struct pidfd_post *p = malloc(sizeof *p);
  int rc;

  if (p == NULL)
    return lspec__fail_nomem("PidfdChildWatcher: queueing to a loop");
  *p = (struct pidfd_post){pc, loop, fn};
  lspec__loop_retain(loop);
  /* Run or disposed of, it is the same call: fn copes with a closed loop
   * (readers are gone, adding one fails and is reported). */
  if ((rc = lspec__loop_post(loop, post_run, p, post_run)) != LSPEC_OK) {
    lspec__loop_release(loop);
    free(p);
    return rc;
  }
  pc->pending++;
  lspec__watcher_retain(pc->w);
  return LSPEC_OK;
}

/* Stops watching an unregistered child (pc->c already NULL): removes the
 * reader and closes the pidfd, or, when the reader is on a loop running in
 * another thread, has that loop's thread do both (a reader may only be
 * touched there, and the pidfd must outlive its reader).  With w->lock
 * held. */
static void unwatch_locked(lspec_watcher *w, struct pidfd_child *pc) {
  if (pc->has_reader && lspec__loop_check_thread(pc->loop) != LSPEC_OK &&
      queue_locked(pc, pc->loop, deferred_drop) == LSPEC_OK)
    return;
  /* Here the loop is this thread's, idle, or closed (readers gone). */
  if (pc->has_reader)
    lspec__loop_remove_reader_closing(pc->loop, pc->fd);
  pc->has_reader = 0;
  if (pc->fd >= 0)
    close(pc->fd);
  pc->fd = -1;
  if (pc->loop != NULL)
    lspec__loop_release(pc->loop);
  pc->loop = NULL;
  pc_maybe_put(w, pc);
}

/* Unregisters a child: its callback will not be called.  With w->lock
 * held. */
static void drop_locked(lspec_watcher *w, struct lspec__child *c) {
  struct pidfd_child *pc = pc_of(c);
  lspec__children_take(w, c->pid);
  c->pidfd = -1;
  c->kind_data = NULL;
  lspec__children_recycle(w, c);
  pc->c = NULL;
  unwatch_locked(w, pc);
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
      r = lspec__sys.waitpid(pid, &status, 0);
    while (r == -EINTR);
    if (r == pid)
      return lspec__returncode(status);
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
  int fd, pid, returncode;

  pthread_mutex_lock(&w->lock);
  c = pc->c;
  if (c == NULL || !pc->has_reader || pc->loop != lspec__loop_running()) {
    /* Unregistered from another thread: deferred_drop is on its way. */
    pthread_mutex_unlock(&w->lock);
    return;
  }
  /* Taking the entry makes this call its owner: no one else can deliver
   * or drop it from here on. */
  pid = c->pid;
  lspec__children_take(w, pid);
  c->pidfd = -1;
  c->kind_data = NULL;
  loop = pc->loop;
  fd = pc->fd;
  pc->c = NULL;
  pc->has_reader = 0;
  pc->fd = -1;
  pc->loop = NULL; /* its reference moves to `loop` */
  pc_maybe_put(w, pc);
  pthread_mutex_unlock(&w->lock);

  /* First, as CPython; the one-shot reader has fired, so this costs no
   * system call. */
  lspec__loop_remove_reader_closing(loop, fd);
  returncode = wait_exited(pid);
  if (LSPEC_PLANTED(CW_PIDFD_002)) /* planted: sweeps up every zombie */
    while (waitpid(-1, NULL, WNOHANG) > 0)
      ;
  close(fd);
  lspec__loop_release(loop); /* the caller running it holds another */
  c->loop = NULL;            /* synchronously: we are in the loop's thread */
  lspec__child_deliver(w, c, returncode);
}

/* --- reader placement ----------------------------------------------------------- */

/* Moves a registered child's reader from its loop (if any) to `loop`.  A
 * loop running in another thread cannot take a reader from here: the
 * registration is then queued to that loop's thread (CPython adds the
 * reader from whatever thread calls add_child_handler; research SUB-008
 * has worker-thread spawns watched by the main thread's loop).  A reader
 * on a loop running in another thread cannot be moved away: E_RUNTIME,
 * and nothing changes.  With w->lock held. */
static int move_reader_locked(struct lspec__child *c, lspec_loop *loop) {
  struct pidfd_child *pc = pc_of(c);
  int rc, has_reader = 0;

  if (pc->loop == loop && (pc->has_reader || pc->adding || loop == NULL))
    return LSPEC_OK;
  if (pc->has_reader && (rc = lspec__loop_check_thread(pc->loop)))
    return rc;
  if (loop != NULL) {
    if (lspec__loop_check_thread(loop) == LSPEC_OK) {
      if ((rc = lspec__loop_add_reader_once(loop, pc->fd, on_ready, pc)))
        return rc;
      has_reader = 1;
    } else if (!pc->adding) {
      /* A queued add re-queues itself to pc->loop if that changed. */
      if ((rc = queue_locked(pc, loop, deferred_add)))
        return rc;
      pc->adding = 1;
    }
    lspec__loop_retain(loop);
  }
  if (pc->has_reader)
    lspec__loop_remove_reader(pc->loop, pc->fd);
  if (pc->loop != NULL)
    lspec__loop_release(pc->loop);
  pc->loop = loop;
  pc->has_reader = has_reader;
  return LSPEC_OK;
}

/* In the thread of the loop an add was queued to: registers the reader on
 * the child's current loop (queueing again if that one runs elsewhere), or
 * lets the record go if the child was unregistered meanwhile. */
static void deferred_add(void *arg) {
  struct pidfd_child *pc = arg;
  lspec_watcher *w = pc->w;
  lspec_loop *loop;
  int rc = LSPEC_OK, pid = 0;

  pthread_mutex_lock(&w->lock);
  pc->pending--;
  pc->adding = 0;
  loop = pc->loop;
  if (pc->c != NULL && loop != NULL && !pc->has_reader) {
    pid = pc->c->pid;
    if (lspec__loop_check_thread(loop) != LSPEC_OK) {
      if ((rc = queue_locked(pc, loop, deferred_add)) == LSPEC_OK)
        pc->adding = 1;
    } else if ((rc = lspec__loop_add_reader_once(loop, pc->fd, on_ready, pc)) ==
               LSPEC_OK) {
      pc->has_reader = 1;
    }
  }
  pc_maybe_put(w, pc);
  pthread_mutex_unlock(&w->lock);
  if (rc != LSPEC_OK)
    lspec__warn(LSPEC_WARN_LOG_ERROR,
                "PidfdChildWatcher: cannot watch pid %d: %s", pid,
                lspec_impl_v1()->last_error());
  lspec__watcher_release(w); /* the queued call's reference */
}

/* In the thread of the loop whose reader an unregistered child still has:
 * removes it and closes the pidfd. */
static void deferred_drop(void *arg) {
  struct pidfd_child *pc = arg;
  lspec_watcher *w = pc->w;

  pthread_mutex_lock(&w->lock);
  pc->pending--;
  unwatch_locked(w, pc); /* now in the loop's thread, or it stopped */
  pthread_mutex_unlock(&w->lock);
  lspec__watcher_release(w); /* the queued call's reference */
}

/* --- the operations ------------------------------------------------------------ */

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
    else if (fd == -ENOSYS)
      /* The page: pidfds "only work on recent (5.3+) kernels". */
      rc = lspec__fail_errno(ENOSYS, "pidfd_open(%d): PidfdChildWatcher "
                                     "needs pidfd_open, which Linux has "
                                     "from 5.3 on (not this kernel, or a "
                                     "filter refuses it)", pid);
    else
      rc = lspec__fail_errno(-fd, "pidfd_open(%d)", pid);
    goto out;
  }
  pc = pc_get(w->state);
  c = pc ? lspec__children_add(w, pid) : NULL;
  if (c == NULL) {
    if (pc != NULL)
      pc_maybe_put(w, pc);
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
  pc->fd = fd;
  if ((rc = move_reader_locked(c, loop)) != LSPEC_OK)
    drop_locked(w, c);
out:
  pthread_mutex_unlock(&w->lock);
  return rc;
}

static int pidfd_remove_child_handler(lspec_watcher *w, int pid) {
  struct lspec__child *c;
  int rc = 0;

  pthread_mutex_lock(&w->lock);
  if ((c = lspec__children_find(w, pid)) != NULL) {
    drop_locked(w, c);
    rc = 1;
  }
  pthread_mutex_unlock(&w->lock);
  return rc;
}

/* Moves every child's reader from its loop to `loop` (NULL: none).  The
 * readers on a loop running in another thread are checked first, so that
 * case changes nothing; a refusal by the new loop part way (out of memory,
 * or the backend refusing a descriptor) leaves the children already moved
 * on the new loop, where they are watched. */
static int switch_loop_locked(lspec_watcher *w, lspec_loop *loop) {
  struct lspec__child *c;
  size_t i;
  int rc;

  if (w->children.buckets == NULL)
    return LSPEC_OK;
  if (loop != NULL && w->children.count > 0 &&
      (rc = lspec__loop_check_closed(loop)))
    return rc;
  for (i = 0; i <= w->children.mask; i++)
    for (c = w->children.buckets[i]; c != NULL; c = c->next)
      if (pc_of(c)->has_reader &&
          (rc = lspec__loop_check_thread(pc_of(c)->loop)))
        return rc;
  for (i = 0; i <= w->children.mask; i++)
    for (c = w->children.buckets[i]; c != NULL; c = c->next)
      if ((rc = move_reader_locked(c, loop)))
        return rc;
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
 * A reader on a loop running in another thread is removed, and its pidfd
 * closed, by that loop's thread on its next iteration. */
static int pidfd_close(lspec_watcher *w) {
  lspec_loop *old;
  size_t i = 0, mask;

  pthread_mutex_lock(&w->lock);
  /* 3.9-3.11's close() is attach_loop(None), warning included. */
  if (!stateless() && w->loop != NULL && w->children.count > 0)
    lspec__warn(LSPEC_WARN_RUNTIME, "A loop is being detached from a child "
                                    "watcher with pending handlers");
  /* Taking entries may reshape the table: empty a bucket, and start over
   * if the table was resized. */
  while (w->children.buckets != NULL && i <= w->children.mask) {
    if (w->children.buckets[i] == NULL) {
      i++;
      continue;
    }
    mask = w->children.mask;
    drop_locked(w, w->children.buckets[i]);
    if (w->children.mask != mask)
      i = 0;
  }
  old = w->loop;
  w->loop = NULL;
  pthread_mutex_unlock(&w->lock);
  if (old != NULL)
    lspec__loop_release(old);
  return LSPEC_OK;
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
