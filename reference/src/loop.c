/* loop.c - the reference's selector event loop: CPython's BaseEventLoop and
 * _UnixSelectorEventLoop in C, without futures, transports or tasks.
 *
 * What it keeps from CPython, because checkers observe it: the FIFO ready
 * queue; call_later through a heap whose due timers join the ready queue in
 * the same iteration; one iteration (_run_once) runs exactly the callbacks
 * that were ready when it started looking, so a callback scheduled by a
 * callback runs on the next iteration; stop() takes effect at the end of the
 * current iteration; level-triggered readers; every error message.  It runs
 * with the checks of CPython's debug mode that the ABI makes observable
 * (_check_thread, _check_callback).
 *
 * What is its own: an eventfd instead of the self-pipe, handles that are
 * named by ids (loop_cancel) and recycled through a pool, timers that leave
 * the heap when cancelled, and run_until, the ABI's replacement for
 * run_until_complete.
 *
 * Division of this file: clock and checks; the id map; handles and the ready
 * queue; creation, reference counting and closing; scheduling entries;
 * readers; one iteration; run_forever / run_until / stop.
 *
 * The threading model is described at the top of loop.h.
 */
#define _GNU_SOURCE 1
#include "loop.h"
#include "syscalls.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* CPython's MAXIMUM_SELECT_TIMEOUT: no wait is longer than a day. */
#define MAX_SELECT_TIMEOUT (24.0 * 3600.0)

/* Free handles kept for reuse; beyond this a burst's handles are freed. */
#define POOL_MAX 1024

/* The loop running in this thread (CPython's events._get_running_loop). */
static _Thread_local lspec_loop *running_loop;

/* ------------------------------------------------------------------------ */
/* Clock and checks.                                                         */
/* ------------------------------------------------------------------------ */

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

lspec_loop *lspec__loop_running(void) { return running_loop; }

/* Called by policy.c's fork handler in the child, whose only thread is the
 * one that forked: a loop it was running in the parent is not running in
 * the child (CPython: the pid check of _get_running_loop up to 3.11,
 * _after_fork from 3.12).  The loop object itself is the parent's copy and
 * still says it is running; only the thread's running loop is cleared, as
 * CPython does. */
void lspec__loop_after_fork_child(void) {
  running_loop = NULL;
  lspec__signal_after_fork_child();
}

int lspec__loop_check_handle(const void *h) {
  if (lspec__kind_of(h) == LSPEC__KIND_LOOP)
    return LSPEC_OK;
  return lspec__fail(LSPEC_E_TYPE,
                     "loop must be an event loop handle, not %s",
                     h ? "a handle of another kind" : "NULL");
}

int lspec__loop_check_thread(lspec_loop *loop) {
  /* Only the thread running a loop has it as its running loop, and a thread
   * runs at most one loop, so this needs no thread ids. */
  if (atomic_load(&loop->running) && running_loop != loop)
    return lspec__fail(LSPEC_E_RUNTIME,
                       "Non-thread-safe operation invoked on an event loop "
                       "other than the current one");
  return LSPEC_OK;
}

int lspec__loop_check_closed(lspec_loop *loop) {
  if (atomic_load(&loop->closed))
    return lspec__fail(LSPEC_E_RUNTIME, "Event loop is closed");
  return LSPEC_OK;
}

/* CPython's _check_callback, with None for NULL. */
static int fail_not_callable(const char *method) {
  return lspec__fail(LSPEC_E_TYPE,
                     "a callable object was expected by %s(), got None",
                     method);
}

/* ------------------------------------------------------------------------ */
/* The id map: open addressing with linear probing, at most half full, and   */
/* backward-shift deletion (no tombstones, so lookups stay short however     */
/* many handles come and go).  Under loop->lock.                             */
/* ------------------------------------------------------------------------ */

static size_t id_hash(uint64_t id) {
  /* The finaliser of MurmurHash3: consecutive ids spread over the table. */
  id ^= id >> 33;
  id *= UINT64_C(0xff51afd7ed558ccd);
  id ^= id >> 33;
  return (size_t)id;
}

static void idmap_insert(struct lspec__idmap *m, struct lspec__handle *h) {
  size_t i = id_hash(h->id) & m->mask;
  while (m->slots[i] != NULL)
    i = (i + 1) & m->mask;
  m->slots[i] = h;
  m->count++;
}

/* Makes sure one more insertion keeps the map at most half full.  Returns 0
 * or -ENOMEM with the map unchanged. */
static int idmap_reserve(struct lspec__idmap *m) {
  size_t cap = m->slots ? m->mask + 1 : 0, ncap, i;
  struct lspec__idmap grown;

  if ((m->count + 1) * 2 <= cap)
    return 0;
  ncap = cap ? cap * 2 : 64;
  grown.slots = calloc(ncap, sizeof *grown.slots);
  if (grown.slots == NULL)
    return -ENOMEM;
  grown.mask = ncap - 1;
  grown.count = 0;
  for (i = 0; i < cap; i++)
    if (m->slots[i] != NULL)
      idmap_insert(&grown, m->slots[i]);
  free(m->slots);
  *m = grown;
  return 0;
}

