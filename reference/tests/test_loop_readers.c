/* test_loop_readers.c - add_reader / remove_reader on both backends:
 * level-triggered delivery, removal and replacement from inside callbacks
 * (the re-entrancy rule of run_once), bad descriptors, what close does
 * to readers, and the internal one-shot readers.
 */
#include "loop_helpers.h"

#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(loop_readers, .timeout = 60);

/* A pipe with one byte in it: its read end stays readable. */
static void readable_pipe(int p[2]) {
  cr_assert(eq(int, pipe2(p, O_CLOEXEC | O_NONBLOCK), 0), "pipe2");
  cr_assert(eq(int, (int)write(p[1], "x", 1), 1), "write");
}

static void close_pipe(int p[2]) {
  close(p[0]);
  close(p[1]);
}

LOOP_TEST(loop_readers, level_triggered_while_readable) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;
  struct lt_goal goal = {&calls, 3};

  readable_pipe(p);
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_OK), "add_reader: %s", I->last_error());
  cr_assert(eq(int, calls, 0), "not called inside add_reader");
  /* The callback never reads, so the byte stays and it fires again. */
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "three iterations, three calls");
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 1), "remove");
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 0), "remove again");
  calls = 0;
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 0), "removed: not called");
  close_pipe(p);
  lt_free_loop(loop);
}

LOOP_TEST(loop_readers, silent_while_not_readable) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;
  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe2");
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_OK), "add_reader");
  lt_run_for(loop, 0.03);
  cr_assert(eq(int, calls, 0), "an empty pipe is not readable");
  close_pipe(p);
  lt_free_loop(loop);
}

/* A reader whose callback reads one byte, so a write wakes the loop. */
struct drain {
  int fd;    /* what to read */
  int calls; /* how often */
};
static void drain_cb(void *arg) {
  struct drain *d = arg;
  char c;
  if (read(d->fd, &c, 1) == 1)
    d->calls++;
}

struct writer {
  int fd;             /* pipe's write end */
  atomic_int started; /* the loop runs */
};
static void writer_started(void *arg) {
  atomic_store(&((struct writer *)arg)->started, 1);
}
static void *write_later(void *arg) {
  struct writer *w = arg;
  while (!atomic_load(&w->started))
    sched_yield();
  lt_nap(20); /* let the loop go to sleep: see lt_nap */
  if (write(w->fd, "y", 1) != 1)
    abort();
  return NULL;
}

LOOP_TEST(loop_readers, data_written_by_another_thread_wakes_the_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2];
  struct drain d;
  struct writer w;
  struct lt_goal goal = {&d.calls, 1};
  pthread_t t;

  cr_assert(eq(int, pipe2(p, O_CLOEXEC | O_NONBLOCK), 0), "pipe2");
  d = (struct drain){p[0], 0};
  w.fd = p[1];
  atomic_init(&w.started, 0);
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], drain_cb, &d), LSPEC_OK),
            "add_reader");
  cr_assert(eq(int, I->loop_call_soon(loop, writer_started, &w, NULL),
               LSPEC_OK), "call_soon");
  cr_assert(eq(int, pthread_create(&t, NULL, write_later, &w), 0), "thread");
  cr_assert(eq(int, I->loop_run_until(loop, lt_goal_reached, &goal, 3600),
               LSPEC_OK), "run_until");
  pthread_join(t, NULL);
  close_pipe(p);
  lt_free_loop(loop);
}

struct self_remover {
  lspec_loop *loop; /* the loop */
  int fd;           /* its own fd */
  int calls;        /* how often it ran */
  int removed;      /* what remove_reader answered */
};
static void remove_self(void *arg) {
  struct self_remover *s = arg;
  s->calls++;
  s->removed = I->loop_remove_reader(s->loop, s->fd);
}

LOOP_TEST(loop_readers, a_callback_may_remove_its_own_reader) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2];
  struct self_remover s;

  readable_pipe(p);
  s = (struct self_remover){loop, p[0], 0, -99};
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], remove_self, &s),
               LSPEC_OK), "add_reader");
  lt_run_for(loop, 0.03);
  cr_assert(eq(int, s.calls, 1), "called once, then removed");
  cr_assert(eq(int, s.removed, 1), "remove_reader inside answered 1");
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 0), "gone");
  close_pipe(p);
  lt_free_loop(loop);
}

