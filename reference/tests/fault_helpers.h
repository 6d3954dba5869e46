/* fault_helpers.h - fault injection for the reference's unit tests: a fake
 * for every entry of the lspec__sys table (reference/src/syscalls.h) that
 * counts the calls it sees and makes the Nth one fail with a chosen errno.
 *
 *   fh_install();              every entry goes through a counting fake
 *   fh_arm(FH_WAITPID, 3, EINTR);   the 3rd waitpid from now fails
 *   ... run a scenario ...
 *   fh_fired(FH_WAITPID)       whether the fault was injected
 *   fh_uninstall();            lspec__sys = lspec__sys_real
 *
 * A fault is made to look like what the kernel would do, so that the code
 * under test meets a situation that can really happen:
 *  - ECHILD from waitpid/waitid means someone else reaped the child: the
 *    fake reaps it first; a child that still runs cannot have been reaped
 *    yet, so then the fake injects nothing (fh_fired stays 0);
 *  - EAGAIN from a write to an eventfd means its counter is full, so the
 *    descriptor is readable: the fake writes, then reports EAGAIN;
 *  - EINTR from waitpid, waitid or write: nothing happened, the caller
 *    retries;
 *  - epoll_ctl fails only when adding, sigaction only when installing (the
 *    only calls that can fail with what is injected); only those count.
 *
 * The counters are atomics and the fakes allocate nothing: write is called
 * from signal handlers, close_range from a spawned child sharing our memory
 * (close_range is never faulted: the spawner's child cannot report it
 * differently from an exec failure).
 */
#ifndef LSPEC_TESTS_FAULT_HELPERS_H
#define LSPEC_TESTS_FAULT_HELPERS_H

#include "loop_helpers.h"

#include "syscalls.h"

enum fh_entry {
  FH_CLONE3,
  FH_FORK,
  FH_WAITPID,
  FH_WAITID,
  FH_PIDFD_OPEN,
  FH_PIPE2,
  FH_EVENTFD,
  FH_EPOLL_CREATE1,
  FH_EPOLL_CTL,
  FH_SIGACTION,
  FH_PTHREAD_CREATE,
  FH_WRITE,
  FH_COUNT
};

static const char *const fh_names[FH_COUNT] = {
    "clone3",    "fork",          "waitpid",       "waitid",
    "pidfd_open", "pipe2",        "eventfd",       "epoll_create1",
    "epoll_ctl", "sigaction",     "pthread_create", "write"};

/* The errors each entry is made to fail with: what the real call can
 * return in the situation the reference uses it in.  0-terminated. */
static const int fh_errors[FH_COUNT][5] = {
    [FH_CLONE3] = {EAGAIN, ENOMEM, ENOSYS, 0},
    [FH_FORK] = {EAGAIN, ENOMEM, 0},
    [FH_WAITPID] = {EINTR, ECHILD, 0},
    [FH_WAITID] = {EINTR, ECHILD, 0},
    [FH_PIDFD_OPEN] = {EMFILE, ENFILE, ENOMEM, ENOSYS, 0},
    [FH_PIPE2] = {EMFILE, ENFILE, 0},
    [FH_EVENTFD] = {EMFILE, ENFILE, ENOMEM, 0},
    [FH_EPOLL_CREATE1] = {EMFILE, ENFILE, ENOMEM, 0},
    [FH_EPOLL_CTL] = {ENOMEM, ENOSPC, 0},
    [FH_SIGACTION] = {EINVAL, 0},
    [FH_PTHREAD_CREATE] = {EAGAIN, ENOMEM, 0},
    [FH_WRITE] = {EINTR, EAGAIN, 0},
};

static atomic_int fh_calls[FH_COUNT];   /* counted calls since fh_arm */
static atomic_int fh_fail_at[FH_COUNT]; /* the call to fail (1-based), 0 */
static atomic_int fh_err[FH_COUNT];     /* its errno */
static atomic_int fh_hits[FH_COUNT];    /* faults injected */
static atomic_int fh_stolen;            /* children an ECHILD fault reaped */

/* Counts a call of `e`; the errno to fail it with, or 0. */
static inline int fh_hit(int e) {
  int n = atomic_fetch_add(&fh_calls[e], 1) + 1;
  if (n != atomic_load(&fh_fail_at[e]))
    return 0;
  atomic_fetch_add(&fh_hits[e], 1);
  return atomic_load(&fh_err[e]);
}

static long fh_clone3(void *args, size_t size, int (*fn)(void *), void *arg) {
  int e = fh_hit(FH_CLONE3);
  return e ? -e : lspec__sys_real.clone3(args, size, fn, arg);
}

static pid_t fh_fork(void) {
  int e = fh_hit(FH_FORK);
  return e ? -e : lspec__sys_real.fork();
}

/* ECHILD: someone else reaped the child - if it has ended.  A child that
 * still runs cannot have been reaped: then nothing is injected. */