static struct lspec__handle *idmap_find(const struct lspec__idmap *m,
                                        lspec_handle_id id) {
  size_t i;
  if (m->slots == NULL)
    return NULL;
  for (i = id_hash(id) & m->mask; m->slots[i] != NULL; i = (i + 1) & m->mask)
    if (m->slots[i]->id == id)
      return m->slots[i];
  return NULL;
}

/* True when `k` lies in the cyclic interval (i, j]. */
static int cyclic_between(size_t i, size_t k, size_t j) {
  return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

static void idmap_remove(struct lspec__idmap *m, const struct lspec__handle *h) {
  size_t i, j, home;

  for (i = id_hash(h->id) & m->mask; m->slots[i] != h; i = (i + 1) & m->mask)
    ;
  /* Close the hole: every later entry of the probe run whose home slot is
   * not between the hole and itself moves back into the hole. */
  for (j = (i + 1) & m->mask; m->slots[j] != NULL; j = (j + 1) & m->mask) {
    home = id_hash(m->slots[j]->id) & m->mask;
    if (!cyclic_between(i, home, j)) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i] = NULL;
  m->count--;
}

/* ------------------------------------------------------------------------ */
/* Handles and the ready queue.  Under loop->lock.                           */
/* ------------------------------------------------------------------------ */

static struct lspec__handle *handle_get(lspec_loop *loop) {
  struct lspec__handle *h = loop->pool;
  if (h != NULL) {
    loop->pool = h->next;
    loop->npool--;
    return h;
  }
  return malloc(sizeof *h);
}

static void handle_put(lspec_loop *loop, struct lspec__handle *h) {
  if (loop->npool >= POOL_MAX) {
    free(h);
    return;
  }
  h->state = LSPEC__H_FREE;
  h->cb = NULL;
  h->arg = NULL;
  h->dispose = NULL;
  h->ccb = NULL;
  h->next = loop->pool;
  loop->pool = h;
  loop->npool++;
}

static void ready_push(lspec_loop *loop, struct lspec__handle *h) {
  h->state = LSPEC__H_READY;
  h->next = NULL;
  if (loop->ready_tail != NULL)
    loop->ready_tail->next = h;
  else
    loop->ready_head = h;
  loop->ready_tail = h;
  loop->nready++;
}

static struct lspec__handle *ready_pop(lspec_loop *loop) {
  struct lspec__handle *h = loop->ready_head;
  if (h == NULL)
    return NULL;
  loop->ready_head = h->next;
  if (loop->ready_head == NULL)
    loop->ready_tail = NULL;
  loop->nready--;
  return h;
}

/* Schedules cb(arg), in the ready queue (timer == 0) or in the heap at
 * `when`.  All allocation happens before anything changes, so a failure
 * leaves no trace. */
static int schedule_locked(lspec_loop *loop, int timer, double when,
                           lspec_callback cb, void *arg,
                           lspec_handle_id *out) {
  struct lspec__handle *h;

  if (idmap_reserve(&loop->ids) != 0 ||
      (timer && lspec__heap_reserve(&loop->timers, 1) != 0))
    return lspec__fail_nomem("scheduling a callback");
  h = handle_get(loop);
  if (h == NULL)
    return lspec__fail_nomem("scheduling a callback");
  h->id = ++loop->next_id;
  h->cb = cb;
  h->arg = arg;
  h->dispose = NULL;
  h->ccb = NULL;
  h->timer.when = when;
  h->timer.seq = h->id; /* ids grow with scheduling order: ties stay FIFO */
  h->timer.index = LSPEC__TIMER_DETACHED;
  idmap_insert(&loop->ids, h);
  if (timer) {
    h->state = LSPEC__H_TIMER;
    lspec__heap_push(&loop->timers, &h->timer);
  } else {
    ready_push(loop, h);
  }
  if (out != NULL)
    *out = h->id;
  return LSPEC_OK;
}

/* Wakes the loop if it blocks (or is about to) in its backend and nobody
 * woke it yet: at most one eventfd write per sleep.  The write happens
 * under the lock, so close() cannot close the eventfd in between. */
static void wake_locked(lspec_loop *loop) {
  if (!loop->sleeping || loop->wake_pending)
    return;
  loop->wake_pending = 1;
  /* EINTR is retried; EAGAIN means the counter is saturated: the loop is
   * awake anyway.  Nothing else can fail on a valid eventfd. */
  (void)lspec__sys_wake(loop->wakefd);
}

/* Empties the eventfd after the backend reported it readable. */
static void drain_wakefd(lspec_loop *loop) {
  uint64_t value;
  ssize_t n;
  do
    n = read(loop->wakefd, &value, sizeof value);
  while (n < 0 && errno == EINTR);
}

/* ------------------------------------------------------------------------ */
/* Creation, reference counting and closing.                                 */
/* ------------------------------------------------------------------------ */

/* Makes room for `n` entries in loop->fired.  0 or -ENOMEM. */
static int reserve_fired(lspec_loop *loop, size_t n) {
  struct lspec__fired *f;
  size_t cap;

  if (n <= loop->fired_cap)
    return 0;
  cap = loop->fired_cap ? loop->fired_cap : 8;
  while (cap < n)
    cap *= 2;
  f = realloc(loop->fired, cap * sizeof *f);
  if (f == NULL)
    return -ENOMEM;
  loop->fired = f;
  loop->fired_cap = cap;
  return 0;
}

/* Frees every handle of the loop, scheduled or pooled.  Under the lock.
 * Internal posts that own something (a dispose function) are not freed but
 * returned as a list, for close_now to dispose of once the lock is
 * dropped. */
static struct lspec__handle *drop_handles_locked(lspec_loop *loop) {
  struct lspec__handle *h, *next, *orphans = NULL;
  struct lspec__timer *t;

  while ((h = ready_pop(loop)) != NULL) {
    if (h->state == LSPEC__H_READY && h->dispose != NULL) {
      h->next = orphans;
      orphans = h;
    } else {
      free(h);
    }
  }
  while ((t = lspec__heap_pop(&loop->timers)) != NULL)
    free((struct lspec__handle *)((char *)t -
                                  offsetof(struct lspec__handle, timer)));
  lspec__heap_free(&loop->timers);
  for (h = loop->pool; h != NULL; h = next) {
    next = h->next;
    free(h);
  }
  loop->pool = NULL;
  loop->npool = 0;
  free(loop->ids.slots);
  memset(&loop->ids, 0, sizeof loop->ids);
  return orphans;
}

/* Closes an open loop that is not running: drops what is scheduled without
 * calling it, removes readers and signal handlers, closes the descriptors. */
static void close_now(lspec_loop *loop) {
  struct lspec__handle *orphans, *next;

  pthread_mutex_lock(&loop->lock);
  /* Set under the lock: call_soon_threadsafe checks it under the same lock,
   * so nothing is scheduled (and the eventfd is not written) after this. */
  atomic_store(&loop->closed, 1);
  orphans = drop_handles_locked(loop);
  pthread_mutex_unlock(&loop->lock);
  /* What internal posts carried goes back to their owners, outside the
   * lock (a dispose function may take other locks or release handles). */
  for (; orphans != NULL; orphans = next) {
    next = orphans->next;
    orphans->dispose(orphans->arg);
    free(orphans);
  }

  /* Exits of its subprocesses still on their way have nowhere to go. */
  lspec__subprocess_loop_closed(loop);

  /* Signals first: afterwards no signal handler can write to the eventfd. */
  lspec__signal_close_loop(loop);

  loop->backend->ops->destroy(loop->backend);
  loop->backend = NULL;
  close(loop->wakefd);
  loop->wakefd = -1;
  free(loop->readers);
  loop->readers = NULL;
  loop->readers_cap = 0;
  loop->nreaders = 0;
  free(loop->fired);
  loop->fired = NULL;
  loop->fired_cap = 0;
}

int lspec__loop_new(int backend, lspec_loop **out) {
  lspec_loop *loop;
  struct timespec res;
  int rc, err;

  if (out == NULL)
    return lspec__fail(LSPEC_E_VALUE, "loop_new: out is NULL");
  *out = NULL;
  if (backend == LSPEC_BACKEND_DEFAULT)
    backend = LSPEC_BACKEND_EPOLL; /* selectors.DefaultSelector on Linux */
  if (backend != LSPEC_BACKEND_EPOLL && backend != LSPEC_BACKEND_POLL)
    return lspec__fail(LSPEC_E_VALUE, "unknown loop backend %d", backend);

  loop = calloc(1, sizeof *loop);
  if (loop == NULL)
    return lspec__fail_nomem("creating an event loop");
  /* Sentinels first, so the error path frees only what exists. */
  loop->wakefd = -1;
  loop->backend_kind = backend;
  atomic_init(&loop->running, 0);
  atomic_init(&loop->stopping, 0);
  atomic_init(&loop->closed, 0);
  atomic_init(&loop->nsig, 0);
  lspec__heap_init(&loop->timers);
  if ((err = pthread_mutex_init(&loop->lock, NULL)) != 0) {
    free(loop);
    return lspec__fail_errno(err, "creating the loop's mutex");
  }

  loop->wakefd = lspec__sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->wakefd < 0) {
    rc = lspec__fail_errno(-loop->wakefd, "creating the loop's eventfd");
    loop->wakefd = -1;
    goto error;
  }
  err = backend == LSPEC_BACKEND_EPOLL
            ? lspec__backend_epoll_new(&loop->backend)
            : lspec__backend_poll_new(&loop->backend);
  if (err == 0)
    err = loop->backend->ops->add(loop->backend, loop->wakefd, LSPEC__EV_READ);
  if (err == 0)
    err = reserve_fired(loop, 1);
  if (err != 0) {
    rc = err == -ENOMEM ? lspec__fail_nomem("creating an event loop")
                        : lspec__fail_errno(-err, "creating the %s backend",
                                            backend == LSPEC_BACKEND_EPOLL
                                                ? "epoll"
                                                : "poll");
    goto error;
  }
  loop->clock_res = clock_getres(CLOCK_MONOTONIC, &res) == 0
                        ? (double)res.tv_sec + (double)res.tv_nsec * 1e-9
                        : 1e-9;

  atomic_init(&loop->hdr.refs, 1);
  loop->hdr.kind = LSPEC__KIND_LOOP;
  *out = loop;
  return LSPEC_OK;

error:
  if (loop->backend != NULL)
    loop->backend->ops->destroy(loop->backend);
  if (loop->wakefd >= 0)
    close(loop->wakefd);
  free(loop->fired);
  pthread_mutex_destroy(&loop->lock);
  free(loop);
  return rc;
}

