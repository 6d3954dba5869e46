/* subprocess.c - loop_subprocess_exec and the spawner it uses.
 *
 * loop_subprocess_exec follows CPython's
 * _UnixSelectorEventLoop._make_subprocess_transport (research SUB-001..004):
 * take the current policy's child watcher, enter it, check is_active
 * before anything is spawned (inactive: RuntimeError, no child), spawn,
 * register the child with a trampoline that hands (pid, returncode) to the
 * spawning loop's thread through call_soon_threadsafe and from there, one
 * iteration later, to the caller's callback through call_soon (CPython's
 * _process_exited hop), exit the watcher.
 * 3.8-3.11 use the object enter returns (`with ... as watcher`); 3.12 uses
 * the watcher itself.
 *
 * The spawner (lspec__spawn) starts the child with clone3(CLONE_VM |
 * CLONE_VFORK | CLONE_CLEAR_SIGHAND) on a small stack of its own: the
 * child shares the parent's memory until it execs, the parent sleeps until
 * then, and the kernel resets the child's signal handlers, so the child
 * needs no sigaction sweep (glibc's posix_spawn makes ~120 rt_sigaction
 * calls per child; anchors/README.md).  The child writes a failed exec's
 * errno into the shared spawn record and exits; the parent then reaps it,
 * so a failed spawn leaves no zombie.  The child allocates nothing and
 * calls only async-signal-safe functions.
 *
 * What the child keeps: descriptors 0, 1 and 2 only, as CPython's
 * subprocess does by default (close_fds=True).  Where close_range exists
 * (Linux 5.9+) the clone also shares the parent's descriptor table
 * (CLONE_FILES) and the child's first act on it is close_range(3, ~0,
 * CLOSE_RANGE_UNSHARE), which gives it a private table holding just the
 * first three: a spawn costs the same whatever the number of descriptors
 * the parent holds (a clone without CLONE_FILES copies the whole table, and
 * exec then closes every close-on-exec entry of the copy: O(n) per child,
 * which is what a Pidfd watcher with thousands of children pays).  Without
 * close_range the child lists /proc/self/fd and closes what it finds.
 * The child's stack is one mapping, kept between spawns.
 *
 * Where clone3 or
 * CLONE_CLEAR_SIGHAND is missing (Linux < 5.5, seccomp, valgrind), on
 * architectures other than x86-64, and under sanitizers (whose interceptors
 * must not run in a child sharing the parent's memory), a plain fork is
 * used instead, with the same signal set-up done by hand and the exec's
 * errno sent back through a close-on-exec pipe.
 */
#define _GNU_SOURCE 1
#include "syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) &&                  \
    !defined(__SANITIZE_THREAD__)
#define LSPEC__HAVE_CLONE3 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef LSPEC__HAVE_CLONE3
#endif
#endif

/* --- the spawn record ------------------------------------------------------ */

/* Everything the child needs, prepared by the parent (the child must not
 * allocate).  The child shares the parent's memory, so `err` is how it
 * reports a failed exec. */
struct spawn_rec {
  char *const *paths;    /* candidate program paths, NULL-terminated */
  char *const *argv;     /* the arguments */
  char *const *envp;     /* the environment */
  int close_range_ok;    /* the kernel has close_range (see below) */
  unsigned fd_limit;     /* RLIMIT_NOFILE: the last resort's bound */
  volatile int err;      /* errno of the failed exec; 0 if it exec'd */
};

/* --- what the child keeps -------------------------------------------------- */

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

/* 0: not probed yet, 1: close_range works, -1: missing. */
static atomic_int close_range_state;

#ifdef LSPEC__HAVE_CLONE3
/* 0: not tried yet, 1: works, -1: unavailable (use fork). */
static atomic_int clone3_state;
#endif

/* Whether close_range(2) works here (Linux 5.9+, not filtered).  Closing a
 * descriptor number no process can hold is a no-op that answers it. */
static int probe_close_range(void) {
  int st = atomic_load_explicit(&close_range_state, memory_order_relaxed);

  if (st == 0) {
    st = lspec__sys.close_range(~0U, ~0U, 0) == 0 ? 1 : -1;
    atomic_store_explicit(&close_range_state, st, memory_order_relaxed);
  }
  return st > 0;
}

