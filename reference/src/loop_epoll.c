/* loop_epoll.c - the epoll backend of the loop (selectors.EpollSelector).
 *
 * Level-triggered epoll, one registration per descriptor, the descriptor
 * itself as the event's data.  The event array grows with the number of
 * registered descriptors (CPython passes max(len(fds), 1) as maxevents), in
 * add only, so wait never allocates.
 */
#define _GNU_SOURCE 1
#include "loop.h"
#include "syscalls.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct epoll_backend {
  struct lspec__backend base; /* ops; must be first */
  int epfd;                   /* the epoll instance */
  int nfds;                   /* descriptors registered */
  int cap;                    /* entries in evs and out */
  struct epoll_event *evs;    /* what epoll_wait fills */
  struct lspec__event *out;   /* what wait hands to the loop */
};

static uint32_t to_epoll(unsigned events) {
  return ((events & LSPEC__EV_READ) ? EPOLLIN : 0) |
         ((events & LSPEC__EV_WRITE) ? EPOLLOUT : 0) |
         ((events & LSPEC__EV_ONESHOT) ? (uint32_t)EPOLLONESHOT : 0);
}

/* Makes room for `need` events.  0 or -ENOMEM; a half-done growth is
 * harmless because cap only changes once both arrays have grown. */
static int reserve(struct epoll_backend *e, int need) {
  struct epoll_event *evs;
  struct lspec__event *out;
  int cap;

  if (need <= e->cap)
    return 0;
  cap = e->cap ? e->cap : 8;
  while (cap < need) {
    if (cap > (1 << 28))
      return -ENOMEM;
    cap *= 2;
  }
  evs = realloc(e->evs, (size_t)cap * sizeof *evs);
  if (evs == NULL)
    return -ENOMEM;
  e->evs = evs;
  out = realloc(e->out, (size_t)cap * sizeof *out);
  if (out == NULL)
    return -ENOMEM;
  e->out = out;
  e->cap = cap;
  return 0;
}

static int ep_add(struct lspec__backend *b, int fd, unsigned events) {
  struct epoll_backend *e = (struct epoll_backend *)b;
  struct epoll_event ev = {0};
  int r;

  if (reserve(e, e->nfds + 1) != 0)
    return -ENOMEM;
  ev.events = to_epoll(events);
  ev.data.fd = fd;
  /* EPERM for a regular file or a directory, EBADF for a closed fd. */
  if ((r = lspec__sys.epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) < 0)
    return r;
  e->nfds++;
  return 0;
}

static int ep_modify(struct lspec__backend *b, int fd, unsigned events) {
  struct epoll_backend *e = (struct epoll_backend *)b;
  struct epoll_event ev = {0};

  ev.events = to_epoll(events);
  ev.data.fd = fd;
  return lspec__sys.epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev);
}

/* Forgets fd in every case: if the caller closed it already, the kernel
 * dropped the registration itself and EPOLL_CTL_DEL reports EBADF or
 * ENOENT, which is returned for information only. */
static int ep_remove(struct lspec__backend *b, int fd) {
  struct epoll_backend *e = (struct epoll_backend *)b;
  struct epoll_event ev = {0}; /* kernels before 2.6.9 wanted non-NULL */

  e->nfds--;
  return lspec__sys.epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, &ev);
}

/* A one-shot interest that fired is disarmed; closing the descriptor drops
 * it.  (If a forked child still holds the file, the disarmed interest
 * lingers in this epoll set until that child closes it, silent: it never
 * reports again, and a new file under the same number is a different
 * interest.) */
static void ep_forget(struct lspec__backend *b, int fd) {
  struct epoll_backend *e = (struct epoll_backend *)b;
  (void)fd;
  e->nfds--;
}

static int ep_wait(struct lspec__backend *b, int timeout_ms,
                   struct lspec__event **events) {
  struct epoll_backend *e = (struct epoll_backend *)b;
  uint32_t r;
  int n, i;

  n = epoll_wait(e->epfd, e->evs, e->cap, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  for (i = 0; i < n; i++) {
    r = e->evs[i].events;
    e->out[i].fd = e->evs[i].data.fd;
    /* EpollSelector's mapping: anything but EPOLLOUT (errors, hang-ups)
     * counts as readable, anything but EPOLLIN as writable. */
    e->out[i].events = ((r & ~(uint32_t)EPOLLOUT) ? LSPEC__EV_READ : 0) |
                       ((r & ~(uint32_t)EPOLLIN) ? LSPEC__EV_WRITE : 0);
  }
  *events = e->out;
  return n;
}

static void ep_destroy(struct lspec__backend *b) {
  struct epoll_backend *e = (struct epoll_backend *)b;
  close(e->epfd);
  free(e->evs);
  free(e->out);
  free(e);
}

static const struct lspec__backend_ops epoll_ops = {
    .name = "epoll",
    .add = ep_add,
    .modify = ep_modify,
    .remove = ep_remove,
    .forget = ep_forget,
    .wait = ep_wait,
    .destroy = ep_destroy,
};

int lspec__backend_epoll_new(struct lspec__backend **out) {
  struct epoll_backend *e;
  int err;

  *out = NULL;
  e = calloc(1, sizeof *e);
  if (e == NULL)
    return -ENOMEM;
  e->base.ops = &epoll_ops;
  if (reserve(e, 8) != 0) {
    free(e->evs);
    free(e);
    return -ENOMEM;
  }
  e->epfd = lspec__sys.epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) {
    err = -e->epfd;
    free(e->evs);
    free(e->out);
    free(e);
    return -err;
  }
  *out = &e->base;
  return 0;
}