void lspec__loop_retain(lspec_loop *loop) {
  if (lspec__kind_of(loop) == LSPEC__KIND_LOOP)
    atomic_fetch_add(&loop->hdr.refs, 1);
}

int lspec__loop_tryretain(lspec_loop *loop) {
  unsigned n = atomic_load(&loop->hdr.refs);
  do
    if (n == 0)
      return 0;
  while (!atomic_compare_exchange_weak(&loop->hdr.refs, &n, n + 1));
  return 1;
}

/* Drops one reference.  The last one closes an unclosed loop (with
 * CPython's ResourceWarning from BaseEventLoop.__del__) and frees it.  A
 * running loop holds a reference of its own (see run()), so the caller's
 * last release during a run takes effect when the run returns; releasing
 * more references than one holds is the caller's bug. */
void lspec__loop_release(lspec_loop *loop) {
  if (lspec__kind_of(loop) != LSPEC__KIND_LOOP)
    return;
  if (!lspec__unref(&loop->hdr))
    return;
  if (!atomic_load(&loop->closed)) {
    lspec__warn(LSPEC_WARN_RESOURCE,
                "unclosed event loop <_UnixSelectorEventLoop running=False "
                "closed=False debug=False>");
    close_now(loop);
  }
  pthread_mutex_destroy(&loop->lock);
  loop->hdr.kind = LSPEC__KIND_DEAD;
  free(loop);
}