void lspec__spawn_forget_probes(void) {
  atomic_store(&close_range_state, 0);
#ifdef LSPEC__HAVE_CLONE3
  atomic_store(&clone3_state, 0);
#endif
}

/* In the child, on a descriptor table of its own: closes every descriptor
 * from 3 up but `keep` (-1: none).  Async-signal-safe: raw system calls and
 * a buffer on the stack. */
static void close_from_3(const struct spawn_rec *s, int keep) {
  char buf[2048] __attribute__((aligned(8)));
  unsigned fd;
  long n, off;
  int dfd;

  if (s->close_range_ok) {
    if (keep > 3)
      lspec__sys.close_range(3, (unsigned)keep - 1, 0);
    lspec__sys.close_range(keep >= 3 ? (unsigned)keep + 1 : 3, ~0U, 0);
    return;
  }
  dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    /* No /proc: every number the limit allows. */
    for (fd = 3; fd < s->fd_limit; fd++)
      if ((int)fd != keep)
        close((int)fd);
    return;
  }
  /* /proc/self/fd's offsets are descriptor numbers, so closing what was
   * listed does not make the listing skip anything. */
  while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
    for (off = 0; off < n;) {
      const char *name = buf + off + 19; /* d_ino 8, d_off 8, d_reclen 2,
                                            d_type 1 */
      unsigned short reclen;
      memcpy(&reclen, buf + off + 16, sizeof reclen);
      off += reclen;
      if (name[0] < '0' || name[0] > '9')
        continue;
      for (fd = 0; *name >= '0' && *name <= '9'; name++)
        fd = fd * 10 + (unsigned)(*name - '0');
      if (fd >= 3 && (int)fd != keep && (int)fd != dfd)
        close((int)fd);
    }
  }
  close(dfd);
}

/* execvp's choice of the error to report: EACCES if any candidate was
 * refused with it, else the last "not found" kind of error; any other
 * error stops the search at once. */
static int exec_candidates(struct spawn_rec *s,
                           int (*try_one)(struct spawn_rec *, const char *,
                                          void *),
                           void *ctx) {
  int i, e, seen_eacces = 0, last = ENOENT;

  for (i = 0; s->paths[i] != NULL; i++) {
    e = try_one(s, s->paths[i], ctx);
    if (e == 0)
      return 0;
    switch (e) {
    case EACCES:
      seen_eacces = 1;
      /* fall through */
    case ENOENT:
    case ENOTDIR:
    case ESTALE:
    case ENODEV:
    case ETIMEDOUT:
      last = e;
      continue;
    default:
      return e;
    }
  }
  return seen_eacces ? EACCES : last;
}

/* The candidate paths for argv[0]: itself when it has a '/', else each
 * PATH directory joined with it (an empty element is the current
 * directory; no PATH means "/bin:/usr/bin", as glibc's execvp).  One
 * allocation holding the array and the strings; NULL when out of memory. */
static char **candidate_paths(const char *prog) {
  const char *path, *p, *colon;
  size_t n = 1, len = strlen(prog), bytes, dlen;
  char **v, *out;
  size_t i = 0;

  if (strchr(prog, '/') != NULL || prog[0] == '\0') {
    v = malloc(2 * sizeof *v + len + 1);
    if (v == NULL)
      return NULL;
    v[0] = memcpy((char *)(v + 2), prog, len + 1);
    v[1] = NULL;
    return v;
  }
  path = getenv("PATH");
  if (path == NULL)
    path = "/bin:/usr/bin";
  for (p = path; *p; p++)
    n += *p == ':';
  bytes = (n + 1) * sizeof *v + strlen(path) + n * (len + 3);
  if ((v = malloc(bytes)) == NULL)
    return NULL;
  out = (char *)(v + n + 1);
  for (p = path;; p = colon + 1) {
    colon = strchr(p, ':');
    dlen = colon ? (size_t)(colon - p) : strlen(p);
    v[i++] = out;
    if (dlen == 0) {
      *out++ = '.';
    } else {
      memcpy(out, p, dlen);
      out += dlen;
    }
    *out++ = '/';
    memcpy(out, prog, len + 1);
    out += len + 1;
    if (colon == NULL)
      break;
  }
  v[i] = NULL;
  return v;
}

