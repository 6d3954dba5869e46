/* loop_poll.c - the poll(2) backend of the loop (selectors.PollSelector).
 *
 * A dense pollfd array plus an index by descriptor, so add, modify and
 * remove are O(1) (remove moves the last entry into the hole) and wait is
 * one poll over the array.  Arrays grow in add only; wait never allocates.
 *
 * poll accepts any descriptor number, so add checks with fcntl(F_GETFD)
 * that the descriptor is open and answers EBADF otherwise, as epoll (the
 * default backend) does.  Unlike epoll it accepts regular files, which
 * poll reports as always readable: that is PollSelector's behaviour too.
 */
#define _GNU_SOURCE 1
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct poll_backend {
  struct lspec__backend base; /* ops; must be first */
  struct pollfd *pfds;        /* watched descriptors, dense */
  size_t n;                   /* entries used in pfds */
  size_t cap;                 /* entries in pfds and out */
  size_t *pos;                /* pos[fd] = index in pfds + 1; 0 = absent */
  size_t pos_cap;             /* entries in pos */
  struct lspec__event *out;   /* what wait hands to the loop */
};

static short to_poll(unsigned events) {
  return (short)(((events & LSPEC__EV_READ) ? POLLIN : 0) |
                 ((events & LSPEC__EV_WRITE) ? POLLOUT : 0));
}

/* The index of fd in pfds, or -1. */
static long find(const struct poll_backend *p, int fd) {
  if (fd < 0 || (size_t)fd >= p->pos_cap || p->pos[fd] == 0)
    return -1;
  return (long)(p->pos[fd] - 1);
}

/* Makes room for one more descriptor, numbered fd.  0 or -ENOMEM. */
static int reserve(struct poll_backend *p, int fd) {
  size_t cap, need = (size_t)fd + 1;
  struct pollfd *pfds;
  struct lspec__event *out;
  size_t *pos;

  if (need > p->pos_cap) {
    cap = p->pos_cap ? p->pos_cap : 64;
    while (cap < need)
      cap *= 2;
    pos = realloc(p->pos, cap * sizeof *pos);
    if (pos == NULL)
      return -ENOMEM;
    memset(pos + p->pos_cap, 0, (cap - p->pos_cap) * sizeof *pos);
    p->pos = pos;
    p->pos_cap = cap;
  }
  if (p->n + 1 > p->cap) {
    cap = p->cap ? p->cap * 2 : 8;
    pfds = realloc(p->pfds, cap * sizeof *pfds);
    if (pfds == NULL)
      return -ENOMEM;
    p->pfds = pfds;
    out = realloc(p->out, cap * sizeof *out);
    if (out == NULL)
      return -ENOMEM;
    p->out = out;
    p->cap = cap;
  }
  return 0;
}

static int pl_add(struct lspec__backend *b, int fd, unsigned events) {
  struct poll_backend *p = (struct poll_backend *)b;

  if (fd < 0 || fcntl(fd, F_GETFD) < 0)
    return -EBADF;
  if (find(p, fd) >= 0)
    return -EEXIST;
  if (reserve(p, fd) != 0)
    return -ENOMEM;
  p->pfds[p->n].fd = fd;
  p->pfds[p->n].events = to_poll(events);
  p->pfds[p->n].revents = 0;
  p->n++;
  p->pos[fd] = p->n;
  return 0;
}

static int pl_modify(struct lspec__backend *b, int fd, unsigned events) {
  struct poll_backend *p = (struct poll_backend *)b;
  long i = find(p, fd);

  if (i < 0)
    return -ENOENT;
  p->pfds[i].events = to_poll(events);
  return 0;
}

static int pl_remove(struct lspec__backend *b, int fd) {
  struct poll_backend *p = (struct poll_backend *)b;
  long i = find(p, fd);

  if (i < 0)
    return -ENOENT;
  p->n--;
  if ((size_t)i != p->n) {
    p->pfds[i] = p->pfds[p->n];
    p->pos[p->pfds[i].fd] = (size_t)i + 1;
  }
  p->pos[fd] = 0;
  return 0;
}

/* poll has no one-shot interest (the loop ignores a spent one): forgetting
 * is removing, which costs no system call here. */
static void pl_forget(struct lspec__backend *b, int fd) {
  (void)pl_remove(b, fd);
}

static int pl_wait(struct lspec__backend *b, int timeout_ms,
                   struct lspec__event **events) {
  struct poll_backend *p = (struct poll_backend *)b;
  size_t i;
  int n, k = 0;
  short r;

  n = poll(p->pfds, (nfds_t)p->n, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  for (i = 0; i < p->n && k < n; i++) {
    r = p->pfds[i].revents;
    if (r == 0)
      continue;
    p->out[k].fd = p->pfds[i].fd;
    /* PollSelector's mapping: anything but POLLOUT (errors, hang-ups,
     * POLLNVAL for a descriptor closed behind our back) counts as
     * readable, anything but POLLIN as writable. */
    p->out[k].events = ((r & ~POLLOUT) ? LSPEC__EV_READ : 0) |
                       ((r & ~POLLIN) ? LSPEC__EV_WRITE : 0);
    k++;
  }
  *events = p->out;
  return k;
}

static void pl_destroy(struct lspec__backend *b) {
  struct poll_backend *p = (struct poll_backend *)b;
  free(p->pfds);
  free(p->pos);
  free(p->out);
  free(p);
}

static const struct lspec__backend_ops poll_ops = {
    .name = "poll",
    .add = pl_add,
    .modify = pl_modify,
    .remove = pl_remove,
    .forget = pl_forget,
    .wait = pl_wait,
    .destroy = pl_destroy,
};

int lspec__backend_poll_new(struct lspec__backend **out) {
  struct poll_backend *p = calloc(1, sizeof *p);

  *out = NULL;
  if (p == NULL)
    return -ENOMEM;
  p->base.ops = &poll_ops;
  *out = &p->base;
  return 0;
}
