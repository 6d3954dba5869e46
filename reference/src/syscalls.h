/* syscalls.h - the system calls the reference makes that a test must be
 * able to make fail, and the spawner itself.
 *
 * The calls go through lspec__sys, one table of function pointers (SQLite's
 * aSyscall[] idea): a test swaps entries to make the Nth call fail with the
 * errno of its choice (EMFILE, EAGAIN, ENOSYS, ...; reference/tests/
 * fault_helpers.h) and puts lspec__sys_real back.  The table is
 * process-wide and not synchronised: swap entries only while no other
 * thread uses the reference.  An entry may be called from a signal
 * handler (write) or from a spawned child that still shares the parent's
 * memory (close_range): replacements must be async-signal-safe and must
 * not allocate.
 *
 * Every entry returns a non-negative result, or a negative errno; errno
 * itself is left alone.  What goes through the table: clone3 and fork (the
 * spawner), waitpid and waitid (every reap), pidfd_open, pipe2, eventfd,
 * epoll_create1 and epoll_ctl, sigaction (installing handlers),
 * pthread_create (Threaded's waiters, MultiLoop's reaper), write (every
 * wake-up), close_range (the spawned child).  Calls made in the spawned
 * child before exec, and reads and closes, do not.
 */
#ifndef LSPEC_REFERENCE_SYSCALLS_H
#define LSPEC_REFERENCE_SYSCALLS_H

#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <sys/wait.h>

struct lspec__syscalls {
  /* clone3(2) as the spawner uses it (CLONE_VM|CLONE_VFORK...): `args` is
   * a struct clone_args of `size` bytes; in the child, fn(arg) runs on the
   * new stack and its result is the exit status.  The parent gets the pid,
   * or -ENOSYS/-EINVAL/-EPERM (no clone3 here: the spawner falls back to
   * fork), -EAGAIN, -ENOMEM. */
  long (*clone3)(void *args, size_t size, int (*fn)(void *), void *arg);
  /* fork(2): the pid, 0 in the child, or -EAGAIN, -ENOMEM. */
  pid_t (*fork)(void);
  /* waitpid(2) / waitid(2): -EINTR (the caller retries), -ECHILD. */
  pid_t (*waitpid)(pid_t pid, int *status, int options);
  int (*waitid)(idtype_t idtype, id_t id, siginfo_t *info, int options);
  /* pidfd_open(2): a descriptor (always close-on-exec) referring to `pid`,
   * or -ESRCH (no such process), -ENOSYS (kernel before 5.3 or filtered),
   * -EINVAL, -EMFILE, -ENFILE, -ENOMEM. */
  int (*pidfd_open)(pid_t pid, unsigned int flags);
  /* pipe2(2), eventfd(2), epoll_create1(2): 0 or a descriptor, or -EMFILE,
   * -ENFILE, -ENOMEM. */
  int (*pipe2)(int fds[2], int flags);
  int (*eventfd)(unsigned int initval, int flags);
  int (*epoll_create1)(int flags);
  /* epoll_ctl(2): -ENOMEM, -ENOSPC (max_user_watches), -EEXIST, -ENOENT,
   * -EBADF, -EPERM. */
  int (*epoll_ctl)(int epfd, int op, int fd, struct epoll_event *event);
  /* sigaction(2): -EINVAL. */
  int (*sigaction)(int sig, const struct sigaction *act,
                   struct sigaction *old);
  /* pthread_create(3): 0, or -EAGAIN, -ENOMEM, -EINVAL, -EPERM (negated
   * like the others, though pthreads return a positive number). */
  int (*pthread_create)(pthread_t *thread, const pthread_attr_t *attr,
                        void *(*start)(void *), void *arg);
  /* write(2): bytes written, or -EINTR, -EAGAIN, ...  Called from signal
   * handlers. */
  ssize_t (*write)(int fd, const void *buf, size_t count);
  /* close_range(2): 0, or -ENOSYS (kernel before 5.9 or filtered),
   * -EINVAL, -ENOMEM (CLOSE_RANGE_UNSHARE).  The spawner's child calls it
   * while it shares the parent's memory. */
  int (*close_range)(unsigned int first, unsigned int last,
                     unsigned int flags);
};

/* The table in use (syscalls.c). */
LSPEC__HIDDEN extern struct lspec__syscalls lspec__sys;

/* The real implementations, for a test to restore: lspec__sys =
 * lspec__sys_real. */
LSPEC__HIDDEN extern const struct lspec__syscalls lspec__sys_real;

/* Writes the 8-byte value 1 to an eventfd through lspec__sys.write,
 * retrying EINTR; EAGAIN (the counter is full, so the descriptor is
 * readable already) counts as done.  0 or a negative errno. Async-signal-
 * safe. */
LSPEC__HIDDEN int lspec__sys_wake(int fd);

/* --- the spawner (subprocess.c) ------------------------------------------ */

/* How lspec__spawn started its last child, for benchmarks and tests. */
enum lspec__spawn_method {
  LSPEC__SPAWN_CLONE3 = 1, /* clone3(CLONE_VM|CLONE_VFORK|CLEAR_SIGHAND) */
  LSPEC__SPAWN_FORK = 2    /* fork + close-on-exec error pipe, the fallback */
};

/* Starts argv[0] with arguments argv and the process's environment, without
 * a shell.  argv[0] is searched in PATH when it has no '/', like execvp.
 * The child starts with an empty signal mask, every signal the parent
 * catches back at SIG_DFL, and SIGPIPE and SIGXFSZ at SIG_DFL (CPython's
 * restore_signals); it inherits descriptors 0, 1 and 2 and no other (CPython's
 * default close_fds=True).  On success writes the child's pid and returns
 * 0; when the program cannot be executed returns -errno (-ENOENT for a missing program)
 * after reaping the short-lived child, so no zombie is left.  `method`, if
 * not NULL, receives the enum lspec__spawn_method used.  Thread-safe; does
 * not touch the caller's errno. */
LSPEC__HIDDEN int lspec__spawn(const char *const *argv, pid_t *pid,
                               int *method);

/* Makes the spawner probe the kernel again (whether close_range works) at
 * its next spawn: for a test that swapped lspec__sys.close_range. */
LSPEC__HIDDEN void lspec__spawn_forget_probes(void);

#endif /* LSPEC_REFERENCE_SYSCALLS_H */
