/* test_faults.c - fault injection: every system call of the lspec__sys
 * table that a scenario makes is made to fail, one at a time, at every call
 * the scenario reaches, with every errno that call can really return
 * (fault_helpers.h), and each time the outcome is checked:
 *
 *  - a call that fails says so with the documented kind: OSError with the
 *    injected errno (or MemoryError for ENOMEM), RuntimeError "can't start
 *    new thread" for pthread_create, RuntimeError for a signal that cannot
 *    be caught (sigaction's EINVAL); and once a call failed no callback ever
 *    comes;
 *  - a fault the reference absorbs changes nothing: EINTR is retried (POSIX
 *    allows it for waitpid, waitid and write), EAGAIN on an eventfd means it
 *    is readable already, clone3's ENOSYS falls back to fork, Threaded
 *    without a pidfd polls;
 *  - a child reaped behind the watcher's back (ECHILD) is reported with
 *    returncode 255, except by Fast, which never reports such a child;
 *  - whatever happened, the callback comes at most once, and after clean-up
 *    no descriptor, thread or zombie is left (checked after every run;
 *    memory is checked by running this under valgrind, ci/valgrind).
 *
 * The scenario is what asyncio.create_subprocess_exec does: a new loop, a
 * watcher of the kind under test attached to it and set as the policy's,
 * subprocess_exec of a child that exits 3 from a loop callback, the loop
 * run until the exit is reported, then everything closed.
 */
#include "pidfd_helpers.h"

#include "fault_helpers.h"

#include <fcntl.h>

TestSuite(faults, .timeout = 60);

static const char *const fx_argv[] = {"/bin/sh", "-c", "exit 3", NULL};

/* What one run of the scenario did. */
struct fx_run {
  int failed_step;  /* 0: every call succeeded; else which one failed */
  int status;       /* the failed call's status */
  int err;          /* its last_errno */
  char msg[256];    /* its last_error */
  struct ph_rec rec; /* the exit callback */
  int fired;        /* the armed fault was injected */
  int stolen;       /* children it reaped behind the watcher's back */
  int quiet;        /* no callback is due even when all goes well */
};

enum { STEP_LOOP = 1, STEP_WATCHER, STEP_ATTACH, STEP_POLICY, STEP_EXEC };

struct fx_exec {
  lspec_loop *loop;
  struct fx_run *run;
  int rc;
  int done;
};

static void fx_exec_cb(void *arg) {
  struct fx_exec *x = arg;
  int pid = 0;
  x->rc = I->loop_subprocess_exec(x->loop, fx_argv, ph_rec_cb, &x->run->rec,
                                  &pid);
  if (x->rc != LSPEC_OK) {
    x->run->err = I->last_errno();
    snprintf(x->run->msg, sizeof x->run->msg, "%s", I->last_error());
  }
  x->done = 1;
}

static void fx_fail(struct fx_run *run, int step, int status) {
  run->failed_step = step;
  run->status = status;
  if (step != STEP_EXEC) {
    run->err = I->last_errno();
    snprintf(run->msg, sizeof run->msg, "%s", I->last_error());
  }
}

/* Closes what fx_open made: the watcher (if any), then the loop, once it
 * has handed back what the close left for it. */
static void fx_close(lspec_loop *loop, lspec_watcher *w) {
  if (w != NULL) {
    cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "watcher_close: %s",
              I->last_error());
    I->watcher_release(w);
  }
  lt_run_for(loop, 0.002);
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "loop_close: %s",
            I->last_error());
  I->loop_release(loop);
}

/* The steps the scenarios start with: a loop, and a watcher of `kind`
 * attached to it.  1 when both are there; else the failed step is in
 * `run` and nothing is left open. */