LOOP_TEST(loop_readers, a_second_add_replaces_the_callback) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], first = 0, second = 0;

  readable_pipe(p);
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &first),
               LSPEC_OK), "first add");
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &second),
               LSPEC_OK), "second add");
  lt_one_iteration(loop);
  cr_assert(eq(int, first, 0), "the replaced callback is not called");
  cr_assert(eq(int, second, 1), "the new one is");
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 1), "one reader");
  close_pipe(p);
  lt_free_loop(loop);
}

struct pair {
  lspec_loop *loop; /* the loop */
  int fds[2];       /* two readable read ends */
  int calls;        /* callbacks run */
};
static void remove_other(void *arg) {
  struct pair *p = arg;
  p->calls++;
  /* Remove both: whichever ran first removes the other, whose event is
   * already in this iteration's snapshot. */
  I->loop_remove_reader(p->loop, p->fds[0]);
  I->loop_remove_reader(p->loop, p->fds[1]);
}

LOOP_TEST(loop_readers, a_reader_removed_earlier_in_the_iteration_is_skipped) {
  lspec_loop *loop = lt_new_loop(backend);
  int a[2], b[2];
  struct pair p;

  readable_pipe(a);
  readable_pipe(b);
  p = (struct pair){loop, {a[0], b[0]}, 0};
  cr_assert(eq(int, I->loop_add_reader(loop, a[0], remove_other, &p),
               LSPEC_OK), "add a");
  cr_assert(eq(int, I->loop_add_reader(loop, b[0], remove_other, &p),
               LSPEC_OK), "add b");
  lt_one_iteration(loop);
  cr_assert(eq(int, p.calls, 1), "both were ready; only the first ran");
  close_pipe(a);
  close_pipe(b);
  lt_free_loop(loop);
}

struct swapper {
  lspec_loop *loop; /* the loop */
  int fd;           /* the reader to swap */
  int *new_calls;   /* the replacement's counter */
};
static void swap_reader(void *arg) {
  struct swapper *s = arg;
  cr_assert(eq(int, I->loop_remove_reader(s->loop, s->fd), 1), "remove");
  cr_assert(eq(int, I->loop_add_reader(s->loop, s->fd, lt_count_cb,
                                       s->new_calls), LSPEC_OK), "re-add");
}

LOOP_TEST(loop_readers, a_reader_replaced_before_its_turn_waits_an_iteration) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], old_calls = 0, new_calls = 0;
  struct swapper s;

  readable_pipe(p);
  s = (struct swapper){loop, p[0], &new_calls};
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &old_calls),
               LSPEC_OK), "add");
  /* The ready callback runs before the iteration's readers: it replaces the
   * reader whose event is already in this iteration. */
  cr_assert(eq(int, I->loop_call_soon(loop, swap_reader, &s, NULL),
               LSPEC_OK), "call_soon");
  lt_one_iteration(loop);
  cr_assert(eq(int, old_calls, 0), "the removed reader was skipped");
  cr_assert(eq(int, new_calls, 0), "the new one was not in this iteration");
  lt_one_iteration(loop);
  cr_assert(eq(int, new_calls, 1), "the new one runs in the next");
  close_pipe(p);
  lt_free_loop(loop);
}

struct adder {
  lspec_loop *loop; /* the loop */
  int fd;           /* what to watch */
  int *calls;       /* the reader's counter */
};
static void add_from_callback(void *arg) {
  struct adder *a = arg;
  cr_assert(eq(int, I->loop_add_reader(a->loop, a->fd, lt_count_cb, a->calls),
               LSPEC_OK), "add_reader from a callback");
}

LOOP_TEST(loop_readers, readers_added_from_callbacks_and_many_at_once) {
  lspec_loop *loop = lt_new_loop(backend);
  enum { N = 150 }; /* enough to grow every array a few times */
  int (*pipes)[2] = calloc(N, sizeof *pipes);
  int *calls = calloc(N, sizeof *calls);
  struct adder *adders = calloc(N, sizeof *adders);
  int i;

  cr_assert(ne(ptr, pipes, NULL), "calloc");
  for (i = 0; i < N; i++) {
    readable_pipe(pipes[i]);
    adders[i] = (struct adder){loop, pipes[i][0], &calls[i]};
    cr_assert(eq(int, I->loop_call_soon(loop, add_from_callback, &adders[i],
                                        NULL), LSPEC_OK), "call_soon %d", i);
  }
  lt_one_iteration(loop); /* adds them all */
  for (i = 0; i < N; i++)
    cr_assert(eq(int, calls[i], 0), "added this iteration: not run yet");
  lt_one_iteration(loop);
  for (i = 0; i < N; i++)
    cr_assert(eq(int, calls[i], 1), "reader %d ran once", i);
  for (i = 0; i < N; i += 2)
    cr_assert(eq(int, I->loop_remove_reader(loop, pipes[i][0]), 1), "rm %d",
              i);
  lt_one_iteration(loop);
  for (i = 0; i < N; i++)
    cr_assert(eq(int, calls[i], 1 + i % 2), "reader %d after removals", i);
  for (i = 0; i < N; i++)
    close_pipe(pipes[i]);
  free(pipes);
  free(calls);
  free(adders);
  lt_free_loop(loop);
}

