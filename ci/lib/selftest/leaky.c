/* leaky.c - a program for vgcheck's self-test: with an argument it leaks a
 * block and a descriptor from a function named like loopspec's own code, and
 * reads uninitialised memory; without one it is clean. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int lspec_selftest_open(void);
int lspec_selftest_open(void) { return open("/dev/null", O_RDONLY); }

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    char *lost = malloc(32);
    int *junk = malloc(sizeof *junk);
    lost = NULL;
    if (lspec_selftest_open() < 0)
      return 1;
    if (*junk == 42) /* uninitialised read */
      puts("42");
    free(junk);
    (void)lost;
  }
  return 0;
}