int lspec__loop_close(lspec_loop *loop) {
  int rc = lspec__loop_check_handle(loop);
  if (rc)
    return rc;
  if (atomic_load(&loop->running))
    return lspec__fail(LSPEC_E_RUNTIME, "Cannot close a running event loop");
  if (atomic_load(&loop->closed))
    return LSPEC_PLANTED(LOOP_CLOSE_002) /* planted: twice is an error */
               ? lspec__fail(LSPEC_E_RUNTIME, "Event loop is closed")
               : LSPEC_OK; /* CPython: closing twice does nothing */
  close_now(loop);
  return LSPEC_OK;
}

int lspec__loop_is_running(lspec_loop *loop) {
  int rc = lspec__loop_check_handle(loop);
  return rc ? rc : atomic_load(&loop->running);
}

int lspec__loop_is_closed(lspec_loop *loop) {
  int rc = lspec__loop_check_handle(loop);
  return rc ? rc : atomic_load(&loop->closed);
}

/* The loop's clock, CLOCK_MONOTONIC in seconds; it keeps working after
 * close, as CPython's time() does.  -1.0 (with LSPEC_E_TYPE recorded) for a
 * bad handle: a real reading is never negative. */
double lspec__loop_time(lspec_loop *loop) {
  if (lspec__loop_check_handle(loop) != LSPEC_OK)
    return -1.0;
  return monotonic_now();
}

/* ------------------------------------------------------------------------ */
/* Scheduling entries.                                                       */
/* ------------------------------------------------------------------------ */

/* call_soon and call_soon_threadsafe.  Checks in CPython's order: closed,
 * the thread (call_soon only), the callback. */
static int call_soon_common(lspec_loop *loop, lspec_callback cb, void *arg,
                            lspec_handle_id *out, int threadsafe) {
  const char *method = threadsafe ? "call_soon_threadsafe" : "call_soon";
  int rc;

  if (out != NULL)
    *out = 0;
  if ((rc = lspec__loop_check_handle(loop)) ||
      (rc = lspec__loop_check_closed(loop)) ||
      (!threadsafe && (rc = lspec__loop_check_thread(loop))))
    return rc;
  if (cb == NULL)
    return fail_not_callable(method);

  pthread_mutex_lock(&loop->lock);
  /* Checked again under the lock: another thread may have closed it. */
  rc = atomic_load(&loop->closed)
           ? lspec__fail(LSPEC_E_RUNTIME, "Event loop is closed")
           : schedule_locked(loop, 0, 0.0, cb, arg, out);
  /* call_soon wakes too: it costs one test, and keeps a caller that breaks
   * the threading rule from leaving the loop asleep. */
  if (rc == LSPEC_OK)
    wake_locked(loop);
  pthread_mutex_unlock(&loop->lock);
  return rc;
}

int lspec__loop_call_soon(lspec_loop *loop, lspec_callback cb, void *arg,
                          lspec_handle_id *out) {
  return call_soon_common(loop, cb, arg, out, 0);
}

