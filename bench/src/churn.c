/* churn.c - one configuration driven through the ABI: churn, latency, idle
 * children and memory, in the worker's main thread.
 *
 * Set-up: a new loop (the default backend) made current with
 * set_event_loop, and a watcher of the configuration's kind attached to it;
 * for loop_subprocess_exec (LB_EXEC) the watcher is also the policy's
 * (set_child_watcher), which is how a user's loop gets it.  NATIVE has no
 * watcher object: the loop's own mechanism spawns and watches.
 *
 * Churn (the anchors' method): a call_soon callback, the top-up, starts
 * children until K are in flight.  Each exit callback records its time and
 * schedules one top-up if none is pending, so the children reported by one
 * loop wake-up are all recorded before any replacement is spawned, and each
 * wake-up is followed by one top-up back to K (a replacement per reaped
 * child).  The clock runs from the first top-up to the N-th exit callback.
 * M idle children (`lspec-bench-child p`) are started and registered the
 * same way before the clock starts, and killed (SIGKILL, by pid) and
 * reported after it stops.
 *
 * Figures: children/s = N / timed phase; latency = callback time - the
 * child's exit stamp; notification = callback time - max(exit stamp, end of
 * our previous callback), the part of the latency during which the loop
 * was free to notice the exit; process CPU over the timed phase, split into
 * what our top-ups used (spawning and registering, their own thread's CPU
 * clock) and the rest (the loop's reap passes and deliveries, on every
 * thread), per wake-up.  Nothing is allocated per child: every array is
 * sized before the clock starts.
 *
 * Memory: M idle children are registered (LB_WATCH: spawned first, then
 * each registered; LB_EXEC: started through loop_subprocess_exec) between
 * two snapshots of /proc/self (0.5 s of loop in between); the difference per
 * child is what the watcher and the loop keep for one child in flight.
 */
#define _GNU_SOURCE 1
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The run in progress: one per worker process, used from the loop's
 * callbacks. */
static struct {
  const struct lspec_impl *impl;
  const struct lb_config *c;
  struct lb_stamps *st;
  struct lb_result *r;
  lspec_loop *loop;
  lspec_watcher *w; /* NULL for NATIVE */
  int n, k, m;
  int launched, done, inflight;
  int idle_launched, idle_done, idle_wrong, idle_registered;
  int *pid;          /* per slot: n short children, then m idle ones */
  char *reported;    /* per slot: its callback came */
  int64_t *t_cb;     /* per short child: callback time */
  int64_t *t_free;   /* per short child: end of our previous callback */
  int64_t last_free; /* end of our latest callback */
  int topup_pending, batch_open, setup_done;
  long wakeups;
  int64_t spawn_cpu, t_start, t_end, cpu_start, cpu_end;
  int wrong;
  char first_wrong[96]; /* what the first wrong callback said */
  int failed;
} R;

/* Counts a wrong callback and remembers the first. */
static void wrong(int slot, int pid, int returncode) {
  if (R.wrong++ == 0 && R.idle_wrong == 0)
    snprintf(R.first_wrong, sizeof R.first_wrong,
             "first: slot %d pid %d returncode %d (expected pid %d)", slot, pid,
             returncode, slot >= 0 && slot < R.n + R.m ? R.pid[slot] : -1);
}

/* Records the first failure inside a callback; the run stops. */
static void cb_fail(int rc, const char *what) {
  if (R.failed)
    return;
  R.failed = 1;
  lb_fail(R.r, rc == LSPEC_E_UNSUPPORTED ? LB_UNSUPPORTED : LB_FAILED,
          "%s: status %d: %s", what, rc, R.impl->last_error());
}

static void on_exit_cb(int pid, int returncode, void *arg);

/* Registers child `pid` (started by the bench) for `slot`.  Fast wants the
 * spawn and the registration inside enter/exit, so `entered` is what
 * watcher_enter handed out. */
static int watch_child(lspec_watcher *entered, int pid, int slot) {
  return R.impl->watcher_add_child_handler(entered, pid, on_exit_cb,
                                           (void *)(intptr_t)slot);
}

/* Starts one child for `slot`: through the loop, or spawned here and
 * registered with the watcher. */
static int start_child(const char *const *argv, int slot) {
  lspec_watcher *e = NULL;
  pid_t pid = -1;
  int rc, err, st;

  if (R.c->mode == LB_EXEC) {
    rc = R.impl->loop_subprocess_exec(R.loop, argv, on_exit_cb,
                                      (void *)(intptr_t)slot, &R.pid[slot]);
    if (rc != LSPEC_OK)
      cb_fail(rc, "loop_subprocess_exec");
    return rc;
  }
  if ((rc = R.impl->watcher_enter(R.w, &e)) != LSPEC_OK) {
    cb_fail(rc, "watcher_enter");
    return rc;
  }
  err = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
  if (err != 0) {
    R.failed = 1;
    lb_fail(R.r, LB_FAILED, "posix_spawn %s: %s", argv[0], strerror(err));
    rc = LSPEC_E_OS;
  } else {
    R.pid[slot] = pid;
    if ((rc = watch_child(e, pid, slot)) != LSPEC_OK) {
      cb_fail(rc, "watcher_add_child_handler");
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
      R.pid[slot] = 0;
    }
  }
  R.impl->watcher_exit(R.w);
  R.impl->watcher_release(e);
  return rc;
}

