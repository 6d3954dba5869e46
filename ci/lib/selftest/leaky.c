/* leaky.c - a program for vgcheck's self-test: with the argument "leak" it
 * leaks a block and a descriptor from a function named like loopspec's own
 * code, and reads uninitialised memory; with "race" two threads write one
 * variable unsynchronised (for DRD); with "hang" it waits to be killed;
 * without one it is clean. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int lspec_selftest_open(void);
int lspec_selftest_open(void) { return open("/dev/null", O_RDONLY); }

static int shared;
static void *racer(void *arg) {
  (void)arg;
  shared++;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == 'r') {
    pthread_t t;
    if (pthread_create(&t, NULL, racer, NULL) != 0)
      return 1;
    shared++;
    pthread_join(t, NULL);
    return 0;
  }
  if (argc > 1 && argv[1][0] == 'h') {
    for (;;)
      pause();
  }
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
