/* execute_tsan.c - lr_execute() for loopspec-conform-tsan, the conformance
 * suite's ThreadSanitizer variant: runs the selected tests through the
 * Criterion stand-in of reference/tests/tsan_shim (its runner forks one
 * child per test) instead of Criterion, which cannot start in a process
 * that carries TSan's runtime (BoxFort aborts with "Could not initialize
 * inheritable arena", Snaipe/Criterion#274).  Everything else is
 * loopspec-conform's own code (main.c, plan.c, the reports): the same plan
 * decides what runs and what is UNSUPPORTED, the same rules turn a skip or
 * an exit into a result (outcome.c), the same reports come out.
 *
 * What differs from Criterion, and why it does not change a result:
 *  - a test runs in a fork of this process, not a re-executed one: the
 *    runner has only loaded the table (lh_load_impl) before forking, and
 *    each child loads it again and sets the profile in lh_begin(), as a
 *    Criterion worker does; the runner starts no thread (no watchdog: the
 *    shim's runner enforces the outer time limit itself), so it forks while
 *    single-threaded, as TSan requires;
 *  - TSan starts a thread of its own at a process's first pthread_create;
 *    each child starts (and joins) one thread before the test, so that
 *    TSan's thread is part of the harness's baseline and not a thread the
 *    test "left running";
 *  - a data race makes TSan end the test's process with status 66 (with
 *    halt_on_error=1, a default this program sets): the test FAILs with a
 *    message that says so, and TSan's report is on stderr.
 */
#define _GNU_SOURCE 1
#include "runner.h"

#include "shim_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ThreadSanitizer's exit status for a process in which it reported. */
#define LR_TSAN_EXIT_CODE 66

/* ThreadSanitizer's defaults in this program (TSAN_OPTIONS, read after
 * them, can still say otherwise):
 *  - halt_on_error=1: a race fails the test at once, also when TSAN_OPTIONS
 *    does not say so (a test's child ends with _exit(), where TSan would
 *    not change the status);
 *  - handle_segv=0 and its kin: TSan would turn a crash into a report and
 *    status 66, which reads as a race; left to the kernel, a crash is a
 *    death by signal, CRASH, as loopspec-conform reports it. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) {
  return "halt_on_error=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:"
         "handle_sigill=0";
}

/* --- TSan's own thread, started before the test ---------------------------- */

static void *note_tid(void *arg) {
  *(pid_t *)arg = (pid_t)syscall(SYS_gettid);
  return NULL;
}

/* In each test's child, before the fixtures: one thread started and joined,
 * then waited for until the kernel has removed it (at most 2 s). */
static void warm_up(void *ctx) {
  pthread_t th;
  pid_t tid = 0;
  char path[64];
  double until;
  struct timespec ms = {0, 1000 * 1000};

  (void)ctx;
  if (pthread_create(&th, NULL, note_tid, &tid) != 0)
    return; /* the test's own pthread_create will say why */
  pthread_join(th, NULL);
  snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
  until = lt_shim_now() + 2.0;
  while (access(path, F_OK) == 0 && lt_shim_now() < until)
    nanosleep(&ms, NULL);
}

/* --- the plan, through the shim's callbacks --------------------------------- */

static int select_test(void *ctx, const struct lt_shim_test *st,
                       double *timeout) {
  struct lr_run *run = ctx;
  struct lr_test *t = lr_find_test(run, st->suite, st->name);
  if (t == NULL || !t->to_run)
    return 0;
  *timeout = t->timeout;
  return 1;
}

static void started(void *ctx, const struct lt_shim_test *st) {
  struct lr_run *run = ctx;
  struct lr_test *t = lr_find_test(run, st->suite, st->name);
  pthread_mutex_lock(&run->lock);
  if (t != NULL && t->state == LR_NOT_STARTED)
    t->state = LR_STARTED;
  pthread_mutex_unlock(&run->lock);
}