static pid_t fh_waitpid(pid_t pid, int *status, int options) {
  int e = fh_hit(FH_WAITPID), st;
  pid_t r;
  if (e == ECHILD) {
    while ((r = lspec__sys_real.waitpid(pid, &st, options | WNOHANG)) > 0) {
      atomic_fetch_add(&fh_stolen, 1);
      if (pid != -1)
        break;
    }
    if (atomic_load(&fh_stolen) == 0 && r == 0) {
      atomic_fetch_sub(&fh_hits[FH_WAITPID], 1); /* nothing to steal */
      e = 0;
    }
  }
  return e ? -e : lspec__sys_real.waitpid(pid, status, options);
}

static int fh_waitid(idtype_t idtype, id_t id, siginfo_t *info, int options) {
  int e = fh_hit(FH_WAITID);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (e == ECHILD) {
    if (lspec__sys_real.waitid(idtype, id, &si, options | WNOHANG) == 0 &&
        si.si_pid != 0) {
      atomic_fetch_add(&fh_stolen, 1);
    } else {
      atomic_fetch_sub(&fh_hits[FH_WAITID], 1); /* nothing to steal */
      e = 0;
    }
  }
  return e ? -e : lspec__sys_real.waitid(idtype, id, info, options);
}

static int fh_pidfd_open(pid_t pid, unsigned int flags) {
  int e = fh_hit(FH_PIDFD_OPEN);
  return e ? -e : lspec__sys_real.pidfd_open(pid, flags);
}

static int fh_pipe2(int fds[2], int flags) {
  int e = fh_hit(FH_PIPE2);
  return e ? -e : lspec__sys_real.pipe2(fds, flags);
}

static int fh_eventfd(unsigned int initval, int flags) {
  int e = fh_hit(FH_EVENTFD);
  return e ? -e : lspec__sys_real.eventfd(initval, flags);
}

static int fh_epoll_create1(int flags) {
  int e = fh_hit(FH_EPOLL_CREATE1);
  return e ? -e : lspec__sys_real.epoll_create1(flags);
}

static int fh_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  int e = op == EPOLL_CTL_ADD ? fh_hit(FH_EPOLL_CTL) : 0;
  return e ? -e : lspec__sys_real.epoll_ctl(epfd, op, fd, ev);
}

static int fh_sigaction(int sig, const struct sigaction *act,
                        struct sigaction *old) {
  int e = act != NULL ? fh_hit(FH_SIGACTION) : 0;
  return e ? -e : lspec__sys_real.sigaction(sig, act, old);
}

static int fh_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                             void *(*start)(void *), void *arg) {
  int e = fh_hit(FH_PTHREAD_CREATE);
  return e ? -e : lspec__sys_real.pthread_create(thread, attr, start, arg);
}

static ssize_t fh_write(int fd, const void *buf, size_t count) {
  int e = fh_hit(FH_WRITE);
  if (e == EAGAIN)
    (void)lspec__sys_real.write(fd, buf, count); /* full, so readable */
  return e ? -e : lspec__sys_real.write(fd, buf, count);
}

/* Resets every counter; arms `e` to fail its `nth` call (0: none) with
 * `err`.  Pass e = FH_COUNT to count without failing. */
static inline void fh_arm(int e, int nth, int err) {
  int i;
  for (i = 0; i < FH_COUNT; i++) {
    atomic_store(&fh_fail_at[i], 0);
    atomic_store(&fh_calls[i], 0);
    atomic_store(&fh_hits[i], 0);
  }
  atomic_store(&fh_stolen, 0);
  if (e >= 0 && e < FH_COUNT) {
    atomic_store(&fh_err[e], err);
    atomic_store(&fh_fail_at[e], nth);
  }
}

static inline int fh_count(int e) { return atomic_load(&fh_calls[e]); }
static inline int fh_fired(int e) { return atomic_load(&fh_hits[e]) > 0; }
/* How many children an injected ECHILD reaped (0: the fault landed on a
 * call that had nothing left to reap, and changed nothing). */
static inline int fh_stolen_children(void) { return atomic_load(&fh_stolen); }

static inline void fh_install(void) {
  fh_arm(FH_COUNT, 0, 0);
  lspec__sys.clone3 = fh_clone3;
  lspec__sys.fork = fh_fork;
  lspec__sys.waitpid = fh_waitpid;
  lspec__sys.waitid = fh_waitid;
  lspec__sys.pidfd_open = fh_pidfd_open;
  lspec__sys.pipe2 = fh_pipe2;
  lspec__sys.eventfd = fh_eventfd;
  lspec__sys.epoll_create1 = fh_epoll_create1;
  lspec__sys.epoll_ctl = fh_epoll_ctl;
  lspec__sys.sigaction = fh_sigaction;
  lspec__sys.pthread_create = fh_pthread_create;
  lspec__sys.write = fh_write;
}

static inline void fh_uninstall(void) {
  lspec__sys = lspec__sys_real;
  lspec__spawn_forget_probes();
}

#endif /* LSPEC_TESTS_FAULT_HELPERS_H */
