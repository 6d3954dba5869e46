/* harness.c - the per-test lifecycle and the helpers of harness.h.
 *
 * Runs inside Criterion's workers, one test per process (Criterion 2.4
 * re-executes the binary for each test, so only the environment crosses from
 * the runner: see registry.h).  Rules kept here, from the Criterion 2.4.1
 * field notes (shared/research/conformance-models.md B):
 *   - typed assertions only, always with a message;
 *   - Criterion is called only from the test's own thread: threads and loop
 *     callbacks record failures ("soft" mode) and the test's thread reports;
 *   - an exit() in the middle of a test would be reported as a pass, so an
 *     atexit guard turns an exit before lh_end()/lh_fini() into a failure.
 */
#define _GNU_SOURCE 1 /* pipe2 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "impl_load.h"

const struct lspec_impl *lh_impl;

/* --- small utilities ------------------------------------------------------- */

double lh_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* Names (names.h) with the harness's word for a value v1 does not define. */
static const char *custom_watchers_name(uint32_t v) {
  const char *name = lh_custom_watchers_name(v);
  return name != NULL ? name : "an undefined value";
}

/* --- test state ----------------------------------------------------------- */

static const struct lh_test *current;
static char clause_prefix[256]; /* "[LOOP-SET-001, LOOP-SET-002] " */
static volatile int finished = 1; /* 0 between lh_begin and lh_end/lh_fini */
static int guard_installed;

/* Soft mode: set in threads the harness starts and inside loop blocks. */
static _Thread_local int soft_mode;

/* The first failure recorded in soft mode, reported by the test's thread. */
static pthread_mutex_t soft_lock = PTHREAD_MUTEX_INITIALIZER;
static int soft_failures;
static int soft_unresolved; /* the first soft failure is the environment's */
static char soft_message[2304];

const struct lh_test *lh_current_test(void) { return current; }

const char *lh_follow(void) {
  const char *f = getenv("LSPEC_CONFORM_FOLLOW");
  return (f && *f) ? f : "doc";
}

int lh_profile(void) { return lh_impl ? lh_impl->get_profile() : 0; }

/* The early-exit guard (conformance-models.md B4.4): a test that calls exit()
 * before lh_end() would otherwise be reported PASS. */
static void exit_guard(void) {
  if (!finished) {
    static const char msg[] =
        "loopspec harness: the process exited in the middle of a test "
        "(exit() called by the test or the implementation)\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(86);
  }
}

/* --- failures ------------------------------------------------------------------ */

static void hard_fail(const char *message, long got, long want) {
  /* Typed assertion, always with a message (B4.1, B3). */
  cr_assert(eq(i64, (int64_t)got, (int64_t)want), "%s", message);
  /* Never reached when got != want; callers make sure it is not equal. */
  cr_assert(eq(int, 0, 1), "%s", message);
}

/* Records (soft) or raises (hard) a failure with the test's clause ids in
 * front.  got/want are shown in the hard diff. */
static int failv(long got, long want, const char *fmt, va_list ap) {
  char body[2000];
  char message[2304]; /* clause_prefix (256) + body */
  vsnprintf(body, sizeof body, fmt, ap);
  snprintf(message, sizeof message, "%s%s", clause_prefix, body);
  if (soft_mode) {
    pthread_mutex_lock(&soft_lock);
    if (soft_failures++ == 0)
      snprintf(soft_message, sizeof soft_message, "%s", message);
    pthread_mutex_unlock(&soft_lock);
    return 0;
  }
  if (got == want)
    want = got + 1;
  hard_fail(message, got, want);
  return 0;
}

static int failn(long got, long want, const char *fmt, ...) LH_PRINTF(3, 4);
static int failn(long got, long want, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(got, want, fmt, ap);
  va_end(ap);
  return 0;
}

int lh_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(0, 1, fmt, ap);
  va_end(ap);
  return 0;
}

static void quiet_clean_up(void);

int lh_unresolved(const char *fmt, ...) {
  char body[1500];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  if (soft_mode) {
    pthread_mutex_lock(&soft_lock);
    if (soft_failures++ == 0) {
      snprintf(soft_message, sizeof soft_message, "%s", body);
      soft_unresolved = 1;
    }
    pthread_mutex_unlock(&soft_lock);
    return 0;
  }
  /* cr_skip runs neither .fini nor lh_end: release what the test made
   * now, so that a skipped test leaves nothing behind either. */
  quiet_clean_up();
  finished = 1; /* cr_skip does not run .fini */
  cr_skip("UNRESOLVED: %s%s", clause_prefix, body);
  return 0;
}

int lh_check(int cond, const char *what, const char *fmt, ...) {
  char body[1500];
  va_list ap;
  if (cond)
    return 1;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  return lh_fail("%s: %s", what, body);
}

/* Reports, from the current context, failures recorded in soft mode since
 * `before` (the count when the block started). */
static int report_soft(int before, const char *what) {
  char message[sizeof soft_message];
  int n, unresolved;
  pthread_mutex_lock(&soft_lock);
  n = soft_failures;
  unresolved = soft_unresolved;
  snprintf(message, sizeof message, "%s", soft_message);
  if (!soft_mode && n > before) {
    soft_failures = 0; /* reported now */
    soft_unresolved = 0;
    soft_message[0] = '\0';
  }
  pthread_mutex_unlock(&soft_lock);
  if (n <= before)
    return 1;
  if (soft_mode)
    return 0; /* already recorded; the outer block reports it */
  if (unresolved)
    return lh_unresolved("%s (in the block started by: %s)", message, what);
  /* The message already carries the clause prefix. */
  {
    static char full[sizeof soft_message + 1024];
    snprintf(full, sizeof full, "%s (in the block started by: %s)", message,
             what);
    hard_fail(full, 0, 1);
  }
  return 0;
}

static int soft_count(void) {
  int n;
  pthread_mutex_lock(&soft_lock);
  n = soft_failures;
  pthread_mutex_unlock(&soft_lock);
  return n;
}

/* --- expectations ------------------------------------------------------------- */

static const char *impl_error(void) {
  const char *e = lh_impl ? lh_impl->last_error() : NULL;
  return e ? e : "(NULL)";
}