static int fx_open(int kind, int backend, struct fx_run *run,
                   lspec_loop **loop, lspec_watcher **w) {
  int rc;

  memset(run, 0, sizeof *run);
  *loop = NULL;
  *w = NULL;
  if ((rc = I->loop_new(backend, loop)) != LSPEC_OK) {
    fx_fail(run, STEP_LOOP, rc);
    return 0;
  }
  if ((rc = I->watcher_new(kind, w)) != LSPEC_OK) {
    fx_fail(run, STEP_WATCHER, rc);
    *w = NULL;
    fx_close(*loop, NULL);
    return 0;
  }
  if ((rc = I->watcher_attach_loop(*w, *loop)) != LSPEC_OK) {
    fx_fail(run, STEP_ATTACH, rc);
    fx_close(*loop, *w);
    return 0;
  }
  return 1;
}

/* The scenario; `wait_s` bounds the wait for the exit. */
static void fx_scenario(int kind, int backend, double wait_s,
                        struct fx_run *run) {
  lspec_loop *loop = NULL;
  lspec_watcher *w = NULL;
  struct fx_exec x = {0};
  int rc;

  if (!fx_open(kind, backend, run, &loop, &w))
    return;
  if ((rc = I->set_child_watcher(w)) != LSPEC_OK) {
    fx_fail(run, STEP_POLICY, rc);
    fx_close(loop, w);
    return;
  }
  x.loop = loop;
  x.run = run;
  cr_assert(eq(int, I->loop_call_soon(loop, fx_exec_cb, &x, NULL), LSPEC_OK));
  lt_one_iteration(loop);
  cr_assert(eq(int, x.done, 1), "the exec callback did not run");
  if (x.rc != LSPEC_OK) {
    fx_fail(run, STEP_EXEC, x.rc);
  } else {
    (void)I->loop_run_until(loop, ph_rec_called, &run->rec, wait_s);
  }
  /* A late or second callback would show here. */
  lt_run_for(loop, 0.005);
  cr_assert(eq(int, I->set_child_watcher(NULL), LSPEC_OK),
            "set_child_watcher(NULL): %s", I->last_error());
  fx_close(loop, w);
}

/* Whether the reference must absorb this fault of kind `kind`. */
static int fx_absorbed(int kind, int e, int err) {
  switch (e) {
  case FH_CLONE3:
    return err == ENOSYS; /* the spawner falls back to fork */
  case FH_WAITPID:
  case FH_WAITID:
  case FH_WRITE:
    return 1; /* EINTR retried, EAGAIN readable, ECHILD reported below */
  case FH_PIDFD_OPEN:
    return kind == LSPEC_WATCHER_THREADED; /* it polls instead */
  default:
    return 0;
  }
}