/* The top-up: back to K children in flight. */
static void topup(void *arg) {
  int64_t c0 = lb_thread_cpu_ns();
  int slot;

  (void)arg;
  if (R.t_start == 0) {
    R.t_start = lb_now_ns();
    R.cpu_start = lb_process_cpu_ns();
  }
  R.topup_pending = 0;
  R.batch_open = 0;
  while (R.inflight < R.k && R.launched < R.n && !R.failed) {
    slot = R.launched;
    if (start_child(lb_stamps_argv(R.st, (size_t)slot), slot) != LSPEC_OK)
      break;
    R.launched++;
    R.inflight++;
  }
  R.spawn_cpu += lb_thread_cpu_ns() - c0;
  R.last_free = lb_now_ns();
}

static void on_exit_cb(int pid, int returncode, void *arg) {
  int64_t now = lb_now_ns();
  int slot = (int)(intptr_t)arg, rc;

  if (slot < 0 || slot >= R.n + R.m || R.reported[slot]) {
    wrong(slot, pid, returncode); /* for nothing we started, or again */
    return;
  }
  R.reported[slot] = 1;
  if (slot >= R.n) { /* an idle child, killed */
    R.idle_done++;
    if (returncode != -SIGKILL || pid != R.pid[slot]) {
      wrong(slot, pid, returncode);
      R.wrong--;
      R.idle_wrong++;
    }
    R.last_free = lb_now_ns();
    return;
  }
  R.t_cb[slot] = now;
  R.t_free[slot] = R.last_free;
  if (returncode != 0 || pid != R.pid[slot])
    wrong(slot, pid, returncode);
  R.done++;
  R.inflight--;
  if (!R.batch_open) {
    R.batch_open = 1;
    R.wakeups++;
  }
  if (R.done == R.n) {
    R.t_end = now;
    R.cpu_end = lb_process_cpu_ns();
  } else if (!R.topup_pending) {
    if ((rc = R.impl->loop_call_soon(R.loop, topup, NULL, NULL)) != LSPEC_OK)
      cb_fail(rc, "loop_call_soon");
    R.topup_pending = 1;
  }
  R.last_free = lb_now_ns();
}

/* Starts (LB_EXEC) or registers (LB_WATCH, already spawned) the idle
 * children. */
static void idle_setup(void *arg) {
  lspec_watcher *e = NULL;
  int i, slot, rc;

  (void)arg;
  if (R.c->mode == LB_WATCH && R.idle_launched == R.m) {
    if ((rc = R.impl->watcher_enter(R.w, &e)) != LSPEC_OK) {
      cb_fail(rc, "watcher_enter");
    } else {
      for (i = 0; i < R.m && !R.failed; i++) {
        if ((rc = watch_child(e, R.pid[R.n + i], R.n + i)) != LSPEC_OK)
          cb_fail(rc, "watcher_add_child_handler");
        else
          R.idle_registered++;
      }
      R.impl->watcher_exit(R.w);
      R.impl->watcher_release(e);
    }
  } else {
    for (i = R.idle_launched; i < R.m && !R.failed; i++) {
      slot = R.n + i;
      if (start_child(R.st->idle_argv, slot) != LSPEC_OK)
        break;
      R.idle_launched++;
      R.idle_registered++;
    }
  }
  R.setup_done = 1;
}

/* Spawns the idle children without registering them (LB_WATCH memory). */
static int idle_spawn_only(void) {
  pid_t pid;
  int i, err;

  for (i = 0; i < R.m; i++) {
    err = posix_spawn(&pid, R.st->idle_argv[0], NULL, NULL,
                      (char *const *)R.st->idle_argv, environ);
    if (err != 0) {
      lb_fail(R.r, LB_FAILED, "posix_spawn %s: %s", R.st->idle_argv[0],
              strerror(err));
      return -1;
    }
    R.pid[R.n + i] = pid;
    R.idle_launched++;
  }
  return 0;
}

static int pred_setup(void *arg) {
  (void)arg;
  return R.setup_done || R.failed;
}
static int pred_churn(void *arg) {
  (void)arg;
  return R.done >= R.n || R.failed;
}
static int pred_idle_gone(void *arg) {
  (void)arg;
  return R.idle_done >= R.idle_registered || R.failed;
}