int lh_expect(int rc, int want, const char *substr, const char *what) {
  int ok = want == LH_ANY_ERROR ? rc < 0 : rc == want;
  if (!ok && want != LSPEC_E_OS && want != LH_ANY_ERROR &&
      rc == LSPEC_E_OS && lh_impl != NULL && lh_impl->last_errno() == ENOSYS)
    /* The platform lacks a system call the implementation needs (pidfd_open
     * on an old kernel or under valgrind): the environment's failure. */
    return lh_unresolved("%s: the platform lacks a system call the "
                         "implementation needs (ENOSYS): %s",
                         what, impl_error());
  if (!ok) {
    if (want == LH_ANY_ERROR)
      return failn(rc, -1,
                   "%s: expected a failure status, got %s (%s); "
                   "last_error: \"%s\"",
                   what, lh_status_name(rc), lh_status_class(rc),
                   rc < 0 ? impl_error() : "");
    return failn(rc, want,
                 "%s: expected %s (%s), got %s (%s); last_error: \"%s\"", what,
                 lh_status_name(want), lh_status_class(want),
                 lh_status_name(rc), lh_status_class(rc),
                 rc < 0 ? impl_error() : "");
  }
  if (substr && rc < 0) {
    const char *e = impl_error();
    if (strstr(e, substr) == NULL)
      return lh_fail("%s: %s as expected, but last_error \"%s\" does not "
                     "contain \"%s\"",
                     what, lh_status_name(rc), e, substr);
  }
  return 1;
}

int lh_expect_out(int rc, int want, const char *substr, int kind, void *handle,
                  const char *what) {
  char saved[512];
  /* Keep the message: tracking may not call the implementation, but be
   * safe for the checks below. */
  snprintf(saved, sizeof saved, "%s", rc < 0 ? impl_error() : "");
  if (handle)
    lh_track(kind, handle);
  if (!lh_expect(rc, want, substr, what))
    return 0;
  if (rc == LSPEC_OK && handle == NULL)
    return lh_fail("%s: returned LSPEC_OK but the out parameter is NULL "
                   "(a success must hand out a handle)",
                   what);
  if (rc != LSPEC_OK && handle != NULL)
    return lh_fail("%s: failed with %s but set the out parameter to a "
                   "handle (it must be NULL on failure); last_error: \"%s\"",
                   what, lh_status_name(rc), saved);
  return 1;
}

int lh_check_int(long got, long want, const char *expr, const char *what) {
  if (got == want)
    return 1;
  if (got < 0 && got >= LSPEC_STATUS_MIN_)
    return failn(got, want,
                 "%s: %s is %ld, expected %ld (it returned the status %s; "
                 "last_error: \"%s\")",
                 what, expr, got, want, lh_status_name((int)got),
                 impl_error());
  return failn(got, want, "%s: %s is %ld, expected %ld", what, expr, got,
               want);
}

int lh_check_same(const void *a, const void *b, int want_same,
                  const char *what) {
  if ((a == b) == (want_same != 0))
    return 1;
  return failn((long)(a == b), (long)(want_same != 0),
               "%s: the handles %p and %p are %s, expected %s", what, a, b,
               a == b ? "the same object" : "different objects",
               want_same ? "the same object" : "different objects");
}

int lh_check_null(const void *a, int want_null, const char *what) {
  if ((a == NULL) == (want_null != 0))
    return 1;
  return failn((long)(a == NULL), (long)(want_null != 0),
               "%s: the handle is %p, expected %s", what, a,
               want_null ? "NULL" : "a handle");
}

/* --- tracking ---------------------------------------------------------------- */

#define LH_MAX_TRACKED 512
#define LH_MAX_FDS 64

static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int kind;
  void *handle;
} tracked[LH_MAX_TRACKED];
static int ntracked;
static int tracked_fds[LH_MAX_FDS];
static int ntracked_fds;

void lh_track(int kind, void *handle) {
  int overflow = 0;
  if (handle == NULL)
    return;
  pthread_mutex_lock(&track_lock);
  if (ntracked < LH_MAX_TRACKED) {
    tracked[ntracked].kind = kind;
    tracked[ntracked].handle = handle;
    ntracked++;
  } else {
    overflow = 1;
  }
  pthread_mutex_unlock(&track_lock);
  if (overflow)
    lh_fail("harness: more than %d handles in one test", LH_MAX_TRACKED);
}

lspec_loop *lh_loop_new(int backend) {
  lspec_loop *l = NULL;
  char what[64];
  int rc = lh_impl->loop_new(backend, &l);
  snprintf(what, sizeof what, "loop_new(%d)", backend);
  if (!lh_expect_out(rc, LSPEC_OK, NULL, LH_LOOP, l, what))
    return NULL;
  return l;
}

static void track_fd(int fd) {
  pthread_mutex_lock(&track_lock);
  if (ntracked_fds < LH_MAX_FDS)
    tracked_fds[ntracked_fds++] = fd;
  pthread_mutex_unlock(&track_lock);
}

int lh_pipe(int fds[2], const char *what) {
  if (pipe2(fds, O_CLOEXEC) != 0)
    return lh_unresolved("%s: pipe2: %s", what, strerror(errno));
  track_fd(fds[0]);
  track_fd(fds[1]);
  return 1;
}

void lh_close_fd(int fd) {
  pthread_mutex_lock(&track_lock);
  for (int i = 0; i < ntracked_fds; i++) {
    if (tracked_fds[i] == fd) {
      tracked_fds[i] = tracked_fds[--ntracked_fds];
      close(fd);
      break;
    }
  }
  pthread_mutex_unlock(&track_lock);
}

int lh_write(int fd, const char *bytes, const char *what) {
  size_t len = strlen(bytes);
  ssize_t n = write(fd, bytes, len);
  if (n != (ssize_t)len)
    return lh_fail("%s: write(%d): %s", what, fd,
                   n < 0 ? strerror(errno) : "short write");
  return 1;
}

/* --- counters, traces ------------------------------------------------------- */

void lh_counter_cb(void *counter) {
  atomic_fetch_add(&((lh_counter *)counter)->n, 1);
}

long lh_counter_get(lh_counter *c) { return atomic_load(&c->n); }

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static char trace_buf[1024];

void lh_mark_cb(void *text) {
  pthread_mutex_lock(&trace_lock);
  size_t used = strlen(trace_buf);
  snprintf(trace_buf + used, sizeof trace_buf - used, "%s",
           (const char *)text);
  pthread_mutex_unlock(&trace_lock);
}

size_t lh_trace_len(void) {
  size_t n;
  pthread_mutex_lock(&trace_lock);
  n = strlen(trace_buf);
  pthread_mutex_unlock(&trace_lock);
  return n;
}

void lh_trace_get(char *buf, size_t len) {
  pthread_mutex_lock(&trace_lock);
  snprintf(buf, len, "%s", trace_buf);
  pthread_mutex_unlock(&trace_lock);
}