int lspec__loop_call_soon_threadsafe(lspec_loop *loop, lspec_callback cb,
                                     void *arg, lspec_handle_id *out) {
  return call_soon_common(loop, cb, arg, out, 1);
}

/* Internal posts (internal.h): like call_soon_threadsafe, but unnamed (no
 * id, so loop_cancel cannot reach them), with a dispose function or a child
 * callback.  The handle comes from the pool: no allocation once warm. */
static int post_common(lspec_loop *loop, lspec_callback cb,
                       lspec_child_callback ccb, void *arg,
                       lspec_callback dispose, int pid, int returncode) {
  struct lspec__handle *h;
  int rc;

  if ((rc = lspec__loop_check_handle(loop)) ||
      (rc = lspec__loop_check_closed(loop)))
    return rc;
  pthread_mutex_lock(&loop->lock);
  if (atomic_load(&loop->closed)) {
    rc = lspec__fail(LSPEC_E_RUNTIME, "Event loop is closed");
  } else if ((h = handle_get(loop)) == NULL) {
    rc = lspec__fail_nomem("scheduling a callback");
  } else {
    h->id = 0;
    h->cb = cb;
    h->ccb = ccb;
    h->arg = arg;
    h->dispose = dispose;
    h->cpid = pid;
    h->crc = returncode;
    h->timer.index = LSPEC__TIMER_DETACHED;
    ready_push(loop, h);
    wake_locked(loop);
  }
  pthread_mutex_unlock(&loop->lock);
  return rc;
}

int lspec__loop_post(lspec_loop *loop, lspec_callback cb, void *arg,
                     lspec_callback dispose) {
  if (cb == NULL)
    return fail_not_callable("post");
  return post_common(loop, cb, NULL, arg, dispose, 0, 0);
}

int lspec__loop_post_child(lspec_loop *loop, lspec_child_callback ccb,
                           void *arg, int pid, int returncode) {
  if (ccb == NULL)
    return fail_not_callable("post");
  return post_common(loop, NULL, ccb, arg, NULL, pid, returncode);
}

/* call_later(delay): runs cb at loop_time() + delay.  A delay of zero or
 * less is due at once and runs in the next iteration, after the callbacks
 * already ready then (CPython's call_at path).  +inf is accepted and never
 * fires; NaN is refused with LSPEC_E_VALUE, where CPython would accept it
 * and leave its heap's order undefined. */
int lspec__loop_call_later(lspec_loop *loop, double delay, lspec_callback cb,
                           void *arg, lspec_handle_id *out) {
  int rc;

  if (out != NULL)
    *out = 0;
  if ((rc = lspec__loop_check_handle(loop)))
    return rc;
  if (isnan(delay))
    return lspec__fail(LSPEC_E_VALUE, "call_later: delay must be a number, "
                                      "not NaN");
  if ((rc = lspec__loop_check_closed(loop)) ||
      (rc = lspec__loop_check_thread(loop)))
    return rc;
  if (cb == NULL)
    return fail_not_callable("call_later");

  pthread_mutex_lock(&loop->lock);
  rc = atomic_load(&loop->closed)
           ? lspec__fail(LSPEC_E_RUNTIME, "Event loop is closed")
           : schedule_locked(loop, 1, monotonic_now() + delay, cb, arg, out);
  if (rc == LSPEC_OK)
    wake_locked(loop); /* the new timer may be earlier than the wait */
  pthread_mutex_unlock(&loop->lock);
  return rc;
}

/* Cancels the callback named `id`: it will not run.  An id that is unknown,
 * already run, already cancelled, or 0 is ignored (Handle.cancel is
 * idempotent), so this fails only for a bad handle.  Thread-safe: it takes
 * the loop's lock, as CPython's cancel needs no thread check. */
int lspec__loop_cancel(lspec_loop *loop, lspec_handle_id id) {
  struct lspec__handle *h;
  int rc = lspec__loop_check_handle(loop);

  if (rc || id == 0)
    return rc;
  pthread_mutex_lock(&loop->lock);
  h = idmap_find(&loop->ids, id);
  if (h != NULL) {
    idmap_remove(&loop->ids, h);
    if (h->state == LSPEC__H_TIMER) {
      lspec__heap_remove(&loop->timers, &h->timer);
      handle_put(loop, h);
    } else {
      /* In the ready queue: it is skipped (and recycled) at its turn. */
      h->state = LSPEC__H_CANCELLED;
      h->cb = NULL;
      h->arg = NULL;
    }
  }
  pthread_mutex_unlock(&loop->lock);
  return LSPEC_OK;
}

/* ------------------------------------------------------------------------ */
/* Readers.                                                                  */
/* ------------------------------------------------------------------------ */