/* Checks one run against what the fault it had allows. */
static void fx_check(int kind, int e, int nth, int err,
                     const struct fx_run *run) {
  int calls = atomic_load(&run->rec.calls);
  int fired = run->fired;
  const char *what = e < FH_COUNT ? fh_names[e] : "nothing";

  cr_assert(le(int, calls, 1), "%s #%d -> %s: the callback ran %d times",
            what, nth, strerror(err), calls);
  if (run->failed_step != 0) {
    cr_assert(fired && !fx_absorbed(kind, e, err),
              "%s #%d -> %s (injected: %d): step %d failed: %s", what, nth,
              strerror(err), fired, run->failed_step, run->msg);
    if (e == FH_PTHREAD_CREATE) {
      cr_assert(eq(int, run->status, LSPEC_E_RUNTIME), "%s", run->msg);
      cr_assert(strstr(run->msg, "can't start new thread") != NULL, "%s",
                run->msg);
    } else if (e == FH_SIGACTION && run->status == LSPEC_E_RUNTIME) {
      cr_assert(strstr(run->msg, "cannot be caught") != NULL, "%s",
                run->msg);
    } else if (err == ENOMEM && run->status == LSPEC_E_NOMEM) {
      /* MemoryError */
    } else {
      cr_assert(eq(int, run->status, LSPEC_E_OS),
                "%s #%d -> %s: status %d: %s", what, nth, strerror(err),
                run->status, run->msg);
      cr_assert(eq(int, run->err, err), "%s #%d -> %s: errno %d: %s", what,
                nth, strerror(err), run->err, run->msg);
      if (e == FH_PIDFD_OPEN && err == ENOSYS)
        cr_assert(strstr(run->msg, "5.3") != NULL,
                  "no word of the kernel a pidfd needs: %s", run->msg);
    }
    cr_assert(eq(int, calls, 0), "%s #%d -> %s: failed, yet called back",
              what, nth, strerror(err));
    return;
  }
  if (run->quiet) {
    cr_assert(eq(int, calls, 0), "%s #%d -> %s: a callback after close",
              what, nth, strerror(err));
    if (fired)
      cr_assert(fx_absorbed(kind, e, err) || run->stolen > 0,
                "%s #%d -> %s was injected and nothing failed", what, nth,
                strerror(err));
    return;
  }
  if (fired && run->stolen > 0) {
    /* Reaped behind the watcher's back. */
    if (kind == LSPEC_WATCHER_FAST) {
      cr_assert(eq(int, calls, 0), "%s #%d -> ECHILD: Fast reported a child "
                                   "reaped elsewhere", what, nth);
    } else {
      cr_assert(eq(int, calls, 1), "%s #%d -> ECHILD: no callback", what,
                nth);
      cr_assert(eq(int, run->rec.returncode, 255),
                "%s #%d -> ECHILD: returncode %d, not 255", what, nth,
                run->rec.returncode);
    }
    return;
  }
  if (fired)
    cr_assert(fx_absorbed(kind, e, err),
              "%s #%d -> %s was injected and nothing failed", what, nth,
              strerror(err));
  cr_assert(eq(int, calls, 1), "%s #%d -> %s (injected: %d): no callback",
            what, nth, strerror(err), fired);
  cr_assert(eq(int, run->rec.returncode, 3),
            "%s #%d -> %s: returncode %d, not 3", what, nth, strerror(err),
            run->rec.returncode);
}

/* No descriptor, thread or zombie left since the baseline. */
static void fx_no_leak(int fds, int threads, const char *what, int nth,
                       int err) {
  siginfo_t si;
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds),
            "%s #%d -> %s: a descriptor leaked", what, nth, strerror(err));
  cr_assert(eq(int, lt_threads_settle(threads), threads),
            "%s #%d -> %s: a thread was left", what, nth, strerror(err));
  memset(&si, 0, sizeof si);
  if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
    cr_assert(eq(int, si.si_pid, 0), "%s #%d -> %s: a zombie was left",
              what, nth, strerror(err));
}

/* --- the watch scenario: add_child_handler for our own child --------------- */

/* A child that exits 5 once it reads a byte from `fd` (the parent holds
 * the other end): it runs while it is registered. */
static int fx_spawn_held(int *release_fd) {
  int p[2], fd;
  char byte;
  pid_t pid;

  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0));
  pid = fork();
  cr_assert(ne(int, pid, -1), "fork: %s", strerror(errno));
  if (pid == 0) {
    for (fd = 3; fd < 1024; fd++)
      if (fd != p[0])
        close(fd);
    while (read(p[0], &byte, 1) < 0 && errno == EINTR)
      ;
    _exit(5);
  }
  close(p[0]);
  *release_fd = p[1];
  return pid;
}

struct fx_add {
  lspec_watcher *w;
  int pid;
  struct fx_run *run;
  int rc;
};

static void fx_add_cb(void *arg) {
  struct fx_add *a = arg;
  lspec_watcher *entered = NULL;
  /* Fast wants registrations inside its context (the child is held, so it
   * cannot end before the enter). */
  int fast = I->watcher_kind(a->w) == LSPEC_WATCHER_FAST;
  if (fast)
    cr_assert(eq(int, I->watcher_enter(a->w, &entered), LSPEC_OK), "%s",
              I->last_error());
  a->rc = I->watcher_add_child_handler(a->w, a->pid, ph_rec_cb, &a->run->rec);
  if (a->rc != LSPEC_OK) {
    a->run->err = I->last_errno();
    snprintf(a->run->msg, sizeof a->run->msg, "%s", I->last_error());
  }
  if (fast) {
    cr_assert(eq(int, I->watcher_exit(a->w), LSPEC_OK), "%s",
              I->last_error());
    I->watcher_release(entered);
  }
}

