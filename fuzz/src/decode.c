/* decode.c - input bytes to a program of operations, and back; the text
 * form of an operation.
 *
 * Every 4 bytes are one operation.  The opcode byte is taken modulo the
 * number of opcodes and each argument is folded into its range, so any
 * byte string is a program and small mutations stay meaningful.
 */
#include "program.h"

#include <signal.h>
#include <string.h>

static const char *const opcode_names[] = {
#define LSPEC_FUZZ_OPCODE_NAME_(name) #name,
    LSPEC_FUZZ_OPCODES(LSPEC_FUZZ_OPCODE_NAME_)
#undef LSPEC_FUZZ_OPCODE_NAME_
};

const char *lspec_fuzz_opcode_name(int code) {
  if (code < 0 || code >= LSPEC_FUZZ_OP_COUNT)
    return "?";
  return opcode_names[code];
}

int lspec_fuzz_fate(int index) {
  static const int fates[LSPEC_FUZZ_FATES] = {0, 1, 3, 42, -SIGTERM, -SIGKILL};
  return fates[(unsigned)index % LSPEC_FUZZ_FATES];
}

/* A slot (0..n-1) or LSPEC_FUZZ_NONE, from one byte. */
static uint8_t slot_or_none(uint8_t byte, unsigned n) {
  unsigned v = byte % (n + 1);
  return v == n ? LSPEC_FUZZ_NONE : (uint8_t)v;
}

/* A child slot or the foreign pid. */
static uint8_t child_or_foreign(uint8_t byte) {
  unsigned v = byte % (LSPEC_FUZZ_CHILDREN + 1);
  return v == LSPEC_FUZZ_CHILDREN ? LSPEC_FUZZ_FOREIGN : (uint8_t)v;
}

static void fold(struct lspec_fuzz_op *op, const uint8_t raw[4]) {
  memset(op, 0, sizeof *op);
  op->code = (uint8_t)(raw[0] % LSPEC_FUZZ_OP_COUNT);
  switch (op->code) {
  case LSPEC_FUZZ_OP_LOOP_NEW:
  case LSPEC_FUZZ_OP_LOOP_GET:
    op->a = raw[1] % LSPEC_FUZZ_LOOPS;
    op->b = raw[2] % LSPEC_FUZZ_THREADS;
    break;
  case LSPEC_FUZZ_OP_LOOP_SET:
    op->a = slot_or_none(raw[1], LSPEC_FUZZ_LOOPS);
    op->b = raw[2] % LSPEC_FUZZ_THREADS;
    break;
  case LSPEC_FUZZ_OP_LOOP_CLOSE:
  case LSPEC_FUZZ_OP_LOOP_RETAIN:
  case LSPEC_FUZZ_OP_LOOP_RELEASE:
    op->a = raw[1] % LSPEC_FUZZ_LOOPS;
    break;
  case LSPEC_FUZZ_OP_WATCHER_NEW:
    op->a = raw[1] % LSPEC_FUZZ_WATCHERS;
    op->b = (uint8_t)(1 + raw[2] % 5); /* THREADED .. PIDFD */
    break;
  case LSPEC_FUZZ_OP_WATCHER_ATTACH:
  case LSPEC_FUZZ_OP_WATCHER_IS_ACTIVE:
    op->a = raw[1] % LSPEC_FUZZ_WATCHERS;
    op->b = slot_or_none(raw[2], LSPEC_FUZZ_LOOPS);
    break;
  case LSPEC_FUZZ_OP_WATCHER_ENTER:
  case LSPEC_FUZZ_OP_WATCHER_EXIT:
  case LSPEC_FUZZ_OP_WATCHER_CLOSE:
  case LSPEC_FUZZ_OP_WATCHER_RETAIN:
  case LSPEC_FUZZ_OP_WATCHER_RELEASE:
  case LSPEC_FUZZ_OP_GET_CHILD_WATCHER:
    op->a = raw[1] % LSPEC_FUZZ_WATCHERS;
    break;
  case LSPEC_FUZZ_OP_SET_CHILD_WATCHER:
    op->a = slot_or_none(raw[1], LSPEC_FUZZ_WATCHERS);
    break;
  case LSPEC_FUZZ_OP_SPAWN:
    op->a = raw[1] % LSPEC_FUZZ_CHILDREN;
    op->b = raw[2] % LSPEC_FUZZ_FATES;
    break;
  case LSPEC_FUZZ_OP_END:
  case LSPEC_FUZZ_OP_REAP:
    op->a = raw[1] % LSPEC_FUZZ_CHILDREN;
    break;
  case LSPEC_FUZZ_OP_ADD:
    op->a = raw[1] % LSPEC_FUZZ_WATCHERS;
    op->b = child_or_foreign(raw[2]);
    op->c = slot_or_none(raw[3], LSPEC_FUZZ_LOOPS);
    break;
  case LSPEC_FUZZ_OP_REMOVE:
    op->a = raw[1] % LSPEC_FUZZ_WATCHERS;
    op->b = child_or_foreign(raw[2]);
    break;
  case LSPEC_FUZZ_OP_EXEC:
    op->a = raw[1] % LSPEC_FUZZ_LOOPS;
    op->b = raw[2] % LSPEC_FUZZ_FATES;
    op->c = raw[3] % LSPEC_FUZZ_CHILDREN;
    break;
  case LSPEC_FUZZ_OP_RUN:
    op->a = (uint8_t)(raw[1] % (1u << LSPEC_FUZZ_LOOPS));
    op->b = raw[2] % 4;
    break;
  default:
    break;
  }
}