/* --- clone3 ------------------------------------------------------------------- */

#ifdef LSPEC__HAVE_CLONE3

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif

/* struct clone_args as of Linux 5.3 (CLONE_ARGS_SIZE_VER0, 64 bytes). */
struct clone3_args {
  uint64_t flags;       /* CLONE_* */
  uint64_t pidfd;       /* CLONE_PIDFD's out slot (unused) */
  uint64_t child_tid;   /* unused */
  uint64_t parent_tid;  /* unused */
  uint64_t exit_signal; /* SIGCHLD: an ordinary child */
  uint64_t stack;       /* lowest address of the child's stack */
  uint64_t stack_size;  /* its size */
  uint64_t tls;         /* unused */
};

/* The child's stack: the child runs a few frames (sigaction, sigprocmask,
 * execve) and then execs. */
#define CHILD_STACK_SIZE (64 * 1024)


/* Runs in the child, on its own stack, sharing the parent's memory. */
static int clone3_try_one(struct spawn_rec *s, const char *path, void *ctx) {
  (void)ctx;
  execve(path, s->argv, s->envp);
  return errno;
}

static int child_main(void *arg) {
  struct spawn_rec *s = arg;
  struct sigaction dfl;
  sigset_t none;

  /* CLONE_CLEAR_SIGHAND reset every caught signal to SIG_DFL; CPython's
   * restore_signals also resets the two that Python ignores. */
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, NULL);
  sigaction(SIGXFSZ, &dfl, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (s->close_range_ok) {
    /* Still on the parent's table (CLONE_FILES): take a private one that
     * holds 0, 1 and 2 only. */
    int r = lspec__sys.close_range(3, ~0U, CLOSE_RANGE_UNSHARE);
    if (r < 0) {
      s->err = -r;
      _exit(127);
    }
  } else {
    close_from_3(s, -1);
  }
  s->err = exec_candidates(s, clone3_try_one, NULL);
  _exit(127);
}

/* One child stack kept between spawns (a spawn that finds it taken maps
 * its own): an mmap and an munmap per child cost a few microseconds, and
 * the munmap of a multi-threaded process a TLB shoot-down.  The child is
 * done with its stack when clone3 returns (it exec'd or exited). */
static _Atomic(void *) spare_stack;

static void *stack_take(void) {
  void *stack = atomic_exchange(&spare_stack, NULL);

  if (stack != NULL)
    return stack;
  stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  return stack == MAP_FAILED ? NULL : stack;
}

static void stack_give_back(void *stack) {
  void *none = NULL;

  if (!atomic_compare_exchange_strong(&spare_stack, &none, stack))
    munmap(stack, CHILD_STACK_SIZE);
}

/* Spawns through clone3.  Returns 0 with *pid set, -errno for a failed
 * exec (child reaped), or 1 when clone3 cannot be used here. */
static int spawn_clone3(struct spawn_rec *s, pid_t *pid) {
  struct clone3_args ca;
  sigset_t all, old;
  void *stack;
  long r;
  int st;

  if (atomic_load(&clone3_state) < 0)
    return 1;
  if ((stack = stack_take()) == NULL)
    return -errno;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND;
  if (s->close_range_ok)
    ca.flags |= CLONE_FILES;
  ca.exit_signal = SIGCHLD;
  ca.stack = (uint64_t)(uintptr_t)stack;
  ca.stack_size = CHILD_STACK_SIZE;
  s->err = 0;

  /* No signal may run a handler in the child before the kernel's reset
   * took effect, nor in the parent while the child borrows its memory. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  r = lspec__sys.clone3(&ca, sizeof ca, child_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  stack_give_back(stack);

  if (r < 0) {
    /* Missing clone3 or CLONE_CLEAR_SIGHAND, or a filter refusing it. */
    if (r == -ENOSYS || r == -EINVAL || r == -E2BIG || r == -EPERM) {
      atomic_store(&clone3_state, -1);
      return 1;
    }
    return (int)r;
  }
  atomic_store(&clone3_state, 1);
  if (s->err != 0) {
    /* The child exited without exec: reap it here, leaving no zombie. */
    while (lspec__sys.waitpid((pid_t)r, &st, 0) == -EINTR)
      ;
    return -s->err;
  }
  *pid = (pid_t)r;
  return 0;
}

