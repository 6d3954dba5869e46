/* stamps.c - the exit-time slots and the child's argument vectors.
 *
 * The slots are a memfd that every child inherits (no close-on-exec) and the
 * parent maps shared.  A stamping child is started as
 * `lspec-bench-child s FD SLOT /proc/PARENT/fd/FD`; it writes its
 * CLOCK_MONOTONIC time in nanoseconds into 8-byte slot SLOT right before it
 * exits.  A spawner that closes inherited descriptors (CPython's
 * close_fds) leaves the child the path instead.  The vectors live here, and
 * the slot's digits are rewritten in place for each child, so spawning
 * allocates nothing.
 */
#define _GNU_SOURCE 1
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int lb_stamps_open(struct lb_stamps *s, const char *child, size_t nslots,
                   int stamp, char *why, size_t whylen) {
  size_t bytes = (nslots + 1) * sizeof *s->slot;

  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->stamp = stamp;
  s->nslots = nslots;
  if (stamp) {
    s->fd = memfd_create("lspec-bench-stamps", 0); /* inherited on purpose */
    if (s->fd < 0 || ftruncate(s->fd, (off_t)bytes) != 0) {
      snprintf(why, whylen, "memfd for the exit stamps: %s", strerror(errno));
      lb_stamps_close(s);
      return -1;
    }
    s->slot = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (s->slot == MAP_FAILED) {
      s->slot = NULL;
      snprintf(why, whylen, "mapping the exit stamps: %s", strerror(errno));
      lb_stamps_close(s);
      return -1;
    }
    snprintf(s->fdtext, sizeof s->fdtext, "%d", s->fd);
    snprintf(s->path, sizeof s->path, "/proc/%d/fd/%d", (int)getpid(), s->fd);
    s->argv[0] = child;
    s->argv[1] = "s";
    s->argv[2] = s->fdtext;
    s->argv[3] = s->slottext;
    s->argv[4] = s->path;
    s->argv[5] = NULL;
  } else {
    s->argv[0] = child;
    s->argv[1] = NULL;
  }
  s->idle_argv[0] = child;
  s->idle_argv[1] = "p";
  s->idle_argv[2] = NULL;
  return 0;
}

const char *const *lb_stamps_argv(struct lb_stamps *s, size_t slot) {
  char digits[24];
  size_t n = 0, i;

  if (!s->stamp)
    return s->argv;
  do
    digits[n++] = (char)('0' + slot % 10);
  while ((slot /= 10) != 0);
  for (i = 0; i < n; i++)
    s->slottext[i] = digits[n - 1 - i];
  s->slottext[n] = '\0';
  return s->argv;
}

void lb_stamps_clear(struct lb_stamps *s) {
  if (s->slot != NULL)
    memset(s->slot, 0, (s->nslots + 1) * sizeof *s->slot);
}

void lb_stamps_close(struct lb_stamps *s) {
  if (s->slot != NULL)
    munmap(s->slot, (s->nslots + 1) * sizeof *s->slot);
  if (s->fd >= 0)
    close(s->fd);
  s->slot = NULL;
  s->fd = -1;
}
