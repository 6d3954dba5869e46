/* loop_helpers.h - what the loop's unit tests (test_loop_*.c) share: the
 * ABI table, leak checks, a way to run one body on both backends, and small
 * callbacks that count or record their order.
 *
 * Every test wraps its body in lt_run(), which takes a baseline of open
 * descriptors and threads first and checks afterwards that the test left no
 * descriptor, thread or zombie behind.  Criterion's own descriptors and
 * threads are in the baseline, so they do not count.
 */
#ifndef LSPEC_TESTS_LOOP_HELPERS_H
#define LSPEC_TESTS_LOOP_HELPERS_H

#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <errno.h>
#include <loopspec/abi.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The implementation under test: the reference, linked statically. */
#undef I /* <complex.h>, through Criterion, defines I */
#define I (lspec_impl_v1())

/* Entries of a directory, "." and ".." excluded.  The DIR's own
 * descriptor is counted in every reading alike. */
static inline int lt_count_entries(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* Sleeps `ms` milliseconds.  Never used to synchronise: only to make it
 * likely that another thread has gone to sleep in the loop's wait, so the
 * wake-up path, not the fast path, is exercised. */
static inline void lt_nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Threads of this process.  A joined thread can stay listed for a moment
 * while the kernel finishes its exit, so callers wait for the value they
 * expect, within a bound. */
static inline int lt_threads_settle(int want) {
  int n = 0, i;
  for (i = 0; i < 1000; i++) {
    n = lt_count_entries("/proc/self/task");
    if (n == want)
      break;
    lt_nap(1);
  }
  return n;
}

/* A thread that only records its kernel id. */
static inline void *lt_tid_thread(void *arg) {
  *(pid_t *)arg = gettid();
  return NULL;
}

/* Waits (bounded) until thread `tid` has left /proc/self/task. */
static inline void lt_wait_thread_gone(pid_t tid) {
  char path[64];
  int i;
  snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
  for (i = 0; i < 1000 && access(path, F_OK) == 0; i++)
    lt_nap(1);
}

/* Ends a forked child with `code`.  The child never calls Criterion; it
 * closes what it inherited first, so valgrind --track-fds does not charge
 * the parent's descriptors (its loops) to the child. */
static inline void lt_child_exit(int code) {
  int fd;
  for (fd = 3; fd < 1024; fd++)
    close(fd);
  _exit(code);
}

/* ThreadSanitizer starts a background thread of its own at the first
 * pthread_create; a baseline of threads is taken after this. */
static inline void lt_sanitizer_warm_up(void) {
#ifdef __SANITIZE_THREAD__
  pthread_t warm;
  pid_t warm_tid = 0;
  if (pthread_create(&warm, NULL, lt_tid_thread, &warm_tid) == 0) {
    pthread_join(warm, NULL);
    lt_wait_thread_gone(warm_tid);
  }
#endif
}

/* Runs body(backend) between a baseline and a leak check. */
static inline void lt_run(void (*body)(int), int backend) {
  int fds, threads;
  siginfo_t info;

  lt_sanitizer_warm_up();
  fds = lt_count_entries("/proc/self/fd");
  threads = lt_count_entries("/proc/self/task");

  body(backend);
  cr_assert(eq(int, lt_count_entries("/proc/self/fd"), fds),
            "the test leaked a file descriptor");
  cr_assert(eq(int, lt_threads_settle(threads), threads),
            "the test left a thread running");
  memset(&info, 0, sizeof info);
  if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0)
    cr_assert(eq(int, info.si_pid, 0), "the test left a zombie");
}

/* LOOP_TEST(suite, name) { ... uses `backend` ... } defines two Criterion
 * tests, name_epoll and name_poll, running the same body on each backend. */
#define LOOP_TEST(suite, name, ...)                                            \
  static void suite##_##name##_body(int backend);                              \
  Test(suite, name##_epoll, ##__VA_ARGS__) {                                   \
    lt_run(suite##_##name##_body, LSPEC_BACKEND_EPOLL);                        \
  }                                                                            \
  Test(suite, name##_poll, ##__VA_ARGS__) {                                    \
    lt_run(suite##_##name##_body, LSPEC_BACKEND_POLL);                         \
  }                                                                            \
  static void suite##_##name##_body(int backend)

/* ONE_TEST(suite, name) { ... } is a single test with the same leak check;
 * `backend` is LSPEC_BACKEND_DEFAULT. */
#define ONE_TEST(suite, name, ...)                                             \
  static void suite##_##name##_body(int backend);                              \
  Test(suite, name, ##__VA_ARGS__) {                                           \
    lt_run(suite##_##name##_body, LSPEC_BACKEND_DEFAULT);                      \
  }                                                                            \
  static void suite##_##name##_body(int backend)

/* --- loops ----------------------------------------------------------------- */

static inline lspec_loop *lt_new_loop(int backend) {
  lspec_loop *loop = NULL;
  int rc = I->loop_new(backend, &loop);
  cr_assert(eq(int, rc, LSPEC_OK), "loop_new(%d): %s", backend,
            I->last_error());
  cr_assert(ne(ptr, loop, NULL), "loop_new gave no loop");
  return loop;
}

static inline void lt_free_loop(lspec_loop *loop) {
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "loop_close: %s",
            I->last_error());
  I->loop_release(loop);
}

/* Runs exactly one iteration: stop() before a run does that. */
static inline void lt_one_iteration(lspec_loop *loop) {
  cr_assert(eq(int, I->loop_stop(loop), LSPEC_OK), "stop: %s",
            I->last_error());
  cr_assert(eq(int, I->loop_run_forever(loop), LSPEC_OK), "run_forever: %s",
            I->last_error());
}

/* Runs iterations for `seconds`; run_until with no predicate. */
static inline void lt_run_for(lspec_loop *loop, double seconds) {
  cr_assert(eq(int, I->loop_run_until(loop, NULL, NULL, seconds), LSPEC_OK),
            "run_until(NULL, %g): %s", seconds, I->last_error());
}

/* Asserts that the last error message starts with `prefix`. */
#define LT_ASSERT_MSG(prefix)                                                  \
  cr_assert(eq(int, strncmp(I->last_error(), (prefix), strlen(prefix)), 0),   \
            "message \"%s\" should start with \"%s\"", I->last_error(),       \
            (prefix))

/* --- callbacks --------------------------------------------------------------- */

/* cb(&counter): counts its calls. */
static inline void lt_count_cb(void *arg) { (*(int *)arg)++; }

/* A predicate: the int at arg is at least lt_goal. */
struct lt_goal {
  const int *value; /* the counter to watch */
  int at_least;     /* the value that satisfies it */
};
static inline int lt_goal_reached(void *arg) {
  const struct lt_goal *g = arg;
  return *g->value >= g->at_least;
}

/* An order log: each entry's callback appends its tag. */
struct lt_log {
  int tags[256]; /* the tags, in call order */
  int n;         /* how many */
};
struct lt_entry {
  struct lt_log *log; /* where to append */
  int tag;            /* what to append */
};
static inline void lt_log_cb(void *arg) {
  struct lt_entry *e = arg;
  if (e->log->n < 256)
    e->log->tags[e->log->n++] = e->tag;
}

#endif /* LSPEC_TESTS_LOOP_HELPERS_H */
