/* sub_inactive.c - a spawn refused for an inactive watcher starts nothing
 * (SUB-INACTIVE-001), checked at once rather than through a zombie found
 * later: right after the refused loop_subprocess_exec the test process has
 * no child at all, running or ended.  The generated test
 * inactive_watcher_refuses_spawn sees a child started by mistake only once
 * it has ended and been left a zombie, which depends on timing.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

struct refused {
  lspec_loop *loop;
  lh_recorder rec; /* the exit callback's calls (it must never run) */
  int rc;       /* loop_subprocess_exec's status */
  int children; /* 0: none; 1: some child exists; -1: waitid failed */
  int err;      /* errno of a failed waitid other than ECHILD */
};

/* 0 when the process has no child at all (ECHILD), 1 when it has one,
 * running or ended (nothing is reaped: WNOWAIT). */
static int has_children(int *err) {
  siginfo_t info;

  memset(&info, 0, sizeof info);
  if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0)
    return 1;
  if (errno == ECHILD)
    return 0;
  *err = errno;
  return -1;
}

static void spawn_refused(void *p) {
  struct refused *r = p;
  static const char *const argv[] = {"/bin/true", NULL};
  int pid = -1;

  r->rc = lh_impl->loop_subprocess_exec(r->loop, argv, lh_record_cb, &r->rec,
                                        &pid);
  r->children = has_children(&r->err);
}

/*--- test: inactive_watcher_spawns_nothing clauses: [SUB-INACTIVE-001] kinds: [SAFE] ---*/
LH_TEST(subprocess, inactive_watcher_spawns_nothing) {
  static struct refused r;
  lspec_watcher *w = NULL;
  int rc = lh_impl->watcher_new(LSPEC_WATCHER_SAFE, &w);

  if (!lh_expect_out(rc, LSPEC_OK, NULL, LH_WATCHER, w,
                     "watcher_new(SAFE)"))
    return;
  r.children = -1;
  if (!lh_check(has_children(&r.err) == 0, "before the spawn",
                "the test process already has a child"))
    return;
  LH_OK(lh_impl->set_child_watcher(w)); /* not attached: inactive */
  r.loop = lh_loop_new(LSPEC_BACKEND_DEFAULT);
  if (r.loop == NULL)
    return;
  if (!lh_run_in_loop(r.loop, spawn_refused, &r, 5.0,
                      "loop_subprocess_exec with an inactive watcher"))
    return;
  if (!lh_expect(r.rc, LSPEC_E_RUNTIME, NULL,
                 "loop_subprocess_exec with an inactive watcher"))
    return;
  lh_check(r.children == 0, "after the refused spawn",
           r.children < 0 ? "waitid failed: %s"
                          : "a child was started anyway%s",
           r.children < 0 ? strerror(r.err) : "");
  lh_check(atomic_load(&r.rec.n) == 0, "after the refused spawn",
           "the exit callback of a refused spawn was called");
}
