/* limit.c - what spawning and reaping cost with no event loop: the figure
 * every watcher is compared with.
 *
 * K children are started (posix_spawn, or vfork + execve), then those K are
 * reaped (waitpid(pid) when K = 1, waitpid(-1) K times otherwise), until N
 * children have run.  With stamping children and K = 1, the blocking
 * waitpid's return minus the child's exit stamp is the exit-notification
 * latency floor: the child's exit teardown and the kernel's wake-up, with
 * nothing of a loop in it.  Everything is allocated before the clock
 * starts.
 */
#define _GNU_SOURCE 1
#include "bench.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* vfork + execve; the child only calls execve and _exit. */
static __attribute__((noinline)) pid_t spawn_vfork(const char *const *argv) {
  pid_t pid = vfork();
  if (pid == 0) {
    execve(argv[0], (char *const *)argv, environ);
    _exit(127);
  }
  return pid;
}

static pid_t spawn_one(int method, const char *const *argv) {
  pid_t pid;
  int e;

  if (method == LB_LIM_VFORK)
    return spawn_vfork(argv);
  e = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
  if (e != 0) {
    errno = e;
    return -1;
  }
  return pid;
}

int lb_limit_run(int method, int k, int n, struct lb_stamps *st,
                 double *rate, struct lb_dist *lat, double *cdf,
                 struct lb_result *r) {
  pid_t *pids = calloc((size_t)k, sizeof *pids);
  int *slots = calloc((size_t)k, sizeof *slots);
  int64_t *t_wait = calloc((size_t)n, sizeof *t_wait);
  double *v = calloc((size_t)n, sizeof *v);
  int launched = 0, done = 0, wrong = 0, batch, i, j, status, rc = -1;
  int64_t t0, t1;
  pid_t pid;

  *rate = lb_nan();
  lat->p50 = lat->p90 = lat->p99 = lat->max = lb_nan();
  if (pids == NULL || slots == NULL || t_wait == NULL || v == NULL) {
    lb_fail(r, LB_FAILED, "limit: out of memory");
    goto out;
  }
  lb_stamps_clear(st);
  t0 = lb_now_ns();
  while (done < n) {
    batch = n - launched < k ? n - launched : k;
    for (i = 0; i < batch; i++) {
      slots[i] = launched;
      pids[i] = spawn_one(method, lb_stamps_argv(st, (size_t)launched));
      if (pids[i] < 0) {
        lb_fail(r, LB_FAILED, "limit: spawning %s: %s", st->argv[0],
                strerror(errno));
        for (j = 0; j < i; j++) /* leave no child behind */
          while (waitpid(pids[j], &status, 0) < 0 && errno == EINTR)
            ;
        goto out;
      }
      launched++;
    }
    for (i = 0; i < batch; i++) {
      do
        pid = waitpid(k == 1 ? pids[0] : -1, &status, 0);
      while (pid < 0 && errno == EINTR);
      if (pid < 0) {
        lb_fail(r, LB_FAILED, "limit: waitpid: %s", strerror(errno));
        goto out;
      }
      t1 = lb_now_ns();
      for (j = 0; j < batch && pids[j] != pid; j++)
        ;
      if (j < batch)
        t_wait[slots[j]] = t1;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        wrong++;
      done++;
    }
  }
  t1 = lb_now_ns();
  *rate = (double)n / ((double)(t1 - t0) / 1e9);
  if (wrong != 0) {
    lb_fail(r, LB_FAILED, "limit: %d children exited with a wrong status",
            wrong);
    goto out;
  }
  if (st->stamp && k == 1) {
    for (i = 0; i < n; i++) {
      if (st->slot[i] == 0) {
        lb_fail(r, LB_FAILED, "limit: child %d left no exit stamp", i);
        goto out;
      }
      v[i] = (double)(t_wait[i] - st->slot[i]) / 1e3;
    }
    lb_dist_of(v, (size_t)n, lat, cdf);
  }
  rc = 0;
out:
  free(pids);
  free(slots);
  free(t_wait);
  free(v);
  return rc;
}
