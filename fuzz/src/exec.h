/* exec.h - runs one program against an implementation through the ABI,
 * checking every answer and every callback against the model, and ends by
 * closing everything and checking that no zombie, descriptor, thread or
 * SIGCHLD handler is left.
 */
#ifndef LSPEC_FUZZ_EXEC_H
#define LSPEC_FUZZ_EXEC_H

#include <stdio.h>

#include <loopspec/abi.h>

#include "program.h"

struct lspec_fuzz_finding {
  int op;           /* index of the operation, or -1 for the final checks */
  char clause[80];  /* the clause (or ABI section) it breaks */
  char text[400];
};

/* Runs `prog`.  `trace`, when not NULL, receives each operation with what
 * it answered.  Returns 0, or 1 with *finding filled. */
int lspec_fuzz_execute(const struct lspec_impl *impl, int profile,
                       const struct lspec_fuzz_program *prog, FILE *trace,
                       struct lspec_fuzz_finding *finding);

/* The end-of-program checks (leaks.c). */
struct lspec_fuzz_baseline {
  int fds, threads;
  int nchildren, children[8]; /* children present before (a driver's own) */
};
void lspec_fuzz_baseline_take(struct lspec_fuzz_baseline *b);
/* Returns NULL, or a clause id with text in why. */
const char *lspec_fuzz_leak_check(const struct lspec_fuzz_baseline *b,
                                  char *why, size_t n);

#endif /* LSPEC_FUZZ_EXEC_H */
