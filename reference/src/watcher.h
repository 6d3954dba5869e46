/* watcher.h - what the child watchers' files share and nothing else sees:
 * the watcher object, the internal operations table each kind fills, the
 * table of registered children, and the helpers every kind uses (reaping,
 * returncode conversion, delivery through a loop).
 *
 * Files: watcher.c (the ABI entries: handle checks, reference counting,
 * dispatch to the kind's table, the shared helpers), one file per kind
 * (watcher_threaded.c, watcher_multiloop.c, watcher_safe.c,
 * watcher_fast.c, watcher_pidfd.c; Safe and Fast share watcher_sigchld.c),
 * and subprocess.c (loop_subprocess_exec and the spawner).
 *
 * Threading model: `lock` guards the children table, `loop`, `closed` and
 * the kind's own state.  It is never held while a user callback runs: a
 * callback is taken out of the table under the lock and called after it is
 * released, so callbacks may call back into the watcher.  A callback is
 * delivered exactly once: whoever removes the entry from the table (the
 * reaper, remove_child_handler, close) owns it.
 */
#ifndef LSPEC_REFERENCE_WATCHER_H
#define LSPEC_REFERENCE_WATCHER_H

#include "internal.h"
#include "syscalls.h"

#include <pthread.h>
#include <stddef.h>

/* One registered child handler. */
struct lspec__child {
  int pid;                   /* the child */
  lspec_child_callback cb;   /* the handler */
  void *arg;                 /* its argument */
  lspec_loop *loop;          /* loop to deliver through (a reference), or
                                NULL to call cb synchronously */
  int pidfd;                 /* Pidfd watcher's descriptor, else -1 */
  void *kind_data;           /* per-child state of the kind (a thread) */
  struct lspec__child *next; /* chain in the table, or free list */
};

/* pid -> child, open hashing with chains; entries come from a free list so
 * that registration does not allocate once the watcher is warm. */
struct lspec__children {
  struct lspec__child **buckets; /* power-of-two array of chains */
  size_t mask;                   /* nbuckets - 1, or 0 when empty */
  size_t count;                  /* registered children */
  struct lspec__child *free;     /* recycled entries */
};

struct lspec__watcher_ops {
  int kind;         /* enum lspec_watcher_kind */
  const char *name; /* CPython's class name, for messages */
  /* Each follows the ABI entry of the same name (spec/abi.md, section 8)
   * and the kind's clauses; called with a valid, live watcher handle. */
  int (*add_child_handler)(lspec_watcher *w, int pid, lspec_child_callback cb,
                           void *arg);
  int (*remove_child_handler)(lspec_watcher *w, int pid);
  int (*attach_loop)(lspec_watcher *w, lspec_loop *loop);
  int (*is_active)(lspec_watcher *w);
  int (*close)(lspec_watcher *w);
  int (*enter)(lspec_watcher *w);
  int (*exit)(lspec_watcher *w);
  /* Frees the kind's state; the watcher was closed first. */
  void (*destroy)(lspec_watcher *w);
};

struct lspec_watcher {
  struct lspec__obj hdr;                  /* kind LSPEC__KIND_WATCHER */
  const struct lspec__watcher_ops *ops;   /* the kind's table */
  pthread_mutex_t lock;                   /* see the threading model */
  lspec_loop *loop;                       /* attached loop (a reference) */
  int closed;                             /* close() was called */
  struct lspec__children children;        /* registered handlers */
  void *state;                            /* the kind's own state */
};

/* Each kind's constructor fills w->ops and w->state; 0 or a status. */
LSPEC__HIDDEN int lspec__watcher_threaded_init(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_multiloop_init(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_safe_init(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_fast_init(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_pidfd_init(lspec_watcher *w);

/* --- the children table (watcher.c); called with w->lock held ---------- */

/* The entry for `pid`, or NULL. */
LSPEC__HIDDEN struct lspec__child *lspec__children_find(lspec_watcher *w,
                                                       int pid);
/* Adds an entry for `pid` (which must not be there); NULL when out of
 * memory.  The caller fills cb, arg, loop. */
LSPEC__HIDDEN struct lspec__child *lspec__children_add(lspec_watcher *w,
                                                      int pid);
/* Unlinks the entry for `pid` and returns it (the caller then owns its
 * callback), or NULL. */
LSPEC__HIDDEN struct lspec__child *lspec__children_take(lspec_watcher *w,
                                                       int pid);
/* Returns an entry taken out of the table to the free list, dropping its
 * loop reference.  Called with w->lock held. */
LSPEC__HIDDEN void lspec__children_recycle(lspec_watcher *w,
                                          struct lspec__child *c);

/* --- shared helpers (watcher.c) ------------------------------------------ */

/* CPython's waitstatus_to_exitcode: the exit status, or -signal. */
LSPEC__HIDDEN int lspec__returncode(int status);

/* waitpid(pid, WNOHANG) with EINTR retried.  Returns 1 and the returncode
 * when reaped, 0 when still running, or -errno (-ECHILD: reaped elsewhere or
 * not our child). */
LSPEC__HIDDEN int lspec__reap(int pid, int *returncode);

/* Delivers an exit: through c->loop with call_soon_threadsafe when it is
 * set (a closed loop gets CPython's "Loop %r that handles pid %r is closed"
 * log warning and the callback is dropped), synchronously otherwise.  Takes
 * ownership of `c` (recycles it after the call).  Never called with
 * w->lock held. */
LSPEC__HIDDEN void lspec__child_deliver(lspec_watcher *w,
                                        struct lspec__child *c,
                                        int returncode);

/* The "Unknown child process pid %d, will report returncode 255" warning
 * (Threaded, Safe, MultiLoop) and its 255. */
LSPEC__HIDDEN int lspec__unknown_child(int pid);

#endif /* LSPEC_REFERENCE_WATCHER_H */
