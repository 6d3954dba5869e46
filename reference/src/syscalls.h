/* syscalls.h - the raw system calls the watchers and the spawner make that a
 * test must be able to make fail, and the spawner itself.
 *
 * Syscalls go through lspec__sys, a table of function pointers (SQLite's
 * aSyscall[] pattern): a unit test swaps one entry to simulate a kernel
 * without the call (ENOSYS) or a refusal, and puts the original back.  The
 * table is process-wide and not synchronised: swap entries only while no
 * other thread uses the reference.
 *
 * Every entry returns a non-negative result, or a negative errno; errno
 * itself is left alone.
 */
#ifndef LSPEC_REFERENCE_SYSCALLS_H
#define LSPEC_REFERENCE_SYSCALLS_H

#include "internal.h"

#include <sys/types.h>

struct lspec__syscalls {
  /* pidfd_open(2): a descriptor (always close-on-exec) referring to `pid`,
   * or -ESRCH (no such process), -ENOSYS (kernel before 5.3 or filtered),
   * -EINVAL, -EMFILE, ... */
  int (*pidfd_open)(pid_t pid, unsigned int flags);
  /* close_range(2): 0, or -ENOSYS (kernel before 5.9 or filtered),
   * -EINVAL, -ENOMEM (CLOSE_RANGE_UNSHARE).  The spawner's child calls it
   * while it shares the parent's memory: an entry must be async-signal-safe
   * and allocate nothing. */
  int (*close_range)(unsigned int first, unsigned int last,
                     unsigned int flags);
};

/* The table in use (syscalls.c). */
LSPEC__HIDDEN extern struct lspec__syscalls lspec__sys;

/* The real implementations, for a test to restore. */
LSPEC__HIDDEN int lspec__sys_pidfd_open(pid_t pid, unsigned int flags);
LSPEC__HIDDEN int lspec__sys_close_range(unsigned int first,
                                         unsigned int last,
                                         unsigned int flags);

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