static void finished(void *ctx, const struct lt_shim_test *st,
                     const struct lt_shim_outcome *o) {
  struct lr_run *run = ctx;
  struct lr_test *t = lr_find_test(run, st->suite, st->name);

  if (t == NULL)
    return;
  pthread_mutex_lock(&run->lock);
  switch (o->kind) {
  case LT_SHIM_PASS:
    lr_set_result(t, LR_PASS, NULL);
    break;
  case LT_SHIM_SKIP:
    lr_set_skip_result(t, o->message);
    break;
  case LT_SHIM_FAIL:
    if (o->asserted)
      lr_set_result(t, LR_FAIL, "%s", o->message ? o->message : "");
    else if (o->exit_status == LR_TSAN_EXIT_CODE)
      lr_set_result(t, LR_FAIL,
                    "the test process exited with status %d: "
                    "ThreadSanitizer reported a data race or another error "
                    "(its report is on stderr)",
                    o->exit_status);
    else
      lr_set_exit_result(t, o->exit_status > 0 ? o->exit_status : 0,
                         o->message);
    break;
  case LT_SHIM_TIMEOUT:
    lr_set_result(t, LR_TIMEOUT, "timed out after %g s", o->timeout);
    break;
  case LT_SHIM_CRASH:
    if (o->signal > 0)
      lr_set_result(t, LR_CRASH, "killed by signal %d (%s)", o->signal,
                    strsignal(o->signal));
    else
      lr_set_result(t, LR_CRASH, "the test process crashed%s%s",
                    o->message ? ": " : "", o->message ? o->message : "");
    break;
  case LT_SHIM_DISABLED:
    /* The tests are compiled without .disabled; nothing to record. */
    pthread_mutex_unlock(&run->lock);
    return;
  }
  t->state = LR_DONE;
  pthread_mutex_unlock(&run->lock);
}

/* Checks that every test the plan runs is linked in, as execute.c does
 * against Criterion's test set; warns about linked tests the registry does
 * not know (they do not run). */
static int check_linked(struct lr_run *run) {
  const struct lt_shim_test *st;
  size_t i;

  for (st = lt_shim_tests(); st != NULL; st = st->next) {
    struct lr_test *t = lr_find_test(run, st->suite, st->name);
    if (t == NULL) {
      fprintf(stderr,
              LR_PROGRAM ": warning: test %s::%s is not in the clause "
                         "registry; not run\n",
              st->suite, st->name);
      continue;
    }
    t->linked = true;
  }
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    if (t->to_run && !t->linked) {
      fprintf(stderr,
              LR_PROGRAM ": internal error: test %s::%s is in the clause "
                         "registry but not linked in\n",
              t->reg->suite, t->reg->name);
      return -1;
    }
  }
  return 0;
}

int lr_execute(struct lr_run *run, lr_emergency_fn emergency) {
  struct lt_shim_run sr;
  double limit = lr_run_time_limit(run);
  long ncpu;
  int saved_stdout, rc;

  if (check_linked(run) != 0)
    return -1;
  memset(&sr, 0, sizeof sr);
  ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  sr.jobs = run->opt.jobs > 0 ? (int)(run->opt.jobs < LT_SHIM_MAX_JOBS
                                          ? run->opt.jobs
                                          : LT_SHIM_MAX_JOBS)
                              : (int)(ncpu < 1                  ? 1
                                      : ncpu < LT_SHIM_MAX_JOBS ? ncpu
                                                                : LT_SHIM_MAX_JOBS);
  sr.ctx = run;
  sr.select = select_test;
  sr.started = started;
  sr.finished = finished;
  sr.child_init = warm_up;
  sr.deadline = lt_shim_now() + limit;

  /* stdout carries the report alone: whatever a test prints goes to
   * stderr (the children inherit the descriptors). */
  fflush(stdout);
  saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (saved_stdout >= 0)
    dup2(STDERR_FILENO, STDOUT_FILENO);

  rc = lt_shim_run(&sr);

  fflush(stdout);
  if (saved_stdout >= 0)
    dup2(saved_stdout, STDOUT_FILENO);
  if (rc < 0) {
    if (saved_stdout >= 0)
      close(saved_stdout);
    return -1;
  }
  if (rc == 1) {
    /* As execute.c's watchdog: report what finished, and end. */
    pthread_mutex_lock(&run->lock);
    run->stopped = true;
    fprintf(stderr,
            LR_PROGRAM ": the run exceeded its time limit of %g s; stopping "
                       "it and reporting what finished\n",
            limit);
    emergency(run);
    fflush(NULL);
    _exit(LR_EXIT_FAILED);
  }
  if (saved_stdout >= 0)
    close(saved_stdout);
  return 0;
}
