/* execute.c - runs the selected tests through Criterion 2.4 and collects
 * their results in this, the parent, process.  The only file of the runner
 * that includes a Criterion header.
 *
 * Facts about Criterion 2.4.1 (Debian's libcriterion-dev 2.4.1-2) that this
 * file relies on, each checked with a small program before being used:
 *  - BoxFort starts each worker by re-executing this binary (argv[0] reads
 *    "boxfort-worker") and enters the test without running main(): code in
 *    main(), before or after criterion_initialize(), never runs in a worker,
 *    and globals keep their initial values there.  Environment variables
 *    set before criterion_run_all_tests() do reach the workers.
 *  - Report hooks (ReportHook) run in the parent, on its main thread.  A test
 *    that ends normally gets PRE_INIT, POST_TEST, POST_FINI; a crash gets
 *    PRE_INIT and TEST_CRASH only (crashed and signal set); a timeout gets
 *    POST_TEST with timed_out set, then POST_FINI; cr_skip() gets status
 *    SKIPPED with its text in `message`; a non-zero exit gets status FAILED
 *    with exit_code set and no failed assertion.
 *  - A failed assertion in .fini does not change the test's status: only the
 *    POST_FINI hook sees it, in the assertion list (which holds the body's
 *    and the teardown's assertions, newest first).  A worker that dies or
 *    exits in .fini gets POST_TEST and no POST_FINI; one that dies in .init
 *    (a failed cr_assert there) gets no result hook at all.  So a result is
 *    final only at POST_FINI or TEST_CRASH, and the runner concludes the
 *    others itself (plan.c).
 *  - A test disabled in the parent (data->disabled) before the run gets no
 *    worker and no hook.  Setting data->timeout in the parent is honoured:
 *    the parent enforces it.  criterion_options.timeout is NOT a default: it
 *    only caps tests that already have a larger timeout, so every test's own
 *    timeout is set here.
 *  - criterion_options.logging_threshold = CRITERION_LOG_LEVEL_QUIET sends
 *    the parent's stderr AND the workers' stdout and stderr to /dev/null for
 *    the whole run, so it is not used; a logger whose entries are all NULL
 *    silences Criterion's own output and leaves the tests' alone.
 *  - Under valgrind criterion_initialize() forces one job; a -j given on the
 *    command line still overrides it.
 */
#include "runner.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>

/* Criterion 2.4.1 leaks a small block in the runner process for every test
 * that fails (fixed in 2.4.2), and the CPython side of a conflict fails on a
 * page-following implementation by design.  In ASan builds LeakSanitizer
 * therefore ignores what is allocated while Criterion runs the tests, in
 * this process only: the workers, where the implementation runs, are
 * separate processes and stay fully checked, and so does everything the
 * runner allocates before and after the run. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LR_LSAN_DISABLE() __lsan_disable()
#define LR_LSAN_ENABLE() __lsan_enable()
#else
#define LR_LSAN_DISABLE() ((void)0)
#define LR_LSAN_ENABLE() ((void)0)
#endif
#include <criterion/logging.h>
#include <criterion/options.h>
#include <criterion/stats.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The run the hooks write into.  Hooks are plain functions Criterion finds
 * in a linker section, with no user argument, so this is a global; it is
 * set only while criterion_run_all_tests() runs. */
static struct lr_run *current;

/* --- results from the hooks ------------------------------------------------
 */

static struct lr_test *test_of(const struct criterion_test *ct) {
  if (current == NULL || ct == NULL)
    return NULL;
  return lr_find_test(current, ct->category, ct->name);
}

static const char *base_name(const char *path) {
  const char *slash = path != NULL ? strrchr(path, '/') : NULL;
  return slash != NULL ? slash + 1 : (path != NULL ? path : "?");
}

/* Sets FAIL with the text of every failed assertion, oldest first, one per
 * line.  Returns false (and changes nothing) when none failed. */
static bool fail_from_asserts(struct lr_test *t,
                              const struct criterion_assert_stats *first) {
  const struct criterion_assert_stats *a;
  size_t n = 0, i, len = 0;
  const struct criterion_assert_stats **v;
  char *text, *p;

  for (a = first; a != NULL; a = a->next)
    if (!a->passed)
      n++;
  if (n == 0)
    return false;

  v = malloc(n * sizeof *v);
  if (v == NULL) {
    lr_set_result(t, LR_FAIL, "assertions failed (out of memory for details)");
    return true;
  }
  i = n;
  for (a = first; a != NULL; a = a->next)
    if (!a->passed) {
      v[--i] = a; /* The list is newest first. */
      len += strlen(base_name(a->file)) + 24 +
             strlen(a->message != NULL && a->message[0] ? a->message
                                                        : "assertion failed");
    }
  text = malloc(len + 1);
  if (text == NULL) {
    free(v);
    lr_set_result(t, LR_FAIL, "assertions failed (out of memory for details)");
    return true;
  }
  p = text;
  *p = '\0';
  for (i = 0; i < n; i++) {
    const char *m = v[i]->message != NULL && v[i]->message[0]
                        ? v[i]->message
                        : "assertion failed";
    p += sprintf(p, "%s%s:%u: %s", i ? "\n" : "", base_name(v[i]->file),
                 v[i]->line, m);
  }
  lr_set_result(t, LR_FAIL, "%s", text);
  free(text);
  free(v);
  return true;
}

