/* syscalls.c - the table of system calls a test can make fail
 * (syscalls.h), and the real implementations it starts with.
 *
 * Each entry is a thin wrapper over the raw system call that returns
 * -errno instead of setting errno, so a replacement can fail without
 * touching errno and a caller sees one convention.
 */
#define _GNU_SOURCE 1
#include "syscalls.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434 /* the same number on every architecture */
#endif
#ifndef __NR_close_range
#define __NR_close_range 436 /* likewise */
#endif

int lspec__sys_pidfd_open(pid_t pid, unsigned int flags) {
  int saved = errno, rc;
  long fd = syscall(__NR_pidfd_open, (long)pid, (long)flags);
  rc = fd < 0 ? -errno : (int)fd;
  errno = saved;
  return rc;
}

/* Also called by the spawner's child, which shares the caller's memory
 * (and so its errno): async-signal-safe, no allocation. */
int lspec__sys_close_range(unsigned int first, unsigned int last,
                           unsigned int flags) {
  int saved = errno, rc;
  long r = syscall(__NR_close_range, (long)first, (long)last, (long)flags);
  rc = r < 0 ? -errno : 0;
  errno = saved;
  return rc;
}

struct lspec__syscalls lspec__sys = {
    .pidfd_open = lspec__sys_pidfd_open,
    .close_range = lspec__sys_close_range,
};