#endif /* LSPEC__HAVE_CLONE3 */

/* --- fork ------------------------------------------------------------------ */

/* Runs in a forked child (a copy of the parent's memory, one thread): only
 * async-signal-safe calls. */
static int fork_try_one(struct spawn_rec *s, const char *path, void *ctx) {
  (void)ctx;
  execve(path, s->argv, s->envp);
  return errno;
}

static _Noreturn void fork_child(struct spawn_rec *s, int errfd) {
  struct sigaction dfl, old;
  sigset_t none;
  int sig, e;
  ssize_t n;

  /* No CLONE_CLEAR_SIGHAND here: reset every caught signal by hand, and
   * SIGPIPE and SIGXFSZ as CPython's restore_signals does. */
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP ||
        sigaction(sig, NULL, &old) != 0)
      continue;
    if (old.sa_handler != SIG_DFL &&
        (old.sa_handler != SIG_IGN || sig == SIGPIPE || sig == SIGXFSZ))
      sigaction(sig, &dfl, NULL);
  }
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  close_from_3(s, errfd);
  e = exec_candidates(s, fork_try_one, NULL);
  do
    n = write(errfd, &e, sizeof e);
  while (n < 0 && errno == EINTR);
  _exit(127);
}

/* The fallback: fork, and a close-on-exec pipe that carries a failed
 * exec's errno back (end of file: the exec succeeded).  fork rather than
 * vfork or posix_spawn because both lose the exec's errno where vfork is
 * emulated by a plain fork (valgrind). */
static int spawn_fork(struct spawn_rec *s, pid_t *pid) {
  sigset_t all, old;
  int fds[2], e = 0, st;
  pid_t child;
  ssize_t n;

  if ((e = lspec__sys.pipe2(fds, O_CLOEXEC)) < 0)
    return e;
  /* No handler may run in the child before its reset. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  child = lspec__sys.fork();
  if (child == 0) {
    close(fds[0]);
    fork_child(s, fds[1]);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(fds[1]);
  if (child < 0) {
    close(fds[0]);
    return (int)child;
  }
  e = 0;
  do
    n = read(fds[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(fds[0]);
  if (n == (ssize_t)sizeof e && e != 0) {
    /* The child exited without exec: reap it, leaving no zombie. */
    while (lspec__sys.waitpid(child, &st, 0) == -EINTR)
      ;
    return -e;
  }
  *pid = child;
  return 0;
}

int lspec__spawn(const char *const *argv, pid_t *pid, int *method) {
  struct spawn_rec s;
  struct rlimit lim;
  char **paths = NULL, *direct[2];
  int saved = errno, rc = 1;

  *pid = -1;
  if (argv == NULL || argv[0] == NULL)
    return -EINVAL;
  if (argv[0][0] != '\0' && strchr(argv[0], '/') != NULL) {
    /* A path: the one candidate, without an allocation. */
    direct[0] = (char *)argv[0];
    direct[1] = NULL;
    s.paths = direct;
  } else {
    if ((paths = candidate_paths(argv[0])) == NULL)
      return -ENOMEM;
    s.paths = paths;
  }
  s.argv = (char *const *)argv;
  s.envp = environ;
  s.close_range_ok = probe_close_range();
  s.fd_limit = 1024;
  if (!s.close_range_ok && getrlimit(RLIMIT_NOFILE, &lim) == 0)
    s.fd_limit = lim.rlim_cur > 65536 ? 65536 : (unsigned)lim.rlim_cur;
  s.err = 0;
#ifdef LSPEC__HAVE_CLONE3
  rc = spawn_clone3(&s, pid);
  if (rc <= 0 && method != NULL)
    *method = LSPEC__SPAWN_CLONE3;
#endif
  if (rc == 1) {
    rc = spawn_fork(&s, pid);
    if (method != NULL)
      *method = LSPEC__SPAWN_FORK;
  }
  free(paths);
  errno = saved;
  return rc;
}

