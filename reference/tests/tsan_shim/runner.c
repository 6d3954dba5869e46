/* tsan_shim/runner.c - runs the tests registered through the shim's Test()
 * (see criterion/criterion.h): each in a forked child, in a process group
 * of its own, with its suite's and its own .init/.fini, under a timeout,
 * checking .signal/.exit_code.  Reports as Criterion does: a failing
 * assertion fails the test, cr_skip_test and .disabled skip it, a timeout
 * or an unexpected signal crashes it.  Prints on stderr, as Criterion
 * does, a line per failed or skipped test (and per passed one with
 * --verbose) and a Criterion-like synthesis, with the skipped count added;
 * exits 1 if any test failed or none was selected.
 *
 *   reference_unit_tests [--verbose] [-jN] [FILTER]
 *
 * -jN runs up to N tests at once (default 1); FILTER keeps only the tests
 * whose "suite::name" contains it.
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
 * earlier test cannot touch a later one's result.
 */
#define _GNU_SOURCE 1
#include "criterion/criterion.h"

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
#define MAX_JOBS 16
#define TSAN_EXIT_CODE 66 /* ThreadSanitizer's default exitcode */

enum { ST_RUNNING = 0, ST_FAILED = 1, ST_SKIPPED = 2 };

/* One running test's result, in memory shared with its child. */
struct slot {
  uint64_t word;     /* seq << 8 | ST_*; atomic */
  char message[512]; /* the skip message; written by the claimer only */
};

static struct lt_shim_test *tests;   /* registration order, reversed */
static struct lt_shim_suite *suites; /* idem */
static struct slot *slots;           /* MAX_JOBS slots, MAP_SHARED */

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

