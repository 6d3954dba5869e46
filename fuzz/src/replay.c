/* replay.c - loopspec-fuzz-replay: runs inputs (crash artifacts, corpus
 * files, regressions) one by one, printing each decoded program with what
 * every operation answered and the finding, if any.  Exit status 0 when
 * no input produced a finding, 1 otherwise, 2 for a usage error.
 *
 *   loopspec-fuzz-replay [-q] FILE...      replay (-q: findings only)
 *   loopspec-fuzz-replay --emit-seeds DIR  write the seed corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

/* Seed programs, each a list of (opcode, a, b, c) in folded form; together
 * they use every opcode. */
#define OP(name, a, b, c) {LSPEC_FUZZ_OP_##name, a, b, c}
#define N LSPEC_FUZZ_NONE
#define FOREIGN LSPEC_FUZZ_FOREIGN
struct seed {
  const char *name;
  struct lspec_fuzz_op ops[LSPEC_FUZZ_MAX_OPS];
};

static const struct seed seeds[] = {
    {"threaded-basic",
     {OP(LOOP_NEW, 0, 0, 0), OP(WATCHER_NEW, 0, 1, 0), OP(SPAWN, 0, 2, 0),
      OP(ADD, 0, 0, 0), OP(END, 0, 0, 0), OP(RUN, 1, 0, 0)}},
    {"threaded-worker-foreign",
     {OP(LOOP_NEW, 1, 1, 0), OP(WATCHER_NEW, 0, 1, 0), OP(ADD, 0, FOREIGN, 1),
      OP(SPAWN, 1, 4, 0), OP(ADD, 0, 1, 1), OP(END, 1, 0, 0), OP(RUN, 2, 1, 0),
      OP(REMOVE, 0, 1, 0)}},
    {"multiloop-two-threads",
     {OP(WATCHER_NEW, 1, 2, 0), OP(WATCHER_IS_ACTIVE, 1, N, 0),
      OP(LOOP_NEW, 0, 0, 0), OP(LOOP_NEW, 1, 2, 0), OP(SPAWN, 0, 1, 0),
      OP(SPAWN, 1, 5, 0), OP(ADD, 1, 0, 0), OP(ADD, 1, 1, 1), OP(END, 0, 0, 0),
      OP(END, 1, 0, 0), OP(RUN, 3, 0, 0), OP(WATCHER_CLOSE, 1, 0, 0)}},
    {"safe-attach-zombie",
     {OP(LOOP_NEW, 0, 0, 0), OP(WATCHER_NEW, 2, 3, 0), OP(SPAWN, 2, 3, 0),
      OP(END, 2, 0, 0), OP(ADD, 2, 2, N), OP(WATCHER_ATTACH, 2, 0, 0),
      OP(SPAWN, 3, 0, 0), OP(ADD, 2, 3, N), OP(END, 3, 0, 0), OP(RUN, 1, 1, 0),
      OP(WATCHER_ATTACH, 2, N, 0), OP(WATCHER_RELEASE, 2, 0, 0)}},
    {"fast-enter-exit",
     {OP(LOOP_NEW, 0, 0, 0), OP(WATCHER_NEW, 3, 4, 0),
      OP(WATCHER_ATTACH, 3, 0, 0), OP(WATCHER_ENTER, 3, 0, 0),
      OP(SPAWN, 4, 0, 0), OP(ADD, 3, 4, N), OP(WATCHER_EXIT, 3, 0, 0),
      OP(END, 4, 0, 0), OP(RUN, 1, 0, 0), OP(ADD, 3, 4, N)}},
    {"pidfd-reaped-behind",
     {OP(LOOP_NEW, 0, 0, 0), OP(WATCHER_NEW, 0, 5, 0),
      OP(WATCHER_ATTACH, 0, 0, 0), OP(SPAWN, 5, 2, 0), OP(ADD, 0, 5, 0),
      OP(REAP, 5, 0, 0), OP(RUN, 1, 0, 0), OP(SPAWN, 6, 1, 0),
      OP(REAP, 6, 0, 0), OP(ADD, 0, 6, 0)}},
    {"policy-watcher-exec",
     {OP(POLICY_SET_CUSTOM, 0, 0, 0), OP(POLICY_GET, 0, 0, 0),
      OP(LOOP_GET, 0, 0, 0), OP(GET_CHILD_WATCHER, 0, 0, 0),
      OP(EXEC, 0, 2, 7), OP(EXEC, 0, 4, 6), OP(RUN, 1, 0, 0),
      OP(WATCHER_NEW, 1, 3, 0), OP(SET_CHILD_WATCHER, 1, 0, 0),
      OP(LOOP_SET, 0, 0, 0), OP(EXEC, 0, 0, 5), OP(RUN, 1, 2, 0),
      OP(POLICY_SET_NULL, 0, 0, 0)}},
    {"loops-refs",
     {OP(POLICY_SET_DEFAULT, 1, 0, 0), OP(LOOP_NEW, 0, 1, 0),
      OP(LOOP_SET, 0, 1, 0), OP(LOOP_GET, 1, 1, 0), OP(LOOP_GET, 2, 2, 0),
      OP(LOOP_RETAIN, 0, 0, 0), OP(LOOP_RELEASE, 0, 0, 0),
      OP(LOOP_SET, N, 1, 0), OP(LOOP_CLOSE, 1, 0, 0), OP(LOOP_RELEASE, 1, 0, 0),
      OP(WATCHER_NEW, 0, 1, 0), OP(WATCHER_RETAIN, 0, 0, 0),
      OP(WATCHER_RELEASE, 0, 0, 0), OP(SET_CHILD_WATCHER, N, 0, 0)}},
    {"threaded-loop-closed",
     {OP(LOOP_NEW, 0, 2, 0), OP(WATCHER_NEW, 0, 1, 0), OP(SPAWN, 0, 0, 0),
      OP(ADD, 0, 0, 0), OP(ADD, 0, 0, 0), OP(LOOP_CLOSE, 0, 0, 0),
      OP(END, 0, 0, 0), OP(WATCHER_CLOSE, 0, 0, 0)}},
};

