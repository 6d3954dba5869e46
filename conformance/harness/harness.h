/* harness.h - what every conformance test uses: the per-test lifecycle
 * (loading the implementation, the profile, the warnings hook, the leak
 * baseline, the early-exit guard), checks that name statuses and carry the
 * implementation's last_error(), handle tracking and clean-up, counters,
 * traces, spy policies, and running steps in a thread or inside a loop.
 *
 * Compiled only into loopspec-conform, inside Criterion's workers.  Generated
 * tests (conformance/gen) and hand-written ones (conformance/cases, through
 * LH_TEST) share one lifecycle:
 *
 *   lh_begin(suite, name)   load, profile, hook, registry gate, baseline
 *   ... the test ...
 *   lh_end()                clean up what the harness saw, then check that
 *                           no fd, thread or zombie was left behind
 *
 * Hard and soft checks.  Every lh_check* / lh_expect* returns 1 when the
 * check held.  In the test's own thread a failed check is a Criterion
 * assertion failure and does not return.  In a thread started by
 * lh_run_in_thread, and inside a block run by lh_run_in_loop, Criterion must
 * not be called: the failure is recorded, the function returns 0 and the
 * caller is expected to return at once; the test's thread reports it when
 * the block ends.  So write checks as `if (!lh_check...(...)) return;`
 * wherever they may run soft.
 */
#ifndef LSPEC_CONFORM_HARNESS_H
#define LSPEC_CONFORM_HARNESS_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <loopspec/abi.h>
#include <stdatomic.h>
#include <stddef.h>

#include "names.h"
#include "registry.h"

#if defined(__has_include)
#if __has_include("lh_cases_meta.h")
#include "lh_cases_meta.h" /* generated: LH_META_TIMEOUT_<suite>_<name> */
#endif
#endif

#define LH_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* The implementation under test, set by lh_begin(). */
extern const struct lspec_impl *lh_impl;

/* --- lifecycle ------------------------------------------------------------ */

/* Per-test set-up in the Criterion worker.  Skips the test (cr_skip,
 * "UNSUPPORTED: ..." or "NOT APPLICABLE: ...") when the implementation lacks
 * a capability the test needs, the profile in force is outside the test's
 * range, or the custom_child_watchers value differs from the one required. */
void lh_begin(const char *suite, const char *name);
/* End-of-test clean-up and leak checks.  Must be reached for a pass. */
void lh_end(void);
/* Criterion .fini: runs after a failed assertion too. */
void lh_fini(void);

/* The registry entry of the running test (NULL before lh_begin). */
const struct lh_test *lh_current_test(void);
/* LSPEC_CONFORM_FOLLOW: "doc" (default) or "cpython". */
const char *lh_follow(void);
/* The profile in force, LSPEC_PROFILE(3, N). */
int lh_profile(void);

/* Hand-written tests: a Criterion Test with the harness's prologue and
 * epilogue.  The timeout comes from the test's metadata tag, through the
 * generated lh_cases_meta.h. */
