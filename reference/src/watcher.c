/* watcher.c - the child watchers' core: the ABI entries lspec__watcher_*
 * (handle checks, reference counting, dispatch to the kind's table), the
 * table of registered children, and the helpers every kind shares (reaping,
 * returncode conversion, delivery through a loop, the "unknown child"
 * warning).  Each kind lives in its own file (watcher_<kind>.c, see
 * watcher.h); loop_subprocess_exec lives in subprocess.c.
 *
 * A kind without an implementation here (NATIVE) answers
 * LSPEC_E_UNSUPPORTED.
 *
 * Division order: handle checks, the children table, shared helpers,
 * the ABI entries.
 */
#define _GNU_SOURCE 1
#include "watcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------------ */
/* Handle checks.                                                            */
/* ------------------------------------------------------------------------ */

/* LSPEC_OK when `h` is a live watcher handle, LSPEC_E_TYPE otherwise (NULL,
 * another kind of handle, or a released watcher). */
static int check_watcher(const void *h) {
  uint32_t kind = lspec__kind_of(h);
  if (kind == LSPEC__KIND_WATCHER)
    return LSPEC_OK;
  return lspec__fail(LSPEC_E_TYPE, "expected a child watcher handle, got %s",
                     h == NULL                  ? "NULL"
                     : kind == LSPEC__KIND_DEAD ? "a released watcher"
                                                : "a handle of another kind");
}

/* The constructor of each kind; NULL for a kind the reference does not
 * offer.  Indexed by enum lspec_watcher_kind. */
typedef int (*kind_init_fn)(lspec_watcher *w);
static const kind_init_fn kind_inits[] = {
    [LSPEC_WATCHER_THREADED] = lspec__watcher_threaded_init,
    [LSPEC_WATCHER_MULTILOOP] = lspec__watcher_multiloop_init,
    [LSPEC_WATCHER_SAFE] = lspec__watcher_safe_init,
    [LSPEC_WATCHER_FAST] = lspec__watcher_fast_init,
    [LSPEC_WATCHER_PIDFD] = lspec__watcher_pidfd_init,
    [LSPEC_WATCHER_NATIVE] = NULL, /* the reference has no native mechanism */
};

static const char *const kind_names[] = {
    [LSPEC_WATCHER_THREADED] = "ThreadedChildWatcher",
    [LSPEC_WATCHER_MULTILOOP] = "MultiLoopChildWatcher",
    [LSPEC_WATCHER_SAFE] = "SafeChildWatcher",
    [LSPEC_WATCHER_FAST] = "FastChildWatcher",
    [LSPEC_WATCHER_PIDFD] = "PidfdChildWatcher",
    [LSPEC_WATCHER_NATIVE] = "a native child watcher",
};

/* ------------------------------------------------------------------------ */
/* The children table.  Open hashing with chains; every function here is    */
/* called with w->lock held.                                                 */
/* ------------------------------------------------------------------------ */

#define CHILDREN_MIN_BUCKETS 16

static size_t pid_hash(int pid) {
  /* Fibonacci hashing: consecutive pids spread over the buckets. */
  return (size_t)(((uint32_t)pid * UINT32_C(2654435769)) >> 8);
}

struct lspec__child *lspec__children_find(lspec_watcher *w, int pid) {
  struct lspec__children *t = &w->children;
  struct lspec__child *c;

  if (t->buckets == NULL)
    return NULL;
  for (c = t->buckets[pid_hash(pid) & t->mask]; c != NULL; c = c->next)
    if (c->pid == pid)
      return c;
  return NULL;
}

/* Doubles the bucket array (or makes the first one).  0 or -ENOMEM; the
 * table is unchanged on failure. */
static int children_grow(struct lspec__children *t) {
  size_t n = t->buckets ? (t->mask + 1) * 2 : CHILDREN_MIN_BUCKETS, i;
  struct lspec__child **b = calloc(n, sizeof *b), *c, *next;

  if (b == NULL)
    return -ENOMEM;
  if (t->buckets != NULL) {
    for (i = 0; i <= t->mask; i++)
      for (c = t->buckets[i]; c != NULL; c = next) {
        next = c->next;
        c->next = b[pid_hash(c->pid) & (n - 1)];
        b[pid_hash(c->pid) & (n - 1)] = c;
      }
    free(t->buckets);
  }
  t->buckets = b;
  t->mask = n - 1;
  return 0;
}

struct lspec__child *lspec__children_add(lspec_watcher *w, int pid) {
  struct lspec__children *t = &w->children;
  struct lspec__child *c;
  size_t i;

  /* Load factor at most one: grow before the count passes the buckets.  A
   * failed growth is not fatal once some buckets exist (chains just get
   * longer). */
  if ((t->buckets == NULL || t->count >= t->mask + 1) &&
      children_grow(t) != 0 && t->buckets == NULL)
    return NULL;
  if (t->free != NULL) {
    c = t->free;
    t->free = c->next;
  } else if ((c = malloc(sizeof *c)) == NULL) {
    return NULL;
  }
  memset(c, 0, sizeof *c);
  c->pid = pid;
  c->pidfd = -1;
  i = pid_hash(pid) & t->mask;
  c->next = t->buckets[i];
  t->buckets[i] = c;
  t->count++;
  return c;
}