int lh_check_trace(const char *want, const char *what) {
  char got[sizeof trace_buf];
  lh_trace_get(got, sizeof got);
  if (strcmp(got, want) == 0)
    return 1;
  return lh_fail("%s: the callbacks ran in the order \"%s\", expected \"%s\"",
                 what, got, want);
}

void lh_stop_cb(void *loop) {
  int rc = lh_impl->loop_stop((lspec_loop *)loop);
  if (rc != LSPEC_OK) {
    int saved = soft_mode;
    soft_mode = 1; /* a callback: never call Criterion from here */
    lh_expect(rc, LSPEC_OK, NULL, "loop_stop from a stop() callback");
    soft_mode = saved;
  }
}

int lh_goal_pred(void *goal) {
  struct lh_goal *g = goal;
  if (g->counter)
    return lh_counter_get(g->counter) >= g->n;
  if (g->rec)
    return lh_recorder_calls(g->rec) >= g->n;
  return (long)lh_trace_len() >= g->n;
}

int lh_run_until_count(lspec_loop *l, lh_counter *c, long n, double timeout,
                       const char *what) {
  struct lh_goal g = {c, n, NULL};
  int rc = lh_impl->loop_run_until(l, lh_goal_pred, &g, timeout);
  return lh_expect(rc, LSPEC_OK, NULL, what);
}

/* --- spies --------------------------------------------------------------------- */

struct lh_spy {
  atomic_long calls[LH_SPY_NMETHODS];
};

#define LH_MAX_SPIES 16
static lh_spy spies[LH_MAX_SPIES];
static atomic_int nspies;

static int spy_get_event_loop(void *user, lspec_policy *self,
                              lspec_loop **out) {
  atomic_fetch_add(&((lh_spy *)user)->calls[LH_SPY_GET_EVENT_LOOP], 1);
  return lh_impl->policy_super_get_event_loop(self, out);
}
static int spy_set_event_loop(void *user, lspec_policy *self,
                              lspec_loop *loop) {
  atomic_fetch_add(&((lh_spy *)user)->calls[LH_SPY_SET_EVENT_LOOP], 1);
  return lh_impl->policy_super_set_event_loop(self, loop);
}
static int spy_new_event_loop(void *user, lspec_policy *self,
                              lspec_loop **out) {
  atomic_fetch_add(&((lh_spy *)user)->calls[LH_SPY_NEW_EVENT_LOOP], 1);
  return lh_impl->policy_super_new_event_loop(self, out);
}
static int spy_get_child_watcher(void *user, lspec_policy *self,
                                 lspec_watcher **out) {
  atomic_fetch_add(&((lh_spy *)user)->calls[LH_SPY_GET_CHILD_WATCHER], 1);
  return lh_impl->policy_super_get_child_watcher(self, out);
}
static int spy_set_child_watcher(void *user, lspec_policy *self,
                                 lspec_watcher *w) {
  atomic_fetch_add(&((lh_spy *)user)->calls[LH_SPY_SET_CHILD_WATCHER], 1);
  return lh_impl->policy_super_set_child_watcher(self, w);
}
static void spy_destroy(void *user) { (void)user; }

static const struct lspec_policy_methods spy_methods = {
    .size = sizeof(struct lspec_policy_methods),
    .get_event_loop = spy_get_event_loop,
    .set_event_loop = spy_set_event_loop,
    .new_event_loop = spy_new_event_loop,
    .get_child_watcher = spy_get_child_watcher,
    .set_child_watcher = spy_set_child_watcher,
    .destroy = spy_destroy,
};

int lh_spy_policy_new(int base, lh_spy **spy, lspec_policy **out,
                      const char *what) {
  int i = atomic_fetch_add(&nspies, 1);
  lspec_policy *p = NULL;
  int rc;
  *out = NULL;
  if (i >= LH_MAX_SPIES)
    return lh_fail("harness: more than %d spy policies in one test",
                   LH_MAX_SPIES);
  *spy = &spies[i];
  rc = lh_impl->policy_new_custom(base, &spy_methods, &spies[i], &p);
  if (!lh_expect_out(rc, LSPEC_OK, NULL, LH_POLICY, p, what))
    return 0;
  *out = p;
  return 1;
}

long lh_spy_calls(const lh_spy *spy, int method) {
  if (spy == NULL || method < 0 || method >= LH_SPY_NMETHODS)
    return -1;
  return atomic_load(&spy->calls[method]);
}

/* --- warnings -------------------------------------------------------------------- */

#define LH_MAX_WARNINGS 256
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int category;
  char text[256];
} warnings[LH_MAX_WARNINGS];
static int nwarnings;
static int warnings_dropped;

static void warning_hook(void *user, int category, const char *text) {
  (void)user;
  pthread_mutex_lock(&warn_lock);
  if (nwarnings < LH_MAX_WARNINGS) {
    warnings[nwarnings].category = category;
    snprintf(warnings[nwarnings].text, sizeof warnings[nwarnings].text, "%s",
             text ? text : "");
    nwarnings++;
  } else {
    warnings_dropped++;
  }
  pthread_mutex_unlock(&warn_lock);
}

int lh_warning_count(int category) {
  int n = 0;
  pthread_mutex_lock(&warn_lock);
  for (int i = 0; i < nwarnings; i++)
    n += warnings[i].category == category;
  pthread_mutex_unlock(&warn_lock);
  return n;
}

int lh_warned(int category, const char *substr) {
  int found = 0;
  pthread_mutex_lock(&warn_lock);
  for (int i = 0; i < nwarnings && !found; i++)
    found = warnings[i].category == category &&
            (substr == NULL || strstr(warnings[i].text, substr) != NULL);
  pthread_mutex_unlock(&warn_lock);
  return found;
}

void lh_clear_warnings(void) {
  pthread_mutex_lock(&warn_lock);
  nwarnings = 0;
  warnings_dropped = 0;
  pthread_mutex_unlock(&warn_lock);
}

/* All recorded warnings, for failure messages. */
static void warnings_summary(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  pthread_mutex_lock(&warn_lock);
  for (int i = 0; i < nwarnings && used + 1 < len; i++) {
    int n = snprintf(buf + used, len - used, "%s%s: \"%s\"", i ? "; " : "",
                     lh_warning_name(warnings[i].category), warnings[i].text);
    if (n < 0)
      break;
    used += (size_t)n;
  }
  pthread_mutex_unlock(&warn_lock);
  if (buf[0] == '\0')
    snprintf(buf, len, "none");
}