LOOP_TEST(loop_readers, hang_up_counts_as_readable) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;
  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe2");
  close(p[1]); /* EOF: a read would return 0 at once */
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_OK), "add_reader");
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 1), "EOF wakes the reader");
  close(p[0]);
  lt_free_loop(loop);
}

/* --- bad arguments ---------------------------------------------------------- */

LOOP_TEST(loop_readers, bad_descriptors_and_callbacks_are_refused) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0, gone;

  cr_assert(eq(int, I->loop_add_reader(loop, -1, lt_count_cb, &calls),
               LSPEC_E_VALUE), "fd -1");
  LT_ASSERT_MSG("Invalid file descriptor: -1");
  cr_assert(eq(int, I->loop_remove_reader(loop, -1), LSPEC_E_VALUE),
            "remove fd -1");
  LT_ASSERT_MSG("Invalid file descriptor: -1");

  /* A descriptor number that is not open. */
  cr_assert(eq(int, pipe2(p, O_CLOEXEC), 0), "pipe2");
  gone = p[1];
  close(gone);
  cr_assert(eq(int, I->loop_add_reader(loop, gone, lt_count_cb, &calls),
               LSPEC_E_OS), "closed fd");
  cr_assert(eq(int, I->last_errno(), EBADF), "EBADF");
  cr_assert(not(eq(ptr, strstr(I->last_error(), "[Errno 9]"), NULL)),
            "OSError's text: %s", I->last_error());
  cr_assert(eq(int, I->loop_remove_reader(loop, gone), 0), "never added");

  cr_assert(eq(int, I->loop_add_reader(loop, p[0], NULL, NULL), LSPEC_E_TYPE),
            "NULL callback");
  LT_ASSERT_MSG("a callable object was expected by add_reader()");
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 0), "nothing added");
  lt_run_for(loop, 0.02);
  cr_assert(eq(int, calls, 0), "no refused callback ran");
  close(p[0]);
  lt_free_loop(loop);
}

/* An open regular file: epoll refuses it with EPERM, poll reports it
 * readable (selectors.EpollSelector raises PermissionError;
 * PollSelector accepts it). */
static int open_regular_file(void) {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  cr_assert(le(int, 0, fd), "open a regular file");
  return fd;
}

ONE_TEST(loop_readers, regular_file_is_refused_by_epoll) {
  lspec_loop *loop = lt_new_loop(LSPEC_BACKEND_EPOLL);
  int fd = open_regular_file(), calls = 0;
  (void)backend;
  cr_assert(eq(int, I->loop_add_reader(loop, fd, lt_count_cb, &calls),
               LSPEC_E_OS), "regular file under epoll");
  cr_assert(eq(int, I->last_errno(), EPERM), "EPERM");
  cr_assert(eq(int, I->loop_remove_reader(loop, fd), 0), "not added");
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 0), "never called");
  close(fd);
  lt_free_loop(loop);
}

ONE_TEST(loop_readers, regular_file_is_always_readable_under_poll) {
  lspec_loop *loop = lt_new_loop(LSPEC_BACKEND_POLL);
  int fd = open_regular_file(), calls = 0;
  (void)backend;
  cr_assert(eq(int, I->loop_add_reader(loop, fd, lt_count_cb, &calls),
               LSPEC_OK), "regular file under poll: %s", I->last_error());
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 1), "readable");
  cr_assert(eq(int, I->loop_remove_reader(loop, fd), 1), "remove");
  close(fd);
  lt_free_loop(loop);
}