/* Runs the loop until `pred`; 0, or -1 with the reason recorded. */
static int run_until(lspec_predicate pred, double timeout, const char *phase) {
  int rc = R.impl->loop_run_until(R.loop, pred, NULL, timeout);

  if (R.failed)
    return -1;
  if (rc == LSPEC_E_TIMEOUT) {
    R.failed = 1;
    lb_fail(R.r, LB_TIMEOUT,
            "%s: no progress after %.0f s (%d of %d children reported, %d of "
            "%d idle ones)",
            phase, timeout, R.done, R.n, R.idle_done, R.idle_registered);
    return -1;
  }
  if (rc != LSPEC_OK) {
    cb_fail(rc, "loop_run_until");
    return -1;
  }
  return 0;
}

/* Kills every child whose exit was not reported, and reaps whatever is
 * left (waiting at most 5 s).  Returns how many had to be reaped here. */
static int reap_leftovers(void) {
  struct timespec nap = {0, 1000000};
  int i, status, left = 0;
  int64_t deadline = lb_now_ns() + INT64_C(5000000000);
  pid_t p;

  for (i = 0; i < R.n + R.m; i++)
    if (R.pid[i] > 0 && !R.reported[i])
      kill(R.pid[i], SIGKILL);
  while (lb_now_ns() < deadline) {
    p = waitpid(-1, &status, WNOHANG);
    if (p > 0)
      left++;
    else if (p == 0)
      nanosleep(&nap, NULL);
    else if (errno != EINTR)
      break; /* ECHILD: nothing left */
  }
  return left;
}

static int fail_setup(int rc, const char *what) {
  cb_fail(rc, what);
  return -1;
}

static int setup(const struct lb_config *c) {
  const struct lspec_impl *impl = R.impl;
  int rc;

  if ((rc = impl->loop_new(LSPEC_BACKEND_DEFAULT, &R.loop)) != LSPEC_OK)
    return fail_setup(rc, "loop_new");
  if (c->kind != LSPEC_WATCHER_NATIVE) {
    if ((rc = impl->watcher_new(c->kind, &R.w)) != LSPEC_OK)
      return fail_setup(rc, "watcher_new");
    if (c->mode == LB_EXEC &&
        (rc = impl->set_child_watcher(R.w)) != LSPEC_OK)
      return fail_setup(rc, "set_child_watcher");
  } else if (c->mode == LB_WATCH) {
    R.failed = 1;
    lb_fail(R.r, LB_UNSUPPORTED,
            "NATIVE watches only what its loop spawns: no watch mode");
    return -1;
  }
  if ((rc = impl->set_event_loop(R.loop)) != LSPEC_OK)
    return fail_setup(rc, "set_event_loop");
  if (R.w != NULL && (rc = impl->watcher_attach_loop(R.w, R.loop)) != LSPEC_OK)
    return fail_setup(rc, "watcher_attach_loop");
  return 0;
}

static void teardown(const struct lb_config *c) {
  const struct lspec_impl *impl = R.impl;

  if (R.w != NULL) {
    impl->watcher_close(R.w);
    if (c->mode == LB_EXEC)
      impl->set_child_watcher(NULL);
  }
  impl->set_event_loop(NULL);
  if (R.loop != NULL)
    impl->loop_close(R.loop);
  if (R.w != NULL)
    impl->watcher_release(R.w);
  if (R.loop != NULL)
    impl->loop_release(R.loop);
  R.w = NULL;
  R.loop = NULL;
}

/* Latency and notification from the stamps. */
static int latencies(double *lat, double *notif) {
  int i;
  int64_t exit_ns, from;

  for (i = 0; i < R.n; i++) {
    exit_ns = R.st->slot[i];
    if (exit_ns == 0) {
      lb_fail(R.r, LB_FAILED, "child %d left no exit stamp", i);
      return -1;
    }
    from = exit_ns > R.t_free[i] ? exit_ns : R.t_free[i];
    lat[i] = (double)(R.t_cb[i] - exit_ns) / 1e3;
    notif[i] = (double)(R.t_cb[i] - from) / 1e3;
  }
  lb_dist_of(lat, (size_t)R.n, &R.r->lat, R.r->cdf);
  lb_dist_of(notif, (size_t)R.n, &R.r->notif, NULL);
  return 0;
}

