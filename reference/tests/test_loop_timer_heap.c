/* test_loop_timer_heap.c - white-box tests of timer_heap.c: order by
 * (when, seq), ties, removal from the middle, +inf, and a randomised
 * comparison with a sorted model.
 */
#include "loop_helpers.h"

#include "timer_heap.h"

#include <math.h>
#include <stdlib.h>

TestSuite(loop_heap, .timeout = 30);

/* Checks the heap property and every node's recorded index. */
static void check_heap(const struct lspec__timer_heap *h) {
  size_t i;
  for (i = 0; i < h->len; i++) {
    const struct lspec__timer *t = h->v[i], *parent;
    cr_assert(eq(sz, t->index, i), "node at %zu knows its slot", i);
    if (i == 0)
      continue;
    parent = h->v[(i - 1) / 2];
    cr_assert(eq(int, parent->when < t->when ||
                          (parent->when == t->when && parent->seq < t->seq),
                 1),
              "heap order broken at %zu", i);
  }
}

ONE_TEST(loop_heap, ties_come_out_in_sequence_order) {
  struct lspec__timer_heap h;
  struct lspec__timer t[32];
  size_t i;
  (void)backend;

  lspec__heap_init(&h);
  cr_assert(eq(int, lspec__heap_reserve(&h, 32), 0), "reserve");
  /* Pushed in a scrambled order, all with the same deadline. */
  for (i = 0; i < 32; i++) {
    size_t k = (i * 7) % 32;
    t[k].when = 1.0;
    t[k].seq = k;
    t[k].index = LSPEC__TIMER_DETACHED;
    lspec__heap_push(&h, &t[k]);
    check_heap(&h);
  }
  for (i = 0; i < 32; i++) {
    struct lspec__timer *top = lspec__heap_pop(&h);
    cr_assert(eq(ptr, top, &t[i]), "tie %zu in sequence order", i);
    cr_assert(eq(sz, top->index, LSPEC__TIMER_DETACHED), "detached");
    check_heap(&h);
  }
  cr_assert(eq(ptr, lspec__heap_pop(&h), NULL), "empty");
  cr_assert(eq(ptr, lspec__heap_top(&h), NULL), "empty top");
  lspec__heap_free(&h);
}

ONE_TEST(loop_heap, infinite_deadlines_sort_last_and_negative_first) {
  struct lspec__timer_heap h;
  struct lspec__timer a = {INFINITY, 1, LSPEC__TIMER_DETACHED},
                      b = {5.0, 2, LSPEC__TIMER_DETACHED},
                      c = {-INFINITY, 3, LSPEC__TIMER_DETACHED};
  (void)backend;
  lspec__heap_init(&h);
  cr_assert(eq(int, lspec__heap_reserve(&h, 3), 0), "reserve");
  lspec__heap_push(&h, &a);
  lspec__heap_push(&h, &b);
  lspec__heap_push(&h, &c);
  cr_assert(eq(ptr, lspec__heap_pop(&h), &c), "-inf first");
  cr_assert(eq(ptr, lspec__heap_pop(&h), &b), "finite next");
  cr_assert(eq(ptr, lspec__heap_pop(&h), &a), "+inf last");
  lspec__heap_free(&h);
}

/* A model: sort by (when, seq). */
static int by_when_seq(const void *x, const void *y) {
  const struct lspec__timer *a = *(struct lspec__timer *const *)x;
  const struct lspec__timer *b = *(struct lspec__timer *const *)y;
  if (a->when != b->when)
    return a->when < b->when ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

ONE_TEST(loop_heap, random_pushes_and_removals_match_a_sorted_model) {
  enum { N = 2000 };
  static struct lspec__timer nodes[N];
  static struct lspec__timer *model[N];
  struct lspec__timer_heap h;
  size_t i, n = 0, live = 0;
  unsigned seed = 12345;
  (void)backend;

  lspec__heap_init(&h);
  for (i = 0; i < N; i++) {
    nodes[i].when = (double)(rand_r(&seed) % 50); /* many ties */
    nodes[i].seq = i;
    nodes[i].index = LSPEC__TIMER_DETACHED;
    cr_assert(eq(int, lspec__heap_reserve(&h, 1), 0), "reserve");
    lspec__heap_push(&h, &nodes[i]);
  }
  check_heap(&h);
  /* Remove every third node from wherever it sits. */
  for (i = 0; i < N; i += 3) {
    lspec__heap_remove(&h, &nodes[i]);
    cr_assert(eq(sz, nodes[i].index, LSPEC__TIMER_DETACHED), "detached");
  }
  check_heap(&h);
  for (i = 0; i < N; i++)
    if (i % 3 != 0)
      model[live++] = &nodes[i];
  qsort(model, live, sizeof model[0], by_when_seq);
  cr_assert(eq(sz, h.len, live), "size after removals");
  while (n < live && model[n] == lspec__heap_top(&h)) {
    cr_assert(eq(ptr, lspec__heap_pop(&h), model[n]), "pop %zu", n);
    n++;
  }
  cr_assert(eq(sz, n, live), "every node came out in model order");
  lspec__heap_free(&h);
}
