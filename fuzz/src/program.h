/* program.h - the fuzz target's programs: what the input bytes decode into.
 *
 * An input is a sequence of 4-byte operations (opcode, a, b, c); trailing
 * bytes are ignored and at most LSPEC_FUZZ_MAX_OPS are read.  The decoder
 * folds every byte into the operation's range, so every input is a valid
 * program.  Whether an operation applies (its slot holds something, its
 * child is in the right state) is decided when it runs: an operation that
 * does not apply is skipped and printed as such.
 */
#ifndef LSPEC_FUZZ_PROGRAM_H
#define LSPEC_FUZZ_PROGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LSPEC_FUZZ_MAX_OPS 32
#define LSPEC_FUZZ_LOOPS 4    /* loop slots L0..L3 */
#define LSPEC_FUZZ_WATCHERS 4 /* watcher slots W0..W3 */
#define LSPEC_FUZZ_CHILDREN 8 /* child slots C0..C7 */
#define LSPEC_FUZZ_THREADS 3  /* T0 is the main thread, T1 and T2 workers */
#define LSPEC_FUZZ_FATES 6    /* exit 0, 1, 3, 42; SIGTERM; SIGKILL */

/* The argument value meaning "none" in a slot-or-none argument: one past the
 * last slot. */
#define LSPEC_FUZZ_NONE 0xff

#define LSPEC_FUZZ_OPCODES(XX)                                                 \
  XX(POLICY_SET_DEFAULT) /* set a new default policy */                        \
  XX(POLICY_SET_NULL)    /* set_event_loop_policy(NULL) */                     \
  XX(POLICY_SET_CUSTOM)  /* set a custom policy (default base) */              \
  XX(POLICY_GET)         /* get the policy twice: same object as set */        \
  XX(LOOP_NEW)           /* a=loop slot, b=thread: new_event_loop() there */   \
  XX(LOOP_SET)           /* a=loop slot|none, b=thread: set_event_loop */      \
  XX(LOOP_GET)           /* a=loop slot, b=thread: get_event_loop */           \
  XX(LOOP_CLOSE)         /* a=loop slot */                                     \
  XX(LOOP_RETAIN)        /* a=loop slot */                                     \
  XX(LOOP_RELEASE)       /* a=loop slot */                                     \
  XX(WATCHER_NEW)        /* a=watcher slot, b=kind */                          \
  XX(WATCHER_ATTACH)     /* a=watcher slot, b=loop slot|none */                \
  XX(WATCHER_ENTER)      /* a=watcher slot */                                  \
  XX(WATCHER_EXIT)       /* a=watcher slot */                                  \
  XX(WATCHER_CLOSE)      /* a=watcher slot */                                  \
  XX(WATCHER_RETAIN)     /* a=watcher slot */                                  \
  XX(WATCHER_RELEASE)    /* a=watcher slot */                                  \
  XX(WATCHER_IS_ACTIVE)  /* a=watcher slot, b=loop slot|none to run in */      \
  XX(SET_CHILD_WATCHER)  /* a=watcher slot|none */                             \
  XX(GET_CHILD_WATCHER)  /* a=watcher slot to store it in */                   \
  XX(SPAWN)              /* a=child slot, b=fate */                            \
  XX(END)                /* a=child slot: the child ends; we wait for it */    \
  XX(REAP)               /* a=child slot: it ends and we reap it ourselves */  \
  XX(ADD)                /* a=watcher, b=child|foreign, c=loop|none */         \
  XX(REMOVE)             /* a=watcher, b=child|foreign */                      \
  XX(EXEC)               /* a=loop slot, b=fate, c=child slot to record */     \
  XX(RUN)                /* a=loop slot mask, b=minimum time index */

enum lspec_fuzz_opcode {
#define LSPEC_FUZZ_OPCODE_ENUM_(name) LSPEC_FUZZ_OP_##name,
  LSPEC_FUZZ_OPCODES(LSPEC_FUZZ_OPCODE_ENUM_)
#undef LSPEC_FUZZ_OPCODE_ENUM_
  LSPEC_FUZZ_OP_COUNT
};

/* The foreign "child" of ADD and REMOVE: pid 1, never our child. */
#define LSPEC_FUZZ_FOREIGN 0xfe

struct lspec_fuzz_op {
  uint8_t code; /* enum lspec_fuzz_opcode */
  uint8_t a, b, c;
};

struct lspec_fuzz_program {
  unsigned n;
  struct lspec_fuzz_op ops[LSPEC_FUZZ_MAX_OPS];
};

/* Decodes `size` bytes into *prog (never fails). */
void lspec_fuzz_decode(const uint8_t *data, size_t size,
                       struct lspec_fuzz_program *prog);

/* Encodes *prog back into bytes: 4 per operation.  Returns the length
 * (buf must hold 4 * LSPEC_FUZZ_MAX_OPS bytes). */
size_t lspec_fuzz_encode(const struct lspec_fuzz_program *prog, uint8_t *buf);

/* "ADD", ... */
const char *lspec_fuzz_opcode_name(int code);

/* Writes one operation as text ("ADD W0 C1 via L0"). */
void lspec_fuzz_op_print(FILE *f, const struct lspec_fuzz_op *op);

/* The fate of a child: an exit status (>= 0) or -signal. */
int lspec_fuzz_fate(int index);

#endif /* LSPEC_FUZZ_PROGRAM_H */
