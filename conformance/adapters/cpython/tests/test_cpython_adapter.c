/* test_cpython_adapter.c - tests of the CPython adapter itself (not of
 * asyncio): Python exceptions in callbacks and overrides, C callbacks called
 * from Python threads, threads that come and go, signals, fork, and a
 * process that exits with Python threads still blocked.  Each case runs in a
 * process of its own: test_cpython_adapter ADAPTER.so CASE.  The adapter is
 * loaded RTLD_LOCAL, as loopspec-conform loads it.  Exit status 0 is a pass.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <loopspec/abi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct lspec_impl *impl;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, " (last_error: %s)\n", impl ? impl->last_error() : "-"); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)
#define CHECK_OK(expr) CHECK((expr) == LSPEC_OK, "%s", #expr)

/* --- the warnings hook: records categories and texts --------------------- */

static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static char warn_texts[8192];
static int warn_count[8];
static atomic_int hook_reentered;
static atomic_ulong hook_thread;

static void hook(void *user, int category, const char *text) {
  lspec_policy *p = NULL;
  (void)user;
  pthread_mutex_lock(&warn_lock);
  if (category > 0 && category < 8)
    warn_count[category]++;
  strncat(warn_texts, text, sizeof warn_texts - strlen(warn_texts) - 2);
  strcat(warn_texts, "\n");
  pthread_mutex_unlock(&warn_lock);
  atomic_store(&hook_thread, (unsigned long)pthread_self());
  /* The hook may call back into the implementation. */
  if (impl->get_event_loop_policy(&p) == LSPEC_OK) {
    impl->policy_release(p);
    atomic_fetch_add(&hook_reentered, 1);
  }
}

static int warned(int category, const char *substr) {
  int yes;
  pthread_mutex_lock(&warn_lock);
  yes = warn_count[category] > 0 && strstr(warn_texts, substr) != NULL;
  pthread_mutex_unlock(&warn_lock);
  return yes;
}

/* Runs Python source in the adapter's interpreter (the GIL taken here). */
static void run_python(const char *src) {
  PyGILState_STATE st = PyGILState_Ensure();
  int rc = PyRun_SimpleString(src);
  PyGILState_Release(st);
  CHECK(rc == 0, "Python code failed:\n%s", src);
}

static int count_dir(const char *path) {
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

/* --- callbacks ------------------------------------------------------------ */

static void count_cb(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }
static int count_at_least_1(void *arg) {
  return atomic_load((atomic_int *)arg) >= 1;
}

/* --- case: an exception raised in a Python callback ---------------------- */

static int failing_get_event_loop(void *user, lspec_policy *self,
                                  lspec_loop **out) {
  (void)user;
  (void)self;
  *out = NULL;
  /* A failure of an inner entry, passed on: its message travels too. */
  return impl->policy_new_windows_selector((lspec_policy **)out) ==
                 LSPEC_E_UNAVAILABLE
             ? LSPEC_E_VALUE
             : LSPEC_E_INTERNAL;
}

static atomic_int destroyed;
static void destroy(void *user) {
  (void)user;
  atomic_fetch_add(&destroyed, 1);
}

static void case_python_exception(void) {
  lspec_loop *l = NULL, *got = NULL;
  lspec_policy *p = NULL;
  atomic_int ran = 0;
  struct lspec_policy_methods m = {.size = sizeof m,
                                   .get_event_loop = failing_get_event_loop,
                                   .destroy = destroy};

  /* A Python callback that raises: the loop's exception handler logs it
   * (an ERROR of the asyncio logger) and the loop goes on. */
  CHECK_OK(impl->new_event_loop(&l));
  CHECK_OK(impl->set_event_loop(l));
  run_python("import asyncio\n"
             "asyncio.get_event_loop().call_soon(lambda: 1 / 0)\n");
  CHECK_OK(impl->loop_call_soon(l, count_cb, &ran, NULL));
  CHECK_OK(impl->loop_run_until(l, count_at_least_1, &ran, 5.0));
  CHECK(warned(LSPEC_WARN_LOG_ERROR, "ZeroDivisionError"),
        "no LOG_ERROR warning naming ZeroDivisionError; got:\n%s", warn_texts);
  CHECK(atomic_load(&hook_reentered) > 0, "the hook could not call back in");

  /* An exception raised by Python code the ABI calls, mapped by class. */
  CHECK(impl->loop_add_reader(l, -1, count_cb, &ran) == LSPEC_E_VALUE,
        "add_reader(-1) is ValueError");
  CHECK(strstr(impl->last_error(), "ValueError") != NULL, "message");
  CHECK(impl->get_running_loop(&got) == LSPEC_E_RUNTIME && got == NULL,
        "get_running_loop with no running loop is RuntimeError");

  /* A C override's failure raised as a Python exception through
   * asyncio.get_event_loop() and back to a status. */
  CHECK_OK(impl->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &m, NULL, &p));
  CHECK_OK(impl->set_event_loop_policy(p));
  CHECK(impl->get_event_loop(&got) == LSPEC_E_VALUE && got == NULL,
        "the override's status comes back");
  CHECK(strstr(impl->last_error(), "Windows") != NULL,
        "the override's message comes back");
  CHECK_OK(impl->set_event_loop_policy(NULL));
  CHECK(atomic_load(&destroyed) == 0, "destroy ran while a handle is held");
  impl->policy_release(p);
  CHECK(atomic_load(&destroyed) == 1, "destroy did not run once at the end");

  CHECK_OK(impl->loop_close(l));
  impl->loop_release(l);
}