void lspec_fuzz_decode(const uint8_t *data, size_t size,
                       struct lspec_fuzz_program *prog) {
  prog->n = 0;
  while (size >= 4 && prog->n < LSPEC_FUZZ_MAX_OPS) {
    fold(&prog->ops[prog->n++], data);
    data += 4;
    size -= 4;
  }
}

/* The inverse of fold() for folded operations: each argument's own value
 * folds back to itself (none and foreign are one past the last slot). */
static uint8_t unfold_slot(uint8_t v, unsigned n) {
  return v == LSPEC_FUZZ_NONE ? (uint8_t)n : v;
}

size_t lspec_fuzz_encode(const struct lspec_fuzz_program *prog, uint8_t *buf) {
  size_t len = 0;
  unsigned i;

  for (i = 0; i < prog->n && i < LSPEC_FUZZ_MAX_OPS; i++) {
    const struct lspec_fuzz_op *op = &prog->ops[i];
    uint8_t a = op->a, b = op->b, c = op->c;
    switch (op->code) {
    case LSPEC_FUZZ_OP_LOOP_SET:
      a = unfold_slot(a, LSPEC_FUZZ_LOOPS);
      break;
    case LSPEC_FUZZ_OP_WATCHER_ATTACH:
    case LSPEC_FUZZ_OP_WATCHER_IS_ACTIVE:
      b = unfold_slot(b, LSPEC_FUZZ_LOOPS);
      break;
    case LSPEC_FUZZ_OP_SET_CHILD_WATCHER:
      a = unfold_slot(a, LSPEC_FUZZ_WATCHERS);
      break;
    case LSPEC_FUZZ_OP_WATCHER_NEW:
      b = (uint8_t)(b - 1);
      break;
    case LSPEC_FUZZ_OP_ADD:
      b = b == LSPEC_FUZZ_FOREIGN ? LSPEC_FUZZ_CHILDREN : b;
      c = unfold_slot(c, LSPEC_FUZZ_LOOPS);
      break;
    case LSPEC_FUZZ_OP_REMOVE:
      b = b == LSPEC_FUZZ_FOREIGN ? LSPEC_FUZZ_CHILDREN : b;
      break;
    default:
      break;
    }
    buf[len++] = op->code;
    buf[len++] = a;
    buf[len++] = b;
    buf[len++] = c;
  }
  return len;
}

