/* internal.h - what the reference's files share and nothing outside sees.
 *
 * Naming: lspec_ for the one exported symbol (lspec_impl_v1), lspec__ for
 * internal non-static symbols (hidden visibility: the libraries export only
 * the entry symbol), plain names for static helpers.
 */
#ifndef LSPEC_REFERENCE_INTERNAL_H
#define LSPEC_REFERENCE_INTERNAL_H

#include <loopspec/abi.h>
#include <stdatomic.h>
#include <stdint.h>

#include "plant.h" /* negative controls: LSPEC_PLANTED(NAME) */

#define LSPEC__HIDDEN __attribute__((visibility("hidden")))
#define LSPEC__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LSPEC__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Every handle starts with this header, so any handle the caller passes can
 * be checked for its kind ("wrong type" errors) before it is used. */
enum lspec__kind {
  LSPEC__KIND_POLICY = 0x4c53504f,  /* "LSPO" */
  LSPEC__KIND_LOOP = 0x4c534c50,    /* "LSLP" */
  LSPEC__KIND_WATCHER = 0x4c535743, /* "LSWC" */
  LSPEC__KIND_DEAD = 0x64656164     /* freed: catches use after release */
};

struct lspec__obj {
  uint32_t kind;           /* enum lspec__kind */
  atomic_uint refs;        /* reference count; the object dies at 0 */
};

/* Kind of a handle, or 0 for NULL. */
static inline uint32_t lspec__kind_of(const void *h) {
  return h ? ((const struct lspec__obj *)h)->kind : 0;
}

/* Drops one reference; 1 when it was the last.  The atomic RMW orders every
 * access the other holders made before their release ahead of the last
 * release's clean-up; valgrind's DRD does not read atomics that way, so
 * debug builds say it with its annotations (no-ops outside valgrind). */
#if defined(LSPEC_VALGRIND_ANNOTATIONS)
#include <valgrind/drd.h>
#define LSPEC__HAPPENS_BEFORE(addr) ANNOTATE_HAPPENS_BEFORE(addr)
#define LSPEC__HAPPENS_AFTER(addr) ANNOTATE_HAPPENS_AFTER(addr)
#else
#define LSPEC__HAPPENS_BEFORE(addr) ((void)(addr))
#define LSPEC__HAPPENS_AFTER(addr) ((void)(addr))
#endif
static inline int lspec__unref(struct lspec__obj *o) {
  LSPEC__HAPPENS_BEFORE(&o->refs);
  if (atomic_fetch_sub(&o->refs, 1) != 1)
    return 0;
  LSPEC__HAPPENS_AFTER(&o->refs);
  return 1;
}

/* --- errors (impl.c) ---------------------------------------------------- */

/* Records `fmt` as this thread's last error message and returns `status`. */
LSPEC__HIDDEN int lspec__fail(int status, const char *fmt, ...)
    LSPEC__PRINTF(2, 3);
/* Records an OSError with errno `err` (message gets strerror) and returns
 * LSPEC_E_OS. */
LSPEC__HIDDEN int lspec__fail_errno(int err, const char *fmt, ...)
    LSPEC__PRINTF(2, 3);
/* Maps an allocation failure to LSPEC_E_NOMEM with a message. */
LSPEC__HIDDEN int lspec__fail_nomem(const char *what);

/* --- warnings (impl.c) -------------------------------------------------- */

/* Delivers a warning to the hook, if one is installed.  Thread-safe. */
LSPEC__HIDDEN void lspec__warn(int category, const char *fmt, ...)
    LSPEC__PRINTF(2, 3);

/* While `on`, warnings of `category` emitted by the calling thread are not
 * delivered (CPython's catch_warnings + simplefilter('ignore', ...) around a
 * call).  Calls nest. */
LSPEC__HIDDEN void lspec__warn_suppress(int category, int on);

/* Warnings held back by one thread until it is done with an object that a
 * hook might free: between lspec__warn_defer_begin(buf) and
 * lspec__warn_defer_end(buf), the calling thread's warnings are stored in
 * `buf` (the first LSPEC__WARN_DEFER_MAX; later ones are counted and
 * reported as one summary), and defer_end delivers them in order.  The
 * buffer belongs to the caller (no allocation). */
#define LSPEC__WARN_DEFER_MAX 4
struct lspec__warn_buf {
  int n;                                   /* stored */
  int dropped;                             /* not stored: counted */
  int category[LSPEC__WARN_DEFER_MAX];     /* their categories */
  char text[LSPEC__WARN_DEFER_MAX][256];   /* their texts */
};
LSPEC__HIDDEN void lspec__warn_defer_begin(struct lspec__warn_buf *buf);
LSPEC__HIDDEN void lspec__warn_defer_end(struct lspec__warn_buf *buf);

