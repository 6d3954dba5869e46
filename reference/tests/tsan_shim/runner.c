/* tsan_shim/runner.c - runs the tests registered through the shim's Test()
 * (see criterion/criterion.h): each in a forked child, in a process group
 * of its own, with its suite's and its own .init/.fini, under a timeout,
 * checking .signal/.exit_code, and tells the caller how each one ended
 * (shim_runner.h; main.c is the command line).  Judges as Criterion does:
 * a failing assertion fails the test, cr_skip/cr_skip_test and .disabled
 * skip it, a timeout or an unexpected signal crashes it.
 *
 * The runner itself never starts a thread, so it forks while it has a
 * single one, which ThreadSanitizer supports; a data race reported in a
 * child fails that test through TSan's exit code (66, or at once with
 * halt_on_error=1).
 *
 * How a child tells the runner what happened: a shared anonymous page
 * holds one slot per running test; the child claims its slot's state
 * (RUNNING -> FAILED or SKIPPED) with a compare-and-swap on a word that
 * also carries the test's sequence number, so a stray grandchild of an
 * earlier test cannot touch a later one's result.  The claimer then writes
 * the failed assertion or the skip's message into the slot, which the
 * runner reads once the child has ended.
 */
#define _GNU_SOURCE 1
#include "shim_runner.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_TIMEOUT 120.0
#define TSAN_EXIT_CODE 66 /* ThreadSanitizer's default exitcode */

enum { ST_RUNNING = 0, ST_FAILED = 1, ST_SKIPPED = 2 };

/* One running test's result, in memory shared with its child. */
struct slot {
  uint64_t word;      /* seq << 8 | ST_*; atomic */
  char message[4096]; /* the failure or skip message; by the claimer only */
};

static struct lt_shim_test *tests;   /* reversed until lt_shim_tests() */
static struct lt_shim_suite *suites; /* idem */
static int in_order;                 /* `tests` reversed into order */

/* In a test's child (and inherited by what it forks). */
static struct slot *my_slot;  /* this test's slot */
static uint64_t my_seq;       /* this test's sequence number */
static pid_t body_pid;        /* the test's process */
static pthread_t body_thread; /* the thread running the body */
static int body_armed;        /* body_jmp is valid */
static jmp_buf body_jmp;      /* back to the teardown after a failure */

void lt_shim_register_test(struct lt_shim_test *t) {
  t->next = tests;
  tests = t;
}

void lt_shim_register_suite(struct lt_shim_suite *s) {
  s->next = suites;
  suites = s;
}

/* Claims this test's result; 0 if another thread or process already did
 * (or the slot belongs to a later test).  A loser still ends its own
 * thread's part: the state the runner sees is the winner's. */