#define LH_TEST(suite, name)                                                   \
  static void lh_body_##suite##_##name(void);                                  \
  Test(suite, name, .timeout = LH_META_TIMEOUT_##suite##_##name,               \
       .fini = lh_fini) {                                                      \
    lh_begin(#suite, #name);                                                   \
    lh_body_##suite##_##name();                                                \
    lh_end();                                                                  \
  }                                                                            \
  static void lh_body_##suite##_##name(void)

/* --- statuses -------------------------------------------------------------- */

/* Pass as `want` to accept any failure status. */
#define LH_ANY_ERROR 1

/* The names of statuses, capabilities, warning categories, ...: names.h
 * (lh_status_name(), lh_status_class(), lh_cap_name(), lh_warning_name()). */

/* --- checks (hard in the test thread, soft in blocks; see above) -------- */

/* rc must be `want` (LSPEC_OK, a code, or LH_ANY_ERROR); when `substr` is
 * not NULL, last_error() must contain it. */
int lh_expect(int rc, int want, const char *substr, const char *what);
/* The same for an entry with an out parameter: `handle` is what it gave.
 * A non-NULL handle is tracked (kind: LH_POLICY, LH_LOOP, LH_WATCHER)
 * whatever the outcome; on success it must be non-NULL, on failure NULL. */
int lh_expect_out(int rc, int want, const char *substr, int kind, void *handle,
                  const char *what);
int lh_check_int(long got, long want, const char *expr, const char *what);
int lh_check_same(const void *a, const void *b, int want_same,
                  const char *what);
int lh_check_null(const void *a, int want_null, const char *what);
int lh_check_trace(const char *want, const char *what);
/* want 1: at least one warning of `category` (containing substr if not
 * NULL); want 0: none of that category. */
int lh_check_warned(int category, const char *substr, int want,
                    const char *what);
/* A general check: fails with the formatted message when !cond. */
int lh_check(int cond, const char *what, const char *fmt, ...) LH_PRINTF(3, 4);
/* Records or raises a failure; always returns 0. */
int lh_fail(const char *fmt, ...) LH_PRINTF(1, 2);
/* The environment, not the implementation, failed (pipe, fork or thread
 * creation refused): the test ends as UNRESOLVED (a skip whose message
 * starts "UNRESOLVED: ") rather than FAIL.  Soft in blocks, like a check. */
int lh_unresolved(const char *fmt, ...) LH_PRINTF(1, 2);

/* Status-only convenience: LH_OK(lh_impl->loop_close(l)). */
#define LH_OK(expr) lh_expect((expr), LSPEC_OK, NULL, #expr)
#define LH_STATUS(expr, want) lh_expect((expr), (want), NULL, #expr)

/* --- handles the harness tracks ------------------------------------------- */

enum lh_kind { LH_POLICY = 1, LH_LOOP = 2, LH_WATCHER = 3 };

/* Takes over one reference: released by lh_end().  Loops are closed first
 * (if not running); watchers are closed.  NULL is ignored. */
void lh_track(int kind, void *handle);
/* A new loop from loop_new(backend), tracked.  Fails the test if refused. */
lspec_loop *lh_loop_new(int backend);
/* A pipe (O_CLOEXEC), both ends tracked and closed by lh_end(). */
int lh_pipe(int fds[2], const char *what);
/* Closes an fd the harness tracks (and forgets it). */
void lh_close_fd(int fd);
int lh_write(int fd, const char *bytes, const char *what);

/* The end-of-test descriptor check forgives descriptors left open whose
 * /proc/self/fd link starts with `target_prefix` (e.g. "anon_inode:[pidfd]"),
 * for the running test only: for a clause whose own source leaks one (the
 * clause's note says why).  Every other descriptor is still checked. */
void lh_tolerate_fd_leak(const char *target_prefix);

/* --- counters, traces, predicates, callbacks ---------------------------- */

typedef struct lh_counter {
  atomic_long n;
} lh_counter;

void lh_counter_cb(void *counter);            /* lspec_callback: ++n */
long lh_counter_get(lh_counter *c);
void lh_mark_cb(void *text);                  /* appends (const char *) */
void lh_stop_cb(void *loop);                  /* loop_stop(loop) */
size_t lh_trace_len(void);
/* Copies the trace into buf (NUL-terminated). */
void lh_trace_get(char *buf, size_t len);

typedef struct lh_recorder lh_recorder;

/* A run_until goal: counter >= n; or, when counter is NULL, the recorder's
 * calls >= n when rec is set, else the trace's length >= n. */
struct lh_goal {
  lh_counter *counter;
  long n;
  lh_recorder *rec;
};
int lh_goal_pred(void *goal);

/* loop_run_until(l, counter >= n, timeout), expecting OK. */
int lh_run_until_count(lspec_loop *l, lh_counter *c, long n, double timeout,
                       const char *what);

/* --- spy policies ----------------------------------------------------------- */

enum lh_spy_method {
  LH_SPY_GET_EVENT_LOOP = 0,
  LH_SPY_SET_EVENT_LOOP,
  LH_SPY_NEW_EVENT_LOOP,
  LH_SPY_GET_CHILD_WATCHER,
  LH_SPY_SET_CHILD_WATCHER,
  LH_SPY_NMETHODS
};
typedef struct lh_spy lh_spy;

/* policy_new_custom(base) whose five methods count their calls in *spy and
 * then run the base's method (policy_super_*).  The policy is tracked. */
int lh_spy_policy_new(int base, lh_spy **spy, lspec_policy **out,
                      const char *what);
long lh_spy_calls(const lh_spy *spy, int method);

/* --- warnings recorded by the hook ------------------------------------ */

int lh_warning_count(int category);
/* 1 if a warning of `category` was recorded whose text contains substr
 * (any text when NULL). */
int lh_warned(int category, const char *substr);
void lh_clear_warnings(void);

/* --- threads and blocks ---------------------------------------------------- */

/* Runs fn(arg) in a fresh pthread (soft mode) and joins it; then reports
 * any failure recorded there.  Returns 1 if everything held. */
int lh_run_in_thread(void (*fn)(void *), void *arg, const char *what);
/* Runs fn(arg) as a callback of loop `l` (call_soon, then run_until it has
 * run, at most `timeout` seconds), in soft mode; then reports failures. */
int lh_run_in_loop(lspec_loop *l, void (*fn)(void *), void *arg,
                   double timeout, const char *what);
/* Starts fn(arg) in a pthread (soft mode) without joining; join with
 * lh_thread_join, which also reports the failures recorded in the thread.
 * For tests that need a thread running concurrently with the test. */
typedef struct lh_thread lh_thread;
lh_thread *lh_thread_start(void (*fn)(void *), void *arg, const char *what);
int lh_thread_join(lh_thread *t, const char *what);
/* Runs fn in a forked child (the test's process, copied).  The child must
 * not call Criterion or any lh_check*: fn returns 1 for pass or 0 with a
 * reason written into why[0..len); the child then _exit()s.  The parent waits
 * for the child (at most `timeout` seconds, then kills it), reaps it, and
 * reports a failure with the child's reason.  Returns 1 if the child
 * passed. */
int lh_in_child(int (*fn)(void *arg, char *why, size_t len), void *arg,
                double timeout, const char *what);
/* The number of file descriptors open in the process now. */
int lh_fd_count(void);
/* The number of threads in the process now (/proc/self/task). */
int lh_thread_count(void);
/* Polls cond(arg) every millisecond until it is nonzero or `timeout`
 * seconds pass (for states no event announces, e.g. "the loop is running").
 * Returns 1 if it became true. */
int lh_wait_until(int (*cond)(void *), void *arg, double timeout);
/* CLOCK_MONOTONIC in seconds. */
double lh_now(void);

/* --- children the harness spawns, and child-exit recorders ---------------
 *
 * lh_spawn_child forks a child of the test process that, by mode:
 *   LH_CHILD_EXIT      _exit(value) at once;
 *   LH_CHILD_SIGNAL    dies of signal `value` at once (its disposition reset
 *                      to the default first);
 *   LH_CHILD_GATED     waits until lh_child_release(pid), then _exit(value);
 *   LH_CHILD_SLEEPER   sleeps until a signal kills it (value ignored).
 * The child resets every signal disposition and its mask, closes every
 * descriptor but its gate, and dies with the test's worker (PDEATHSIG).
 * The kernel sends that signal when the *thread* that forked ends: a child
 * spawned from a thread of the test dies with that thread, so such a
 * thread must outlive its children (the cases' workers wait for theirs).
 * The harness tracks each child: at lh_end() it kills the ones still running
 * and reaps them, so no test leaves a zombie or a sleeper behind.  Reaping is
 * otherwise the implementation's business (or the test's: lh_child_reap).
 * A pid spawned by the implementation (loop_subprocess_exec) is tracked with
 * lh_track_impl_child: at lh_end() one still running is killed, and the
 * implementation must then reap it; one it leaves a zombie is a failure. */
enum lh_child_mode {
  LH_CHILD_EXIT = 1,
  LH_CHILD_SIGNAL = 2,
  LH_CHILD_GATED = 3,
  LH_CHILD_SLEEPER = 4
};
int lh_spawn_child(int mode, int value, int *pid, const char *what);
/* Lets a GATED child exit. */
int lh_child_release(int pid, const char *what);
int lh_child_kill(int pid, int sig, const char *what);
/* Reaps the child itself (waits at most `timeout` seconds for it to end):
 * "reaped elsewhere" for the implementation. */
int lh_child_reap(int pid, double timeout, const char *what);
void lh_track_impl_child(int pid);
/* LH_CHILD_RUNNING, LH_CHILD_ZOMBIE (ended, not reaped) or LH_CHILD_GONE
 * (reaped by someone, or not our child). */
enum { LH_CHILD_RUNNING = 0, LH_CHILD_ZOMBIE = 1, LH_CHILD_GONE = 2 };
int lh_child_state(int pid);
/* want_reaped 1: the child has been reaped (waits at most `timeout` s for
 * it: reaping may trail the callback by a moment on another thread);
 * 0: it has ended (waits at most `timeout` s for that) and is still a
 * zombie nobody reaped. */
int lh_check_reaped(int pid, int want_reaped, double timeout,
                    const char *what);
/* 1 when SIGCHLD's disposition is a handler (neither default nor ignore). */
int lh_sigchld_handled(void);

/* A child-exit recorder: lh_record_cb (an lspec_child_callback whose arg is
 * the recorder) stores each call's pid, returncode, thread and the loop
 * running in that thread (get_running_loop at the time of the call). */
#define LH_RECORDER_MAX 64
struct lh_recorder {
  atomic_int n; /* calls so far (may exceed LH_RECORDER_MAX) */
  struct lh_record {
    int pid, returncode;
    unsigned long thread;
    const void *running_loop; /* identity only, NULL if none */
  } calls[LH_RECORDER_MAX];
};
void lh_record_cb(int pid, int returncode, void *recorder);
long lh_recorder_calls(lh_recorder *r);
/* The returncode of the last call for pid, or LH_NO_CALL. */
#define LH_NO_CALL (-100000L)
long lh_recorder_returncode(lh_recorder *r, int pid);
/* The number of calls recorded for pid. */
long lh_recorder_calls_for(lh_recorder *r, int pid);
/* A call for pid with this returncode was recorded. */
int lh_check_exited(lh_recorder *r, int pid, int returncode,
                    const char *what);
/* At least one call was recorded, and every call ran in a thread where
 * loop `l` was the running loop (NULL: every call ran in a thread with some
 * running loop). */
int lh_check_called_in_loop(lh_recorder *r, lspec_loop *l, const char *what);

/* --- watchers ----------------------------------------------------------------- */

/* watcher_new(kind), tracked (closed and released by lh_end).  A kind the
 * platform cannot offer (LSPEC_E_UNAVAILABLE) ends the test UNRESOLVED;
 * NULL then, or on a failed check (soft in blocks). */
lspec_watcher *lh_watcher_new(int kind, const char *what);
/* Registers each of pids[0..n) with w, cb and arg, from inside a callback
 * of loop `l` and inside enter/exit: the recipe every kind accepts (a
 * running loop in the calling thread, the context manager Fast needs).
 * Returns 1 if every registration succeeded. */
int lh_register_in_loop(lspec_loop *l, lspec_watcher *w, const int *pids,
                        int n, lspec_child_callback cb, void *arg,
                        const char *what);

#endif /* LSPEC_CONFORM_HARNESS_H */