/* --- profile and threads (impl.c) -------------------------------------- */

/* The profile in force; the first call freezes it (set_profile then fails). */
LSPEC__HIDDEN int lspec__profile(void);
/* True when the calling thread is the process's main (initial) thread. */
LSPEC__HIDDEN int lspec__is_main_thread(void);

/* --- loops (loop.c and its backends) ----------------------------------- */

/* Entries with the table's signatures; see abi.h and spec/abi.md. */
LSPEC__HIDDEN int lspec__loop_new(int backend, lspec_loop **out);
LSPEC__HIDDEN int lspec__loop_run_forever(lspec_loop *loop);
LSPEC__HIDDEN int lspec__loop_run_until(lspec_loop *loop, lspec_predicate pred,
                                        void *arg, double timeout);
LSPEC__HIDDEN int lspec__loop_stop(lspec_loop *loop);
LSPEC__HIDDEN int lspec__loop_close(lspec_loop *loop);
LSPEC__HIDDEN int lspec__loop_is_running(lspec_loop *loop);
LSPEC__HIDDEN int lspec__loop_is_closed(lspec_loop *loop);
LSPEC__HIDDEN double lspec__loop_time(lspec_loop *loop);
LSPEC__HIDDEN int lspec__loop_call_soon(lspec_loop *loop, lspec_callback cb,
                                        void *arg, lspec_handle_id *out);
LSPEC__HIDDEN int lspec__loop_call_soon_threadsafe(lspec_loop *loop,
                                                   lspec_callback cb,
                                                   void *arg,
                                                   lspec_handle_id *out);
/* Internal posts, callable from any thread (call_soon_threadsafe without an
 * id: loop_cancel cannot reach them).  lspec__loop_post runs cb(arg); when
 * the loop is closed before it runs, dispose(arg) is called instead (if not
 * NULL), by the thread that closes it, so what arg holds is given back.
 * A post whose dispose function takes a lock or releases a reference must
 * hold a reference to the loop until it runs or is disposed of: then a
 * loop's last release (which closes it if needed) never finds one queued,
 * and such a dispose never runs inside a release made under some other
 * lock.  A post whose dispose only frees memory need not (subprocess.c's
 * exit trampolines): a loop its user abandons with one queued is then
 * freed, and disposes of it, at its last release.
 * lspec__loop_post_child runs ccb(pid, returncode, arg) and needs no
 * allocation beyond the loop's pooled handle: the child-exit hot path. */
/* Takes a reference unless the loop is already at its last release (its
 * count at zero: being freed).  1 if taken, 0 if not. */
LSPEC__HIDDEN int lspec__loop_tryretain(lspec_loop *loop);
/* subprocess.c: forgets (frees) the exit trampolines of children spawned
 * from `loop`, which is being closed.  Called by the loop's close. */
LSPEC__HIDDEN void lspec__subprocess_loop_closed(lspec_loop *loop);
/* subprocess.c: takes / gives back the exit registry's lock around fork();
 * called by the policy's fork handlers, which order every lock. */
LSPEC__HIDDEN void lspec__subprocess_fork_prepare(void);
LSPEC__HIDDEN void lspec__subprocess_fork_release(void);
LSPEC__HIDDEN int lspec__loop_post(lspec_loop *loop, lspec_callback cb,
                                   void *arg, lspec_callback dispose);
LSPEC__HIDDEN int lspec__loop_post_child(lspec_loop *loop,
                                         lspec_child_callback ccb, void *arg,
                                         int pid, int returncode);
LSPEC__HIDDEN int lspec__loop_call_later(lspec_loop *loop, double delay,
                                         lspec_callback cb, void *arg,
                                         lspec_handle_id *out);
LSPEC__HIDDEN int lspec__loop_cancel(lspec_loop *loop, lspec_handle_id id);
LSPEC__HIDDEN int lspec__loop_add_reader(lspec_loop *loop, int fd,
                                         lspec_callback cb, void *arg);
LSPEC__HIDDEN int lspec__loop_remove_reader(lspec_loop *loop, int fd);
/* A reader that runs at most once (the backend's interest is one-shot:
 * EPOLLONESHOT), for a descriptor that stays readable once it is, such as
 * a pidfd.  Same checks and errors as add_reader; fd must not have a
 * reader already (EEXIST). */
LSPEC__HIDDEN int lspec__loop_add_reader_once(lspec_loop *loop, int fd,
                                              lspec_callback cb, void *arg);
/* Removes the reader of fd, which the caller closes right after: a
 * one-shot reader that has run is dropped without a system call.  Same
 * answers as remove_reader. */
LSPEC__HIDDEN int lspec__loop_remove_reader_closing(lspec_loop *loop,
                                                    int fd);
