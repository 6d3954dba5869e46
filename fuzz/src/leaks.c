/* leaks.c - the end-of-program checks: no child process (zombie or
 * running), no descriptor and no thread beyond those present before the
 * program, and SIGCHLD back at its default disposition.
 */
#define _GNU_SOURCE 1
#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - (path[11] == 'f' ? 1 : 0); /* /proc/self/fd: opendir's own */
}


static void nap_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* Calls fn for each child of ours in the process table. */
static void each_child(void (*fn)(void *, int, const char *, char), void *arg) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char path[300], comm[64];
    int pid, ppid;
    char state;
    FILE *f;
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fscanf(f, "%d (%63[^)]) %c %d", &pid, comm, &state, &ppid) == 4 &&
        ppid == getpid())
      fn(arg, pid, comm, state);
    fclose(f);
  }
  closedir(d);
}

static void note_child(void *arg, int pid, const char *comm, char state) {
  struct lspec_fuzz_baseline *b = arg;
  (void)comm;
  (void)state;
  if (b->nchildren < 8)
    b->children[b->nchildren++] = pid;
}

struct stray {
  const struct lspec_fuzz_baseline *b;
  char *buf;
  size_t n, len;
  int count;
};

static void note_stray(void *arg, int pid, const char *comm, char state) {
  struct stray *s = arg;
  for (int i = 0; i < s->b->nchildren; i++)
    if (s->b->children[i] == pid)
      return;
  s->count++;
  if (s->len + 64 < s->n)
    s->len += (size_t)snprintf(s->buf + s->len, s->n - s->len, " %d (%s) %c",
                               pid, comm, state);
}

static void *no_op_thread(void *arg) { return arg; }

void lspec_fuzz_baseline_take(struct lspec_fuzz_baseline *b) {
  static int warm;
  pthread_t t;

  /* ThreadSanitizer starts a thread of its own at a process's first
   * pthread_create: have it started before the first baseline, so that it
   * is not taken for a thread the program left running. */
  if (!warm && pthread_create(&t, NULL, no_op_thread, NULL) == 0) {
    pthread_join(t, NULL);
    warm = 1;
    nap_ms(5); /* the joined thread leaves /proc/self/task */
  }
  b->fds = count_dir("/proc/self/fd");
  b->threads = count_dir("/proc/self/task");
  b->nchildren = 0;
  each_child(note_child, b);
}

/* " fd->target" for every descriptor numbered at or above `from`. */
static void describe_fds(int from, char *buf, size_t n) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  size_t len = 0;
  if (d == NULL || n == 0)
    return;
  buf[0] = 0;
  while ((e = readdir(d)) != NULL && len + 80 < n) {
    char path[300], target[64];
    ssize_t r;
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd < from || fd == dirfd(d))
      continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    r = readlink(path, target, sizeof target - 1);
    target[r > 0 ? r : 0] = 0;
    len += (size_t)snprintf(buf + len, n - len, " %d->%s", fd, target);
  }
  closedir(d);
}

const char *lspec_fuzz_leak_check(const struct lspec_fuzz_baseline *b,
                                  char *why, size_t n) {
  struct sigaction sa;
  int fds = 0, threads = 0, i;

  /* Threads, descriptors and children may take a moment to go (a thread
   * that has delivered its last callback is still returning). */
  char strays[200];
  struct stray st = {b, strays, sizeof strays, 0, 0};
  for (i = 0; i < 200; i++) {
    fds = count_dir("/proc/self/fd");
    threads = count_dir("/proc/self/task");
    st.count = 0;
    st.len = 0;
    strays[0] = 0;
    each_child(note_stray, &st);
    if (fds <= b->fds && threads <= b->threads && st.count == 0)
      break;
    nap_ms(5);
  }
  if (st.count > 0) {
    snprintf(why, n, "a child process is left at the end:%s", strays);
    return "CW-REAP-001";
  }
  if (fds > b->fds) {
    char list[200];
    describe_fds(3, list, sizeof list);
    snprintf(why, n, "%d descriptor(s) left open (%d before, %d after):%s",
             fds - b->fds, b->fds, fds, list);
    return "CW-CLOSE-001";
  }
  if (threads > b->threads) {
    snprintf(why, n, "%d thread(s) left running (%d before, %d after)",
             threads - b->threads, b->threads, threads);
    return "CW-CLOSE-001";
  }
  if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
      !(sa.sa_flags & SA_SIGINFO)) {
    snprintf(why, n, "SIGCHLD is not back at its default disposition");
    return "CW-ML-004";
  }
  if (sigaction(SIGCHLD, NULL, &sa) == 0 && (sa.sa_flags & SA_SIGINFO)) {
    snprintf(why, n, "SIGCHLD still has a handler installed");
    return "CW-ML-004";
  }
  return NULL;
}