/* --- loop_subprocess_exec ----------------------------------------------------- */

/* What the watcher's callback carries to the spawning loop: CPython's
 * subprocess transport, reduced to what an exit needs. */
struct exit_tramp {
  uintptr_t id;             /* its name in the registry, never 0 */
  lspec_loop *loop;         /* the spawning loop (see the registry) */
  lspec_child_callback cb;  /* the caller's callback */
  void *arg;                /* its argument */
  int pid;                  /* the child */
  int returncode;           /* filled by the watcher's callback */
  struct exit_tramp *next;  /* registry chain */
};

/* The registry of trampolines whose child has not been reported yet.
 *
 * A watcher may drop a handler without calling it: remove_child_handler,
 * a second registration for the pid, close() with pending handlers, or a
 * delivery to a loop closed meanwhile.  CPython's garbage collector then
 * frees the transport; here the watcher is handed a registry id, not a
 * pointer, and the registry owns the trampoline until the exit arrives or
 * the spawning loop is closed, whichever comes first.  A watcher that calls
 * back with an id the registry no longer has (its loop was closed) finds
 * nothing to free.  While registered, a trampoline holds no loop
 * reference, so a loop nobody closes still dies at its last release, and
 * takes its trampolines with it (lspec__subprocess_loop_closed); once taken
 * out for delivery it holds one until it has run or been disposed of. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct exit_tramp **reg_buckets; /* chains; power-of-two count */
static size_t reg_mask;                 /* nbuckets - 1 */
static size_t reg_count;                /* registered trampolines */
static uintptr_t reg_next_id;           /* last id handed out */

static size_t reg_hash(uintptr_t id) {
  uint64_t h = (uint64_t)id * UINT64_C(0x9e3779b97f4a7c15);
  return (size_t)(h >> 32);
}

/* Registers t under a fresh id.  0 or -ENOMEM.  Under reg_lock. */
static int reg_insert_locked(struct exit_tramp *t) {
  size_t i;

  if (reg_buckets == NULL || reg_count >= reg_mask + 1) {
    size_t n = reg_buckets ? (reg_mask + 1) * 2 : 64;
    struct exit_tramp **b = calloc(n, sizeof *b), *c, *next;
    if (b == NULL && reg_buckets == NULL)
      return -ENOMEM;
    if (b != NULL) { /* a failed growth only makes chains longer */
      for (i = 0; reg_buckets != NULL && i <= reg_mask; i++)
        for (c = reg_buckets[i]; c != NULL; c = next) {
          next = c->next;
          c->next = b[reg_hash(c->id) & (n - 1)];
          b[reg_hash(c->id) & (n - 1)] = c;
        }
      free(reg_buckets);
      reg_buckets = b;
      reg_mask = n - 1;
    }
  }
  if (++reg_next_id == 0) /* wraps only where uintptr_t is 32 bits */
    ++reg_next_id;
  t->id = reg_next_id;
  i = reg_hash(t->id) & reg_mask;
  t->next = reg_buckets[i];
  reg_buckets[i] = t;
  reg_count++;
  return 0;
}

/* Unregisters and returns the trampoline named `id`, or NULL.  Under
 * reg_lock. */
static struct exit_tramp *reg_take_locked(uintptr_t id) {
  struct exit_tramp **link, *t;

  if (reg_buckets == NULL)
    return NULL;
  for (link = &reg_buckets[reg_hash(id) & reg_mask]; (t = *link) != NULL;
       link = &t->next)
    if (t->id == id) {
      *link = t->next;
      t->next = NULL;
      reg_count--;
      return t;
    }
  return NULL;
}