int lh_check_warned(int category, const char *substr, int want,
                    const char *what) {
  char all[1024];
  if (want) {
    if (lh_warned(category, substr))
      return 1;
    warnings_summary(all, sizeof all);
    if (substr)
      return lh_fail("%s: expected a %s containing \"%s\"; recorded: %s",
                     what, lh_warning_name(category), substr, all);
    return lh_fail("%s: expected a %s; recorded: %s", what,
                   lh_warning_name(category), all);
  }
  if (lh_warning_count(category) == 0)
    return 1;
  warnings_summary(all, sizeof all);
  return lh_fail("%s: expected no %s; recorded: %s", what,
                 lh_warning_name(category), all);
}

/* --- threads and blocks ------------------------------------------------------ */

struct lh_thread {
  pthread_t tid;
  void (*fn)(void *);
  void *arg;
  int before; /* soft failures already recorded when it started */
};

static void *thread_main(void *p) {
  struct lh_thread *t = p;
  soft_mode = 1;
  t->fn(t->arg);
  return NULL;
}

lh_thread *lh_thread_start(void (*fn)(void *), void *arg, const char *what) {
  struct lh_thread *t = calloc(1, sizeof *t);
  int err;
  if (t == NULL) {
    lh_fail("%s: out of memory starting a thread", what);
    return NULL;
  }
  t->fn = fn;
  t->arg = arg;
  t->before = soft_mode ? soft_count() : 0;
  err = pthread_create(&t->tid, NULL, thread_main, t);
  if (err != 0) {
    free(t);
    lh_unresolved("%s: pthread_create: %s", what, strerror(err));
    return NULL;
  }
  return t;
}

int lh_thread_join(lh_thread *t, const char *what) {
  int err, before;
  if (t == NULL)
    return 0;
  err = pthread_join(t->tid, NULL);
  before = t->before;
  free(t);
  if (err != 0)
    return lh_fail("%s: pthread_join: %s", what, strerror(err));
  return report_soft(before, what);
}

int lh_run_in_thread(void (*fn)(void *), void *arg, const char *what) {
  lh_thread *t = lh_thread_start(fn, arg, what);
  if (t == NULL)
    return 0;
  return lh_thread_join(t, what);
}

struct loop_block {
  void (*fn)(void *);
  void *arg;
  int ran;
};

static void loop_block_cb(void *p) {
  struct loop_block *b = p;
  int saved = soft_mode;
  soft_mode = 1;
  b->fn(b->arg);
  soft_mode = saved;
  b->ran = 1;
}

static int loop_block_done(void *p) { return ((struct loop_block *)p)->ran; }

int lh_run_in_loop(lspec_loop *l, void (*fn)(void *), void *arg,
                   double timeout, const char *what) {
  struct loop_block b = {fn, arg, 0};
  int before = soft_mode ? soft_count() : 0;
  int rc = lh_impl->loop_call_soon(l, loop_block_cb, &b, NULL);
  char step[600];
  snprintf(step, sizeof step, "%s (scheduling the block with loop_call_soon)",
           what);
  if (!lh_expect(rc, LSPEC_OK, NULL, step))
    return 0;
  rc = lh_impl->loop_run_until(l, loop_block_done, &b, timeout);
  snprintf(step, sizeof step, "%s (running the loop until the block ran)",
           what);
  if (!b.ran || rc != LSPEC_OK) {
    if (!report_soft(before, what))
      return 0;
    if (!b.ran)
      return lh_expect(rc == LSPEC_OK ? LSPEC_E_TIMEOUT : rc, LSPEC_OK, NULL,
                       step);
    return lh_expect(rc, LSPEC_OK, NULL, step);
  }
  return report_soft(before, what);
}

int lh_wait_until(int (*cond)(void *), void *arg, double timeout) {
  double deadline = lh_now() + timeout;
  for (;;) {
    if (cond(arg))
      return 1;
    if (lh_now() >= deadline)
      return 0;
    sleep_ms(1);
  }
}

/* --- child processes ------------------------------------------------------ */

/* In a forked child just before _exit: closes every descriptor >= lowest. */
static void close_all_fds_from(int lowest) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int fds[1024], n = 0, self;
  if (d == NULL)
    return;
  self = dirfd(d);
  while ((e = readdir(d)) != NULL && n < 1024) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd >= lowest && fd != self)
      fds[n++] = fd;
  }
  closedir(d);
  for (int i = 0; i < n; i++)
    close(fds[i]);
}

int lh_in_child(int (*fn)(void *arg, char *why, size_t len), void *arg,
                double timeout, const char *what) {
  int fds[2], status = 0, timed_out = 0;
  char why[512] = "";
  size_t got = 0;
  pid_t pid;
  struct pollfd pfd;
  double deadline = lh_now() + timeout;

  if (pipe2(fds, O_CLOEXEC) != 0)
    return lh_unresolved("%s: pipe2: %s", what, strerror(errno));
  pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return lh_unresolved("%s: fork: %s", what, strerror(err));
  }
  if (pid == 0) {
    /* The child: no Criterion, no atexit handlers (_exit). */
    char reason[512] = "";
    int ok;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    ok = fn(arg, reason, sizeof reason);
    if (write(fds[1], reason, strlen(reason)) < 0) {
      /* nothing to do: the parent reports the exit status alone */
    }
    /* The copies of the parent's descriptors (its loops', Criterion's) are
     * the parent's to close; closing them here keeps descriptor checkers
     * (valgrind --track-fds) from charging them to the child. */
    close_all_fds_from(3);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  /* The pipe reaches EOF when the child exits: an event, so no sleeping. */
  pfd.fd = fds[0];
  pfd.events = POLLIN;
  for (;;) {
    double left = deadline - lh_now();
    int n;
    ssize_t r;
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    n = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      timed_out = n == 0;
      break;
    }
    r = read(fds[0], why + got, sizeof why - 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break; /* EOF: the child is gone */
    got += (size_t)r;
    if (got >= sizeof why - 1)
      break;
  }
  why[got] = '\0';
  close(fds[0]);
  if (timed_out)
    kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return lh_fail("%s: the child process did not finish within %.1f s "
                   "(killed)",
                   what, timeout);
  if (WIFSIGNALED(status))
    return lh_fail("%s: the child process died of signal %d%s%s", what,
                   WTERMSIG(status), got ? ": " : "", why);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return lh_fail("%s: in the child: %s", what,
                   got ? why : "failed without a reason");
  return 1;
}

/* --- children the harness spawns, recorders ------------------------------- */

#define LH_MAX_CHILDREN 128

