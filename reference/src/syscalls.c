/* syscalls.c - the table of system calls a test can make fail
 * (syscalls.h), and the real implementations it starts with.
 *
 * Each entry is a thin wrapper over the real call that returns -errno
 * instead of setting errno, and leaves errno as it found it, so a
 * replacement can fail without touching errno and every caller sees one
 * convention.
 */
#define _GNU_SOURCE 1
#include "syscalls.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434 /* the same number on every architecture */
#endif
#ifndef __NR_close_range
#define __NR_close_range 436 /* likewise */
#endif
#ifndef __NR_clone3
#define __NR_clone3 435 /* likewise */
#endif

/* r < 0 means the call failed and errno says why: -errno, errno restored. */
#define LSPEC__RET(type, call)                                                 \
  do {                                                                         \
    int saved_ = errno;                                                        \
    type r_ = (call);                                                          \
    if (r_ < 0)                                                                \
      r_ = (type)-errno;                                                       \
    errno = saved_;                                                            \
    return r_;                                                                 \
  } while (0)

#if defined(__x86_64__)
/* The child starts with the parent's registers but rsp at the top of the
 * new stack; it calls fn(arg) there and exits with its result.  syscall
 * keeps every register but rax, rcx and r11. */
static long real_clone3(void *args, size_t size, int (*fn)(void *),
                        void *arg) {
  long ret;
  register void *r8 __asm__("r8") = (void *)fn;
  register void *r9 __asm__("r9") = arg;

  __asm__ volatile("syscall\n\t"
                   "testq %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   "xorl %%ebp, %%ebp\n\t"
                   "andq $-16, %%rsp\n\t"
                   "movq %%r9, %%rdi\n\t"
                   "callq *%%r8\n\t"
                   "movl %%eax, %%edi\n\t"
                   "movl $60, %%eax\n\t" /* SYS_exit */
                   "syscall\n\t"
                   "hlt\n"
                   "1:\n\t"
                   : "=a"(ret)
                   : "0"((long)__NR_clone3), "D"(args), "S"(size), "r"(r8),
                     "r"(r9)
                   : "rcx", "r11", "memory", "cc");
  return ret; /* the kernel's -errno already */
}
#else
static long real_clone3(void *args, size_t size, int (*fn)(void *),
                        void *arg) {
  (void)args, (void)size, (void)fn, (void)arg;
  return -ENOSYS; /* the spawner uses fork here */
}
#endif

static pid_t real_fork(void) { LSPEC__RET(pid_t, fork()); }

static pid_t real_waitpid(pid_t pid, int *status, int options) {
  LSPEC__RET(pid_t, waitpid(pid, status, options));
}

static int real_waitid(idtype_t idtype, id_t id, siginfo_t *info,
                       int options) {
  LSPEC__RET(int, waitid(idtype, id, info, options));
}

static int real_pidfd_open(pid_t pid, unsigned int flags) {
  LSPEC__RET(int, (int)syscall(__NR_pidfd_open, (long)pid, (long)flags));
}

static int real_pipe2(int fds[2], int flags) {
  LSPEC__RET(int, pipe2(fds, flags));
}

static int real_eventfd(unsigned int initval, int flags) {
  LSPEC__RET(int, eventfd(initval, flags));
}

static int real_epoll_create1(int flags) {
  LSPEC__RET(int, epoll_create1(flags));
}

static int real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  LSPEC__RET(int, epoll_ctl(epfd, op, fd, ev));
}

static int real_sigaction(int sig, const struct sigaction *act,
                          struct sigaction *old) {
  LSPEC__RET(int, sigaction(sig, act, old));
}

static int real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                               void *(*start)(void *), void *arg) {
  return -pthread_create(thread, attr, start, arg);
}

static ssize_t real_write(int fd, const void *buf, size_t count) {
  LSPEC__RET(ssize_t, write(fd, buf, count));
}

/* Also called by the spawner's child, which shares the caller's memory
 * (and so its errno): async-signal-safe, no allocation. */
static int real_close_range(unsigned int first, unsigned int last,
                            unsigned int flags) {
  LSPEC__RET(int, (int)syscall(__NR_close_range, (long)first, (long)last,
                               (long)flags));
}

/* The real entries; lspec__sys starts as a copy (a test swaps its entries
 * and copies lspec__sys_real back). */
#define LSPEC__SYS_REAL                                                        \
  {                                                                            \
    .clone3 = real_clone3, .fork = real_fork, .waitpid = real_waitpid,         \
    .waitid = real_waitid, .pidfd_open = real_pidfd_open,                      \
    .pipe2 = real_pipe2, .eventfd = real_eventfd,                              \
    .epoll_create1 = real_epoll_create1, .epoll_ctl = real_epoll_ctl,          \
    .sigaction = real_sigaction, .pthread_create = real_pthread_create,        \
    .write = real_write, .close_range = real_close_range,                      \
  }

const struct lspec__syscalls lspec__sys_real = LSPEC__SYS_REAL;
struct lspec__syscalls lspec__sys = LSPEC__SYS_REAL;

int lspec__sys_wake(int fd) {
  static const uint64_t one = 1;
  ssize_t n;

  do
    n = lspec__sys.write(fd, &one, sizeof one);
  while (n == -EINTR);
  return n < 0 && n != -EAGAIN ? (int)n : 0;
}
