/* loop.h - what the loop's files (loop.c, loop_epoll.c, loop_poll.c,
 * loop_signal.c) share and nothing else sees: the loop object itself, its
 * scheduled handles, the backend interface and the signal hooks.
 *
 * Threading model, in one place:
 *
 *  - `lock` guards the scheduling state: the ready queue, the timer heap, the
 *    id map, the handle pool and the sleeping/wake flags.  Every entry that
 *    touches them takes it, so call_soon_threadsafe and loop_cancel are safe
 *    from any thread, and the others are safe whenever the caller respects
 *    the ABI's rule (not from another thread while the loop runs).  The loop
 *    never holds it while a callback runs or while it blocks in the backend.
 *  - The readers table and the backend belong to whichever thread may call
 *    the non-thread-safe entries: the running thread while the loop runs, any
 *    one thread at a time otherwise.  They need no lock.
 *  - The signal table (`sig`, `nsig`) is shared with other loops, because a
 *    signal moves to the loop that added it last; it is guarded by the
 *    process-wide signal lock in loop_signal.c.
 *  - `running`, `stopping` and `closed` are atomics, read without the lock by
 *    the thread checks and by loop_is_running / loop_is_closed.
 */
#ifndef LSPEC_REFERENCE_LOOP_H
#define LSPEC_REFERENCE_LOOP_H

#include "internal.h"
#include "timer_heap.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* --- backends ------------------------------------------------------------ */

/* Interest and readiness bits the backends understand. */
enum {
  LSPEC__EV_READ = 1,   /* readable, or an error/hang-up a read would report */
  LSPEC__EV_WRITE = 2,  /* writable (no writer entries yet; kept for modify) */
  LSPEC__EV_ONESHOT = 4 /* interest only: report once, then stay disarmed */
};

/* One ready descriptor, as reported by a backend's wait. */
struct lspec__event {
  int fd;          /* the descriptor */
  unsigned events; /* LSPEC__EV_* bits */
};

struct lspec__backend;

/* What a backend does, one file each (loop_epoll.c, loop_poll.c).  Every
 * function returns 0 (or a count) on success and a negative errno on
 * failure, leaving the backend as it was.  The backend owns every array it
 * uses and grows them only in add, never in wait: iterations do not
 * allocate. */
struct lspec__backend_ops {
  const char *name; /* "epoll" or "poll", for messages */
  /* Starts watching `fd` for `events`.  -EEXIST if already watched; the
   * kernel's refusal (EBADF, EPERM for a regular file under epoll) as is. */
  int (*add)(struct lspec__backend *b, int fd, unsigned events);
  /* Changes the interest of a watched `fd`; -ENOENT if it is not watched. */
  int (*modify)(struct lspec__backend *b, int fd, unsigned events);
  /* Stops watching `fd`; -ENOENT if it was not watched.  Works for a
   * descriptor the caller already closed. */
  int (*remove)(struct lspec__backend *b, int fd);
  /* Forgets `fd`, added with LSPEC__EV_ONESHOT and reported since, whose
   * descriptor the caller closes next: the kernel drops a disarmed
   * interest with the last close, so no system call is needed.  Never
   * fails. */
  void (*forget)(struct lspec__backend *b, int fd);
  /* Blocks up to `timeout_ms` (-1: no limit, 0: just look) and points
   * `*events` at the ready descriptors, valid until the next call.  Returns
   * their count; 0 when interrupted by a signal. */
  int (*wait)(struct lspec__backend *b, int timeout_ms,
              struct lspec__event **events);
  /* Frees the backend and closes its descriptors. */
  void (*destroy)(struct lspec__backend *b);
};

/* The common head of every backend object. */
struct lspec__backend {
  const struct lspec__backend_ops *ops; /* the backend's functions */
};

/* Constructors: 0 and a backend in *out, or a negative errno. */
LSPEC__HIDDEN int lspec__backend_epoll_new(struct lspec__backend **out);
LSPEC__HIDDEN int lspec__backend_poll_new(struct lspec__backend **out);

/* --- handles -------------------------------------------------------------- */

/* Where a handle is. */
enum lspec__handle_state {
  LSPEC__H_FREE = 0,     /* in the pool */
  LSPEC__H_READY = 1,    /* in the ready queue, will run */
  LSPEC__H_TIMER = 2,    /* in the timer heap */
  LSPEC__H_CANCELLED = 3 /* in the ready queue, will be skipped */
};

/* A scheduled callback (CPython's Handle / TimerHandle). */
struct lspec__handle {
  struct lspec__timer timer;   /* heap node; seq is the id */
  struct lspec__handle *next;  /* ready queue or pool link */
  lspec_handle_id id;          /* the caller's name for it, never 0 */
  lspec_callback cb;           /* what to run */
  void *arg;                   /* its argument */
  int state;                   /* enum lspec__handle_state */
  /* Internal posts only (lspec__loop_post*, never named by an id): */
  lspec_callback dispose;      /* called with arg if dropped unrun */
  lspec_child_callback ccb;    /* if set, run ccb(cpid, crc, arg) instead */
  int cpid, crc;               /* ccb's pid and returncode */
};