void lspec__subprocess_loop_closed(lspec_loop *loop) {
  struct exit_tramp **link, *t, *dead = NULL;
  size_t i;

  pthread_mutex_lock(&reg_lock);
  for (i = 0; reg_buckets != NULL && i <= reg_mask; i++)
    for (link = &reg_buckets[i]; (t = *link) != NULL;)
      if (t->loop == loop) {
        *link = t->next;
        reg_count--;
        t->next = dead;
        dead = t;
      } else {
        link = &t->next;
      }
  if (reg_count == 0) { /* nothing in flight: give the table back */
    free(reg_buckets);
    reg_buckets = NULL;
    reg_mask = 0;
  }
  pthread_mutex_unlock(&reg_lock);
  for (; dead != NULL; dead = t) {
    t = dead->next;
    free(dead);
  }
}

/* Around fork(), called by the policy's fork handlers (policy.c), which
 * order every lock of the reference: the registry's is taken last and, in
 * the child, given back first, before the child closes any loop (a loop's
 * close takes it). */
void lspec__subprocess_fork_prepare(void) { pthread_mutex_lock(&reg_lock); }
void lspec__subprocess_fork_release(void) { pthread_mutex_unlock(&reg_lock); }

/* The loop was closed, or freed at its last release, before the exit
 * reached the caller: the exit is lost with the loop, as in CPython.  Only
 * frees memory: it may run inside any release of the loop.  A queued
 * trampoline holds no loop reference, so a loop its user abandoned with an
 * exit still queued is not kept alive by it (CPython's collector frees such
 * a loop and its queue together). */
static void tramp_dispose(void *p) { free(p); }

/* Second hop, one iteration later: the caller's callback (CPython's
 * transport._process_exited calling protocol.process_exited through
 * call_soon). */
static void tramp_final(void *p) {
  struct exit_tramp *t = p;

  t->cb(t->pid, t->returncode, t->arg);
  free(t);
}

/* First hop, in the spawning loop's thread (CPython's
 * loop._child_watcher_callback posts transport._process_exited there with
 * call_soon_threadsafe; that in turn schedules the protocol's callback with
 * call_soon). */
static void tramp_run(void *p) {
  struct exit_tramp *t = p;

  if (lspec__loop_post(t->loop, tramp_final, t, tramp_dispose) != LSPEC_OK)
    tramp_final(t); /* cannot happen in a running loop; never lose it */
}

static void warn_loop_closed(int pid) {
  lspec__warn(LSPEC_WARN_LOG_WARNING,
              "Loop that handles pid %d is closed: its exit is dropped", pid);
}

/* The watcher's callback, from whatever thread the watcher uses; `p` is
 * the registry id. */
static void tramp_exit(int pid, int returncode, void *p) {
  struct exit_tramp *t;
  lspec_loop *loop;
  int rc;

  pthread_mutex_lock(&reg_lock);
  t = reg_take_locked((uintptr_t)p);
  /* A loop at its last release is being freed: it cannot take a post. */
  if (t != NULL && !lspec__loop_tryretain(t->loop)) {
    free(t);
    t = NULL;
  }
  pthread_mutex_unlock(&reg_lock);
  if (t == NULL) {
    warn_loop_closed(pid); /* the loop was closed, and its registry gone */
    return;
  }
  t->pid = pid;
  t->returncode = returncode;
  loop = t->loop; /* once posted, t belongs to the loop */
  if (LSPEC_PLANTED(SUB_EXEC_003)) { /* planted: in the watcher's thread */
    tramp_final(t);
    lspec__loop_release(loop);
    return;
  }
  /* Our reference keeps the loop alive while we post; the queued
   * trampoline holds none (tramp_dispose). */
  if ((rc = lspec__loop_post(loop, tramp_run, t, tramp_dispose)) !=
      LSPEC_OK) {
    warn_loop_closed(pid); /* closed since: the exit cannot be delivered */
    free(t);
  }
  lspec__loop_release(loop); /* may be the last: then t is disposed of */
}

/* Planted bug SUB_WATCHER_001: the current policy's base method, which
 * bypasses the policy's own get_child_watcher. */
static int planted_base_watcher(lspec_watcher **out) {
  lspec_policy *p;
  int rc = lspec__get_event_loop_policy(&p);

  if (rc == LSPEC_OK) {
    rc = lspec__policy_super_get_child_watcher(p, out);
    lspec__policy_release(p);
  }
  return rc;
}

