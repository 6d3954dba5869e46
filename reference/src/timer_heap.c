/* timer_heap.c - the binary min-heap behind call_later; see timer_heap.h.
 *
 * A classic array heap: the children of slot i are 2i+1 and 2i+2.  Each move
 * of a node updates its `index`, which is what lets a cancelled timer leave
 * the heap in O(log n) rather than linger until it reaches the top (CPython
 * keeps cancelled TimerHandles in its heap and sweeps them lazily; the
 * difference is not observable through the ABI).
 */
#include "timer_heap.h"

#include <errno.h>
#include <stdlib.h>

/* True when node a must come out before node b. */
static int earlier(const struct lspec__timer *a, const struct lspec__timer *b) {
  if (a->when != b->when)
    return a->when < b->when;
  return a->seq < b->seq;
}

/* Puts `t` into slot `i` and records the slot in the node. */
static void place(struct lspec__timer_heap *h, size_t i,
                  struct lspec__timer *t) {
  h->v[i] = t;
  t->index = i;
}

/* Moves the node at slot `i` towards the root while it is earlier than its
 * parent. */
static void sift_up(struct lspec__timer_heap *h, size_t i) {
  struct lspec__timer *t = h->v[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(t, h->v[parent]))
      break;
    place(h, i, h->v[parent]);
    i = parent;
  }
  place(h, i, t);
}

/* Moves the node at slot `i` towards the leaves while a child is earlier. */
static void sift_down(struct lspec__timer_heap *h, size_t i) {
  struct lspec__timer *t = h->v[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= h->len)
      break;
    if (child + 1 < h->len && earlier(h->v[child + 1], h->v[child]))
      child++;
    if (!earlier(h->v[child], t))
      break;
    place(h, i, h->v[child]);
    i = child;
  }
  place(h, i, t);
}

void lspec__heap_init(struct lspec__timer_heap *h) {
  h->v = NULL;
  h->len = 0;
  h->cap = 0;
}

void lspec__heap_free(struct lspec__timer_heap *h) {
  free(h->v);
  lspec__heap_init(h);
}

int lspec__heap_reserve(struct lspec__timer_heap *h, size_t extra) {
  size_t need = h->len + extra, cap;
  struct lspec__timer **v;

  if (need < h->len)
    return -ENOMEM; /* overflow */
  if (need <= h->cap)
    return 0;
  cap = h->cap ? h->cap : 16;
  while (cap < need) {
    if (cap > ((size_t)-1) / 2 / sizeof *v)
      return -ENOMEM;
    cap *= 2;
  }
  v = realloc(h->v, cap * sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  h->v = v;
  h->cap = cap;
  return 0;
}

void lspec__heap_push(struct lspec__timer_heap *h, struct lspec__timer *t) {
  h->len++;
  place(h, h->len - 1, t);
  sift_up(h, h->len - 1);
}

struct lspec__timer *lspec__heap_top(const struct lspec__timer_heap *h) {
  return h->len ? h->v[0] : NULL;
}

struct lspec__timer *lspec__heap_pop(struct lspec__timer_heap *h) {
  struct lspec__timer *top = lspec__heap_top(h);
  if (top != NULL)
    lspec__heap_remove(h, top);
  return top;
}

void lspec__heap_remove(struct lspec__timer_heap *h, struct lspec__timer *t) {
  size_t i = t->index;
  struct lspec__timer *last;

  h->len--;
  last = h->v[h->len];
  t->index = LSPEC__TIMER_DETACHED;
  if (last == t)
    return; /* t was the last slot: nothing moves */
  /* The last node fills the hole; it may belong above or below it. */
  place(h, i, last);
  if (i > 0 && earlier(last, h->v[(i - 1) / 2]))
    sift_up(h, i);
  else
    sift_down(h, i);
}