/* --- case: a C callback called from a Python thread ---------------------- */

static void case_python_thread(void) {
  unsigned long main_thread = (unsigned long)pthread_self();
  lspec_loop *l = NULL;
  atomic_int ran = 0;

  /* A Python thread logs a warning: the hook (C) runs in that thread and
   * calls back into the ABI. */
  run_python("import logging, threading\n"
             "t = threading.Thread(target=lambda: logging.getLogger("
             "'asyncio').warning('from a Python thread'))\n"
             "t.start()\n"
             "t.join()\n");
  CHECK(warned(LSPEC_WARN_LOG_WARNING, "from a Python thread"),
        "the thread's warning did not reach the hook");
  CHECK(atomic_load(&hook_thread) != main_thread,
        "the hook ran in the main thread, not the Python thread");
  CHECK(atomic_load(&hook_reentered) > 0, "the hook could not call back in");

  /* A Python thread schedules a loop callback thread-safely while the main
   * thread runs the loop. */
  CHECK_OK(impl->loop_new(LSPEC_BACKEND_DEFAULT, &l));
  CHECK_OK(impl->set_event_loop(l));
  run_python("import asyncio, threading, time\n"
             "loop = asyncio.get_event_loop()\n"
             "def later():\n"
             "    time.sleep(0.05)\n"
             "    loop.call_soon_threadsafe(lambda: None)\n"
             "threading.Thread(target=later).start()\n");
  CHECK_OK(impl->loop_call_later(l, 0.2, count_cb, &ran, NULL));
  CHECK_OK(impl->loop_run_until(l, count_at_least_1, &ran, 5.0));
  CHECK_OK(impl->loop_close(l));
  impl->loop_release(l);
}

/* --- case: threads come and go -------------------------------------------- */

#define NTHREADS 8

static void *thread_main(void *unused) {
  lspec_loop *l = NULL, *got = NULL;
  atomic_int ran = 0;
  (void)unused;
  for (int round = 0; round < 3; round++) {
    /* Per-thread state (threading.local) lasts between entries. */
    CHECK_OK(impl->new_event_loop(&l));
    CHECK_OK(impl->set_event_loop(l));
    CHECK_OK(impl->get_event_loop(&got));
    CHECK(got == l, "set_event_loop did not last until get_event_loop");
    impl->loop_release(got);
    CHECK_OK(impl->loop_call_soon(l, count_cb, &ran, NULL));
    CHECK_OK(impl->loop_run_until(l, count_at_least_1, &ran, 5.0));
    atomic_store(&ran, 0);
    CHECK_OK(impl->loop_close(l));
    impl->loop_release(l);
  }
  return NULL;
}

static void case_threads(void) {
  pthread_t t[NTHREADS];
  int fds_before = count_dir("/proc/self/fd");
  int threads_before = count_dir("/proc/self/task");

  for (int i = 0; i < NTHREADS; i++)
    CHECK(pthread_create(&t[i], NULL, thread_main, NULL) == 0, "thread");
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(t[i], NULL);
  /* The threads' Python states were dropped at their exit: nothing of
   * theirs is left open or running. */
  for (int i = 0; i < 200 && count_dir("/proc/self/task") > threads_before; i++)
    usleep(10000);
  CHECK(count_dir("/proc/self/task") == threads_before, "threads left: %d",
        count_dir("/proc/self/task") - threads_before);
  CHECK(count_dir("/proc/self/fd") == fds_before, "descriptors left: %d",
        count_dir("/proc/self/fd") - fds_before);
  run_python("import threading, gc\n"
             "gc.collect()\n"
             "assert threading.active_count() >= 1\n");
}

/* --- case: signals ------------------------------------------------------ */

static void *send_sigusr1(void *unused) {
  (void)unused;
  usleep(50000);
  kill(getpid(), SIGUSR1);
  return NULL;
}

static void *add_handler_in_thread(void *loop) {
  atomic_int ran = 0;
  int rc = impl->loop_add_signal_handler(loop, SIGUSR2, count_cb, &ran);
  /* last_error() is per thread: read it here. */
  if (rc == LSPEC_E_RUNTIME &&
      strstr(impl->last_error(), "main thread") == NULL)
    rc = LSPEC_E_INTERNAL;
  return (void *)(long)rc;
}