static int emit(const char *dir) {
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    struct lspec_fuzz_program prog = {0};
    uint8_t buf[4 * LSPEC_FUZZ_MAX_OPS];
    char path[4096];
    FILE *f;
    while (prog.n < LSPEC_FUZZ_MAX_OPS &&
           !(seeds[i].ops[prog.n].code == 0 && seeds[i].ops[prog.n].a == 0 &&
             seeds[i].ops[prog.n].b == 0 && seeds[i].ops[prog.n].c == 0)) {
      prog.ops[prog.n] = seeds[i].ops[prog.n];
      prog.n++;
    }
    size_t len = lspec_fuzz_encode(&prog, buf);
    snprintf(path, sizeof path, "%s/%s", dir, seeds[i].name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(buf, 1, len, f) != len ||
        fclose(f) != 0) {
      fprintf(stderr, "loopspec-fuzz-replay: %s: %s\n", path, strerror(errno));
      return 2;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  static uint8_t buf[1 << 16];
  int quiet = 0, status = 0, i = 1;

  if (argc == 3 && strcmp(argv[1], "--emit-seeds") == 0)
    return emit(argv[2]);
  if (i < argc && strcmp(argv[i], "-q") == 0)
    quiet = 1, i++;
  if (i >= argc) {
    fprintf(stderr, "usage: loopspec-fuzz-replay [-q] FILE...\n"
                    "       loopspec-fuzz-replay --emit-seeds DIR\n");
    return 2;
  }
  lspec_fuzz_init();
  for (; i < argc; i++) {
    struct lspec_fuzz_finding finding;
    FILE *f = fopen(argv[i], "rb");
    size_t n;
    if (f == NULL) {
      fprintf(stderr, "loopspec-fuzz-replay: %s: %s\n", argv[i], strerror(errno));
      return 2;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (!quiet)
      printf("%s:\n", argv[i]);
    fflush(stdout);
    if (lspec_fuzz_one(buf, n, quiet ? NULL : stdout, &finding)) {
      if (quiet)
        printf("%s:\n", argv[i]);
      lspec_fuzz_report(stdout, buf, n, &finding);
      status = 1;
    } else if (!quiet) {
      printf("  ok\n");
    }
    fflush(stdout);
  }
  return status;
}