/* A loop, a watcher attached to it, a running child registered from a loop
 * callback; the child is let go once the watcher waits, and the loop runs
 * until the exit (5) is reported.  A child whose registration failed is
 * killed and reaped here, as CPython's transport would.  The returncode the
 * checks expect is 3, so the recorder is rewritten: 5 -> 3. */
static void fx_watch(int kind, int backend, double wait_s,
                     struct fx_run *run) {
  lspec_loop *loop = NULL;
  lspec_watcher *w = NULL;
  struct fx_add a = {0};
  int release, pid, st;

  if (!fx_open(kind, backend, run, &loop, &w))
    return;
  pid = fx_spawn_held(&release);
  a.w = w;
  a.pid = pid;
  a.run = run;
  cr_assert(eq(int, I->loop_call_soon(loop, fx_add_cb, &a, NULL), LSPEC_OK));
  lt_one_iteration(loop);
  if (a.rc != LSPEC_OK) {
    run->failed_step = STEP_EXEC;
    run->status = a.rc;
    close(release);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
  } else {
    lt_run_for(loop, 0.002); /* the watcher waits for a running child */
    close(release);          /* end of file: it exits 5 */
    (void)I->loop_run_until(loop, ph_rec_called, &run->rec, wait_s);
    if (run->rec.returncode == 5)
      run->rec.returncode = 3;
  }
  lt_run_for(loop, 0.005);
  fx_close(loop, w);
}

/* --- the orphan scenario (Threaded): closed while its child runs ------------ */

/* A Threaded watcher closed while its child runs hands the child to the
 * process-wide orphan sweep; once the child exits, the next close of any
 * Threaded watcher reaps it (waitid on its pidfd).  No callback is due. */
static void fx_orphan(int kind, int backend, double wait_s,
                      struct fx_run *run) {
  lspec_loop *loop = NULL;
  lspec_watcher *w = NULL, *w2 = NULL;
  struct fx_add a = {0};
  int rc, release, pid;
  siginfo_t si;

  (void)wait_s;
  memset(run, 0, sizeof *run);
  if ((rc = I->loop_new(backend, &loop)) != LSPEC_OK) {
    fx_fail(run, STEP_LOOP, rc);
    return;
  }
  cr_assert(eq(int, I->watcher_new(kind, &w), LSPEC_OK));
  pid = fx_spawn_held(&release);
  a.w = w;
  a.pid = pid;
  a.run = run;
  cr_assert(eq(int, I->loop_call_soon(loop, fx_add_cb, &a, NULL), LSPEC_OK));
  lt_one_iteration(loop);
  if (a.rc != LSPEC_OK) {
    run->failed_step = STEP_EXEC;
    run->status = a.rc;
  }
  cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "watcher_close: %s",
            I->last_error());
  I->watcher_release(w);
  close(release); /* now it exits */
  memset(&si, 0, sizeof si);
  while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 &&
         errno == EINTR)
    ;
  /* The sweep runs on every close of a Threaded watcher. */
  cr_assert(eq(int, I->watcher_new(kind, &w2), LSPEC_OK));
  cr_assert(eq(int, I->watcher_close(w2), LSPEC_OK));
  I->watcher_release(w2);
  if (run->failed_step != 0)
    ph_reap(pid); /* never registered: ours to reap */
  else
    cr_assert(eq(int, ph_is_zombie(pid), 0),
              "the sweep left the orphan a zombie");
  /* No callback is due: the watcher was closed before the exit. */
  run->quiet = 1;
  lt_run_for(loop, 0.002);
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK));
  I->loop_release(loop);
}

typedef void (*fx_scenario_fn)(int kind, int backend, double wait_s,
                               struct fx_run *run);

/* The sweep: a clean run counts each entry's calls; then each entry fails
 * at each of those calls (and one more) with each of its errors. */