static void print_slot(FILE *f, char prefix, uint8_t v) {
  if (v == LSPEC_FUZZ_NONE)
    fputs(" none", f);
  else
    fprintf(f, " %c%u", prefix, v);
}

static void print_child(FILE *f, uint8_t v) {
  if (v == LSPEC_FUZZ_FOREIGN)
    fputs(" pid1", f);
  else
    fprintf(f, " C%u", v);
}

static const char *const kind_names[] = {"?",    "THREADED", "MULTILOOP",
                                         "SAFE", "FAST",     "PIDFD"};

void lspec_fuzz_op_print(FILE *f, const struct lspec_fuzz_op *op) {
  fputs(lspec_fuzz_opcode_name(op->code), f);
  switch (op->code) {
  case LSPEC_FUZZ_OP_LOOP_NEW:
  case LSPEC_FUZZ_OP_LOOP_GET:
    fprintf(f, " L%u in T%u", op->a, op->b);
    break;
  case LSPEC_FUZZ_OP_LOOP_SET:
    print_slot(f, 'L', op->a);
    if (op->a == LSPEC_FUZZ_NONE)
      fprintf(f, " in T%u", op->b);
    break;
  case LSPEC_FUZZ_OP_LOOP_CLOSE:
  case LSPEC_FUZZ_OP_LOOP_RETAIN:
  case LSPEC_FUZZ_OP_LOOP_RELEASE:
    fprintf(f, " L%u", op->a);
    break;
  case LSPEC_FUZZ_OP_WATCHER_NEW:
    fprintf(f, " W%u %s", op->a, kind_names[op->b < 6 ? op->b : 0]);
    break;
  case LSPEC_FUZZ_OP_WATCHER_ATTACH:
    fprintf(f, " W%u", op->a);
    print_slot(f, 'L', op->b);
    break;
  case LSPEC_FUZZ_OP_WATCHER_IS_ACTIVE:
    fprintf(f, " W%u", op->a);
    if (op->b != LSPEC_FUZZ_NONE)
      fprintf(f, " inside L%u", op->b);
    break;
  case LSPEC_FUZZ_OP_WATCHER_ENTER:
  case LSPEC_FUZZ_OP_WATCHER_EXIT:
  case LSPEC_FUZZ_OP_WATCHER_CLOSE:
  case LSPEC_FUZZ_OP_WATCHER_RETAIN:
  case LSPEC_FUZZ_OP_WATCHER_RELEASE:
  case LSPEC_FUZZ_OP_GET_CHILD_WATCHER:
    fprintf(f, " W%u", op->a);
    break;
  case LSPEC_FUZZ_OP_SET_CHILD_WATCHER:
    print_slot(f, 'W', op->a);
    break;
  case LSPEC_FUZZ_OP_SPAWN:
    fprintf(f, " C%u fate %d", op->a, lspec_fuzz_fate(op->b));
    break;
  case LSPEC_FUZZ_OP_END:
  case LSPEC_FUZZ_OP_REAP:
    fprintf(f, " C%u", op->a);
    break;
  case LSPEC_FUZZ_OP_ADD:
    fprintf(f, " W%u", op->a);
    print_child(f, op->b);
    if (op->c == LSPEC_FUZZ_NONE)
      fputs(" outside any loop", f);
    else
      fprintf(f, " inside L%u", op->c);
    break;
  case LSPEC_FUZZ_OP_REMOVE:
    fprintf(f, " W%u", op->a);
    print_child(f, op->b);
    break;
  case LSPEC_FUZZ_OP_EXEC:
    fprintf(f, " inside L%u fate %d as C%u", op->a, lspec_fuzz_fate(op->b),
            op->c);
    break;
  case LSPEC_FUZZ_OP_RUN:
    fputs(" loops", f);
    for (unsigned i = 0; i < LSPEC_FUZZ_LOOPS; i++)
      if (op->a & (1u << i))
        fprintf(f, " L%u", i);
    fprintf(f, " min %d ms", (int[]){0, 1, 5, 20}[op->b & 3]);
    break;
  default:
    break;
  }
}
