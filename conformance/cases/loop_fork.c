/* loop_fork.c - what a forked child sees of its parent's loops (CPython's
 * fork handling changed in 3.12).  The child must not call Criterion: it
 * reports through lh_in_child() with an exit status and a reason.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

struct parent_state {
  lspec_loop *loop; /* the parent's current (or running) loop */
  int child_ok;
};

/* In the child: get_event_loop() must return the parent's loop (< 3.12). */
static int child_sees_parent_loop(void *arg, char *why, size_t len) {
  struct parent_state *ps = arg;
  lspec_loop *got = NULL;
  int rc = lh_impl->get_event_loop(&got);
  if (rc != LSPEC_OK) {
    snprintf(why, len, "get_event_loop() failed with %s: %s",
             lh_status_name(rc), lh_impl->last_error());
    return 0;
  }
  if (got != ps->loop) {
    snprintf(why, len, "get_event_loop() returned %p, not the parent's "
             "current loop %p", (void *)got, (void *)ps->loop);
    return 0;
  }
  return 1;
}

/* In the child: get_event_loop() must create a fresh loop, warning (3.12). */
static int child_gets_fresh_loop(void *arg, char *why, size_t len) {
  struct parent_state *ps = arg;
  lspec_loop *got = NULL;
  int rc;
  lh_clear_warnings();
  rc = lh_impl->get_event_loop(&got);
  if (rc != LSPEC_OK) {
    snprintf(why, len, "get_event_loop() failed with %s: %s (3.12 creates "
             "a new loop in the child's main thread)",
             lh_status_name(rc), lh_impl->last_error());
    return 0;
  }
  if (got == NULL || got == ps->loop) {
    snprintf(why, len, "get_event_loop() returned %p, the parent's loop "
             "(%p): the child must start with no current loop",
             (void *)got, (void *)ps->loop);
    return 0;
  }
  if (!lh_warned(LSPEC_WARN_DEPRECATION, "There is no current event loop")) {
    snprintf(why, len, "the new loop came without the DeprecationWarning "
             "'There is no current event loop'");
    return 0;
  }
  return 1;
}

/*--- test: fork_child_keeps_current_loop clauses: [LOOP-FORK-002] timeout: 10 ---*/
LH_TEST(loop, fork_child_keeps_current_loop) {
  static struct parent_state ps;
  int rc = lh_impl->new_event_loop(&ps.loop);
  lh_expect_out(rc, LSPEC_OK, NULL, LH_LOOP, ps.loop, "new_event_loop()");
  LH_OK(lh_impl->set_event_loop(ps.loop));
  lh_in_child(child_sees_parent_loop, &ps, 5.0,
              "fork, then get_event_loop() in the child");
}

/*--- test: fork_child_starts_without_loop clauses: [LOOP-FORK-001] timeout: 10 ---*/
LH_TEST(loop, fork_child_starts_without_loop) {
  static struct parent_state ps;
  int rc = lh_impl->new_event_loop(&ps.loop);
  lh_expect_out(rc, LSPEC_OK, NULL, LH_LOOP, ps.loop, "new_event_loop()");
  LH_OK(lh_impl->set_event_loop(ps.loop));
  lh_in_child(child_gets_fresh_loop, &ps, 5.0,
              "fork, then get_event_loop() in the child");
}

/* In the child of a fork made inside a callback: no running loop. */
static int child_has_no_running_loop(void *arg, char *why, size_t len) {
  lspec_loop *got = NULL;
  int rc = lh_impl->get_running_loop(&got);
  (void)arg;
  if (rc != LSPEC_E_RUNTIME) {
    snprintf(why, len, "get_running_loop() in the child gave %s (%p), "
             "expected LSPEC_E_RUNTIME: the parent's running loop does not "
             "run in the child",
             lh_status_name(rc), (void *)got);
    return 0;
  }
  return 1;
}

static void fork_in_callback(void *arg) {
  struct parent_state *ps = arg;
  ps->child_ok = lh_in_child(child_has_no_running_loop, ps, 5.0,
                             "fork inside a callback, then "
                             "get_running_loop() in the child");
}

/*--- test: fork_child_has_no_running_loop clauses: [LOOP-FORK-003] timeout: 10 ---*/
LH_TEST(loop, fork_child_has_no_running_loop) {
  static struct parent_state ps;
  ps.loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  /* The fork happens in a loop callback (soft mode: the result is reported
   * when the block ends). */
  lh_run_in_loop(ps.loop, fork_in_callback, &ps, 5.0,
                 "a callback that forks");
}

/* --- a fork from a thread that is not the main thread (LOOP-003) ---------- */

struct thread_fork {
  int want; /* LSPEC_OK (3.9+) or LSPEC_E_RUNTIME (3.8) */
};

static int child_of_thread(void *arg, char *why, size_t len) {
  struct thread_fork *tf = arg;
  lspec_loop *got = NULL;
  int rc = lh_impl->get_event_loop(&got);
  if (rc != tf->want || (rc == LSPEC_OK) != (got != NULL)) {
    snprintf(why, len, "get_event_loop() in a child forked from a non-main "
             "thread gave %s (%p), expected %s; last_error: \"%s\"",
             lh_status_name(rc), (void *)got, lh_status_name(tf->want),
             rc < 0 ? lh_impl->last_error() : "");
    return 0;
  }
  return 1;
}

static void fork_from_thread(void *arg) {
  lh_in_child(child_of_thread, arg, 5.0,
              "fork from a non-main thread, then get_event_loop() in the "
              "child");
}

/*--- test: fork_from_thread_child_is_main clauses: [LOOP-FORK-004] timeout: 10 ---*/
LH_TEST(loop, fork_from_thread_child_is_main) {
  static struct thread_fork tf = {LSPEC_OK};
  lh_run_in_thread(fork_from_thread, &tf, "a thread that forks");
}

/*--- test: fork_from_thread_child_not_main_3_8 clauses: [LOOP-FORK-005] timeout: 10 ---*/
LH_TEST(loop, fork_from_thread_child_not_main_3_8) {
  static struct thread_fork tf = {LSPEC_E_RUNTIME};
  lh_run_in_thread(fork_from_thread, &tf, "a thread that forks");
}
