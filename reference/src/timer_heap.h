/* timer_heap.h - the binary min-heap behind call_later.
 *
 * The heap stores pointers to struct lspec__timer nodes embedded in the
 * objects being timed (the loop's handles), so pushing and popping never
 * allocate; only the pointer array grows, and only in lspec__heap_reserve.
 * Nodes are ordered by (when, seq): equal deadlines come out in the order of
 * their sequence numbers, which the loop takes from its scheduling counter,
 * so timers with the same deadline run in the order they were scheduled.
 *
 * Every node knows its own position (index), which makes removing an
 * arbitrary node (a cancelled timer) O(log n) instead of a linear search.
 * The heap does no locking; its owner serialises access.
 */
#ifndef LSPEC_REFERENCE_TIMER_HEAP_H
#define LSPEC_REFERENCE_TIMER_HEAP_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* A node.  `when` must not be NaN: the ordering would stop being total.  The
 * loop rejects NaN delays before a node is ever built. */
struct lspec__timer {
  double when;  /* deadline, in loop_time() seconds; +inf never fires */
  uint64_t seq; /* tie-breaker: smaller runs first among equal deadlines */
  size_t index; /* position in the heap, or LSPEC__TIMER_DETACHED */
};

/* The index of a node that is in no heap. */
#define LSPEC__TIMER_DETACHED ((size_t)-1)

struct lspec__timer_heap {
  struct lspec__timer **v; /* v[0] is the earliest node */
  size_t len;              /* nodes in the heap */
  size_t cap;              /* slots allocated in v */
};

/* Makes an empty heap.  Allocates nothing. */
LSPEC__HIDDEN void lspec__heap_init(struct lspec__timer_heap *h);

/* Frees the pointer array.  The nodes belong to their owner and are not
 * touched; the heap is empty and reusable afterwards. */
LSPEC__HIDDEN void lspec__heap_free(struct lspec__timer_heap *h);

/* Makes room for `extra` more nodes, so that many pushes cannot fail.
 * Returns 0, or -ENOMEM with the heap unchanged. */
LSPEC__HIDDEN int lspec__heap_reserve(struct lspec__timer_heap *h,
                                      size_t extra);

/* Inserts `t`, which must be detached.  The caller has reserved room. */
LSPEC__HIDDEN void lspec__heap_push(struct lspec__timer_heap *h,
                                    struct lspec__timer *t);

/* The earliest node, or NULL when the heap is empty.  O(1). */
LSPEC__HIDDEN struct lspec__timer *
lspec__heap_top(const struct lspec__timer_heap *h);

/* Removes and returns the earliest node (detached), or NULL.  O(log n). */
LSPEC__HIDDEN struct lspec__timer *lspec__heap_pop(struct lspec__timer_heap *h);

/* Removes `t`, which must be in `h`, and detaches it.  O(log n). */
LSPEC__HIDDEN void lspec__heap_remove(struct lspec__timer_heap *h,
                                      struct lspec__timer *t);

#endif /* LSPEC_REFERENCE_TIMER_HEAP_H */