/* Makes readers[fd] exist.  0 or -ENOMEM. */
static int reserve_readers(lspec_loop *loop, int fd) {
  size_t need = (size_t)fd + 1, cap;
  struct lspec__reader *r;

  if (need <= loop->readers_cap)
    return 0;
  cap = loop->readers_cap ? loop->readers_cap : 64;
  while (cap < need)
    cap *= 2;
  r = realloc(loop->readers, cap * sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  memset(r + loop->readers_cap, 0, (cap - loop->readers_cap) * sizeof *r);
  loop->readers = r;
  loop->readers_cap = cap;
  return 0;
}

/* add_reader(fd, cb, arg): checks in this order: closed, thread, callback,
 * fd.  A second add for the same fd replaces the callback without touching
 * the backend (CPython modifies only the selector key's data). */
static int add_reader(lspec_loop *loop, int fd, lspec_callback cb, void *arg,
                      int oneshot) {
  struct lspec__reader *r;
  int rc, err;

  if ((rc = lspec__loop_check_handle(loop)) ||
      (rc = lspec__loop_check_closed(loop)) ||
      (rc = lspec__loop_check_thread(loop)))
    return rc;
  if (cb == NULL)
    return fail_not_callable("add_reader");
  if (fd < 0)
    return lspec__fail(LSPEC_E_VALUE, "Invalid file descriptor: %d", fd);
  if (fd == loop->wakefd)
    return lspec__fail_errno(EEXIST, "add_reader(%d): the loop's own "
                                     "wake-up descriptor", fd);

  if ((size_t)fd < loop->readers_cap && loop->readers[fd].reg != 0) {
    if (oneshot || loop->readers[fd].oneshot)
      return lspec__fail_errno(EEXIST, "add_reader(%d): a one-shot reader "
                                       "is registered", fd);
    r = &loop->readers[fd];
    r->cb = cb;
    r->arg = arg;
    r->reg = ++loop->next_reg; /* a queued event of the old one is void */
    return LSPEC_OK;
  }
  /* Room first, so a refusal by the backend is the only failure left. */
  if (reserve_readers(loop, fd) != 0 ||
      reserve_fired(loop, loop->nreaders + 2) != 0)
    return lspec__fail_nomem("adding a reader");
  err = loop->backend->ops->add(loop->backend, fd,
                                LSPEC__EV_READ |
                                    (oneshot ? LSPEC__EV_ONESHOT : 0u));
  if (err == -ENOMEM)
    return lspec__fail_nomem("adding a reader");
  if (err != 0)
    return lspec__fail_errno(-err, "add_reader(%d)", fd);
  r = &loop->readers[fd];
  r->cb = cb;
  r->arg = arg;
  r->reg = ++loop->next_reg;
  r->oneshot = oneshot;
  r->disarmed = 0;
  loop->nreaders++;
  return LSPEC_OK;
}

int lspec__loop_add_reader(lspec_loop *loop, int fd, lspec_callback cb,
                           void *arg) {
  return add_reader(loop, fd, cb, arg, 0);
}

int lspec__loop_add_reader_once(lspec_loop *loop, int fd, lspec_callback cb,
                                void *arg) {
  return add_reader(loop, fd, cb, arg, 1);
}

/* remove_reader(fd): 1 if a reader was removed, 0 if there was none.  Like
 * CPython, a closed loop answers 0 before looking at fd. */
static int remove_reader(lspec_loop *loop, int fd, int closing) {
  struct lspec__reader *r;
  int rc;

  if ((rc = lspec__loop_check_handle(loop)))
    return rc;
  if (atomic_load(&loop->closed))
    return 0;
  if ((rc = lspec__loop_check_thread(loop)))
    return rc;
  if (fd < 0)
    return lspec__fail(LSPEC_E_VALUE, "Invalid file descriptor: %d", fd);
  if ((size_t)fd >= loop->readers_cap || loop->readers[fd].reg == 0)
    return LSPEC_PLANTED(LOOP_READER_003); /* planted: 1, none removed */
  r = &loop->readers[fd];
  if (closing && r->disarmed)
    loop->backend->ops->forget(loop->backend, fd);
  else
    /* The caller may have closed fd already; the backend copes, and
     * CPython ignores the error too. */
    (void)loop->backend->ops->remove(loop->backend, fd);
  memset(r, 0, sizeof *r);
  loop->nreaders--;
  return 1;
}

int lspec__loop_remove_reader(lspec_loop *loop, int fd) {
  return remove_reader(loop, fd, 0);
}

int lspec__loop_remove_reader_closing(lspec_loop *loop, int fd) {
  return remove_reader(loop, fd, 1);
}

/* ------------------------------------------------------------------------ */
/* One iteration.                                                            */
/* ------------------------------------------------------------------------ */

/* Seconds to a backend timeout in milliseconds, rounded up so the loop
 * never wakes just before a timer is due and spins. */
static int timeout_ms(double timeout) {
  double ms = timeout * 1e3;
  int whole;
  if (timeout < 0)
    return -1;
  if (ms >= (double)INT_MAX)
    return INT_MAX;
  whole = (int)ms; /* truncation; the library does not need libm's ceil */
  return (double)whole < ms ? whole + 1 : whole;
}

/* Pops and runs `count` handles from the head of the ready queue, skipping
 * cancelled ones.  The lock is dropped around each call. */
static void run_ready(lspec_loop *loop, size_t count) {
  struct lspec__handle *h;
  lspec_callback cb;
  lspec_child_callback ccb;
  void *arg;
  int pid, returncode;

  while (count-- > 0) {
    pthread_mutex_lock(&loop->lock);
    h = ready_pop(loop);
    if (h == NULL) {
      pthread_mutex_unlock(&loop->lock);
      return;
    }
    cb = NULL;
    ccb = NULL;
    arg = NULL;
    pid = returncode = 0;
    if (h->state == LSPEC__H_READY) {
      if (h->id != 0) /* internal posts have no id */
        idmap_remove(&loop->ids, h); /* from now on, cancel ignores it */
      cb = h->cb;
      ccb = h->ccb;
      arg = h->arg;
      pid = h->cpid;
      returncode = h->crc;
    }
    handle_put(loop, h);
    pthread_mutex_unlock(&loop->lock);
    if (ccb != NULL)
      ccb(pid, returncode, arg);
    else if (cb != NULL)
      cb(arg);
  }
}

/* One iteration: CPython's _run_once.  `deadline` (loop time, +inf for
 * none) bounds the wait, for run_until; `nowait` makes the wait a mere
 * look.  Returns LSPEC_OK, or LSPEC_E_OS if the backend failed.
 *
 * Re-entrancy rule.  Callbacks may schedule, cancel, add and remove readers
 * and signal handlers, and stop the loop, while this function walks its
 * lists.  It never walks a list a callback can change; instead it fixes,
 * before the first callback runs, exactly what this iteration will run:
 *   A. the first n_ready handles of the ready queue (what was ready when the
 *      wait returned); callbacks scheduled from now on go behind them and
 *      wait for the next iteration;
 *   B. the descriptors the backend reported, each with the registration id
 *      its reader had then (the `fired` snapshot): a reader removed or
 *      replaced since is skipped, as CPython skips a cancelled reader
 *      Handle; the eventfd's entry runs the signal callbacks;
 *   C. the n_due timers moved from the heap behind the handles of A.
 * A and C re-check each handle's state when its turn comes, so a callback
 * cancelled by an earlier one does not run. */
static int run_once(lspec_loop *loop, double deadline, int nowait) {
  struct lspec__event *ev;
  struct lspec__timer *t;
  struct lspec__fired *f;
  struct lspec__reader *r;
  size_t n_ready, n_due = 0, n_fired = 0, k;
  double timeout, now, end;
  int n, i, ms;

  /* How long may the wait block?  Not at all if something is ready or the
   * loop is stopping; until the first timer or the deadline otherwise. */
  pthread_mutex_lock(&loop->lock);
  if (nowait || loop->nready > 0 || atomic_load(&loop->stopping)) {
    timeout = 0;
  } else if ((t = lspec__heap_top(&loop->timers)) == NULL &&
             !isfinite(deadline)) {
    timeout = -1; /* nothing to wait for but descriptors */
  } else {
    now = monotonic_now();
    timeout = t != NULL ? t->when - now : INFINITY;
    if (deadline - now < timeout)
      timeout = deadline - now;
    if (timeout < 0)
      timeout = 0;
    if (timeout > MAX_SELECT_TIMEOUT)
      timeout = MAX_SELECT_TIMEOUT;
  }
  ms = timeout_ms(timeout);
  loop->sleeping = ms != 0;
  pthread_mutex_unlock(&loop->lock);

  n = loop->backend->ops->wait(loop->backend, ms, &ev);

  pthread_mutex_lock(&loop->lock);
  loop->sleeping = 0;
  loop->wake_pending = 0;
  pthread_mutex_unlock(&loop->lock);
  if (n < 0)
    return lspec__fail_errno(-n, "the %s backend's wait failed",
                             loop->backend->ops->name);

  /* B: the snapshot of what fired, taken before any callback runs. */
  for (i = 0; i < n && n_fired < loop->fired_cap; i++) {
    if (ev[i].fd == loop->wakefd) {
      drain_wakefd(loop);
      loop->fired[n_fired].fd = ev[i].fd;
      loop->fired[n_fired++].reg = 0;
    } else if ((ev[i].events & LSPEC__EV_READ) &&
               (size_t)ev[i].fd < loop->readers_cap &&
               loop->readers[ev[i].fd].reg != 0 &&
               !loop->readers[ev[i].fd].disarmed) {
      /* A one-shot's interest is spent once reported (the poll backend
       * keeps reporting it: the loop does not). */
      loop->readers[ev[i].fd].disarmed = loop->readers[ev[i].fd].oneshot;
      loop->fired[n_fired].fd = ev[i].fd;
      loop->fired[n_fired++].reg = loop->readers[ev[i].fd].reg;
    }
  }

  /* A and C: what is ready now, then the timers that are due (CPython adds
   * its clock's resolution so a timer due "now" is not left for later). */
  pthread_mutex_lock(&loop->lock);
  n_ready = loop->nready;
  end = monotonic_now() + loop->clock_res;
  while ((t = lspec__heap_top(&loop->timers)) != NULL && t->when < end) {
    lspec__heap_pop(&loop->timers);
    ready_push(loop, (struct lspec__handle *)((char *)t -
                                              offsetof(struct lspec__handle,
                                                       timer)));
    n_due++;
  }
  pthread_mutex_unlock(&loop->lock);

  run_ready(loop, n_ready);
  /* loop->fired and loop->readers may move (a callback adding a reader grows
   * them), so they are indexed afresh on every turn. */
  for (k = 0; k < n_fired; k++) {
    f = &loop->fired[k];
    if (f->reg == 0) {
      lspec__signal_dispatch(loop);
      continue;
    }
    r = &loop->readers[f->fd];
    if (r->reg == f->reg)
      r->cb(r->arg);
  }
  run_ready(loop, n_due);
  return LSPEC_OK;
}

/* ------------------------------------------------------------------------ */
/* run_forever, run_until, stop.                                             */
/* ------------------------------------------------------------------------ */

/* Runs iterations until stop() (forever == 1), or until pred(arg) holds,
 * the deadline passes or stop() is called (forever == 0).  The checks are
 * CPython's _check_closed then _check_running.  While it runs the loop holds
 * a reference to itself, as a running Python method holds `self`. */
static int run(lspec_loop *loop, int forever, lspec_predicate pred, void *arg,
               double timeout) {
  double deadline = INFINITY;
  int rc, expected = 0, nowait;

  if ((rc = lspec__loop_check_handle(loop)) ||
      (rc = lspec__loop_check_closed(loop)))
    return rc;
  if (atomic_load(&loop->running))
    return lspec__fail(LSPEC_E_RUNTIME, "This event loop is already running");
  if (running_loop != NULL)
    return lspec__fail(LSPEC_E_RUNTIME, "Cannot run the event loop while "
                                        "another loop is running");
  if (!forever) {
    if (isnan(timeout))
      return lspec__fail(LSPEC_E_VALUE, "run_until: timeout is NaN");
    if (timeout < 0 && pred == NULL)
      return lspec__fail(LSPEC_E_VALUE, "run_until: without a predicate "
                                        "the timeout must not be negative");
    if (timeout >= 0)
      deadline = monotonic_now() + timeout;
  }
  /* Two threads racing to run the same loop: one wins, the other sees it
   * running. */
  if (!atomic_compare_exchange_strong(&loop->running, &expected, 1))
    return lspec__fail(LSPEC_E_RUNTIME, "This event loop is already running");

  lspec__loop_retain(loop);
  running_loop = loop;
  if (LSPEC_PLANTED(LOOP_STOP_001)) /* planted: an earlier stop is lost */
    atomic_store(&loop->stopping, 0);
  /* A predicate that already holds still gets its one iteration, but that
   * iteration does not block: CPython's run_until_complete on a future that
   * is already done behaves the same way. */
  nowait = pred != NULL && pred(arg);
  for (;;) {
    if ((rc = run_once(loop, deadline, nowait)) != LSPEC_OK)
      break;
    if (pred != NULL && pred(arg))
      break; /* rc is LSPEC_OK */
    if (atomic_load(&loop->stopping)) {
      if (!forever)
        rc = lspec__fail(LSPEC_E_RUNTIME,
                         pred ? "Event loop stopped before the predicate "
                                "was satisfied"
                              : "Event loop stopped before the timeout "
                                "elapsed");
      break;
    }
    if (!forever && monotonic_now() >= deadline) {
      if (pred != NULL)
        rc = lspec__fail(LSPEC_E_TIMEOUT,
                         "run_until: the predicate was not satisfied "
                         "within %g seconds", timeout);
      break;
    }
  }
  atomic_store(&loop->stopping, 0);
  running_loop = NULL;
  atomic_store(&loop->running, 0);
  lspec__loop_release(loop);
  return rc;
}

int lspec__loop_run_forever(lspec_loop *loop) {
  return run(loop, 1, NULL, NULL, -1.0);
}

/* run_until(pred, arg, timeout): see run().  pred is checked after each
 * iteration, and once before the first, which then does not block if pred
 * holds already.  Returns LSPEC_OK when pred held after an iteration (or,
 * with pred NULL, when the timeout elapsed),
 * LSPEC_E_TIMEOUT when the deadline passed first, LSPEC_E_RUNTIME when
 * stop() ended the run first; pred is checked first, then stop, then the
 * deadline. */
int lspec__loop_run_until(lspec_loop *loop, lspec_predicate pred, void *arg,
                          double timeout) {
  return run(loop, 0, pred, arg, timeout);
}

/* stop(): the running loop returns after the current iteration; a loop
 * that is not running will run one iteration at its next run.  Not
 * thread-safe, like call_soon: another thread stops a running loop through
 * call_soon_threadsafe.  Stopping a closed loop does nothing harmful. */
int lspec__loop_stop(lspec_loop *loop) {
  int rc;
  if ((rc = lspec__loop_check_handle(loop)) ||
      (rc = lspec__loop_check_thread(loop)))
    return rc;
  atomic_store(&loop->stopping, 1);
  return LSPEC_OK;
}