struct lspec__child *lspec__children_take(lspec_watcher *w, int pid) {
  struct lspec__children *t = &w->children;
  struct lspec__child **link, *c;

  if (t->buckets == NULL)
    return NULL;
  for (link = &t->buckets[pid_hash(pid) & t->mask]; (c = *link) != NULL;
       link = &c->next)
    if (c->pid == pid) {
      *link = c->next;
      c->next = NULL;
      t->count--;
      return c;
    }
  return NULL;
}

void lspec__children_recycle(lspec_watcher *w, struct lspec__child *c) {
  if (c->loop != NULL)
    lspec__loop_release(c->loop);
  c->loop = NULL;
  c->cb = NULL;
  c->arg = NULL;
  c->kind_data = NULL;
  c->next = w->children.free;
  w->children.free = c;
}

/* Frees the table: entries still registered (their loop references
 * dropped, their callbacks never called) and the free list.  Only at
 * destruction, when no other thread can reach the watcher. */
static void children_free(lspec_watcher *w) {
  struct lspec__children *t = &w->children;
  struct lspec__child *c, *next;
  size_t i;

  if (t->buckets != NULL)
    for (i = 0; i <= t->mask; i++)
      for (c = t->buckets[i]; c != NULL; c = next) {
        next = c->next;
        if (c->loop != NULL)
          lspec__loop_release(c->loop);
        free(c);
      }
  for (c = t->free; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  free(t->buckets);
  memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------ */
/* Shared helpers.                                                           */
/* ------------------------------------------------------------------------ */

int lspec__returncode(int status) {
  /* os.waitstatus_to_exitcode, and 3.8-3.9's _compute_returncode: an
   * unknown status (stopped, continued) is passed through unchanged. */
  if (WIFSIGNALED(status)) /* planted: the shell's 128 + signal */
    return LSPEC_PLANTED(CW_RC_001) ? 128 + WTERMSIG(status) : -WTERMSIG(status);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return status;
}

int lspec__reap(int pid, int *returncode) {
  int status = 0, r;

  do
    r = lspec__sys.waitpid(pid, &status, WNOHANG);
  while (r == -EINTR);
  if (r < 0)
    return r;
  if (r == 0)
    return 0;
  if (returncode != NULL)
    *returncode = lspec__returncode(status);
  return 1;
}

int lspec__unknown_child(int pid) {
  lspec__warn(LSPEC_WARN_LOG_WARNING,
              "Unknown child process pid %d, will report returncode 255", pid);
  return 255;
}

/* CPython's warning when the loop of a handler is closed (Threaded's
 * _do_waitpid, MultiLoop's _do_waitpid). */
static void warn_closed_loop(int pid) {
  lspec__warn(LSPEC_WARN_LOG_WARNING,
              "Loop <_UnixSelectorEventLoop running=False closed=True "
              "debug=False> that handles pid %d is closed",
              pid);
}

void lspec__child_deliver(lspec_watcher *w, struct lspec__child *c,
                          int returncode) {
  lspec_child_callback cb = c->cb;
  void *arg = c->arg;
  lspec_loop *loop = c->loop;
  int pid = c->pid;
  int rc;

  /* The entry goes back to the free list first; its loop reference moves to
   * this function and is dropped at the end. */
  c->loop = NULL;
  pthread_mutex_lock(&w->lock);
  lspec__children_recycle(w, c);
  pthread_mutex_unlock(&w->lock);

  if (cb == NULL) {
    /* Nothing registered: a handler removed while the child ran. */
  } else if (loop == NULL) {
    cb(pid, returncode, arg);
  } else if (lspec__loop_is_closed(loop) == 1) {
    warn_closed_loop(pid);
  } else if ((rc = lspec__loop_post_child(loop, cb, arg, pid, returncode)) ==
             LSPEC_E_NOMEM) {
    /* The exit cannot be queued; say so rather than lose it silently. */
    lspec__warn(LSPEC_WARN_LOG_ERROR,
                "out of memory: the exit of pid %d (returncode %d) cannot "
                "be delivered",
                pid, returncode);
  } else if (rc != LSPEC_OK) {
    warn_closed_loop(pid); /* closed between the check and the post */
  }
  /* Posted, the exit travels in the loop's pooled handle (no allocation);
   * a loop closed before running it drops it, as CPython's would. */
  if (loop != NULL)
    lspec__loop_release(loop);
}

/* ------------------------------------------------------------------------ */
/* The ABI entries.                                                          */
/* ------------------------------------------------------------------------ */

int lspec__watcher_new(int kind, lspec_watcher **out) {
  lspec_watcher *w;
  int rc;

  if (out == NULL)
    return lspec__fail(LSPEC_E_VALUE, "watcher_new: out is NULL");
  *out = NULL;
  if (kind < LSPEC_WATCHER_THREADED || kind > LSPEC_WATCHER_NATIVE)
    return lspec__fail(LSPEC_E_VALUE, "unknown watcher kind %d", kind);
  if (kind_inits[kind] == NULL)
    return lspec__fail(LSPEC_E_UNSUPPORTED,
                       "watcher_new: the reference offers no %s: it "
                       "implements asyncio's five watchers",
                       kind_names[kind]);

  if ((w = calloc(1, sizeof *w)) == NULL)
    return lspec__fail_nomem("a child watcher");
  w->hdr.kind = LSPEC__KIND_WATCHER;
  atomic_init(&w->hdr.refs, 1);
  pthread_mutex_init(&w->lock, NULL);
  if ((rc = kind_inits[kind](w)) != LSPEC_OK) {
    children_free(w);
    pthread_mutex_destroy(&w->lock);
    w->hdr.kind = LSPEC__KIND_DEAD;
    free(w);
    return rc;
  }
  *out = w;
  return LSPEC_OK;
}

int lspec__watcher_kind(lspec_watcher *w) {
  int rc = check_watcher(w);
  return rc ? rc : w->ops->kind;
}

int lspec__watcher_add_child_handler(lspec_watcher *w, int pid,
                                     lspec_child_callback cb, void *arg) {
  int rc = check_watcher(w);

  if (rc)
    return rc;
  if (cb == NULL)
    return lspec__fail(LSPEC_E_TYPE, "add_child_handler: callback is NULL");
  if (pid <= 0)
    return lspec__fail(LSPEC_E_VALUE,
                       "add_child_handler: pid must be positive, got %d", pid);
  return w->ops->add_child_handler(w, pid, cb, arg);
}

int lspec__watcher_remove_child_handler(lspec_watcher *w, int pid) {
  int rc = check_watcher(w);
  return rc ? rc : w->ops->remove_child_handler(w, pid);
}

/* The loop argument is the kind's to check: Threaded accepts anything. */
int lspec__watcher_attach_loop(lspec_watcher *w, lspec_loop *loop) {
  int rc = check_watcher(w);
  return rc ? rc : w->ops->attach_loop(w, loop);
}

int lspec__watcher_is_active(lspec_watcher *w) {
  int rc = check_watcher(w);
  return rc ? rc : w->ops->is_active(w);
}

/* close: the kind releases what it holds; twice is harmless (every kind's
 * close is idempotent).  `closed` is set once the kind's close returned. */
int lspec__watcher_close(lspec_watcher *w) {
  int rc = check_watcher(w);

  if (rc != LSPEC_OK)
    return rc;
  /* The 3.12 page marks close() deprecated (CPython itself does not warn:
   * conflict C11); the reference follows the page. */
  if (lspec__profile() >= LSPEC_PROFILE_3_12)
    lspec__warn(LSPEC_WARN_DEPRECATION,
                "%s.close() is deprecated as of Python 3.12 and will be "
                "removed in Python 3.14.",
                w->ops->name);
  if ((rc = w->ops->close(w)) != LSPEC_OK)
    return rc;
  pthread_mutex_lock(&w->lock);
  w->closed = 1;
  pthread_mutex_unlock(&w->lock);
  return LSPEC_OK;
}

/* __enter__ returns self in every concrete watcher: a new reference. */
int lspec__watcher_enter(lspec_watcher *w, lspec_watcher **out) {
  int rc;

  if (out != NULL)
    *out = NULL;
  if ((rc = check_watcher(w)) != LSPEC_OK)
    return rc;
  if (out == NULL)
    return lspec__fail(LSPEC_E_VALUE, "watcher_enter: out is NULL");
  if (w->ops->enter != NULL && (rc = w->ops->enter(w)) != LSPEC_OK)
    return rc;
  lspec__watcher_retain(w);
  *out = w;
  return LSPEC_OK;
}

int lspec__watcher_exit(lspec_watcher *w) {
  int rc = check_watcher(w);
  if (rc || w->ops->exit == NULL)
    return rc;
  return w->ops->exit(w);
}

void lspec__watcher_retain(lspec_watcher *w) {
  if (lspec__kind_of(w) == LSPEC__KIND_WATCHER)
    atomic_fetch_add(&w->hdr.refs, 1);
}

/* The last release closes (again: close is idempotent, and a watcher used
 * after an earlier close may hold resources anew), lets the kind free its
 * state, and frees the watcher.  Nothing of the kind may run afterwards:
 * each kind's close stops its threads and handlers before returning. */
void lspec__watcher_release(lspec_watcher *w) {
  if (lspec__kind_of(w) != LSPEC__KIND_WATCHER)
    return;
  if (!lspec__unref(&w->hdr))
    return;
  w->ops->close(w);
  w->closed = 1;
  if (w->ops->destroy != NULL)
    w->ops->destroy(w);
  children_free(w);
  if (w->loop != NULL)
    lspec__loop_release(w->loop);
  w->loop = NULL;
  pthread_mutex_destroy(&w->lock);
  w->hdr.kind = LSPEC__KIND_DEAD;
  free(w);
}