static const struct lt_shim_options *suite_options(const char *name) {
  static const struct lt_shim_options none;
  const struct lt_shim_suite *s;
  for (s = suites; s != NULL; s = s->next)
    if (strcmp(s->name, name) == 0)
      return &s->options;
  return &none;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The child: fixtures and body, then exit. */
static void child_main(const struct lt_shim_test *t, struct slot *slot,
                       uint64_t seq) {
  const struct lt_shim_options *so = suite_options(t->suite);
  const struct lt_shim_options *to = &t->options;

  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  my_slot = slot;
  my_seq = seq;
  body_pid = getpid();
  body_thread = pthread_self();
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

/* Outcomes. */
enum { R_PASS, R_FAIL, R_CRASH, R_SKIP };

struct job {
  const struct lt_shim_test *test; /* NULL when the job is free */
  pid_t pid;                       /* its child */
  double deadline;                 /* when it times out */
  double timeout;                  /* its timeout, for the report */
  struct slot *slot;               /* its result */
};

static int verbose;

/* Judges a finished child; prints its line. */
static int judge(const struct job *j, int status) {
  const struct lt_shim_test *t = j->test;
  int want_signal = t->options.signal, want_exit = t->options.exit_code;
  int state = (int)(__atomic_load_n(&j->slot->word, __ATOMIC_ACQUIRE) & 0xff);

  if (state == ST_SKIPPED && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    fprintf(stderr, "[SKIP] %s::%s: %s\n", t->suite, t->name,
            j->slot->message[0] ? j->slot->message : "Test was skipped");
    return R_SKIP;
  }
  if (state == ST_FAILED) {
    fprintf(stderr, "[FAIL] %s::%s\n", t->suite, t->name);
    return R_FAIL;
  }
  if (WIFSIGNALED(status)) {
    if (want_signal != 0 && WTERMSIG(status) == want_signal)
      goto pass;
    fprintf(stderr, "[FAIL] %s::%s: CRASH! (signal %d)\n", t->suite, t->name,
            WTERMSIG(status));
    return R_CRASH;
  }
  if (want_signal != 0) {
    fprintf(stderr,
            "[FAIL] %s::%s: exited with status %d, expected signal %d\n",
            t->suite, t->name, WEXITSTATUS(status), want_signal);
    return R_FAIL;
  }
  if (WEXITSTATUS(status) != want_exit) {
    fprintf(stderr, "[FAIL] %s::%s: exited with status %d%s\n", t->suite,
            t->name, WEXITSTATUS(status),
            WEXITSTATUS(status) == TSAN_EXIT_CODE
                ? " (ThreadSanitizer's exit code: see its report above)"
                : "");
    return R_FAIL;
  }
pass:
  if (verbose)
    fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
  return R_PASS;
}

static int start(struct job *j, const struct lt_shim_test *t, struct slot *slot,
                 uint64_t seq) {
  const struct lt_shim_options *so = suite_options(t->suite);
  double timeout = t->options.timeout > 0 ? t->options.timeout
                   : so->timeout > 0      ? so->timeout
                                          : DEFAULT_TIMEOUT;
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
    child_main(t, slot, seq);
  setpgid(pid, pid); /* also done by the child; whichever comes first */
  j->test = t;
  j->pid = pid;
  j->timeout = timeout;
  j->deadline = now() + timeout;
  j->slot = slot;
  return 0;
}

static void usage(const char *argv0) {
  fprintf(stderr, "usage: %s [--verbose] [-jN] [FILTER]\n", argv0);
  exit(2);
}

int main(int argc, char **argv) {
  struct lt_shim_test *t, *order = NULL, *next;
  struct job jobs[MAX_JOBS];
  const char *filter = NULL;
  int njobs = 1, running = 0, i, selected = 0;
  int counts[4] = {0, 0, 0, 0};
  uint64_t seq = 0;
  struct timespec nap = {0, 5 * 1000 * 1000};
  char full[256];

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0)
      verbose = 1;
    else if (strncmp(argv[i], "-j", 2) == 0) {
      njobs = atoi(argv[i] + 2);
      if (njobs < 1 || njobs > MAX_JOBS)
        usage(argv[0]);
    } else if (argv[i][0] == '-' || filter != NULL)
      usage(argv[0]);
    else
      filter = argv[i];
  }
  slots = mmap(NULL, sizeof(struct slot) * MAX_JOBS, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (slots == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  memset(jobs, 0, sizeof jobs);

  /* Restore registration order. */
  for (t = tests; t != NULL; t = next) {
    next = t->next;
    t->next = order;
    order = t;
  }
  t = order;
  for (;;) {
    /* Start what fits. */
    while (t != NULL && running < njobs) {
      struct lt_shim_test *cur = t;
      t = t->next;
      snprintf(full, sizeof full, "%s::%s", cur->suite, cur->name);
      if (filter != NULL && strstr(full, filter) == NULL)
        continue;
      selected++;
      if (cur->options.disabled || suite_options(cur->suite)->disabled) {
        fprintf(stderr, "[SKIP] %s: Test is disabled\n", full);
        counts[R_SKIP]++;
        continue;
      }
      for (i = 0; jobs[i].test != NULL; i++)
        ;
      if (start(&jobs[i], cur, &slots[i], ++seq) < 0) {
        counts[R_CRASH]++;
        continue;
      }
      running++;
    }
    if (running == 0)
      break;
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
        perror("waitpid");
        counts[R_CRASH]++;
      } else if (got == jobs[i].pid) {
        counts[judge(&jobs[i], status)]++;
      } else if (now() > jobs[i].deadline) {
        kill(-jobs[i].pid, SIGKILL);
        kill(jobs[i].pid, SIGKILL);
        waitpid(jobs[i].pid, &status, 0);
        fprintf(stderr, "[FAIL] %s::%s: Timed out. (%.2fs)\n",
                jobs[i].test->suite, jobs[i].test->name, jobs[i].timeout);
        counts[R_CRASH]++;
      } else {
        continue;
      }
      jobs[i].test = NULL;
      running--;
    }
    nanosleep(&nap, NULL);
  }
  fprintf(stderr,
          "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
          "Crashing: %d | Skipped: %d \n",
          counts[R_PASS] + counts[R_FAIL] + counts[R_CRASH], counts[R_PASS],
          counts[R_FAIL] + counts[R_CRASH], counts[R_CRASH], counts[R_SKIP]);
  return selected > 0 && counts[R_FAIL] + counts[R_CRASH] == 0 ? 0 : 1;
}
