/* test_loop_post.c - the loop's internal posts (lspec__loop_post and
 * lspec__loop_post_child, internal.h): they run in the loop's thread in
 * FIFO order with the public callbacks, loop_cancel cannot reach them, a
 * loop closed before running them hands their argument to the dispose
 * function exactly once, and bad calls fail cleanly.
 */
#include "loop_helpers.h"

#include <pthread.h>

#include "internal.h"

/* What the callbacks of a post saw. */
struct pt_probe {
  int runs;              /* the post's callback ran */
  int disposals;         /* its dispose function ran */
  int pid, returncode;   /* post_child's arguments */
  pthread_t thread;      /* where the callback ran */
  struct lt_log *log;    /* optional order log */
  int tag;               /* what to append to it */
};

static void pt_run(void *arg) {
  struct pt_probe *p = arg;
  p->runs++;
  p->thread = pthread_self();
  if (p->log != NULL && p->log->n < 256)
    p->log->tags[p->log->n++] = p->tag;
}

static void pt_dispose(void *arg) { ((struct pt_probe *)arg)->disposals++; }

static void pt_child(int pid, int returncode, void *arg) {
  struct pt_probe *p = arg;
  p->pid = pid;
  p->returncode = returncode;
  pt_run(p);
}

/* A post runs on the next iteration, in order with call_soon. */
LOOP_TEST(loop_post, runs_in_fifo_order) {
  lspec_loop *loop = lt_new_loop(backend);
  struct lt_log log = {{0}, 0};
  struct lt_entry first = {&log, 1}, last = {&log, 3};
  struct pt_probe post = {0};

  post.log = &log;
  post.tag = 2;
  cr_assert(eq(int, I->loop_call_soon(loop, lt_log_cb, &first, NULL),
               LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &post, pt_dispose),
               LSPEC_OK), "post: %s", I->last_error());
  cr_assert(eq(int, I->loop_call_soon(loop, lt_log_cb, &last, NULL),
               LSPEC_OK));
  cr_assert(eq(int, post.runs, 0), "a post never runs inside the call");
  lt_one_iteration(loop);
  cr_assert(eq(int, log.n, 3), "%d callbacks ran", log.n);
  cr_assert(eq(int, log.tags[0], 1));
  cr_assert(eq(int, log.tags[1], 2), "the post keeps its place in the queue");
  cr_assert(eq(int, log.tags[2], 3));
  cr_assert(eq(int, post.runs, 1));
  lt_free_loop(loop);
  cr_assert(eq(int, post.disposals, 0), "a post that ran is not disposed of");
}

/* post_child carries pid and returncode without an allocation of its own. */
LOOP_TEST(loop_post, child_post_carries_pid_and_returncode) {
  lspec_loop *loop = lt_new_loop(backend);
  struct pt_probe p = {0};

  cr_assert(eq(int, lspec__loop_post_child(loop, pt_child, &p, 4242, -9),
               LSPEC_OK), "post_child: %s", I->last_error());
  lt_one_iteration(loop);
  cr_assert(eq(int, p.runs, 1));
  cr_assert(eq(int, p.pid, 4242));
  cr_assert(eq(int, p.returncode, -9));
  lt_free_loop(loop);
}

/* Closing a loop with posts still queued disposes of each one exactly once
 * and never runs them; a post_child (no dispose) is dropped. */
LOOP_TEST(loop_post, close_disposes_of_unrun_posts) {
  lspec_loop *loop = lt_new_loop(backend);
  struct pt_probe a = {0}, b = {0}, none = {0}, child = {0};

  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &a, pt_dispose), LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &b, pt_dispose), LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &none, NULL), LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post_child(loop, pt_child, &child, 1, 2),
               LSPEC_OK));
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "close: %s",
            I->last_error());
  cr_assert(eq(int, a.disposals, 1));
  cr_assert(eq(int, b.disposals, 1));
  cr_assert(eq(int, a.runs + b.runs + none.runs + child.runs, 0),
            "nothing queued runs after close");
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK), "second close");
  cr_assert(eq(int, a.disposals, 1), "the second close disposes of nothing");
  I->loop_release(loop);
  cr_assert(eq(int, a.disposals + b.disposals, 2));
}

/* A post disposed of from another thread's close: the dispose function
 * runs in the closing thread. */
struct pt_closer {
  lspec_loop *loop;
  int rc;
  pthread_t thread;
};

static void *pt_close_thread(void *arg) {
  struct pt_closer *c = arg;
  c->thread = pthread_self();
  c->rc = I->loop_close(c->loop);
  return NULL;
}

static pthread_t pt_dispose_thread;
static void pt_dispose_where(void *arg) {
  pt_dispose(arg);
  pt_dispose_thread = pthread_self();
}