ReportHook(PRE_INIT)(struct criterion_test *ct) {
  struct lr_test *t;
  if (current == NULL)
    return;
  pthread_mutex_lock(&current->lock);
  t = test_of(ct);
  if (t != NULL && t->state == LR_NOT_STARTED)
    t->state = LR_STARTED;
  pthread_mutex_unlock(&current->lock);
}

/* The body's result.  Final only for a test that then reaches POST_FINI. */
static void record_post_test(struct lr_test *t,
                             const struct criterion_test_stats *st) {
  t->state = LR_TESTED;
  if (st->timed_out)
    lr_set_result(t, LR_TIMEOUT, "timed out after %g s", t->timeout);
  else if (st->crashed)
    lr_set_result(t, LR_CRASH, "killed by signal %d (%s)", st->signal,
                  strsignal(st->signal));
  else if (st->test_status == CR_STATUS_SKIPPED)
    lr_set_skip_result(t, st->message);
  else if (st->test_status == CR_STATUS_FAILED) {
    if (!fail_from_asserts(t, st->asserts))
      lr_set_exit_result(t, st->exit_code, st->message);
  } else
    lr_set_result(t, LR_PASS, NULL);
}

/* A test's final result, once its teardown has run. */
static void record_post_fini(struct lr_test *t,
                             const struct criterion_test_stats *st) {
  if (t->state != LR_TESTED)
    record_post_test(t, st);
  /* A teardown's failed assertion (the harness's leak checks) makes the
   * test FAIL, which Criterion itself does not do. */
  if (!t->has_result || (t->result != LR_TIMEOUT && t->result != LR_CRASH))
    fail_from_asserts(t, st->asserts);
  t->state = LR_DONE;
}

/* A crash is final. */
static void record_crash(struct lr_test *t,
                         const struct criterion_test_stats *st) {
  if (st->signal > 0)
    lr_set_result(t, LR_CRASH, "killed by signal %d (%s)", st->signal,
                  strsignal(st->signal));
  else
    lr_set_result(t, LR_CRASH, "the test process crashed");
  t->state = LR_DONE;
}

/* What the result hooks share: during a run, with the run's lock held,
 * hands the test of `st` to `record` unless it has no entry in the run or
 * already has its final result. */
static void record_result(const struct criterion_test_stats *st,
                          void (*record)(struct lr_test *,
                                         const struct criterion_test_stats *)) {
  struct lr_test *t;
  if (current == NULL)
    return;
  pthread_mutex_lock(&current->lock);
  t = test_of(st->test);
  if (t != NULL && t->state != LR_DONE)
    record(t, st);
  pthread_mutex_unlock(&current->lock);
}

ReportHook(POST_TEST)(struct criterion_test_stats *st) {
  record_result(st, record_post_test);
}

ReportHook(POST_FINI)(struct criterion_test_stats *st) {
  record_result(st, record_post_fini);
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *st) {
  record_result(st, record_crash);
}

/* --- the outer time limit --------------------------------------------------
 */

/* Criterion enforces each test's timeout, but a runner that is itself stuck
 * (a lost message, a worker that never connects, the timeout deadlock fixed
 * in Criterion 2.4.2) would wait forever.  A watchdog thread waits for the
 * run to end; if the limit passes first it writes the reports with what is
 * known, marking unfinished tests, and ends the process.  Workers have
 * PR_SET_PDEATHSIG = SIGKILL, so they die with it. */
struct watchdog {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  struct timespec deadline; /* CLOCK_MONOTONIC */
  double seconds;
  int saved_stdout;
  lr_emergency_fn emergency;
  struct lr_run *run;
};

