/* child.c - lspec-bench-child, the benchmark's short-lived child: a tiny
 * static program without libc, so that what a churn measures is the parent's
 * spawning and reaping, not a C library's start-up.
 *
 *   lspec-bench-child                   exits 0 at once
 *   lspec-bench-child s FD SLOT PATH    stamps CLOCK_MONOTONIC (ns) into
 *                                       8-byte slot SLOT of the file open as
 *                                       FD, immediately before it exits 0
 *   lspec-bench-child p                 waits until it is killed (an idle
 *                                       child)
 *
 * The stamp: if FD is not open here (a spawner that closes inherited
 * descriptors, as CPython's close_fds does), PATH (the parent's
 * /proc/PID/fd/FD) is opened instead, before the clock is read, so the
 * stamp-to-exit path is the same in both cases: clock_gettime, pwrite64,
 * exit_group.  Any failure exits 3 (a wrong status the parent counts).
 *
 * x86-64 and AArch64 use raw system calls from _start; other architectures
 * build the same logic against libc (LSPEC_CHILD_LIBC).
 */
#include <stdint.h>

#if !defined(LSPEC_CHILD_LIBC)
#if defined(__x86_64__)
#define NR_pwrite64 18
#define NR_fcntl 72
#define NR_openat 257
#define NR_clock_gettime 228
#define NR_ppoll 271
#define NR_exit_group 231

static long sys4(long n, long a, long b, long c, long d) {
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
#define NR_pwrite64 68
#define NR_fcntl 25
#define NR_openat 56
#define NR_clock_gettime 113
#define NR_ppoll 73
#define NR_exit_group 94

static long sys4(long n, long a, long b, long c, long d) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
                   : "memory");
  return x0;
}
#else
#error "no raw system calls for this architecture: build with LSPEC_CHILD_LIBC"
#endif

struct ts {
  long sec;
  long nsec;
};

static __attribute__((noreturn)) void leave(int code) {
  for (;;)
    sys4(NR_exit_group, code, 0, 0, 0);
}
static long fd_ok(long fd) { return sys4(NR_fcntl, fd, 1 /* F_GETFD */, 0, 0) >= 0; }
static long open_wr(const char *path) {
  return sys4(NR_openat, -100 /* AT_FDCWD */, (long)path, 1 /* O_WRONLY */, 0);
}
static int64_t now_ns(void) {
  struct ts t;
  if (sys4(NR_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)&t, 0, 0) != 0)
    return -1;
  return (int64_t)t.sec * 1000000000 + t.nsec;
}
static long write_at(long fd, const void *buf, long n, long off) {
  return sys4(NR_pwrite64, fd, (long)buf, n, off);
}
static __attribute__((noreturn)) void wait_forever(void) {
  for (;;)
    sys4(NR_ppoll, 0, 0, 0, 0);
}

#else /* LSPEC_CHILD_LIBC */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

static __attribute__((noreturn)) void leave(int code) { _exit(code); }
static long fd_ok(long fd) { return fcntl((int)fd, F_GETFD) >= 0; }
static long open_wr(const char *path) { return open(path, O_WRONLY); }
static int64_t now_ns(void) {
  struct timespec t;
  if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
    return -1;
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
static long write_at(long fd, const void *buf, long n, long off) {
  return pwrite((int)fd, buf, (size_t)n, off);
}
static __attribute__((noreturn)) void wait_forever(void) {
  for (;;)
    ppoll(NULL, 0, NULL, NULL);
}
#endif

/* A non-negative decimal, or -1. */
static long parse(const char *s) {
  long v = 0;
  if (s == 0 || *s == 0)
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

static __attribute__((noreturn)) void child_main(long argc, char **argv) {
  long fd, slot;
  int64_t t;

  if (argc < 2)
    leave(0);
  if (argv[1][0] == 'p')
    wait_forever();
  if (argv[1][0] != 's' || argc < 5)
    leave(2);
  fd = parse(argv[2]);
  slot = parse(argv[3]);
  if (fd < 0 || slot < 0)
    leave(3);
  if (!fd_ok(fd) && (fd = open_wr(argv[4])) < 0)
    leave(3);
  t = now_ns();
  if (t < 0 || write_at(fd, &t, sizeof t, slot * (long)sizeof t) != sizeof t)
    leave(3);
  leave(0);
}

#if !defined(LSPEC_CHILD_LIBC)
/* The kernel enters here with the stack holding argc, then argv. */
__attribute__((used)) static void start_c(long *sp) {
  child_main(sp[0], (char **)(sp + 1));
}
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n\txor %ebp, %ebp\n\tmov %rsp, %rdi\n"
        "\tand $-16, %rsp\n\tcall start_c\n\thlt\n");
#else
__asm__(".text\n.global _start\n_start:\n\tmov x29, #0\n\tmov x0, sp\n"
        "\tand sp, x0, #-16\n\tbl start_c\n\tbrk #0\n");
#endif
#else
int main(int argc, char **argv) { child_main(argc, argv); }
#endif