static int claim(int state) {
  uint64_t expected = my_seq << 8 | ST_RUNNING;
  if (my_slot == NULL)
    return 1; /* outside a test: the caller just exits */
  return __atomic_compare_exchange_n(&my_slot->word, &expected,
                                     my_seq << 8 | (uint64_t)state, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void lt_shim_fail(const char *file, int line, const char *expr, const char *fmt,
                  ...) {
  va_list ap;
  int won = claim(ST_FAILED);
  const char *base = strrchr(file, '/');
  base = base != NULL ? base + 1 : file;
  fprintf(stderr, "[----] %s:%d: Assertion Failed\n[----]   %s\n", file, line,
          expr);
  if (fmt[1] != '\0') {
    fprintf(stderr, "[----]   ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt + 1, ap);
    va_end(ap);
    fprintf(stderr, "\n");
  }
  fflush(stderr);
  if (won && my_slot != NULL) {
    /* The first failure is the test's: "file.c:LINE: message". */
    size_t len = sizeof my_slot->message;
    int n = snprintf(my_slot->message, len, "%s:%d: ", base, line);
    if (n < 0 || (size_t)n >= len)
      n = 0;
    if (fmt[1] != '\0') {
      va_start(ap, fmt);
      vsnprintf(my_slot->message + n, len - (size_t)n, fmt + 1, ap);
      va_end(ap);
    } else {
      snprintf(my_slot->message + n, len - (size_t)n, "%s", expr);
    }
  }
  /* Criterion longjmps back to the teardown, which runs the fixtures'
   * .fini; do the same when that is possible: the body's own process and
   * thread (tested first: body_armed is that thread's own variable). */
  if (won && getpid() == body_pid &&
      pthread_equal(pthread_self(), body_thread) && body_armed) {
    body_armed = 0;
    longjmp(body_jmp, 1);
  }
  _exit(1);
}

void lt_shim_skip(const char *fmt, ...) {
  va_list ap;
  if (claim(ST_SKIPPED) && my_slot != NULL) {
    va_start(ap, fmt);
    vsnprintf(my_slot->message, sizeof my_slot->message, fmt + 1, ap);
    va_end(ap);
  }
  fflush(NULL);
  _exit(0);
}

void lt_shim_log(const char *level, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "[%s] ", level);
  va_start(ap, fmt);
  vfprintf(stderr, fmt + 1, ap);
  va_end(ap);
  fprintf(stderr, "\n");
}

const struct lt_shim_test *lt_shim_tests(void) {
  struct lt_shim_test *t, *order = NULL, *next;
  /* The list is built backwards; put it in registration order, once. */
  if (!in_order) {
    for (t = tests; t != NULL; t = next) {
      next = t->next;
      t->next = order;
      order = t;
    }
    tests = order;
    in_order = 1;
  }
  return tests;
}

const struct lt_shim_options *lt_shim_suite_options(const char *name) {
  static const struct lt_shim_options none;
  const struct lt_shim_suite *s;
  for (s = suites; s != NULL; s = s->next)
    if (strcmp(s->name, name) == 0)
      return &s->options;
  return &none;
}

double lt_shim_default_timeout(const struct lt_shim_test *t) {
  const struct lt_shim_options *so = lt_shim_suite_options(t->suite);
  return t->options.timeout > 0 ? t->options.timeout
         : so->timeout > 0      ? so->timeout
                                : DEFAULT_TIMEOUT;
}

double lt_shim_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The child: fixtures and body, then exit. */
static void child_main(const struct lt_shim_run *run,
                       const struct lt_shim_test *t, struct slot *slot,
                       uint64_t seq) {
  const struct lt_shim_options *so = lt_shim_suite_options(t->suite);
  const struct lt_shim_options *to = &t->options;

  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  my_slot = slot;
  my_seq = seq;
  body_pid = getpid();
  body_thread = pthread_self();
  if (run->child_init)
    run->child_init(run->ctx);
  if (so->init)
    so->init();
  if (to->init)
    to->init();
  if (setjmp(body_jmp) == 0) {
    body_armed = 1;
    t->fn();
  }
  body_armed = 0;
  if (to->fini)
    to->fini();
  if (so->fini)
    so->fini();
  fflush(NULL);
  _exit((__atomic_load_n(&slot->word, __ATOMIC_ACQUIRE) & 0xff) == ST_FAILED);
}

struct job {
  const struct lt_shim_test *test; /* NULL when the job is free */
  pid_t pid;                       /* its child */
  double deadline;                 /* when it times out */
  double timeout;                  /* its timeout, for the report */
  struct slot *slot;               /* its result */
};

/* Judges a finished child into *o; `text` holds the runner's own words. */
static void judge(const struct job *j, int status, struct lt_shim_outcome *o,
                  char *text, size_t len) {
  const struct lt_shim_test *t = j->test;
  int want_signal = t->options.signal, want_exit = t->options.exit_code;
  int state = (int)(__atomic_load_n(&j->slot->word, __ATOMIC_ACQUIRE) & 0xff);

  memset(o, 0, sizeof *o);
  o->timeout = j->timeout;
  o->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (state == ST_SKIPPED && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    o->kind = LT_SHIM_SKIP;
    o->message = j->slot->message[0] ? j->slot->message : NULL;
    return;
  }
  if (state == ST_FAILED) {
    o->kind = LT_SHIM_FAIL;
    o->asserted = 1;
    o->message = j->slot->message;
    return;
  }
  if (WIFSIGNALED(status)) {
    if (want_signal != 0 && WTERMSIG(status) == want_signal)
      return; /* PASS */
    o->kind = LT_SHIM_CRASH;
    snprintf(text, len, "CRASH! (signal %d)", WTERMSIG(status));
    o->message = text;
    return;
  }
  if (want_signal != 0) {
    o->kind = LT_SHIM_FAIL;
    snprintf(text, len, "exited with status %d, expected signal %d",
             WEXITSTATUS(status), want_signal);
    o->message = text;
    return;
  }
  if (WEXITSTATUS(status) != want_exit) {
    o->kind = LT_SHIM_FAIL;
    snprintf(text, len, "exited with status %d%s", WEXITSTATUS(status),
             WEXITSTATUS(status) == TSAN_EXIT_CODE
                 ? " (ThreadSanitizer's exit code: see its report above)"
                 : "");
    o->message = text;
  }
}

static int start(const struct lt_shim_run *run, struct job *j,
                 const struct lt_shim_test *t, double timeout,
                 struct slot *slot, uint64_t seq) {
  pid_t pid;

  memset(slot->message, 0, sizeof slot->message);
  __atomic_store_n(&slot->word, seq << 8 | ST_RUNNING, __ATOMIC_RELEASE);
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return -1;
  }
  if (pid == 0)
    child_main(run, t, slot, seq);
  setpgid(pid, pid); /* also done by the child; whichever comes first */
  j->test = t;
  j->pid = pid;
  j->timeout = timeout;
  j->deadline = lt_shim_now() + timeout;
  j->slot = slot;
  return 0;
}

static void finished(const struct lt_shim_run *run,
                     const struct lt_shim_test *t,
                     const struct lt_shim_outcome *o) {
  if (run->finished)
    run->finished(run->ctx, t, o);
}

/* Kills a job's child and its process group, and reaps it. */
static void kill_job(struct job *j) {
  int status;
  kill(-j->pid, SIGKILL);
  kill(j->pid, SIGKILL);
  while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR) {
  }
}