LSPEC__HIDDEN int lspec__loop_add_signal_handler(lspec_loop *loop, int sig,
                                                 lspec_callback cb,
                                                 void *arg);
LSPEC__HIDDEN int lspec__loop_remove_signal_handler(lspec_loop *loop, int sig);
LSPEC__HIDDEN void lspec__loop_retain(lspec_loop *loop);
LSPEC__HIDDEN void lspec__loop_release(lspec_loop *loop);
/* The loop running in the calling thread (borrowed), or NULL. */
LSPEC__HIDDEN lspec_loop *lspec__loop_running(void);
/* In a fork's child: the forking thread no longer has a running loop. */
LSPEC__HIDDEN void lspec__loop_after_fork_child(void);

/* --- policies (policy.c) ----------------------------------------------- */

LSPEC__HIDDEN int lspec__get_event_loop_policy(lspec_policy **out);
LSPEC__HIDDEN int lspec__set_event_loop_policy(lspec_policy *policy);
LSPEC__HIDDEN int lspec__get_event_loop(lspec_loop **out);
LSPEC__HIDDEN int lspec__get_running_loop(lspec_loop **out);
LSPEC__HIDDEN int lspec__set_event_loop(lspec_loop *loop);
LSPEC__HIDDEN int lspec__new_event_loop(lspec_loop **out);
LSPEC__HIDDEN int lspec__get_child_watcher(lspec_watcher **out);
LSPEC__HIDDEN int lspec__set_child_watcher(lspec_watcher *watcher);
LSPEC__HIDDEN int lspec__policy_new_default(lspec_policy **out);
LSPEC__HIDDEN int lspec__policy_new_windows_selector(lspec_policy **out);
LSPEC__HIDDEN int lspec__policy_new_windows_proactor(lspec_policy **out);
LSPEC__HIDDEN int lspec__policy_new_custom(int base,
                                           const struct lspec_policy_methods *m,
                                           void *user, lspec_policy **out);
LSPEC__HIDDEN int lspec__policy_get_event_loop(lspec_policy *p,
                                               lspec_loop **out);
LSPEC__HIDDEN int lspec__policy_set_event_loop(lspec_policy *p,
                                               lspec_loop *loop);
LSPEC__HIDDEN int lspec__policy_new_event_loop(lspec_policy *p,
                                               lspec_loop **out);
LSPEC__HIDDEN int lspec__policy_get_child_watcher(lspec_policy *p,
                                                  lspec_watcher **out);
LSPEC__HIDDEN int lspec__policy_set_child_watcher(lspec_policy *p,
                                                  lspec_watcher *w);
LSPEC__HIDDEN int lspec__policy_super_get_event_loop(lspec_policy *self,
                                                     lspec_loop **out);
LSPEC__HIDDEN int lspec__policy_super_set_event_loop(lspec_policy *self,
                                                     lspec_loop *loop);
LSPEC__HIDDEN int lspec__policy_super_new_event_loop(lspec_policy *self,
                                                     lspec_loop **out);
LSPEC__HIDDEN int lspec__policy_super_get_child_watcher(lspec_policy *self,
                                                        lspec_watcher **out);
LSPEC__HIDDEN int lspec__policy_super_set_child_watcher(lspec_policy *self,
                                                        lspec_watcher *w);
LSPEC__HIDDEN void lspec__policy_retain(lspec_policy *p);
LSPEC__HIDDEN void lspec__policy_release(lspec_policy *p);

/* --- watchers and subprocesses (watcher.c) ----------------------------- */

LSPEC__HIDDEN int lspec__watcher_new(int kind, lspec_watcher **out);
LSPEC__HIDDEN int lspec__watcher_kind(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_add_child_handler(lspec_watcher *w, int pid,
                                                   lspec_child_callback cb,
                                                   void *arg);
LSPEC__HIDDEN int lspec__watcher_remove_child_handler(lspec_watcher *w,
                                                      int pid);
LSPEC__HIDDEN int lspec__watcher_attach_loop(lspec_watcher *w,
                                             lspec_loop *loop);
LSPEC__HIDDEN int lspec__watcher_is_active(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_close(lspec_watcher *w);
LSPEC__HIDDEN int lspec__watcher_enter(lspec_watcher *w, lspec_watcher **out);
LSPEC__HIDDEN int lspec__watcher_exit(lspec_watcher *w);
LSPEC__HIDDEN void lspec__watcher_retain(lspec_watcher *w);
LSPEC__HIDDEN void lspec__watcher_release(lspec_watcher *w);
LSPEC__HIDDEN int lspec__loop_subprocess_exec(lspec_loop *loop,
                                              const char *const *argv,
                                              lspec_child_callback cb,
                                              void *arg, int *pid);

#endif /* LSPEC_REFERENCE_INTERNAL_H */