static struct {
  int pid;
  int impl;    /* spawned by the implementation (loop_subprocess_exec) */
  int gate;    /* write end of a GATED child's gate, else -1 */
  int ended;   /* reaped by the harness (its own business is done) */
} children[LH_MAX_CHILDREN];
static int nchildren;

static int child_slot(int pid) {
  for (int i = 0; i < nchildren; i++)
    if (children[i].pid == pid)
      return i;
  return -1;
}

static int add_child(int pid, int impl, int gate) {
  int ok;
  pthread_mutex_lock(&track_lock);
  ok = nchildren < LH_MAX_CHILDREN;
  if (ok) {
    children[nchildren].pid = pid;
    children[nchildren].impl = impl;
    children[nchildren].gate = gate;
    children[nchildren].ended = 0;
    nchildren++;
  }
  pthread_mutex_unlock(&track_lock);
  return ok;
}

void lh_track_impl_child(int pid) {
  if (pid > 0 && !add_child(pid, 1, -1))
    lh_fail("harness: more than %d children in one test", LH_MAX_CHILDREN);
}

/* In the forked child: async-signal-safe calls only. */
static void child_close_fds_except(int keep) {
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536)
    max = 65536;
#ifdef SYS_close_range
  if (keep < 0) {
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
      return;
  } else if ((keep <= 3 ||
              syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0) &&
             syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0) {
    return;
  }
#endif
  for (int fd = 3; fd < max; fd++)
    if (fd != keep)
      close(fd);
}

static void child_main(int mode, int value, int gate, pid_t parent) {
  struct sigaction sa;
  sigset_t none;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL); /* EINVAL for the reserved ones: fine */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) /* the worker died before prctl took effect */
    _exit(127);
  child_close_fds_except(gate);
  switch (mode) {
  case LH_CHILD_EXIT:
    _exit(value & 0xff);
  case LH_CHILD_SIGNAL:
    raise(value);
    _exit(127); /* not deadly after all */
  case LH_CHILD_GATED: {
    char c;
    while (read(gate, &c, 1) < 0 && errno == EINTR) {
    }
    _exit(value & 0xff);
  }
  default:
    for (;;)
      pause();
  }
}

int lh_spawn_child(int mode, int value, int *pid_out, const char *what) {
  int gate[2] = {-1, -1};
  pid_t pid, parent;
  *pid_out = 0;
  if (mode == LH_CHILD_GATED && pipe2(gate, O_CLOEXEC) != 0)
    return lh_unresolved("%s: pipe2: %s", what, strerror(errno));
  parent = getpid();
  pid = fork();
  if (pid < 0) {
    int err = errno;
    if (gate[0] >= 0) {
      close(gate[0]);
      close(gate[1]);
    }
    return lh_unresolved("%s: fork: %s", what, strerror(err));
  }
  if (pid == 0)
    child_main(mode, value, gate[0], parent);
  if (gate[0] >= 0)
    close(gate[0]);
  if (!add_child(pid, 0, gate[1])) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (gate[1] >= 0)
      close(gate[1]);
    return lh_fail("%s: harness: more than %d children in one test", what,
                   LH_MAX_CHILDREN);
  }
  *pid_out = pid;
  return 1;
}

int lh_child_release(int pid, const char *what) {
  int i, gate = -1;
  pthread_mutex_lock(&track_lock);
  i = child_slot(pid);
  if (i >= 0) {
    gate = children[i].gate;
    children[i].gate = -1;
  }
  pthread_mutex_unlock(&track_lock);
  if (gate < 0)
    return lh_fail("%s: child %d is not a gated child of this test (or was "
                   "released already)",
                   what, pid);
  close(gate);
  return 1;
}

int lh_child_kill(int pid, int sig, const char *what) {
  if (pid <= 0)
    return lh_fail("%s: no child to signal (pid %d)", what, pid);
  if (kill(pid, sig) != 0)
    return lh_fail("%s: kill(%d, %d): %s", what, pid, sig, strerror(errno));
  return 1;
}

int lh_child_reap(int pid, double timeout, const char *what) {
  double deadline = lh_now() + timeout;
  int status, i;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return lh_fail("%s: waitpid(%d): %s (someone else reaped it first)",
                     what, pid, strerror(errno));
    if (lh_now() >= deadline)
      return lh_fail("%s: child %d did not end within %.1f s", what, pid,
                     timeout);
    sleep_ms(1);
  }
  pthread_mutex_lock(&track_lock);
  i = child_slot(pid);
  if (i >= 0)
    children[i].ended = 1;
  pthread_mutex_unlock(&track_lock);
  return 1;
}

int lh_child_state(int pid) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return LH_CHILD_GONE;
  return info.si_pid == pid ? LH_CHILD_ZOMBIE : LH_CHILD_RUNNING;
}

struct reaped_wait {
  int pid;
};

static int child_gone(void *p) {
  return lh_child_state(((struct reaped_wait *)p)->pid) == LH_CHILD_GONE;
}

static int child_ended(void *p) {
  return lh_child_state(((struct reaped_wait *)p)->pid) != LH_CHILD_RUNNING;
}

int lh_check_reaped(int pid, int want_reaped, double timeout,
                    const char *what) {
  static const char *const names[] = {"still running",
                                      "ended but not reaped (a zombie)",
                                      "reaped"};
  int state;
  if (pid <= 0)
    return lh_fail("%s: no child (pid %d)", what, pid);
  {
    struct reaped_wait rw = {pid};
    lh_wait_until(want_reaped ? child_gone : child_ended, &rw, timeout);
  }
  state = lh_child_state(pid);
  if (want_reaped && state == LH_CHILD_GONE)
    return 1;
  if (!want_reaped && state == LH_CHILD_ZOMBIE)
    return 1;
  return lh_fail("%s: child %d is %s, expected it to be %s", what, pid,
                 names[state], want_reaped ? "reaped" : "a zombie nobody "
                                                        "reaped");
}

int lh_sigchld_handled(void) {
  struct sigaction sa;
  if (sigaction(SIGCHLD, NULL, &sa) != 0)
    return -1;
  if (sa.sa_flags & SA_SIGINFO)
    return 1;
  return sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
}

/* End of test, before the handles are released: every child still running
 * is killed and every gate closed, and the harness waits (bounded) until
 * they have all ended, so that what the implementation does at release
 * time sees them ended. */