int lspec__loop_subprocess_exec(lspec_loop *loop, const char *const *argv,
                                lspec_child_callback cb, void *arg, int *pid) {
  lspec_watcher *w = NULL, *entered = NULL, *target;
  struct exit_tramp *t = NULL;
  pid_t child = -1;
  int rc, r, st;

  if (pid != NULL)
    *pid = -1;
  if (lspec__kind_of(loop) != LSPEC__KIND_LOOP)
    return lspec__fail(LSPEC_E_TYPE, "subprocess_exec: loop must be an event "
                                     "loop handle, not %s",
                       loop ? "a handle of another kind" : "NULL");
  if (argv == NULL || argv[0] == NULL)
    return lspec__fail(LSPEC_E_VALUE, "subprocess_exec: empty argv");
  if (cb == NULL)
    return lspec__fail(LSPEC_E_TYPE, "subprocess_exec: callback is NULL");
  if (lspec__loop_is_closed(loop) == 1)
    return lspec__fail(LSPEC_E_RUNTIME, "Event loop is closed");
  if ((t = calloc(1, sizeof *t)) == NULL)
    return lspec__fail_nomem("starting a subprocess");

  /* SUB-001/002: the current policy's watcher, inside `with`. */
  /* 3.12 fetches the watcher with its DeprecationWarning silenced, so that
   * spawning never warns (research SUB-001). */
  lspec__warn_suppress(LSPEC_WARN_DEPRECATION, 1);
  rc = LSPEC_PLANTED(SUB_WATCHER_001) ? planted_base_watcher(&w)
                                      : lspec__get_child_watcher(&w);
  lspec__warn_suppress(LSPEC_WARN_DEPRECATION, 0);
  if (rc != LSPEC_OK)
    goto out;
  if ((rc = lspec__watcher_enter(w, &entered)) != LSPEC_OK)
    goto out;
  target = lspec__profile() <= LSPEC_PROFILE_3_11 ? entered : w;

  /* SUB-003: inactive means no child at all. */
  if (LSPEC_PLANTED(SUB_INACTIVE_001) && lspec__watcher_is_active(target) == 0)
    (void)lspec__spawn(argv, &child, NULL); /* planted: spawned, then left */
  if ((r = lspec__watcher_is_active(target)) < 0) {
    rc = r;
    goto exit;
  }
  if (r == 0) {
    rc = lspec__fail(LSPEC_E_RUNTIME,
                     "asyncio.get_child_watcher() is not activated, "
                     "subprocess support is not installed.");
    goto exit;
  }

  if ((r = lspec__spawn(argv, &child, NULL)) < 0) {
    rc = lspec__fail_errno(-r, "subprocess_exec: cannot execute '%s'",
                           argv[0]);
    goto exit;
  }

  /* SUB-004: register with the trampoline to the spawning loop. */
  t->loop = loop;
  t->cb = cb;
  t->arg = arg;
  t->pid = child;
  pthread_mutex_lock(&reg_lock);
  r = reg_insert_locked(t);
  pthread_mutex_unlock(&reg_lock);
  if (r != 0)
    rc = lspec__fail_nomem("starting a subprocess");
  else if ((rc = lspec__watcher_add_child_handler(
                target, child, tramp_exit, (void *)t->id)) != LSPEC_OK) {
    pthread_mutex_lock(&reg_lock);
    reg_take_locked(t->id);
    pthread_mutex_unlock(&reg_lock);
  }
  if (rc != LSPEC_OK) {
    /* CPython closes the transport, which kills the child; reap it here so
     * that nothing is left behind. */
    kill(child, SIGKILL);
    while (lspec__sys.waitpid(child, &st, 0) == -EINTR)
      ;
    goto exit;
  }
  t = NULL; /* the registry owns it now */
  if (pid != NULL)
    *pid = child;

exit:
  r = lspec__watcher_exit(w);
  if (rc == LSPEC_OK)
    rc = r;
out:
  if (entered != NULL)
    lspec__watcher_release(entered);
  if (w != NULL)
    lspec__watcher_release(w);
  free(t);
  return rc;
}