int lt_shim_run(const struct lt_shim_run *run) {
  struct lt_shim_test *t;
  struct job jobs[LT_SHIM_MAX_JOBS];
  struct slot *slots;
  struct lt_shim_outcome o;
  int njobs = run->jobs, running = 0, i, stopped = 0;
  uint64_t seq = 0;
  struct timespec nap = {0, 5 * 1000 * 1000};
  char text[256];

  if (njobs < 1 || njobs > LT_SHIM_MAX_JOBS) {
    fprintf(stderr, "tsan shim: %d jobs: 1 to %d\n", njobs, LT_SHIM_MAX_JOBS);
    return -1;
  }
  slots = mmap(NULL, sizeof(struct slot) * LT_SHIM_MAX_JOBS,
               PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (slots == MAP_FAILED) {
    perror("mmap");
    return -1;
  }
  memset(jobs, 0, sizeof jobs);

  t = (struct lt_shim_test *)lt_shim_tests();
  for (;;) {
    /* Start what fits. */
    while (!stopped && t != NULL && running < njobs) {
      struct lt_shim_test *cur = t;
      double timeout = 0;
      t = t->next;
      if (run->select != NULL && !run->select(run->ctx, cur, &timeout))
        continue;
      if (cur->options.disabled || lt_shim_suite_options(cur->suite)->disabled) {
        memset(&o, 0, sizeof o);
        o.kind = LT_SHIM_DISABLED;
        o.exit_status = -1;
        o.message = "Test is disabled";
        finished(run, cur, &o);
        continue;
      }
      if (timeout <= 0)
        timeout = lt_shim_default_timeout(cur);
      for (i = 0; jobs[i].test != NULL; i++)
        ;
      if (start(run, &jobs[i], cur, timeout, &slots[i], ++seq) < 0) {
        memset(&o, 0, sizeof o);
        o.kind = LT_SHIM_CRASH;
        o.exit_status = -1;
        o.message = "the runner could not fork the test's process";
        finished(run, cur, &o);
        continue;
      }
      if (run->started)
        run->started(run->ctx, cur);
      running++;
    }
    if (running == 0)
      break;
    if (!stopped && run->deadline > 0 && lt_shim_now() > run->deadline) {
      stopped = 1;
      for (i = 0; i < njobs; i++)
        if (jobs[i].test != NULL) {
          kill_job(&jobs[i]);
          jobs[i].test = NULL;
          running--;
        }
      continue;
    }
    /* Reap what ended, kill what timed out. */
    for (i = 0; i < njobs; i++) {
      int status = 0;
      pid_t got;
      if (jobs[i].test == NULL)
        continue;
      got = waitpid(jobs[i].pid, &status, WNOHANG);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0) {
        snprintf(text, sizeof text, "waitpid: %s", strerror(errno));
        memset(&o, 0, sizeof o);
        o.kind = LT_SHIM_CRASH;
        o.exit_status = -1;
        o.message = text;
      } else if (got == jobs[i].pid) {
        judge(&jobs[i], status, &o, text, sizeof text);
      } else if (lt_shim_now() > jobs[i].deadline) {
        kill_job(&jobs[i]);
        memset(&o, 0, sizeof o);
        o.kind = LT_SHIM_TIMEOUT;
        o.exit_status = -1;
        o.signal = SIGKILL;
        o.timeout = jobs[i].timeout;
        snprintf(text, sizeof text, "Timed out. (%.2fs)", jobs[i].timeout);
        o.message = text;
      } else {
        continue;
      }
      finished(run, jobs[i].test, &o);
      jobs[i].test = NULL;
      running--;
    }
    nanosleep(&nap, NULL);
  }
  munmap(slots, sizeof(struct slot) * LT_SHIM_MAX_JOBS);
  return stopped;
}