static void kill_children(void) {
  pthread_mutex_lock(&track_lock);
  for (int i = 0; i < nchildren; i++) {
    if (children[i].gate >= 0) {
      close(children[i].gate);
      children[i].gate = -1;
    }
    if (!children[i].ended &&
        lh_child_state(children[i].pid) == LH_CHILD_RUNNING)
      kill(children[i].pid, SIGKILL);
  }
  for (int i = 0; i < nchildren; i++) {
    struct reaped_wait rw = {children[i].pid};
    if (!children[i].ended)
      lh_wait_until(child_ended, &rw, 2.0);
  }
  pthread_mutex_unlock(&track_lock);
}

/* After the handles are released: the harness's children are reaped (the
 * implementation may be reaping them at the same moment: either is fine);
 * the implementation's are given a moment to be reaped by it.  Returns the
 * number of implementation children left zombies, listed in buf. */
static int reap_children(char *buf, size_t len) {
  int nzombies = 0;
  size_t used = 0;
  buf[0] = '\0';
  pthread_mutex_lock(&track_lock);
  for (int i = 0; i < nchildren; i++) {
    struct reaped_wait rw = {children[i].pid};
    if (children[i].ended)
      continue;
    if (children[i].impl) {
      lh_wait_until(child_gone, &rw, 2.0);
      if (lh_child_state(rw.pid) != LH_CHILD_GONE) {
        int w = snprintf(buf + used, used < len ? len - used : 0, "%s%d",
                         nzombies ? ", " : "", rw.pid);
        if (w > 0)
          used += (size_t)w;
        nzombies++;
      }
    }
    {
      double deadline = lh_now() + 2.0;
      for (;;) {
        pid_t r = waitpid(rw.pid, NULL, WNOHANG);
        if (r == rw.pid || (r < 0 && errno != EINTR) || lh_now() > deadline)
          break;
        if (r == 0)
          sleep_ms(1);
      }
    }
    children[i].ended = 1;
  }
  nchildren = 0;
  pthread_mutex_unlock(&track_lock);
  return nzombies;
}

static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;

void lh_record_cb(int pid, int returncode, void *recorder) {
  lh_recorder *r = recorder;
  lspec_loop *running = NULL;
  int i;
  if (lh_impl->get_running_loop(&running) != LSPEC_OK)
    running = NULL;
  if (running != NULL)
    lh_impl->loop_release(running); /* identity only */
  pthread_mutex_lock(&record_lock);
  i = atomic_load(&r->n);
  if (i < LH_RECORDER_MAX) {
    r->calls[i].pid = pid;
    r->calls[i].returncode = returncode;
    r->calls[i].thread = (unsigned long)pthread_self();
    r->calls[i].running_loop = running;
  }
  atomic_store(&r->n, i + 1);
  pthread_mutex_unlock(&record_lock);
}

long lh_recorder_calls(lh_recorder *r) { return atomic_load(&r->n); }

long lh_recorder_returncode(lh_recorder *r, int pid) {
  long rc = LH_NO_CALL;
  pthread_mutex_lock(&record_lock);
  for (int i = 0; i < atomic_load(&r->n) && i < LH_RECORDER_MAX; i++)
    if (r->calls[i].pid == pid)
      rc = r->calls[i].returncode;
  pthread_mutex_unlock(&record_lock);
  return rc;
}

long lh_recorder_calls_for(lh_recorder *r, int pid) {
  long n = 0;
  pthread_mutex_lock(&record_lock);
  for (int i = 0; i < atomic_load(&r->n) && i < LH_RECORDER_MAX; i++)
    n += r->calls[i].pid == pid;
  pthread_mutex_unlock(&record_lock);
  return n;
}

/* --- watchers ----------------------------------------------------------------- */

lspec_watcher *lh_watcher_new(int kind, const char *what) {
  lspec_watcher *w = NULL;
  int rc = lh_impl->watcher_new(kind, &w);
  if (rc == LSPEC_E_UNAVAILABLE) {
    lh_unresolved("%s: the platform cannot offer this watcher kind: %s", what,
                  lh_impl->last_error());
    return NULL;
  }
  if (!lh_expect_out(rc, LSPEC_OK, NULL, LH_WATCHER, w, what))
    return NULL;
  return w;
}

struct lh_reg {
  lspec_watcher *w;
  const int *pids;
  int n;
  lspec_child_callback cb;
  void *arg;
  int rc;
};

static void reg_cb(void *p) {
  struct lh_reg *r = p;
  lspec_watcher *e = NULL;
  if (lh_impl->watcher_enter(r->w, &e) == LSPEC_OK && e != NULL)
    lh_impl->watcher_release(e);
  r->rc = LSPEC_OK;
  for (int i = 0; i < r->n && r->rc == LSPEC_OK; i++)
    r->rc = lh_impl->watcher_add_child_handler(r->w, r->pids[i], r->cb,
                                               r->arg);
  lh_impl->watcher_exit(r->w);
}

int lh_register_in_loop(lspec_loop *l, lspec_watcher *w, const int *pids,
                        int n, lspec_child_callback cb, void *arg,
                        const char *what) {
  struct lh_reg r = {w, pids, n, cb, arg, LSPEC_E_INTERNAL};
  if (!lh_run_in_loop(l, reg_cb, &r, 5.0, what))
    return 0;
  return lh_expect(r.rc, LSPEC_OK, NULL, what);
}