static void *watchdog_main(void *arg) {
  struct watchdog *w = arg;
  int rc = 0;

  pthread_mutex_lock(&w->mu);
  while (!w->done && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline);
  if (w->done) {
    pthread_mutex_unlock(&w->mu);
    return NULL;
  }
  pthread_mutex_unlock(&w->mu);

  /* Hold the results still for good: the process ends below. */
  pthread_mutex_lock(&w->run->lock);
  w->run->stopped = true;
  fprintf(stderr,
          LR_PROGRAM ": the run exceeded its time limit of %g s; stopping it "
                     "and reporting what finished\n",
          w->seconds);
  fflush(stdout);
  if (w->saved_stdout >= 0)
    dup2(w->saved_stdout, STDOUT_FILENO);
  w->emergency(w->run);
  fflush(NULL);
  _exit(LR_EXIT_FAILED);
}

/* Starts the watchdog for `run`.  Returns 0, or an error number. */
static int watchdog_start(struct watchdog *w, struct lr_run *run,
                          lr_emergency_fn emergency, int saved_stdout) {
  pthread_condattr_t attr;
  double secs = lr_run_time_limit(run);
  int rc;

  memset(w, 0, sizeof *w);
  w->seconds = secs;
  w->emergency = emergency;
  w->run = run;
  w->saved_stdout = saved_stdout;
  clock_gettime(CLOCK_MONOTONIC, &w->deadline);
  w->deadline.tv_sec += (time_t)secs;
  w->deadline.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
  if (w->deadline.tv_nsec >= 1000000000L) {
    w->deadline.tv_sec++;
    w->deadline.tv_nsec -= 1000000000L;
  }

  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &attr);
  pthread_condattr_destroy(&attr);
  rc = pthread_create(&w->thread, NULL, watchdog_main, w);
  if (rc != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
  }
  return rc;
}

static void watchdog_stop(struct watchdog *w) {
  pthread_mutex_lock(&w->mu);
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
}

/* --- the run
 * ------------------------------------------------------------------ */

/* Marks which Criterion tests run and gives each its timeout.  Returns 0,
 * or -1 after printing one line when a test the plan wants to run is not
 * linked into this binary. */
static int prepare(struct lr_run *run, struct criterion_test_set *set) {
  size_t i;

  FOREACH_SET(struct criterion_suite_set * s, set->suites) {
    if (s->tests == NULL)
      continue;
    FOREACH_SET(struct criterion_test * ct, s->tests) {
      struct lr_test *t = lr_find_test(run, ct->category, ct->name);
      if (t == NULL) {
        /* Not in the registry: nothing says which clause it checks. */
        fprintf(stderr,
                LR_PROGRAM ": warning: test %s::%s is not in the clause "
                           "registry; not run\n",
                ct->category, ct->name);
        ct->data->disabled = true;
        continue;
      }
      t->linked = true;
      ct->data->disabled = !t->to_run;
      if (t->to_run)
        ct->data->timeout = t->timeout;
    }
  }
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    if (t->to_run && !t->linked) {
      fprintf(stderr,
              LR_PROGRAM ": internal error: test %s::%s is in the clause "
                         "registry but not linked into " LR_PROGRAM "\n",
              t->reg->suite, t->reg->name);
      return -1;
    }
  }
  return 0;
}

/* A logger with no entries: Criterion prints nothing of its own. */
static struct criterion_logger silent_logger;

int lr_execute(struct lr_run *run, lr_emergency_fn emergency) {
  struct criterion_test_set *set;
  struct watchdog w;
  int saved_stdout, werr;

  set = criterion_initialize();
  if (prepare(run, set) != 0) {
    criterion_finalize(set);
    return -1;
  }
  criterion_options.logger = &silent_logger;
  criterion_options.measure_time = false;
  if (run->opt.jobs > 0)
    criterion_options.jobs = run->opt.jobs;

  /* stdout carries the report alone: whatever a test prints goes to
   * stderr, in the workers (which inherit the descriptor) and here. */
  fflush(stdout);
  saved_stdout = dup(STDOUT_FILENO);
  if (saved_stdout >= 0)
    dup2(STDERR_FILENO, STDOUT_FILENO);

  current = run;
  werr = watchdog_start(&w, run, emergency, saved_stdout);
  if (werr != 0)
    fprintf(stderr,
            LR_PROGRAM ": warning: no watchdog thread (%s); the run "
                       "has no outer time limit\n",
            strerror(werr));
  LR_LSAN_DISABLE();
  criterion_run_all_tests(set);
  LR_LSAN_ENABLE();
  if (werr == 0)
    watchdog_stop(&w);
  pthread_mutex_lock(&run->lock);
  current = NULL;
  pthread_mutex_unlock(&run->lock);

  fflush(stdout);
  if (saved_stdout >= 0) {
    dup2(saved_stdout, STDOUT_FILENO);
    close(saved_stdout);
  }
  criterion_finalize(set);
  return 0;
}