static void case_signals(void) {
  lspec_loop *l = NULL;
  atomic_int ran = 0;
  pthread_t t;
  void *res;

  CHECK_OK(impl->loop_new(LSPEC_BACKEND_DEFAULT, &l));
  CHECK_OK(impl->loop_add_signal_handler(l, SIGUSR1, count_cb, &ran));
  /* The signal comes from another thread while the main thread waits in
   * the loop: the loop's wake-up descriptor brings it in. */
  CHECK(pthread_create(&t, NULL, send_sigusr1, NULL) == 0, "thread");
  CHECK_OK(impl->loop_run_until(l, count_at_least_1, &ran, 5.0));
  pthread_join(t, NULL);
  CHECK(impl->loop_remove_signal_handler(l, SIGUSR1) == 1, "removed");
  /* Python takes signal handlers in the main thread only. */
  CHECK(pthread_create(&t, NULL, add_handler_in_thread, l) == 0, "thread");
  pthread_join(t, &res);
  CHECK((long)res == LSPEC_E_RUNTIME, "add_signal_handler from a thread: %ld",
        (long)res);
  CHECK(impl->loop_add_signal_handler(l, SIGKILL, count_cb, &ran) ==
            LSPEC_E_RUNTIME,
        "SIGKILL cannot be caught");
  CHECK_OK(impl->loop_close(l));
  impl->loop_release(l);
}

/* --- case: fork from a thread; exit with a Python thread blocked ---------- */

static void *fork_and_check(void *unused) {
  pid_t pid;
  int status;
  (void)unused;
  pid = fork();
  if (pid == 0) {
    /* The child's Python knows it is alone: this thread is its main one. */
    lspec_loop *l = NULL;
    int rc = impl->get_event_loop(&l);
    _exit(rc == LSPEC_OK && l != NULL ? 0 : 3);
  }
  CHECK(pid > 0, "fork");
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the child's get_event_loop failed (status %d)", status);
  return NULL;
}

static void child_cb(int pid, int rc, void *arg) {
  (void)pid;
  (void)rc;
  (void)arg;
}

struct registration {
  lspec_watcher *w;
  int pid;
  atomic_int rc;
};

/* add_child_handler needs a running loop: register from a loop callback. */
static void register_cb(void *arg) {
  struct registration *r = arg;
  atomic_store(&r->rc,
               impl->watcher_add_child_handler(r->w, r->pid, child_cb, NULL));
}

static int registered(void *arg) {
  return atomic_load(&((struct registration *)arg)->rc) != 1;
}

static void case_fork_and_exit(void) {
  pthread_t t;
  struct registration r;
  lspec_loop *l = NULL;
  int fds[2];

  CHECK(pthread_create(&t, NULL, fork_and_check, NULL) == 0, "thread");
  pthread_join(t, NULL);

  /* A ThreadedChildWatcher thread is left blocked in waitpid() on a child
   * that outlives this process: the process must still exit at once. */
  CHECK(pipe(fds) == 0, "pipe");
  r.pid = fork();
  if (r.pid == 0) {
    char c;
    close(fds[1]);
    (void)!read(fds[0], &c, 1); /* returns when the parent is gone */
    _exit(0);
  }
  CHECK(r.pid > 0, "fork");
  close(fds[0]);
  atomic_store(&r.rc, 1);
  CHECK_OK(impl->watcher_new(LSPEC_WATCHER_THREADED, &r.w));
  CHECK_OK(impl->loop_new(LSPEC_BACKEND_DEFAULT, &l));
  CHECK_OK(impl->loop_call_soon(l, register_cb, &r, NULL));
  CHECK_OK(impl->loop_run_until(l, registered, &r, 5.0));
  CHECK(atomic_load(&r.rc) == LSPEC_OK, "add_child_handler: %d",
        atomic_load(&r.rc));
  /* The handles are dropped and the process exits with the waiting thread
   * still blocked: exit() must neither crash nor hang. */
  CHECK_OK(impl->loop_close(l));
  impl->loop_release(l);
  impl->watcher_release(r.w);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {
      {"python_exception", case_python_exception},
      {"python_thread", case_python_thread},
      {"threads", case_threads},
      {"signals", case_signals},
      {"fork_and_exit", case_fork_and_exit},
  };
  void *so;
  lspec_entry_fn entry;
  void *sym;

  if (argc != 3) {
    fprintf(stderr, "usage: %s ADAPTER.so CASE\n", argv[0]);
    return 2;
  }
  so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (so == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  sym = dlsym(so, LSPEC_ENTRY_SYMBOL);
  if (sym == NULL) {
    fprintf(stderr, "no %s\n", LSPEC_ENTRY_SYMBOL);
    return 2;
  }
  memcpy(&entry, &sym, sizeof entry);
  impl = entry();
  CHECK(impl != NULL && impl->abi_version == LSPEC_ABI_VERSION, "table");
  impl->set_warning_hook(hook, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (strcmp(cases[i].name, argv[2]) == 0) {
      cases[i].fn();
      printf("%s: pass\n", argv[2]);
      return 0;
    }
  fprintf(stderr, "unknown case %s\n", argv[2]);
  return 2;
}