static void recorder_summary(lh_recorder *r, char *buf, size_t len) {
  size_t used = 0;
  int n;
  buf[0] = '\0';
  pthread_mutex_lock(&record_lock);
  n = atomic_load(&r->n);
  for (int i = 0; i < n && i < LH_RECORDER_MAX && used + 1 < len; i++) {
    int w = snprintf(buf + used, len - used, "%s(pid %d, returncode %d)",
                     i ? ", " : "", r->calls[i].pid, r->calls[i].returncode);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  pthread_mutex_unlock(&record_lock);
  if (n == 0)
    snprintf(buf, len, "no calls");
}

int lh_check_exited(lh_recorder *r, int pid, int returncode,
                    const char *what) {
  char all[1024];
  int found = 0;
  pthread_mutex_lock(&record_lock);
  for (int i = 0; i < atomic_load(&r->n) && i < LH_RECORDER_MAX && !found;
       i++)
    found = r->calls[i].pid == pid && r->calls[i].returncode == returncode;
  pthread_mutex_unlock(&record_lock);
  if (found)
    return 1;
  recorder_summary(r, all, sizeof all);
  return lh_fail("%s: expected a call (pid %d, returncode %d); recorded: %s",
                 what, pid, returncode, all);
}

int lh_check_called_in_loop(lh_recorder *r, lspec_loop *l, const char *what) {
  int n, bad = -1;
  const void *got = NULL;
  pthread_mutex_lock(&record_lock);
  n = atomic_load(&r->n);
  for (int i = 0; i < n && i < LH_RECORDER_MAX && bad < 0; i++) {
    const void *rl = r->calls[i].running_loop;
    if (rl == NULL || (l != NULL && rl != (const void *)l)) {
      bad = i;
      got = rl;
    }
  }
  pthread_mutex_unlock(&record_lock);
  if (n == 0)
    return lh_fail("%s: the callback was never called", what);
  if (bad < 0)
    return 1;
  if (got == NULL)
    return lh_fail("%s: call %d of the callback ran in a thread with no "
                   "running loop (expected it inside %s)",
                   what, bad + 1, l ? "that loop" : "a running loop");
  return lh_fail("%s: call %d of the callback ran inside loop %p, expected "
                 "loop %p",
                 what, bad + 1, got, (const void *)l);
}

/* --- baseline and leak checks ------------------------------------------------ */

#define LH_MAX_BASE_FDS 1024
static int base_fds[LH_MAX_BASE_FDS];
static int nbase_fds;
static int base_threads;

/* The fds open now, sorted ascending; returns the count (<= max). */
static int list_fds(int *out, int max) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0, self;
  if (d == NULL)
    return -1;
  self = dirfd(d);
  while ((e = readdir(d)) != NULL) {
    char *end;
    long fd;
    if (e->d_name[0] == '.')
      continue;
    fd = strtol(e->d_name, &end, 10);
    if (*end != '\0' || fd == self)
      continue;
    if (n < max)
      out[n++] = (int)fd;
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* insertion sort: few fds */
    for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
      int t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

int lh_fd_count(void) {
  int fds[LH_MAX_BASE_FDS];
  return list_fds(fds, LH_MAX_BASE_FDS);
}

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
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

int lh_thread_count(void) { return count_threads(); }

static int threads_back_to_base(void *unused) {
  (void)unused;
  return count_threads() <= base_threads;
}

static const char *tolerated_fd_prefix; /* lh_tolerate_fd_leak, per test */

void lh_tolerate_fd_leak(const char *target_prefix) {
  tolerated_fd_prefix = target_prefix;
}

static void check_leaks(void) {
  int now[LH_MAX_BASE_FDS];
  int n = list_fds(now, LH_MAX_BASE_FDS);
  char leaked[1024];
  size_t used = 0;
  int nleaked = 0, threads, status;
  pid_t zombie;

  leaked[0] = '\0';
  for (int i = 0; i < n; i++) {
    int known = 0;
    for (int j = 0; j < nbase_fds && !known; j++)
      known = base_fds[j] == now[i];
    if (!known) {
      char path[64], target[256];
      ssize_t len;
      snprintf(path, sizeof path, "/proc/self/fd/%d", now[i]);
      len = readlink(path, target, sizeof target - 1);
      target[len > 0 ? len : 0] = '\0';
      if (tolerated_fd_prefix != NULL &&
          strncmp(target, tolerated_fd_prefix, strlen(tolerated_fd_prefix)) ==
              0)
        continue;
      if (used < sizeof leaked) {
        int w = snprintf(leaked + used, sizeof leaked - used, "%s%d -> %s",
                         nleaked ? ", " : "", now[i], target);
        if (w > 0)
          used += (size_t)w;
      }
      nleaked++;
    }
  }
  cr_assert(eq(int, nleaked, 0),
            "%send of test: %d file descriptor(s) left open that were not "
            "open when the test began: %s",
            clause_prefix, nleaked, leaked);

  /* A joined thread's task can linger for a moment in /proc; wait for it
   * (bounded) rather than sleep. */
  lh_wait_until(threads_back_to_base, NULL, 2.0);
  threads = count_threads();
  cr_assert(le(int, threads, base_threads),
            "%send of test: %d thread(s) in the process, %d when the test "
            "began: a thread was left running",
            clause_prefix, threads, base_threads);

  zombie = waitpid(-1, &status, WNOHANG);
  cr_assert(le(int, (int)zombie, 0),
            "%send of test: child process %d had exited and was never "
            "reaped (a zombie)",
            clause_prefix, (int)zombie);
}

/* Closes every loop the test saw (unless running), closes watchers,
 * releases every tracked handle, closes tracked fds.  Returns the number of
 * loops found still running. */
/* The current policy's child watcher, which a spawn makes lazily (the
 * default policy's get_child_watcher), may hold what the leak check would
 * charge to the test: close it.  Only where asyncio's watcher machinery is
 * offered (custom watchers SUPPORTED); elsewhere the implementation owns
 * its child handling and get_child_watcher may rightly fail. */
static void close_policy_watcher(void) {
  lspec_watcher *w = NULL;
  if (lh_impl->custom_child_watchers != LSPEC_CUSTOM_WATCHERS_SUPPORTED ||
      !(lh_impl->capabilities & LSPEC_CAP_CHILD_WATCHERS))
    return;
  if (lh_impl->get_child_watcher(&w) == LSPEC_OK && w != NULL) {
    lh_impl->watcher_close(w);
    lh_impl->watcher_release(w);
  }
}

static int clean_up(char *running, size_t len) {
  int nrunning = 0;
  size_t used = 0;
  running[0] = '\0';
  close_policy_watcher();
  pthread_mutex_lock(&track_lock);
  for (int i = 0; i < ntracked; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++)
      seen = tracked[j].handle == tracked[i].handle;
    if (seen)
      continue;
    if (tracked[i].kind == LH_LOOP) {
      lspec_loop *l = tracked[i].handle;
      if (lh_impl->loop_is_running(l) == 1) {
        int w = snprintf(running + used, used < len ? len - used : 0, "%s%p",
                         nrunning ? ", " : "", (void *)l);
        if (w > 0)
          used += (size_t)w;
        nrunning++;
        continue;
      }
      if (lh_impl->loop_is_closed(l) == 0)
        lh_impl->loop_close(l);
    } else if (tracked[i].kind == LH_WATCHER) {
      lh_impl->watcher_close(tracked[i].handle);
    }
  }
  for (int i = ntracked - 1; i >= 0; i--) {
    switch (tracked[i].kind) {
    case LH_POLICY:
      lh_impl->policy_release(tracked[i].handle);
      break;
    case LH_LOOP:
      lh_impl->loop_release(tracked[i].handle);
      break;
    case LH_WATCHER:
      lh_impl->watcher_release(tracked[i].handle);
      break;
    }
  }
  ntracked = 0;
  for (int i = 0; i < ntracked_fds; i++)
    close(tracked_fds[i]);
  ntracked_fds = 0;
  pthread_mutex_unlock(&track_lock);
  return nrunning;
}

/* Clean-up without checks, for a test that ends early (UNRESOLVED). */
static void quiet_clean_up(void) {
  char buf[512];
  kill_children();
  clean_up(buf, sizeof buf);
  reap_children(buf, sizeof buf);
}

/* --- lifecycle ------------------------------------------------------------------- */

static int parse_profile(const char *s, int *out) {
  unsigned major, minor;
  char extra;
  if (sscanf(s, "%u.%u%c", &major, &minor, &extra) != 2 || major != 3 ||
      minor < 8 || minor > 12)
    return 0;
  *out = LSPEC_PROFILE((int)major, (int)minor);
  return 1;
}

void lh_begin(const char *suite, const char *name) {
  const char *path = getenv("LSPEC_CONFORM_IMPL");
  const char *prof = getenv("LSPEC_CONFORM_PROFILE");
  char why[512] = "";
  int rc, profile;
  uint64_t missing;

  finished = 0;
  if (!guard_installed) {
    atexit(exit_guard);
    guard_installed = 1;
  }
  snprintf(clause_prefix, sizeof clause_prefix, "[%s::%s] ", suite, name);

  /* The test's registry entry: its clauses, capabilities and profiles. */
  current = NULL;
  for (size_t i = 0; i < lh_ntests; i++)
    if (strcmp(lh_tests[i].suite, suite) == 0 &&
        strcmp(lh_tests[i].name, name) == 0)
      current = &lh_tests[i];
  cr_assert(ne(ptr, (void *)current, NULL),
            "harness: test %s::%s is not in the registry (regenerate it: "
            "conformance/gen/gen.py)",
            suite, name);
  {
    size_t used = 0;
    used += (size_t)snprintf(clause_prefix, sizeof clause_prefix, "[");
    for (size_t i = 0; i < current->nclauses && used < sizeof clause_prefix;
         i++)
      used += (size_t)snprintf(clause_prefix + used,
                               sizeof clause_prefix - used, "%s%s",
                               i ? ", " : "", current->clauses[i]);
    if (used < sizeof clause_prefix)
      snprintf(clause_prefix + used, sizeof clause_prefix - used, "] ");
  }

  rc = lh_load_impl(path, &lh_impl, why, sizeof why);
  cr_assert(eq(int, rc, 0), "harness: cannot load the implementation %s: %s",
            (path && *path) ? path : "(linked-in reference)", why);

  if (prof && *prof) {
    cr_assert(eq(int, parse_profile(prof, &profile), 1),
              "harness: LSPEC_CONFORM_PROFILE=\"%s\" is not 3.8 ... 3.12",
              prof);
    rc = lh_impl->set_profile(profile);
    cr_assert(eq(int, rc, LSPEC_OK),
              "harness: set_profile(%s) failed: %s (%s); last_error: \"%s\"",
              prof, lh_status_name(rc), lh_status_class(rc), impl_error());
  }
  lh_impl->set_warning_hook(warning_hook, NULL);

  /* Gates.  finished = 1 first: cr_skip does not run .fini. */
  missing = current->caps & ~lh_impl->capabilities;
  if (missing) {
    char names[256] = "";
    size_t used = 0;
    for (int b = 0; b < 64; b++) {
      uint64_t bit = UINT64_C(1) << b;
      if ((missing & bit) && used < sizeof names) {
        int w = snprintf(names + used, sizeof names - used, "%s%s",
                         used ? "," : "", lh_cap_name(bit));
        if (w > 0)
          used += (size_t)w;
      }
    }
    finished = 1;
    cr_skip("UNSUPPORTED: cap=%s", names);
  }
  if (current->watcher_kinds & ~lh_impl->watcher_kinds) {
    uint32_t missing_kinds = current->watcher_kinds & ~lh_impl->watcher_kinds;
    char names[256] = "";
    size_t used = 0;
    for (int k = 0; k < 32; k++) {
      const char *kname = lh_watcher_kind_name(k);
      if ((missing_kinds & LSPEC_WATCHER_KIND_BIT(k)) && used < sizeof names) {
        int w = snprintf(names + used, sizeof names - used, "%s%s",
                         used ? "," : "", kname ? kname : "?");
        if (w > 0)
          used += (size_t)w;
      }
    }
    finished = 1;
    cr_skip("UNSUPPORTED: kind=%s", names);
  }
  profile = lh_impl->get_profile();
  if (profile < current->profile_min || profile > current->profile_max) {
    finished = 1;
    cr_skip("NOT APPLICABLE: profile 3.%d is outside 3.%d-3.%d", profile & 0xff,
            current->profile_min & 0xff, current->profile_max & 0xff);
  }
  if (current->custom_watchers &&
      lh_impl->custom_child_watchers != current->custom_watchers) {
    finished = 1;
    cr_skip("NOT APPLICABLE: custom_child_watchers=%s, the test is for %s",
            custom_watchers_name(lh_impl->custom_child_watchers),
            custom_watchers_name(current->custom_watchers));
  }

  /* Baselines, taken last: Criterion's own fds (3-8, 12-13) and its second
   * thread exist in every worker. */
  tolerated_fd_prefix = NULL;
  nbase_fds = list_fds(base_fds, LH_MAX_BASE_FDS);
  base_threads = count_threads();
}

void lh_end(void) {
  char running[512];
  int nrunning;

  cr_assert(eq(int, report_soft(0, "the test"), 1), "%s",
            "harness: a block failed");
  kill_children();
  nrunning = clean_up(running, sizeof running);
  cr_assert(eq(int, nrunning, 0),
            "%send of test: %d loop(s) still running (%s): a test must "
            "leave no loop running",
            clause_prefix, nrunning, running);
  {
    char zombies[512];
    int nzombies = reap_children(zombies, sizeof zombies);
    cr_assert(eq(int, nzombies, 0),
              "%send of test: %d child process(es) spawned by the "
              "implementation were left zombies it never reaped (pid %s)",
              clause_prefix, nzombies, zombies);
  }
  check_leaks();
  finished = 1;
}

void lh_fini(void) {
  /* After a failed assertion (lh_end not reached): release what the test
   * made and kill and reap its children, without checks, so that a failing
   * test (the side of a conflict a run does not follow, for one) leaves no
   * descriptor, sleeper or zombie for a leak checker to charge. */
  if (!finished && lh_impl != NULL)
    quiet_clean_up();
  finished = 1;
}