LOOP_TEST(loop_readers, close_forgets_readers_but_not_the_descriptors) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;

  readable_pipe(p);
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_OK), "add_reader");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close");
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 0), "gone after "
                                                           "close");
  cr_assert(le(int, 0, fcntl(p[0], F_GETFD)), "the caller's fd is open");
  cr_assert(eq(int, calls, 0), "never called");
  close_pipe(p);
  I->loop_release(loop);
}

/* --- one-shot readers (internal: the Pidfd watcher's pidfds) -------------- */

/* A one-shot reader runs once, though its descriptor stays readable. */
LOOP_TEST(loop_readers, oneshot_runs_once) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;

  readable_pipe(p);
  cr_assert(eq(int, lspec__loop_add_reader_once(loop, p[0], lt_count_cb,
                                                &calls), LSPEC_OK),
            "add_reader_once: %s", I->last_error());
  lt_run_for(loop, 0.03);
  cr_assert(eq(int, calls, 1), "ran %d times", calls);
  /* Spent, but still registered until removed. */
  cr_assert(eq(int, lspec__loop_remove_reader_closing(loop, p[0]), 1));
  cr_assert(eq(int, lspec__loop_remove_reader_closing(loop, p[0]), 0));
  close_pipe(p);
  /* The same number, a new file: a new one-shot that fires again (under
   * epoll a stale interest would make the add fail or stay silent). */
  readable_pipe(p);
  calls = 0;
  cr_assert(eq(int, lspec__loop_add_reader_once(loop, p[0], lt_count_cb,
                                                &calls), LSPEC_OK),
            "add_reader_once again: %s", I->last_error());
  lt_run_for(loop, 0.03);
  cr_assert(eq(int, calls, 1), "ran %d times", calls);
  cr_assert(eq(int, lspec__loop_remove_reader_closing(loop, p[0]), 1));
  close_pipe(p);
  lt_free_loop(loop);
}

/* Removing a one-shot that has not fired, or removing one without closing
 * its descriptor, really stops the backend watching it: the same
 * descriptor can be added again and fires. */
LOOP_TEST(loop_readers, oneshot_removed_before_firing_or_kept_open) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;

  cr_assert(eq(int, pipe2(p, O_CLOEXEC | O_NONBLOCK), 0), "pipe2");
  cr_assert(eq(int, lspec__loop_add_reader_once(loop, p[0], lt_count_cb,
                                                &calls), LSPEC_OK));
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 0), "not readable yet");
  /* Armed: the closing variant must still remove the interest. */
  cr_assert(eq(int, lspec__loop_remove_reader_closing(loop, p[0]), 1));
  cr_assert(eq(int, lspec__loop_add_reader_once(loop, p[0], lt_count_cb,
                                                &calls), LSPEC_OK),
            "re-add after removing an armed one-shot: %s", I->last_error());
  cr_assert(eq(int, (int)write(p[1], "x", 1), 1));
  lt_run_for(loop, 0.03);
  cr_assert(eq(int, calls, 1), "ran %d times", calls);
  /* Fired, removed the ordinary way, descriptor kept: re-adding works. */
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 1));
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_OK), "plain re-add: %s", I->last_error());
  lt_one_iteration(loop);
  cr_assert(eq(int, calls, 2), "the plain reader ran (%d)", calls);
  cr_assert(eq(int, I->loop_remove_reader(loop, p[0]), 1));
  close_pipe(p);
  lt_free_loop(loop);
}

/* A one-shot cannot share a descriptor with another reader. */
LOOP_TEST(loop_readers, oneshot_refuses_a_second_reader) {
  lspec_loop *loop = lt_new_loop(backend);
  int p[2], calls = 0;

  cr_assert(eq(int, pipe2(p, O_CLOEXEC | O_NONBLOCK), 0), "pipe2");
  cr_assert(eq(int, lspec__loop_add_reader_once(loop, p[0], lt_count_cb,
                                                &calls), LSPEC_OK));
  cr_assert(eq(int, lspec__loop_add_reader_once(loop, p[0], lt_count_cb,
                                                &calls), LSPEC_E_OS));
  cr_assert(eq(int, I->last_errno(), EEXIST));
  cr_assert(eq(int, I->loop_add_reader(loop, p[0], lt_count_cb, &calls),
               LSPEC_E_OS));
  cr_assert(eq(int, I->last_errno(), EEXIST));
  cr_assert(eq(int, I->loop_remove_reader(loop, p[1]), 0));
  cr_assert(eq(int, lspec__loop_remove_reader_closing(loop, p[0]), 1));
  close_pipe(p);
  lt_free_loop(loop);
}
