/* afl.c - the AFL++ entry: reads one input from a file argument or stdin
 * (persistent mode with __AFL_LOOP when built by afl-clang-fast); a
 * finding is reported and aborts, which AFL++ records as a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "target.h"

#ifndef __AFL_LOOP
#define __AFL_LOOP(n) lspec_fuzz_once_(n)
static int lspec_fuzz_once_(int n) {
  static int done;
  (void)n;
  return done++ == 0;
}
#endif

static size_t read_all(FILE *f, uint8_t *buf, size_t cap) {
  size_t n = 0, r;
  while (n < cap && (r = fread(buf + n, 1, cap - n, f)) > 0)
    n += r;
  return n;
}

int main(int argc, char **argv) {
  static uint8_t buf[4 * LSPEC_FUZZ_MAX_OPS + 64];
  struct lspec_fuzz_finding finding;

  lspec_fuzz_init();
  while (__AFL_LOOP(1000)) {
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : stdin;
    size_t n;
    if (f == NULL)
      return 2;
    n = read_all(f, buf, sizeof buf);
    if (f != stdin)
      fclose(f);
    else
      clearerr(stdin);
    if (lspec_fuzz_one(buf, n, NULL, &finding)) {
      lspec_fuzz_report(stderr, buf, n, &finding);
      abort();
    }
  }
  return 0;
}