static void memory_phase(const struct lb_options *o) {
  struct lb_procmem a, b;
  int rc;

  (void)o;
  if (R.c->mode == LB_WATCH && idle_spawn_only() != 0)
    return;
  /* Let the loop and the watcher settle, then the first snapshot. */
  if (run_until(NULL, 0.05, "memory: settling") != 0)
    return;
  lb_procmem_read(&a);
  if ((rc = R.impl->loop_call_soon(R.loop, idle_setup, NULL, NULL))) {
    cb_fail(rc, "loop_call_soon");
    return;
  }
  if (run_until(pred_setup, o->timeout * 0.8, "memory: registering") != 0)
    return;
  if (run_until(NULL, 0.5, "memory: settling") != 0)
    return;
  lb_procmem_read(&b);
  R.r->rss_kib = (b.rss_kib - a.rss_kib) / R.m;
  R.r->vsz_kib = (b.vsz_kib - a.vsz_kib) / R.m;
  R.r->threads = (double)(b.threads - a.threads) / R.m;
  R.r->fds = (double)(b.fds - a.fds) / R.m;
  R.r->threads_after = (double)b.threads;
  R.r->fds_after = (double)b.fds;
}

static void churn_phase(const struct lb_options *o) {
  double *lat = NULL, *notif = NULL;
  int64_t t0;
  int rc;

  if (R.m > 0) {
    t0 = lb_now_ns();
    if ((rc = R.impl->loop_call_soon(R.loop, idle_setup, NULL, NULL))) {
      cb_fail(rc, "loop_call_soon");
      return;
    }
    if (run_until(pred_setup, o->timeout * 0.8, "idle: registering") != 0)
      return;
    R.r->setup_seconds = (double)(lb_now_ns() - t0) / 1e9;
  }
  lat = calloc((size_t)R.n, sizeof *lat);
  notif = calloc((size_t)R.n, sizeof *notif);
  if (lat == NULL || notif == NULL) {
    R.failed = 1;
    lb_fail(R.r, LB_FAILED, "out of memory");
    goto out;
  }
  lb_stamps_clear(R.st);
  if ((rc = R.impl->loop_call_soon(R.loop, topup, NULL, NULL)) != LSPEC_OK) {
    cb_fail(rc, "loop_call_soon");
    goto out;
  }
  if (run_until(pred_churn, o->timeout * 0.8, "churn") != 0)
    goto out;
  R.r->seconds = (double)(R.t_end - R.t_start) / 1e9;
  R.r->rate = R.n / R.r->seconds;
  R.r->wakeups = (double)R.wakeups;
  R.r->per_wakeup = (double)R.n / (double)R.wakeups;
  R.r->cpu_us_per_child = (double)(R.cpu_end - R.cpu_start) / 1e3 / R.n;
  R.r->spawn_cpu_us = (double)R.spawn_cpu / 1e3 / R.n;
  R.r->loop_cpu_us =
      (double)(R.cpu_end - R.cpu_start - R.spawn_cpu) / 1e3 / (double)R.wakeups;
  if (R.st->stamp && latencies(lat, notif) != 0)
    R.failed = 1;
out:
  free(lat);
  free(notif);
}

void lb_abi_run(const struct lb_options *o, const struct lspec_impl *impl,
                const struct lb_config *c, struct lb_stamps *st,
                struct lb_result *r) {
  size_t slots;
  int i;

  memset(&R, 0, sizeof R);
  R.impl = impl;
  R.c = c;
  R.st = st;
  R.r = r;
  R.n = c->scenario == LB_MEMORY ? 0 : c->n;
  R.k = c->k;
  R.m = c->m;
  slots = (size_t)(R.n + R.m) + 1;
  R.pid = calloc(slots, sizeof *R.pid);
  R.reported = calloc(slots, 1);
  R.t_cb = calloc(slots, sizeof *R.t_cb);
  R.t_free = calloc(slots, sizeof *R.t_free);
  if (R.pid == NULL || R.reported == NULL || R.t_cb == NULL ||
      R.t_free == NULL) {
    lb_fail(r, LB_FAILED, "out of memory");
    goto out;
  }
  if (setup(c) == 0) {
    if (c->scenario == LB_MEMORY)
      memory_phase(o);
    else
      churn_phase(o);
    /* The idle children go: killed by pid, reported through the watcher. */
    if (!R.failed && R.m > 0) {
      for (i = 0; i < R.m; i++)
        if (R.pid[R.n + i] > 0)
          kill(R.pid[R.n + i], SIGKILL);
      run_until(pred_idle_gone, o->timeout * 0.8, "idle: killing");
    }
    if (!R.failed && (R.wrong != 0 || R.idle_wrong != 0)) {
      R.r->wrong = R.wrong + R.idle_wrong;
      lb_fail(r, LB_FAILED,
              "%d wrong exit statuses or unexpected callbacks (%s)",
              R.wrong + R.idle_wrong, R.first_wrong);
    }
  }
  teardown(c);
  r->leftover = reap_leftovers();
  if (r->status == LB_OK && r->leftover != 0)
    lb_fail(r, LB_FAILED, "%d children were left for the bench to reap",
            r->leftover);
out:
  free(R.pid);
  free(R.reported);
  free(R.t_cb);
  free(R.t_free);
  memset(&R, 0, sizeof R);
}