/* A registered reader.  reg == 0 marks an empty slot. */
struct lspec__reader {
  lspec_callback cb; /* what to run while the fd is readable */
  void *arg;         /* its argument */
  uint64_t reg;      /* registration id: changes on every add */
  int oneshot;       /* lspec__loop_add_reader_once: runs at most once */
  int disarmed;      /* a one-shot that fired: its interest is spent */
};

/* A registered signal handler.  cb == NULL marks an empty slot. */
struct lspec__sigslot {
  lspec_callback cb; /* what to run after the signal arrived */
  void *arg;         /* its argument */
};

/* A descriptor the last wait reported, with the registration that was
 * current at that moment (reg 0 = the wake-up eventfd). */
struct lspec__fired {
  int fd;       /* the descriptor */
  uint64_t reg; /* the reader registration to honour, or 0 */
};

/* The open-addressing map from handle id to handle, for loop_cancel. */
struct lspec__idmap {
  struct lspec__handle **slots; /* NULL = empty; size is a power of two */
  size_t mask;                  /* slots - 1, or 0 when nothing allocated */
  size_t count;                 /* occupied slots */
};

/* --- the loop -------------------------------------------------------------- */

struct lspec_loop {
  struct lspec__obj hdr;            /* kind LSPEC__KIND_LOOP, refs */
  int backend_kind;                 /* LSPEC_BACKEND_EPOLL or _POLL */
  struct lspec__backend *backend;   /* NULL once closed */
  int wakefd;                       /* eventfd, -1 once closed */
  double clock_res;                 /* CLOCK_MONOTONIC's resolution */
  atomic_int running;               /* inside run_forever / run_until */
  atomic_int stopping;              /* stop() was called */
  atomic_int closed;                /* close() was called */

  /* Scheduling state, under `lock`. */
  pthread_mutex_t lock;             /* see the threading model above */
  struct lspec__handle *ready_head; /* FIFO of handles to run */
  struct lspec__handle *ready_tail; /* its last element */
  size_t nready;                    /* its length, cancelled ones included */
  struct lspec__timer_heap timers;  /* call_later handles */
  struct lspec__idmap ids;          /* id -> handle, for cancel */
  struct lspec__handle *pool;       /* free handles, reused */
  size_t npool;                     /* their number */
  uint64_t next_id;                 /* last id handed out */
  int sleeping;                     /* blocked (or about to) in wait */
  int wake_pending;                 /* the eventfd was written since */

  /* Readers, owned by the loop's thread (see above). */
  struct lspec__reader *readers;    /* indexed by fd */
  size_t readers_cap;               /* entries in readers */
  size_t nreaders;                  /* registered readers */
  uint64_t next_reg;                /* last registration id handed out */
  struct lspec__fired *fired;       /* the current iteration's events */
  size_t fired_cap;                 /* entries in fired */

  /* Signals, under the process-wide signal lock (loop_signal.c). */
  struct lspec__sigslot sig[NSIG];  /* this loop's handlers */
  atomic_int nsig;                  /* handlers in sig[], read unlocked */
};

/* --- helpers shared by the loop's files ------------------------------------ */

/* Checks that `h` is a loop handle: LSPEC_OK or LSPEC_E_TYPE. */
LSPEC__HIDDEN int lspec__loop_check_handle(const void *h);

/* CPython's debug-mode _check_thread: LSPEC_E_RUNTIME when the loop runs in
 * another thread, LSPEC_OK otherwise. */
LSPEC__HIDDEN int lspec__loop_check_thread(lspec_loop *loop);

/* Checks that the loop is not closed: LSPEC_OK or LSPEC_E_RUNTIME. */
LSPEC__HIDDEN int lspec__loop_check_closed(lspec_loop *loop);

/* --- signals (loop_signal.c) -------------------------------------------- */

/* Removes every signal handler of `loop`, restoring SIG_DFL for the signals
 * it owns, and waits until no signal handler can still write to its eventfd.
 * Called by close before the eventfd is closed. */
LSPEC__HIDDEN void lspec__signal_close_loop(lspec_loop *loop);

/* Runs, in the loop's thread, the callbacks of the signals that arrived for
 * `loop` since the last call: one call per delivery. */
LSPEC__HIDDEN void lspec__signal_dispatch(lspec_loop *loop);

/* In a fork's child (single-threaded): makes the signal lock usable again
 * and, from profile 3.12, stops signal handlers from writing to eventfds
 * the child shares with its parent (CPython's set_wakeup_fd(-1)). */
LSPEC__HIDDEN void lspec__signal_after_fork_child(void);

#endif /* LSPEC_REFERENCE_LOOP_H */