static void fx_sweep_with(fx_scenario_fn scenario, int kind, int backend) {
  struct fx_run run;
  int counts[FH_COUNT], e, nth, k, err, fds, threads, runs = 0;
  double wait_s;

  if (kind == LSPEC_WATCHER_PIDFD && !ph_have_pidfd())
    cr_skip_test("no pidfd_open here (Linux < 5.3, a filter, or valgrind)");
  ph_setup(LSPEC_PROFILE_3_11);
  lt_sanitizer_warm_up();
  fds = lt_count_entries("/proc/self/fd");
  threads = lt_count_entries("/proc/self/task");
  fh_install();
  scenario(kind, backend, 10.0, &run);
  fx_check(kind, FH_COUNT, 0, 0, &run);
  for (e = 0; e < FH_COUNT; e++)
    counts[e] = fh_count(e);
  cr_assert(gt(int, counts[FH_WAITPID] + counts[FH_WAITID], 0),
            "the scenario reaped nothing through the table");
  fx_no_leak(fds, threads, "nothing", 0, 0);

  for (e = 0; e < FH_COUNT; e++) {
    for (k = 0; (err = fh_errors[e][k]) != 0; k++) {
      for (nth = 1; nth <= counts[e] + 1; nth++) {
        /* Fast never reports a child reaped elsewhere: do not wait long
         * for it. */
        wait_s = kind == LSPEC_WATCHER_FAST && err == ECHILD ? 0.2 : 10.0;
        fh_arm(e, nth, err);
        scenario(kind, backend, wait_s, &run);
        run.fired = fh_fired(e);
        run.stolen = fh_stolen_children();
        fh_arm(FH_COUNT, 0, 0);
        fx_check(kind, e, nth, err, &run);
        fx_no_leak(fds, threads, fh_names[e], nth, err);
        lspec__spawn_forget_probes(); /* a clone3 ENOSYS is remembered */
        runs++;
      }
    }
  }
  fh_uninstall();
  cr_assert(gt(int, runs, 0), "no faulted run");
}

static void fx_sweep(int kind, int backend) {
  fx_sweep_with(fx_scenario, kind, backend);
}

Test(faults, threaded) { fx_sweep(LSPEC_WATCHER_THREADED, LSPEC_BACKEND_EPOLL); }
Test(faults, multiloop) { fx_sweep(LSPEC_WATCHER_MULTILOOP, LSPEC_BACKEND_EPOLL); }
Test(faults, safe) { fx_sweep(LSPEC_WATCHER_SAFE, LSPEC_BACKEND_EPOLL); }
Test(faults, fast) { fx_sweep(LSPEC_WATCHER_FAST, LSPEC_BACKEND_EPOLL); }
Test(faults, pidfd) { fx_sweep(LSPEC_WATCHER_PIDFD, LSPEC_BACKEND_EPOLL); }
Test(faults, pidfd_poll) { fx_sweep(LSPEC_WATCHER_PIDFD, LSPEC_BACKEND_POLL); }

/* The same, registering a running child of our own. */
Test(faults, watch_threaded) {
  fx_sweep_with(fx_watch, LSPEC_WATCHER_THREADED, LSPEC_BACKEND_EPOLL);
}
Test(faults, watch_multiloop) {
  fx_sweep_with(fx_watch, LSPEC_WATCHER_MULTILOOP, LSPEC_BACKEND_EPOLL);
}
Test(faults, watch_safe) {
  fx_sweep_with(fx_watch, LSPEC_WATCHER_SAFE, LSPEC_BACKEND_EPOLL);
}
Test(faults, watch_fast) {
  fx_sweep_with(fx_watch, LSPEC_WATCHER_FAST, LSPEC_BACKEND_EPOLL);
}
Test(faults, watch_pidfd) {
  fx_sweep_with(fx_watch, LSPEC_WATCHER_PIDFD, LSPEC_BACKEND_EPOLL);
}

/* Threaded's orphans: the sweep's waitid. */
Test(faults, orphan_threaded) {
  fx_sweep_with(fx_orphan, LSPEC_WATCHER_THREADED, LSPEC_BACKEND_EPOLL);
}