ONE_TEST(loop_post, dispose_runs_in_the_closing_thread) {
  lspec_loop *loop = lt_new_loop(backend);
  struct pt_probe p = {0};
  struct pt_closer c = {loop, -100, 0};
  pthread_t t;

  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &p, pt_dispose_where),
               LSPEC_OK));
  cr_assert(eq(int, pthread_create(&t, NULL, pt_close_thread, &c), 0));
  cr_assert(eq(int, pthread_join(t, NULL), 0));
  cr_assert(eq(int, c.rc, LSPEC_OK), "close from another thread");
  cr_assert(eq(int, p.disposals, 1));
  cr_assert(pthread_equal(pt_dispose_thread, c.thread),
            "dispose ran in the thread that closed the loop");
  I->loop_release(loop);
}

/* Posts have no id: cancelling every id the loop could have handed out
 * leaves them alone, and ids of public callbacks are unaffected. */
LOOP_TEST(loop_post, cancel_cannot_reach_a_post) {
  lspec_loop *loop = lt_new_loop(backend);
  struct pt_probe p = {0};
  lspec_handle_id before = 0, after = 0;
  int n = 0;

  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &n, &before),
               LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &p, pt_dispose), LSPEC_OK));
  cr_assert(eq(int, I->loop_call_soon(loop, lt_count_cb, &n, &after),
               LSPEC_OK));
  cr_assert(eq(u64, (uint64_t)after, (uint64_t)before + 1),
            "a post takes no id from the public sequence");
  for (lspec_handle_id id = 1; id < after + 16; id++)
    if (id != before && id != after)
      cr_assert(eq(int, I->loop_cancel(loop, id), LSPEC_OK));
  lt_one_iteration(loop);
  cr_assert(eq(int, p.runs, 1), "the post still ran");
  cr_assert(eq(int, n, 2), "the named callbacks ran");
  lt_free_loop(loop);
}

/* A post made from another thread wakes a loop that sleeps in its backend,
 * and runs in the loop's thread. */
struct pt_poster {
  lspec_loop *loop;
  struct pt_probe *probe;
  int rc;
};

static void *pt_post_thread(void *arg) {
  struct pt_poster *p = arg;
  lt_nap(20); /* let the loop go to sleep first */
  p->rc = lspec__loop_post(p->loop, pt_run, p->probe, pt_dispose);
  return NULL;
}

static int pt_ran(void *arg) { return ((struct pt_probe *)arg)->runs > 0; }

LOOP_TEST(loop_post, post_from_another_thread_wakes_the_loop) {
  lspec_loop *loop = lt_new_loop(backend);
  struct pt_probe p = {0};
  struct pt_poster poster = {loop, &p, -100};
  pthread_t t;

  cr_assert(eq(int, pthread_create(&t, NULL, pt_post_thread, &poster), 0));
  cr_assert(eq(int, I->loop_run_until(loop, pt_ran, &p, 10.0), LSPEC_OK),
            "the post did not wake the loop: %s", I->last_error());
  cr_assert(eq(int, pthread_join(t, NULL), 0));
  cr_assert(eq(int, poster.rc, LSPEC_OK));
  cr_assert(pthread_equal(p.thread, pthread_self()),
            "the post ran in the loop's thread");
  lt_free_loop(loop);
}

/* Bad calls: a closed loop, a NULL callback, a handle of another kind. */
ONE_TEST(loop_post, bad_calls_fail_cleanly) {
  lspec_loop *loop = lt_new_loop(backend);
  lspec_watcher *w = NULL;
  struct pt_probe p = {0};

  cr_assert(eq(int, lspec__loop_post(loop, NULL, &p, pt_dispose),
               LSPEC_E_TYPE));
  cr_assert(eq(int, lspec__loop_post_child(loop, NULL, &p, 1, 0),
               LSPEC_E_TYPE));
  cr_assert(eq(int, lspec__loop_post(NULL, pt_run, &p, pt_dispose),
               LSPEC_E_TYPE));
  cr_assert(eq(int, I->watcher_new(LSPEC_WATCHER_THREADED, &w), LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post((lspec_loop *)w, pt_run, &p, pt_dispose),
               LSPEC_E_TYPE), "a watcher is not a loop");
  I->watcher_release(w);
  cr_assert(eq(int, I->loop_close(loop), LSPEC_OK));
  cr_assert(eq(int, lspec__loop_post(loop, pt_run, &p, pt_dispose),
               LSPEC_E_RUNTIME));
  LT_ASSERT_MSG("Event loop is closed");
  cr_assert(eq(int, lspec__loop_post_child(loop, pt_child, &p, 1, 0),
               LSPEC_E_RUNTIME));
  cr_assert(eq(int, p.runs + p.disposals, 0),
            "a refused post neither runs nor is disposed of");
  I->loop_release(loop);
}
