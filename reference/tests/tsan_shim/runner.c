/* tsan_shim/runner.c - runs the tests registered through the shim's Test()
 * (see criterion/criterion.h): each in a forked child, with its suite's
 * and its own .init/.fini, under a timeout, checking .signal/.exit_code.
 * Prints one line per test and a Criterion-like synthesis; exits 1 if any
 * test failed.  An optional argument keeps only the tests whose
 * "suite::name" contains it.
 *
 * The runner forks while it has a single thread, which ThreadSanitizer
 * supports; a data race reported in a child fails that test through
 * TSan's exit code (or its abort with halt_on_error=1).
 */
#define _GNU_SOURCE 1
#include "criterion/criterion.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_TIMEOUT 120.0

static struct lt_shim_test *tests;   /* registration order, reversed */
static struct lt_shim_suite *suites; /* idem */

void lt_shim_register_test(struct lt_shim_test *t) {
  t->next = tests;
  tests = t;
}

void lt_shim_register_suite(struct lt_shim_suite *s) {
  s->next = suites;
  suites = s;
}

void lt_shim_fail(const char *file, int line, const char *expr,
                  const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s:%d: assertion failed: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n    %s\n", expr);
  fflush(stderr);
  _exit(1);
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

/* Runs one test in a child.  Returns 1 if it passed. */
static int run_one(const struct lt_shim_test *t) {
  const struct lt_shim_options *so = suite_options(t->suite);
  const struct lt_shim_options *to = &t->options;
  double timeout = to->timeout > 0   ? to->timeout
                   : so->timeout > 0 ? so->timeout
                                     : DEFAULT_TIMEOUT;
  int want_signal = to->signal, want_exit = to->exit_code, status = 0;
  double deadline = now() + timeout;
  struct timespec nap = {0, 5 * 1000 * 1000};
  pid_t pid, got;

  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 0;
  }
  if (pid == 0) {
    if (so->init)
      so->init();
    if (to->init)
      to->init();
    t->fn();
    if (to->fini)
      to->fini();
    if (so->fini)
      so->fini();
    fflush(NULL);
    _exit(0);
  }
  for (;;) {
    got = waitpid(pid, &status, WNOHANG);
    if (got == pid)
      break;
    if (got < 0 && errno != EINTR) {
      perror("waitpid");
      return 0;
    }
    if (now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      printf("[FAIL] %s::%s: Timed out. (%.2fs)\n", t->suite, t->name,
             timeout);
      return 0;
    }
    nanosleep(&nap, NULL);
  }
  if (WIFSIGNALED(status)) {
    if (WTERMSIG(status) == want_signal)
      return 1;
    printf("[FAIL] %s::%s: CRASH (signal %d)\n", t->suite, t->name,
           WTERMSIG(status));
    return 0;
  }
  if (want_signal == 0 && WEXITSTATUS(status) == want_exit)
    return 1;
  printf("[FAIL] %s::%s: exit status %d\n", t->suite, t->name,
         WEXITSTATUS(status));
  return 0;
}

int main(int argc, char **argv) {
  struct lt_shim_test *t, *order = NULL, *next;
  int tested = 0, passed = 0;
  char full[256];

  /* Restore registration order. */
  for (t = tests; t != NULL; t = next) {
    next = t->next;
    t->next = order;
    order = t;
  }
  for (t = order; t != NULL; t = t->next) {
    snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
    if (argc > 1 && strstr(full, argv[1]) == NULL)
      continue;
    if (t->options.disabled || suite_options(t->suite)->disabled)
      continue;
    tested++;
    if (run_one(t))
      passed++;
  }
  fprintf(stderr,
          "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
          "Crashing: 0 \n",
          tested, passed, tested - passed);
  return tested > 0 && passed == tested ? 0 : 1;
}
